package merchant

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
)

// Gateway is what the service needs from WeChat. wxgateway implements it
// over the v2 SDK (wxgateway.New) and over APIv3 (wxgateway.NewV3). Errors wrap the sentinels below so that the use cases
// can decide without knowing the SDK.
type Gateway interface {
	// AppID and MchID identify the merchant the gateway speaks for.
	AppID() string
	MchID() string
	// Login trades a wx.login code for the user's openid (jscode2session).
	Login(ctx context.Context, code string) (*Login, error)
	// Prepay calls unifiedorder with the order's fixed parameters.
	Prepay(ctx context.Context, o *Order) (*Prepay, error)
	// PayParams signs the mini-program pay parameters of a prepay id.
	PayParams(prepayID string) (*PayParams, error)
	// Query asks for an order's state.
	Query(ctx context.Context, outTradeNo string) (*TradeStatus, error)
	// Close closes an unpaid order at WeChat.
	Close(ctx context.Context, outTradeNo string) error
	// Refund asks for a refund; a nil error means accepted.
	Refund(ctx context.Context, r *Refund) (refundID string, err error)
	// RefundQuery asks for a refund's state.
	RefundQuery(ctx context.Context, outRefundNo string) (*RefundResult, error)
	// Bill downloads a day's trade bill (the date in China Standard Time).
	Bill(ctx context.Context, day time.Time) ([]BillEntry, error)
	// ParsePayNotify verifies a pay notify and returns the payment (Paid
	// false for a notify that reports a failure). header is the request's
	// header as received (APIv3 signs with Wechatpay-* headers; v2 ignores
	// it) and body its raw bytes, never re-serialised.
	ParsePayNotify(ctx context.Context, header http.Header, body []byte) (*PayNotice, error)
	// ParseRefundNotify verifies (v3) and decrypts a refund notify.
	ParseRefundNotify(ctx context.Context, header http.Header, body []byte) (*RefundResult, error)
	// NotifyAck is the HTTP answer to a notify: success when err is nil.
	// v2 answers the XML SUCCESS/FAIL document; v3 answers 204, or a 4xx
	// or 5xx status with a JSON {"code","message"} body, since WeChat
	// judges a v3 reply by its status.
	NotifyAck(err error) (status int, contentType string, body []byte)
}

// Sentinels that Gateway errors wrap.
var (
	// ErrUnknownOutcome: the call may or may not have taken effect
	// (timeout, SYSTEMERROR, an unverifiable answer). Retry with identical
	// parameters or query; never assume.
	ErrUnknownOutcome = errors.New("wechat: outcome unknown")
	ErrOrderPaid      = errors.New("wechat: order already paid")
	ErrOrderClosed    = errors.New("wechat: order closed")
	ErrOrderNotExist  = errors.New("wechat: no such order")
	ErrRefundNotExist = errors.New("wechat: no such refund")
	ErrBadCode        = errors.New("wechat: login code invalid, expired or used")
	ErrNoBill         = errors.New("wechat: no bill for that day")
	ErrBillNotReady   = errors.New("wechat: bill not ready yet")
	// ErrRejected: WeChat refused the call with a definite answer (the
	// error text says which); the call did not take effect.
	ErrRejected = errors.New("wechat: rejected")
	// ErrBadNotify: a notify that must not be acted on (signature,
	// merchant, format).
	ErrBadNotify = errors.New("wechat: notify refused")
)

// Login is the result of a mini-program login.
type Login struct {
	OpenID  string
	UnionID string
}

// Prepay is the result of unifiedorder.
type Prepay struct {
	PrepayID string
	CodeURL  string // NATIVE
}

// PayParams are the signed parameters for wx.requestPayment (and the
// string that was signed, key redacted, for the demo and diagnostics).
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
	Signed    string `json:"-"`
}

// TradeStatus is an order's state at WeChat. Payment is set when the
// state is SUCCESS or REFUND.
type TradeStatus struct {
	State   wxpay.TradeState
	Payment *Payment
}

// PayNotice is a verified pay notify.
type PayNotice struct {
	Payment
	Paid bool // result_code SUCCESS
}

// BillEntry is one row of a trade bill in domain terms.
type BillEntry struct {
	Time          time.Time
	OutTradeNo    string
	TransactionID string
	State         wxpay.TradeState // SUCCESS for payments, REFUND for refunds
	TotalFee      int64            // the order total, fen
	OutRefundNo   string
	RefundID      string
	RefundFee     int64 // fen
	RefundStatus  string
}
