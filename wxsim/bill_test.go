package wxsim_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxsim"
)

func (e *env) bill(m msg) (string, msg) {
	e.t.Helper()
	b, resp := e.raw("POST", "/pay/downloadbill", m.signed(apiKey).xmlBody())
	if resp.StatusCode != 200 {
		e.t.Fatalf("downloadbill: HTTP %d", resp.StatusCode)
	}
	if bytes.HasPrefix(b, []byte("<xml>")) {
		return "", parseXML(e.t, b)
	}
	if m["tar_type"] == "GZIP" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			e.t.Fatal(err)
		}
		b, err = io.ReadAll(zr)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return string(b), nil
}

// billScenario: on 2026-11-28 (CST) a payment of 1.00 at 10:00, one of
// 23.45 at 23:59:59 with a refund of 3.45 at 23:59:59; a payment at
// 00:00:01 on the 29th (next day's bill); the bill is fetched on the 29th.
func billScenario(t *testing.T) (*env, string, string, string) {
	e := newEnv(t)
	openID := e.user(0)
	ans1, otn1 := e.order(openID, 100, "attach", "a1")
	e.pay(openID, ans1)
	e.clock.Advance(13*time.Hour + 59*time.Minute + 59*time.Second) // 23:59:59
	ans2, otn2 := e.order(openID, 2345)
	e.pay(openID, ans2)
	e.call("/secapi/pay/refund", refundReq(otn2, "BR"+otn2, 2345, 345))
	e.clock.Advance(2 * time.Second) // 00:00:01 on the 29th; the refund is PROCESSING
	ans3, otn3 := e.order(openID, 500)
	e.pay(openID, ans3)
	e.clock.Advance(time.Hour)
	return e, otn1, otn2, otn3
}

// TestBillByteExact checks the ALL bill of a day byte for byte against
// protocol.md §11.
func TestBillByteExact(t *testing.T) {
	e, otn1, otn2, _ := billScenario(t)
	l := e.sim.Ledger()
	var o1, o2 wxsim.Order
	for _, o := range l.Orders {
		switch o.OutTradeNo {
		case otn1:
			o1 = o
		case otn2:
			o2 = o
		}
	}
	rf := o2.Refunds[0]
	row := func(fields ...string) string { return "`" + strings.Join(fields, ",`") + "\r\n" }
	want := "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n" +
		row("2026-11-28 10:00:00", appID, mchID, "0", "", o1.TransactionID, otn1, o1.PayerOpenID, "JSAPI", "SUCCESS", "OTHERS", "CNY", "1.00", "0.00", "0", "0", "0.00", "0.00", "", "", "测试商店-商品", "a1", "0.01000", "0.60%", "1.00", "0.00", "") +
		row("2026-11-28 23:59:59", appID, mchID, "0", "", o2.TransactionID, otn2, o2.PayerOpenID, "JSAPI", "SUCCESS", "OTHERS", "CNY", "23.45", "0.00", "0", "0", "0.00", "0.00", "", "", "测试商店-商品", "", "0.14000", "0.60%", "23.45", "0.00", "") +
		row("2026-11-28 23:59:59", appID, mchID, "0", "", o2.TransactionID, otn2, o2.PayerOpenID, "JSAPI", "REFUND", "OTHERS", "CNY", "0.00", "0.00", rf.RefundID, rf.OutRefundNo, "3.45", "0.00", "ORIGINAL", "SUCCESS", "测试商店-商品", "", "-0.02000", "0.60%", "0.00", "3.45", "") +
		"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n" +
		"`3,`24.45,`3.45,`0.00,`0.13000,`24.45,`3.45\r\n"
	got, fail := e.bill(kv("bill_date", "20261128"))
	if fail != nil {
		t.Fatalf("no bill: %v", fail)
	}
	if got != want {
		t.Fatalf("bill differs\ngot:\n%s\nwant:\n%s", got, want)
	}
	// The same day, gzipped, is the same text; the default type is ALL.
	if gz, _ := e.bill(kv("bill_date", "20261128", "bill_type", "ALL", "tar_type", "GZIP")); gz != want {
		t.Fatalf("gzip bill differs:\n%s", gz)
	}
}

