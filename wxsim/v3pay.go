package wxsim

import (
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// v3PaySignType is the signType of the APIv3 mini-program pay parameters
// (protocol.md §13.5); v3 orders carry it as their sign type.
const v3PaySignType = "RSA"

// The JSON of the v3 prepay requests (protocol.md §13.6): unknown fields
// are refused.
type v3PrepayReq struct {
	AppID         string       `json:"appid"`
	MchID         string       `json:"mchid"`
	Description   string       `json:"description"`
	OutTradeNo    string       `json:"out_trade_no"`
	TimeExpire    string       `json:"time_expire,omitempty"`
	Attach        string       `json:"attach,omitempty"`
	NotifyURL     string       `json:"notify_url"`
	GoodsTag      string       `json:"goods_tag,omitempty"`
	SupportFapiao *bool        `json:"support_fapiao,omitempty"`
	Amount        *v3ReqAmount `json:"amount"`
	Payer         *v3ReqPayer  `json:"payer,omitempty"`
	Detail        *v3ReqDetail `json:"detail,omitempty"`
	SceneInfo     *v3ReqScene  `json:"scene_info,omitempty"`
	SettleInfo    *v3ReqSettle `json:"settle_info,omitempty"`
}

type v3ReqAmount struct {
	Total    *int64 `json:"total"`
	Currency string `json:"currency,omitempty"`
}

type v3ReqPayer struct {
	OpenID string `json:"openid"`
}

type v3ReqDetail struct {
	CostPrice   *int64       `json:"cost_price,omitempty"`
	InvoiceID   string       `json:"invoice_id,omitempty"`
	GoodsDetail []v3ReqGoods `json:"goods_detail,omitempty"`
}

type v3ReqGoods struct {
	MerchantGoodsID  string `json:"merchant_goods_id"`
	WechatpayGoodsID string `json:"wechatpay_goods_id,omitempty"`
	GoodsName        string `json:"goods_name,omitempty"`
	Quantity         int64  `json:"quantity"`
	UnitPrice        int64  `json:"unit_price"`
}

type v3ReqScene struct {
	PayerClientIP string      `json:"payer_client_ip"`
	DeviceID      string      `json:"device_id,omitempty"`
	StoreInfo     *v3ReqStore `json:"store_info,omitempty"`
	H5Info        *v3ReqH5    `json:"h5_info,omitempty"`
}

type v3ReqStore struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	AreaCode string `json:"area_code,omitempty"`
	Address  string `json:"address,omitempty"`
}

type v3ReqH5 struct {
	Type        string `json:"type"`
	AppName     string `json:"app_name,omitempty"`
	AppURL      string `json:"app_url,omitempty"`
	BundleID    string `json:"bundle_id,omitempty"`
	PackageName string `json:"package_name,omitempty"`
}

type v3ReqSettle struct {
	ProfitSharing *bool `json:"profit_sharing,omitempty"`
}

// v3MchMismatch answers a request whose mchid is not the Authorization's.
func v3MchMismatch(got, signed string) v3Result {
	return v3Error("SIGN_ERROR", "请求中的商户号mchid与Authorization中的商户号不一致",
		&v3Detail{Field: "mchid", Location: "authorization", Issue: "mchid " + got + " is not the signing merchant " + signed})
}

