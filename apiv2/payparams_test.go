package apiv2

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Vector A of protocol.md §14.
const (
	vectorAAppID     = "wxd678efh567hg6787"
	vectorAKey       = "qazwsxedcrfvtgbyhnujmikolp111111"
	vectorANonce     = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
	vectorAPrepayID  = "wx2017033010242291fcfe0db70013231072"
	vectorATimeStamp = "1490840662"
	vectorASign      = "22D9B4E54AB1950F51E0649E8810ACD6"
	vectorA2Sign     = "FB9D1EFB5C509131BBFF729F88A99CA2DE9B724D06D3B3262832A53083862BC0"
)

func TestSignPayParamsVectorA(t *testing.T) {
	for _, tt := range []struct {
		st   wxpay.SignType
		sign string
	}{{wxpay.SignTypeMD5, vectorASign}, {"", vectorASign}, {wxpay.SignTypeHMACSHA256, vectorA2Sign}} {
		p, err := SignPayParams(vectorAAppID, vectorAKey, tt.st, vectorAPrepayID, vectorATimeStamp, vectorANonce)
		if err != nil {
			t.Fatal(err)
		}
		if p.PaySign != tt.sign {
			t.Errorf("%s: paySign %s, want %s", tt.st, p.PaySign, tt.sign)
		}
		st := tt.st
		if st == "" {
			st = wxpay.SignTypeMD5
		}
		want := "appId=wxd678efh567hg6787&nonceStr=5K8264ILTKCH16CQ2502SI8ZNMTM67VS&package=prepay_id=wx2017033010242291fcfe0db70013231072&signType=" +
			string(st) + "&timeStamp=1490840662&key=REDACTED"
		if got := p.CanonicalString(); got != want {
			t.Errorf("canonical string\n got %s\nwant %s", got, want)
		}
	}
}

