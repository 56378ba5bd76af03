package wxsim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

const failReply = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>"

// verifyingReply answers SUCCESS to a correctly signed pay notify and FAIL
// otherwise, as a careful merchant does.
func verifyingReply(_ string, m msg) (int, string) {
	f := msg{}
	for k, v := range m {
		if k != "_path" {
			f[k] = v
		}
	}
	st := wxpay.SignType(f["sign_type"])
	if st == "" {
		st = wxpay.SignTypeMD5
	}
	if !wxcrypto.Verify(st, apiKey, wxcrypto.FieldsFromMap(map[string]string(f)), f["sign"]) {
		return 200, "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[bad sign]]></return_msg></xml>"
	}
	return 200, okReply
}

// TestNotifyRetrySchedule checks WeChat's schedule with the fake clock: 16
// tries at 0, 15s, 30s, 1m, 4m, 14m, 34m, 64m, 94m, 124m, 184m, 364m,
// 544m, 724m, 1084m and 1444m (24h04m), then no more.
func TestNotifyRetrySchedule(t *testing.T) {
	e := newEnv(t)
	e.merchant.reply = func(string, msg) (int, string) { return 200, failReply }
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	e.clock.Advance(time.Minute) // paid at start+1m
	e.pay(openID, ans)
	e.sim.Flush()
	if n := len(e.sim.Notifications()); n != 1 {
		t.Fatalf("after the payment: %d tries", n)
	}
	e.clock.Advance(14 * time.Second)
	if n := len(e.sim.Notifications()); n != 1 {
		t.Fatalf("before 15 s: %d tries", n)
	}
	e.clock.Advance(time.Second)
	if n := len(e.sim.Notifications()); n != 2 {
		t.Fatalf("at 15 s: %d tries", n)
	}
	if err := e.sim.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := e.sim.Notifications()
	offsets := []time.Duration{0, 15 * time.Second, 30 * time.Second, time.Minute, 4 * time.Minute, 14 * time.Minute,
		34 * time.Minute, 64 * time.Minute, 94 * time.Minute, 124 * time.Minute, 184 * time.Minute, 364 * time.Minute,
		544 * time.Minute, 724 * time.Minute, 1084 * time.Minute, 1444 * time.Minute}
	if len(log) != len(offsets) {
		t.Fatalf("tries = %d", len(log))
	}
	paidAt := start.Add(time.Minute)
	for i, a := range log {
		if !a.Time.Equal(paidAt.Add(offsets[i])) || a.Attempt != i+1 || a.Acked || a.Verdict != wxsim.VerdictRejected ||
			a.OutTradeNo != otn || a.Kind != wxsim.NotifyPay || a.HTTPStatus != 200 {
			t.Fatalf("try %d: %+v", i+1, a)
		}
		if i < 15 && !a.NextAt.Equal(paidAt.Add(offsets[i+1])) {
			t.Fatalf("try %d next_at = %v", i+1, a.NextAt)
		}
	}
	if !log[15].NextAt.IsZero() {
		t.Fatal("the 16th try announces another")
	}
	if st := e.sim.NotifyStats(); st.GaveUp != 1 || st.Tries != 16 || st.Acknowledged != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if got := e.sim.Now().Sub(paidAt); got != 1444*time.Minute {
		t.Fatalf("clock moved to +%v", got)
	}
	e.clock.Advance(48 * time.Hour)
	if n := len(e.sim.Notifications()); n != 16 {
		t.Fatalf("tries after the schedule = %d", n)
	}
}

// TestNotifyFailThenSuccess: the merchant answers FAIL twice, then SUCCESS;
// delivery stops there.
func TestNotifyFailThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.merchant.script(failReply, failReply)
	openID := e.user(0)
	ans, _ := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	e.clock.Advance(time.Hour)
	log := e.sim.Notifications()
	if len(log) != 3 || log[0].Acked || log[1].Acked || !log[2].Acked || !log[2].Time.Equal(start.Add(30*time.Second)) {
		t.Fatalf("log = %+v", log)
	}
	if len(e.merchant.received()) != 3 {
		t.Fatal("merchant got another notify")
	}
	if st := e.sim.NotifyStats(); st.Acknowledged != 1 || st.Tries != 3 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestNotifyReplyValidation checks what counts as an acknowledgement.
