package apiv3

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrorCode is the code of an APIv3 error body (protocol.md §13.7). The
// constants below are sentinel errors: errors.Is(err, apiv3.ErrOrderNotExist)
// reports whether a call failed with that code. WeChat's pages spell some
// codes in two ways (ORDER_NOT_EXIST and the older ORDERNOTEXIST, NO_AUTH
// and NOAUTH …); a sentinel matches both, since codes are compared without
// their underscores.
type ErrorCode string

// Error makes an ErrorCode usable as a sentinel error.
func (c ErrorCode) Error() string { return "apiv3: " + string(c) }

// Same reports whether two codes are the same code in either spelling:
// equal once underscores are removed.
func (c ErrorCode) Same(other ErrorCode) bool { return sameCode(string(c), string(other)) }

func sameCode(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i] == '_' {
			i++
		}
		for j < len(b) && b[j] == '_' {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b) && (len(a) > 0 || len(b) == 0)
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

// The codes callers branch on (protocol.md §13.7; the newer underscore
// spelling, which also matches the older one).
const (
	ErrSystemError          ErrorCode = "SYSTEM_ERROR"          // 500, outcome unknown: retry with identical parameters, or query
	ErrBankError            ErrorCode = "BANK_ERROR"            // 500, outcome unknown: query
	ErrUserPaying           ErrorCode = "USERPAYING"            // 202 (code pay), outcome unknown: the user is entering the password; query
	ErrParamError           ErrorCode = "PARAM_ERROR"           // 400: a parameter is invalid; see Error.Detail
	ErrInvalidRequest       ErrorCode = "INVALID_REQUEST"       // 400: the request breaks a rule or the order's state does not allow it
	ErrOrderClosed          ErrorCode = "ORDER_CLOSED"          // 400: the order is closed; a new order needs a new out_trade_no
	ErrOrderPaid            ErrorCode = "ORDER_PAID"            // 400: the order is paid (close, a second prepay): query it (also ORDERPAID)
	ErrAppIDMchIDNotMatch   ErrorCode = "APPID_MCHID_NOT_MATCH" // 400: the app is not bound to the merchant
	ErrMchNotExists         ErrorCode = "MCH_NOT_EXISTS"        // 400: unknown merchant
	ErrSignError            ErrorCode = "SIGN_ERROR"            // 401: WeChat refused our signature (wrong key, CertSerial or clock)
	ErrNoAuth               ErrorCode = "NO_AUTH"               // 403: the merchant lacks the permission (also NOAUTH)
	ErrOutTradeNoUsed       ErrorCode = "OUT_TRADE_NO_USED"     // 403: the out_trade_no belongs to another order
	ErrNotEnough            ErrorCode = "NOT_ENOUGH"            // 403: insufficient balance (also NOTENOUGH)
	ErrTradeError           ErrorCode = "TRADE_ERROR"           // 403: refused by a business rule
	ErrRuleLimit            ErrorCode = "RULE_LIMIT"            // 403: refused by a risk rule (also RULELIMIT)
	ErrOrderNotExist        ErrorCode = "ORDER_NOT_EXIST"       // 404: no such order (also ORDERNOTEXIST)
	ErrResourceNotExists    ErrorCode = "RESOURCE_NOT_EXISTS"   // 404: no such refund or bill
	ErrFrequencyLimited     ErrorCode = "FREQUENCY_LIMITED"     // 429: rate limited, nothing done; back off
	ErrOpenIDMismatch       ErrorCode = "OPENID_MISMATCH"       // 500: the openid does not belong to the appid
	ErrInvalidTransactionID ErrorCode = "INVALID_TRANSACTIONID" // 500: the transaction_id is invalid
	ErrUserAccountAbnormal  ErrorCode = "USER_ACCOUNT_ABNORMAL" // refund: the payer's account is closed; refund offline
	ErrNoStatementExist     ErrorCode = "NO_STATEMENT_EXIST"    // bills: no bill for that day
	ErrStatementCreating    ErrorCode = "STATEMENT_CREATING"    // bills: the bill is being made; fetch it after 10:00
)

// ErrOutcomeUnknown matches every failure after which the result of the
// call is not known (protocol.md §13.7, reliability.md C3): a network
// failure or timeout after the request may have been sent, an HTTP 5xx, a
// 202 USERPAYING, SYSTEM_ERROR or BANK_ERROR, an answer whose signature is
// missing or does not verify, a 2xx answer that does not decode. The call
// may or may not have taken effect. Never assume either: retry with
// identical parameters (same out_trade_no, same out_refund_no) or query,
// and decide from what the query says.
var ErrOutcomeUnknown = errors.New("apiv3: outcome unknown: query, never assume")

