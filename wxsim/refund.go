package wxsim

import (
	"errors"
	"strconv"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// maxRefunds is WeChat's limit of partial refunds per order.
const maxRefunds = 50

// refund is one refund of an order.
type refund struct {
	o           *order
	appID       string
	outRefundNo string
	refundID    string
	refundFee   int64
	totalFee    int64
	status      wxpay.RefundStatus
	account     string
	desc        string
	notifyURL   string
	source      string // API or VENDOR_PLATFORM
	createdAt   time.Time
	successAt   time.Time
	executions  int // times the money was moved for it: never above 1
	requests    int // refund calls that named it
	job         *task
	v3          bool // requested through APIv3: its notify is a v3 notify
}

var refundRules = []fieldRule{
	{"out_refund_no", 64, true},
	{"total_fee", 12, true},
	{"refund_fee", 12, true},
	{"transaction_id", 32, false},
	{"out_trade_no", 32, false},
	{"refund_fee_type", 8, false},
	{"refund_desc", 80, false},
	{"refund_account", 30, false},
	{"notify_url", 256, false},
	{"op_user_id", 32, false},
	{"nonce_str", 32, false},
}

// refund serves /secapi/pay/refund (protocol.md §5.4).
func (s *Simulator) refund(c *call) result {
	in := c.in
	if in.get("transaction_id") == "" && in.get("out_trade_no") == "" {
		return s.proto(c, "LACK_PARAMS", "transaction_id或out_trade_no")
	}
	if res, good := s.checkFields(c, refundRules); !good {
		return res
	}
	if !validOutRefundNo(in.get("out_refund_no")) {
		return bizErr("PARAM_ERROR", "out_refund_no参数格式错误")
	}
	if t := in.get("transaction_id"); t != "" && (!isDigits(t) || len(t) < 20) {
		return bizErr("INVALID_TRANSACTIONID", "无效transaction_id")
	}
	totalFee, ok1 := parseFee(in.get("total_fee"))
	refundFee, ok2 := parseFee(in.get("refund_fee"))
	if !ok1 || !ok2 {
		return bizErr("PARAM_ERROR", "total_fee或refund_fee参数错误：须为大于0的整数，单位为分")
	}
	if ft := in.get("refund_fee_type"); ft != "" && ft != "CNY" {
		return bizErr("PARAM_ERROR", "refund_fee_type参数错误：仅支持CNY")
	}
	account := in.get("refund_account")
	switch wxpay.RefundAccount(account) {
	case "":
		account = string(wxpay.RefundAccountUnsettled)
	case wxpay.RefundAccountUnsettled, wxpay.RefundAccountRecharge:
	default:
		return bizErr("PARAM_ERROR", "refund_account参数错误")
	}
	notifyURL := in.get("notify_url")
	if notifyURL != "" {
		if err := checkURL(notifyURL, s.cfg.RequireHTTPSNotifyURL); err != nil {
			return bizErr("PARAM_ERROR", "notify_url参数错误："+err.Error())
		}
	} else {
		notifyURL = c.m.cfg.RefundNotifyURL
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	o := findOrderLocked(b, in)
	if o == nil {
		return bizErr("ORDERNOTEXIST", "订单不存在")
	}
	o.refreshLocked(c.now)
	if rf := b.refunds[in.get("out_refund_no")]; rf != nil {
		// The same out_refund_no is the same refund.
		rf.requests++
		if rf.o != o || rf.refundFee != refundFee || rf.totalFee != totalFee {
			return bizErr("REFUND_FEE_MISMATCH", "订单金额或退款金额与之前请求不一致，请核实后再试")
		}
		return ok(refundFields(rf)...)
	}
	if o.state != wxpay.TradeStateSuccess && o.state != wxpay.TradeStateRefund {
		return bizErr("ORDERNOTEXIST", "订单未支付，不能发起退款")
	}
	if totalFee != o.totalFee {
		return bizErr("PARAM_ERROR", "total_fee与订单金额不一致")
	}
	if c.now.Sub(o.paidAt) > 365*24*time.Hour {
		return bizErr("TRADE_OVERDUE", "订单已经超过退款期限")
	}
	if len(o.refunds) >= maxRefunds {
		return bizErr("ERROR", "订单已经超过可退款的最大次数（50次）")
	}
	if refundFee > totalFee || o.refunded+refundFee > o.totalFee {
		return bizErr("PARAM_ERROR", "累计退款金额大于支付金额")
	}
	rf := &refund{
		o: o, appID: c.appID, outRefundNo: in.get("out_refund_no"), refundID: s.ids.NewID(IDRefund, c.now),
		refundFee: refundFee, totalFee: totalFee, status: wxpay.RefundStatusProcessing, account: account,
		desc: in.get("refund_desc"), notifyURL: notifyURL, source: "API", createdAt: c.now,
		executions: 1, requests: 1,
	}
	o.refunds = append(o.refunds, rf)
	o.refunded += refundFee
	o.state = wxpay.TradeStateRefund
	b.refunds[rf.outRefundNo] = rf
	b.byRefundID[rf.refundID] = rf
	s.scheduleRefund(rf)
	s.log.Info("wxsim: refund accepted", "mch_id", b.m.cfg.MchID, "out_trade_no", o.outTradeNo, "out_refund_no", rf.outRefundNo, "refund_fee", refundFee)
	return ok(refundFields(rf)...)
}

func refundFields(rf *refund) []wxcrypto.Field {
	o := rf.o
	fee := strconv.FormatInt(rf.refundFee, 10)
	return []wxcrypto.Field{
		field("transaction_id", o.transactionID),
		field("out_trade_no", o.outTradeNo),
		field("out_refund_no", rf.outRefundNo),
		field("refund_id", rf.refundID),
		field("refund_fee", fee),
		field("total_fee", strconv.FormatInt(o.totalFee, 10)),
		field("fee_type", "CNY"),
		field("cash_fee", strconv.FormatInt(o.totalFee, 10)),
		field("cash_refund_fee", fee),
		field("coupon_refund_fee", "0"),
		field("coupon_refund_count", "0"),
	}
}

// scheduleRefund schedules the refund's completion after RefundDelay.
func (s *Simulator) scheduleRefund(rf *refund) {
	b := rf.o.b
	fn := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if rf.status == wxpay.RefundStatusProcessing {
			s.finishRefundLocked(rf, wxpay.RefundStatusSuccess, s.clock.Now())
		}
	}
	if s.cfg.RefundDelay < 0 {
		rf.job = s.sched.after(0, fn)
		return
	}
	rf.job = s.sched.after(s.cfg.RefundDelay, fn)
}

// finishRefundLocked moves a PROCESSING refund to its final status: SUCCESS
// returns the money to the payer, REFUNDCLOSE releases the amount (the
// order can be refunded again), CHANGE keeps the amount with WeChat for
// the merchant to settle by hand. Then the refund notify goes out. b.mu
// must be held.
func (s *Simulator) finishRefundLocked(rf *refund, status wxpay.RefundStatus, now time.Time) {
	o := rf.o
	rf.status = status
	switch status {
	case wxpay.RefundStatusSuccess:
		rf.successAt = now
		if o.payer != nil {
			s.mu.Lock()
			o.payer.balance += rf.refundFee
			s.mu.Unlock()
		}
	case wxpay.RefundStatusClosed:
		o.refunded -= rf.refundFee
	}
	if rf.job != nil {
		s.sched.cancelTask(rf.job)
		rf.job = nil
	}
	if rf.notifyURL != "" {
		if rf.v3 {
			s.notifier.send(s.refundNotifyV3(rf), now)
		} else {
			s.notifier.send(s.refundNotify(rf), now)
		}
	}
	s.log.Info("wxsim: refund finished", "mch_id", o.b.m.cfg.MchID, "out_refund_no", rf.outRefundNo, "status", string(status))
}

// refundNotify builds the refund notify: its req_info is the <root>
// document encrypted with the key (protocol.md §7). It carries no sign.
func (s *Simulator) refundNotify(rf *refund) *delivery {
	o := rf.o
	b := o.b
	plain := appendRootXML(nil, reqInfoFields(rf))
	fields := []wxcrypto.Field{
		field("return_code", wxpay.Success),
		field("return_msg", "OK"),
		field("appid", o.appID),
		field("mch_id", b.m.cfg.MchID),
		field("nonce_str", s.ids.NewID(IDNonce, s.clock.Now())),
		field("req_info", wxcrypto.EncryptReqInfo(b.key(), plain)),
	}
	return &delivery{kind: NotifyRefund, mchID: b.m.cfg.MchID, outTradeNo: o.outTradeNo, outRefundNo: rf.outRefundNo,
		url: rf.notifyURL, fields: fields, unsigned: true}
}

// reqInfoFields are the decrypted req_info fields, in the order of vector C2.
func reqInfoFields(rf *refund) []wxcrypto.Field {
	o := rf.o
	success := ""
	if !rf.successAt.IsZero() {
		success = cst(rf.successAt, layoutDash)
	}
	fee := strconv.FormatInt(rf.refundFee, 10)
	total := strconv.FormatInt(o.totalFee, 10)
	return []wxcrypto.Field{
		field("out_refund_no", rf.outRefundNo),
		field("out_trade_no", o.outTradeNo),
		field("refund_account", rf.account),
		field("refund_fee", fee),
		field("refund_id", rf.refundID),
		field("refund_recv_accout", recvAccount(rf)),
		field("refund_request_source", rf.source),
		field("refund_status", string(rf.status)),
		field("settlement_refund_fee", fee),
		field("settlement_total_fee", total),
		field("success_time", success),
		field("total_fee", total),
		field("transaction_id", o.transactionID),
	}
}

func recvAccount(rf *refund) string {
	if rf.status == wxpay.RefundStatusChange {
		return "招商银行信用卡0403"
	}
	return "支付用户零钱"
}

// refundQuery serves /pay/refundquery (protocol.md §5.5).
func (s *Simulator) refundQuery(c *call) result {
	in := c.in
	keys := []string{"refund_id", "out_refund_no", "transaction_id", "out_trade_no"}
	var by string
	for _, k := range keys {
		if in.get(k) != "" {
			by = k
			break
		}
	}
	if by == "" {
		return s.proto(c, "LACK_PARAMS", "refund_id、out_refund_no、transaction_id或out_trade_no")
	}
	if res, good := s.checkFields(c, []fieldRule{{"refund_id", 32, false}, {"out_refund_no", 64, false},
		{"transaction_id", 32, false}, {"out_trade_no", 32, false}, {"offset", 10, false}}); !good {
		return res
	}
	offset := 0
	if v := in.get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || !isDigits(v) {
			return bizErr("PARAM_ERROR", "offset参数错误")
		}
		offset = n
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var list []*refund
	var o *order
	switch by {
	case "refund_id", "out_refund_no":
		var rf *refund
		if by == "refund_id" {
			rf = b.byRefundID[in.get(by)]
		} else {
			rf = b.refunds[in.get(by)]
		}
		if rf == nil {
			return bizErr("REFUNDNOTEXIST", "退款订单查询失败")
		}
		o, list = rf.o, []*refund{rf}
	case "transaction_id":
		if t := in.get(by); !isDigits(t) {
			return bizErr("INVALID_TRANSACTIONID", "无效transaction_id")
		}
		fallthrough
	default:
		o = findOrderLocked(b, in)
		if o == nil || len(o.refunds) == 0 {
			return bizErr("REFUNDNOTEXIST", "退款订单查询失败")
		}
		list = o.refunds
	}
	total := len(list)
	if offset > 0 && offset >= total {
		return bizErr("PARAM_ERROR", "offset超出范围")
	}
	page := list[offset:]
	if len(page) > 10 {
		page = page[:10]
	}
	var refunded int64
	for _, rf := range o.refunds {
		refunded += rf.refundFee
	}
	f := []wxcrypto.Field{
		field("transaction_id", o.transactionID),
		field("out_trade_no", o.outTradeNo),
		field("total_fee", strconv.FormatInt(o.totalFee, 10)),
		field("fee_type", "CNY"),
		field("cash_fee", strconv.FormatInt(o.totalFee, 10)),
		field("refund_fee", strconv.FormatInt(refunded, 10)),
		field("refund_count", strconv.Itoa(len(page))),
	}
	if by == "transaction_id" || by == "out_trade_no" {
		f = append(f, field("total_refund_count", strconv.Itoa(total)))
	}
	for i, rf := range page {
		n := strconv.Itoa(i)
		success := ""
		if !rf.successAt.IsZero() {
			success = cst(rf.successAt, layoutDash)
		}
		f = append(f,
			field("out_refund_no_"+n, rf.outRefundNo),
			field("refund_id_"+n, rf.refundID),
			field("refund_channel_"+n, string(wxpay.RefundChannelOriginal)),
			field("refund_fee_"+n, strconv.FormatInt(rf.refundFee, 10)),
			field("settlement_refund_fee_"+n, strconv.FormatInt(rf.refundFee, 10)),
			field("refund_status_"+n, string(rf.status)),
			field("refund_account_"+n, rf.account),
			field("refund_recv_accout_"+n, recvAccount(rf)),
			field("refund_success_time_"+n, success),
		)
	}
	return ok(f...)
}

// CompleteRefund ends a PROCESSING refund now with status SUCCESS, CHANGE or
// REFUNDCLOSE, as the cashier page's refund-complete button does; the
// refund notify follows. mchID may be empty when out_refund_no is unique
// across merchants.
func (s *Simulator) CompleteRefund(mchID, outRefundNo string, status wxpay.RefundStatus) error {
	if status != wxpay.RefundStatusSuccess && status != wxpay.RefundStatusChange && status != wxpay.RefundStatusClosed {
		return errors.New("wxsim: status must be SUCCESS, CHANGE or REFUNDCLOSE")
	}
	var found []*refund
	for _, m := range s.merchantsByID(mchID) {
		for _, b := range []*book{m.prod, m.sandbox} {
			b.mu.Lock()
			if rf := b.refunds[outRefundNo]; rf != nil {
				found = append(found, rf)
			}
			b.mu.Unlock()
		}
	}
	switch len(found) {
	case 0:
		return ErrUnknownRefund
	case 1:
	default:
		return errors.New("wxsim: several merchants have this out_refund_no; name the mch_id")
	}
	rf := found[0]
	b := rf.o.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if rf.status != wxpay.RefundStatusProcessing {
		return errors.New("wxsim: the refund is already " + string(rf.status))
	}
	s.finishRefundLocked(rf, status, s.clock.Now())
	return nil
}
