package apiv3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestConfigValidate(t *testing.T) {
	good := testConfig(t)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Config){
		"no mchid":             func(c *Config) { c.MchID = "" },
		"no serial":            func(c *Config) { c.CertSerial = "" },
		"serial not hex":       func(c *Config) { c.CertSerial = "3775B6A4-5ACD" },
		"serial is PUB_KEY_ID": func(c *Config) { c.CertSerial = pubKeyID },
		"no key":               func(c *Config) { c.PrivateKey = "" },
		"two keys":             func(c *Config) { c.PrivateKeyFile = "testdata/merchant_key.pem" },
		"APIv3 key 31":         func(c *Config) { c.APIv3Key = testAPIv3Key[:31] },
		"APIv3 key 33":         func(c *Config) { c.APIv3Key = testAPIv3Key + "x" },
		"notify with query":    func(c *Config) { c.NotifyURL = "https://shop.example/n?x=1" },
		"notify relative":      func(c *Config) { c.NotifyURL = "/notify" },
		"public key id":        func(c *Config) { c.Verifier = &PublicKeyVerifier{ID: "0114", Key: &pubKeyKey(t).PublicKey} },
	}
	for name, mod := range cases {
		c := testConfig(t)
		mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), string(testAPIv3Key)) || strings.Contains(err.Error(), canaryPrivateKeyID) {
			t.Errorf("%s: the error shows a secret", name)
		}
		if _, err := NewClient(c); err == nil {
			t.Errorf("%s: NewClient accepted", name)
		}
	}
}

