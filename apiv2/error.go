package apiv2

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// ErrorCode is a WeChat Pay v2 err_code. The constants below are sentinel
// errors: errors.Is(err, apiv2.ErrOrderPaid) reports whether a call failed
// with that code.
type ErrorCode string

// Error makes an ErrorCode usable as a sentinel error.
func (c ErrorCode) Error() string { return "apiv2: " + string(c) }

// The err_code values callers branch on (protocol.md §3.1 and §5).
const (
	ErrSystemError        ErrorCode = "SYSTEMERROR"           // outcome unknown: retry with identical parameters, or query
	ErrBankError          ErrorCode = "BANKERROR"             // micropay, outcome unknown: query
	ErrUserPaying         ErrorCode = "USERPAYING"            // micropay, outcome unknown: the user is entering the password; poll orderquery
	ErrSignError          ErrorCode = "SIGNERROR"             // WeChat refused our signature: see Error.Diagnosis
	ErrParamError         ErrorCode = "PARAM_ERROR"           // a parameter is invalid; see the message
	ErrInvalidRequest     ErrorCode = "INVALID_REQUEST"       // e.g. re-entry of an out_trade_no with different parameters
	ErrLackParams         ErrorCode = "LACK_PARAMS"           // a required parameter is missing
	ErrNoAuth             ErrorCode = "NOAUTH"                // the merchant lacks permission for this API
	ErrNotEnough          ErrorCode = "NOTENOUGH"             // the payer's balance (or for refunds the merchant's) is insufficient
	ErrOrderPaid          ErrorCode = "ORDERPAID"             // the order is already paid: treat it as paid
	ErrOrderClosed        ErrorCode = "ORDERCLOSED"           // the order is closed: a new order needs a new out_trade_no
	ErrOrderNotExist      ErrorCode = "ORDERNOTEXIST"         // no such order
	ErrOrderReversed      ErrorCode = "ORDERREVERSED"         // the order was reversed
	ErrOutTradeNoUsed     ErrorCode = "OUT_TRADE_NO_USED"     // the out_trade_no was used for another order
	ErrAppIDMchIDMismatch ErrorCode = "APPID_MCHID_NOT_MATCH" // the app id is not bound to the merchant
	ErrAppIDNotExist      ErrorCode = "APPID_NOT_EXIST"       // unknown app id
	ErrMchIDNotExist      ErrorCode = "MCHID_NOT_EXIST"       // unknown merchant id
	ErrFrequencyLimited   ErrorCode = "FREQUENCY_LIMITED"     // rate limited: back off
	ErrBizNeedRetry       ErrorCode = "BIZERR_NEED_RETRY"     // refund rejected by a concurrency conflict: retry with the same out_refund_no
	ErrTradeOverdue       ErrorCode = "TRADE_OVERDUE"         // the order is too old to refund
	ErrRefundNotExist     ErrorCode = "REFUNDNOTEXIST"        // no such refund
	ErrInvalidTransaction ErrorCode = "INVALID_TRANSACTIONID" // the transaction_id is invalid
	ErrUserAccountAbnorm  ErrorCode = "USER_ACCOUNT_ABNORMAL" // the payer's account is closed or abnormal: refund offline
	ErrInvalidReqTooMuch  ErrorCode = "INVALID_REQ_TOO_MUCH"  // too many invalid requests: wait a minute
	ErrAuthCodeExpire     ErrorCode = "AUTHCODEEXPIRE"        // micropay: the payment code expired; ask for a fresh one
	ErrAuthCodeError      ErrorCode = "AUTH_CODE_ERROR"       // micropay: the payment code is malformed or used
	ErrAuthCodeInvalid    ErrorCode = "AUTH_CODE_INVALID"     // micropay: not a WeChat payment code
	ErrBuyerMismatch      ErrorCode = "BUYER_MISMATCH"        // micropay: another payer for an existing order
	ErrNotSupportCard     ErrorCode = "NOTSUPORTCARD"         // micropay: card type not supported (WeChat's spelling)
	ErrTradeError         ErrorCode = "TRADE_ERROR"           // business or risk-control refusal
	ErrReverseExpire      ErrorCode = "REVERSE_EXPIRE"        // the order is too old to reverse: refund instead
	ErrTradeStateError    ErrorCode = "TRADE_STATE_ERROR"     // the order's state does not allow the call: query it
	ErrXMLFormatError     ErrorCode = "XML_FORMAT_ERROR"      // WeChat could not parse our XML
	ErrRefundFeeMismatch  ErrorCode = "REFUND_FEE_MISMATCH"   // another amount under an out_refund_no already used: never change a refund's amount
)

