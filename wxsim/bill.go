package wxsim

import (
	"bytes"
	"compress/gzip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
)

// Trade bill layout (protocol.md §11): the current ("免充值券") format.
const (
	billHeaderAll = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类," +
		"应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
	billHeaderSuccess = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类," +
		"应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注"
	billHeaderRefund = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类," +
		"应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
	billSummaryHeader = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"

	fundHeader        = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号"
	fundSummaryHeader = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额"
)

// BillRow is one detail row of a trade bill before it is written out. The
// amounts are fen. SetBillMutator receives and returns them.
type BillRow struct {
	Refund        bool      // a refund row (else a payment row)
	Time          time.Time // 交易时间: the payment's success time, or the refund's request time
	AppID         string
	MchID         string
	DeviceInfo    string
	TransactionID string
	OutTradeNo    string
	OpenID        string
	TradeType     string
	TradeState    string // SUCCESS, REVOKED (a reversed payment) or REFUND
	BankType      string
	Settlement    int64 // 应结订单金额 (payment rows)
	RefundID      string
	OutRefundNo   string
	RefundFee     int64  // 退款金额 (refund rows)
	RefundType    string // ORIGINAL
	RefundStatus  string // the refund's status when the bill was built
	Body          string
	Attach        string
	Fee           int64     // 手续费; negative on refund rows (the fee given back)
	FeeRate       int64     // hundredths of a percent
	TotalFee      int64     // 订单金额 (payment rows)
	RefundApplied int64     // 申请退款金额 (refund rows)
	RefundSuccess time.Time // 退款成功时间 (REFUND bills); zero unless SUCCESS
}

// SetBillMutator installs fn to change the rows of every trade bill built
// from now on (nil removes it), to inject discrepancies for reconciliation
// tests: a row dropped, an amount one fen off, a row the merchant never
// made. The summary is computed from the changed rows. Bills already built
// are forgotten.
func (s *Simulator) SetBillMutator(fn func(mchID string, day time.Time, rows []BillRow) []BillRow) {
	s.mu.Lock()
	s.billMutator = fn
	s.mu.Unlock()
	for _, m := range s.merchants {
		for _, b := range []*book{m.prod, m.sandbox} {
			b.mu.Lock()
			clear(b.bills)
			b.mu.Unlock()
		}
	}
}

// yuan formats fen as yuan with 2 decimals, without floats.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return sign + strconv.FormatInt(fen/100, 10) + "." + pad(fen%100, 2)
}

// yuan5 formats fen as yuan with 5 decimals, as bills write fees.
func yuan5(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return sign + strconv.FormatInt(fen/100, 10) + "." + pad(fen%100, 2) + "000"
}

func pad(n int64, width int) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// rate formats a fee rate in hundredths of a percent: 60 -> "0.60%".
func rate(bp int64) string { return strconv.FormatInt(bp/100, 10) + "." + pad(bp%100, 2) + "%" }

// feeOf is WeChat's fee on an amount: amount × rate, rounded half up to the
// fen.
func feeOf(fen, bp int64) int64 { return (fen*bp + 5000) / 10000 }

// billDay parses bill_date (yyyyMMdd) as a day in China Standard Time.
func billDay(v string) (time.Time, bool) {
	if len(v) != 8 || !isDigits(v) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(layoutDay, v, wxpay.China)
	return t, err == nil && t.Format(layoutDay) == v
}

// billFail is a downloadbill failure: XML with return_code FAIL.
func billFail(msg, errorCode string) result {
	return result{protoCode: msg, protoMsg: msg, errorCode: errorCode}
}

// noBill is the answer for a day without a bill (protocol.md §5.6).
func noBill() result { return billFail("No Bill Exist", "20002") }

