package wxsim_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// payPaths are every WeChat Pay v2 path the simulator serves.
var payPaths = []string{
	"/pay/unifiedorder", "/pay/orderquery", "/pay/closeorder", "/secapi/pay/refund", "/pay/refundquery",
	"/pay/downloadbill", "/pay/downloadfundflow", "/pay/micropay", "/secapi/pay/reverse", "/tools/shorturl",
	"/payitil/report", "/tools/authcodetoopenid",
	"/sandboxnew/pay/unifiedorder", "/sandboxnew/pay/refund", "/sandboxnew/pay/reverse", "/sandboxnew/pay/micropay",
	"/xdc/apiv2sandbox/pay/micropay", "/xdc/apiv2sandbox/pay/orderquery",
}

// TestTransportErrors checks the protocol errors every path shares
// (protocol.md §3.1): they answer return_code=FAIL, unsigned.
func TestTransportErrors(t *testing.T) {
	e := newEnv(t)
	good := kv("out_trade_no", "T000001")
	cases := []struct {
		name   string
		method string
		body   []byte
		code   string // the Wxsim-Error header
		msg    string // a part of return_msg
	}{
		{"GET", "GET", nil, "REQUIRE_POST_METHOD", "post"},
		{"PUT", "PUT", good.signed(apiKey).xmlBody(), "REQUIRE_POST_METHOD", "post"},
		{"empty", "POST", nil, "POST_DATA_EMPTY", "post数据为空"},
		{"white space", "POST", []byte(" \n "), "POST_DATA_EMPTY", "post数据为空"},
		{"not xml", "POST", []byte("appid=1&mch_id=2"), "XML_FORMAT_ERROR", "XML"},
		{"json", "POST", []byte(`{"appid":"x"}`), "XML_FORMAT_ERROR", "XML"},
		{"doctype", "POST", append([]byte(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`), good.signed(apiKey).xmlBody()...), "XML_FORMAT_ERROR", "XML"},
		{"duplicate", "POST", []byte("<xml><appid>a</appid><appid>a</appid></xml>"), "XML_FORMAT_ERROR", "duplicate"},
		{"nested", "POST", []byte("<xml><appid><x>a</x></appid></xml>"), "XML_FORMAT_ERROR", "nested"},
		{"trailing", "POST", append(good.signed(apiKey).xmlBody(), "<xml/>"...), "XML_FORMAT_ERROR", "after"},
		{"gbk", "POST", append([]byte{0xc4, 0xe3}, good.signed(apiKey).xmlBody()...), "NOT_UTF8", "编码"},
		{"oversize", "POST", bytes.Repeat([]byte("<!-- -->"), 10000), "XML_FORMAT_ERROR", "过大"},
		{"no mch_id", "POST", good.with("mch_id", "").xmlBody(), "LACK_PARAMS", "mch_id"},
		{"unknown mch_id", "POST", good.with("mch_id", "999", "appid", appID).signed(apiKey).xmlBody(), "MCHID_NOT_EXIST", "商户号"},
		{"no appid", "POST", good.with("mch_id", mchID).xmlBody(), "LACK_PARAMS", "appid"},
		{"unknown appid", "POST", good.with("appid", "wx0000000000000000").signed(apiKey).xmlBody(), "APPID_NOT_EXIST", "appid不存在"},
		{"no nonce", "POST", good.with("appid", appID, "mch_id", mchID).xmlBody(), "LACK_PARAMS", "nonce_str"},
		{"no sign", "POST", good.with("appid", appID, "mch_id", mchID, "nonce_str", "n").xmlBody(), "LACK_PARAMS", "sign"},
		{"bad sign", "POST", good.signed("x" + apiKey[1:]).xmlBody(), "SIGNERROR", "签名错误"},
		{"lower-case sign", "POST", good.signed(apiKey).with("sign", strings.ToLower(good.signed(apiKey)["sign"])).xmlBody(), "SIGNERROR", "签名错误"},
		{"bad sign type", "POST", good.signed(apiKey).with("sign_type", "SHA1").xmlBody(), "SIGNERROR", "sign_type"},
	}
	for _, path := range payPaths {
		for _, c := range cases {
			body := c.body
			if strings.Contains(path, "sandbox") && c.name == "bad sign" {
				continue // the sandbox answers its own message below
			}
			b, resp := e.raw(c.method, path, body)
			ans := parseXML(t, b)
			if resp.StatusCode != 200 || ans["return_code"] != "FAIL" || ans["sign"] != "" {
				t.Errorf("%s %s: HTTP %d %s", path, c.name, resp.StatusCode, b)
				continue
			}
			got := resp.Header.Get("Wxsim-Error")
			if strings.Contains(path, "downloadbill") || strings.Contains(path, "downloadfundflow") {
				if c.code == "LACK_PARAMS" {
					if ans["return_msg"] != "missing parameter" {
						t.Errorf("%s %s: return_msg %q", path, c.name, ans["return_msg"])
					}
					continue
				}
				if c.code == "SIGNERROR" && c.name != "bad sign type" {
					if ans["return_msg"] != "SIGN ERROR" {
						t.Errorf("%s %s: return_msg %q", path, c.name, ans["return_msg"])
					}
					continue
				}
			}
			if got != c.code || !strings.Contains(ans["return_msg"], c.msg) {
				t.Errorf("%s %s: code %s msg %q, want %s %q", path, c.name, got, ans["return_msg"], c.code, c.msg)
			}
		}
	}
}

func TestAppIDMchIDMismatch(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) {
		c.Merchants = []wxsim.Merchant{wxsim.DefaultMerchant(), {MchID: "1900000109", APIKey: strings.Repeat("k", 32),
			Apps: []wxsim.App{{AppID: "wx1111111111111111", AppSecret: "s"}}}}
	})
	ans := e.call("/pay/orderquery", kv("appid", "wx1111111111111111", "out_trade_no", "T000001"))
	if ans["return_code"] != "FAIL" || ans["return_msg"] != "appid和mch_id不匹配" {
		t.Fatalf("answer = %v", ans)
	}
	// The other merchant's key does not sign for this one.
	ans = e.callKey("/pay/orderquery", kv("mch_id", "1900000109", "appid", "wx1111111111111111", "out_trade_no", "T000001"), apiKey)
	if ans["return_msg"] != "签名错误" {
		t.Fatalf("answer = %v", ans)
	}
	ans = e.callKey("/pay/orderquery", kv("mch_id", "1900000109", "appid", "wx1111111111111111", "out_trade_no", "T000001"), strings.Repeat("k", 32))
	if ans["err_code"] != "ORDERNOTEXIST" {
		t.Fatalf("answer = %v", ans)
	}
}

// TestSignHint checks the diagnosis a bad signature gets.
func TestSignHint(t *testing.T) {
	e := newEnv(t)
	m := kv("out_trade_no", "T000001").signed(wxsim.DefaultAppSecret)
	_, resp := e.raw("POST", "/pay/orderquery", m.xmlBody())
	if h := resp.Header.Get("Wxsim-Sign-Hint"); !strings.Contains(h, "AppSecret") {
		t.Fatalf("hint = %q", h)
	}
	// A sign made with MD5 while sign_type says HMAC-SHA256.
	m = kv("out_trade_no", "T000001", "sign_type", "HMAC-SHA256", "appid", appID, "mch_id", mchID, "nonce_str", "n")
	sig, _ := wxcrypto.SignMap(wxpay.SignTypeMD5, apiKey, m)
	_, resp = e.raw("POST", "/pay/orderquery", m.with("sign", sig).xmlBody())
	if h := resp.Header.Get("Wxsim-Sign-Hint"); !strings.Contains(h, "MD5") {
		t.Fatalf("hint = %q", h)
	}
}

// TestHMACAnswersSigned checks that an HMAC-SHA256 request gets an
// HMAC-SHA256-signed answer, success and business failure alike.
func TestHMACAnswersSigned(t *testing.T) {
	e := newEnv(t)
	ans := e.call("/pay/orderquery", kv("out_trade_no", "T000001", "sign_type", "HMAC-SHA256"))
	if ans["err_code"] != "ORDERNOTEXIST" || len(ans["sign"]) != 64 {
		t.Fatalf("answer = %v", ans)
	}
	ans = e.call("/pay/orderquery", kv("out_trade_no", "T000001"))
	if len(ans["sign"]) != 32 {
		t.Fatalf("answer = %v", ans)
	}
}

func TestUnknownPaths(t *testing.T) {
	e := newEnv(t)
	b, resp := e.raw("POST", "/pay/nosuchapi", kv("a", "1").signed(apiKey).xmlBody())
	if resp.StatusCode != 404 || !strings.Contains(string(b), "404 Not Found") {
		t.Fatalf("pay host: %d %s", resp.StatusCode, b)
	}
	b, resp = e.raw("GET", "/sns/nosuch", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"errcode":40066`) {
		t.Fatalf("api host: %d %s", resp.StatusCode, b)
	}
	b, resp = e.raw("GET", "/sim/v1/nosuch", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("control: %d %s", resp.StatusCode, b)
	}
	// /secapi/pay/refund is not /pay/refund outside the sandbox.
	_, resp = e.raw("POST", "/pay/refund", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("/pay/refund: %d", resp.StatusCode)
	}
}

// TestNegativeTestHeader checks the Wechatpay-Negative-Test hook.
func TestNegativeTestHeader(t *testing.T) {
	e := newEnv(t)
	body := kv("out_trade_no", "T000001").signed(apiKey).xmlBody()
	req, _ := http.NewRequest("POST", e.srv.URL+"/pay/orderquery", bytes.NewReader(body))
	req.Header.Set("Wechatpay-Negative-Test", "SYSTEMERROR")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	ans := parseXML(t, buf.Bytes())
	verifySigned(t, ans, apiKey, wxpay.SignTypeMD5)
	if ans["err_code"] != "SYSTEMERROR" {
		t.Fatalf("answer = %v", ans)
	}
}

// TestSandbox checks getsignkey on both generations and that sandbox calls
// use the sandbox key, MD5 only, on a ledger of their own.
func TestSandbox(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/sandboxnew/pay/getsignkey", "/xdc/apiv2getsignkey/sign/getsignkey"} {
		m := msg{"mch_id": mchID, "nonce_str": "abc"}
		sig, _ := wxcrypto.SignMap(wxpay.SignTypeMD5, apiKey, m)
		b, _ := e.raw("POST", path, m.with("sign", sig).xmlBody())
		ans := parseXML(t, b)
		if ans["return_code"] != "SUCCESS" || len(ans["sandbox_signkey"]) != 32 || ans["mch_id"] != mchID {
			t.Fatalf("%s: %s", path, b)
		}
		sandboxKey := ans["sandbox_signkey"]
		// The production key does not sign sandbox calls.
		if a := e.call("/sandboxnew/pay/orderquery", kv("out_trade_no", "T000001")); a["return_msg"] != "签名错误" {
			t.Fatalf("production key in the sandbox: %v", a)
		}
		if a := e.callKey("/sandboxnew/pay/orderquery", kv("out_trade_no", "T000001", "sign_type", "HMAC-SHA256"), sandboxKey); a["return_code"] != "FAIL" {
			t.Fatalf("HMAC in the sandbox: %v", a)
		}
		if a := e.callKey("/sandboxnew/pay/orderquery", kv("out_trade_no", "T000001"), sandboxKey); a["err_code"] != "ORDERNOTEXIST" {
			t.Fatalf("sandbox query: %v", a)
		}
		// The new sandbox does not serve unifiedorder.
		a := e.callKey("/xdc/apiv2sandbox/pay/unifiedorder", kv("body", "b", "out_trade_no", "T000001", "total_fee", "101",
			"spbill_create_ip", "1.2.3.4", "notify_url", "http://x/n", "trade_type", "NATIVE", "product_id", "p"), sandboxKey)
		if a["return_code"] != "FAIL" {
			t.Fatalf("new sandbox unifiedorder: %v", a)
		}
	}
	// getsignkey signed with a wrong key.
	m := msg{"mch_id": mchID, "nonce_str": "abc"}
	sig, _ := wxcrypto.SignMap(wxpay.SignTypeMD5, strings.Repeat("0", 32), m)
	b, _ := e.raw("POST", "/sandboxnew/pay/getsignkey", m.with("sign", sig).xmlBody())
	if ans := parseXML(t, b); ans["return_code"] != "FAIL" {
		t.Fatalf("getsignkey with a bad sign: %s", b)
	}
}

// FuzzHandler posts arbitrary requests to every pay path: the simulator
// must answer (never a recovered panic, which would be HTTP 500). With
// signed set, data is read as "name=value" lines, completed with the base
// fields and correctly signed, so that the fuzzer reaches the validation
// behind the signature; otherwise data is the raw body.
func FuzzHandler(f *testing.F) {
	sim, err := wxsim.New(wxsim.Config{Clock: wxsim.NewManualClock(start), IDs: wxsim.NewSequentialIDs(), CloseMinAge: -1, RefundDelay: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sim.Close() })
	u, _ := sim.CreateUser(wxsim.NewUser{})
	code, _ := sim.AuthCode(u.OpenID, wxsim.MicropayUserPaying)
	lines := func(m msg) []byte {
		var b bytes.Buffer
		for _, k := range sortedKeys(m) {
			b.WriteString(k + "=" + m[k] + "\n")
		}
		return b.Bytes()
	}
	f.Add(uint8(0), true, lines(uoReq("FZ000001", u.OpenID)))
	f.Add(uint8(0), true, lines(uoReq("FZ000002", u.OpenID).with("trade_type", "NATIVE", "product_id", "p", "time_expire", "20261128110000")))
	f.Add(uint8(1), true, lines(kv("out_trade_no", "FZ000001")))
	f.Add(uint8(2), true, lines(kv("out_trade_no", "FZ000001")))
	f.Add(uint8(3), true, lines(refundReq("FZ000001", "R1", 100, 1)))
	f.Add(uint8(4), true, lines(kv("out_trade_no", "FZ000001", "offset", "0")))
	f.Add(uint8(5), true, lines(kv("bill_date", "20261127", "bill_type", "ALL", "tar_type", "GZIP")))
	f.Add(uint8(6), true, lines(kv("bill_date", "20261127", "account_type", "Basic", "sign_type", "HMAC-SHA256")))
	f.Add(uint8(7), true, lines(mpReq("FZ000003", code, 1)))
	f.Add(uint8(8), true, lines(kv("out_trade_no", "FZ000003")))
	f.Add(uint8(9), true, lines(kv("long_url", "weixin%3A%2F%2Fwxpay%2Fbizpayurl%3Fpr%3Dx")))
	f.Add(uint8(10), true, lines(kv("interface_url", "x", "execute_time_", "1", "return_code", "SUCCESS", "result_code", "SUCCESS", "user_ip", "1.1.1.1")))
	f.Add(uint8(11), true, lines(kv("auth_code", code)))
	f.Add(uint8(0), false, uoReq("FZ000004", u.OpenID).signed(apiKey).xmlBody())
	f.Add(uint8(1), false, []byte("<xml><mch_id>1225312702</mch_id><appid>wx426b3015555a46be</appid></xml>"))
	f.Fuzz(func(t *testing.T, which uint8, signed bool, data []byte) {
		path := payPaths[int(which)%len(payPaths)]
		body := data
		if signed {
			m := msg{}
			for _, line := range strings.Split(string(data), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok && k != "" {
					m[k] = v
				}
			}
			if _, err := wxcrypto.SignMap(wxpay.SignType(m["sign_type"]), apiKey, m); err != nil {
				return // a sign_type the client could not sign with
			}
			body = m.signed(apiKey).xmlBody()
		}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("%s: HTTP 500 for %q", path, body)
		}
	})
}
