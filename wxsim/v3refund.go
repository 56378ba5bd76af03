package wxsim

import (
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
)

// v3RefundReq is the body of POST /v3/refund/domestic/refunds.
type v3RefundReq struct {
	TransactionID string             `json:"transaction_id,omitempty"`
	OutTradeNo    string             `json:"out_trade_no,omitempty"`
	OutRefundNo   string             `json:"out_refund_no"`
	Reason        string             `json:"reason,omitempty"`
	NotifyURL     string             `json:"notify_url,omitempty"`
	FundsAccount  string             `json:"funds_account,omitempty"`
	Amount        *v3RefundReqAmount `json:"amount"`
	GoodsDetail   []v3RefundReqGoods `json:"goods_detail,omitempty"`
}

type v3RefundReqAmount struct {
	Refund   *int64            `json:"refund"`
	From     []v3RefundReqFrom `json:"from,omitempty"`
	Total    *int64            `json:"total"`
	Currency string            `json:"currency"`
}

type v3RefundReqFrom struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

type v3RefundReqGoods struct {
	MerchantGoodsID  string `json:"merchant_goods_id"`
	WechatpayGoodsID string `json:"wechatpay_goods_id,omitempty"`
	GoodsName        string `json:"goods_name,omitempty"`
	UnitPrice        int64  `json:"unit_price"`
	RefundAmount     int64  `json:"refund_amount"`
	RefundQuantity   int64  `json:"refund_quantity"`
}

// v3RefundJSON is a refund as the v3 refund and refund query answer it.
type v3RefundJSON struct {
	RefundID            string          `json:"refund_id"`
	OutRefundNo         string          `json:"out_refund_no"`
	TransactionID       string          `json:"transaction_id"`
	OutTradeNo          string          `json:"out_trade_no"`
	Channel             string          `json:"channel"`
	UserReceivedAccount string          `json:"user_received_account"`
	SuccessTime         string          `json:"success_time,omitempty"`
	CreateTime          string          `json:"create_time"`
	Status              string          `json:"status"`
	FundsAccount        string          `json:"funds_account"`
	Amount              v3RefundJSONAmt `json:"amount"`
	PromotionDetail     []struct{}      `json:"promotion_detail"`
}

type v3RefundJSONAmt struct {
	Total            int64             `json:"total"`
	Refund           int64             `json:"refund"`
	From             []v3RefundReqFrom `json:"from"`
	PayerTotal       int64             `json:"payer_total"`
	PayerRefund      int64             `json:"payer_refund"`
	SettlementRefund int64             `json:"settlement_refund"`
	SettlementTotal  int64             `json:"settlement_total"`
	DiscountRefund   int64             `json:"discount_refund"`
	Currency         string            `json:"currency"`
	RefundFee        int64             `json:"refund_fee"`
}

// v3RefundStatus is the v3 name of a refund status.
func v3RefundStatus(st wxpay.RefundStatus) string {
	switch st {
	case wxpay.RefundStatusChange:
		return "ABNORMAL"
	case wxpay.RefundStatusClosed:
		return "CLOSED"
	}
	return string(st)
}

// v3FundsAccount is the v3 name of the account a refund came from.
func v3FundsAccount(account string) string {
	if account == string(wxpay.RefundAccountRecharge) {
		return "AVAILABLE"
	}
	return "UNSETTLED"
}

// v3Refund describes rf. b.mu must be held.
func v3RefundOf(rf *refund) v3RefundJSON {
	o := rf.o
	out := v3RefundJSON{
		RefundID: rf.refundID, OutRefundNo: rf.outRefundNo, TransactionID: o.transactionID, OutTradeNo: o.outTradeNo,
		Channel: string(wxpay.RefundChannelOriginal), UserReceivedAccount: recvAccount(rf), CreateTime: v3Time(rf.createdAt),
		Status: v3RefundStatus(rf.status), FundsAccount: v3FundsAccount(rf.account), PromotionDetail: []struct{}{},
		Amount: v3RefundJSONAmt{Total: o.totalFee, Refund: rf.refundFee, From: []v3RefundReqFrom{}, PayerTotal: o.totalFee,
			PayerRefund: rf.refundFee, SettlementRefund: rf.refundFee, SettlementTotal: o.totalFee, Currency: "CNY"},
	}
	if !rf.successAt.IsZero() {
		out.SuccessTime = v3Time(rf.successAt)
	}
	return out
}

