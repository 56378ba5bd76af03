package wxsim_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// TestV3JSAPIFlow: prepay through v3, query, pay through
// wx.requestPayment with an RSA paySign, the TRANSACTION.SUCCESS notify
// (signed, AES-GCM), queries by both ids and through v2.
func TestV3JSAPIFlow(t *testing.T) {
	e := newV3Env(t)
	e.ms.sim = e.sim // the merchant verifies every notify
	openID := e.user(10000)
	otn := newOTN()
	body := e.prepayBody(otn, 1234, openID)
	body["attach"] = "a&b<c>"
	a := e.cli.do("POST", "/v3/pay/transactions/jsapi", body)
	if a.status != http.StatusOK || a.header.Get("Request-Id") == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("prepay: %d %v %s", a.status, a.header, a.body)
	}
	if serial := verifyV3(t, e.sim, a.header, a.body); wxcrypto.IsHexSerial(serial) == false {
		t.Fatalf("Wechatpay-Serial = %s", serial)
	}
	var pr struct {
		PrepayID string `json:"prepay_id"`
	}
	a.decode(t, &pr)

	tx := e.query(otn)
	if tx.TradeState != "NOTPAY" || tx.TransactionID != "" || tx.Amount.Total != 1234 || tx.MchID != mchID || tx.AppID != appID || tx.TradeType != "JSAPI" {
		t.Fatalf("query before paying = %+v", tx)
	}

	// A v2 paySign (MD5) does not pay a v3 prepay_id; a wrong RSA one neither.
	md5 := paySign(apiKey, appID, pr.PrepayID, wxpay.SignTypeMD5)
	md5.OpenID = openID
	if res := e.sim.RequestPayment(md5); res.OK() || !strings.Contains(res.ErrMsg, "sign_type RSA") {
		t.Fatalf("MD5 paySign on a v3 order: %s", res.ErrMsg)
	}
	bad := rsaPayment(t, e.cli.key, openID, pr.PrepayID)
	bad.TimeStamp = "1764300001"
	if res := e.sim.RequestPayment(bad); res.OK() || !strings.Contains(res.ErrMsg, "paySign does not verify") {
		t.Fatalf("bad RSA paySign: %s", res.ErrMsg)
	}
	// Through the control API, as a mini program would.
	var res wxsim.PaymentResult
	e.ctl("POST", "/sim/v1/request-payment", rsaPayment(t, e.cli.key, openID, pr.PrepayID), &res)
	if !res.OK() {
		t.Fatalf("requestPayment: %s", res.ErrMsg)
	}

	e.sim.Flush()
	got := e.ms.received()
	if len(got) != 1 {
		t.Fatalf("notifies = %d", len(got))
	}
	n := got[0]
	if n.header.Get("Content-Type") != "application/json" || n.path != "/v3/notify/pay" {
		t.Fatalf("notify %s %v", n.path, n.header)
	}
	env, plain, err := n.open(t, testAPIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventType != "TRANSACTION.SUCCESS" || env.ResourceType != "encrypt-resource" || env.Summary == "" || !strings.HasPrefix(env.ID, "EV-") ||
		env.Resource.Algorithm != "AEAD_AES_256_GCM" || env.Resource.AssociatedData != "transaction" || env.Resource.OriginalType != "transaction" ||
		len(env.Resource.Nonce) != 12 {
		t.Fatalf("notify envelope = %+v", env)
	}
	if _, err := time.Parse(time.RFC3339, env.CreateTime); err != nil {
		t.Fatalf("create_time %q", env.CreateTime)
	}
	var nt v3Txn
	if err := json.Unmarshal(plain, &nt); err != nil {
		t.Fatal(err)
	}
	if nt.TradeState != "SUCCESS" || nt.TransactionID != res.TransactionID || nt.Amount.Total != 1234 || nt.Amount.PayerTotal != 1234 ||
		nt.Payer.OpenID != openID || nt.Attach != "a&b<c>" || nt.OutTradeNo != otn || nt.SuccessTime != "2026-11-28T10:00:00+08:00" {
		t.Fatalf("notify resource = %s", plain)
	}
	// The resource has vector D2's field order.
	if !strings.HasPrefix(string(plain), `{"mchid":"`+mchID+`","appid":"`+appID+`","out_trade_no":"`+otn+`","transaction_id":`) {
		t.Fatalf("resource order: %s", plain)
	}
	log := e.sim.Notifications()
	if len(log) != 1 || log[0].Kind != wxsim.NotifyPayV3 || !log[0].Acked || log[0].HTTPStatus != http.StatusNoContent || log[0].Serial != n.header.Get("Wechatpay-Serial") {
		t.Fatalf("log = %+v", log)
	}

	byID := e.cli.do("GET", "/v3/pay/transactions/id/"+res.TransactionID+"?mchid="+mchID, nil)
	verifyV3(t, e.sim, byID.header, byID.body)
	var tx2 v3Txn
	byID.decode(t, &tx2)
	if tx2.TradeState != "SUCCESS" || tx2.OutTradeNo != otn || tx2.BankType == "" {
		t.Fatalf("query by id = %s", byID.body)
	}
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "SUCCESS" || q["transaction_id"] != res.TransactionID {
		t.Fatalf("v2 orderquery of a v3 order = %v", q)
	}
	if o, _ := e.sim.Order(mchID, otn); !o.Paid || o.SignType != "RSA" {
		t.Fatalf("ledger order = %+v", o)
	}
}

// TestV3NotifyRetry: a v3 notify is retried on WeChat's schedule until
// the merchant answers 200 or 204, whatever the body.
func TestV3NotifyRetry(t *testing.T) {
	e := newV3Env(t)
	e.ms.sim = e.sim // each try is verified when it arrives
	e.ms.setReply(func(n v3Notify, i int) (int, string) {
		switch i {
		case 0:
			return http.StatusInternalServerError, `{"code":"FAIL","message":"失败"}`
		case 1:
			return http.StatusCreated, ""
		}
		return http.StatusOK, `{"code":"FAIL","message":"失败"}`
	})
	openID := e.user(10000)
	otn := newOTN()
	e.payV3(openID, e.prepayJSAPI(otn, 100, openID))
	e.sim.Flush()
	if n := len(e.ms.received()); n != 1 {
		t.Fatalf("first try: %d notifies", n)
	}
	_ = e.sim.Advance(15 * time.Second)
	_ = e.sim.Advance(15 * time.Second)
	_ = e.sim.Advance(time.Hour)
	got := e.ms.received()
	if len(got) != 3 {
		t.Fatalf("notifies = %d", len(got))
	}
	// Each try is signed afresh; the body (and its id) stays.
	if !bytes.Equal(got[0].body, got[2].body) || got[0].header.Get("Wechatpay-Nonce") == got[1].header.Get("Wechatpay-Nonce") ||
		got[0].header.Get("Wechatpay-Timestamp") == got[2].header.Get("Wechatpay-Timestamp") {
		t.Fatal("tries differ in body or share a nonce or timestamp")
	}
	log := e.sim.Notifications()
	if len(log) != 3 || log[0].Acked || log[0].Verdict != wxsim.VerdictRejected || log[1].Acked || !strings.Contains(log[1].Error, "201") ||
		!log[2].Acked || log[2].Verdict != wxsim.VerdictAcknowledged || !strings.Contains(log[2].Error, "FAIL") || log[0].NextAt.IsZero() {
		t.Fatalf("log = %+v", log)
	}
}