// v3Prepay serves POST /v3/pay/transactions/{jsapi,native,app,h5}.
func (s *Simulator) v3Prepay(c *v3Call) v3Result {
	var req v3PrepayReq
	if res, ok := v3Decode(c.body, &req); !ok {
		return res
	}
	var tt wxpay.TradeType
	switch c.param {
	case "jsapi":
		tt = wxpay.TradeTypeJSAPI
	case "native":
		tt = wxpay.TradeTypeNative
	case "app":
		tt = wxpay.TradeTypeApp
	default:
		tt = wxpay.TradeTypeMWeb
	}
	switch {
	case req.AppID == "":
		return v3Missing("appid")
	case req.MchID == "":
		return v3Missing("mchid")
	case req.Description == "":
		return v3Missing("description")
	case req.OutTradeNo == "":
		return v3Missing("out_trade_no")
	case req.NotifyURL == "":
		return v3Missing("notify_url")
	case req.Amount == nil:
		return v3Missing("amount")
	case req.Amount.Total == nil:
		return v3Missing("amount.total")
	case tt == wxpay.TradeTypeJSAPI && (req.Payer == nil || req.Payer.OpenID == ""):
		return v3Missing("payer.openid")
	case tt == wxpay.TradeTypeMWeb && (req.SceneInfo == nil || req.SceneInfo.PayerClientIP == ""):
		return v3Missing("scene_info.payer_client_ip")
	case tt == wxpay.TradeTypeMWeb && (req.SceneInfo.H5Info == nil || req.SceneInfo.H5Info.Type == ""):
		return v3Missing("scene_info.h5_info.type")
	}
	if req.MchID != c.mchID {
		return v3MchMismatch(req.MchID, c.mchID)
	}
	m := c.vm.m
	if _, known := s.apps[req.AppID]; !known || !m.apps[req.AppID] {
		return v3Error("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配", nil)
	}
	if n := utf8.RuneCountInString(req.Description); n > 127 {
		return v3Invalid("body", "description", req.Description, "longer than 127 characters", "description长度超过127个字符")
	}
	if !validOutTradeNo(req.OutTradeNo) {
		return v3Invalid("body", "out_trade_no", req.OutTradeNo, "must be 6 to 32 of [0-9A-Za-z_-|*@]", "out_trade_no格式错误：须为6至32位数字、大小写字母或_-|*@")
	}
	if len(req.Attach) > 128 {
		return v3Invalid("body", "attach", nil, "longer than 128 bytes", "attach长度超过128")
	}
	if len(req.GoodsTag) > 32 {
		return v3Invalid("body", "goods_tag", req.GoodsTag, "longer than 32 bytes", "goods_tag长度超过32")
	}
	if len(req.NotifyURL) > 255 {
		return v3Invalid("body", "notify_url", nil, "longer than 255 bytes", "notify_url长度超过255")
	}
	if err := checkURL(req.NotifyURL, s.cfg.RequireHTTPSNotifyURL); err != nil {
		return v3Invalid("body", "notify_url", req.NotifyURL, err.Error(), "notify_url格式错误："+err.Error())
	}
	total := *req.Amount.Total
	if total <= 0 || total > 100_000_000_00 {
		return v3Invalid("body", "amount.total", total, "must be an integer number of fen above 0", "输入源“/body/amount/total”映射到值字段“总金额”规则校验失败，须为大于0的整数（单位：分）")
	}
	if req.Amount.Currency != "" && req.Amount.Currency != "CNY" {
		return v3Invalid("body", "amount.currency", req.Amount.Currency, "only CNY", "amount.currency仅支持CNY")
	}
	if tt != wxpay.TradeTypeJSAPI && req.Payer != nil {
		return v3Invalid("body", "payer", nil, "not a field of this API", "payer不是此接口的参数（仅JSAPI下单需要）")
	}
	var sceneIP, deviceID string
	if si := req.SceneInfo; si != nil {
		if si.PayerClientIP == "" {
			return v3Missing("scene_info.payer_client_ip")
		}
		if net.ParseIP(si.PayerClientIP) == nil {
			return v3Invalid("body", "scene_info.payer_client_ip", si.PayerClientIP, "not an IPv4 or IPv6 address", "payer_client_ip格式错误")
		}
		if len(si.DeviceID) > 32 {
			return v3Invalid("body", "scene_info.device_id", si.DeviceID, "longer than 32", "device_id长度超过32")
		}
		if si.H5Info != nil {
			switch si.H5Info.Type {
			case "iOS", "Android", "Wap":
			default:
				return v3Invalid("body", "scene_info.h5_info.type", si.H5Info.Type, "must be iOS, Android or Wap", "h5_info.type须为iOS、Android或Wap")
			}
		}
		sceneIP, deviceID = si.PayerClientIP, si.DeviceID
	}
	var expire time.Time
	if req.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, req.TimeExpire)
		if err != nil {
			return v3Invalid("body", "time_expire", req.TimeExpire, "not RFC 3339 (yyyy-MM-DDTHH:mm:ss+TIMEZONE)", "time_expire格式错误：须为rfc3339格式，如2018-06-08T10:34:56+08:00")
		}
		minExpire := s.cfg.MinExpire
		if minExpire == 0 {
			minExpire = 5 * time.Minute
		}
		if !t.After(c.now) || minExpire > 0 && t.Sub(c.now) < minExpire {
			return v3Invalid("body", "time_expire", req.TimeExpire, "too early", "time_expire时间过短，至少为下单后5分钟")
		}
		expire = t
	}
	openID := ""
	if tt == wxpay.TradeTypeJSAPI {
		openID = req.Payer.OpenID
		s.mu.Lock()
		app, known := s.openIDApp[openID]
		s.mu.Unlock()
		if !known || app != req.AppID {
			return v3Invalid("body", "payer.openid", openID, "the openid does not belong to the appid", "appid和openid不匹配")
		}
	}
	var detail, scene string
	if req.Detail != nil {
		detail = string(v3JSON(req.Detail))
	}
	if req.SceneInfo != nil {
		scene = string(v3JSON(req.SceneInfo))
	}
	key := "v3:" + c.param + ":" + string(v3JSON(req))
	b := m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := b.orders[req.OutTradeNo]; o != nil {
		o.refreshLocked(c.now)
		switch {
		case o.tradeType == wxpay.TradeTypeMicroPay:
			return v3Error("OUT_TRADE_NO_USED", "商户订单号重复", nil)
		case o.state == wxpay.TradeStateSuccess || o.state == wxpay.TradeStateRefund:
			return v3Error("ORDER_PAID", "该订单已支付", nil)
		case o.state == wxpay.TradeStateClosed || o.state == wxpay.TradeStateRevoked || o.state == wxpay.TradeStatePayError:
			return v3Error("ORDER_CLOSED", "该订单已关闭", nil)
		case o.params != key:
			if s.cfg.ReentryErrCode == "OUT_TRADE_NO_USED" {
				return v3Error("OUT_TRADE_NO_USED", "商户订单号重复", nil)
			}
			return v3Error("INVALID_REQUEST", "201 商户订单号重复：同一商户订单号的下单参数须与首次一致", nil)
		}
		if c.now.Sub(o.prepayAt) >= s.cfg.PrepayTTL {
			s.newPrepayLocked(&call{now: c.now}, o)
		}
		return v3OK(v3PrepayAnswer(o))
	}
	o := &order{
		b: b, appID: req.AppID, outTradeNo: req.OutTradeNo, tradeType: tt,
		state: wxpay.TradeStateNotPay, totalFee: total, feeType: "CNY",
		body: req.Description, detail: detail, attach: req.Attach, deviceInfo: deviceID, goodsTag: req.GoodsTag,
		openID: openID, notifyURL: req.NotifyURL, sceneInfo: scene, spbillIP: sceneIP,
		signType: v3PaySignType, params: key, timeExpire: expire, createdAt: c.now, v3: true,
	}
	s.newPrepayLocked(&call{now: c.now}, o)
	b.orders[o.outTradeNo] = o
	b.orderSeq = append(b.orderSeq, o)
	s.log.Info("wxsim: v3 order", "mch_id", m.cfg.MchID, "out_trade_no", o.outTradeNo, "trade_type", string(tt), "total", total)
	return v3OK(v3PrepayAnswer(o))
}

