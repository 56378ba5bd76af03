package wxsim_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxsim"
)

func TestConfigValidate(t *testing.T) {
	if err := (wxsim.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	m := wxsim.DefaultMerchant()
	bad := []struct {
		name string
		cfg  wxsim.Config
		want string
	}{
		{"time scale", wxsim.Config{TimeScale: 0.5}, "TimeScale"},
		{"short key", wxsim.Config{Merchants: []wxsim.Merchant{{MchID: "1", APIKey: "short", Apps: m.Apps}}}, "32"},
		{"letters in mch id", wxsim.Config{Merchants: []wxsim.Merchant{{MchID: "abc", APIKey: m.APIKey, Apps: m.Apps}}}, "digits"},
		{"no app", wxsim.Config{Merchants: []wxsim.Merchant{{MchID: "1", APIKey: m.APIKey}}}, "no app"},
		{"twice", wxsim.Config{Merchants: []wxsim.Merchant{m, m}}, "twice"},
		{"secrets differ", wxsim.Config{Merchants: []wxsim.Merchant{m, {MchID: "2", APIKey: m.APIKey,
			Apps: []wxsim.App{{AppID: m.Apps[0].AppID, AppSecret: "other"}}}}}, "different secrets"},
		{"callback with query", wxsim.Config{Merchants: []wxsim.Merchant{{MchID: "1", APIKey: m.APIKey, Apps: m.Apps,
			NativeCallbackURL: "http://x/cb?a=1"}}}, "query"},
		{"body limit", wxsim.Config{MaxBodyBytes: 10}, "MaxBodyBytes"},
		{"reentry code", wxsim.Config{ReentryErrCode: "ORDERPAID"}, "ReentryErrCode"},
		{"negative balance", wxsim.Config{DefaultBalance: -1}, "DefaultBalance"},
	}
	for _, c := range bad {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if _, err := wxsim.New(c.cfg); err == nil {
			t.Errorf("%s: New accepted it", c.name)
		}
	}
	// A ManualClock serves one simulator at a time.
	clock := wxsim.NewManualClock(start)
	s1, err := wxsim.New(wxsim.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wxsim.New(wxsim.Config{Clock: clock}); err == nil {
		t.Fatal("a ManualClock shared by two simulators")
	}
	s1.Close()
	s2, err := wxsim.New(wxsim.Config{Clock: clock})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s2.Close()
	if got := s2.MchIDs(); len(got) != 1 || got[0] != mchID {
		t.Fatalf("MchIDs = %v", got)
	}
}

func TestRandomIDs(t *testing.T) {
	ids := wxsim.NewRandomIDs()
	formats := map[wxsim.IDKind]*regexp.Regexp{
		wxsim.IDTransaction: regexp.MustCompile(`^4200\d{6}20261128\d{10}$`),
		wxsim.IDRefund:      regexp.MustCompile(`^5030\d{6}20261128\d{11}$`),
		wxsim.IDPrepay:      regexp.MustCompile(`^wx20261128100000[0-9a-f]{20}$`),
		wxsim.IDLoginCode:   regexp.MustCompile(`^[0-9A-Za-z]{32}$`),
		wxsim.IDNonce:       regexp.MustCompile(`^[0-9A-Za-z]{32}$`),
		wxsim.IDAuthCode:    regexp.MustCompile(`^13\d{16}$`),
		wxsim.IDOpenID:      regexp.MustCompile(`^o[0-9A-Za-z_-]{27}$`),
		wxsim.IDSessionKey:  regexp.MustCompile(`^[A-Za-z0-9+/]{22}==$`),
		wxsim.IDSandboxKey:  regexp.MustCompile(`^[0-9a-f]{32}$`),
		wxsim.IDCodeURL:     regexp.MustCompile(`^[0-9A-Za-z]{7}$`),
	}
	for kind, re := range formats {
		seen := map[string]bool{}
		for i := 0; i < 200; i++ {
			id := ids.NewID(kind, start)
			if !re.MatchString(id) {
				t.Fatalf("%s: %q", kind, id)
			}
			if seen[id] && kind != wxsim.IDCodeURL {
				t.Fatalf("%s: %q twice", kind, id)
			}
			seen[id] = true
		}
	}
}

// TestRealClock: the default clock, moved forward through the control API,
// runs what falls due and makes the next day's bill available.
func TestRealClock(t *testing.T) {
	ms := newMerchantServer(t)
	ms.script(failReply)
	sim, err := wxsim.New(wxsim.Config{IDs: wxsim.NewSequentialIDs(), RefundDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e := &env{t: t, sim: sim, merchant: ms, srv: newTestServer(t, sim)}
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	e.pay(openID, ans)
	sim.Flush()
	if n := len(sim.Notifications()); n != 1 {
		t.Fatalf("tries = %d", n)
	}
	before := sim.Now()
	var clk struct{ Now string }
	e.ctl("POST", "/sim/v1/clock", map[string]any{"advance_seconds": 15}, &clk)
	if got := sim.Now().Sub(before); got < 15*time.Second || got > 20*time.Second {
		t.Fatalf("moved %v", got)
	}
	if log := sim.Notifications(); len(log) != 2 || !log[1].Acked {
		t.Fatalf("after +15 s: %+v", log)
	}
	e.call("/secapi/pay/refund", refundReq(otn, "RRC1", 100, 100))
	sim.Advance(time.Hour)
	if rs := sim.Refunds(""); rs[0].Status != wxpay.RefundStatusSuccess {
		t.Fatalf("refund after +1 h: %+v", rs[0])
	}
	o, _ := sim.Order(mchID, otn)
	day := o.PaidAt.In(wxpay.China).Format("20060102")
	sim.Advance(24 * time.Hour)
	b, _ := e.raw("POST", "/pay/downloadbill", kv("bill_date", day).signed(apiKey).xmlBody())
	if !strings.Contains(string(b), otn) {
		t.Fatalf("bill: %s", b)
	}
}

func TestReleaseNotifies(t *testing.T) {
	e := newEnv(t)
	var out map[string]any
	e.ctl("POST", "/sim/v1/faults", map[string]any{"api": "notify", "kind": "reorder", "count": 3}, &out)
	openID := e.user(0)
	for i := 0; i < 2; i++ {
		ans, _ := e.order(openID, 100)
		e.pay(openID, ans)
	}
	e.sim.Flush()
	if n := len(e.merchant.received()); n != 0 {
		t.Fatalf("held notifies delivered: %d", n)
	}
	e.ctl("POST", "/sim/v1/notifications/release", nil, &out)
	e.sim.Flush()
	got := e.merchant.received()
	if len(got) != 2 {
		t.Fatalf("released: %v", got)
	}
	log := e.sim.Notifications()
	if len(log) != 2 || log[0].Delivery < log[1].Delivery {
		t.Fatalf("not newest first: %+v", log)
	}
}

func TestReport(t *testing.T) {
	e := newEnv(t)
	good := kv("interface_url", "https://api.mch.weixin.qq.com/pay/unifiedorder", "execute_time_", "120",
		"return_code", "SUCCESS", "result_code", "SUCCESS", "user_ip", "10.0.0.1", "time", "20261128100000")
	a := e.call("/payitil/report", good)
	if a["return_code"] != "SUCCESS" || a["result_code"] != "SUCCESS" || a["sign"] != "" || e.sim.Reports() != 1 {
		t.Fatalf("report: %v", a)
	}
	if a := e.call("/payitil/report", good.with("execute_time_", "")); a["return_code"] != "FAIL" || !strings.Contains(a["return_msg"], "execute_time_") {
		t.Fatalf("no execute_time_: %v", a)
	}
	if a := e.call("/payitil/report", good.with("execute_time_", "1.5")); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("bad execute_time_: %v", a)
	}
	if a := e.call("/payitil/report", good.with("user_ip", strings.Repeat("1", 17))); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("long user_ip: %v", a)
	}
}