// TestV3Authentication: what gets 401 SIGN_ERROR.
func TestV3Authentication(t *testing.T) {
	e := newV3Env(t)
	path := "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid=" + mchID
	if a := e.cli.do("GET", path, nil); a.status != http.StatusNotFound {
		t.Fatalf("a correct request: %d %s", a.status, a.body)
	} else {
		e.expectNotFound(t, a)
	}
	cases := []struct {
		name  string
		edit  func(r *http.Request, a *wxcrypto.AuthorizationV3)
		hint  string
		field string
	}{
		{"no header", func(r *http.Request, a *wxcrypto.AuthorizationV3) {
			r.Header.Set("X-No-Authorization", "1")
		}, "no Authorization", ""},
		{"wrong scheme", func(r *http.Request, a *wxcrypto.AuthorizationV3) {
			r.Header.Set("Authorization", strings.Replace(a.String(), "WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256", 1))
		}, "scheme", ""},
		{"bad signature", func(r *http.Request, a *wxcrypto.AuthorizationV3) {
			a.Signature = "A" + a.Signature[1:]
			if a.Signature[0] == a.Signature[1] {
				a.Signature = "B" + a.Signature[1:]
			}
		}, "does not verify", "signature"},
		{"other URL", func(r *http.Request, a *wxcrypto.AuthorizationV3) { r.URL.RawQuery = "mchid=" + mchID + "&x=1" }, "does not verify", "signature"},
		{"unknown serial", func(r *http.Request, a *wxcrypto.AuthorizationV3) { a.SerialNo = "1234ABCD" }, "not a merchant API certificate", "serial_no"},
		{"unknown mchid", func(r *http.Request, a *wxcrypto.AuthorizationV3) { a.MchID = "1900000000" }, "no merchant", "mchid"},
		{"stale", func(r *http.Request, a *wxcrypto.AuthorizationV3) { a.Timestamp -= 301 }, "away from WeChat's clock", "timestamp"},
		{"future", func(r *http.Request, a *wxcrypto.AuthorizationV3) { a.Timestamp += 301 }, "away from WeChat's clock", "timestamp"},
	}
	for _, c := range cases {
		a := e.cli.doWith("GET", path, nil, c.edit)
		eb := a.expectErr(t, http.StatusUnauthorized, "SIGN_ERROR")
		if !strings.Contains(a.header.Get("Wxsim-Sign-Hint"), c.hint) || eb.Detail.Location != "authorization" || c.field != "" && eb.Detail.Field != c.field {
			t.Errorf("%s: hint %q, detail %+v", c.name, a.header.Get("Wxsim-Sign-Hint"), eb.Detail)
		}
		if c.name == "bad signature" && (eb.Detail.SignInformation == nil || eb.Detail.SignInformation.URL != path) {
			t.Errorf("bad signature: sign_information %+v", eb.Detail.SignInformation)
		}
		// An error of a known merchant is signed too; of an unknown one not.
		if c.name == "bad signature" {
			verifyV3(t, e.sim, a.header, a.body)
		}
		if c.name == "unknown mchid" && a.header.Get("Wechatpay-Signature") != "" {
			t.Error("answer to an unknown merchant is signed")
		}
	}
	// The platform certificate's serial is not the merchant's.
	creds, _ := e.sim.V3Credentials(mchID)
	a := e.cli.doWith("GET", path, nil, func(r *http.Request, a *wxcrypto.AuthorizationV3) { a.SerialNo = creds.PlatformCertificates[0].Serial })
	if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("Wxsim-Sign-Hint"), "platform certificate") {
		t.Fatalf("platform serial: %d %s", a.status, a.header.Get("Wxsim-Sign-Hint"))
	}
	// A tampered body.
	body := e.prepayBody(newOTN(), 100, "")
	raw, _ := json.Marshal(body)
	a = e.cli.doWith("POST", "/v3/pay/transactions/native", raw, func(r *http.Request, _ *wxcrypto.AuthorizationV3) {
		t2 := bytes.Replace(raw, []byte(`"total":100`), []byte(`"total":1`), 1)
		r.Body = io.NopCloser(bytes.NewReader(t2))
		r.ContentLength = int64(len(t2))
	})
	a.expectErr(t, http.StatusUnauthorized, "SIGN_ERROR")

	// ±299 s is inside the window.
	e.cli.skew = 299 * time.Second
	if a := e.cli.do("GET", path, nil); a.status != http.StatusNotFound {
		t.Fatalf("skew 299 s: %d %s", a.status, a.body)
	}
	e.cli.skew = -299 * time.Second
	if a := e.cli.do("GET", path, nil); a.status != http.StatusNotFound {
		t.Fatalf("skew -299 s: %d %s", a.status, a.body)
	}
	// WeChat's clock skewed by 6 minutes: the same request is refused, and
	// the answers carry the skewed timestamp (which a merchant refuses).
	e.cli.skew = 0
	e.sim.SetV3ClockSkew(6 * time.Minute)
	a = e.cli.do("GET", path, nil)
	a.expectErr(t, http.StatusUnauthorized, "SIGN_ERROR")
	if why := checkV3(e.sim, mchID, a.header, a.body); !strings.Contains(why, "off by") {
		t.Fatalf("skewed answer: %q (timestamp %s)", why, a.header.Get("Wechatpay-Timestamp"))
	}
	e.cli.skew = 6 * time.Minute
	if a := e.cli.do("GET", path, nil); a.status != http.StatusNotFound {
		t.Fatalf("a merchant skewed like WeChat: %d %s", a.status, a.body)
	}
}

func (e *v3env) expectNotFound(t *testing.T, a v3Answer) {
	t.Helper()
	a.expectErr(t, http.StatusNotFound, "ORDER_NOT_EXIST")
	verifyV3(t, e.sim, a.header, a.body)
}

