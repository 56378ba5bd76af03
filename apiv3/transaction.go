package apiv3

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
)

var (
	epPrepayJSAPI  = &endpoint{name: "prepay-jsapi", method: "POST", safe: safeDialErr}
	epPrepayNative = &endpoint{name: "prepay-native", method: "POST", safe: safeDialErr}
	epPrepayApp    = &endpoint{name: "prepay-app", method: "POST", safe: safeDialErr}
	epPrepayH5     = &endpoint{name: "prepay-h5", method: "POST", safe: safeDialErr}
	epQueryByID    = &endpoint{name: "query-by-transaction-id", method: "GET", safe: safeAlways}
	epQueryByOut   = &endpoint{name: "query-by-out-trade-no", method: "GET", safe: safeAlways}
	epClose        = &endpoint{name: "close", method: "POST", safe: safeDialErr}
)

// CurrencyCNY is the only currency of domestic WeChat Pay, and the default.
const CurrencyCNY = "CNY"

// PrepayRequest is an order (protocol.md §13.6, POST
// /v3/pay/transactions/{jsapi,native,app,h5}). Amounts are int64 fen.
type PrepayRequest struct {
	AppID       string // the app; default Config.AppID
	Description string // what is sold, at most 127 characters; required
	OutTradeNo  string // your order number: 6–32 of [0-9A-Za-z_-|*@], unique per merchant; required
	Total       int64  // amount.total in fen, > 0; required
	Currency    string // amount.currency; default CNY
	NotifyURL   string // default Config.NotifyURL; absolute, no query string
	// OpenID is payer.openid: the payer's openid under AppID (from the
	// mini program's login, jscode2session). Required for JSAPI, refused by
	// the other kinds.
	OpenID        string
	TimeExpire    time.Time // sent as RFC 3339 in China Standard Time
	Attach        string    // echoed in queries and notifies, at most 128 bytes
	GoodsTag      string
	SupportFapiao bool
	ProfitSharing bool // settle_info.profit_sharing
	Detail        *OrderDetail
	// SceneInfo is required for H5, with PayerClientIP and H5Info.Type.
	SceneInfo *SceneInfo
}

// OrderDetail is the detail of an order (优惠功能).
type OrderDetail struct {
	CostPrice   int64         `json:"cost_price,omitempty"`
	InvoiceID   string        `json:"invoice_id,omitempty"`
	GoodsDetail []GoodsDetail `json:"goods_detail,omitempty"`
}

// GoodsDetail is one line of an OrderDetail.
type GoodsDetail struct {
	MerchantGoodsID  string `json:"merchant_goods_id"`
	WechatpayGoodsID string `json:"wechatpay_goods_id,omitempty"`
	GoodsName        string `json:"goods_name,omitempty"`
	Quantity         int64  `json:"quantity"`
	UnitPrice        int64  `json:"unit_price"` // fen
}

// SceneInfo describes where the payer is.
type SceneInfo struct {
	PayerClientIP string     `json:"payer_client_ip"`
	DeviceID      string     `json:"device_id,omitempty"`
	StoreInfo     *StoreInfo `json:"store_info,omitempty"`
	H5Info        *H5Info    `json:"h5_info,omitempty"`
}

// StoreInfo is the shop of a SceneInfo.
type StoreInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	AreaCode string `json:"area_code,omitempty"`
	Address  string `json:"address,omitempty"`
}

// H5Info is the H5 scene: Type is Wap, iOS or Android.
type H5Info struct {
	Type        string `json:"type"`
	AppName     string `json:"app_name,omitempty"`
	AppURL      string `json:"app_url,omitempty"`
	BundleID    string `json:"bundle_id,omitempty"`
	PackageName string `json:"package_name,omitempty"`
}

type prepayWire struct {
	AppID         string       `json:"appid"`
	MchID         string       `json:"mchid"`
	Description   string       `json:"description"`
	OutTradeNo    string       `json:"out_trade_no"`
	TimeExpire    string       `json:"time_expire,omitempty"`
	Attach        string       `json:"attach,omitempty"`
	NotifyURL     string       `json:"notify_url"`
	GoodsTag      string       `json:"goods_tag,omitempty"`
	SupportFapiao bool         `json:"support_fapiao,omitempty"`
	Amount        amountWire   `json:"amount"`
	Payer         *payerWire   `json:"payer,omitempty"`
	Detail        *OrderDetail `json:"detail,omitempty"`
	SceneInfo     *SceneInfo   `json:"scene_info,omitempty"`
	SettleInfo    *settleWire  `json:"settle_info,omitempty"`
}