// ErrOutcomeUnknown matches every failure after which the result of the
// call is not known: a network failure or timeout after the request may
// have been sent, an HTTP 5xx, a truncated or unparsable answer, an answer
// whose signature does not verify, and the codes SYSTEMERROR, BANKERROR and
// USERPAYING. The call may or may not have taken effect at WeChat. Never
// assume either: retry with identical parameters (same out_trade_no, same
// out_refund_no) or query, and decide from what the query says.
var ErrOutcomeUnknown = errors.New("apiv2: outcome unknown: query, never assume")

// ErrResponseSignature matches an answer whose signature is missing or does
// not verify. It is also an ErrOutcomeUnknown: the call may have taken
// effect. Error.Diagnosis explains the likely cause.
var ErrResponseSignature = errors.New("apiv2: response signature missing or invalid")

// ErrNoBill matches downloadbill's "No Bill Exist": no trade that day.
var ErrNoBill = errors.New("apiv2: no bill exists for that day")

// ErrBillCreating matches downloadbill's "Bill Creating": fetch after 10:00.
var ErrBillCreating = errors.New("apiv2: bill is being created; fetch it after 10:00 the next day")

// Error is the failure of a v2 call. Exactly one of these describes it:
// Err (transport: network failure, timeout, bad HTTP status, unreadable
// answer), ReturnCode FAIL (protocol error, with ReturnMsg), or ResultCode
// FAIL (business error, with Code and Message). It never holds a key, a
// certificate or a whole message.
type Error struct {
	API        string // the API, e.g. "unifiedorder"
	HTTPStatus int    // the HTTP status, when an answer arrived
	ReturnCode string // return_code, when the answer was parsed
	ReturnMsg  string // return_msg
	Code       ErrorCode
	Message    string // err_code_des
	// Unknown is true when the outcome of the call is not known; see
	// ErrOutcomeUnknown.
	Unknown bool
	// Diagnosis explains a signature problem (SIGNERROR from WeChat, or an
	// answer that does not verify); the key is never in it.
	Diagnosis *wxcrypto.Diagnosis
	Err       error // the underlying cause, for transport errors
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apiv2: ")
	b.WriteString(e.API)
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", string(e.Code))
		if e.Message != "" {
			fmt.Fprintf(&b, " (%s)", e.Message)
		}
	case e.ReturnCode != "" && e.ReturnCode != "SUCCESS":
		fmt.Fprintf(&b, ": return_code %s", e.ReturnCode)
		if e.ReturnMsg != "" {
			fmt.Fprintf(&b, " (%s)", e.ReturnMsg)
		}
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	}
	if e.Unknown {
		b.WriteString(": outcome unknown, query before deciding")
	}
	return b.String()
}

// Unwrap returns the underlying cause, so that errors.Is(err,
// context.DeadlineExceeded) works.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the ErrorCode sentinels, ErrOutcomeUnknown and
// ErrResponseSignature.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case ErrorCode:
		if e.Code == t {
			return true
		}
		// Protocol errors come back as return_code=FAIL with only a
		// message; recognise the signature one, which callers act on.
		return t == ErrSignError && e.ReturnCode == "FAIL" && signMsg(e.ReturnMsg)
	}
	switch target {
	case ErrOutcomeUnknown:
		return e.Unknown
	}
	return false
}

// OutcomeUnknown reports whether err means the outcome of a call is not
// known (see ErrOutcomeUnknown).
func OutcomeUnknown(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }

func signMsg(msg string) bool {
	m := strings.ToUpper(msg)
	return strings.Contains(msg, "签名") || strings.Contains(m, "SIGN")
}

// unknownCode reports whether a business err_code leaves the outcome unknown.
func unknownCode(c ErrorCode) bool {
	return c == ErrSystemError || c == ErrBankError || c == ErrUserPaying
}

// sigError wraps ErrResponseSignature so that errors.Is finds both it and
// ErrOutcomeUnknown through the *Error.
type sigError struct{ reason string }

func (s *sigError) Error() string        { return "response signature " + s.reason }
func (s *sigError) Is(target error) bool { return target == ErrResponseSignature }