// TestV3ParamErrors: strict JSON and field rules answer 400 with detail.
func TestV3ParamErrors(t *testing.T) {
	e := newV3Env(t, func(c *wxsim.Config) {
		c.Merchants[0].Apps = append(c.Merchants[0].Apps, wxsim.App{AppID: "wx0000000000000002", AppSecret: "s2"})
		c.Merchants = append(c.Merchants, wxsim.Merchant{MchID: "1900000002", APIKey: strings.Repeat("b", 32), Apps: []wxsim.App{{AppID: "wxother0000000001", AppSecret: "s"}}})
	})
	openID := e.user(1000)
	other, _ := e.sim.CreateUser(wxsim.NewUser{AppID: "wx0000000000000002"})
	type tc struct {
		name   string
		change func(b map[string]any)
		status int
		code   string
		field  string
	}
	cases := []tc{
		{"unknown field", func(b map[string]any) { b["colour"] = "red" }, 400, "PARAM_ERROR", "#/properties/colour"},
		{"total 0", func(b map[string]any) { b["amount"] = map[string]any{"total": 0} }, 400, "PARAM_ERROR", "#/properties/amount/properties/total"},
		{"total negative", func(b map[string]any) { b["amount"] = map[string]any{"total": -5} }, 400, "PARAM_ERROR", "#/properties/amount/properties/total"},
		{"total float", func(b map[string]any) { b["amount"] = map[string]any{"total": 1.5} }, 400, "PARAM_ERROR", "#/properties/amount/properties/total"},
		{"total string", func(b map[string]any) { b["amount"] = map[string]any{"total": "100"} }, 400, "PARAM_ERROR", "#/properties/amount/properties/total"},
		{"no total", func(b map[string]any) { b["amount"] = map[string]any{} }, 400, "PARAM_ERROR", "#/properties/amount/properties/total"},
		{"currency", func(b map[string]any) { b["amount"] = map[string]any{"total": 1, "currency": "USD"} }, 400, "PARAM_ERROR", "#/properties/amount/properties/currency"},
		{"short out_trade_no", func(b map[string]any) { b["out_trade_no"] = "T1" }, 400, "PARAM_ERROR", "#/properties/out_trade_no"},
		{"no description", func(b map[string]any) { delete(b, "description") }, 400, "PARAM_ERROR", "#/properties/description"},
		{"no openid", func(b map[string]any) { delete(b, "payer") }, 400, "PARAM_ERROR", "#/properties/payer/properties/openid"},
		{"openid of another app", func(b map[string]any) { b["payer"] = map[string]any{"openid": other.OpenID} }, 400, "PARAM_ERROR", "#/properties/payer/properties/openid"},
		{"appid of another merchant", func(b map[string]any) { b["appid"] = "wxother0000000001" }, 400, "APPID_MCHID_NOT_MATCH", ""},
		{"notify_url with query", func(b map[string]any) { b["notify_url"] = "https://example.com/n?x=1" }, 400, "PARAM_ERROR", "#/properties/notify_url"},
		{"time_expire not RFC 3339", func(b map[string]any) { b["time_expire"] = "20261128120000" }, 400, "PARAM_ERROR", "#/properties/time_expire"},
		{"mchid of another merchant", func(b map[string]any) { b["mchid"] = "1900000002" }, 401, "SIGN_ERROR", "mchid"},
	}
	for _, c := range cases {
		b := e.prepayBody(newOTN(), 100, openID)
		c.change(b)
		a := e.cli.do("POST", "/v3/pay/transactions/jsapi", b)
		eb := a.expectErr(t, c.status, c.code)
		if eb.Detail.Field != c.field {
			t.Errorf("%s: detail %+v (%s)", c.name, eb.Detail, eb.Message)
		}
		verifyV3(t, e.sim, a.header, a.body)
	}
	// Not JSON, trailing content, invalid UTF-8.
	for _, raw := range []string{`{"appid":`, `{"appid":"x"} {}`, "{\"appid\":\"\xff\"}", ``} {
		a := e.cli.do("POST", "/v3/pay/transactions/jsapi", []byte(raw))
		a.expectErr(t, 400, "PARAM_ERROR")
	}
	// https only when asked.
	e2 := newV3Env(t, func(c *wxsim.Config) { c.RequireHTTPSNotifyURL = true })
	a := e2.cli.do("POST", "/v3/pay/transactions/native", e2.prepayBody(newOTN(), 100, ""))
	if eb := a.expectErr(t, 400, "PARAM_ERROR"); !strings.Contains(eb.Detail.Issue, "https") {
		t.Fatalf("http notify_url: %+v", eb)
	}
	// payer is for JSAPI only; H5 needs h5_info.
	a = e.cli.do("POST", "/v3/pay/transactions/native", e.prepayBody(newOTN(), 100, openID))
	a.expectErr(t, 400, "PARAM_ERROR")
	h5 := e.prepayBody(newOTN(), 100, "")
	h5["scene_info"] = map[string]any{"payer_client_ip": "127.0.0.1"}
	a = e.cli.do("POST", "/v3/pay/transactions/h5", h5)
	if eb := a.expectErr(t, 400, "PARAM_ERROR"); eb.Detail.Field != "#/properties/scene_info/properties/h5_info/properties/type" {
		t.Fatalf("h5 without h5_info: %+v", eb)
	}
	// Routing and methods.
	if a := e.cli.do("GET", "/v3/pay/transactions/jsapi", nil); a.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET prepay: %d", a.status)
	}
	if a := e.cli.do("GET", "/v3/nothing/here", nil); a.status != http.StatusNotFound || a.err(t).Code != "NOT_FOUND" {
		t.Fatalf("unknown path: %d %s", a.status, a.body)
	}
	// Query without mchid.
	a = e.cli.do("GET", "/v3/pay/transactions/out-trade-no/ABCDEFG", nil)
	if eb := a.expectErr(t, 400, "PARAM_ERROR"); eb.Detail.Location != "query" {
		t.Fatalf("query without mchid: %+v", eb)
	}
}

// TestV3Idempotency: the same out_trade_no with the same parameters gets
// the same prepay_id; other parameters are refused.
func TestV3Idempotency(t *testing.T) {
	for _, code := range []string{"INVALID_REQUEST", "OUT_TRADE_NO_USED"} {
		e := newV3Env(t, func(c *wxsim.Config) { c.ReentryErrCode = code })
		openID := e.user(10000)
		otn := newOTN()
		p1 := e.prepayJSAPI(otn, 100, openID)
		if p2 := e.prepayJSAPI(otn, 100, openID); p2 != p1 {
			t.Fatalf("re-entry: %s then %s", p1, p2)
		}
		a := e.cli.do("POST", "/v3/pay/transactions/jsapi", e.prepayBody(otn, 101, openID))
		status := map[string]int{"INVALID_REQUEST": 400, "OUT_TRADE_NO_USED": 403}[code]
		a.expectErr(t, status, code)
		// A v2 unifiedorder with the same out_trade_no is another order.
		ans := e.call("/pay/unifiedorder", kv("body", "x", "out_trade_no", otn, "total_fee", "100", "spbill_create_ip", "127.0.0.1",
			"notify_url", e.merchant.url("/n"), "trade_type", "JSAPI", "openid", openID))
		if ans["result_code"] != "FAIL" {
			t.Fatalf("v2 re-entry of a v3 order: %v", ans)
		}
		e.payV3(openID, p1)
		a = e.cli.do("POST", "/v3/pay/transactions/jsapi", e.prepayBody(otn, 100, openID))
		a.expectErr(t, 400, "ORDER_PAID")
	}
}