type amountWire struct {
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
}

type payerWire struct {
	OpenID string `json:"openid"`
}

type settleWire struct {
	ProfitSharing bool `json:"profit_sharing"`
}

// encode checks the request and builds the body for a kind of order.
func (r *PrepayRequest) encode(c *Client, kind wxpay.TradeType) ([]byte, error) {
	appID := r.AppID
	if appID == "" {
		appID = c.cfg.AppID
	}
	notify := r.NotifyURL
	if notify == "" {
		notify = c.cfg.NotifyURL
	}
	currency := r.Currency
	if currency == "" {
		currency = CurrencyCNY
	}
	switch {
	case appID == "":
		return nil, invalid("AppID is required (in the request or the Config)")
	case r.Description == "" || utf8.RuneCountInString(r.Description) > 127:
		return nil, invalid("Description is required and at most 127 characters")
	case r.Total <= 0:
		return nil, invalid("Total must be > 0 fen, is %d", r.Total)
	case notify == "":
		return nil, invalid("NotifyURL is required (in the request or the Config)")
	case kind == wxpay.TradeTypeJSAPI && r.OpenID == "":
		return nil, invalid("OpenID (payer.openid) is required for JSAPI")
	case kind != wxpay.TradeTypeJSAPI && r.OpenID != "":
		return nil, invalid("OpenID is only for JSAPI orders")
	case kind == wxpay.TradeTypeMWeb && (r.SceneInfo == nil || r.SceneInfo.PayerClientIP == "" || r.SceneInfo.H5Info == nil || r.SceneInfo.H5Info.Type == ""):
		return nil, invalid("H5 orders need SceneInfo.PayerClientIP and SceneInfo.H5Info.Type")
	case len(r.Attach) > 128:
		return nil, invalid("Attach has %d bytes, at most 128", len(r.Attach))
	}
	if err := sdkhttp.CheckNotifyURL(notify); err != nil {
		return nil, invalid("%v", err)
	}
	if err := checkOutNo("OutTradeNo", r.OutTradeNo, 6, 32); err != nil {
		return nil, err
	}
	w := prepayWire{
		AppID: appID, MchID: c.cfg.MchID, Description: r.Description, OutTradeNo: r.OutTradeNo,
		Attach: r.Attach, NotifyURL: notify, GoodsTag: r.GoodsTag, SupportFapiao: r.SupportFapiao,
		Amount: amountWire{Total: r.Total, Currency: currency}, Detail: r.Detail, SceneInfo: r.SceneInfo,
	}
	if !r.TimeExpire.IsZero() {
		w.TimeExpire = formatTime(r.TimeExpire)
	}
	if r.OpenID != "" {
		w.Payer = &payerWire{OpenID: r.OpenID}
	}
	if r.ProfitSharing {
		w.SettleInfo = &settleWire{ProfitSharing: true}
	}
	return json.Marshal(&w)
}

// formatTime writes a time as WeChat does: RFC 3339 in China Standard Time.
func formatTime(t time.Time) string { return t.In(wxpay.China).Format(time.RFC3339) }

// checkOutNo checks a merchant number (out_trade_no, out_refund_no): its
// length and WeChat's characters.
func checkOutNo(name, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		return invalid("%s %q must have %d to %d characters", name, s, min, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c == '_' || c == '-' || c == '|' || c == '*' || c == '@') {
			return invalid("%s %q may hold only digits, letters and _ - | * @", name, s)
		}
	}
	return nil
}

// PrepayResponse is the answer of a JSAPI or App order.
type PrepayResponse struct {
	PrepayID string `json:"prepay_id"` // valid 2 hours; sign it with MiniProgramPayParams
}

// NativePrepayResponse is the answer of a Native order.
type NativePrepayResponse struct {
	CodeURL string `json:"code_url"` // weixin://wxpay/bizpayurl?pr=…: show it as a QR code
}

// H5PrepayResponse is the answer of an H5 order.
type H5PrepayResponse struct {
	H5URL string `json:"h5_url"` // open it in the payer's browser
}

