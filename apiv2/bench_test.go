package apiv2

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// benchOrder is a 15-field unifiedorder once the base fields are added.
func benchOrder() *UnifiedOrderRequest {
	return &UnifiedOrderRequest{
		Body: "腾讯充值中心-QQ会员充值", OutTradeNo: "20150806125346", TotalFee: 88800, SpbillCreateIP: "123.12.12.123",
		TradeType: wxpay.TradeTypeJSAPI, OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", NotifyURL: "https://shop.example/wxpay/notify",
		Attach: "深圳分店", DeviceInfo: "WEB", GoodsTag: "WXG", TimeStart: time.Date(2026, 11, 29, 10, 0, 0, 0, wxpay.China),
		TimeExpire: time.Date(2026, 11, 29, 12, 0, 0, 0, wxpay.China),
	}
}

func benchFields(b *testing.B) []wxcrypto.Field {
	e := getEncoder()
	defer putEncoder(e)
	c := &Client{cfg: testConfig(), nonce: func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" }}
	c.base2(e, epUnifiedOrder, wxpay.SignTypeMD5)
	benchOrder().encode(e, "")
	f := e.fields()
	if len(f) != 15 {
		b.Fatalf("%d fields", len(f))
	}
	return f
}

func BenchmarkSignMD5(b *testing.B) {
	f := benchFields(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wxcrypto.Sign(wxpay.SignTypeMD5, testKey, f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignHMACSHA256(b *testing.B) {
	f := benchFields(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wxcrypto.Sign(wxpay.SignTypeHMACSHA256, testKey, f); err != nil {
			b.Fatal(err)
		}
	}
}

// The baselines: the standard library over the same canonical bytes.
func BenchmarkRawMD5(b *testing.B) {
	s := []byte(wxcrypto.CanonicalString(benchFields(b))[:0])
	s = append(s, []byte(canonicalWithKey(benchFields(b)))...)
	b.ReportAllocs()
	for b.Loop() {
		_ = md5.Sum(s)
	}
}

func BenchmarkRawHMACSHA256(b *testing.B) {
	s := []byte(canonicalWithKey(benchFields(b)))
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, []byte(testKey))
		m.Write(s)
		_ = m.Sum(nil)
	}
}

func canonicalWithKey(f []wxcrypto.Field) string {
	c := wxcrypto.CanonicalString(f)
	return c[:len(c)-len(wxcrypto.Redacted)] + testKey
}

func BenchmarkEncodeUnifiedOrder(b *testing.B) {
	c := &Client{cfg: testConfig(), nonce: func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" }}
	req := benchOrder()
	b.ReportAllocs()
	for b.Loop() {
		e := getEncoder()
		c.base2(e, epUnifiedOrder, wxpay.SignTypeMD5)
		req.encode(e, "")
		if _, err := e.encode(wxpay.SignTypeMD5, testKey); err != nil {
			b.Fatal(err)
		}
		putEncoder(e)
	}
}

// benchNotify is a 20-field pay notify, signed.
func benchNotify(b testing.TB) []byte {
	return signedXML(b, wxpay.SignTypeMD5, testKey, map[string]string{
		"appid": "wx426b3015555a46be", "attach": "支付测试", "bank_type": "CFT", "fee_type": "CNY", "is_subscribe": "Y",
		"mch_id": "1225312702", "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c", "openid": "oUpF8uMEb4qRXf22hE3X68TekukE",
		"out_trade_no": "1409811653", "result_code": "SUCCESS", "return_code": "SUCCESS", "return_msg": "OK",
		"time_end": "20140903131540", "total_fee": "1", "trade_type": "JSAPI", "transaction_id": "1004400740201409030005092168",
		"cash_fee": "1", "device_info": "WEB", "coupon_count": "0", // 19 + sign = 20
	})
}

func BenchmarkParsePayNotify(b *testing.B) {
	c, err := NewClient(testConfig())
	if err != nil {
		b.Fatal(err)
	}
	body := benchNotify(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ParsePayNotify(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPayParams(b *testing.B) {
	c, err := NewClient(testConfig(), WithNonce(func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" }))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PayParams("wx2017033010242291fcfe0db70013231072"); err != nil {
			b.Fatal(err)
		}
	}
}
