package wxsim_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// paidOrder places and pays an order; it returns out_trade_no and
// transaction_id.
func (e *env) paidOrder(fee int64) (string, string) {
	e.t.Helper()
	openID := e.user(0)
	ans, otn := e.order(openID, fee)
	e.pay(openID, ans)
	o, _ := e.sim.Order(mchID, otn)
	return otn, o.TransactionID
}

func refundReq(otn, outRefundNo string, total, fee int64, extra ...string) msg {
	return kv("out_trade_no", otn, "out_refund_no", outRefundNo, "total_fee", strconv.FormatInt(total, 10),
		"refund_fee", strconv.FormatInt(fee, 10)).with(extra...)
}

func TestRefundErrors(t *testing.T) {
	e := newEnv(t)
	otn, txn := e.paidOrder(1000)
	openID := e.user(0)
	_, unpaid := e.order(openID, 1000)
	cases := []struct {
		name string
		req  msg
		ret  string
		code string
	}{
		{"no order number", kv("out_refund_no", "R1", "total_fee", "1000", "refund_fee", "1"), "缺少参数", ""},
		{"no out_refund_no", refundReq(otn, "", 1000, 1), "缺少参数 out_refund_no", ""},
		{"no refund_fee", refundReq(otn, "R1", 1000, 1).with("refund_fee", ""), "缺少参数 refund_fee", ""},
		{"no total_fee", refundReq(otn, "R1", 1000, 1).with("total_fee", ""), "缺少参数 total_fee", ""},
		{"unknown order", refundReq("NOPE0001", "R1", 1000, 1), "", "ORDERNOTEXIST"},
		{"unpaid order", refundReq(unpaid, "R1", 1000, 1), "", "ORDERNOTEXIST"},
		{"bad transaction_id", kv("transaction_id", "abc", "out_refund_no", "R1", "total_fee", "1000", "refund_fee", "1"), "", "INVALID_TRANSACTIONID"},
		{"unknown transaction_id", kv("transaction_id", "4200000000202611289999999999", "out_refund_no", "R1", "total_fee", "1000", "refund_fee", "1"), "", "ORDERNOTEXIST"},
		{"total_fee differs", refundReq(otn, "R1", 999, 1), "", "PARAM_ERROR"},
		{"refund above total", refundReq(otn, "R1", 1000, 1001), "", "PARAM_ERROR"},
		{"zero refund", refundReq(otn, "R1", 1000, 0), "", "PARAM_ERROR"},
		{"bad out_refund_no", refundReq(otn, "R#1", 1000, 1), "", "PARAM_ERROR"},
		{"bad refund_account", refundReq(otn, "R1", 1000, 1, "refund_account", "X"), "", "PARAM_ERROR"},
		{"bad notify_url", refundReq(otn, "R1", 1000, 1, "notify_url", "notaurl"), "", "PARAM_ERROR"},
		{"long refund_desc", refundReq(otn, "R1", 1000, 1, "refund_desc", strings.Repeat("x", 81)), "", "PARAM_ERROR"},
	}
	for _, c := range cases {
		ans := e.call("/secapi/pay/refund", c.req)
		if c.ret != "" {
			if ans["return_code"] != "FAIL" || !strings.Contains(ans["return_msg"], c.ret) {
				t.Errorf("%s: %v", c.name, ans)
			}
			continue
		}
		if ans["err_code"] != c.code {
			t.Errorf("%s: %v", c.name, ans)
		}
	}
	// Refund by transaction_id works; the cumulative cap holds.
	if a := e.call("/secapi/pay/refund", kv("transaction_id", txn, "out_refund_no", "R1", "total_fee", "1000", "refund_fee", "600")); a["result_code"] != "SUCCESS" {
		t.Fatalf("refund: %v", a)
	}
	if a := e.call("/secapi/pay/refund", refundReq(otn, "R2", 1000, 401)); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("over the cap: %v", a)
	}
	if a := e.call("/secapi/pay/refund", refundReq(otn, "R2", 1000, 400)); a["result_code"] != "SUCCESS" {
		t.Fatalf("up to the cap: %v", a)
	}
	if a := e.call("/secapi/pay/refund", refundReq(otn, "R3", 1000, 1)); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("fully refunded: %v", a)
	}
	// A year later refunds are refused.
	otn2, _ := e.paidOrder(100)
	e.clock.Advance(366 * 24 * time.Hour)
	if a := e.call("/secapi/pay/refund", refundReq(otn2, "RY1", 100, 1)); a["err_code"] != "TRADE_OVERDUE" {
		t.Fatalf("a year later: %v", a)
	}
}