// TestV3NativeAppH5 places the three other kinds of order; a Native one
// is paid by a scan and notified in v3.
func TestV3NativeAppH5(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(10000)
	otn := newOTN()
	a := e.cli.do("POST", "/v3/pay/transactions/native", e.prepayBody(otn, 300, ""))
	verifyV3(t, e.sim, a.header, a.body)
	var nat struct {
		CodeURL string `json:"code_url"`
	}
	a.decode(t, &nat)
	if !strings.HasPrefix(nat.CodeURL, "weixin://wxpay/bizpayurl?pr=") {
		t.Fatalf("native: %s", a.body)
	}
	sr, err := e.sim.Scan(context.Background(), wxsim.ScanRequest{OpenID: openID, URL: nat.CodeURL})
	if err != nil || sr.ErrMsg != "scan:ok" {
		t.Fatalf("scan: %+v %v", sr, err)
	}
	e.sim.Flush()
	if got := e.ms.received(); len(got) != 1 {
		t.Fatalf("notifies = %d", len(got))
	} else if _, plain, err := got[0].open(t, testAPIv3Key); err != nil || !strings.Contains(string(plain), `"trade_type":"NATIVE"`) {
		t.Fatalf("native notify: %s %v", plain, err)
	}

	a = e.cli.do("POST", "/v3/pay/transactions/app", e.prepayBody(newOTN(), 300, ""))
	var app struct {
		PrepayID string `json:"prepay_id"`
	}
	a.decode(t, &app)
	if app.PrepayID == "" {
		t.Fatalf("app: %s", a.body)
	}
	h5 := e.prepayBody(newOTN(), 300, "")
	h5["scene_info"] = map[string]any{"payer_client_ip": "2001:db8::1", "h5_info": map[string]any{"type": "Wap"}}
	a = e.cli.do("POST", "/v3/pay/transactions/h5", h5)
	var h struct {
		H5URL string `json:"h5_url"`
	}
	a.decode(t, &h)
	if !strings.HasPrefix(h.H5URL, "https://wx.tenpay.com/") {
		t.Fatalf("h5: %s", a.body)
	}
	if tx := e.query(h5["out_trade_no"].(string)); tx.TradeType != "MWEB" {
		t.Fatalf("h5 order: %+v", tx)
	}
}

// TestV3Close: 204 with a signed empty body; then CLOSED.
func TestV3Close(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(10000)
	otn := newOTN()
	e.prepayJSAPI(otn, 100, openID)
	path := "/v3/pay/transactions/out-trade-no/" + otn + "/close"
	a := e.cli.do("POST", path, map[string]string{"mchid": mchID})
	if a.status != http.StatusNoContent || len(a.body) != 0 {
		t.Fatalf("close: %d %s", a.status, a.body)
	}
	verifyV3(t, e.sim, a.header, a.body)
	if tx := e.query(otn); tx.TradeState != "CLOSED" {
		t.Fatalf("after close: %+v", tx)
	}
	e.cli.do("POST", path, map[string]string{"mchid": mchID}).expectErr(t, 400, "ORDER_CLOSED")
	e.cli.do("POST", path, map[string]string{}).expectErr(t, 400, "PARAM_ERROR")
	e.cli.do("POST", "/v3/pay/transactions/out-trade-no/NOSUCHORDER/close", map[string]string{"mchid": mchID}).expectErr(t, 404, "ORDER_NOT_EXIST")

	// The user pays between the merchant's last query and its close.
	otn2 := newOTN()
	e.prepayJSAPI(otn2, 100, openID)
	if err := e.sim.InjectFault(wxsim.Fault{API: "v3_close", Kind: wxsim.FaultUserPaysFirst}); err != nil {
		t.Fatal(err)
	}
	e.cli.do("POST", "/v3/pay/transactions/out-trade-no/"+otn2+"/close", map[string]string{"mchid": mchID}).expectErr(t, 400, "ORDER_PAID")
	if tx := e.query(otn2); tx.TradeState != "SUCCESS" {
		t.Fatalf("after the user paid first: %+v", tx)
	}
}

// TestV3Refund: refunds through v3 follow the v2 rules and end with a
// REFUND.SUCCESS notify.
func TestV3Refund(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(10000)
	otn := newOTN()
	txn := e.payV3(openID, e.prepayJSAPI(otn, 1000, openID))
	e.sim.Flush()
	refund := func(no string, amount, total int64) v3Answer {
		return e.cli.do("POST", "/v3/refund/domestic/refunds", map[string]any{
			"out_trade_no": otn, "out_refund_no": no, "reason": "不想要了", "notify_url": e.ms.url("/v3/notify/refund"),
			"amount": map[string]any{"refund": amount, "total": total, "currency": "CNY"}})
	}
	a := refund("R1"+otn, 400, 1000)
	if a.status != http.StatusOK {
		t.Fatalf("refund: %d %s", a.status, a.body)
	}
	verifyV3(t, e.sim, a.header, a.body)
	var r1 struct {
		RefundID     string `json:"refund_id"`
		Status       string `json:"status"`
		Channel      string `json:"channel"`
		FundsAccount string `json:"funds_account"`
		Amount       struct {
			Refund, Total int64
			Currency      string
		} `json:"amount"`
		TransactionID string `json:"transaction_id"`
	}
	a.decode(t, &r1)
	if r1.Status != "PROCESSING" || r1.Amount.Refund != 400 || r1.Amount.Total != 1000 || r1.TransactionID != txn || r1.Channel != "ORIGINAL" || r1.FundsAccount != "UNSETTLED" {
		t.Fatalf("refund answer: %s", a.body)
	}
	// The same out_refund_no is the same refund; another amount is refused.
	a2 := refund("R1"+otn, 400, 1000)
	var r1b struct {
		RefundID string `json:"refund_id"`
	}
	a2.decode(t, &r1b)
	if r1b.RefundID != r1.RefundID {
		t.Fatalf("retry made another refund: %s", a2.body)
	}
	refund("R1"+otn, 300, 1000).expectErr(t, 400, "INVALID_REQUEST")
	refund("R2"+otn, 700, 1000).expectErr(t, 400, "INVALID_REQUEST")
	refund("R2"+otn, 100, 999).expectErr(t, 400, "PARAM_ERROR")
	e.cli.do("POST", "/v3/refund/domestic/refunds", map[string]any{"out_trade_no": "NOSUCHORDER", "out_refund_no": "R9",
		"amount": map[string]any{"refund": 1, "total": 1, "currency": "CNY"}}).expectErr(t, 404, "RESOURCE_NOT_EXISTS")
	// The refund succeeds after RefundDelay, with a REFUND.SUCCESS notify.
	_ = e.sim.Advance(10 * time.Second)
	var note *v3Notify
	for _, n := range e.ms.received() {
		if n.path == "/v3/notify/refund" {
			note = &n
		}
	}
	if note == nil {
		t.Fatal("no refund notify")
	}
	verifyV3(t, e.sim, note.header, note.body)
	env, plain, err := note.open(t, testAPIv3Key)
	if err != nil || env.EventType != "REFUND.SUCCESS" || env.Resource.AssociatedData != "refund" {
		t.Fatalf("refund notify %+v %v", env, err)
	}
	var rr struct {
		RefundStatus string `json:"refund_status"`
		OutRefundNo  string `json:"out_refund_no"`
		SuccessTime  string `json:"success_time"`
		Amount       struct{ Refund int64 }
	}
	_ = json.Unmarshal(plain, &rr)
	if rr.RefundStatus != "SUCCESS" || rr.OutRefundNo != "R1"+otn || rr.Amount.Refund != 400 || rr.SuccessTime == "" {
		t.Fatalf("refund resource: %s", plain)
	}
	q := e.cli.do("GET", "/v3/refund/domestic/refunds/R1"+otn, nil)
	verifyV3(t, e.sim, q.header, q.body)
	if !strings.Contains(string(q.body), `"status":"SUCCESS"`) {
		t.Fatalf("refund query: %s", q.body)
	}
	e.cli.do("GET", "/v3/refund/domestic/refunds/NOSUCH", nil).expectErr(t, 404, "RESOURCE_NOT_EXISTS")
	if tx := e.query(otn); tx.TradeState != "REFUND" {
		t.Fatalf("order after refund: %+v", tx)
	}
	log := e.sim.Notifications()
	if k := log[len(log)-1].Kind; k != wxsim.NotifyRefundV3 {
		t.Fatalf("last notify kind %s", k)
	}
	if rs := e.sim.Refunds(mchID); len(rs) != 1 || rs[0].Executions != 1 || rs[0].Requests != 3 {
		t.Fatalf("ledger refunds: %+v", rs)
	}
	// CLOSED and ABNORMAL refunds notify REFUND.CLOSED and REFUND.ABNORMAL.
	for _, st := range []wxpay.RefundStatus{wxpay.RefundStatusClosed, wxpay.RefundStatusChange} {
		no := "R" + string(st)[:3] + otn
		if a := refund(no, 100, 1000); a.status != 200 {
			t.Fatalf("refund: %s", a.body)
		}
		if err := e.sim.CompleteRefund(mchID, no, st); err != nil {
			t.Fatal(err)
		}
		e.sim.Flush()
		got := e.ms.received()
		env, _, _ := got[len(got)-1].open(t, testAPIv3Key)
		want := map[wxpay.RefundStatus]string{wxpay.RefundStatusClosed: "REFUND.CLOSED", wxpay.RefundStatusChange: "REFUND.ABNORMAL"}[st]
		if env.EventType != want {
			t.Fatalf("%s: event %s", st, env.EventType)
		}
	}
}

