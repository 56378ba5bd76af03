package apiv2

import (
	"context"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
)

var (
	epUnifiedOrder = &endpoint{name: "unifiedorder", path: "/pay/unifiedorder", safe: safeDialErr}
	epOrderQuery   = &endpoint{name: "orderquery", path: "/pay/orderquery", safe: safeAlways}
	epCloseOrder   = &endpoint{name: "closeorder", path: "/pay/closeorder", safe: safeDialErr}
)

// UnifiedOrderRequest is the unifiedorder request (protocol.md §5.1).
type UnifiedOrderRequest struct {
	Body           string          // product description, e.g. "小程序名-商品"; required
	OutTradeNo     string          // your order number: 6–32 of [0-9A-Za-z_-|*@]; required
	TotalFee       int64           // amount in fen, > 0; required
	SpbillCreateIP string          // the payer's or the server's IP; required
	TradeType      wxpay.TradeType // JSAPI (mini programs), NATIVE, APP or MWEB; required
	NotifyURL      string          // defaults to Config.NotifyURL; no query string
	OpenID         string          // the payer, required for JSAPI (from jscode2session)
	ProductID      string          // required for NATIVE
	DeviceInfo     string
	Detail         string // JSON goods detail
	Attach         string // echoed in query and notify
	FeeType        string // default CNY
	TimeStart      time.Time
	TimeExpire     time.Time // WeChat wants it more than 1 (older texts: 5) minutes away
	GoodsTag       string
	LimitPay       string // "no_credit" forbids credit cards
	Receipt        string // "Y" enables the e-invoice entry
	ProfitSharing  string // "Y" or "N"
	SceneInfo      string // JSON; required for MWEB
	// Extra holds fields this struct does not type; they are sent and
	// signed as they are.
	Extra map[string]string
}

func (r *UnifiedOrderRequest) encode(e *encoder, defaultNotify string) {
	notify := r.NotifyURL
	if notify == "" {
		notify = defaultNotify
	}
	e.require(r.Body != "", "unifiedorder: Body is required")
	if !(r.TotalFee > 0) {
		e.fail(invalid("unifiedorder: TotalFee must be > 0 fen, is %d", r.TotalFee))
	}
	e.require(r.SpbillCreateIP != "", "unifiedorder: SpbillCreateIP is required")
	if !(r.TradeType.Valid() && r.TradeType != wxpay.TradeTypeMicroPay) {
		e.fail(invalid("unifiedorder: TradeType %q is not JSAPI, NATIVE, APP or MWEB", string(r.TradeType)))
	}
	e.require(r.TradeType != wxpay.TradeTypeJSAPI || r.OpenID != "", "unifiedorder: OpenID is required for JSAPI")
	e.require(r.TradeType != wxpay.TradeTypeNative || r.ProductID != "", "unifiedorder: ProductID is required for NATIVE")
	e.require(notify != "", "unifiedorder: NotifyURL is required (in the request or the Config)")
	if notify != "" {
		if err := sdkhttp.CheckNotifyURL(notify); err != nil {
			e.fail(invalid("unifiedorder: %v", err))
		}
	}
	if err := checkOutTradeNo("out_trade_no", r.OutTradeNo); err != nil {
		e.fail(err)
	}
	e.str("body", r.Body)
	e.str("out_trade_no", r.OutTradeNo)
	e.num("total_fee", r.TotalFee)
	e.str("spbill_create_ip", r.SpbillCreateIP)
	e.str("trade_type", string(r.TradeType))
	e.str("notify_url", notify)
	e.str("openid", r.OpenID)
	e.str("product_id", r.ProductID)
	e.str("device_info", r.DeviceInfo)
	e.str("detail", r.Detail)
	e.str("attach", r.Attach)
	e.str("fee_type", r.FeeType)
	e.time("time_start", r.TimeStart)
	e.time("time_expire", r.TimeExpire)
	e.str("goods_tag", r.GoodsTag)
	e.str("limit_pay", r.LimitPay)
	e.str("receipt", r.Receipt)
	e.str("profit_sharing", r.ProfitSharing)
	e.str("scene_info", r.SceneInfo)
	e.extra(r.Extra)
}

// UnifiedOrderResponse is the answer to unifiedorder.
type UnifiedOrderResponse struct {
	Envelope
	TradeType  wxpay.TradeType
	PrepayID   string // valid for 2 hours; for JSAPI turn it into PayParams
	CodeURL    string // NATIVE: the weixin://wxpay/bizpayurl?pr=… URL to show as a QR code
	MWebURL    string // MWEB
	DeviceInfo string
}