// TestRefundIdempotent checks that the same out_refund_no is the same
// refund, executed once, and that another amount under it is refused.
func TestRefundIdempotent(t *testing.T) {
	e := newEnv(t)
	otn, _ := e.paidOrder(1000)
	a1 := e.call("/secapi/pay/refund", refundReq(otn, "R1", 1000, 300))
	a2 := e.call("/secapi/pay/refund", refundReq(otn, "R1", 1000, 300))
	if a1["refund_id"] == "" || a1["refund_id"] != a2["refund_id"] || a2["result_code"] != "SUCCESS" {
		t.Fatalf("retry: %v / %v", a1, a2)
	}
	a3 := e.call("/secapi/pay/refund", refundReq(otn, "R1", 1000, 301))
	if a3["err_code"] != "REFUND_FEE_MISMATCH" {
		t.Fatalf("other amount: %v", a3)
	}
	rs := e.sim.Refunds(mchID)
	if len(rs) != 1 || rs[0].Executions != 1 || rs[0].Requests != 3 {
		t.Fatalf("refunds: %+v", rs)
	}
	if o, _ := e.sim.Order(mchID, otn); o.Refunded != 300 || o.State != wxpay.TradeStateRefund {
		t.Fatalf("order: %+v", o)
	}
}

func TestRefundLimit50(t *testing.T) {
	e := newEnv(t)
	otn, _ := e.paidOrder(1000)
	for i := 0; i < 50; i++ {
		if a := e.call("/secapi/pay/refund", refundReq(otn, "R"+strconv.Itoa(i), 1000, 1)); a["result_code"] != "SUCCESS" {
			t.Fatalf("refund %d: %v", i, a)
		}
	}
	if a := e.call("/secapi/pay/refund", refundReq(otn, "R50", 1000, 1)); a["err_code"] != "ERROR" {
		t.Fatalf("51st: %v", a)
	}
	// refundquery pages through them, 10 at a time.
	q := e.call("/pay/refundquery", kv("out_trade_no", otn, "offset", "45"))
	if q["total_refund_count"] != "50" || q["refund_count"] != "5" || q["out_refund_no_0"] != "R45" || q["out_refund_no_4"] != "R49" {
		t.Fatalf("offset 45: %v", q)
	}
	q = e.call("/pay/refundquery", kv("out_trade_no", otn))
	if q["refund_count"] != "10" || q["out_refund_no_9"] != "R9" || q["out_refund_no_10"] != "" || q["refund_fee"] != "50" {
		t.Fatalf("first page: %v", q)
	}
	if q = e.call("/pay/refundquery", kv("out_trade_no", otn, "offset", "50")); q["err_code"] != "PARAM_ERROR" {
		t.Fatalf("offset past the end: %v", q)
	}
}

// TestRefundsRacing fires 20 concurrent refunds of 60% of one order: one is
// accepted, the sum never exceeds total_fee, and every out_refund_no is
// executed at most once.
func TestRefundsRacing(t *testing.T) {
	e := newEnv(t)
	otn, _ := e.paidOrder(1000)
	var wg sync.WaitGroup
	results := make([]msg, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signed := refundReq(otn, "RACE"+strconv.Itoa(i%10), 1000, 600).signed(apiKey)
			b, _ := e.raw("POST", "/secapi/pay/refund", signed.xmlBody())
			results[i] = parseXML(t, b)
		}()
	}
	wg.Wait()
	accepted := map[string]string{}
	for _, r := range results {
		if r["result_code"] == "SUCCESS" {
			accepted[r["out_refund_no"]] = r["refund_id"]
		} else if r["err_code"] != "PARAM_ERROR" {
			t.Fatalf("unexpected answer: %v", r)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("accepted refunds: %v", accepted)
	}
	var sum int64
	for _, rf := range e.sim.Refunds(mchID) {
		sum += rf.RefundFee
		if rf.Executions > 1 {
			t.Fatalf("refund executed %d times", rf.Executions)
		}
	}
	if sum > 1000 {
		t.Fatalf("refunded %d of 1000", sum)
	}
	e.clock.Advance(time.Minute)
	for _, rf := range e.sim.Refunds(mchID) {
		if rf.Status != wxpay.RefundStatusSuccess {
			t.Fatalf("refund %+v", rf)
		}
	}
}