// The JSON is what wx.requestPayment takes, names and all.
func TestPayParamsJSON(t *testing.T) {
	p, err := SignPayParams(vectorAAppID, vectorAKey, wxpay.SignTypeMD5, vectorAPrepayID, vectorATimeStamp, vectorANonce)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"appId":"wxd678efh567hg6787","timeStamp":"1490840662","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"MD5","paySign":"22D9B4E54AB1950F51E0649E8810ACD6"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// Client.PayParams with a fixed clock and nonce gives vector A and A′.
func TestClientPayParamsVectorA(t *testing.T) {
	for _, tt := range []struct {
		st   wxpay.SignType
		sign string
	}{{wxpay.SignTypeMD5, vectorASign}, {wxpay.SignTypeHMACSHA256, vectorA2Sign}} {
		cfg := Config{AppID: vectorAAppID, MchID: testMchID, APIKey: vectorAKey, SignType: tt.st}
		c, err := NewClient(cfg, WithClock(func() time.Time { return time.Unix(1490840662, 0) }),
			WithNonce(func() string { return vectorANonce }))
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.PayParams(vectorAPrepayID)
		if err != nil {
			t.Fatal(err)
		}
		if p.PaySign != tt.sign || p.TimeStamp != vectorATimeStamp || p.NonceStr != vectorANonce || p.SignType != string(tt.st) ||
			p.Package != "prepay_id="+vectorAPrepayID || p.AppID != vectorAAppID {
			t.Errorf("%+v", p)
		}
		if ok, d := VerifyPayParams(p, vectorAKey); !ok {
			t.Errorf("%s does not verify: %v", tt.st, d)
		}
	}
}

// Two calls get two nonces by default.
func TestClientPayParamsFreshNonce(t *testing.T) {
	c, err := NewClient(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.PayParams(testPrepayID)
	b, _ := c.PayParams(testPrepayID)
	if a.NonceStr == b.NonceStr || len(a.NonceStr) != 32 || len(a.TimeStamp) != 10 {
		t.Errorf("%+v %+v", a, b)
	}
}

func TestVerifyPayParamsRefuses(t *testing.T) {
	good := func() *PayParams {
		p, err := SignPayParams(vectorAAppID, vectorAKey, wxpay.SignTypeMD5, vectorAPrepayID, vectorATimeStamp, vectorANonce)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		edit func(*PayParams)
		key  wxpay.Secret
		hint string // a word the diagnosis must hold
	}{
		{"appId dropped", func(p *PayParams) { p.AppID = "" }, vectorAKey, "appId"},
		{"package tampered", func(p *PayParams) { p.Package = "prepay_id=wx0000" }, vectorAKey, "compare the signed string"},
		{"timestamp tampered", func(p *PayParams) { p.TimeStamp = "1490840663" }, vectorAKey, "compare the signed string"},
		{"lower-case paySign", func(p *PayParams) { p.PaySign = strings.ToLower(p.PaySign) }, vectorAKey, "lower case"},
		{"signType says HMAC-SHA256", func(p *PayParams) { p.SignType = "HMAC-SHA256" }, vectorAKey, "MD5"},
		{"unknown signType", func(p *PayParams) { p.SignType = "RSA" }, vectorAKey, ""},
		{"another key", func(p *PayParams) {}, otherKey, ""},
		{"empty paySign", func(p *PayParams) { p.PaySign = "" }, vectorAKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.edit(p)
			ok, d := VerifyPayParams(p, tt.key)
			if ok {
				t.Fatal("accepted")
			}
			if d == nil {
				t.Fatal("no diagnosis")
			}
			s := d.String()
			if tt.hint != "" && !strings.Contains(strings.Join(d.Hints, "\n"), tt.hint) {
				t.Errorf("hints do not mention %q:\n%s", tt.hint, s)
			}
			if strings.Contains(s, vectorAKey) || strings.Contains(s, otherKey) {
				t.Fatalf("a key is in the diagnosis:\n%s", s)
			}
		})
	}
}

func TestSignPayParamsInvalid(t *testing.T) {
	for name, args := range map[string][4]string{
		"no app id":    {"", vectorAPrepayID, vectorATimeStamp, vectorANonce},
		"no prepay id": {vectorAAppID, "", vectorATimeStamp, vectorANonce},
		"no timestamp": {vectorAAppID, vectorAPrepayID, "", vectorANonce},
		"no nonce":     {vectorAAppID, vectorAPrepayID, vectorATimeStamp, ""},
	} {
		if _, err := SignPayParams(args[0], vectorAKey, wxpay.SignTypeMD5, args[1], args[2], args[3]); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SignPayParams(vectorAAppID, vectorAKey, "SHA1", vectorAPrepayID, vectorATimeStamp, vectorANonce); !errors.Is(err, wxcrypto.ErrSignType) {
		t.Errorf("sign type SHA1: %v", err)
	}
}

// NativeURL (protocol.md §9, mode 1) is signed with MD5 whatever the
// client's sign type.
func TestNativeURL(t *testing.T) {
	cfg := testConfig()
	cfg.SignType = wxpay.SignTypeHMACSHA256
	c, err := NewClient(cfg, WithNonce(fixedNonce), WithClock(func() time.Time { return time.Unix(1490840662, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.NativeURL("P-42 咖啡&x=y")
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(s, "weixin://wxpay/bizpayurl?")
	if !ok {
		t.Fatalf("%s", s)
	}
	q, err := url.ParseQuery(rest)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for k, v := range q {
		if len(v) != 1 {
			t.Fatalf("%s repeated", k)
		}
		m[k] = v[0]
	}
	checkFields(t, m, map[string]string{"appid": testAppID, "mch_id": testMchID, "nonce_str": testNonce,
		"product_id": "P-42 咖啡&x=y", "time_stamp": "1490840662"})
	if m["sign"] != refSign(wxpay.SignTypeMD5, testKey, m) {
		t.Errorf("sign %s does not verify with MD5", m["sign"])
	}
	for _, bad := range []string{"", strings.Repeat("p", 33)} {
		if _, err := c.NativeURL(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("product %q: %v", bad, err)
		}
	}
}

// nativeCallback is WeChat's mode 1 callback for a scan of product P-42.
func nativeCallback() map[string]string {
	return map[string]string{"appid": testAppID, "mch_id": testMchID, "openid": testOpenID, "is_subscribe": "N",
		"nonce_str": "wxcallbacknonce", "product_id": "P-42"}
}

func TestParseNativeCallback(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeHMACSHA256) // the callback is MD5 regardless
	cb, err := c.ParseNativeCallback(signedXML(t, wxpay.SignTypeMD5, testKey, nativeCallback()))
	if err != nil {
		t.Fatal(err)
	}
	if cb.ProductID != "P-42" || cb.OpenID != testOpenID || cb.AppID != testAppID || cb.MchID != testMchID ||
		cb.IsSubscribe != "N" || cb.NonceStr != "wxcallbacknonce" || lookup(cb.Fields, "sign") == "" {
		t.Errorf("%+v", cb)
	}

	tests := []struct {
		name   string
		body   []byte
		reason NotifyReason
	}{
		{"unsigned", unsignedXML(t, nativeCallback()), ReasonSignature},
		{"another key", signedXML(t, wxpay.SignTypeMD5, otherKey, nativeCallback()), ReasonSignature},
		{"HMAC-SHA256", signedXML(t, wxpay.SignTypeHMACSHA256, testKey, nativeCallback()), ReasonSignature},
		{"another merchant", signedXML(t, wxpay.SignTypeMD5, testKey, func() map[string]string {
			m := nativeCallback()
			m["mch_id"] = "1900000109"
			return m
		}()), ReasonMerchant},
		{"another app", signedXML(t, wxpay.SignTypeMD5, testKey, func() map[string]string {
			m := nativeCallback()
			m["appid"] = "wx0000000000000000"
			return m
		}()), ReasonMerchant},
		{"no product", signedXML(t, wxpay.SignTypeMD5, testKey, func() map[string]string {
			m := nativeCallback()
			delete(m, "product_id")
			return m
		}()), ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ParseNativeCallback(tt.body)
			var ne *NotifyError
			if !errors.As(err, &ne) || ne.Reason != tt.reason {
				t.Fatalf("error %v, want reason %s", err, tt.reason)
			}
			if tt.reason == ReasonSignature && !errors.Is(err, ErrNotifySignature) {
				t.Errorf("%v is not ErrNotifySignature", err)
			}
		})
	}
	if _, err := c.ParseNativeCallback([]byte(`<!DOCTYPE x><xml/>`)); !errors.Is(err, ErrXMLDoctype) {
		t.Errorf("DOCTYPE: %v", err)
	}
}

func TestNativeCallbackReply(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeHMACSHA256)
	c.nonce = fixedNonce
	for _, tt := range []struct {
		prepay, desc string
		want         map[string]string
	}{
		{testPrepayID, "", map[string]string{"return_code": "SUCCESS", "appid": testAppID, "mch_id": testMchID, "nonce_str": testNonce,
			"prepay_id": testPrepayID, "result_code": "SUCCESS"}},
		{"", "商品已售完", map[string]string{"return_code": "SUCCESS", "appid": testAppID, "mch_id": testMchID, "nonce_str": testNonce,
			"result_code": "FAIL", "err_code_des": "商品已售完"}},
		{"", "", map[string]string{"return_code": "SUCCESS", "appid": testAppID, "mch_id": testMchID, "nonce_str": testNonce,
			"result_code": "FAIL", "err_code_des": "下单失败"}},
	} {
		b, err := c.NativeCallbackReply(tt.prepay, tt.desc)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		m := fieldMap(t, f)
		checkFields(t, m, tt.want)
		if m["sign"] != refSign(wxpay.SignTypeMD5, testKey, m) {
			t.Errorf("reply sign does not verify with MD5: %s", b)
		}
	}
}