// UnifiedOrder places an order (统一下单, POST /pay/unifiedorder,
// https://pay.weixin.qq.com/wiki/doc/api/wxa/wxa_api.php?chapter=9_1) and
// returns its prepay_id (or code_url for NATIVE).
//
// Calling it again with the same OutTradeNo and identical parameters while
// the order is unpaid returns a prepay id again: that is how to refresh an
// expired one, and how to retry after ErrOutcomeUnknown. Changing any
// parameter under the same number fails (ErrInvalidRequest or
// ErrOutTradeNoUsed); a paid order answers ErrOrderPaid and a closed one
// ErrOrderClosed.
func (c *Client) UnifiedOrder(ctx context.Context, req *UnifiedOrderRequest) (*UnifiedOrderResponse, error) {
	r, err := c.call(ctx, epUnifiedOrder, func(e *encoder) { req.encode(e, c.cfg.NotifyURL) })
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &UnifiedOrderResponse{
		TradeType: wxpay.TradeType(d.str("trade_type")), PrepayID: d.str("prepay_id"),
		CodeURL: d.str("code_url"), MWebURL: d.str("mweb_url"), DeviceInfo: d.str("device_info"),
	}
	out.Envelope.decode(d)
	if out.PrepayID == "" && out.CodeURL == "" && out.MWebURL == "" {
		return nil, &Error{API: epUnifiedOrder.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true,
			Err: errAnswer("no prepay_id in a successful answer")}
	}
	return out, nil
}

// OrderQueryRequest names the order to query: TransactionID wins when both
// are set.
type OrderQueryRequest struct {
	TransactionID string
	OutTradeNo    string
}

// OrderQueryResponse is the state of an order (protocol.md §5.2). For an
// unpaid order the payment fields may be empty.
type OrderQueryResponse struct {
	Envelope
	Payment
	TradeState     wxpay.TradeState
	TradeStateDesc string
}

// OrderQuery asks WeChat for the state of an order (查询订单, POST
// /pay/orderquery). It is how to settle any ErrOutcomeUnknown and any
// order whose notify did not arrive. ErrOrderNotExist means WeChat never
// accepted the order.
func (c *Client) OrderQuery(ctx context.Context, req *OrderQueryRequest) (*OrderQueryResponse, error) {
	r, err := c.call(ctx, epOrderQuery, func(e *encoder) {
		e.require(req.TransactionID != "" || req.OutTradeNo != "", "orderquery: TransactionID or OutTradeNo is required")
		e.str("transaction_id", req.TransactionID)
		e.str("out_trade_no", req.OutTradeNo)
	})
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &OrderQueryResponse{TradeState: wxpay.TradeState(d.str("trade_state")), TradeStateDesc: d.str("trade_state_desc")}
	out.Envelope.decode(d)
	out.Payment.decode(d)
	if d.err != nil {
		return nil, &Error{API: epOrderQuery.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: d.err}
	}
	if !out.TradeState.Valid() {
		return nil, &Error{API: epOrderQuery.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true,
			Err: errAnswer("unknown trade_state " + string(out.TradeState))}
	}
	return out, nil
}

// CloseOrderResponse is the answer to closeorder.
type CloseOrderResponse struct {
	Envelope
	ResultMsg string
}

// CloseOrder closes an unpaid order (关闭订单, POST /pay/closeorder). WeChat
// refuses it within 5 minutes of unifiedorder. ErrOrderPaid means the user
// paid after all: query and treat the order as paid. ErrOrderClosed means it
// is already closed. Only a nil error means the order is closed.
func (c *Client) CloseOrder(ctx context.Context, outTradeNo string) (*CloseOrderResponse, error) {
	r, err := c.call(ctx, epCloseOrder, func(e *encoder) {
		e.require(outTradeNo != "", "closeorder: out_trade_no is required")
		e.str("out_trade_no", outTradeNo)
	})
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &CloseOrderResponse{ResultMsg: d.str("result_msg")}
	out.Envelope.decode(d)
	return out, nil
}

// errAnswer is an answer that is signed and successful but does not make
// sense; the outcome is then unknown.
type errAnswer string

func (e errAnswer) Error() string { return "unexpected answer: " + string(e) }