// downloadBill serves /pay/downloadbill (protocol.md §5.6, §11).
func (s *Simulator) downloadBill(c *call) result {
	if c.get("bill_date") == "" {
		return s.proto(c, "LACK_PARAMS", "bill_date")
	}
	day, good := billDay(c.get("bill_date"))
	if !good {
		return billFail("data format error", "")
	}
	bt := wxpay.BillType(c.get("bill_type"))
	if bt == "" {
		bt = wxpay.BillTypeAll
	}
	if !bt.Valid() {
		return billFail("invalid bill_type", "")
	}
	tar := c.get("tar_type")
	if tar != "" && tar != "GZIP" {
		return billFail("invalid tar_type", "")
	}
	if res, wait := s.billReady(day, c.now); wait {
		return res
	}
	key := "trade/" + c.get("bill_date") + "/" + string(bt)
	b := c.b
	b.mu.Lock()
	text, cached := b.bills[key]
	if !cached {
		text = s.tradeBillLocked(b, day, bt)
		b.bills[key] = text
	}
	b.mu.Unlock()
	if text == nil {
		return noBill()
	}
	return billText(text, tar == "GZIP")
}

// billReady says whether day's bill may be served at now: not before the
// day has ended, nor before BillCreatingUntil after that.
func (s *Simulator) billReady(day, now time.Time) (result, bool) {
	end := day.AddDate(0, 0, 1)
	if now.Before(end) {
		return noBill(), true
	}
	if s.cfg.BillCreatingUntil > 0 && now.Before(end.Add(s.cfg.BillCreatingUntil)) {
		return billFail("Bill Creating", ""), true
	}
	return result{}, false
}

func billText(text []byte, gz bool) result {
	if !gz {
		return result{raw: text, contentType: "text/plain; charset=utf-8"}
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(text)
	_ = w.Close()
	return result{raw: buf.Bytes(), contentType: "application/x-gzip"}
}

// billRowsLocked collects the trade bill rows of day from the ledger. b.mu
// must be held.
func (s *Simulator) billRowsLocked(b *book, day time.Time) []BillRow {
	end := day.AddDate(0, 0, 1)
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(day) && t.Before(end) }
	rateBP := b.m.cfg.FeeRate
	var rows []BillRow
	for _, o := range b.orderSeq {
		base := BillRow{
			AppID: o.appID, MchID: b.m.cfg.MchID, DeviceInfo: o.deviceInfo, TransactionID: o.transactionID,
			OutTradeNo: o.outTradeNo, OpenID: o.payerOpenID, TradeType: string(o.tradeType), BankType: o.bankType,
			Body: o.body, Attach: o.attach, FeeRate: rateBP,
		}
		if in(o.paidAt) {
			r := base
			r.Time = o.paidAt
			r.TradeState = string(wxpay.TradeStateSuccess)
			if o.state == wxpay.TradeStateRevoked {
				r.TradeState = string(wxpay.TradeStateRevoked)
			}
			r.Settlement, r.TotalFee = o.totalFee, o.totalFee
			r.Fee = feeOf(o.totalFee, rateBP)
			rows = append(rows, r)
		}
		for _, rf := range o.refunds {
			if !in(rf.createdAt) {
				continue
			}
			r := base
			r.Refund = true
			r.Time = rf.createdAt
			r.TradeState = string(wxpay.TradeStateRefund)
			r.RefundID, r.OutRefundNo = rf.refundID, rf.outRefundNo
			r.RefundFee, r.RefundApplied = rf.refundFee, rf.refundFee
			r.RefundType, r.RefundStatus = string(wxpay.RefundChannelOriginal), string(rf.status)
			r.Fee = -feeOf(rf.refundFee, rateBP)
			r.RefundSuccess = rf.successAt
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b BillRow) int { return a.Time.Compare(b.Time) })
	s.mu.Lock()
	mut := s.billMutator
	s.mu.Unlock()
	if mut != nil {
		rows = mut(b.m.cfg.MchID, day, rows)
	}
	return rows
}

