package wxsim_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

func uoReq(otn, openID string) msg {
	return kv("body", "b", "out_trade_no", otn, "total_fee", "100", "spbill_create_ip", "127.0.0.1",
		"notify_url", "http://127.0.0.1:1/n", "trade_type", "JSAPI", "openid", openID)
}

// TestFaults checks each fault kind on unifiedorder: whether the call
// answered, what, and whether the order exists afterwards.
func TestFaults(t *testing.T) {
	cases := []struct {
		kind      wxsim.FaultKind
		errCode   string
		delay     time.Duration
		answered  bool
		status    int
		errCodeIs string
		created   bool
	}{
		{kind: wxsim.FaultSystemError, answered: true, status: 200, errCodeIs: "SYSTEMERROR", created: false},
		{kind: wxsim.FaultSystemErrorAfterCommit, answered: true, status: 200, errCodeIs: "SYSTEMERROR", created: true},
		{kind: wxsim.FaultErrCode, errCode: "FREQUENCY_LIMITED", answered: true, status: 200, errCodeIs: "FREQUENCY_LIMITED", created: false},
		{kind: wxsim.FaultHTTP500, answered: true, status: 500, created: false},
		{kind: wxsim.FaultDelay, delay: 200 * time.Millisecond, answered: true, status: 200, created: true},
		{kind: wxsim.FaultDropBeforeCommit, answered: false, created: false},
		{kind: wxsim.FaultDropAfterCommit, answered: false, created: true},
	}
	for _, c := range cases {
		e := newEnv(t)
		openID := e.user(0)
		if err := e.sim.InjectFault(wxsim.Fault{API: "unifiedorder", Kind: c.kind, Count: 1, Delay: c.delay, ErrCode: c.errCode}); err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		body := uoReq("F100001", openID).signed(apiKey).xmlBody()
		began := time.Now()
		resp, err := e.srv.Client().Post(e.srv.URL+"/pay/unifiedorder", "text/xml", bytes.NewReader(body))
		took := time.Since(began)
		if !c.answered {
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: got an answer", c.kind)
			}
		} else {
			if err != nil {
				t.Fatalf("%s: %v", c.kind, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("%s: status %d", c.kind, resp.StatusCode)
			}
			if c.status == 200 {
				ans := parseXML(t, b)
				if ans["err_code"] != c.errCodeIs {
					t.Errorf("%s: %v", c.kind, ans)
				}
				if ans["return_code"] == "SUCCESS" {
					verifySigned(t, ans, apiKey, "MD5")
				}
			}
		}
		if c.delay > 0 && took < c.delay {
			t.Errorf("%s: answered after %v", c.kind, took)
		}
		_, found := e.sim.Order(mchID, "F100001")
		if found != c.created {
			t.Errorf("%s: order created = %v", c.kind, found)
		}
		// The fault was used up: the retry with the same parameters works
		// (and, after a commit, returns the same prepay_id).
		ans := e.call("/pay/unifiedorder", uoReq("F100001", openID))
		if ans["result_code"] != "SUCCESS" {
			t.Errorf("%s: retry %v", c.kind, ans)
		}
		if n := len(e.sim.Orders("")); n != 1 {
			t.Errorf("%s: %d orders", c.kind, n)
		}
	}
}

