package wxsim

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// book is one merchant's ledger in one environment (production or
// sandbox): its orders and refunds. Lock order: book.mu, then
// Simulator.mu.
type book struct {
	m       *merchant
	sandbox bool

	mu         sync.Mutex
	orders     map[string]*order // by out_trade_no
	byTxn      map[string]*order // by transaction_id
	refunds    map[string]*refund
	byRefundID map[string]*refund
	orderSeq   []*order // in creation order
	bills      map[string][]byte
}

func newBook(m *merchant, sandbox bool) *book {
	return &book{
		m: m, sandbox: sandbox,
		orders:     make(map[string]*order),
		byTxn:      make(map[string]*order),
		refunds:    make(map[string]*refund),
		byRefundID: make(map[string]*refund),
		bills:      make(map[string][]byte),
	}
}

// key returns the key the book's answers and notifies are signed with.
func (b *book) key() string {
	if b.sandbox {
		return b.m.sandboxKey
	}
	return b.m.cfg.APIKey
}

// order is one WeChat order (unifiedorder or micropay).
type order struct {
	b          *book
	appID      string
	outTradeNo string
	tradeType  wxpay.TradeType
	state      wxpay.TradeState
	totalFee   int64
	feeType    string
	body       string
	detail     string
	attach     string
	deviceInfo string
	goodsTag   string
	limitPay   string
	productID  string
	openID     string // the openid named in the order (JSAPI)
	notifyURL  string
	sceneInfo  string
	spbillIP   string
	signType   wxpay.SignType
	params     string // the parameters compared on re-entry
	timeStart  time.Time
	timeExpire time.Time // zero: none

	createdAt time.Time
	prepayID  string
	prepayAt  time.Time
	codeURL   string

	transactionID string
	payer         *user
	payerOpenID   string
	bankType      string
	paidAt        time.Time
	closedAt      time.Time
	revokedAt     time.Time
	wasPaid       bool // money was taken at some point (a reversed payment)

	authCode      string
	userPayingJob *task

	refunds  []*refund
	refunded int64 // the sum of refunds not closed

	v3 bool // placed through APIv3: its pay notify is a v3 notify
}

// orderRef points at an order in its book.
type orderRef struct {
	b *book
	o *order
}

// refreshLocked applies what time did to the order: past its time_expire an
// unpaid order is closed. b.mu must be held.
func (o *order) refreshLocked(now time.Time) {
	if o.state == wxpay.TradeStateNotPay && !o.timeExpire.IsZero() && !now.Before(o.timeExpire) {
		o.state = wxpay.TradeStateClosed
		o.closedAt = o.timeExpire
	}
}

// tradeStateDesc is the trade_state_desc WeChat gives each state.
func tradeStateDesc(s wxpay.TradeState) string {
	switch s {
	case wxpay.TradeStateSuccess:
		return "支付成功"
	case wxpay.TradeStateRefund:
		return "订单发生过退款，退款详情请查询退款单"
	case wxpay.TradeStateNotPay:
		return "订单未支付"
	case wxpay.TradeStateClosed:
		return "订单已关闭"
	case wxpay.TradeStateRevoked:
		return "订单已撤销"
	case wxpay.TradeStateUserPaying:
		return "需要用户输入支付密码"
	case wxpay.TradeStatePayError:
		return "支付失败，请重新下单支付"
	}
	return string(s)
}

// fieldRule is one request field's length limit (in bytes) and whether it
// is required.
type fieldRule struct {
	name     string
	max      int
	required bool
}

// checkFields checks presence (LACK_PARAMS, return_code=FAIL) and length
// (PARAM_ERROR) of fields.
func (s *Simulator) checkFields(c *call, rules []fieldRule) (result, bool) {
	for _, r := range rules {
		if r.required && c.get(r.name) == "" {
			return s.proto(c, "LACK_PARAMS", r.name), false
		}
	}
	for _, r := range rules {
		if v := c.get(r.name); len(v) > r.max {
			return bizErr("PARAM_ERROR", r.name+"参数长度有误"), false
		}
	}
	return result{}, true
}