func TestNotifyReplyValidation(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		verdict string
	}{
		{"exact", 200, okReply, wxsim.VerdictAcknowledged},
		{"no CDATA", 200, "<xml><return_code>SUCCESS</return_code><return_msg>OK</return_msg></xml>", wxsim.VerdictAcknowledged},
		{"no return_msg", 200, "<xml><return_code>SUCCESS</return_code></xml>", wxsim.VerdictAcknowledged},
		{"declaration and space", 200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n <return_code>SUCCESS</return_code>\n</xml>\n", wxsim.VerdictAcknowledged},
		{"FAIL", 200, failReply, wxsim.VerdictRejected},
		{"500 with SUCCESS", 500, okReply, wxsim.VerdictRejected},
		{"204", 204, "", wxsim.VerdictRejected},
		{"plain success", 200, "success", wxsim.VerdictMalformed},
		{"plain SUCCESS", 200, "SUCCESS", wxsim.VerdictMalformed},
		{"v3 JSON", 200, `{"code":"SUCCESS","message":"成功"}`, wxsim.VerdictMalformed},
		{"empty", 200, "", wxsim.VerdictMalformed},
		{"lower-case ok", 200, "<xml><return_code>SUCCESS</return_code><return_msg>ok</return_msg></xml>", wxsim.VerdictMalformed},
		{"lower-case code", 200, "<xml><return_code>success</return_code></xml>", wxsim.VerdictMalformed},
		{"extra field", 200, "<xml><return_code>SUCCESS</return_code><return_msg>OK</return_msg><x>1</x></xml>", wxsim.VerdictMalformed},
		{"no return_code", 200, "<xml><return_msg>OK</return_msg></xml>", wxsim.VerdictMalformed},
		{"duplicate", 200, "<xml><return_code>SUCCESS</return_code><return_code>SUCCESS</return_code></xml>", wxsim.VerdictMalformed},
		{"trailing", 200, okReply + "<xml/>", wxsim.VerdictMalformed},
		{"html", 200, "<html><body>SUCCESS</body></html>", wxsim.VerdictMalformed},
	}
	for _, c := range cases {
		e := newEnv(t)
		e.merchant.reply = func(string, msg) (int, string) { return c.status, c.body }
		openID := e.user(0)
		ans, _ := e.order(openID, 100)
		e.pay(openID, ans)
		e.sim.Flush()
		log := e.sim.Notifications()
		if len(log) != 1 || log[0].Verdict != c.verdict || log[0].Acked != (c.verdict == wxsim.VerdictAcknowledged) || log[0].HTTPStatus != c.status {
			t.Errorf("%s: %+v", c.name, log)
		}
		if c.verdict == wxsim.VerdictMalformed && e.sim.NotifyStats().Malformed != 1 {
			t.Errorf("%s: malformed not counted", c.name)
		}
	}
}

func TestNotifyUnreachableAndTimeout(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.NotifyTimeout = 100 * time.Millisecond })
	block := make(chan struct{})
	e.merchant.reply = func(string, msg) (int, string) { <-block; return 200, okReply }
	defer close(block)
	openID := e.user(0)
	ans, _ := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	log := e.sim.Notifications()
	if len(log) != 1 || log[0].Verdict != wxsim.VerdictUnreachable || log[0].Acked {
		t.Fatalf("timeout: %+v", log)
	}
}