func TestFaultCountAndWildcard(t *testing.T) {
	e := newEnv(t)
	var out struct {
		Faults []struct {
			API   string `json:"api"`
			Kind  string `json:"kind"`
			Count int    `json:"count"`
		} `json:"faults"`
	}
	if st := e.ctl("POST", "/sim/v1/faults", map[string]any{"api": "*", "kind": "SYSTEMERROR", "count": 2}, &out); st != 200 ||
		len(out.Faults) != 1 || out.Faults[0].Count != 2 {
		t.Fatalf("inject: %d %+v", st, out)
	}
	for i := 0; i < 2; i++ {
		if a := e.call("/pay/orderquery", kv("out_trade_no", "T000001")); a["err_code"] != "SYSTEMERROR" {
			t.Fatalf("call %d: %v", i, a)
		}
	}
	if a := e.call("/pay/orderquery", kv("out_trade_no", "T000001")); a["err_code"] != "ORDERNOTEXIST" {
		t.Fatalf("after the faults: %v", a)
	}
	// A reverse under SYSTEMERROR says recall=Y; a bill says SYSTEMERROR.
	e.sim.InjectFault(wxsim.Fault{API: "reverse", Kind: wxsim.FaultSystemError})
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", "T000001")); a["err_code"] != "SYSTEMERROR" || a["recall"] != "Y" {
		t.Fatalf("reverse: %v", a)
	}
	e.sim.InjectFault(wxsim.Fault{API: "downloadbill", Kind: wxsim.FaultSystemError})
	if a := e.call("/pay/downloadbill", kv("bill_date", "20261127")); a["return_code"] != "FAIL" || a["return_msg"] != "SYSTEMERROR" {
		t.Fatalf("downloadbill: %v", a)
	}
	// Bad faults are refused.
	for _, bad := range []map[string]any{
		{"api": "nosuch", "kind": "SYSTEMERROR"}, {"api": "unifiedorder", "kind": "nosuch"},
		{"api": "unifiedorder", "kind": "delay"}, {"api": "notify", "kind": "HTTP_500"}, {"api": "unifiedorder", "kind": "ERR_CODE"},
		{"api": "unifiedorder", "kind": "SYSTEMERROR", "count": -1},
	} {
		var errOut struct{ Error string }
		if st := e.ctl("POST", "/sim/v1/faults", bad, &errOut); st != 400 || errOut.Error == "" {
			t.Fatalf("%v: %d %v", bad, st, errOut)
		}
	}
	e.sim.InjectFault(wxsim.Fault{API: "orderquery", Kind: wxsim.FaultHTTP500, Count: 5})
	e.sim.NotifyDrop(3)
	e.ctl("GET", "/sim/v1/faults", nil, &out)
	if len(out.Faults) != 2 {
		t.Fatalf("pending: %+v", out)
	}
	e.ctl("DELETE", "/sim/v1/faults", nil, &out)
	if len(out.Faults) != 0 {
		t.Fatalf("after clear: %+v", out)
	}
}

func TestFaultRate(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.Seed = 7 })
	e.sim.InjectFault(wxsim.Fault{API: "orderquery", Kind: wxsim.FaultSystemError, Count: 1000, Rate: 0.3})
	hit := 0
	for i := 0; i < 200; i++ {
		if a := e.call("/pay/orderquery", kv("out_trade_no", "T000001")); a["err_code"] == "SYSTEMERROR" {
			hit++
		}
	}
	if hit < 30 || hit > 90 {
		t.Fatalf("rate 0.3 hit %d of 200", hit)
	}
}

func TestFaultJSCode2Session(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(wxsim.Fault{API: "jscode2session", Kind: wxsim.FaultSystemError})
	q := url.Values{"appid": {appID}, "secret": {wxsim.DefaultAppSecret}, "js_code": {"x"}, "grant_type": {"authorization_code"}}
	b, _ := e.raw("GET", "/sns/jscode2session?"+q.Encode(), nil)
	if !strings.Contains(string(b), `"errcode":-1`) {
		t.Fatalf("answer %s", b)
	}
	e.sim.InjectFault(wxsim.Fault{API: "jscode2session", Kind: wxsim.FaultErrCode, ErrCode: "45011"})
	b, _ = e.raw("GET", "/sns/jscode2session?"+q.Encode(), nil)
	if !strings.Contains(string(b), `"errcode":45011`) {
		t.Fatalf("answer %s", b)
	}
	e.sim.InjectFault(wxsim.Fault{API: "jscode2session", Kind: wxsim.FaultHTTP500})
	_, resp := e.raw("GET", "/sns/jscode2session?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestFaultUserPaysFirst: the user pays between the merchant's query and
// its close; the close answers ORDERPAID and the notify follows.
func TestFaultUserPaysFirst(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	_, otn := e.order(openID, 100)
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "NOTPAY" {
		t.Fatalf("query: %v", q)
	}
	if err := e.sim.InjectFault(wxsim.Fault{API: "closeorder", Kind: wxsim.FaultUserPaysFirst}); err != nil {
		t.Fatal(err)
	}
	if a := e.call("/pay/closeorder", kv("out_trade_no", otn)); a["err_code"] != "ORDERPAID" {
		t.Fatalf("close: %v", a)
	}
	e.sim.Flush()
	if n := len(e.merchant.received()); n != 1 {
		t.Fatalf("notifies: %d", n)
	}
	if err := e.sim.InjectFault(wxsim.Fault{API: "orderquery", Kind: wxsim.FaultUserPaysFirst}); err == nil {
		t.Fatal("USER_PAYS_FIRST accepted for orderquery")
	}
}