// parseFee parses a fee in fen: digits only, no sign or leading zero, > 0.
func parseFee(v string) (int64, bool) {
	if !isDigits(v) || len(v) > 12 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n > 0
}

// parseCST parses yyyyMMddHHmmss in China Standard Time.
func parseCST(v string) (time.Time, bool) {
	if len(v) != 14 || !isDigits(v) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(layoutCompact, v, wxpay.China)
	return t, err == nil
}

// validOutTradeNo: 6 to 32 of digits, letters, _ - | * @.
func validOutTradeNo(v string) bool {
	return len(v) >= 6 && len(v) <= 32 && onlyChars(v, "_-|*@")
}

// validOutRefundNo: 1 to 64 of digits, letters, _ - | * @.
func validOutRefundNo(v string) bool {
	return len(v) >= 1 && len(v) <= 64 && onlyChars(v, "_-|*@")
}

func onlyChars(v, extra string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return false
	}
	return true
}

var unifiedOrderRules = []fieldRule{
	{"body", 128, true},
	{"out_trade_no", 32, true},
	{"total_fee", 12, true},
	{"spbill_create_ip", 64, true},
	{"notify_url", 256, true},
	{"trade_type", 16, true},
	{"nonce_str", 32, false},
	{"device_info", 32, false},
	{"detail", 6000, false},
	{"attach", 127, false},
	{"fee_type", 16, false},
	{"time_start", 14, false},
	{"time_expire", 14, false},
	{"goods_tag", 32, false},
	{"product_id", 32, false},
	{"limit_pay", 32, false},
	{"openid", 128, false},
	{"receipt", 8, false},
	{"profit_sharing", 16, false},
	{"scene_info", 256, false},
}

// reentryParams are the unifiedorder parameters that must not change when
// the same out_trade_no is submitted again.
var reentryParams = []string{
	"appid", "body", "detail", "attach", "fee_type", "total_fee", "time_start", "time_expire",
	"goods_tag", "notify_url", "trade_type", "product_id", "limit_pay", "openid", "device_info",
	"receipt", "profit_sharing", "scene_info",
}

func paramsKey(in message, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(in.get(n))
		b.WriteByte(0)
	}
	return b.String()
}

// checkCommonOrderFields validates the fields unifiedorder and micropay
// share.
func (s *Simulator) checkCommonOrderFields(c *call, minExpire time.Duration) (fee int64, start, expire time.Time, res result, good bool) {
	in := c.in
	if !validOutTradeNo(in.get("out_trade_no")) {
		return 0, start, expire, bizErr("PARAM_ERROR", "out_trade_no参数格式错误：须为6至32位数字、大小写字母或_-|*@"), false
	}
	fee, okFee := parseFee(in.get("total_fee"))
	if !okFee {
		return 0, start, expire, bizErr("PARAM_ERROR", "total_fee参数错误：须为大于0的整数，单位为分"), false
	}
	if ft := in.get("fee_type"); ft != "" && ft != "CNY" {
		return 0, start, expire, bizErr("PARAM_ERROR", "fee_type参数错误：仅支持CNY"), false
	}
	if net.ParseIP(in.get("spbill_create_ip")) == nil {
		return 0, start, expire, bizErr("PARAM_ERROR", "spbill_create_ip参数格式错误"), false
	}
	if v := in.get("time_start"); v != "" {
		t, okT := parseCST(v)
		if !okT {
			return 0, start, expire, bizErr("PARAM_ERROR", "time_start参数格式错误：须为yyyyMMddHHmmss"), false
		}
		start = t
	}
	if v := in.get("time_expire"); v != "" {
		t, okT := parseCST(v)
		if !okT {
			return 0, start, expire, bizErr("PARAM_ERROR", "time_expire参数格式错误：须为yyyyMMddHHmmss"), false
		}
		from := c.now
		if !start.IsZero() && start.After(from) {
			from = start
		}
		if minExpire >= 0 && t.Sub(from) < minExpire {
			return 0, start, expire, bizErr("PARAM_ERROR", "time_expire时间过短，刷卡至少1分钟，其他5分钟"), false
		}
		if !t.After(c.now) || (!start.IsZero() && !t.After(start)) {
			return 0, start, expire, bizErr("PARAM_ERROR", "time_expire时间过短，刷卡至少1分钟，其他5分钟"), false
		}
		expire = t
	}
	if v := in.get("limit_pay"); v != "" && v != "no_credit" {
		return 0, start, expire, bizErr("PARAM_ERROR", "limit_pay参数错误：仅支持no_credit"), false
	}
	if v := in.get("receipt"); v != "" && v != "Y" {
		return 0, start, expire, bizErr("PARAM_ERROR", "receipt参数错误：仅支持Y"), false
	}
	if v := in.get("profit_sharing"); v != "" && v != "Y" && v != "N" {
		return 0, start, expire, bizErr("PARAM_ERROR", "profit_sharing参数错误：仅支持Y或N"), false
	}
	for _, name := range []string{"detail", "scene_info"} {
		if v := in.get(name); v != "" && !json.Valid([]byte(v)) {
			return 0, start, expire, bizErr("PARAM_ERROR", name+"参数格式错误：须为JSON"), false
		}
	}
	return fee, start, expire, result{}, true
}

