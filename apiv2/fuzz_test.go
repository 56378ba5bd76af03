package apiv2

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Seeds: realistic messages, and the attacks of reliability.md Part 2.
func xmlSeeds(f *testing.F) {
	f.Helper()
	for _, s := range []string{
		`<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg><appid><![CDATA[wx2421b1c4370ec43b]]></appid><mch_id><![CDATA[10000100]]></mch_id><nonce_str><![CDATA[IITRi8Iabbblz1Jc]]></nonce_str><sign><![CDATA[7921E432F65EB8ED0CE9755F0E86D72F]]></sign><result_code><![CDATA[SUCCESS]]></result_code><prepay_id><![CDATA[wx201411101639507cbf6ffd8b0779950874]]></prepay_id><trade_type><![CDATA[JSAPI]]></trade_type></xml>`,
		`<xml><appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><device_info>1000</device_info><body>test</body><nonce_str>ibuaiVcKdpRxkhJA</nonce_str><sign>9A0A8659F005D6984697E2CA0A9CF3B7</sign></xml>`,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <a>1&amp;2&#20013;</a>\n  <b/>\n  <c><![CDATA[x]]]]><![CDATA[>y]]></c>\n</xml>\n",
		"\uFEFF<xml><a>1<![CDATA[2]]>3</a></xml>",
		`<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg><error_code>20002</error_code></xml>`,
		vectorC2Plain,
		`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`,
		billionLaughs,
		`<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>`,
		`<xml><a>1</a></xml><xml><a>2</a></xml>`,
		"<xml>" + strings.Repeat("<a>", 100) + "</xml>",
		"<xml><a x=\"1\">1</a><!-- c --><?pi?></xml>",
		"\xff\xfe<\x00x\x00m\x00l\x00>\x00",
		`<?xml version="1.0" encoding="GBK"?><xml/>`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseMessage: never a panic; whatever parses is a set of distinct
// fields that survives EncodeMessage and a second parse unchanged (empty
// values, which EncodeMessage leaves out, aside).
func FuzzParseMessage(f *testing.F) {
	xmlSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := ParseMessage(data)
		if err != nil {
			var xe *XMLError
			if !errors.As(err, &xe) || xe.Err == nil {
				t.Fatalf("error %v (%T) is not an *XMLError", err, err)
			}
			return
		}
		if !wxcrypto.Sorted(fields) {
			t.Fatalf("not sorted: %v", fields)
		}
		var nonEmpty []wxcrypto.Field
		for i, x := range fields {
			if i > 0 && fields[i-1].Name == x.Name {
				t.Fatalf("duplicate %s accepted", x.Name)
			}
			if x.Value != "" {
				nonEmpty = append(nonEmpty, x)
			}
		}
		enc, err := EncodeMessage(fields)
		if err != nil {
			t.Fatalf("EncodeMessage of parsed fields: %v", err)
		}
		again, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, enc)
		}
		if len(again) != len(nonEmpty) {
			t.Fatalf("re-parse gave %d fields, want %d\n%q", len(again), len(nonEmpty), enc)
		}
		for i := range again {
			if again[i] != nonEmpty[i] {
				t.Fatalf("field %d: %q, want %q", i, again[i], nonEmpty[i])
			}
		}
	})
}

// FuzzParsePayNotify: never a panic, every refusal a *NotifyError, and
// nothing verifies unless it signs exactly what a genuine seed signed (the
// same canonical string: only the XML around it may differ).
func FuzzParsePayNotify(f *testing.F) {
	md5c := notifyClient(f, wxpay.SignTypeMD5)
	hmacc := notifyClient(f, wxpay.SignTypeHMACSHA256)
	genuine := map[string]bool{}
	add := func(st wxpay.SignType, m map[string]string) {
		b := signedXML(f, st, testKey, m)
		genuine[wxcrypto.CanonicalString(wxcrypto.FieldsFromMap(m))] = true
		f.Add(b)
	}
	add(wxpay.SignTypeMD5, payNotify())
	m := payNotify()
	m["sign_type"] = "HMAC-SHA256"
	add(wxpay.SignTypeHMACSHA256, m)
	m = payNotify()
	m["result_code"], m["err_code"] = "FAIL", "NOTENOUGH"
	add(wxpay.SignTypeMD5, m)
	f.Add(signedXML(f, wxpay.SignTypeMD5, otherKey, payNotify()))
	f.Add(unsignedXML(f, payNotify()))
	f.Add([]byte(`<xml><return_code>FAIL</return_code></xml>`))
	xmlSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []*Client{md5c, hmacc} {
			n, err := c.ParsePayNotify(body)
			if err != nil {
				var ne *NotifyError
				if !errors.As(err, &ne) || ne.Reason == "" {
					t.Fatalf("error %v (%T) is not a *NotifyError", err, err)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Fatal("the key is in the error")
				}
				continue
			}
			if !genuine[wxcrypto.CanonicalString(n.Fields)] {
				t.Fatalf("a forged notify verified:\n%q", body)
			}
		}
	})
}

