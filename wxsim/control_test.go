package wxsim_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestRequestPayment checks wx.requestPayment's checks, each failure with
// its reason, and that nothing is paid on failure.
func TestRequestPayment(t *testing.T) {
	e := newEnv(t)
	openID := e.user(1000)
	otherUser := e.user(1000)
	ans, otn := e.order(openID, 500)
	good := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeMD5)
	good.OpenID = openID
	wrongKey := paySign(strings.Repeat("0", 32), appID, ans["prepay_id"], wxpay.SignTypeMD5)
	wrongKey.OpenID = openID
	secret := paySign(wxsim.DefaultAppSecret, appID, ans["prepay_id"], wxpay.SignTypeMD5)
	secret.OpenID = openID
	hmac := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeHMACSHA256)
	hmac.OpenID = openID
	lower := good
	lower.PaySign = strings.ToLower(good.PaySign)
	noAppID := good
	noAppID.PaySign = func() string {
		s, _ := wxcrypto.Sign(wxpay.SignTypeMD5, apiKey, []wxcrypto.Field{{Name: "nonceStr", Value: good.NonceStr},
			{Name: "package", Value: good.Package}, {Name: "signType", Value: "MD5"}, {Name: "timeStamp", Value: good.TimeStamp}})
		return s
	}()
	changed := good
	changed.TimeStamp = "1764300001"
	other := good
	other.OpenID = otherUser
	cases := []struct {
		name string
		req  wxsim.PaymentRequest
		want string
	}{
		{"no paySign", func() wxsim.PaymentRequest { r := good; r.PaySign = ""; return r }(), "parameter.paySign should be String"},
		{"no package", func() wxsim.PaymentRequest { r := good; r.Package = ""; return r }(), "parameter.package"},
		{"bad package", func() wxsim.PaymentRequest { r := good; r.Package = ans["prepay_id"]; return r }(), "prepay_id=<prepay_id>"},
		{"bad signType", func() wxsim.PaymentRequest { r := good; r.SignType = "RSA"; return r }(), "signType"},
		{"bad timeStamp", func() wxsim.PaymentRequest { r := good; r.TimeStamp = "12:00"; return r }(), "timeStamp"},
		{"unknown prepay", paySign(apiKey, appID, "wx000", wxpay.SignTypeMD5), "不存在"},
		{"wrong key", wrongKey, "支付验证签名失败"},
		{"AppSecret as key", secret, "AppSecret"},
		{"lower-case", lower, "lower case"},
		{"appId left out of the sign", noAppID, "appId"},
		{"a parameter changed after signing", changed, "支付验证签名失败"},
		{"signType differs from unifiedorder", hmac, "differs from the unifiedorder sign_type"},
		{"another user", other, "下单账号与支付账号不一致"},
		{"wrong appId", func() wxsim.PaymentRequest { r := good; r.AppID = "wx0"; return r }(), "appId"},
		{"cancel", func() wxsim.PaymentRequest { r := good; r.Outcome = wxsim.OutcomeCancel; return r }(), "requestPayment:fail cancel"},
		{"insufficient", func() wxsim.PaymentRequest { r := good; r.Outcome = wxsim.OutcomeInsufficient; return r }(), "余额不足"},
		{"fail", func() wxsim.PaymentRequest { r := good; r.Outcome = wxsim.OutcomeFail; return r }(), "支付失败"},
		{"bad outcome", func() wxsim.PaymentRequest { r := good; r.Outcome = "maybe"; return r }(), "outcome"},
		{"unknown user", func() wxsim.PaymentRequest { r := good; r.OpenID = "nobody"; return r }(), "用户不存在"},
	}
	for _, c := range cases {
		res := e.sim.RequestPayment(c.req)
		if res.OK() || !strings.HasPrefix(res.ErrMsg, "requestPayment:fail ") || !strings.Contains(res.ErrMsg, c.want) {
			t.Errorf("%s: %q", c.name, res.ErrMsg)
		}
	}
	if o, _ := e.sim.Order(mchID, otn); o.State != wxpay.TradeStateNotPay {
		t.Fatalf("order after failures: %s", o.State)
	}
	// A short balance fails; topped up, it pays; a second payment fails.
	e.sim.SetBalance(openID, 499)
	if res := e.sim.RequestPayment(good); res.OK() || !strings.Contains(res.ErrMsg, "余额不足") {
		t.Fatalf("short balance: %s", res.ErrMsg)
	}
	e.sim.SetBalance(openID, 500)
	var res wxsim.PaymentResult
	if e.ctl("POST", "/sim/v1/request-payment", good, &res); !res.OK() || res.TransactionID == "" {
		t.Fatalf("pay: %+v", res)
	}
	if res := e.sim.RequestPayment(good); res.OK() || !strings.Contains(res.ErrMsg, "已支付") {
		t.Fatalf("pay twice: %s", res.ErrMsg)
	}
	if u, _ := e.sim.User(openID); u.Balance != 0 {
		t.Fatalf("balance %d", u.Balance)
	}
	// Only JSAPI orders go through wx.requestPayment.
	nat := e.call("/pay/unifiedorder", kv("body", "b", "out_trade_no", "NAT00001", "total_fee", "1", "spbill_create_ip", "1.1.1.1",
		"notify_url", "http://127.0.0.1:1/n", "trade_type", "NATIVE", "product_id", "p"))
	r := paySign(apiKey, appID, nat["prepay_id"], wxpay.SignTypeMD5)
	r.OpenID = otherUser
	if res := e.sim.RequestPayment(r); res.OK() || !strings.Contains(res.ErrMsg, "JSAPI") {
		t.Fatalf("NATIVE via requestPayment: %s", res.ErrMsg)
	}
}

