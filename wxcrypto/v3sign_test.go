package wxcrypto_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

func mustKey(t testing.TB, pemText string) *rsa.PrivateKey {
	t.Helper()
	k, err := wxcrypto.ParsePrivateKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	vecNonce = "593BEC0C930BF1AFEB40B4A08C8FB242"
	vecTS    = 1554208460
	vecBody  = `{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`
)

// Pinned RSA vectors (protocol.md §13.1, §13.2, §13.5) over the test keys,
// each cross-checked with `printf '<message>' | openssl dgst -sha256 -sign
// <key> | base64 -w0`.
var requestVectors = []struct {
	name, method, url, body, want string
}{
	{
		name: "GET certificates", method: "GET", url: "/v3/certificates",
		want: "CteEN7hSrItbbsG5TP5oF9bFz9Nx7hxxYSAcR9irq6enPQs7u9mGb1yjBu1814m+39vY5ZhQJ1h3pXN/XOAs1M40wtMwkRou3IPnXJAGHee/bW7z5J3wfdO5ltFpIqnmRu3oe4vbX5FBm6aSBOx2sElq9VpdJUSPY0UQ7ecehgbPnE0X3DEzekTPjQEzY/eJw4sPoT+79+v5PzDWYogkHVJqbRLUiuZpiIA1wA0pHsw8CqDLwKHflZwnZVCpUCXk1GQo7chP2ncY4k1ne0ac52C41rxPAbwOE8uw07B2T0VfWQVV/oJR/EvGJk/fR1PkXHG0kLpHa9NJuWQMRLUgfA==",
	},
	{
		name: "POST jsapi", method: "POST", url: "/v3/pay/transactions/jsapi", body: vecBody,
		want: "GAipBRb5P58+bdUzf2t3965QkOC+N/8q+o85pUapfBptK7H44Vf5SIK9klvYNWPv9MN4xV2oyRA1AA4P+NVs6pLeRr/v8DqwJfmVVuCgBx1hqYBZGP5sM86IN33dVFKevTWXcZ7u9MUDHMbkexGzapUfWNZi+X0amsToDKvvH0WZSXor1iOEvT3vTrK/H6JaB/g9gSaLlucqMwlWNSxYgB7N3YwPdHk0Xkro9vuxMlO+9N+d7bmo1pML6EqQJVMQMLpP7bhEDNtvPRZVY5RHIhlF/0oEiUvvS6Iujr4U4XzdNdDa7mBqhGoFogpEbLc9UKe/3eh3qCXgLCvZ56eiFA==",
	},
}

const (
	respTS    = "1554209980"
	respNonce = "c5ac7061fccab6bf3e254dcf98995b8c"
	respBody  = `{"prepay_id":"wx201410272009395522657a690389285100"}`
	respSig   = "b8cuSmEoFUOGkb9N4nXmdyJUCTP6XESxfwqca53CVI+SeYewhTlIFoHd2NdLW+NfGoVyn6EXOFeFQTqqoiyoTLNCLlakT6Ahn7fIeewTozdYQDWcefLEY++OJyPv1lYiPT1DxQJ8wCrCjVRFnvXrHx1o7Dhwk1cYAI0tAgIQCrSJelzv0rtvtHm45vLil9PfWN/DGT2THE1UL6enjfrO7f91wTB6dkclhSn9m+lPG84ZPiQnueJpT71NLPEdY2AGKN2stJiJo2hwpf/5o0yHz9g/K5neRPLsxlj3tnO0jZpzfHy8183zMeC1D+h14OWkE3TIf9fwtQexSnGBF7INrw=="
	paySign   = "cCEl9aiVcsImSFDVW4AtFsLCWmoGZiXpmecKcQ6ehnZdFd6YTQGte4UvMwgiCd0mppeRQK+dPXrqYfAPeM6erDaay+Ew2p+9wdmfvYiGHUuRsqgkboXKt9NRkuZ6jJmiZ98QrRr2gheI9aTkIOjYeBK/0DAEG3GWwTqU+e6V/0eVZ0ZWnAFpxBdhsmAcIv2c60d7p2j+GzaaCIWLfk8bShNnNiLJziL/2LyUI4yq9hD8IWlhUEZEoWnHz4ho/C8/XC1EXwfGynTY+tdrBDKfmrkScBr8BoV3i87Jx4Ao1TsIW6HxKo1bvhDV1Z+tel7LTQFaVxZsXqog5wRqPLzhiA=="
)