// TestBillAgainstLedger checks that a day's bill holds exactly the ledger's
// payments and refunds of that day (by CST success or request time), and
// that the summary adds up.
func TestBillAgainstLedger(t *testing.T) {
	e, _, _, otn3 := billScenario(t)
	for _, day := range []string{"20261128", "20261129"} {
		if day == "20261129" {
			e.clock.Advance(24 * time.Hour)
		}
		text, fail := e.bill(kv("bill_date", day))
		if fail != nil {
			t.Fatalf("%s: %v", day, fail)
		}
		lines := strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
		rows := lines[1 : len(lines)-2]
		var paid, refunded int64
		var nPaid, nRefund int
		for _, r := range rows {
			f := strings.Split(r, ",")
			if len(f) != 27 {
				t.Fatalf("%s: %d columns in %s", day, len(f), r)
			}
			for _, v := range f {
				if !strings.HasPrefix(v, "`") {
					t.Fatalf("field without backquote: %q", v)
				}
			}
			if f[9] == "`SUCCESS" {
				paid += fen(t, f[12][1:])
				nPaid++
			} else {
				refunded += fen(t, f[16][1:])
				nRefund++
			}
		}
		var wantPaid, wantRefunded int64
		var wantNPaid, wantNRefund int
		dayStart, _ := time.ParseInLocation("20060102", day, wxpay.China)
		inDay := func(ts time.Time) bool { return !ts.Before(dayStart) && ts.Before(dayStart.AddDate(0, 0, 1)) }
		for _, o := range e.sim.Orders(mchID) {
			if inDay(o.PaidAt) {
				wantPaid += o.TotalFee
				wantNPaid++
			}
			for _, rf := range o.Refunds {
				if inDay(rf.CreatedAt) {
					wantRefunded += rf.RefundFee
					wantNRefund++
				}
			}
		}
		if paid != wantPaid || refunded != wantRefunded || nPaid != wantNPaid || nRefund != wantNRefund {
			t.Fatalf("%s: bill %d/%d (%d,%d), ledger %d/%d (%d,%d)", day, paid, refunded, nPaid, nRefund, wantPaid, wantRefunded, wantNPaid, wantNRefund)
		}
		sum := strings.Split(lines[len(lines)-1], ",")
		if sum[0] != "`"+strconv.Itoa(len(rows)) || fen(t, sum[1][1:]) != paid || fen(t, sum[2][1:]) != refunded {
			t.Fatalf("%s: summary %v", day, sum)
		}
		if day == "20261129" && (len(rows) != 1 || !strings.Contains(rows[0], otn3)) {
			t.Fatalf("the 29th: %v", rows)
		}
	}
}

// fen parses a bill amount in yuan ("12.34", "-0.02") to fen, without
// floats.
func fen(t *testing.T, y string) int64 {
	t.Helper()
	neg := strings.HasPrefix(y, "-")
	y = strings.TrimPrefix(y, "-")
	whole, frac, ok := strings.Cut(y, ".")
	if !ok || len(frac) != 2 {
		t.Fatalf("amount %q", y)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("amount %q", y)
	}
	if neg {
		return -(w*100 + f)
	}
	return w*100 + f
}

func TestBillTypes(t *testing.T) {
	e, _, otn2, _ := billScenario(t)
	succ, _ := e.bill(kv("bill_date", "20261128", "bill_type", "SUCCESS"))
	lines := strings.Split(succ, "\r\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,") ||
		len(strings.Split(lines[1], ",")) != 20 || lines[4] != "`2,`24.45,`0.00,`0.00,`0.15000,`24.45,`0.00" {
		t.Fatalf("SUCCESS bill:\n%s", succ)
	}
	ref, _ := e.bill(kv("bill_date", "20261128", "bill_type", "REFUND"))
	lines = strings.Split(ref, "\r\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "退款申请时间,退款成功时间") || len(strings.Split(lines[1], ",")) != 29 ||
		!strings.Contains(lines[1], "`BR"+otn2+",") || !strings.Contains(lines[1], "`2026-11-28 23:59:59,`2026-11-29 00:00:09,") {
		t.Fatalf("REFUND bill:\n%s", ref)
	}
	if _, fail := e.bill(kv("bill_date", "20261128", "bill_type", "RECHARGE_REFUND")); fail["return_msg"] != "No Bill Exist" || fail["error_code"] != "20002" {
		t.Fatalf("RECHARGE_REFUND: %v", fail)
	}
}

func TestBillErrors(t *testing.T) {
	e, _, _, _ := billScenario(t) // now: 2026-11-29 01:00:01
	cases := []struct {
		req       msg
		msg, code string
	}{
		{kv("bill_date", "20261127"), "No Bill Exist", "20002"}, // an empty day
		{kv("bill_date", "20261129"), "No Bill Exist", "20002"}, // not over yet
		{kv("bill_date", "20261301"), "data format error", ""},
		{kv("bill_date", "2026-11-28"), "data format error", ""},
		{kv("bill_date", "20261128", "bill_type", "FOO"), "invalid bill_type", ""},
		{kv("bill_date", "20261128", "tar_type", "ZIP"), "invalid tar_type", ""},
		{kv(), "missing parameter", ""},
	}
	for _, c := range cases {
		_, fail := e.bill(c.req)
		if fail == nil || fail["return_code"] != "FAIL" || fail["return_msg"] != c.msg || fail["error_code"] != c.code {
			t.Errorf("%v: %v", c.req, fail)
		}
	}
	// The "No Bill Exist" answer is exactly the documented XML.
	b, _ := e.raw("POST", "/pay/downloadbill", kv("bill_date", "20261127").signed(apiKey).xmlBody())
	if string(b) != "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code>20002</error_code></xml>" {
		t.Fatalf("no bill: %s", b)
	}
}

func TestBillCreating(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.BillCreatingUntil = 10 * time.Hour })
	otn, _ := e.paidOrder(100)
	_ = otn
	e.clock.Advance(23 * time.Hour) // 09:00 on the 29th
	if _, fail := e.bill(kv("bill_date", "20261128")); fail["return_msg"] != "Bill Creating" {
		t.Fatalf("09:00: %v", fail)
	}
	e.clock.Advance(time.Hour)
	if text, fail := e.bill(kv("bill_date", "20261128")); fail != nil || !strings.Contains(text, otn) {
		t.Fatalf("10:00: %v", fail)
	}
}