// TestV3CrossVersion: a v2 order is queried and refunded through v3, a v3
// order queried and refunded through v2; each refund notifies in its own
// version.
func TestV3CrossVersion(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(10000)
	ans, otn := e.order(openID, 500)
	e.pay(openID, ans)
	e.sim.Flush()
	tx := e.query(otn)
	if tx.TradeState != "SUCCESS" || tx.Amount.Total != 500 || tx.Payer.OpenID != openID {
		t.Fatalf("v3 query of a v2 order: %+v", tx)
	}
	a := e.cli.do("POST", "/v3/refund/domestic/refunds", map[string]any{"transaction_id": tx.TransactionID, "out_refund_no": "X1" + otn,
		"notify_url": e.ms.url("/v3/notify/refund"), "amount": map[string]any{"refund": 500, "total": 500, "currency": "CNY"}})
	if a.status != 200 {
		t.Fatalf("v3 refund of a v2 order: %s", a.body)
	}
	_ = e.sim.Advance(10 * time.Second)
	if got := e.ms.received(); len(got) != 1 || got[0].path != "/v3/notify/refund" {
		t.Fatalf("v3 refund notify of a v2 order: %d", len(got))
	}
	if q := e.call("/pay/refundquery", kv("out_refund_no", "X1"+otn)); q["refund_status_0"] != "SUCCESS" {
		t.Fatalf("v2 refundquery of a v3 refund: %v", q)
	}

	otn2 := newOTN()
	e.payV3(openID, e.prepayJSAPI(otn2, 600, openID))
	e.sim.Flush()
	ans2 := e.call("/secapi/pay/refund", kv("out_trade_no", otn2, "out_refund_no", "Y1"+otn2, "total_fee", "600", "refund_fee", "600",
		"notify_url", e.merchant.url("/notify/refund")))
	if ans2["result_code"] != "SUCCESS" {
		t.Fatalf("v2 refund of a v3 order: %v", ans2)
	}
	_ = e.sim.Advance(10 * time.Second)
	v2 := e.merchant.received()
	if len(v2) == 0 || v2[len(v2)-1]["req_info"] == "" {
		t.Fatalf("v2 refund notify: %v", v2)
	}
}

// TestV3Certificates: GET /v3/certificates lists the platform
// certificates, each decryptable with the APIv3 key.
func TestV3Certificates(t *testing.T) {
	e := newV3Env(t)
	a := e.cli.do("GET", "/v3/certificates", nil)
	if a.status != http.StatusOK {
		t.Fatalf("certificates: %d %s", a.status, a.body)
	}
	serials := certificateSerials(t, a)
	if len(serials) != 1 || a.header.Get("Wechatpay-Serial") != serials[0] {
		t.Fatalf("serials %v, signed by %s", serials, a.header.Get("Wechatpay-Serial"))
	}
	verifyV3(t, e.sim, a.header, a.body)
}