// nativeMerchant is a merchant's Native mode-1 callback: it verifies the
// scan, places a NATIVE order for the product and answers its prepay_id.
func nativeMerchant(t *testing.T, e *env, mutate func(msg) msg) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		scan := parseXML(t, b)
		verifySigned(t, scan, apiKey, wxpay.SignTypeMD5)
		ans := e.call("/pay/unifiedorder", kv("body", "product "+scan["product_id"], "out_trade_no", "Q"+scan["product_id"]+strconv.Itoa(int(time.Now().UnixNano()%1e6)),
			"total_fee", "321", "spbill_create_ip", "1.1.1.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "NATIVE",
			"product_id", scan["product_id"], "openid", scan["openid"]))
		reply := kv("return_code", "SUCCESS", "result_code", "SUCCESS", "prepay_id", ans["prepay_id"]).signed(apiKey)
		if mutate != nil {
			reply = mutate(reply)
		}
		_, _ = w.Write(reply.xmlBody())
	}
}

func TestScan(t *testing.T) {
	var handler http.HandlerFunc
	ms := http.NewServeMux()
	ms.HandleFunc("/native", func(w http.ResponseWriter, r *http.Request) { handler(w, r) })
	cbSrv := newTestServer(t, ms)
	e := newEnv(t, func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.NativeCallbackURL = cbSrv.URL + "/native"
		c.Merchants = []wxsim.Merchant{m}
	})
	handler = nativeMerchant(t, e, nil)
	payer := e.user(1000)

	// Mode 2: the code_url of a NATIVE order.
	nat := e.call("/pay/unifiedorder", kv("body", "b", "out_trade_no", "NAT00001", "total_fee", "100", "spbill_create_ip", "1.1.1.1",
		"notify_url", e.merchant.url("/notify/pay"), "trade_type", "NATIVE", "product_id", "p1"))
	var res wxsim.ScanResult
	if st := e.ctl("POST", "/sim/v1/scan", map[string]string{"openid": payer, "url": nat["code_url"]}, &res); st != 200 ||
		res.ErrMsg != "scan:ok" || res.Mode != 2 || res.OutTradeNo != "NAT00001" || res.TransactionID == "" {
		t.Fatalf("mode 2: %d %+v", st, res)
	}
	if res, _ := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: nat["code_url"]}); res.ErrMsg == "scan:ok" {
		t.Fatalf("mode 2 twice: %+v", res)
	}

	// Mode 1: a signed product URL; the simulator calls the merchant.
	q := msg{"appid": appID, "mch_id": mchID, "product_id": "P42", "time_stamp": "1764300000", "nonce_str": "abc"}
	sig, _ := wxcrypto.SignMap(wxpay.SignTypeMD5, apiKey, q)
	long := "weixin://wxpay/bizpayurl?" + url.Values{"appid": {appID}, "mch_id": {mchID}, "product_id": {"P42"},
		"time_stamp": {"1764300000"}, "nonce_str": {"abc"}, "sign": {sig}}.Encode()
	res, err := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: long})
	if err != nil || res.ErrMsg != "scan:ok" || res.Mode != 1 || res.TotalFee != 321 || !strings.HasPrefix(res.OutTradeNo, "QP42") {
		t.Fatalf("mode 1: %+v %v", res, err)
	}
	// The shortened URL works too.
	// shorturl signs the raw URL and sends it URL-encoded.
	sreq := kv("long_url", long).signed(apiKey).with("long_url", url.QueryEscape(long))
	sb, _ := e.raw("POST", "/tools/shorturl", sreq.xmlBody())
	su := parseXML(t, sb)
	if !strings.HasPrefix(su["short_url"], "weixin://wxpay/s/") {
		t.Fatalf("shorturl: %v", su)
	}
	if res, err := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: su["short_url"]}); err != nil || res.ErrMsg != "scan:ok" {
		t.Fatalf("short URL: %+v %v", res, err)
	}
	// A bad sign on the product URL, a reply with a bad sign, a FAIL reply.
	if res, _ := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: strings.Replace(long, "P42", "P43", 1)}); !strings.Contains(res.ErrMsg, "签名") {
		t.Fatalf("tampered URL: %+v", res)
	}
	handler = nativeMerchant(t, e, func(m msg) msg { return m.with("sign", strings.Repeat("A", 32)) })
	if res, _ := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: long}); !strings.Contains(res.ErrMsg, "签名错误") {
		t.Fatalf("bad reply sign: %+v", res)
	}
	handler = nativeMerchant(t, e, func(m msg) msg {
		return kv("return_code", "SUCCESS", "result_code", "FAIL", "err_code_des", "商品已售完").signed(apiKey)
	})
	if res, _ := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: long}); !strings.Contains(res.ErrMsg, "商品已售完") {
		t.Fatalf("FAIL reply: %+v", res)
	}
	var cb []wxsim.NotifyAttempt
	for _, a := range e.sim.Notifications() {
		if a.Kind == wxsim.NotifyNativeCallback {
			cb = append(cb, a)
		}
	}
	if len(cb) != 4 || !cb[0].Acked || cb[2].Acked {
		t.Fatalf("callback log: %+v", cb)
	}
	// Not a pay code; an unknown user.
	if res, _ := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: payer, URL: "https://example.com"}); res.ErrMsg == "scan:ok" {
		t.Fatalf("not a pay code: %+v", res)
	}
	var errOut struct{ Error string }
	if st := e.ctl("POST", "/sim/v1/scan", map[string]string{"openid": "nobody", "url": long}, &errOut); st != 404 {
		t.Fatalf("unknown user: %d %+v", st, errOut)
	}
	// shorturl refuses what is not a bizpayurl.
	if a := e.call("/tools/shorturl", kv("long_url", "weixin://wxpay/other")); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("shorturl: %v", a)
	}
}