func TestBillMutator(t *testing.T) {
	e, otn1, _, _ := billScenario(t)
	e.sim.SetBillMutator(func(mch string, day time.Time, rows []wxsim.BillRow) []wxsim.BillRow {
		var out []wxsim.BillRow
		for _, r := range rows {
			if r.OutTradeNo == otn1 {
				continue // a payment missing from the bill
			}
			if !r.Refund {
				r.Settlement--
				r.TotalFee--
			}
			out = append(out, r)
		}
		return append(out, wxsim.BillRow{Time: day.Add(time.Hour), AppID: appID, MchID: mch, TransactionID: "4200000000000000000000000000",
			OutTradeNo: "NEVERISSUED", TradeType: "JSAPI", TradeState: "SUCCESS", BankType: "OTHERS", Settlement: 1, TotalFee: 1, FeeRate: 60})
	})
	text, _ := e.bill(kv("bill_date", "20261128"))
	if strings.Contains(text, otn1) || !strings.Contains(text, "`NEVERISSUED,") || !strings.Contains(text, "`23.44,") ||
		!strings.Contains(text, "`3,`23.45,`3.45,") {
		t.Fatalf("mutated bill:\n%s", text)
	}
}

func TestFundFlow(t *testing.T) {
	e, otn1, otn2, _ := billScenario(t)
	ff := func(m msg) (string, msg) {
		b, _ := e.raw("POST", "/pay/downloadfundflow", m.signed(apiKey).xmlBody())
		if bytes.HasPrefix(b, []byte("<xml>")) {
			return "", parseXML(t, b)
		}
		return string(b), nil
	}
	if _, fail := ff(kv("bill_date", "20261128", "account_type", "Basic")); fail["return_code"] != "FAIL" || !strings.Contains(fail["return_msg"], "HMAC-SHA256") {
		t.Fatalf("MD5: %v", fail)
	}
	text, fail := ff(kv("bill_date", "20261128", "account_type", "Basic", "sign_type", "HMAC-SHA256"))
	if fail != nil {
		t.Fatalf("fund flow: %v", fail)
	}
	lines := strings.Split(text, "\r\n")
	if lines[0] != "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号" {
		t.Fatalf("header %s", lines[0])
	}
	// 1.00 in, 0.01 fee out, 23.45 in, 0.14 fee out; the refund succeeds on the 29th.
	if len(lines) != 8 || !strings.Contains(lines[1], "`收入,`1.00,`1.00,") || !strings.Contains(lines[1], "`"+otn1) ||
		!strings.Contains(lines[2], "`扣除交易手续费,`支出,`0.01,`0.99,") || !strings.Contains(lines[3], "`23.45,`24.44,") ||
		!strings.Contains(lines[4], "`0.14,`24.30,") || !strings.Contains(lines[4], otn2) || lines[6] != "`4,`2,`24.45,`2,`0.15" {
		t.Fatalf("fund flow:\n%s", text)
	}
	if _, fail := ff(kv("bill_date", "20261128", "account_type", "Operation", "sign_type", "HMAC-SHA256")); fail["return_msg"] != "No Bill Exist" {
		t.Fatalf("Operation: %v", fail)
	}
	if _, fail := ff(kv("bill_date", "20261128", "account_type", "basic", "sign_type", "HMAC-SHA256")); fail["return_msg"] != "invalid account_type" {
		t.Fatalf("bad account: %v", fail)
	}
	if _, fail := ff(kv("bill_date", "20261128", "sign_type", "HMAC-SHA256")); fail["return_msg"] != "missing parameter" {
		t.Fatalf("no account: %v", fail)
	}
}
