package wxsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestWholeFlow walks the seed flow: login, order, paySign, pay, notify,
// query, refund, refund notify, refund query, bill.
func TestWholeFlow(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) {
		c.Merchants = []wxsim.Merchant{func() wxsim.Merchant { m := wxsim.DefaultMerchant(); return m }()}
	})
	var u wxsim.User
	if st := e.ctl("POST", "/sim/v1/users", map[string]any{"balance": 5000}, &u); st != http.StatusCreated {
		t.Fatalf("create user: %d", st)
	}
	if u.Balance != 5000 || u.AppID != appID {
		t.Fatalf("user = %+v", u)
	}

	// wx.login → code → jscode2session.
	var code struct{ Code string }
	e.ctl("POST", "/sim/v1/login-codes", map[string]string{"appid": appID, "openid": u.OpenID}, &code)
	q := url.Values{"appid": {appID}, "secret": {wxsim.DefaultAppSecret}, "js_code": {code.Code}, "grant_type": {"authorization_code"}}
	body, _ := e.raw("GET", "/sns/jscode2session?"+q.Encode(), nil)
	var sess struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		ErrCode    int    `json:"errcode"`
	}
	if err := json.Unmarshal(body, &sess); err != nil || sess.OpenID != u.OpenID || sess.SessionKey == "" || sess.ErrCode != 0 {
		t.Fatalf("jscode2session = %s", body)
	}

	// unifiedorder (JSAPI, HMAC-SHA256).
	ans, otn := e.order(u.OpenID, 1234, "sign_type", "HMAC-SHA256", "attach", "a&b<c>")
	if ans["trade_type"] != "JSAPI" || !strings.HasPrefix(ans["prepay_id"], "wx") {
		t.Fatalf("unifiedorder = %v", ans)
	}

	// wx.requestPayment with a paySign computed by the merchant.
	req := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeHMACSHA256)
	req.OpenID = u.OpenID
	var pr wxsim.PaymentResult
	e.ctl("POST", "/sim/v1/request-payment", req, &pr)
	if pr.ErrMsg != "requestPayment:ok" {
		t.Fatalf("requestPayment = %+v", pr)
	}

	// The pay notify arrives, signed with HMAC-SHA256, and is acknowledged.
	e.sim.Flush()
	got := e.merchant.received()
	if len(got) != 1 {
		t.Fatalf("notifies = %d", len(got))
	}
	n := got[0]
	delete(n, "_path")
	verifySigned(t, n, apiKey, wxpay.SignTypeHMACSHA256)
	if n["sign_type"] != "HMAC-SHA256" || n["total_fee"] != "1234" || n["out_trade_no"] != otn || n["openid"] != u.OpenID ||
		n["attach"] != "a&b<c>" || n["result_code"] != "SUCCESS" || len(n["time_end"]) != 14 || n["transaction_id"] == "" {
		t.Fatalf("pay notify = %v", n)
	}
	log := e.sim.Notifications()
	if len(log) != 1 || !log[0].Acked || log[0].Verdict != wxsim.VerdictAcknowledged {
		t.Fatalf("log = %+v", log)
	}

	// orderquery says SUCCESS.
	q1 := e.call("/pay/orderquery", kv("out_trade_no", otn))
	if q1["trade_state"] != "SUCCESS" || q1["transaction_id"] != n["transaction_id"] || q1["total_fee"] != "1234" || q1["cash_fee"] != "1234" {
		t.Fatalf("orderquery = %v", q1)
	}
	if bal, _ := e.sim.User(u.OpenID); bal.Balance != 5000-1234 {
		t.Fatalf("balance = %d", bal.Balance)
	}

	// Refund part of it; the refund notify's req_info decrypts.
	e.clock.Advance(time.Minute)
	rf := e.call("/secapi/pay/refund", kv("transaction_id", n["transaction_id"], "out_refund_no", "R"+otn,
		"total_fee", "1234", "refund_fee", "234", "notify_url", e.merchant.url("/notify/refund")))
	if rf["result_code"] != "SUCCESS" || rf["refund_fee"] != "234" || rf["refund_id"] == "" {
		t.Fatalf("refund = %v", rf)
	}
	rq := e.call("/pay/refundquery", kv("out_trade_no", otn))
	if rq["refund_status_0"] != "PROCESSING" || rq["refund_count"] != "1" {
		t.Fatalf("refundquery before = %v", rq)
	}
	e.clock.Advance(10 * time.Second) // RefundDelay
	got = e.merchant.received()
	if len(got) != 2 || got[1]["_path"] != "/notify/refund" {
		t.Fatalf("notifies = %v", got)
	}
	if _, hasSign := got[1]["sign"]; hasSign {
		t.Fatal("refund notify carries a sign")
	}
	plain, err := wxcrypto.DecryptReqInfo(apiKey, got[1]["req_info"])
	if err != nil {
		t.Fatal(err)
	}
	ri := parseXML(t, plain)
	if ri["refund_status"] != "SUCCESS" || ri["out_refund_no"] != "R"+otn || ri["refund_fee"] != "234" ||
		ri["total_fee"] != "1234" || ri["refund_id"] != rf["refund_id"] || !strings.HasPrefix(string(plain), "<root>") ||
		ri["success_time"] != "2026-11-28 10:01:10" {
		t.Fatalf("req_info = %s", plain)
	}
	rq = e.call("/pay/refundquery", kv("out_refund_no", "R"+otn))
	if rq["refund_status_0"] != "SUCCESS" || rq["refund_success_time_0"] != "2026-11-28 10:01:10" {
		t.Fatalf("refundquery after = %v", rq)
	}
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "REFUND" {
		t.Fatalf("orderquery after refund = %v", q)
	}
	if bal, _ := e.sim.User(u.OpenID); bal.Balance != 5000-1000 {
		t.Fatalf("balance after refund = %d", bal.Balance)
	}

	// The next day, the bill of 2026-11-28 holds the payment and the refund.
	e.clock.Advance(24 * time.Hour)
	signed := kv("bill_date", "20261128", "bill_type", "ALL").signed(apiKey)
	bill, resp := e.raw("POST", "/pay/downloadbill", signed.xmlBody())
	if resp.StatusCode != 200 || strings.HasPrefix(string(bill), "<xml>") {
		t.Fatalf("downloadbill: %s", bill)
	}
	lines := strings.Split(string(bill), "\r\n")
	if len(lines) != 6 || lines[5] != "" {
		t.Fatalf("bill lines = %q", lines)
	}
	if !strings.Contains(lines[1], "`"+otn+",") || !strings.Contains(lines[1], "`SUCCESS,") || !strings.Contains(lines[1], "`12.34,") {
		t.Fatalf("payment row = %s", lines[1])
	}
	if !strings.Contains(lines[2], "`R"+otn+",") || !strings.Contains(lines[2], "`REFUND,") || !strings.Contains(lines[2], "`2.34,") {
		t.Fatalf("refund row = %s", lines[2])
	}
	if lines[4] != "`2,`12.34,`2.34,`0.00,`0.06000,`12.34,`2.34" {
		t.Fatalf("summary = %s", lines[4])
	}
	_ = io.Discard
}