func TestControlAPI(t *testing.T) {
	e := newEnv(t)
	var errOut struct{ Error string }
	checks := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/sim/v1/users", `{"openid":"oAlice","balance":-1}`, 400},
		{"POST", "/sim/v1/users", `{"openid":"bad id!"}`, 400},
		{"POST", "/sim/v1/users", `{"appid":"wx0"}`, 400},
		{"POST", "/sim/v1/users", `{"nope":1}`, 400},
		{"POST", "/sim/v1/users", `{"openid":"oAlice"} {}`, 400},
		{"POST", "/sim/v1/users", `[`, 400},
		{"DELETE", "/sim/v1/users", ``, 405},
		{"GET", "/sim/v1/users/nobody", ``, 404},
		{"POST", "/sim/v1/clock", `{"advance_seconds":-5}`, 400},
		{"POST", "/sim/v1/clock", `{}`, 400},
		{"POST", "/sim/v1/auth-codes", `{"openid":"nobody"}`, 404},
		{"GET", "/sim/v1/orders/1225312702/NOPE", ``, 404},
		{"POST", "/sim/v1/orders/1225312702/NOPE/pay", `{}`, 404},
		{"POST", "/sim/v1/refunds/NOPE/complete", `{}`, 404},
		{"POST", "/sim/v1/refunds/NOPE/complete", `{"status":"MAYBE"}`, 400},
		{"GET", "/sim/v1/orders?mch_id=1", ``, 404},
		{"GET", "/sim/v1/notifications?since=x", ``, 400},
	}
	for _, c := range checks {
		b, resp := e.raw(c.method, c.path, []byte(c.body))
		if resp.StatusCode != c.status || !strings.Contains(string(b), `"error":`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, resp.StatusCode, b)
		}
	}
	var u wxsim.User
	if st := e.ctl("POST", "/sim/v1/users", map[string]any{"openid": "oAlice", "balance": 0}, &u); st != 201 || u.Balance != 0 || u.OpenID != "oAlice" {
		t.Fatalf("create: %d %+v", st, u)
	}
	if st := e.ctl("POST", "/sim/v1/users", map[string]any{"openid": "oAlice"}, &errOut); st != 409 {
		t.Fatalf("duplicate: %d", st)
	}
	if st := e.ctl("PUT", "/sim/v1/users/oAlice/balance", map[string]any{"balance": 777}, &u); st != 200 || u.Balance != 777 {
		t.Fatalf("balance: %d %+v", st, u)
	}
	if st := e.ctl("POST", "/sim/v1/users", nil, &u); st != 201 || u.Balance != 1_000_000 || !strings.HasPrefix(u.OpenID, "o") {
		t.Fatalf("default user: %d %+v", st, u)
	}
	var users struct{ Users []wxsim.User }
	e.ctl("GET", "/sim/v1/users", nil, &users)
	if len(users.Users) != 2 {
		t.Fatalf("users: %+v", users)
	}
	// The clock.
	var clk struct {
		Now string `json:"now"`
	}
	e.ctl("GET", "/sim/v1/clock", nil, &clk)
	if clk.Now != "2026-11-28T10:00:00+08:00" {
		t.Fatalf("clock: %+v", clk)
	}
	e.ctl("POST", "/sim/v1/clock", map[string]any{"advance_seconds": 90.5}, &clk)
	if clk.Now != "2026-11-28T10:01:30+08:00" {
		t.Fatalf("advanced clock: %+v", clk)
	}
	// Auth codes.
	var ac struct {
		AuthCode string `json:"auth_code"`
	}
	if st := e.ctl("POST", "/sim/v1/auth-codes", map[string]string{"openid": "oAlice", "outcome": "userpaying"}, &ac); st != 201 || len(ac.AuthCode) != 18 {
		t.Fatalf("auth code: %d %+v", st, ac)
	}
	if st := e.ctl("POST", "/sim/v1/auth-codes", map[string]string{"openid": "oAlice", "outcome": "maybe"}, &errOut); st != 400 {
		t.Fatalf("bad outcome: %d", st)
	}
	// Orders, pay from the page, refunds, ledger, notifications.
	ans, otn := e.order("oAlice", 700)
	_ = ans
	var orders struct{ Orders []wxsim.Order }
	e.ctl("GET", "/sim/v1/orders?state=NOTPAY", nil, &orders)
	if len(orders.Orders) != 1 || orders.Orders[0].OutTradeNo != otn {
		t.Fatalf("orders: %+v", orders)
	}
	var pr wxsim.PaymentResult
	if st := e.ctl("POST", "/sim/v1/orders/"+mchID+"/"+otn+"/pay", map[string]string{"outcome": "success"}, &pr); st != 200 || pr.ErrMsg != "pay:ok" {
		t.Fatalf("pay: %d %+v", st, pr)
	}
	var o wxsim.Order
	if e.ctl("GET", "/sim/v1/orders/"+mchID+"/"+otn, nil, &o); o.State != wxpay.TradeStateSuccess || o.PaidAt.IsZero() {
		t.Fatalf("order: %+v", o)
	}
	e.ctl("POST", "/sim/v1/flush", nil, nil)
	var notes struct {
		Notifications []wxsim.NotifyAttempt
		Stats         wxsim.NotifyStats
	}
	e.ctl("GET", "/sim/v1/notifications?kind=pay&out_trade_no="+otn, nil, &notes)
	if len(notes.Notifications) != 1 || notes.Stats.Acknowledged != 1 {
		t.Fatalf("notifications: %+v", notes)
	}
	e.ctl("GET", "/sim/v1/notifications?since=1", nil, &notes)
	if len(notes.Notifications) != 0 {
		t.Fatalf("since: %+v", notes)
	}
	var ledger wxsim.Ledger
	e.ctl("GET", "/sim/v1/ledger", nil, &ledger)
	if len(ledger.Orders) != 1 || len(ledger.Users) != 2 {
		t.Fatalf("ledger: %+v", ledger)
	}
	var merchants struct {
		Merchants []struct {
			MchID  string   `json:"mch_id"`
			AppIDs []string `json:"appids"`
		}
	}
	b, _ := e.raw("GET", "/sim/v1/merchants", nil)
	if strings.Contains(string(b), apiKey) || strings.Contains(string(b), wxsim.DefaultAppSecret) {
		t.Fatal("the merchants answer shows a secret")
	}
	e.ctl("GET", "/sim/v1/merchants", nil, &merchants)
	if len(merchants.Merchants) != 1 || merchants.Merchants[0].AppIDs[0] != appID {
		t.Fatalf("merchants: %+v", merchants)
	}
}