// unifiedOrder serves /pay/unifiedorder (protocol.md §5.1).
func (s *Simulator) unifiedOrder(c *call) result {
	if res, good := s.checkFields(c, unifiedOrderRules); !good {
		return res
	}
	in := c.in
	tt := wxpay.TradeType(in.get("trade_type"))
	switch tt {
	case wxpay.TradeTypeJSAPI, wxpay.TradeTypeNative, wxpay.TradeTypeApp, wxpay.TradeTypeMWeb:
	default:
		return bizErr("PARAM_ERROR", "trade_type参数错误：须为JSAPI、NATIVE、APP或MWEB")
	}
	switch {
	case tt == wxpay.TradeTypeJSAPI && in.get("openid") == "":
		return s.proto(c, "LACK_PARAMS", "openid")
	case tt == wxpay.TradeTypeNative && in.get("product_id") == "":
		return s.proto(c, "LACK_PARAMS", "product_id")
	case tt == wxpay.TradeTypeMWeb && in.get("scene_info") == "":
		return s.proto(c, "LACK_PARAMS", "scene_info")
	}
	minExpire := s.cfg.MinExpire
	if minExpire == 0 {
		minExpire = 5 * time.Minute
	}
	fee, start, expire, res, good := s.checkCommonOrderFields(c, minExpire)
	if !good {
		return res
	}
	if err := checkURL(in.get("notify_url"), s.cfg.RequireHTTPSNotifyURL); err != nil {
		return bizErr("PARAM_ERROR", "notify_url参数错误："+err.Error())
	}
	openID := in.get("openid")
	if openID != "" {
		s.mu.Lock()
		app, known := s.openIDApp[openID]
		s.mu.Unlock()
		if !known || app != c.appID {
			return bizErr("PARAM_ERROR", "appid和openid不匹配")
		}
	}
	b := c.b
	key := paramsKey(in, reentryParams)
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := b.orders[in.get("out_trade_no")]; o != nil {
		o.refreshLocked(c.now)
		if o.tradeType == wxpay.TradeTypeMicroPay {
			return bizErr("OUT_TRADE_NO_USED", "商户订单号重复")
		}
		switch o.state {
		case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
			return bizErr("ORDERPAID", "该订单已支付")
		case wxpay.TradeStateClosed, wxpay.TradeStateRevoked, wxpay.TradeStatePayError:
			return bizErr("ORDERCLOSED", "该订单已关闭")
		}
		if o.params != key {
			code := s.cfg.ReentryErrCode
			des := "201 商户订单号重复"
			if code == "OUT_TRADE_NO_USED" {
				des = "商户订单号重复"
			}
			return bizErr(code, des)
		}
		if c.now.Sub(o.prepayAt) >= s.cfg.PrepayTTL {
			s.newPrepayLocked(c, o)
		}
		o.signType = c.signType
		return ok(prepayFields(o)...)
	}
	o := &order{
		b: b, appID: c.appID, outTradeNo: in.get("out_trade_no"), tradeType: tt,
		state: wxpay.TradeStateNotPay, totalFee: fee, feeType: "CNY",
		body: in.get("body"), detail: in.get("detail"), attach: in.get("attach"),
		deviceInfo: in.get("device_info"), goodsTag: in.get("goods_tag"), limitPay: in.get("limit_pay"),
		productID: in.get("product_id"), openID: openID, notifyURL: in.get("notify_url"),
		sceneInfo: in.get("scene_info"), spbillIP: in.get("spbill_create_ip"),
		signType: c.signType, params: key, timeStart: start, timeExpire: expire, createdAt: c.now,
	}
	s.newPrepayLocked(c, o)
	b.orders[o.outTradeNo] = o
	b.orderSeq = append(b.orderSeq, o)
	return ok(prepayFields(o)...)
}