// TestNotifyTimeScale runs the whole 24h04m schedule on the real clock at
// time scale 60000: about 1.5 s.
func TestNotifyTimeScale(t *testing.T) {
	var hits atomic.Int32
	ms := newMerchantServer(t)
	ms.reply = func(string, msg) (int, string) { hits.Add(1); return 200, failReply }
	sim, err := wxsim.New(wxsim.Config{TimeScale: 60000, IDs: wxsim.NewSequentialIDs()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	u, _ := sim.CreateUser(wxsim.NewUser{})
	e := &env{t: t, sim: sim, merchant: ms}
	e.srv = newTestServer(t, sim)
	ans, _ := e.order(u.OpenID, 100)
	began := time.Now()
	e.pay(u.OpenID, ans)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sim.Quiesce(ctx); err != nil {
		t.Fatalf("quiesce: %v (%d tries)", err, hits.Load())
	}
	took := time.Since(began)
	if hits.Load() != 16 {
		t.Fatalf("tries = %d", hits.Load())
	}
	if took < 1400*time.Millisecond || took > 10*time.Second {
		t.Fatalf("the schedule took %v, want about 1.44 s", took)
	}
	t.Logf("16 tries over 24h04m at scale 60000 took %v", took)
}

func TestNotifyFaultDuplicate(t *testing.T) {
	e := newEnv(t)
	e.sim.NotifyDuplicate(1)
	openID := e.user(0)
	ans, _ := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	if got := len(e.merchant.received()); got != 2 {
		t.Fatalf("merchant got %d", got)
	}
	log := e.sim.Notifications()
	if len(log) != 2 || log[0].Duplicate == log[1].Duplicate {
		t.Fatalf("log = %+v", log)
	}
	// The next notify is single again.
	ans2, _ := e.order(openID, 100)
	e.pay(openID, ans2)
	e.sim.Flush()
	if got := len(e.merchant.received()); got != 3 {
		t.Fatalf("merchant got %d", got)
	}
}

func TestNotifyFaultDelay(t *testing.T) {
	e := newEnv(t)
	if err := e.sim.InjectFault(wxsim.Fault{API: "notify", Kind: wxsim.FaultDelay, Count: 1, Delay: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	openID := e.user(0)
	ans, _ := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	if n := len(e.merchant.received()); n != 0 {
		t.Fatalf("delivered at once: %d", n)
	}
	e.clock.Advance(10 * time.Minute)
	if log := e.sim.Notifications(); len(log) != 1 || !log[0].Time.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("log = %+v", log)
	}
}

// TestNotifyFaultReorder: the refund notify arrives before the pay notify.
func TestNotifyFaultReorder(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.RefundDelay = -1 })
	e.sim.NotifyReorder(2)
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	if n := len(e.merchant.received()); n != 0 {
		t.Fatalf("pay notify not held: %d", n)
	}
	e.call("/secapi/pay/refund", refundReq(otn, "RR1", 100, 100, "notify_url", e.merchant.url("/notify/refund")))
	e.sim.Flush()
	got := e.merchant.received()
	if len(got) != 2 || got[0]["_path"] != "/notify/refund" || got[1]["_path"] != "/notify/pay" {
		t.Fatalf("order = %v", got)
	}
}

func TestNotifyFaultDrop(t *testing.T) {
	e := newEnv(t)
	var out struct {
		Faults []map[string]any `json:"faults"`
	}
	if st := e.ctl("POST", "/sim/v1/faults", map[string]any{"api": "notify", "kind": "drop", "count": 1}, &out); st != 200 || len(out.Faults) != 1 {
		t.Fatalf("inject: %d %v", st, out)
	}
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	e.clock.Advance(48 * time.Hour)
	if n := len(e.merchant.received()); n != 0 {
		t.Fatalf("dropped notify delivered %d times", n)
	}
	log := e.sim.Notifications()
	if len(log) != 1 || log[0].Verdict != wxsim.VerdictDropped || log[0].OutTradeNo != otn {
		t.Fatalf("log = %+v", log)
	}
	// The merchant finds the payment by querying.
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "SUCCESS" {
		t.Fatalf("query: %v", q)
	}
}

// TestNotifyFaultBadSignature sends a probe with a wrong sign before the
// real notify: a verifying merchant refuses it; a careless one is caught.
func TestNotifyFaultBadSignature(t *testing.T) {
	for _, careful := range []bool{true, false} {
		e := newEnv(t)
		if careful {
			e.merchant.reply = verifyingReply
		}
		e.sim.NotifyBadSignature(1)
		openID := e.user(0)
		ans, _ := e.order(openID, 100)
		e.pay(openID, ans)
		e.sim.Flush()
		log := e.sim.Notifications()
		if len(log) != 2 || log[0].Kind != wxsim.NotifyProbe || log[1].Kind != wxsim.NotifyPay || !log[1].Acked {
			t.Fatalf("log = %+v", log)
		}
		st := e.sim.NotifyStats()
		if st.ProbesSent != 1 || (st.ProbesAccepted == 1) == careful || log[0].Acked != careful {
			t.Fatalf("careful=%v: stats %+v, probe %+v", careful, st, log[0])
		}
	}
}

// TestSendPayNotify sends a validly signed notify whose amount is one fen
// short (reliability.md A2).
func TestSendPayNotify(t *testing.T) {
	e := newEnv(t)
	e.merchant.reply = verifyingReply
	openID := e.user(0)
	ans, otn := e.order(openID, 100, "sign_type", "HMAC-SHA256")
	req := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeHMACSHA256)
	req.OpenID = openID
	if r := e.sim.RequestPayment(req); !r.OK() {
		t.Fatal(r.ErrMsg)
	}
	e.sim.Flush()
	a, err := e.sim.SendPayNotify(context.Background(), mchID, otn, func(f []wxcrypto.Field) []wxcrypto.Field {
		for i := range f {
			if f[i].Name == "total_fee" {
				f[i].Value = "99"
			}
		}
		return append(f, wxcrypto.Field{Name: "new_field", Value: "x"})
	})
	if err != nil || a.Kind != wxsim.NotifyCustom || !a.Acked {
		t.Fatalf("attempt %+v, %v", a, err)
	}
	got := e.merchant.received()
	last := got[len(got)-1]
	if last["total_fee"] != "99" || last["new_field"] != "x" || len(last["sign"]) != 64 {
		t.Fatalf("sent %v", last)
	}
	if _, err := e.sim.SendPayNotify(context.Background(), mchID, "NOPE0001", nil); err == nil {
		t.Fatal("sent for an unknown order")
	}
}

func newTestServer(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
