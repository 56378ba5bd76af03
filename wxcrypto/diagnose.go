package wxcrypto

import (
	"fmt"
	"strings"

	"github.com/wxpay-go/wxpay"
)

// Diagnosis explains a v2 signature that did not verify, or a request that
// WeChat answered with SIGNERROR. It never contains a key: the canonical
// string has the key redacted, and keys appear only as length and
// fingerprint.
type Diagnosis struct {
	SignType       wxpay.SignType // the algorithm that was used
	Canonical      string         // the signed string, key REDACTED
	KeyLength      int            // length of the key used; WeChat's API key has 32 characters
	KeyFingerprint string         // see KeyFingerprint
	Given          string         // the signature that was received, if any
	Expected       string         // the signature computed with the configured key and type
	Hints          []string       // the likely mix-ups, most likely first
}

// DiagnoseOptions are the facts Diagnose can test the signature against.
type DiagnoseOptions struct {
	Key      string         // the API key the merchant configured
	SignType wxpay.SignType // the algorithm the merchant configured
	// OtherSecrets are secrets commonly mistaken for the API key, by name
	// ("AppSecret", "APIv3 key"); Diagnose checks whether the signature was
	// made with one of them. Their values never appear in the Diagnosis.
	OtherSecrets map[string]string
}

// String formats the diagnosis on several lines for a person to read.
func (d *Diagnosis) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sign type: %s\n", d.SignType)
	fmt.Fprintf(&b, "signed string: %s\n", d.Canonical)
	fmt.Fprintf(&b, "key: %d characters, fingerprint %s\n", d.KeyLength, d.KeyFingerprint)
	if d.Given != "" {
		fmt.Fprintf(&b, "received sign: %s\n", d.Given)
	}
	if d.Expected != "" {
		fmt.Fprintf(&b, "expected sign: %s\n", d.Expected)
	}
	for _, h := range d.Hints {
		fmt.Fprintf(&b, "hint: %s\n", h)
	}
	return b.String()
}

// Diagnose examines fields (sorted by name) and the signature that came
// with them (given may be empty, for example when WeChat answered
// SIGNERROR to a request we signed), and names the usual mix-ups: a key of
// the wrong length, the AppSecret or APIv3 key used as the API key, MD5
// against HMAC-SHA256, a sign_type field that disagrees with the algorithm,
// appId missing from a paySign, a lower-case signature.
func Diagnose(fields []Field, given string, o DiagnoseOptions) *Diagnosis {
	t := o.SignType
	if t == "" {
		t = wxpay.SignTypeMD5
	}
	d := &Diagnosis{
		SignType:       t,
		Canonical:      CanonicalString(fields),
		KeyLength:      len(o.Key),
		KeyFingerprint: KeyFingerprint(o.Key),
		Given:          given,
	}
	d.Expected, _ = Sign(t, o.Key, fields)
	hint := func(format string, args ...any) { d.Hints = append(d.Hints, fmt.Sprintf(format, args...)) }

	if len(o.Key) != 32 {
		hint("the API key has %d characters; WeChat Pay's v2 API key (商户平台 → 账户中心 → API安全 → API密钥) has exactly 32", len(o.Key))
	}
	for name, secret := range o.OtherSecrets {
		if secret != "" && secret == o.Key {
			hint("the configured API key is the %s; use the API key (API密钥) from the merchant platform instead", name)
		}
	}
	other := wxpay.SignTypeHMACSHA256
	if t == wxpay.SignTypeHMACSHA256 {
		other = wxpay.SignTypeMD5
	}
	for _, f := range fields {
		if f.Name == "sign_type" && f.Value != "" && wxpay.SignType(f.Value) != t {
			hint("the message says sign_type=%s but the signature was computed with %s; they must agree", f.Value, t)
		}
	}
	if given != "" {
		switch {
		case given == d.Expected:
			hint("the signature is correct with the configured key and type")
		case strings.ToUpper(given) == d.Expected:
			hint("the signature is right but in lower case; WeChat signatures are upper-case hex")
		case Verify(other, o.Key, fields, given):
			hint("the signature was made with %s, not %s: the sign type is mixed up", other, t)
		default:
			if len(given) == 32 && t == wxpay.SignTypeHMACSHA256 || len(given) == 64 && t == wxpay.SignTypeMD5 {
				hint("the signature's length (%d) fits %s, not %s", len(given), other, t)
			}
			for name, secret := range o.OtherSecrets {
				if secret == "" {
					continue
				}
				if Verify(t, secret, fields, given) || Verify(other, secret, fields, given) {
					hint("the signature was made with the %s as the key; the API key (API密钥) must be used", name)
				}
			}
			if hasPaySignFields(fields) && !hasField(fields, "appId") {
				hint("appId is missing from the signed string: a mini-program paySign signs appId too, even though appId is not passed to wx.requestPayment")
			}
			if hasPaySignFields(fields) && hasField(fields, "appid") {
				hint("the paySign field names are camel-case: appId, timeStamp, nonceStr, package, signType")
			}
			if len(d.Hints) == 0 {
				hint("the fields, their values or the key differ from what the other side signed; compare the signed string field by field")
			}
		}
	}
	return d
}

func hasField(fields []Field, name string) bool {
	for _, f := range fields {
		if f.Name == name && f.Value != "" {
			return true
		}
	}
	return false
}

func hasPaySignFields(fields []Field) bool {
	return hasField(fields, "package") && (hasField(fields, "timeStamp") || hasField(fields, "nonceStr"))
}