// tradeBillLocked writes day's trade bill of type bt, or nil when it has
// no row. b.mu must be held.
func (s *Simulator) tradeBillLocked(b *book, day time.Time, bt wxpay.BillType) []byte {
	var rows []BillRow
	for _, r := range s.billRowsLocked(b, day) {
		switch bt {
		case wxpay.BillTypeAll:
			rows = append(rows, r)
		case wxpay.BillTypeSuccess:
			if !r.Refund {
				rows = append(rows, r)
			}
		case wxpay.BillTypeRefund:
			if r.Refund {
				rows = append(rows, r)
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return formatTradeBill(rows, bt)
}

// formatTradeBill writes the bill text: header, backquoted rows, summary
// header, backquoted summary, each line ending in \r\n.
func formatTradeBill(rows []BillRow, bt wxpay.BillType) []byte {
	var buf bytes.Buffer
	line := func(fields ...string) {
		for i, f := range fields {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteByte('`')
			buf.WriteString(f)
		}
		buf.WriteString("\r\n")
	}
	switch bt {
	case wxpay.BillTypeSuccess:
		buf.WriteString(billHeaderSuccess)
	case wxpay.BillTypeRefund:
		buf.WriteString(billHeaderRefund)
	default:
		buf.WriteString(billHeaderAll)
	}
	buf.WriteString("\r\n")
	var settle, refunded, fees, total, applied int64
	for _, r := range rows {
		settle += r.Settlement
		refunded += r.RefundFee
		fees += r.Fee
		total += r.TotalFee
		applied += r.RefundApplied
		refundID, outRefundNo := r.RefundID, r.OutRefundNo
		if !r.Refund {
			refundID, outRefundNo = "0", "0"
		}
		head := []string{
			cst(r.Time, layoutDash), r.AppID, r.MchID, "0", r.DeviceInfo, r.TransactionID, r.OutTradeNo, r.OpenID,
			r.TradeType, r.TradeState, r.BankType, "CNY", yuan(r.Settlement), yuan(0),
		}
		tail := []string{r.Body, r.Attach, yuan5(r.Fee), rate(r.FeeRate), yuan(r.TotalFee)}
		switch bt {
		case wxpay.BillTypeSuccess:
			line(slices.Concat(head, tail, []string{""})...)
		case wxpay.BillTypeRefund:
			success := ""
			if !r.RefundSuccess.IsZero() {
				success = cst(r.RefundSuccess, layoutDash)
			}
			mid := []string{cst(r.Time, layoutDash), success, refundID, outRefundNo, yuan(r.RefundFee), yuan(0), r.RefundType, r.RefundStatus}
			line(slices.Concat(head, mid, tail, []string{yuan(r.RefundApplied), ""})...)
		default:
			mid := []string{refundID, outRefundNo, yuan(r.RefundFee), yuan(0), r.RefundType, r.RefundStatus}
			line(slices.Concat(head, mid, tail, []string{yuan(r.RefundApplied), ""})...)
		}
	}
	buf.WriteString(billSummaryHeader)
	buf.WriteString("\r\n")
	line(strconv.Itoa(len(rows)), yuan(settle), yuan(refunded), yuan(0), yuan5(fees), yuan(total), yuan(applied))
	return buf.Bytes()
}

// fundEntry is one row of the fund-flow bill of the basic account.
type fundEntry struct {
	at      time.Time
	bizNo   string // transaction_id or refund_id
	name    string // 业务名称
	kind    string // 业务类型
	income  bool
	amount  int64
	balance int64
	voucher string // out_trade_no or out_refund_no
}

// fundEntriesLocked lists every movement of the basic account, oldest
// first, with the running balance. b.mu must be held.
func fundEntriesLocked(b *book) []fundEntry {
	bp := b.m.cfg.FeeRate
	var es []fundEntry
	for _, o := range b.orderSeq {
		if o.paidAt.IsZero() {
			continue
		}
		fee := feeOf(o.totalFee, bp)
		es = append(es, fundEntry{at: o.paidAt, bizNo: o.transactionID, name: "交易", kind: "交易", income: true, amount: o.totalFee, voucher: o.outTradeNo})
		if fee > 0 {
			es = append(es, fundEntry{at: o.paidAt, bizNo: o.transactionID, name: "交易", kind: "扣除交易手续费", amount: fee, voucher: o.outTradeNo})
		}
		if o.state == wxpay.TradeStateRevoked && o.wasPaid {
			es = append(es, fundEntry{at: o.revokedAt, bizNo: o.transactionID, name: "退款", kind: "撤销", amount: o.totalFee, voucher: o.outTradeNo})
			if fee > 0 {
				es = append(es, fundEntry{at: o.revokedAt, bizNo: o.transactionID, name: "退款", kind: "退还交易手续费", income: true, amount: fee, voucher: o.outTradeNo})
			}
		}
		for _, rf := range o.refunds {
			if rf.successAt.IsZero() {
				continue
			}
			es = append(es, fundEntry{at: rf.successAt, bizNo: rf.refundID, name: "退款", kind: "退款", amount: rf.refundFee, voucher: rf.outRefundNo})
			if f := feeOf(rf.refundFee, bp); f > 0 {
				es = append(es, fundEntry{at: rf.successAt, bizNo: rf.refundID, name: "退款", kind: "退还交易手续费", income: true, amount: f, voucher: rf.outRefundNo})
			}
		}
	}
	slices.SortStableFunc(es, func(a, b fundEntry) int { return a.at.Compare(b.at) })
	var bal int64
	for i := range es {
		if es[i].income {
			bal += es[i].amount
		} else {
			bal -= es[i].amount
		}
		es[i].balance = bal
	}
	return es
}

// downloadFundFlow serves /pay/downloadfundflow (protocol.md §5.7): only
// HMAC-SHA256; the basic account has the payments, fees and refunds;
// the operation and fees accounts are always empty.
func (s *Simulator) downloadFundFlow(c *call) result {
	if c.signType != wxpay.SignTypeHMACSHA256 {
		return billFail("invalid sign_type: downloadfundflow accepts only HMAC-SHA256", "")
	}
	for _, name := range []string{"bill_date", "account_type"} {
		if c.get(name) == "" {
			return s.proto(c, "LACK_PARAMS", name)
		}
	}
	day, good := billDay(c.get("bill_date"))
	if !good {
		return billFail("data format error", "")
	}
	at := wxpay.AccountType(c.get("account_type"))
	if !at.Valid() {
		return billFail("invalid account_type", "")
	}
	tar := c.get("tar_type")
	if tar != "" && tar != "GZIP" {
		return billFail("invalid tar_type", "")
	}
	if res, wait := s.billReady(day, c.now); wait {
		return res
	}
	if at != wxpay.AccountBasic {
		return noBill()
	}
	key := "fund/" + c.get("bill_date") + "/" + string(at)
	b := c.b
	b.mu.Lock()
	text, cached := b.bills[key]
	if !cached {
		text = s.fundBillLocked(b, day, c.now)
		b.bills[key] = text
	}
	b.mu.Unlock()
	if text == nil {
		return noBill()
	}
	return billText(text, tar == "GZIP")
}

func (s *Simulator) fundBillLocked(b *book, day, now time.Time) []byte {
	end := day.AddDate(0, 0, 1)
	var rows []fundEntry
	for _, e := range fundEntriesLocked(b) {
		if !e.at.Before(day) && e.at.Before(end) {
			rows = append(rows, e)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(fundHeader + "\r\n")
	var inN, outN int
	var inSum, outSum int64
	for _, e := range rows {
		dir := "支出"
		if e.income {
			dir = "收入"
			inN++
			inSum += e.amount
		} else {
			outN++
			outSum += e.amount
		}
		fields := []string{cst(e.at, layoutDash), e.bizNo, s.ids.NewID(IDFundFlow, now), e.name, e.kind, dir,
			yuan(e.amount), yuan(e.balance), "system", "", e.voucher}
		buf.WriteString("`" + strings.Join(fields, ",`") + "\r\n")
	}
	buf.WriteString(fundSummaryHeader + "\r\n")
	buf.WriteString("`" + strings.Join([]string{strconv.Itoa(len(rows)), strconv.Itoa(inN), yuan(inSum), strconv.Itoa(outN), yuan(outSum)}, ",`") + "\r\n")
	return buf.Bytes()
}