func (c *Client) prepay(ctx context.Context, ep *endpoint, path string, kind wxpay.TradeType, req *PrepayRequest, out any, field func() string) error {
	if req == nil {
		return &Error{API: ep.name, Err: invalid("nil request")}
	}
	body, err := req.encode(c, kind)
	if err != nil {
		return &Error{API: ep.name, Err: err}
	}
	a, err := c.call(ctx, ep, path, body, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(a.body, out); err != nil || field() == "" {
		return &Error{API: ep.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID), Unknown: true,
			Err: errString("answer does not hold the expected id")}
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// PrepayJSAPI places a JSAPI order — mini-program pay and in-WeChat web pay
// (JSAPI下单, POST /v3/pay/transactions/jsapi; protocol.md §13.6). OpenID is
// required. Sign the prepay id for wx.requestPayment with
// MiniProgramPayParams. On ErrOutcomeUnknown, retry with identical
// parameters (same OutTradeNo) or query.
func (c *Client) PrepayJSAPI(ctx context.Context, req *PrepayRequest) (*PrepayResponse, error) {
	var r PrepayResponse
	if err := c.prepay(ctx, epPrepayJSAPI, "/v3/pay/transactions/jsapi", wxpay.TradeTypeJSAPI, req, &r, func() string { return r.PrepayID }); err != nil {
		return nil, err
	}
	return &r, nil
}

// PrepayNative places a Native (QR code) order (Native下单, POST
// /v3/pay/transactions/native; protocol.md §13.6) and returns the code_url.
func (c *Client) PrepayNative(ctx context.Context, req *PrepayRequest) (*NativePrepayResponse, error) {
	var r NativePrepayResponse
	if err := c.prepay(ctx, epPrepayNative, "/v3/pay/transactions/native", wxpay.TradeTypeNative, req, &r, func() string { return r.CodeURL }); err != nil {
		return nil, err
	}
	return &r, nil
}

// PrepayApp places an App order (APP下单, POST /v3/pay/transactions/app;
// protocol.md §13.6).
func (c *Client) PrepayApp(ctx context.Context, req *PrepayRequest) (*PrepayResponse, error) {
	var r PrepayResponse
	if err := c.prepay(ctx, epPrepayApp, "/v3/pay/transactions/app", wxpay.TradeTypeApp, req, &r, func() string { return r.PrepayID }); err != nil {
		return nil, err
	}
	return &r, nil
}

// PrepayH5 places an H5 order, for browsers outside WeChat (H5下单, POST
// /v3/pay/transactions/h5; protocol.md §13.6). SceneInfo with PayerClientIP
// and H5Info.Type is required.
func (c *Client) PrepayH5(ctx context.Context, req *PrepayRequest) (*H5PrepayResponse, error) {
	var r H5PrepayResponse
	if err := c.prepay(ctx, epPrepayH5, "/v3/pay/transactions/h5", wxpay.TradeTypeMWeb, req, &r, func() string { return r.H5URL }); err != nil {
		return nil, err
	}
	return &r, nil
}

// Transaction is an order as WeChat Pay reports it, in a query answer or a
// payment notify's resource (protocol.md §13.6). It is decoded strictly:
// amounts must be JSON integers ≥ 0 (amount.total > 0), a key may not
// repeat (reliability.md X10).
type Transaction struct {
	AppID          string            `json:"appid"`
	MchID          string            `json:"mchid"`
	OutTradeNo     string            `json:"out_trade_no"`
	TransactionID  string            `json:"transaction_id,omitempty"` // absent before payment
	TradeType      wxpay.TradeType   `json:"trade_type,omitempty"`     // JSAPI, NATIVE, APP, MWEB, MICROPAY, FACEPAY
	TradeState     wxpay.TradeState  `json:"trade_state"`
	TradeStateDesc string            `json:"trade_state_desc,omitempty"`
	BankType       string            `json:"bank_type,omitempty"`
	Attach         string            `json:"attach,omitempty"`
	SuccessTime    time.Time         `json:"success_time"` // zero before payment
	Payer          Payer             `json:"payer"`
	Amount         TransactionAmount `json:"amount"`
	SceneInfo      *TransactionScene `json:"scene_info,omitempty"`
	Promotions     []Promotion       `json:"promotion_detail,omitempty"`
}

// Paid reports whether the transaction says the money was taken (SUCCESS,
// or REFUND after a successful payment). Before marking an order paid,
// also compare MchID, AppID, OutTradeNo and Amount.Total with your order
// (reliability.md A2): compare the order total, not PayerTotal, which
// coupons lower.
func (t *Transaction) Paid() bool { return t.TradeState.Paid() }

// Payer is the payer of a transaction.
type Payer struct {
	OpenID string `json:"openid"`
}

// TransactionAmount is the amount of a transaction, in fen.
type TransactionAmount struct {
	Total         int64  `json:"total"`       // the order total
	PayerTotal    int64  `json:"payer_total"` // what the payer paid (after coupons)
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

// TransactionScene is the scene of a transaction.
type TransactionScene struct {
	DeviceID string `json:"device_id"`
}

// Promotion is one coupon or discount of a transaction.
type Promotion struct {
	CouponID            string           `json:"coupon_id"`
	Name                string           `json:"name,omitempty"`
	Scope               string           `json:"scope,omitempty"` // GLOBAL or SINGLE
	Type                string           `json:"type,omitempty"`  // CASH or NOCASH
	Amount              int64            `json:"amount"`
	StockID             string           `json:"stock_id,omitempty"`
	WechatpayContribute int64            `json:"wechatpay_contribute"`
	MerchantContribute  int64            `json:"merchant_contribute"`
	OtherContribute     int64            `json:"other_contribute"`
	Currency            string           `json:"currency,omitempty"`
	GoodsDetail         []PromotionGoods `json:"goods_detail,omitempty"`
}

// PromotionGoods is one line of a Promotion.
type PromotionGoods struct {
	GoodsID        string `json:"goods_id"`
	Quantity       int64  `json:"quantity"`
	UnitPrice      int64  `json:"unit_price"`
	DiscountAmount int64  `json:"discount_amount"`
	GoodsRemark    string `json:"goods_remark,omitempty"`
}

// nonNegative reads an integer that must be ≥ 0.
func nonNegative(d *jdec, dst *int64) error {
	start := d.i
	n, err := d.int64()
	if err != nil {
		return err
	}
	if n < 0 {
		d.i = start
		return d.fail("negative amount")
	}
	*dst = n
	return nil
}

func (t *Transaction) field(d *jdec, key string) (err error) {
	switch key {
	case "appid":
		t.AppID, err = d.str()
	case "mchid":
		t.MchID, err = d.str()
	case "out_trade_no":
		t.OutTradeNo, err = d.str()
	case "transaction_id":
		t.TransactionID, err = d.str()
	case "trade_type":
		var s string
		s, err = d.str()
		t.TradeType = wxpay.TradeType(s)
	case "trade_state":
		var s string
		s, err = d.str()
		t.TradeState = wxpay.TradeState(s)
	case "trade_state_desc":
		t.TradeStateDesc, err = d.str()
	case "bank_type":
		t.BankType, err = d.str()
	case "attach":
		t.Attach, err = d.str()
	case "success_time":
		t.SuccessTime, err = d.timeValue()
	case "payer":
		err = d.object(func(d *jdec, key string) (err error) {
			if key == "openid" {
				t.Payer.OpenID, err = d.str()
				return err
			}
			return d.skip()
		})
	case "amount":
		err = d.object(t.Amount.field)
	case "scene_info":
		t.SceneInfo = new(TransactionScene)
		err = d.object(func(d *jdec, key string) (err error) {
			if key == "device_id" {
				t.SceneInfo.DeviceID, err = d.str()
				return err
			}
			return d.skip()
		})
	case "promotion_detail":
		err = d.array(func(d *jdec) error {
			var p Promotion
			if err := d.object(p.field); err != nil {
				return err
			}
			t.Promotions = append(t.Promotions, p)
			return nil
		})
	default:
		err = d.skip()
	}
	return err
}

func (a *TransactionAmount) field(d *jdec, key string) (err error) {
	switch key {
	case "total":
		return nonNegative(d, &a.Total)
	case "payer_total":
		return nonNegative(d, &a.PayerTotal)
	case "currency":
		a.Currency, err = d.str()
	case "payer_currency":
		a.PayerCurrency, err = d.str()
	default:
		err = d.skip()
	}
	return err
}

func (p *Promotion) field(d *jdec, key string) (err error) {
	switch key {
	case "coupon_id":
		p.CouponID, err = d.str()
	case "name":
		p.Name, err = d.str()
	case "scope":
		p.Scope, err = d.str()
	case "type":
		p.Type, err = d.str()
	case "amount":
		return nonNegative(d, &p.Amount)
	case "stock_id":
		p.StockID, err = d.str()
	case "wechatpay_contribute":
		return nonNegative(d, &p.WechatpayContribute)
	case "merchant_contribute":
		return nonNegative(d, &p.MerchantContribute)
	case "other_contribute":
		return nonNegative(d, &p.OtherContribute)
	case "currency":
		p.Currency, err = d.str()
	case "goods_detail":
		err = d.array(func(d *jdec) error {
			var g PromotionGoods
			err := d.object(func(d *jdec, key string) (err error) {
				switch key {
				case "goods_id":
					g.GoodsID, err = d.str()
				case "quantity":
					return nonNegative(d, &g.Quantity)
				case "unit_price":
					return nonNegative(d, &g.UnitPrice)
				case "discount_amount":
					return nonNegative(d, &g.DiscountAmount)
				case "goods_remark":
					g.GoodsRemark, err = d.str()
				default:
					err = d.skip()
				}
				return err
			})
			p.GoodsDetail = append(p.GoodsDetail, g)
			return err
		})
	default:
		err = d.skip()
	}
	return err
}

// check refuses a transaction that misses what every transaction has.
func (t *Transaction) check() error {
	switch {
	case t.MchID == "" || t.OutTradeNo == "" || t.TradeState == "":
		return &jsonError{msg: "transaction without mchid, out_trade_no or trade_state"}
	case t.Amount.Total <= 0 && t.TradeState.Paid():
		return &jsonError{msg: "paid transaction without a positive amount.total"}
	case t.TradeState.Paid() && t.TransactionID == "":
		return &jsonError{msg: "paid transaction without transaction_id"}
	}
	return nil
}

// decodeTransaction decodes and checks a transaction document.
func decodeTransaction(s string) (*Transaction, error) {
	t := new(Transaction)
	if err := decodeObject(s, t.field); err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// QueryByTransactionID queries an order by WeChat's transaction id (微信支付
// 订单号查询订单, GET /v3/pay/transactions/id/{transaction_id}?mchid=…;
// protocol.md §13.6).
func (c *Client) QueryByTransactionID(ctx context.Context, transactionID string) (*Transaction, error) {
	if transactionID == "" || len(transactionID) > 64 {
		return nil, &Error{API: epQueryByID.name, Err: invalid("transaction id %q", transactionID)}
	}
	return c.query(ctx, epQueryByID, "/v3/pay/transactions/id/"+url.PathEscape(transactionID)+"?mchid="+url.QueryEscape(c.cfg.MchID))
}

// QueryByOutTradeNo queries an order by your order number (商户订单号查询
// 订单, GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…;
// protocol.md §13.6). ErrOrderNotExist means WeChat has no such order.
func (c *Client) QueryByOutTradeNo(ctx context.Context, outTradeNo string) (*Transaction, error) {
	if err := checkOutNo("OutTradeNo", outTradeNo, 1, 32); err != nil {
		return nil, &Error{API: epQueryByOut.name, Err: err}
	}
	return c.query(ctx, epQueryByOut, "/v3/pay/transactions/out-trade-no/"+url.PathEscape(outTradeNo)+"?mchid="+url.QueryEscape(c.cfg.MchID))
}

func (c *Client) query(ctx context.Context, ep *endpoint, path string) (*Transaction, error) {
	a, err := c.call(ctx, ep, path, nil, "")
	if err != nil {
		return nil, err
	}
	return decodeAnswer(ep, a, decodeTransaction)
}

// CloseOrder closes an unpaid order (关闭订单, POST
// /v3/pay/transactions/out-trade-no/{out_trade_no}/close; protocol.md
// §13.6): WeChat answers 204 No Content. Mark the order closed only when
// this returns nil; on ErrOutcomeUnknown query first (reliability.md C2).
func (c *Client) CloseOrder(ctx context.Context, outTradeNo string) error {
	if err := checkOutNo("OutTradeNo", outTradeNo, 1, 32); err != nil {
		return &Error{API: epClose.name, Err: err}
	}
	body, _ := json.Marshal(struct {
		MchID string `json:"mchid"`
	}{c.cfg.MchID})
	_, err := c.call(ctx, epClose, "/v3/pay/transactions/out-trade-no/"+url.PathEscape(outTradeNo)+"/close", body, "")
	return err
}