// FuzzParseRefundNotify: never a panic (bad base64, lengths, padding,
// spliced blocks, inner XML), every refusal a *NotifyError, and what is
// accepted is a complete, final refund.
func FuzzParseRefundNotify(f *testing.F) {
	c := vectorCClient(f)
	f.Add(refundNotify(f, vectorC2, nil), []byte(nil))
	f.Add(refundNotify(f, vectorC1, nil), []byte("<root><refund_status>SUCCESS</refund_status></root>"))
	f.Add(refundNotify(f, "", nil), []byte(vectorC2Plain))
	f.Add([]byte(`<xml><return_code>FAIL</return_code></xml>`), []byte(`<root><a><b/></a></root>`))
	f.Fuzz(func(t *testing.T, body, inner []byte) {
		// body as it comes, and a genuine encryption of inner: the fuzzer
		// reaches the inner parser without breaking AES.
		for _, b := range [][]byte{body, refundNotify(t, wxcrypto.EncryptReqInfo(vectorCKey, inner), nil)} {
			n, err := c.ParseRefundNotify(b)
			if err != nil {
				var ne *NotifyError
				if !errors.As(err, &ne) || ne.Reason == "" {
					t.Fatalf("error %v (%T) is not a *NotifyError", err, err)
				}
				continue
			}
			if n.OutRefundNo == "" || n.OutTradeNo == "" || n.RefundFee <= 0 || !n.Status.Final() || n.MchID != testMchID {
				t.Fatalf("accepted an incomplete refund notify: %+v", n)
			}
		}
	})
}

// FuzzSignVerifyRoundTrip: any request the encoder builds parses back to
// the values it was given, and its signature verifies (reliability.md A7,
// F4) with both sign types.
func FuzzSignVerifyRoundTrip(f *testing.F) {
	f.Add("attach", "桌号=7&备注=<少冰>", "腾讯充值中心-QQ会员充值", int64(1999), int64(1490840662), false)
	f.Add("detail", `{"goods_detail":[]}`, "]]>", int64(0), int64(-1), true)
	f.Add("x", "", " ", int64(-5), int64(253402300799), true)
	f.Add("sign_type", "MD5", "a&key=b", int64(1), int64(0), false)
	f.Fuzz(func(t *testing.T, name, value, body string, fee, unix int64, hmac bool) {
		st := wxpay.SignTypeMD5
		if hmac {
			st = wxpay.SignTypeHMACSHA256
		}
		e := getEncoder()
		defer putEncoder(e)
		c := &Client{cfg: testConfig(), nonce: fixedNonce}
		c.base2(e, epUnifiedOrder, st)
		e.str("body", body)
		e.num("total_fee", fee)
		e.time("time_start", time.Unix(unix, 0))
		e.extra(map[string]string{name: value})
		if e.err != nil {
			if !errors.Is(e.err, ErrInvalidArgument) {
				t.Fatalf("error %v", e.err)
			}
			return
		}
		want := e.fields()
		b, err := e.encode(st, testKey)
		if err != nil {
			if errors.Is(err, ErrInvalidArgument) && !(utf8.ValidString(value) && utf8.ValidString(body)) {
				return // not UTF-8: WeChat would refuse it (NOT_UTF8)
			}
			t.Fatal(err)
		}
		got, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("the encoder wrote what the parser refuses: %v\n%q", err, b)
		}
		sign := lookup(got, "sign")
		if !wxcrypto.Verify(st, testKey, got, sign) {
			t.Fatalf("signature does not verify:\n%q", b)
		}
		var signed []wxcrypto.Field
		for _, x := range got {
			if x.Name != "sign" {
				signed = append(signed, x)
			}
		}
		if len(signed) != len(want) {
			t.Fatalf("%d fields back, sent %d:\n%q", len(signed), len(want), b)
		}
		for i := range want {
			if signed[i] != want[i] {
				t.Fatalf("field %q came back as %q", want[i], signed[i])
			}
		}
		if !bytes.HasPrefix(b, []byte("<xml>")) {
			t.Fatalf("%q", b)
		}
	})
}