func TestRefundQuery(t *testing.T) {
	e := newEnv(t)
	otn, txn := e.paidOrder(500)
	for _, by := range []msg{kv("out_trade_no", otn), kv("transaction_id", txn), kv("out_refund_no", "NONE1"), kv("refund_id", "503000")} {
		if q := e.call("/pay/refundquery", by); q["err_code"] != "REFUNDNOTEXIST" {
			t.Fatalf("%v: %v", by, q)
		}
	}
	if q := e.call("/pay/refundquery", kv()); q["return_code"] != "FAIL" {
		t.Fatalf("no key: %v", q)
	}
	a := e.call("/secapi/pay/refund", refundReq(otn, "RQ1", 500, 100))
	for _, by := range []msg{kv("out_trade_no", otn), kv("transaction_id", txn), kv("out_refund_no", "RQ1"), kv("refund_id", a["refund_id"])} {
		q := e.call("/pay/refundquery", by)
		if q["refund_count"] != "1" || q["refund_id_0"] != a["refund_id"] || q["refund_status_0"] != "PROCESSING" ||
			q["refund_fee_0"] != "100" || q["refund_channel_0"] != "ORIGINAL" || q["refund_recv_accout_0"] == "" || q["total_fee"] != "500" {
			t.Fatalf("%v: %v", by, q)
		}
	}
	if q := e.call("/pay/refundquery", kv("transaction_id", "x1")); q["err_code"] != "INVALID_TRANSACTIONID" {
		t.Fatalf("bad transaction_id: %v", q)
	}
}

// TestCompleteRefund checks the refund-complete hook: REFUNDCLOSE releases
// the amount, CHANGE keeps it, and each sends its notify.
func TestCompleteRefund(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.RefundNotifyURL = "http://127.0.0.1:1/unused"
		c.Merchants = []wxsim.Merchant{m}
		c.RefundDelay = time.Hour
	})
	otn, _ := e.paidOrder(1000)
	url := e.merchant.url("/notify/refund")
	e.call("/secapi/pay/refund", refundReq(otn, "RC1", 1000, 700, "notify_url", url))
	if err := e.sim.CompleteRefund("", "RC1", wxpay.RefundStatusClosed); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.CompleteRefund("", "RC1", wxpay.RefundStatusSuccess); err == nil {
		t.Fatal("completed a closed refund")
	}
	if err := e.sim.CompleteRefund("", "NOPE", wxpay.RefundStatusSuccess); err == nil {
		t.Fatal("completed an unknown refund")
	}
	// The 700 are refundable again.
	if a := e.call("/secapi/pay/refund", refundReq(otn, "RC2", 1000, 1000, "notify_url", url)); a["result_code"] != "SUCCESS" {
		t.Fatalf("after REFUNDCLOSE: %v", a)
	}
	var st int
	var rf wxsim.Refund
	if st = e.ctl("POST", "/sim/v1/refunds/RC2/complete", map[string]string{"status": "CHANGE"}, &rf); st != 200 || rf.Status != wxpay.RefundStatusChange {
		t.Fatalf("control complete: %d %+v", st, rf)
	}
	e.sim.Flush()
	var statuses []string
	for _, n := range e.merchant.received() {
		if n["_path"] != "/notify/refund" {
			continue
		}
		plain, err := wxcrypto.DecryptReqInfo(apiKey, n["req_info"])
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, parseXML(t, plain)["refund_status"])
	}
	if strings.Join(statuses, ",") != "REFUNDCLOSE,CHANGE" {
		t.Fatalf("notified statuses: %v", statuses)
	}
	// A refund without notify_url uses the merchant's RefundNotifyURL.
	otn2, _ := e.paidOrder(100)
	e.call("/secapi/pay/refund", refundReq(otn2, "RC3", 100, 100))
	if rs := e.sim.Refunds(mchID); rs[len(rs)-1].NotifyURL != "http://127.0.0.1:1/unused" {
		t.Fatalf("refund notify url = %q", rs[len(rs)-1].NotifyURL)
	}
}
