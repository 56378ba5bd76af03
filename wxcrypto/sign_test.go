package wxcrypto_test

import (
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Vectors of protocol.md §14.
var signVectors = []struct {
	name      string
	key       string
	t         wxpay.SignType
	fields    map[string]string
	canonical string
	want      string
}{
	{
		name: "A paySign MD5", key: "qazwsxedcrfvtgbyhnujmikolp111111", t: wxpay.SignTypeMD5,
		fields: map[string]string{"appId": "wxd678efh567hg6787", "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
			"package": "prepay_id=wx2017033010242291fcfe0db70013231072", "signType": "MD5", "timeStamp": "1490840662"},
		canonical: "appId=wxd678efh567hg6787&nonceStr=5K8264ILTKCH16CQ2502SI8ZNMTM67VS&package=prepay_id=wx2017033010242291fcfe0db70013231072&signType=MD5&timeStamp=1490840662&key=REDACTED",
		want:      "22D9B4E54AB1950F51E0649E8810ACD6",
	},
	{
		name: "A' paySign HMAC-SHA256", key: "qazwsxedcrfvtgbyhnujmikolp111111", t: wxpay.SignTypeHMACSHA256,
		fields: map[string]string{"appId": "wxd678efh567hg6787", "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
			"package": "prepay_id=wx2017033010242291fcfe0db70013231072", "signType": "HMAC-SHA256", "timeStamp": "1490840662"},
		want: "FB9D1EFB5C509131BBFF729F88A99CA2DE9B724D06D3B3262832A53083862BC0",
	},
	{
		name: "B official MD5", key: "192006250b4c09247ec02edce69f6a2d", t: wxpay.SignTypeMD5,
		fields: map[string]string{"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
			"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA", "empty": ""},
		canonical: "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=REDACTED",
		want:      "9A0A8659F005D6984697E2CA0A9CF3B7",
	},
	{
		name: "B official HMAC-SHA256", key: "192006250b4c09247ec02edce69f6a2d", t: wxpay.SignTypeHMACSHA256,
		fields: map[string]string{"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
			"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA", "sign": "IGNORED"},
		want: "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6",
	},
	{
		name: "B' sign_type is signed", key: "192006250b4c09247ec02edce69f6a2d", t: wxpay.SignTypeHMACSHA256,
		fields: map[string]string{"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
			"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA", "sign_type": "HMAC-SHA256"},
		canonical: "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&sign_type=HMAC-SHA256&key=REDACTED",
		want:      "2C9DF1156522C0B2B03B4DBF3BCA5CACB602CBD5CA0F9E112458CF3E9855303B",
	},
}

func TestSignVectors(t *testing.T) {
	for _, v := range signVectors {
		t.Run(v.name, func(t *testing.T) {
			fields := wxcrypto.FieldsFromMap(v.fields)
			got, err := wxcrypto.Sign(v.t, v.key, fields)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Fatalf("Sign = %s, want %s", got, v.want)
			}
			if v.canonical != "" {
				if c := wxcrypto.CanonicalString(fields); c != v.canonical {
					t.Fatalf("canonical = %q, want %q", c, v.canonical)
				}
			}
			if !wxcrypto.Verify(v.t, v.key, fields, v.want) {
				t.Fatal("Verify refused the vector")
			}
			if wxcrypto.Verify(v.t, v.key, fields, strings.ToLower(v.want)) {
				t.Fatal("Verify accepted a lower-case signature")
			}
			if wxcrypto.Verify(v.t, v.key+"x", fields, v.want) {
				t.Fatal("Verify accepted another key")
			}
			app, _ := wxcrypto.AppendSign([]byte("x"), v.t, v.key, fields)
			if string(app) != "x"+v.want {
				t.Fatalf("AppendSign = %s", app)
			}
		})
	}
}

func TestSignEdgeCases(t *testing.T) {
	key := "192006250b4c09247ec02edce69f6a2d"
	// Values with & and = are signed raw; UTF-8 is hashed as bytes.
	fields := []wxcrypto.Field{{"a", "x&y=z"}, {"b", "中文"}, {"sign", "S"}, {"z", ""}}
	if c := wxcrypto.CanonicalString(fields); c != "a=x&y=z&b=中文&key=REDACTED" {
		t.Fatalf("canonical = %q", c)
	}
	if _, err := wxcrypto.Sign("RSA", key, fields); err == nil {
		t.Fatal("RSA accepted as a v2 sign type")
	}
	if wxcrypto.Verify("SHA1", key, fields, "") {
		t.Fatal("unknown type verified")
	}
	// Upper-case names sort before lower-case ones; '_' between them.
	f := []wxcrypto.Field{{"b", "1"}, {"a_b", "1"}, {"B", "1"}, {"a", "1"}}
	wxcrypto.SortFields(f)
	if got := wxcrypto.CanonicalString(f); got != "B=1&a=1&a_b=1&b=1&key=REDACTED" {
		t.Fatalf("order: %s", got)
	}
	// An HMAC key longer than the block size is hashed first (RFC 2104).
	long := strings.Repeat("k", 100)
	if s, _ := wxcrypto.Sign(wxpay.SignTypeHMACSHA256, long, f); len(s) != 64 {
		t.Fatalf("long key: %q", s)
	}
}

func FuzzSignVerify(f *testing.F) {
	f.Add("appid", "wx1", "body", "test", "192006250b4c09247ec02edce69f6a2d")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, key string) {
		fields := []wxcrypto.Field{{k1, v1}, {k2, v2}}
		wxcrypto.SortFields(fields)
		for _, st := range []wxpay.SignType{wxpay.SignTypeMD5, wxpay.SignTypeHMACSHA256} {
			s, err := wxcrypto.Sign(st, key, fields)
			if err != nil {
				t.Fatal(err)
			}
			if !wxcrypto.Verify(st, key, fields, s) {
				t.Fatalf("verify(sign(m)) false for %q", fields)
			}
		}
	})
}

func TestAppendSignPrefix(t *testing.T) {
	for _, v := range signVectors {
		fields := wxcrypto.FieldsFromMap(v.fields)
		var prefix []byte
		for _, f := range fields {
			if f.Value != "" && f.Name != "sign" {
				prefix = append(prefix, f.Name+"="+f.Value+"&"...)
			}
		}
		got, err := wxcrypto.AppendSignPrefix(nil, v.t, v.key, prefix)
		if err != nil || string(got) != v.want {
			t.Errorf("%s: AppendSignPrefix = %s, %v; want %s", v.name, got, err, v.want)
		}
	}
}