func TestSignV3Vectors(t *testing.T) {
	for _, pemText := range []string{merchantKeyPEM, merchantKeyPKCS1PEM} {
		key := mustKey(t, pemText)
		for _, v := range requestVectors {
			got, err := wxcrypto.SignV3(key, v.method, v.url, vecTS, vecNonce, []byte(v.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Errorf("%s: SignV3 = %s\nwant %s", v.name, got, v.want)
			}
			if err := wxcrypto.VerifyV3Request(&key.PublicKey, v.method, v.url, vecTS, vecNonce, []byte(v.body), got); err != nil {
				t.Errorf("%s: VerifyV3Request: %v", v.name, err)
			}
			if err := wxcrypto.VerifyV3Request(&key.PublicKey, v.method, v.url+"?x=1", vecTS, vecNonce, []byte(v.body), got); !errors.Is(err, wxcrypto.ErrV3Signature) {
				t.Errorf("%s: another URL verifies: %v", v.name, err)
			}
		}
	}
}

func TestV3Messages(t *testing.T) {
	got := wxcrypto.V3RequestMessage("GET", "/v3/certificates", vecTS, vecNonce, nil)
	if want := "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"; got != want {
		t.Errorf("request message %q, want %q", got, want)
	}
	got = wxcrypto.V3ResponseMessage(respTS, respNonce, []byte(respBody))
	if want := respTS + "\n" + respNonce + "\n" + respBody + "\n"; got != want {
		t.Errorf("response message %q, want %q", got, want)
	}
}

// The stdlib, without wxcrypto, over the documented message: the pinned
// vector is what PKCS#1 v1.5 SHA-256 gives.
func TestSignV3MatchesStdlib(t *testing.T) {
	key := mustKey(t, merchantKeyPEM)
	msg := "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(sig); got != requestVectors[0].want {
		t.Errorf("stdlib %s, pinned %s", got, requestVectors[0].want)
	}
}

func TestVerifyV3Vector(t *testing.T) {
	platform := mustKey(t, platformKeyPEM)
	pub := &platform.PublicKey
	if err := wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(respBody), respSig); err != nil {
		t.Fatalf("pinned response does not verify: %v", err)
	}
	got, err := wxcrypto.SignV3Response(platform, respTS, respNonce, []byte(respBody))
	if err != nil || got != respSig {
		t.Errorf("SignV3Response = %s, %v; want the pinned %s", got, err, respSig)
	}
	// The merchant key is not the platform key.
	merchant := mustKey(t, merchantKeyPEM)
	if err := wxcrypto.VerifyV3(&merchant.PublicKey, respTS, respNonce, []byte(respBody), respSig); !errors.Is(err, wxcrypto.ErrV3Signature) {
		t.Errorf("another key: %v", err)
	}
}

func flipBit(s string, bit int) string {
	b := []byte(s)
	b[bit/8%len(b)] ^= 1 << (bit % 8)
	return string(b)
}

// reliability.md F1: a 1-bit flip anywhere, a CRLF added, an empty part.
func TestVerifyV3Tampering(t *testing.T) {
	pub := &mustKey(t, platformKeyPEM).PublicKey
	sigBytes, _ := base64.StdEncoding.DecodeString(respSig)
	for bit := 0; bit < 8*len(respBody); bit += 7 {
		if wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(flipBit(respBody, bit)), respSig) == nil {
			t.Fatalf("body bit %d flipped verifies", bit)
		}
	}
	for bit := 0; bit < 8*len(respTS); bit++ {
		if wxcrypto.VerifyV3(pub, flipBit(respTS, bit), respNonce, []byte(respBody), respSig) == nil {
			t.Fatalf("timestamp bit %d flipped verifies", bit)
		}
	}
	for bit := 0; bit < 8*len(respNonce); bit++ {
		if wxcrypto.VerifyV3(pub, respTS, flipBit(respNonce, bit), []byte(respBody), respSig) == nil {
			t.Fatalf("nonce bit %d flipped verifies", bit)
		}
	}
	for bit := 0; bit < 8*len(sigBytes); bit += 3 {
		s := base64.StdEncoding.EncodeToString([]byte(flipBit(string(sigBytes), bit)))
		if wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(respBody), s) == nil {
			t.Fatalf("signature bit %d flipped verifies", bit)
		}
	}
	for name, body := range map[string]string{
		"CRLF appended":   respBody + "\r\n",
		"LF appended":     respBody + "\n",
		"re-serialised":   `{"prepay_id": "wx201410272009395522657a690389285100"}`,
		"empty":           "",
		"CRLF in between": strings.Replace(respBody, ":", ":\r\n", 1),
	} {
		if wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(body), respSig) == nil {
			t.Errorf("%s: verifies", name)
		}
	}
	if wxcrypto.VerifyV3(pub, "", respNonce, []byte(respBody), respSig) == nil ||
		wxcrypto.VerifyV3(pub, respTS, "", []byte(respBody), respSig) == nil {
		t.Error("an empty timestamp or nonce verifies")
	}
}