// v3PrepayAnswer is the body of a prepay answer.
func v3PrepayAnswer(o *order) any {
	switch o.tradeType {
	case wxpay.TradeTypeNative:
		return struct {
			CodeURL string `json:"code_url"`
		}{o.codeURL}
	case wxpay.TradeTypeMWeb:
		return struct {
			H5URL string `json:"h5_url"`
		}{"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=" + o.prepayID + "&package=" + randomString(digits, 10)}
	}
	return struct {
		PrepayID string `json:"prepay_id"`
	}{o.prepayID}
}

// v3Txn is a transaction as v3 queries answer and pay notifies carry it;
// the field order is vector D2's.
type v3Txn struct {
	MchID          string     `json:"mchid"`
	AppID          string     `json:"appid"`
	OutTradeNo     string     `json:"out_trade_no"`
	TransactionID  string     `json:"transaction_id,omitempty"`
	TradeType      string     `json:"trade_type,omitempty"`
	TradeState     string     `json:"trade_state"`
	TradeStateDesc string     `json:"trade_state_desc"`
	BankType       string     `json:"bank_type,omitempty"`
	Attach         string     `json:"attach"`
	SuccessTime    string     `json:"success_time,omitempty"`
	Payer          *v3Payer   `json:"payer,omitempty"`
	Amount         v3TxnAmt   `json:"amount"`
	SceneInfo      *v3TxnScen `json:"scene_info,omitempty"`
}