// newPrepayLocked gives o a fresh prepay_id (and code_url for NATIVE).
func (s *Simulator) newPrepayLocked(c *call, o *order) {
	o.prepayID = s.ids.NewID(IDPrepay, c.now)
	o.prepayAt = c.now
	ref := orderRef{o.b, o}
	s.mu.Lock()
	s.prepays[o.prepayID] = ref
	if o.tradeType == wxpay.TradeTypeNative {
		o.codeURL = "weixin://wxpay/bizpayurl?pr=" + s.ids.NewID(IDCodeURL, c.now)
		s.codeURLs[o.codeURL] = ref
	}
	s.mu.Unlock()
}

func prepayFields(o *order) []wxcrypto.Field {
	f := []wxcrypto.Field{field("device_info", o.deviceInfo), field("trade_type", string(o.tradeType)), field("prepay_id", o.prepayID)}
	switch o.tradeType {
	case wxpay.TradeTypeNative:
		f = append(f, field("code_url", o.codeURL))
	case wxpay.TradeTypeMWeb:
		f = append(f, field("mweb_url", "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id="+o.prepayID+"&package=1"))
	}
	return f
}

// findOrderLocked looks an order up by transaction_id (which wins) or
// out_trade_no. b.mu must be held.
func findOrderLocked(b *book, in message) *order {
	if t := in.get("transaction_id"); t != "" {
		return b.byTxn[t]
	}
	return b.orders[in.get("out_trade_no")]
}