// ErrResponseSignature matches an answer whose Wechatpay-* signature is
// missing, stale or does not verify (protocol.md §13.2). It is also an
// ErrOutcomeUnknown: the call may have taken effect. The wrapped error says
// why (ErrMissingHeader, ErrTimestamp, ErrProbeSignature, ErrUnknownSerial,
// ErrSignature).
var ErrResponseSignature = errors.New("apiv3: response signature missing or invalid")

// ErrNoVerifier is returned, before anything is sent, by every call of a
// Client that has no Verifier: answers are always verified, so a client
// that cannot verify does not call. Set Config.Verifier, or use
// Client.WithVerifier once a CertificateManager is running.
var ErrNoVerifier = errors.New("apiv3: no Verifier configured: answers cannot be verified, nothing was sent")

// ErrInvalidArgument wraps every request that the client refuses before
// sending it (a required field missing, an amount ≤ 0, a malformed
// out_trade_no): nothing was sent, so the outcome is known.
var ErrInvalidArgument = errors.New("apiv3: invalid argument")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// ErrorDetail is the detail object of a PARAM_ERROR (protocol.md §13.7).
type ErrorDetail struct {
	Field    string          `json:"field"`    // JSON pointer of the field, e.g. #/properties/payer
	Value    json.RawMessage `json:"value"`    // the value refused, as sent
	Issue    string          `json:"issue"`    // what is wrong
	Location string          `json:"location"` // body, query, path or header
}

// Error is the failure of an APIv3 call. Either WeChat answered with an
// error body (HTTPStatus, Code, Message, Detail), or Err says what went
// wrong (transport failure, timeout, an answer that does not verify or
// decode). It never holds a key, a signature, an Authorization header or a
// whole body.
type Error struct {
	API        string       // the API, e.g. "prepay-jsapi"
	HTTPStatus int          // the HTTP status, when an answer arrived
	Code       ErrorCode    // the code of the error body
	Message    string       // its message
	Detail     *ErrorDetail // its detail, mainly for PARAM_ERROR
	RequestID  string       // the Request-Id header: quote it to WeChat Pay support
	// Unknown is true when the outcome of the call is not known; see
	// ErrOutcomeUnknown.
	Unknown bool
	Err     error // the underlying cause
}

// Error describes the failure without secrets or bodies.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apiv3: ")
	b.WriteString(e.API)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", string(e.Code))
		if e.Message != "" {
			fmt.Fprintf(&b, " (%s)", e.Message)
		}
		if e.Detail != nil && (e.Detail.Field != "" || e.Detail.Issue != "") {
			fmt.Fprintf(&b, " [%s: %s]", e.Detail.Field, e.Detail.Issue)
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (Request-Id %s)", e.RequestID)
	}
	if e.Unknown {
		b.WriteString(": outcome unknown, query before deciding")
	}
	return b.String()
}

// Unwrap returns the underlying cause, so that errors.Is(err,
// context.DeadlineExceeded) and errors.Is(err, ErrInvalidArgument) work.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the ErrorCode sentinels (in either spelling) and
// ErrOutcomeUnknown.
func (e *Error) Is(target error) bool {
	if t, ok := target.(ErrorCode); ok {
		return e.Code != "" && sameCode(string(e.Code), string(t))
	}
	return target == ErrOutcomeUnknown && e.Unknown
}

// OutcomeUnknown reports whether err means the outcome of a call is not
// known (see ErrOutcomeUnknown).
func OutcomeUnknown(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }

// unknownCode reports whether an error code leaves the outcome unknown.
func unknownCode(c ErrorCode) bool {
	return c.Same(ErrSystemError) || c.Same(ErrBankError) || c.Same(ErrUserPaying)
}

// sigError wraps a verification failure so that errors.Is finds both it
// and ErrResponseSignature (and, through the *Error, ErrOutcomeUnknown).
type sigError struct{ err error }

func (s *sigError) Error() string        { return "response signature: " + s.err.Error() }
func (s *sigError) Unwrap() error        { return s.err }
func (s *sigError) Is(target error) bool { return target == ErrResponseSignature }