type v3Payer struct {
	OpenID string `json:"openid"`
}

type v3TxnAmt struct {
	Total         int64  `json:"total"`
	PayerTotal    *int64 `json:"payer_total,omitempty"`
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

type v3TxnScen struct {
	DeviceID string `json:"device_id"`
}

// v3Time formats t as v3 does: RFC 3339 in China Standard Time.
func v3Time(t time.Time) string { return t.In(wxpay.China).Format(time.RFC3339) }

// v3Transaction describes o. b.mu must be held.
func v3Transaction(o *order) v3Txn {
	t := v3Txn{
		MchID: o.b.m.cfg.MchID, AppID: o.appID, OutTradeNo: o.outTradeNo, TradeType: string(o.tradeType),
		TradeState: string(o.state), TradeStateDesc: tradeStateDesc(o.state), Attach: o.attach,
		Amount: v3TxnAmt{Total: o.totalFee, Currency: "CNY", PayerCurrency: "CNY"},
	}
	if !o.paidAt.IsZero() {
		paid := o.totalFee
		t.TransactionID, t.BankType, t.SuccessTime = o.transactionID, o.bankType, v3Time(o.paidAt)
		t.Payer = &v3Payer{OpenID: o.payerOpenID}
		t.Amount.PayerTotal = &paid
	}
	if o.deviceInfo != "" {
		t.SceneInfo = &v3TxnScen{DeviceID: o.deviceInfo}
	}
	return t
}

// v3QueryMchID checks the mchid query parameter.
func v3QueryMchID(c *v3Call) (v3Result, bool) {
	got := c.r.URL.Query().Get("mchid")
	if got == "" {
		return v3Error("PARAM_ERROR", "输入源“/query/mchid”映射到值字段“直连商户号”必填性规则校验失败，此字段为必填项",
			&v3Detail{Field: "mchid", Location: "query", Issue: "required"}), false
	}
	if got != c.mchID {
		return v3MchMismatch(got, c.mchID), false
	}
	return v3Result{}, true
}

// v3QueryByID serves GET /v3/pay/transactions/id/{transaction_id}.
func (s *Simulator) v3QueryByID(c *v3Call) v3Result {
	if res, ok := v3QueryMchID(c); !ok {
		return res
	}
	if len(c.param) > 32 || !isDigits(c.param) {
		return v3Invalid("path", "transaction_id", c.param, "not a transaction id", "transaction_id格式错误")
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.byTxn[c.param]
	if o == nil {
		return v3Error("ORDER_NOT_EXIST", "订单不存在", nil)
	}
	o.refreshLocked(c.now)
	return v3OK(v3Transaction(o))
}

// v3QueryByOut serves GET /v3/pay/transactions/out-trade-no/{out_trade_no}.
func (s *Simulator) v3QueryByOut(c *v3Call) v3Result {
	if res, ok := v3QueryMchID(c); !ok {
		return res
	}
	if len(c.param) > 32 {
		return v3Invalid("path", "out_trade_no", c.param, "longer than 32", "out_trade_no长度超过32")
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.orders[c.param]
	if o == nil {
		return v3Error("ORDER_NOT_EXIST", "订单不存在", nil)
	}
	o.refreshLocked(c.now)
	return v3OK(v3Transaction(o))
}

// v3Close serves POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close:
// 204 No Content.
func (s *Simulator) v3Close(c *v3Call) v3Result {
	var req struct {
		MchID string `json:"mchid"`
	}
	if res, ok := v3Decode(c.body, &req); !ok {
		return res
	}
	if req.MchID == "" {
		return v3Missing("mchid")
	}
	if req.MchID != c.mchID {
		return v3MchMismatch(req.MchID, c.mchID)
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.orders[c.param]
	if o == nil {
		return v3Error("ORDER_NOT_EXIST", "订单不存在", nil)
	}
	o.refreshLocked(c.now)
	switch o.state {
	case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
		return v3Error("ORDER_PAID", "订单已支付，不能关闭", nil)
	case wxpay.TradeStateClosed, wxpay.TradeStateRevoked, wxpay.TradeStatePayError:
		return v3Error("ORDER_CLOSED", "订单已关闭", nil)
	}
	if o.tradeType == wxpay.TradeTypeMicroPay {
		return v3Error("TRADE_ERROR", "付款码支付订单不能关单，请调用撤销订单", nil)
	}
	if min := s.cfg.CloseMinAge; min > 0 && c.now.Sub(o.createdAt) < min {
		return v3Error("INVALID_REQUEST", "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟", nil)
	}
	o.state = wxpay.TradeStateClosed
	o.closedAt = c.now
	return v3Result{status: http.StatusNoContent}
}

// userPaysFirstV3 is FaultUserPaysFirst for v3_close: the order the close
// names is paid just before the close is served.
func (s *Simulator) userPaysFirstV3(c *v3Call) {
	if c.ep.name != "v3_close" {
		return
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.orders[c.param]
	if o == nil {
		return
	}
	o.refreshLocked(c.now)
	if o.state != wxpay.TradeStateNotPay {
		return
	}
	s.mu.Lock()
	payer := s.byOpenID[o.openID]
	if payer == nil {
		for _, u := range s.users {
			if u.balance >= o.totalFee && u.first != "sandbox" {
				payer = u
				break
			}
		}
	}
	var openID string
	if payer != nil {
		openID = s.openIDForLocked(payer, o.appID)
	}
	s.mu.Unlock()
	if payer != nil {
		s.payLocked(o, payer, openID, c.now)
	}
}

// requestPaymentV3 is RequestPayment for signType RSA (protocol.md
// §13.5): paySign must be the merchant API key's SHA256withRSA over
// "appId\ntimeStamp\nnonceStr\nprepay_id=…\n", verified with the
// merchant's registered certificate(s), and the order must come from a v3
// prepay.
func (s *Simulator) requestPaymentV3(req PaymentRequest, prepayID string) PaymentResult {
	s.mu.Lock()
	ref, known := s.prepays[prepayID]
	payer := s.byOpenID[req.OpenID]
	s.mu.Unlock()
	if !known {
		return payFail("prepay_id %s 不存在 (unknown prepay_id)", prepayID)
	}
	b, o := ref.b, ref.o
	now := s.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	appID := req.AppID
	if appID == "" {
		appID = o.appID
	}
	if appID != o.appID {
		return payFail("appId %s 与下单的 appid %s 不一致 (the prepay_id belongs to another app)", appID, o.appID)
	}
	if o.tradeType != wxpay.TradeTypeJSAPI {
		return payFail("trade_type %s 的订单不能用 wx.requestPayment 支付 (only JSAPI orders)", o.tradeType)
	}
	if o.signType != v3PaySignType {
		return payFail("支付验证签名失败 (signType RSA is for APIv3 prepay_ids; this one comes from the v2 unifiedorder with sign_type %s)", o.signType)
	}
	vm := s.v3Merchant(b.m.cfg.MchID)
	verified := false
	for _, k := range vm.merchantKeys() {
		if wxcrypto.VerifyMiniProgramPaySignV3(k, appID, req.TimeStamp, req.NonceStr, prepayID, req.PaySign) == nil {
			verified = true
			break
		}
	}
	if !verified {
		msg := appID + "\\n" + req.TimeStamp + "\\n" + req.NonceStr + "\\n" + req.Package + "\\n"
		s.log.Info("wxsim: bad v3 paySign", "mch_id", b.m.cfg.MchID, "out_trade_no", o.outTradeNo, "signed_string", msg)
		return payFail("支付验证签名失败 (paySign does not verify: it must be base64 SHA256withRSA by the merchant API private key over %q, checked with the merchant's registered API certificate)", msg)
	}
	if prepayID != o.prepayID || now.Sub(o.prepayAt) >= s.cfg.PrepayTTL {
		return payFail("prepay_id 已失效，请重新下单 (expired prepay_id)")
	}
	if payer == nil {
		return payFail("用户不存在 (unknown openid %q)", req.OpenID)
	}
	return s.payByUserLocked(o, payer, req.Outcome, now, "requestPayment")
}