func TestCashierPage(t *testing.T) {
	e := newEnv(t)
	b, resp := e.raw("GET", "/sim/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	page := string(b)
	for _, want := range []string{"/sim/v1/orders", "/sim/v1/users", "/sim/v1/notifications", "/sim/v1/clock", "/sim/v1/scan", "complete", "/pay"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not use %s", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "cdn"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("the page loads an external resource (%s)", bad)
		}
	}
	_, resp = e.raw("GET", "/sim", nil)
	if resp.Request.URL.Path != "/sim/" {
		t.Fatalf("/sim redirects to %s", resp.Request.URL.Path)
	}
}

// TestNoSecretsInLogs runs a flow with a logger and checks that no key or
// secret appears in it (reliability.md I9).
func TestNoSecretsInLogs(t *testing.T) {
	var buf strings.Builder
	e := newEnv(t, func(c *wxsim.Config) { c.Logger = newTextLogger(&buf) })
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	e.pay(openID, ans)
	e.sim.Flush()
	e.callKey("/pay/orderquery", kv("out_trade_no", otn), wxsim.DefaultAppSecret) // a bad sign gets logged
	e.call("/secapi/pay/refund", refundReq(otn, "RS1", 100, 100))
	e.clock.Advance(time.Minute)
	e.sim.LoginCode(appID, openID)
	log := buf.String()
	if !strings.Contains(log, "bad signature") {
		t.Fatalf("nothing logged:\n%s", log)
	}
	for _, secret := range []string{apiKey, wxsim.DefaultAppSecret} {
		if strings.Contains(log, secret) {
			t.Fatalf("a secret is in the log:\n%s", log)
		}
	}
}