// v3Refund serves POST /v3/refund/domestic/refunds (protocol.md §13.6):
// the rules of the v2 refund (the same out_refund_no is the same refund,
// the sum of refunds at most the order total, at most 50 refunds).
func (s *Simulator) v3Refund(c *v3Call) v3Result {
	var req v3RefundReq
	if res, ok := v3Decode(c.body, &req); !ok {
		return res
	}
	switch {
	case req.TransactionID == "" && req.OutTradeNo == "":
		return v3Missing("transaction_id")
	case req.OutRefundNo == "":
		return v3Missing("out_refund_no")
	case req.Amount == nil:
		return v3Missing("amount")
	case req.Amount.Refund == nil:
		return v3Missing("amount.refund")
	case req.Amount.Total == nil:
		return v3Missing("amount.total")
	case req.Amount.Currency == "":
		return v3Missing("amount.currency")
	}
	if !validOutRefundNo(req.OutRefundNo) {
		return v3Invalid("body", "out_refund_no", req.OutRefundNo, "must be 1 to 64 of [0-9A-Za-z_-|*@]", "out_refund_no格式错误")
	}
	if t := req.TransactionID; t != "" && (!isDigits(t) || len(t) > 32) {
		return v3Error("INVALID_TRANSACTIONID", "无效transaction_id", nil)
	}
	if len(req.OutTradeNo) > 32 {
		return v3Invalid("body", "out_trade_no", req.OutTradeNo, "longer than 32", "out_trade_no长度超过32")
	}
	if utf8.RuneCountInString(req.Reason) > 80 {
		return v3Invalid("body", "reason", nil, "longer than 80 characters", "reason长度超过80个字符")
	}
	refundFee, total := *req.Amount.Refund, *req.Amount.Total
	if refundFee <= 0 {
		return v3Invalid("body", "amount.refund", refundFee, "must be above 0", "退款金额amount.refund须为大于0的整数（单位：分）")
	}
	if total <= 0 {
		return v3Invalid("body", "amount.total", total, "must be above 0", "原订单金额amount.total须为大于0的整数（单位：分）")
	}
	if req.Amount.Currency != "CNY" {
		return v3Invalid("body", "amount.currency", req.Amount.Currency, "only CNY", "amount.currency仅支持CNY")
	}
	var fromSum int64
	for _, f := range req.Amount.From {
		if f.Account != "AVAILABLE" && f.Account != "UNAVAILABLE" || f.Amount <= 0 {
			return v3Invalid("body", "amount.from", nil, "account must be AVAILABLE or UNAVAILABLE with an amount above 0", "amount.from参数错误")
		}
		fromSum += f.Amount
	}
	if fromSum > refundFee {
		return v3Invalid("body", "amount.from", nil, "sum above amount.refund", "amount.from的金额之和超过退款金额")
	}
	account := string(wxpay.RefundAccountUnsettled)
	switch req.FundsAccount {
	case "":
	case "AVAILABLE":
		account = string(wxpay.RefundAccountRecharge)
	default:
		return v3Invalid("body", "funds_account", req.FundsAccount, "only AVAILABLE", "funds_account仅支持AVAILABLE")
	}
	notifyURL := req.NotifyURL
	if notifyURL != "" {
		if err := checkURL(notifyURL, s.cfg.RequireHTTPSNotifyURL); err != nil || len(notifyURL) > 256 {
			issue := "longer than 256"
			if err != nil {
				issue = err.Error()
			}
			return v3Invalid("body", "notify_url", notifyURL, issue, "notify_url格式错误："+issue)
		}
	} else {
		notifyURL = c.vm.m.cfg.RefundNotifyURL
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	var o *order
	if req.TransactionID != "" {
		o = b.byTxn[req.TransactionID]
	} else {
		o = b.orders[req.OutTradeNo]
	}
	if o == nil {
		return v3Error("RESOURCE_NOT_EXISTS", "订单不存在", nil)
	}
	o.refreshLocked(c.now)
	if rf := b.refunds[req.OutRefundNo]; rf != nil {
		// The same out_refund_no is the same refund.
		rf.requests++
		if rf.o != o || rf.refundFee != refundFee || rf.totalFee != total {
			return v3Error("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试", nil)
		}
		return v3OK(v3RefundOf(rf))
	}
	if o.state != wxpay.TradeStateSuccess && o.state != wxpay.TradeStateRefund {
		return v3Error("INVALID_REQUEST", "订单未支付，不能发起退款", nil)
	}
	if total != o.totalFee {
		return v3Invalid("body", "amount.total", total, "not the order total", "amount.total与原订单金额不一致")
	}
	if c.now.Sub(o.paidAt) > 365*24*time.Hour {
		return v3Error("INVALID_REQUEST", "订单已经超过退款期限", nil)
	}
	if len(o.refunds) >= maxRefunds {
		return v3Error("INVALID_REQUEST", "订单已经超过可退款的最大次数（50次）", nil)
	}
	if refundFee > total || o.refunded+refundFee > o.totalFee {
		return v3Error("INVALID_REQUEST", "申请退款金额超过订单可退金额", nil)
	}
	rf := &refund{
		o: o, appID: o.appID, outRefundNo: req.OutRefundNo, refundID: s.ids.NewID(IDRefund, c.now),
		refundFee: refundFee, totalFee: total, status: wxpay.RefundStatusProcessing, account: account,
		desc: req.Reason, notifyURL: notifyURL, source: "API", createdAt: c.now,
		executions: 1, requests: 1, v3: true,
	}
	o.refunds = append(o.refunds, rf)
	o.refunded += refundFee
	o.state = wxpay.TradeStateRefund
	b.refunds[rf.outRefundNo] = rf
	b.byRefundID[rf.refundID] = rf
	s.scheduleRefund(rf)
	s.log.Info("wxsim: v3 refund accepted", "mch_id", b.m.cfg.MchID, "out_trade_no", o.outTradeNo, "out_refund_no", rf.outRefundNo, "refund", refundFee)
	return v3OK(v3RefundOf(rf))
}

// v3RefundQuery serves GET /v3/refund/domestic/refunds/{out_refund_no}.
func (s *Simulator) v3RefundQuery(c *v3Call) v3Result {
	if !validOutRefundNo(c.param) {
		return v3Invalid("path", "out_refund_no", c.param, "must be 1 to 64 of [0-9A-Za-z_-|*@]", "out_refund_no格式错误")
	}
	b := c.vm.m.prod
	b.mu.Lock()
	defer b.mu.Unlock()
	rf := b.refunds[c.param]
	if rf == nil {
		return v3Error("RESOURCE_NOT_EXISTS", "退款单不存在", nil)
	}
	return v3OK(v3RefundOf(rf))
}