// reliability.md C3: one rule, standard padded base64, nothing else.
func TestVerifyV3SignatureEncoding(t *testing.T) {
	pub := &mustKey(t, platformKeyPEM).PublicKey
	urlSafe := strings.NewReplacer("+", "-", "/", "_").Replace(respSig)
	for name, sig := range map[string]string{
		"empty":          "",
		"newline inside": respSig[:64] + "\n" + respSig[64:],
		"CRLF at end":    respSig + "\r\n",
		"space":          " " + respSig,
		"URL-safe":       urlSafe,
		"no padding":     strings.TrimRight(respSig, "="),
		"probe":          "WECHATPAY/SIGNTEST/" + respSig,
		"too long":       strings.Repeat("AAAA", 200),
	} {
		if sig == respSig {
			continue // the URL-safe form equals the standard one when no + or / occurs
		}
		err := wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(respBody), sig)
		if !errors.Is(err, wxcrypto.ErrV3SignatureEncoding) {
			t.Errorf("%s: %v, want ErrV3SignatureEncoding", name, err)
		}
	}
	// Valid base64 of the wrong length is a signature failure.
	if err := wxcrypto.VerifyV3(pub, respTS, respNonce, []byte(respBody), "AAAA"); !errors.Is(err, wxcrypto.ErrV3Signature) {
		t.Errorf("short signature: %v", err)
	}
	if err := wxcrypto.VerifyV3(nil, respTS, respNonce, []byte(respBody), respSig); !errors.Is(err, wxcrypto.ErrNilKey) {
		t.Errorf("nil key: %v", err)
	}
	if _, err := wxcrypto.SignV3(nil, "GET", "/", 1, "n", nil); !errors.Is(err, wxcrypto.ErrNilKey) {
		t.Errorf("nil signing key: %v", err)
	}
}

func TestMiniProgramPaySignV3(t *testing.T) {
	key := mustKey(t, merchantKeyPEM)
	got, err := wxcrypto.MiniProgramPaySignV3(key, "wxd678efh567hg6787", "1490840662", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "wx2017033010242291fcfe0db70013231072")
	if err != nil {
		t.Fatal(err)
	}
	if got != paySign {
		t.Errorf("paySign = %s\nwant %s", got, paySign)
	}
	if err := wxcrypto.VerifyMiniProgramPaySignV3(&key.PublicKey, "wxd678efh567hg6787", "1490840662", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "wx2017033010242291fcfe0db70013231072", got); err != nil {
		t.Error(err)
	}
	if err := wxcrypto.VerifyMiniProgramPaySignV3(&key.PublicKey, "wxd678efh567hg6787", "1490840663", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "wx2017033010242291fcfe0db70013231072", got); err == nil {
		t.Error("another timeStamp verifies")
	}
}

func TestAuthorizationV3(t *testing.T) {
	a := &wxcrypto.AuthorizationV3{MchID: "1900009191", SerialNo: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
		Nonce: vecNonce, Timestamp: vecTS, Signature: requestVectors[0].want}
	h := a.String()
	want := `WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",signature="` + requestVectors[0].want + `"`
	if h != want {
		t.Fatalf("header\n%s\nwant\n%s", h, want)
	}
	got, err := wxcrypto.ParseAuthorizationV3(h)
	if err != nil || *got != *a {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// The order of the pairs is free (protocol.md §13.1).
	shuffled := `WECHATPAY2-SHA256-RSA2048 signature="` + a.Signature + `", serial_no="` + a.SerialNo + `",timestamp="1554208460",nonce_str="` + vecNonce + `",mchid="1900009191"`
	if got, err := wxcrypto.ParseAuthorizationV3(shuffled); err != nil || *got != *a {
		t.Errorf("shuffled: %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"scheme":       strings.Replace(h, "WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA", 1),
		"missing pair": strings.Replace(h, `mchid="1900009191",`, "", 1),
		"repeated":     h + `,mchid="1"`,
		"unknown":      h + `,x="1"`,
		"unquoted":     strings.Replace(h, `mchid="1900009191"`, `mchid=1900009191`, 1),
		"timestamp ms": strings.Replace(h, `1554208460`, `1554208460000`, 1),
		"empty":        "",
	} {
		if _, err := wxcrypto.ParseAuthorizationV3(bad); !errors.Is(err, wxcrypto.ErrAuthorizationV3) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// reliability.md C2.
func TestParseV3Timestamp(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1554208460": 1554208460, "9999999999": 9999999999} {
		if got, ok := wxcrypto.ParseV3Timestamp(s); !ok || got != want {
			t.Errorf("%q = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "-1", "+1554208460", "1e10", "1554208460000", " 1554208460", "1554208460 ", "0x5CA", "１２"} {
		if _, ok := wxcrypto.ParseV3Timestamp(s); ok {
			t.Errorf("%q accepted", s)
		}
	}
}