func TestNewClientKeys(t *testing.T) {
	for _, name := range []string{"merchant_key.pem", "merchant_key_pkcs1.pem"} {
		cfg := testConfig(t)
		cfg.PrivateKey = ""
		cfg.PrivateKeyFile = filepath.Join("testdata", name)
		if _, err := NewClient(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, want := range map[string]error{"small_key.pem": wxcrypto.ErrKeyTooSmall, "ec_key.pem": wxcrypto.ErrKeyNotRSA,
		"merchant_cert.pem": wxcrypto.ErrKeyPEM, "missing.pem": os.ErrNotExist} {
		cfg := testConfig(t)
		cfg.PrivateKey = ""
		cfg.PrivateKeyFile = filepath.Join("testdata", name)
		if _, err := NewClient(cfg); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}

// reliability.md F3, G1: the merchant's own certificate configured as the
// platform certificate is refused, whichever way it comes in.
func TestMerchantCertificateRefused(t *testing.T) {
	own, err := wxcrypto.ParseCertificate(readTestdata(t, "merchant_cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ownVerifier, err := NewCertificateVerifier(own)
	if err != nil {
		t.Fatal(err)
	}
	// Same key under another serial (a re-issued merchant certificate).
	sameKey, _ := NewCertificateVerifier(makeCert(t, merchantKey(t), "ABCDEF", testNow.AddDate(-1, 0, 0), testNow.AddDate(1, 0, 0)))
	for name, v := range map[string]Verifier{
		"certificate verifier": ownVerifier,
		"same key":             sameKey,
		"in a multi verifier":  &MultiVerifier{PublicKey: pubKeyVerifier(t), Certificates: ownVerifier},
		"as a public key":      &PublicKeyVerifier{ID: "PUB_KEY_ID_1", Key: &merchantKey(t).PublicKey},
	} {
		cfg := testConfig(t)
		cfg.Verifier = v
		if _, err := NewClient(cfg); !errors.Is(err, ErrMerchantCertificate) {
			t.Errorf("%s: %v", name, err)
		}
		cfg.Verifier = nil
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WithVerifier(v); !errors.Is(err, ErrMerchantCertificate) {
			t.Errorf("%s via WithVerifier: %v", name, err)
		}
	}
	c, _ := NewClient(testConfig(t))
	if _, err := NewCertificateManager(c, "", WithTrustedCertificate(own)); !errors.Is(err, ErrMerchantCertificate) {
		t.Errorf("pinned: %v", err)
	}
}

// A client without a Verifier sends nothing.
func TestNoVerifierSendsNothing(t *testing.T) {
	f := newFake(t)
	cfg := testConfig(t)
	c, err := NewClient(cfg, WithBaseURL(f.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.QueryByOutTradeNo(context.Background(), testOutTradeNo)
	if !errors.Is(err, ErrNoVerifier) || OutcomeUnknown(err) {
		t.Errorf("query: %v", err)
	}
	if f.requests.Load() != 0 {
		t.Error("a request was sent")
	}
	if _, err := c.ParseNotify(context.Background(), http.Header{}, []byte("{}")); !errors.Is(err, ErrNoVerifier) {
		t.Errorf("notify: %v", err)
	}
}

// reliability.md I9: the keys never show, whatever prints the client.
func TestSecretsNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	f := newFake(t)
	f.handle("GET /v3/pay/transactions/out-trade-no/{no}", 404, `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`)
	c := newTestClient(t, f, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	_, err := c.QueryByOutTradeNo(context.Background(), testOutTradeNo)
	cfg := testConfig(t)
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&out, verb+"\n", c)
		fmt.Fprintf(&out, verb+"\n", cfg)
		fmt.Fprintf(&out, verb+"\n", err)
	}
	js, _ := json.Marshal(cfg)
	out.Write(js)
	out.Write(logs.Bytes())
	for _, secret := range []string{string(testAPIv3Key), canaryPrivateKeyID, "WECHATPAY2-SHA256-RSA2048 mchid", "signature="} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("%q printed:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(logs.String(), "request_id=08F78BB5AF0610D302A2E8D0C58E0318E2F9FA03-0") {
		t.Errorf("the log lacks the Request-Id:\n%s", logs.String())
	}
}

// The Authorization header is what protocol.md §13.1 says, over the URI as
// sent, and the fake WeChat verifies it on every request.
func TestAuthorizationHeader(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v3/pay/transactions/out-trade-no/{no}", 200, string(ourTransaction))
	c := newTestClient(t, f)
	if _, err := c.QueryByOutTradeNo(context.Background(), "T|2026*11@29-x_1"); err != nil {
		t.Fatal(err)
	}
	r, _ := f.lastRequest()
	auth := r.Header.Get("Authorization")
	a, err := wxcrypto.ParseAuthorizationV3(auth)
	if err != nil {
		t.Fatal(err)
	}
	if a.MchID != testMchID || a.SerialNo != merchantSerial || a.Nonce != testNonce || a.Timestamp != testNow.Unix() {
		t.Errorf("header %+v", a)
	}
	want, _ := wxcrypto.SignV3(merchantKey(t), "GET", r.URL.RequestURI(), testNow.Unix(), testNonce, nil)
	if a.Signature != want {
		t.Error("signature is not over the request URI as sent")
	}
	if !strings.HasPrefix(r.URL.RequestURI(), "/v3/pay/transactions/out-trade-no/T%7C2026%2A11@29-x_1?mchid=1900009191") &&
		!strings.HasPrefix(r.URL.RequestURI(), "/v3/pay/transactions/out-trade-no/T%7C2026*11@29-x_1?mchid=1900009191") {
		t.Errorf("URI %s", r.URL.RequestURI())
	}
	if r.Header.Get("Accept") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "wxpay-go/") {
		t.Errorf("headers %v", r.Header)
	}
}

// Answers: error bodies are typed and matched in both spellings; 5xx,
// SYSTEM_ERROR, 202 USERPAYING and anything unverifiable are unknown.
func TestAnswerClassification(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		mod     func(h http.Header) // tamper with the signed headers
		is      []error
		unknown bool
	}{
		{name: "not found", status: 404, body: `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`, is: []error{ErrOrderNotExist}},
		{name: "not found, old spelling", status: 404, body: `{"code":"ORDERNOTEXIST","message":"订单不存在"}`, is: []error{ErrOrderNotExist}},
		{name: "no auth, old spelling", status: 403, body: `{"code":"NOAUTH","message":"x"}`, is: []error{ErrNoAuth}},
		{name: "not enough", status: 403, body: `{"code":"NOTENOUGH","message":"x"}`, is: []error{ErrNotEnough}},
		{name: "rule limit", status: 403, body: `{"code":"RULE_LIMIT","message":"x"}`, is: []error{ErrRuleLimit}},
		{name: "param error", status: 400, body: `{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"#/properties/payer","value":"x","issue":"must be object","location":"body"}}`, is: []error{ErrParamError}},
		{name: "system error", status: 500, body: `{"code":"SYSTEM_ERROR","message":"系统错误"}`, is: []error{ErrSystemError, ErrOutcomeUnknown}, unknown: true},
		{name: "system error, old spelling", status: 500, body: `{"code":"SYSTEMERROR","message":"系统错误"}`, is: []error{ErrSystemError}, unknown: true},
		{name: "502 without body", status: 502, body: "", unknown: true},
		{name: "user paying", status: 202, body: `{"code":"USERPAYING","message":"需要用户输入支付密码"}`, is: []error{ErrUserPaying}, unknown: true},
		{name: "rate limited", status: 429, body: `{"code":"FREQUENCY_LIMITED","message":"x"}`, is: []error{ErrFrequencyLimited}},
		{name: "200 unsigned", status: 200, body: string(ourTransaction), mod: func(h http.Header) { h.Del(HeaderSignature) },
			is: []error{ErrResponseSignature, ErrMissingHeader}, unknown: true},
		{name: "200 bad signature", status: 200, body: string(ourTransaction), mod: func(h http.Header) {
			h.Set(HeaderSignature, base64Flip(h.Get(HeaderSignature)))
		}, is: []error{ErrResponseSignature, ErrSignature}, unknown: true},
		{name: "200 unknown serial", status: 200, body: string(ourTransaction), mod: func(h http.Header) { h.Set(HeaderSerial, "PUB_KEY_ID_999") },
			is: []error{ErrResponseSignature, ErrUnknownSerial}, unknown: true},
		{name: "200 stale", status: 200, body: string(ourTransaction), mod: func(h http.Header) { h.Set(HeaderTimestamp, "1554208460") },
			is: []error{ErrResponseSignature, ErrTimestamp}, unknown: true},
		{name: "200 probe", status: 200, body: string(ourTransaction), mod: func(h http.Header) { h.Set(HeaderSignature, ProbePrefix+"abc") },
			is: []error{ErrResponseSignature, ErrProbeSignature}, unknown: true},
		{name: "404 signed badly", status: 404, body: `{"code":"ORDER_NOT_EXIST","message":"x"}`, mod: func(h http.Header) {
			h.Set(HeaderSignature, base64Flip(h.Get(HeaderSignature)))
		}, is: []error{ErrResponseSignature}, unknown: true},
		{name: "401 unsigned", status: 401, body: `{"code":"SIGN_ERROR","message":"签名错误"}`, mod: func(h http.Header) {
			for _, k := range []string{HeaderSignature, HeaderSerial, HeaderNonce, HeaderTimestamp} {
				h.Del(k)
			}
		}, is: []error{ErrSignError}},
		{name: "200 not JSON", status: 200, body: `<html>`, unknown: true},
		{name: "200 paid without amount", status: 200, body: `{"mchid":"1900009191","out_trade_no":"123456","trade_state":"SUCCESS","transaction_id":"42"}`,
			is: []error{ErrMalformedJSON}, unknown: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.mux.HandleFunc("GET /v3/pay/transactions/out-trade-no/{no}", func(w http.ResponseWriter, r *http.Request) {
				f.signHeaders(w.Header(), []byte(tc.body))
				if tc.mod != nil {
					tc.mod(w.Header())
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			})
			c := newTestClient(t, f)
			tx, err := c.QueryByOutTradeNo(context.Background(), testOutTradeNo)
			if err == nil {
				t.Fatalf("no error; %+v", tx)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T %v", err, err)
			}
			if e.Unknown != tc.unknown || OutcomeUnknown(err) != tc.unknown {
				t.Errorf("unknown = %v, want %v: %v", e.Unknown, tc.unknown, err)
			}
			if tc.status != 200 && e.HTTPStatus != tc.status {
				t.Errorf("status %d", e.HTTPStatus)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("not %v: %v", target, err)
				}
			}
			if errors.Is(err, ErrOrderClosed) {
				t.Error("matches an unrelated code")
			}
		})
	}
}

func base64Flip(s string) string {
	b := []byte(s)
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return string(b)
}

func TestParamErrorDetail(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v3/pay/transactions/jsapi", 400, `{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"#/properties/payer","value":"x","issue":"must be object","location":"body"}}`)
	c := newTestClient(t, f)
	_, err := c.PrepayJSAPI(context.Background(), jsapiRequest())
	var e *Error
	if !errors.As(err, &e) || e.Detail == nil || e.Detail.Field != "#/properties/payer" || e.Detail.Location != "body" || e.Unknown {
		t.Fatalf("%+v", err)
	}
	if !strings.Contains(err.Error(), "#/properties/payer: must be object") || !strings.Contains(err.Error(), "Request-Id") {
		t.Errorf("message %q", err)
	}
}

// A slow server: the caller's deadline ends the call, which is unknown.
func TestSlowServerDeadline(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	defer close(release)
	f.mux.HandleFunc("POST /v3/pay/transactions/jsapi", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.PrepayJSAPI(ctx, jsapiRequest())
	if !OutcomeUnknown(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// WithTimeout bounds calls whose context has none.
	c = newTestClient(t, f, WithTimeout(100*time.Millisecond))
	if _, err := c.PrepayJSAPI(context.Background(), jsapiRequest()); !OutcomeUnknown(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WithTimeout: %v", err)
	}
}

// closedURL is an http URL where nothing listens: connections are refused.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func TestFailover(t *testing.T) {
	backup := newFake(t)
	backup.handle("GET /v3/pay/transactions/out-trade-no/{no}", 200, string(ourTransaction))
	backup.handle("POST /v3/pay/transactions/jsapi", 200, `{"prepay_id":"`+testPrepayID+`"}`)
	primary := newFake(t)
	primary.handle("GET /v3/pay/transactions/out-trade-no/{no}", 503, `{"code":"SYSTEM_ERROR","message":"x"}`)
	primary.handle("POST /v3/pay/transactions/jsapi", 500, `{"code":"SYSTEM_ERROR","message":"x"}`)

	c := newTestClient(t, primary, WithFailover(backup.srv.URL))
	// A query fails over on a 5xx.
	if _, err := c.QueryByOutTradeNo(context.Background(), testOutTradeNo); err != nil {
		t.Errorf("query: %v", err)
	}
	// An order does not: the primary may have executed it.
	if _, err := c.PrepayJSAPI(context.Background(), jsapiRequest()); !OutcomeUnknown(err) {
		t.Errorf("prepay after 5xx: %v", err)
	}
	if n := backup.requests.Load(); n != 1 {
		t.Errorf("backup saw %d requests, want 1", n)
	}
	// An order fails over when the primary cannot be reached at all.
	c, err := NewClient(withVerifier(t, testConfig(t)), WithBaseURL(closedURL(t)), WithFailover(backup.srv.URL), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.PrepayJSAPI(context.Background(), jsapiRequest()); err != nil || r.PrepayID != testPrepayID {
		t.Errorf("prepay, primary down: %v", err)
	}
	// Without failover, a refused connection is a known failure.
	c, _ = NewClient(withVerifier(t, testConfig(t)), WithBaseURL(closedURL(t)))
	if _, err := c.PrepayJSAPI(context.Background(), jsapiRequest()); err == nil || OutcomeUnknown(err) {
		t.Errorf("refused connection: %v", err)
	}
	if _, err := NewClient(testConfig(t), WithFailover("ftp://x")); err == nil {
		t.Error("bad backup accepted")
	}
	if _, err := NewClient(testConfig(t), WithBaseURL("https://api.example/?x=1")); err == nil {
		t.Error("base with query accepted")
	}
}

func withVerifier(t testing.TB, cfg Config) Config {
	cfg.Verifier = pubKeyVerifier(t)
	return cfg
}

func TestOptionErrors(t *testing.T) {
	for name, o := range map[string]Option{
		"nil http": WithHTTPClient(nil), "nil clock": WithClock(nil), "nil nonce": WithNonce(nil),
		"nil logger": WithLogger(nil), "timeout 0": WithTimeout(0), "bill cap 0": WithMaxBillSize(0),
	} {
		if _, err := NewClient(testConfig(t), o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestDo(t *testing.T) {
	f := newFake(t)
	f.mux.HandleFunc("POST /v3/profitsharing/receivers/add", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderSerial) != pubKeyID {
			t.Errorf("Wechatpay-Serial %q", r.Header.Get(HeaderSerial))
		}
		var body struct {
			Name string `json:"name"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		name, err := wxcrypto.DecryptOAEP(pubKeyKey(t), body.Name)
		if err != nil || name != "张三" {
			t.Errorf("name %q, %v", name, err)
		}
		f.reply(w, 200, `{"type":"PERSONAL_OPENID"}`)
	})
	c := newTestClient(t, f)
	ct, serial, err := c.EncryptSensitive("张三")
	if err != nil || serial != pubKeyID {
		t.Fatal(serial, err)
	}
	body, _ := json.Marshal(map[string]string{"type": "PERSONAL_OPENID", "name": ct})
	resp, err := c.Do(context.Background(), "POST", "/v3/profitsharing/receivers/add", body, serial)
	if err != nil || resp.StatusCode != 200 || string(resp.Body) != `{"type":"PERSONAL_OPENID"}` {
		t.Fatalf("%+v %v", resp, err)
	}
	if _, err := c.Do(context.Background(), "GET", "v3/x", nil, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("relative path: %v", err)
	}
}

func TestFormat(t *testing.T) {
	c, err := NewClient(testConfig(t), WithBaseURL("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", c)
	if got != "apiv3.Client{MchID: 1900009191, AppID: wxd678efh567hg6787, CertSerial: "+merchantSerial+", Host: http://127.0.0.1:1}" {
		t.Errorf("%s", got)
	}
	if c.MchID() != testMchID || c.AppID() != testAppID || c.Verifier() != nil {
		t.Error("accessors")
	}
}

// Every API under every failure mode of an answer: an error body is typed
// and known; a 5xx, an unsigned or badly signed 2xx and a deadline are
// unknown (reliability.md C3).
func TestEveryAPIFailureModes(t *testing.T) {
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)
	native := func() *PrepayRequest { r := jsapiRequest(); r.OpenID = ""; return r }
	h5 := func() *PrepayRequest {
		r := native()
		r.SceneInfo = &SceneInfo{PayerClientIP: "203.0.113.7", H5Info: &H5Info{Type: "Wap"}}
		return r
	}
	apis := map[string]func(ctx context.Context, c *Client) error{
		"PrepayJSAPI":  func(ctx context.Context, c *Client) error { _, err := c.PrepayJSAPI(ctx, jsapiRequest()); return err },
		"PrepayNative": func(ctx context.Context, c *Client) error { _, err := c.PrepayNative(ctx, native()); return err },
		"PrepayApp":    func(ctx context.Context, c *Client) error { _, err := c.PrepayApp(ctx, native()); return err },
		"PrepayH5":     func(ctx context.Context, c *Client) error { _, err := c.PrepayH5(ctx, h5()); return err },
		"QueryByTransactionID": func(ctx context.Context, c *Client) error {
			_, err := c.QueryByTransactionID(ctx, testTransactionID)
			return err
		},
		"QueryByOutTradeNo": func(ctx context.Context, c *Client) error {
			_, err := c.QueryByOutTradeNo(ctx, testOutTradeNo)
			return err
		},
		"CloseOrder": func(ctx context.Context, c *Client) error { return c.CloseOrder(ctx, testOutTradeNo) },
		"CreateRefund": func(ctx context.Context, c *Client) error {
			_, err := c.CreateRefund(ctx, &RefundRequest{OutTradeNo: testOutTradeNo, OutRefundNo: testOutRefundNo, Refund: 1, Total: 100})
			return err
		},
		"QueryRefund": func(ctx context.Context, c *Client) error { _, err := c.QueryRefund(ctx, testOutRefundNo); return err },
		"TradeBill": func(ctx context.Context, c *Client) error {
			_, err := c.TradeBill(ctx, &TradeBillRequest{Date: day})
			return err
		},
		"FundFlowBill": func(ctx context.Context, c *Client) error {
			_, err := c.FundFlowBill(ctx, &FundFlowBillRequest{Date: day})
			return err
		},
	}
	modes := []struct {
		name    string
		serve   func(f *fakeWeChat, w http.ResponseWriter, r *http.Request)
		unknown bool
		is      error
	}{
		{"error body", func(f *fakeWeChat, w http.ResponseWriter, r *http.Request) {
			f.reply(w, 404, `{"code":"ORDERNOTEXIST","message":"x"}`)
		}, false, ErrOrderNotExist},
		{"5xx", func(f *fakeWeChat, w http.ResponseWriter, r *http.Request) {
			f.reply(w, 500, `{"code":"SYSTEM_ERROR","message":"x"}`)
		}, true, ErrSystemError},
		{"unsigned 200", func(f *fakeWeChat, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.Write([]byte(`{"prepay_id":"x"}`))
		}, true, ErrResponseSignature},
		{"badly signed 200", func(f *fakeWeChat, w http.ResponseWriter, r *http.Request) {
			f.signHeaders(w.Header(), []byte(`{"prepay_id":"y"}`))
			w.WriteHeader(200)
			w.Write([]byte(`{"prepay_id":"x"}`))
		}, true, ErrSignature},
		{"slow", func(f *fakeWeChat, w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, true, context.DeadlineExceeded},
	}
	for name, call := range apis {
		for _, m := range modes {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				f := newFake(t)
				f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { m.serve(f, w, r) })
				c := newTestClient(t, f)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if m.name == "slow" {
					ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
				}
				defer cancel()
				err := call(ctx, c)
				if err == nil {
					t.Fatal("no error")
				}
				bill := strings.Contains(name, "Bill")
				if OutcomeUnknown(err) != m.unknown && !bill {
					t.Errorf("unknown = %v: %v", OutcomeUnknown(err), err)
				}
				if !errors.Is(err, m.is) {
					t.Errorf("not %v: %v", m.is, err)
				}
			})
		}
	}
}