// certificateSerials decrypts a /v3/certificates answer and checks each
// certificate against its serial_no.
func certificateSerials(t *testing.T, a v3Answer) []string {
	t.Helper()
	var list struct {
		Data []struct {
			SerialNo           string `json:"serial_no"`
			EffectiveTime      string `json:"effective_time"`
			ExpireTime         string `json:"expire_time"`
			EncryptCertificate struct {
				Algorithm      string `json:"algorithm"`
				Nonce          string `json:"nonce"`
				AssociatedData string `json:"associated_data"`
				Ciphertext     string `json:"ciphertext"`
			} `json:"encrypt_certificate"`
		} `json:"data"`
	}
	a.decode(t, &list)
	var out []string
	for _, d := range list.Data {
		ec := d.EncryptCertificate
		if ec.Algorithm != "AEAD_AES_256_GCM" || ec.AssociatedData != "certificate" || len(ec.Nonce) != 12 {
			t.Fatalf("encrypt_certificate = %+v", ec)
		}
		plain, err := wxcrypto.DecryptAEAD(wxpay.Secret(testAPIv3Key), ec.Nonce, ec.AssociatedData, ec.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := wxcrypto.ParseCertificate(plain)
		if err != nil {
			t.Fatal(err)
		}
		if wxcrypto.CertificateSerial(cert) != d.SerialNo {
			t.Fatalf("serial %s holds %s", d.SerialNo, wxcrypto.CertificateSerial(cert))
		}
		if _, err := time.Parse(time.RFC3339, d.ExpireTime); err != nil {
			t.Fatal(err)
		}
		out = append(out, d.SerialNo)
	}
	return out
}

// TestV3Rotation: after a rotation both certificates are listed and new
// notifies are signed with the new one; during a gradual rotation both
// sign.
func TestV3Rotation(t *testing.T) {
	e := newV3Env(t)
	e.ms.sim = e.sim
	creds, _ := e.sim.V3Credentials("")
	old := creds.PlatformCertificates[0].Serial
	// At share 0.5, answers come signed by either.
	newSerial, err := e.sim.RotatePlatformCertificate(mchID, 0.5)
	if err != nil || newSerial == old {
		t.Fatal(newSerial, err)
	}
	seen := map[string]int{}
	for range 12 {
		a := e.cli.do("GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid="+mchID, nil)
		seen[verifyV3(t, e.sim, a.header, a.body)]++
	}
	if seen[old] == 0 || seen[newSerial] == 0 || len(seen) != 2 {
		t.Fatalf("signers at share 0.5: %v", seen)
	}
	// At share 1, only the new one signs, notifies included.
	if err := e.sim.SetPlatformCertificateShare("", 1); err != nil {
		t.Fatal(err)
	}
	a := e.cli.do("GET", "/v3/certificates", nil)
	if s := certificateSerials(t, a); len(s) != 2 || s[0] != newSerial || s[1] != old {
		t.Fatalf("listed %v", s)
	}
	openID := e.user(10000)
	e.payV3(openID, e.prepayJSAPI(newOTN(), 100, openID))
	e.sim.Flush()
	got := e.ms.received()
	if len(got) != 1 || got[0].header.Get("Wechatpay-Serial") != newSerial || !e.sim.Notifications()[0].Acked {
		t.Fatalf("notify after rotation signed by %s", got[0].header.Get("Wechatpay-Serial"))
	}
	// An expired certificate is withdrawn.
	if err := e.sim.RemovePlatformCertificate(mchID, old); err != nil {
		t.Fatal(err)
	}
	if s := certificateSerials(t, e.cli.do("GET", "/v3/certificates", nil)); len(s) != 1 {
		t.Fatalf("after removal %v", s)
	}
	// The control API rotates too.
	var out struct {
		SerialNo    string              `json:"serial_no"`
		Credentials wxsim.V3Credentials `json:"credentials"`
	}
	if st := e.ctl("POST", "/sim/v1/v3/merchants/"+mchID+"/rotate", map[string]any{"share": 1}, &out); st != 200 ||
		len(out.Credentials.PlatformCertificates) != 2 || out.Credentials.PlatformCertificates[1].Serial != out.SerialNo {
		t.Fatalf("control rotate: %d %+v", st, out)
	}
}

// TestV3PublicKey: the switch-over to the WeChat Pay public key, and a
// merchant that only has one.
func TestV3PublicKey(t *testing.T) {
	e := newV3Env(t)
	e.ms.sim = e.sim
	id, err := e.sim.SwitchToPublicKey(mchID, 0.5)
	if err != nil || !strings.HasPrefix(id, "PUB_KEY_ID_01"+mchID) {
		t.Fatal(id, err)
	}
	seen := map[string]int{}
	for range 12 {
		a := e.cli.do("GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid="+mchID, nil)
		seen[verifyV3(t, e.sim, a.header, a.body)]++
	}
	if seen[id] == 0 || len(seen) != 2 {
		t.Fatalf("signers during the switch-over: %v", seen)
	}
	// The certificate download stays signed by a certificate.
	for range 10 {
		a := e.cli.do("GET", "/v3/certificates", nil)
		if s := verifyV3(t, e.sim, a.header, a.body); s == id {
			t.Fatal("certificate list signed by the public key")
		}
	}
	var out map[string]any
	if st := e.ctl("POST", "/sim/v1/v3/merchants/all/public-key", map[string]any{"share": 1}, &out); st != 200 || out["public_key_id"] != id {
		t.Fatalf("control switch: %d %v", st, out)
	}
	openID := e.user(10000)
	e.payV3(openID, e.prepayJSAPI(newOTN(), 100, openID))
	e.sim.Flush()
	if got := e.ms.received(); len(got) != 1 || got[0].header.Get("Wechatpay-Serial") != id {
		t.Fatalf("notify signed by %s", got[0].header.Get("Wechatpay-Serial"))
	}

	// A merchant registered after late 2024: public key only.
	e2 := newV3Env(t, func(c *wxsim.Config) {
		c.Merchants[0].V3.PublicKeyOnly = true
		c.Merchants[0].V3.PublicKeyID = "PUB_KEY_ID_0114232134912410000000000000"
	})
	a := e2.cli.do("GET", "/v3/certificates", nil)
	a.expectErr(t, 404, "RESOURCE_NOT_EXISTS")
	if s := verifyV3(t, e2.sim, a.header, a.body); s != "PUB_KEY_ID_0114232134912410000000000000" {
		t.Fatalf("signed by %s", s)
	}
	creds, _ := e2.sim.V3Credentials(mchID)
	if len(creds.PlatformCertificates) != 0 || creds.PublicKeyPEM == "" {
		t.Fatalf("credentials %+v", creds)
	}
	// The public key the test keys name: the public half of testPubKeyKeyPEM.
	k, _ := wxcrypto.ParsePrivateKey([]byte(testPubKeyKeyPEM))
	pk, _ := wxcrypto.ParsePublicKey([]byte(creds.PublicKeyPEM))
	if !pk.Equal(&k.PublicKey) {
		t.Fatal("public key is not the configured one")
	}
}

// TestV3Probe: WECHATPAY/SIGNTEST/ probe signatures on answers and notifies.
func TestV3Probe(t *testing.T) {
	e := newV3Env(t)
	e.ms.sim = e.sim // refuses what does not verify
	if err := e.sim.InjectFault(wxsim.Fault{API: "v3_query", Kind: wxsim.FaultV3Probe}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.InjectFault(wxsim.Fault{API: "orderquery", Kind: wxsim.FaultV3Probe}); err == nil {
		t.Fatal("V3_PROBE accepted for a v2 api")
	}
	a := e.cli.do("GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid="+mchID, nil)
	if sig := a.header.Get("Wechatpay-Signature"); !strings.HasPrefix(sig, "WECHATPAY/SIGNTEST/") {
		t.Fatalf("probe answer signature %q", sig)
	}
	if checkV3(e.sim, mchID, a.header, a.body) == "" {
		t.Fatal("a probe signature verified")
	}
	if a := e.cli.do("GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid="+mchID, nil); checkV3(e.sim, mchID, a.header, a.body) != "" {
		t.Fatal("the fault hit twice")
	}
	// A probe copy goes ahead of the next pay notify; the merchant refuses it.
	e.sim.NotifyBadSignature(1)
	openID := e.user(10000)
	e.payV3(openID, e.prepayJSAPI(newOTN(), 100, openID))
	e.sim.Flush()
	log := e.sim.Notifications()
	if len(log) != 2 || log[0].Kind != wxsim.NotifyProbe || log[0].Verdict != wxsim.VerdictProbeRefused || !log[1].Acked {
		t.Fatalf("log = %+v", log)
	}
	// At rate 1 every answer is a probe, every notify has one.
	if err := e.sim.SetV3ProbeRate(1, 1); err != nil {
		t.Fatal(err)
	}
	a = e.cli.do("GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid="+mchID, nil)
	if !strings.HasPrefix(a.header.Get("Wechatpay-Signature"), "WECHATPAY/SIGNTEST/") {
		t.Fatal("rate 1: not a probe")
	}
	var pr map[string]float64
	e.ctl("POST", "/sim/v1/v3/probe", map[string]any{"responses": 0, "notifies": 1}, &pr)
	e.payV3(openID, e.prepayJSAPI(newOTN(), 100, openID))
	e.sim.Flush()
	if st := e.sim.NotifyStats(); st.ProbesSent != 2 || st.ProbesAccepted != 0 || st.Acknowledged != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestV3Bills: the v3 trade and fund-flow bills are the v2 bills behind a
// download_url, with a matching SHA-1.
func TestV3Bills(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(100000)
	otn := newOTN()
	e.payV3(openID, e.prepayJSAPI(otn, 2000, openID))
	ans, _ := e.order(openID, 300)
	e.pay(openID, ans)
	e.cli.do("POST", "/v3/refund/domestic/refunds", map[string]any{"out_trade_no": otn, "out_refund_no": "B1" + otn,
		"amount": map[string]any{"refund": 500, "total": 2000, "currency": "CNY"}})
	// Today's bill does not exist yet.
	e.cli.do("GET", "/v3/bill/tradebill?bill_date=2026-11-28", nil).expectErr(t, 400, "NO_STATEMENT_EXIST")
	_ = e.sim.Advance(24 * time.Hour)
	v2 := func(path string, extra ...string) []byte {
		m := kv("bill_date", "20261128", "bill_type", "ALL").with(extra...)
		st := wxpay.SignTypeMD5
		if path == "/pay/downloadfundflow" {
			m = kv("bill_date", "20261128", "account_type", "Basic", "sign_type", "HMAC-SHA256")
			st = wxpay.SignTypeHMACSHA256
		}
		_ = st
		body, _ := e.raw("POST", path, m.signed(apiKey).xmlBody())
		return body
	}
	for _, c := range []struct {
		query string
		v2    []byte
	}{
		{"/v3/bill/tradebill?bill_date=2026-11-28&bill_type=ALL", v2("/pay/downloadbill")},
		{"/v3/bill/tradebill?bill_date=2026-11-28&bill_type=ALL&tar_type=GZIP", v2("/pay/downloadbill")},
		{"/v3/bill/fundflowbill?bill_date=2026-11-28&account_type=BASIC", v2("/pay/downloadfundflow")},
	} {
		a := e.cli.do("GET", c.query, nil)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", c.query, a.status, a.body)
		}
		verifyV3(t, e.sim, a.header, a.body)
		var bill struct {
			HashType    string `json:"hash_type"`
			HashValue   string `json:"hash_value"`
			DownloadURL string `json:"download_url"`
		}
		a.decode(t, &bill)
		u, err := url.Parse(bill.DownloadURL)
		if err != nil || bill.HashType != "SHA1" || "http://"+u.Host != e.srv.URL || u.Path != "/v3/billdownload/file" {
			t.Fatalf("bill answer %s", a.body)
		}
		// Unsigned download without Authorization is refused.
		if body, resp := e.raw("GET", u.RequestURI(), nil); resp.StatusCode != 401 {
			t.Fatalf("download without Authorization: %d %s", resp.StatusCode, body)
		}
		f := e.cli.do("GET", u.RequestURI(), nil)
		if f.status != 200 || f.header.Get("Wechatpay-Signature") != "" {
			t.Fatalf("download: %d %v", f.status, f.header)
		}
		text := f.body
		if strings.Contains(c.query, "GZIP") {
			zr, err := gzip.NewReader(bytes.NewReader(f.body))
			if err != nil {
				t.Fatal(err)
			}
			text, _ = io.ReadAll(zr)
		}
		sum := sha1.Sum(text)
		if hex.EncodeToString(sum[:]) != bill.HashValue {
			t.Fatalf("SHA-1 mismatch for %s", c.query)
		}
		if !bytes.Equal(text, c.v2) {
			t.Fatalf("%s differs from the v2 bill:\n%s\n---\n%s", c.query, text, c.v2)
		}
		if !strings.Contains(c.query, "fundflow") && !strings.Contains(string(text), otn) {
			t.Fatalf("bill without the v3 order: %s", text)
		}
	}
	// A download_url lives 5 minutes.
	a := e.cli.do("GET", "/v3/bill/tradebill?bill_date=2026-11-28", nil)
	var bill struct {
		DownloadURL string `json:"download_url"`
	}
	a.decode(t, &bill)
	u, _ := url.Parse(bill.DownloadURL)
	_ = e.sim.Advance(5 * time.Minute)
	e.cli.do("GET", u.RequestURI(), nil).expectErr(t, 400, "INVALID_REQUEST")
	e.cli.do("GET", "/v3/bill/tradebill?bill_date=2026-11-27", nil).expectErr(t, 400, "NO_STATEMENT_EXIST")
	e.cli.do("GET", "/v3/bill/tradebill?bill_date=20261128", nil).expectErr(t, 400, "PARAM_ERROR")
	e.cli.do("GET", "/v3/bill/fundflowbill?bill_date=2026-11-28&account_type=OPERATION", nil).expectErr(t, 400, "NO_STATEMENT_EXIST")
}

// TestV3SendNotify: validly signed malicious notifies, among them a bad
// GCM nonce, which the merchant's decryptor must refuse without a panic.
func TestV3SendNotify(t *testing.T) {
	e := newV3Env(t)
	openID := e.user(10000)
	otn := newOTN()
	e.payV3(openID, e.prepayJSAPI(otn, 100, openID))
	e.sim.Flush()
	ctx := context.Background()
	for _, nonce := range []string{"", "short", "thirteen-char"} {
		a, err := e.sim.SendV3Notify(ctx, mchID, otn, "", func(m *wxsim.V3NotifyMessage) { m.Nonce = nonce })
		if err != nil || a.Kind != wxsim.NotifyCustom {
			t.Fatal(a, err)
		}
		got := e.ms.received()
		n := got[len(got)-1]
		verifyV3(t, e.sim, n.header, n.body) // a valid signature
		env, _, err := n.open(t, testAPIv3Key)
		if env.Resource.Nonce != nonce || !errors.Is(err, wxcrypto.ErrAEADNonce) {
			t.Fatalf("nonce %q: %v", nonce, err)
		}
	}
	// Another amount, encrypted and signed correctly.
	_, err := e.sim.SendV3Notify(ctx, mchID, otn, "", func(m *wxsim.V3NotifyMessage) {
		m.Resource["amount"].(map[string]any)["total"] = 1
		m.Resource["mchid"] = "1900000002"
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.ms.received()
	_, plain, err := got[len(got)-1].open(t, testAPIv3Key)
	var mt v3Txn
	_ = json.Unmarshal(plain, &mt)
	if err != nil || mt.Amount.Total != 1 || mt.MchID != "1900000002" || mt.OutTradeNo != otn {
		t.Fatalf("mutated resource %s %v", plain, err)
	}
	// Through the control API: wrong associated_data.
	var at wxsim.NotifyAttempt
	if st := e.ctl("POST", "/sim/v1/v3/notify", map[string]any{"out_trade_no": otn, "associated_data": "certificate"}, &at); st != 200 {
		t.Fatalf("control notify: %d", st)
	}
	got = e.ms.received()
	if _, _, err := got[len(got)-1].open(t, testAPIv3Key); err != nil {
		// The AAD the body names is the one used: it decrypts.
		t.Fatalf("associated_data certificate: %v", err)
	}
	if st := e.ctl("POST", "/sim/v1/v3/notify", map[string]any{"out_trade_no": otn, "ciphertext": "not base64!"}, &at); st != 200 {
		t.Fatalf("control notify: %d", st)
	}
	got = e.ms.received()
	if _, _, err := got[len(got)-1].open(t, testAPIv3Key); !errors.Is(err, wxcrypto.ErrAEADBase64) {
		t.Fatalf("bad ciphertext: %v", err)
	}
}

// TestV3GeneratedCredentials: a merchant without configured keys gets a
// generated API key and certificate that sign valid requests.
func TestV3GeneratedCredentials(t *testing.T) {
	e := newEnv(t)
	var creds wxsim.V3Credentials
	if st := e.ctl("GET", "/sim/v1/v3/merchants/"+mchID, nil, &creds); st != 200 {
		t.Fatalf("credentials: %d", st)
	}
	if len(creds.APIv3Key) != 32 || creds.PrivateKeyPEM == "" || !wxcrypto.IsHexSerial(creds.CertSerial) || len(creds.PlatformCertificates) != 1 {
		t.Fatalf("credentials %+v", creds)
	}
	key, err := wxcrypto.ParsePrivateKey([]byte(creds.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	cli := &v3Client{t: t, base: e.srv.URL, hc: e.srv.Client(), sim: e.sim, mchID: mchID, serial: creds.CertSerial, key: key}
	a := cli.do("GET", "/v3/certificates", nil)
	if a.status != 200 {
		t.Fatalf("certificates: %d %s", a.status, a.body)
	}
	verifyV3(t, e.sim, a.header, a.body)
	if again, _ := e.sim.V3Credentials(""); again.CertSerial != creds.CertSerial || again.APIv3Key != creds.APIv3Key {
		t.Fatal("credentials changed")
	}
}

// TestV3CA: CA.ConfigureV3 registers the CA's client certificate, whose
// key then signs v3 requests.
func TestV3CA(t *testing.T) {
	ca, err := wxsim.NewCA("")
	if err != nil {
		t.Fatal(err)
	}
	var cc *wxsim.ClientCert
	e := newEnv(t, func(c *wxsim.Config) {
		c.V3.PlatformKeys = [][]byte{[]byte(testPlatformKeyPEM)}
		if err := ca.ConfigureV3(c); err != nil {
			t.Fatal(err)
		}
		cc, _ = ca.ClientCert(mchID)
	})
	key, err := wxcrypto.ParsePrivateKey(cc.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cli := &v3Client{t: t, base: e.srv.URL, hc: e.srv.Client(), sim: e.sim, mchID: mchID, serial: wxcrypto.CertificateSerial(cc.Certificate.Leaf), key: key}
	if a := cli.do("GET", "/v3/certificates", nil); a.status != 200 {
		t.Fatalf("certificates: %d %s", a.status, a.body)
	}
	if creds, _ := e.sim.V3Credentials(mchID); creds.PrivateKeyPEM != "" {
		t.Fatal("the simulator hands out a key it did not issue")
	}
}

// TestV3Faults: the fault kinds on v3 endpoints.
func TestV3Faults(t *testing.T) {
	e := newV3Env(t)
	path := "/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid=" + mchID
	must := func(f wxsim.Fault) {
		if err := e.sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	must(wxsim.Fault{API: "v3_query", Kind: wxsim.FaultSystemError})
	a := e.cli.do("GET", path, nil)
	a.expectErr(t, 500, "SYSTEM_ERROR")
	verifyV3(t, e.sim, a.header, a.body)
	must(wxsim.Fault{API: "v3_query", Kind: wxsim.FaultErrCode, ErrCode: "FREQUENCY_LIMITED"})
	e.cli.do("GET", path, nil).expectErr(t, 429, "FREQUENCY_LIMITED")
	must(wxsim.Fault{API: "*", Kind: wxsim.FaultHTTP500})
	if a := e.cli.do("GET", path, nil); a.status != 500 || a.header.Get("Wechatpay-Signature") != "" {
		t.Fatalf("HTTP_500: %d", a.status)
	}
	// Executed, then SYSTEM_ERROR: the order exists although the answer failed.
	openID := e.user(1000)
	otn := newOTN()
	must(wxsim.Fault{API: "v3_prepay", Kind: wxsim.FaultSystemErrorAfterCommit})
	e.cli.do("POST", "/v3/pay/transactions/jsapi", e.prepayBody(otn, 100, openID)).expectErr(t, 500, "SYSTEM_ERROR")
	if tx := e.query(otn); tx.TradeState != "NOTPAY" {
		t.Fatalf("after SYSTEM_ERROR_AFTER_COMMIT: %+v", tx)
	}
	// The negative-test header.
	a = e.cli.doWith("GET", path, nil, func(r *http.Request, _ *wxcrypto.AuthorizationV3) {
		r.Header.Set("Wechatpay-Negative-Test", "BANK_ERROR")
	})
	a.expectErr(t, 500, "BANK_ERROR")
	// The control API takes the v3 fault names.
	var out map[string]any
	if st := e.ctl("POST", "/sim/v1/faults", map[string]any{"api": "v3_refund", "kind": "V3_PROBE"}, &out); st != 200 {
		t.Fatalf("control fault: %d %v", st, out)
	}
}

// TestV3Config: configuration errors.
func TestV3Config(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*wxsim.Config)
		want string
	}{
		{"short key", func(c *wxsim.Config) { c.Merchants[0].V3.APIv3Key = "short" }, "APIv3Key"},
		{"bad cert", func(c *wxsim.Config) { c.Merchants[0].V3.CertificatePEM = []byte("nope") }, "CertificatePEM"},
		{"bad id", func(c *wxsim.Config) { c.Merchants[0].V3.PublicKeyID = "KEY1" }, "PublicKeyID"},
		{"bad platform key", func(c *wxsim.Config) { c.V3.PlatformKeys = [][]byte{[]byte(testMerchantCertPEM)} }, "PlatformKeys"},
	} {
		cfg := wxsim.Config{Merchants: []wxsim.Merchant{wxsim.DefaultMerchant()}}
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