// orderQuery serves /pay/orderquery (protocol.md §5.2).
func (s *Simulator) orderQuery(c *call) result {
	in := c.in
	if in.get("transaction_id") == "" && in.get("out_trade_no") == "" {
		return s.proto(c, "LACK_PARAMS", "transaction_id或out_trade_no")
	}
	if len(in.get("transaction_id")) > 32 || len(in.get("out_trade_no")) > 32 {
		return bizErr("PARAM_ERROR", "transaction_id或out_trade_no参数长度有误")
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	o := findOrderLocked(b, in)
	if o == nil {
		return bizErr("ORDERNOTEXIST", "订单不存在")
	}
	o.refreshLocked(c.now)
	return ok(orderFields(o)...)
}

// orderFields are the order fields of orderquery (and, when paid, the
// payment fields of micropay and of the pay notify).
func orderFields(o *order) []wxcrypto.Field {
	f := []wxcrypto.Field{field("device_info", o.deviceInfo)}
	paid := !o.paidAt.IsZero()
	if paid {
		f = append(f,
			field("openid", o.payerOpenID),
			field("is_subscribe", "N"),
		)
	}
	f = append(f, field("trade_type", string(o.tradeType)), field("trade_state", string(o.state)))
	if paid {
		f = append(f, field("bank_type", o.bankType))
	}
	f = append(f, field("total_fee", strconv.FormatInt(o.totalFee, 10)), field("fee_type", o.feeType))
	if paid {
		f = append(f, field("cash_fee", strconv.FormatInt(o.totalFee, 10)), field("cash_fee_type", "CNY"), field("transaction_id", o.transactionID))
	}
	f = append(f, field("out_trade_no", o.outTradeNo), field("attach", o.attach))
	if paid {
		f = append(f, field("time_end", cst(o.paidAt, layoutCompact)))
	}
	f = append(f, field("trade_state_desc", tradeStateDesc(o.state)))
	return f
}

// closeOrder serves /pay/closeorder (protocol.md §5.3).
func (s *Simulator) closeOrder(c *call) result {
	if res, good := s.checkFields(c, []fieldRule{{"out_trade_no", 32, true}}); !good {
		return res
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.orders[c.get("out_trade_no")]
	if o == nil {
		return bizErr("ORDERNOTEXIST", "订单不存在")
	}
	o.refreshLocked(c.now)
	switch o.state {
	case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
		return bizErr("ORDERPAID", "订单已支付，不能发起关单")
	case wxpay.TradeStateClosed, wxpay.TradeStateRevoked, wxpay.TradeStatePayError:
		return bizErr("ORDERCLOSED", "订单已关闭，无需重复关闭")
	}
	if o.tradeType == wxpay.TradeTypeMicroPay {
		return bizErr("TRADE_STATE_ERROR", "付款码支付订单不能关单，请调用撤销订单")
	}
	if min := s.cfg.CloseMinAge; min > 0 && c.now.Sub(o.createdAt) < min {
		return bizErr("INVALID_REQUEST", "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟")
	}
	o.state = wxpay.TradeStateClosed
	o.closedAt = c.now
	return ok(field("result_msg", "OK"))
}

// payLocked takes the money for o from u (who pays under openID) and
// schedules the pay notify. b.mu must be held; it takes s.mu. It returns
// false when the balance is short.
func (s *Simulator) payLocked(o *order, u *user, openID string, now time.Time) bool {
	s.mu.Lock()
	if u.balance < o.totalFee {
		s.mu.Unlock()
		return false
	}
	u.balance -= o.totalFee
	s.mu.Unlock()
	b := o.b
	o.state = wxpay.TradeStateSuccess
	o.payer = u
	o.payerOpenID = openID
	o.bankType = u.bankType
	o.paidAt = now
	o.wasPaid = true
	o.transactionID = s.ids.NewID(IDTransaction, now)
	b.byTxn[o.transactionID] = o
	if o.tradeType != wxpay.TradeTypeMicroPay && o.notifyURL != "" {
		if o.v3 {
			s.notifier.send(s.payNotifyV3(o), now)
		} else {
			s.notifier.send(s.payNotify(o), now)
		}
	}
	s.log.Info("wxsim: paid", "mch_id", b.m.cfg.MchID, "out_trade_no", o.outTradeNo, "transaction_id", o.transactionID, "total_fee", o.totalFee)
	return true
}

// payNotify builds the signed pay notify of a paid order (protocol.md §6).
func (s *Simulator) payNotify(o *order) *delivery {
	b := o.b
	fields := []wxcrypto.Field{
		field("return_code", wxpay.Success),
		field("return_msg", "OK"),
		field("appid", o.appID),
		field("mch_id", b.m.cfg.MchID),
		field("device_info", o.deviceInfo),
		field("nonce_str", s.ids.NewID(IDNonce, o.paidAt)),
		field("sign", ""),
	}
	if o.signType == wxpay.SignTypeHMACSHA256 {
		fields = append(fields, field("sign_type", string(o.signType)))
	}
	fields = append(fields,
		field("result_code", wxpay.Success),
		field("openid", o.payerOpenID),
		field("is_subscribe", "N"),
		field("trade_type", string(o.tradeType)),
		field("bank_type", o.bankType),
		field("total_fee", strconv.FormatInt(o.totalFee, 10)),
		field("fee_type", o.feeType),
		field("cash_fee", strconv.FormatInt(o.totalFee, 10)),
		field("transaction_id", o.transactionID),
		field("out_trade_no", o.outTradeNo),
		field("attach", o.attach),
		field("time_end", cst(o.paidAt, layoutCompact)),
	)
	return &delivery{
		kind: NotifyPay, mchID: b.m.cfg.MchID, outTradeNo: o.outTradeNo, url: o.notifyURL,
		fields: fields, signType: o.signType, key: b.key(),
	}
}

// userPaysFirst pays the order a closeorder names, if it is unpaid, as if
// the user had paid a moment before the close arrived.
func (s *Simulator) userPaysFirst(c *call) {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.orders[c.get("out_trade_no")]
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
