package wxpay

import (
	"time"
	_ "time/tzdata" // China Standard Time must resolve in a bare container.
)

// China is the Asia/Shanghai time zone (UTC+8, no daylight saving) in which
// WeChat Pay v2 writes every yyyyMMddHHmmss time and cuts bill days.
var China = mustLoad("Asia/Shanghai")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		// tzdata is embedded, so this only fails if the name is wrong.
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}

// TradeType is the payment product of an order (protocol.md §4.2).
type TradeType string

// Trade types.
const (
	TradeTypeJSAPI    TradeType = "JSAPI"    // in-WeChat web pay and mini-program pay; needs openid
	TradeTypeNative   TradeType = "NATIVE"   // QR code scanned by the payer; returns code_url
	TradeTypeApp      TradeType = "APP"      // native app pay
	TradeTypeMWeb     TradeType = "MWEB"     // H5 pay outside WeChat
	TradeTypeMicroPay TradeType = "MICROPAY" // payment code (barcode) pay; never sent to unifiedorder
	TradeTypeFacePay  TradeType = "FACEPAY"  // face pay; seen in APIv3 queries and bills
)

// Valid reports whether t is one of the documented trade types.
func (t TradeType) Valid() bool {
	switch t {
	case TradeTypeJSAPI, TradeTypeNative, TradeTypeApp, TradeTypeMWeb, TradeTypeMicroPay, TradeTypeFacePay:
		return true
	}
	return false
}

// TradeState is the state of an order as orderquery reports it (protocol.md §4.3).
type TradeState string

// Trade states.
const (
	TradeStateSuccess    TradeState = "SUCCESS"    // paid
	TradeStateRefund     TradeState = "REFUND"     // a refund was requested
	TradeStateNotPay     TradeState = "NOTPAY"     // not paid yet
	TradeStateClosed     TradeState = "CLOSED"     // closed
	TradeStateRevoked    TradeState = "REVOKED"    // reversed (micropay)
	TradeStateUserPaying TradeState = "USERPAYING" // the user is entering the password (micropay)
	TradeStatePayError   TradeState = "PAYERROR"   // payment failed (micropay)
	TradeStateAccept     TradeState = "ACCEPT"     // accepted, waiting for debit (rare)
)

// Valid reports whether s is one of the documented trade states.
func (s TradeState) Valid() bool {
	switch s {
	case TradeStateSuccess, TradeStateRefund, TradeStateNotPay, TradeStateClosed,
		TradeStateRevoked, TradeStateUserPaying, TradeStatePayError, TradeStateAccept:
		return true
	}
	return false
}

// Final reports whether s can no longer change except through a refund.
// NOTPAY, USERPAYING and ACCEPT are intermediate; the rest are final.
func (s TradeState) Final() bool {
	switch s {
	case TradeStateNotPay, TradeStateUserPaying, TradeStateAccept:
		return false
	}
	return s.Valid()
}

// Paid reports whether the money was taken (SUCCESS, or REFUND which
// follows a successful payment).
func (s TradeState) Paid() bool {
	return s == TradeStateSuccess || s == TradeStateRefund
}

// RefundStatus is the state of one refund (protocol.md §4.4).
type RefundStatus string

// Refund statuses.
const (
	RefundStatusSuccess    RefundStatus = "SUCCESS"     // credited to the user
	RefundStatusClosed     RefundStatus = "REFUNDCLOSE" // failed and closed
	RefundStatusProcessing RefundStatus = "PROCESSING"  // in progress (refundquery only)
	RefundStatusChange     RefundStatus = "CHANGE"      // abnormal: handle by hand in the merchant platform
)

// Valid reports whether s is one of the documented refund statuses.
func (s RefundStatus) Valid() bool {
	switch s {
	case RefundStatusSuccess, RefundStatusClosed, RefundStatusProcessing, RefundStatusChange:
		return true
	}
	return false
}

// Final reports whether the refund has reached a final status.
func (s RefundStatus) Final() bool {
	return s == RefundStatusSuccess || s == RefundStatusClosed || s == RefundStatusChange
}

// BillType selects the rows of a downloaded trade bill (protocol.md §5.6).
type BillType string

// Bill types.
const (
	BillTypeAll            BillType = "ALL"             // payments and refunds of the day
	BillTypeSuccess        BillType = "SUCCESS"         // payments only
	BillTypeRefund         BillType = "REFUND"          // refunds only
	BillTypeRechargeRefund BillType = "RECHARGE_REFUND" // recharge-coupon refunds
)

// Valid reports whether b is one of the documented bill types.
func (b BillType) Valid() bool {
	switch b {
	case BillTypeAll, BillTypeSuccess, BillTypeRefund, BillTypeRechargeRefund:
		return true
	}
	return false
}

// AccountType selects the account of a fund-flow bill (protocol.md §5.7).
type AccountType string

// Account types.
const (
	AccountBasic     AccountType = "Basic"     // the basic account
	AccountOperation AccountType = "Operation" // the operation account
	AccountFees      AccountType = "Fees"      // the fees account
)

// Valid reports whether a is one of the documented account types.
func (a AccountType) Valid() bool {
	return a == AccountBasic || a == AccountOperation || a == AccountFees
}

// SignType is the v2 signature algorithm (protocol.md §2.2).
type SignType string

// Signature types.
const (
	SignTypeMD5        SignType = "MD5"         // the default when sign_type is absent
	SignTypeHMACSHA256 SignType = "HMAC-SHA256" // HMAC-SHA256 keyed with the API key
	SignTypeRSA        SignType = "RSA"         // APIv3 mini-program paySign
)

// Valid reports whether s is a v2 signature type (MD5 or HMAC-SHA256).
func (s SignType) Valid() bool { return s == SignTypeMD5 || s == SignTypeHMACSHA256 }

// RefundAccount is the source of a refund's money.
type RefundAccount string

// Refund accounts.
const (
	RefundAccountUnsettled RefundAccount = "REFUND_SOURCE_UNSETTLED_FUNDS" // the default
	RefundAccountRecharge  RefundAccount = "REFUND_SOURCE_RECHARGE_FUNDS"  // the available balance
)

// RefundChannel is where a refund went.
type RefundChannel string

// Refund channels.
const (
	RefundChannelOriginal RefundChannel = "ORIGINAL" // back the way it came
	RefundChannelBalance  RefundChannel = "BALANCE"  // to the user's balance
	// APIv3 adds these, for a refund whose original card was closed.
	RefundChannelOtherBalance  RefundChannel = "OTHER_BALANCE"  // to the user's balance instead
	RefundChannelOtherBankcard RefundChannel = "OTHER_BANKCARD" // to another card
)

// Result codes of the v2 envelope (return_code and result_code).
const (
	Success = "SUCCESS"
	Fail    = "FAIL"
)

// Hosts of WeChat Pay and of the mini-program API.
const (
	HostPay       = "https://api.mch.weixin.qq.com"  // WeChat Pay, primary
	HostPayBackup = "https://api2.mch.weixin.qq.com" // WeChat Pay, cross-city backup
	HostWeChatAPI = "https://api.weixin.qq.com"      // mini-program server API (jscode2session)
)
