package wxcrypto_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Vector D of protocol.md §14.
const (
	vecDKey   wxpay.Secret = "WeChatPayApiV3KeyForTestOnly0032"
	vecDNonce              = "fdasflkja484"
	vecDAAD                = "transaction"
	vecD1CT                = "Wr3hvlwCTt1NP4CojS4YZDU7penN"
	vecD2PT                = `{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`
	vecD2CT                = "SfrgsVvyEVJl1/OwG+xLMMAoiAmH4s2aJCV0F/D5XKrg6632Rng8OsJfpUGNkU14eNwHGrWv9T8KWTkggRSwZ1RX8/bp8nfrNYCXoxJovont+m3z14qQQux9TDJfZGFXhd7JzzgDrwapy+sGQaYhv9kvVYN+/W5AC8G++UJ/+TedM/yvVAR+HDwBFqAp6+oypTIAsYtVvsWQ0O4F+ZuuZi0CJYXSGkD1UtDd2DKDaMTfA8Pnel9HJ5PhRiBPbRUHCwvzJjanu5qL3kxOxGvInZpPRGuVqGgO6rh97GLIceEAgJWwlF+MEJp8z/mVXobguV/N8y8q68mjNS5rHcXnXrCvcJLEQSCwaHrRZ+M37jSg2SuLM1ZXJLgtRC7L9X99FMWOnuSj76MXkqrcvqFI9R3HgZYtQoaPE06/1D14PMHvz1CteeQCfm8Qf7lwG5v5RLF4hYb/2YAdcZiYUL+IJFUdJlS/saekTJ6b8k5Oblap19hiM7wr/gds47Fmgl4jVfhmelDcO6yhCLk+77uSg9NPHwcZXkIWp/e4BYOvOzvoHKoiuROL16T6qJyXLzm4dx7K+Tw3Pr6NYGEncnD1"
)

func TestVectorD(t *testing.T) {
	pt, err := wxcrypto.DecryptAEAD(vecDKey, vecDNonce, vecDAAD, vecD1CT)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("D1: %q, %v", pt, err)
	}
	pt, err = wxcrypto.DecryptAEAD(vecDKey, vecDNonce, vecDAAD, vecD2CT)
	if err != nil || string(pt) != vecD2PT {
		t.Fatalf("D2: %q, %v", pt, err)
	}
	if len(pt) != 431 {
		t.Errorf("D2 plaintext %d bytes, protocol.md says 431", len(pt))
	}
	// The negative check: the certificate AAD does not open a transaction.
	if _, err := wxcrypto.DecryptAEAD(vecDKey, vecDNonce, "certificate", vecD2CT); !errors.Is(err, wxcrypto.ErrAEADAuth) {
		t.Errorf("D2 with AAD certificate: %v, want ErrAEADAuth", err)
	}
	// Encryption gives the vectors back (GCM is deterministic for a nonce).
	for pt, want := range map[string]string{"hello": vecD1CT, vecD2PT: vecD2CT} {
		got, err := wxcrypto.EncryptAEAD(vecDKey, vecDNonce, vecDAAD, []byte(pt))
		if err != nil || got != want {
			t.Errorf("EncryptAEAD(%.10q) = %.20s…, %v", pt, got, err)
		}
	}
	a, err := wxcrypto.NewAEAD(vecDKey)
	if err != nil {
		t.Fatal(err)
	}
	pt, err = a.OpenBytes(vecDNonce, vecDAAD, []byte(vecD2CT))
	if err != nil || string(pt) != vecD2PT {
		t.Errorf("OpenBytes: %v", err)
	}
	// The plaintext is the caller's: appending to it must not write into
	// anything else.
	if cap(pt) != len(pt) {
		t.Errorf("plaintext cap %d > len %d", cap(pt), len(pt))
	}
}

// reliability.md F2 and C1: every bad input is an error, never a panic.
func TestDecryptAEADRefusals(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(vecD1CT)
	truncated := base64.StdEncoding.EncodeToString(raw[:len(raw)-1])
	tagOnly := base64.StdEncoding.EncodeToString(raw[:15])
	cases := []struct {
		name              string
		key               wxpay.Secret
		nonce, aad, ctB64 string
		is                error
	}{
		{"wrong AAD", vecDKey, vecDNonce, "refund", vecD1CT, wxcrypto.ErrAEADAuth},
		{"empty AAD", vecDKey, vecDNonce, "", vecD1CT, wxcrypto.ErrAEADAuth},
		{"wrong key", "WeChatPayApiV3KeyForTestOnly0033", vecDNonce, vecDAAD, vecD1CT, wxcrypto.ErrAEADAuth},
		{"wrong nonce", vecDKey, "fdasflkja485", vecDAAD, vecD1CT, wxcrypto.ErrAEADAuth},
		{"truncated tag", vecDKey, vecDNonce, vecDAAD, truncated, wxcrypto.ErrAEADAuth},
		{"shorter than a tag", vecDKey, vecDNonce, vecDAAD, tagOnly, wxcrypto.ErrAEADShort},
		{"empty ciphertext", vecDKey, vecDNonce, vecDAAD, "", wxcrypto.ErrAEADShort},
		{"nonce 0", vecDKey, "", vecDAAD, vecD1CT, wxcrypto.ErrAEADNonce},
		{"nonce 11", vecDKey, vecDNonce[:11], vecDAAD, vecD1CT, wxcrypto.ErrAEADNonce},
		{"nonce 13", vecDKey, vecDNonce + "x", vecDAAD, vecD1CT, wxcrypto.ErrAEADNonce},
		{"key 31", vecDKey[:31], vecDNonce, vecDAAD, vecD1CT, wxcrypto.ErrAPIv3Key},
		{"key 33", vecDKey + "x", vecDNonce, vecDAAD, vecD1CT, wxcrypto.ErrAPIv3Key},
		{"key 16 (AES-128)", vecDKey[:16], vecDNonce, vecDAAD, vecD1CT, wxcrypto.ErrAPIv3Key},
		{"key 0", "", vecDNonce, vecDAAD, vecD1CT, wxcrypto.ErrAPIv3Key},
		{"not base64", vecDKey, vecDNonce, vecDAAD, "Wr3hvlwCTt1NP4Co!S4YZDU7penN", wxcrypto.ErrAEADBase64},
		{"URL-safe base64", vecDKey, vecDNonce, vecDAAD, strings.NewReplacer("+", "-", "/", "_").Replace(vecD2CT), wxcrypto.ErrAEADBase64},
		{"unpadded", vecDKey, vecDNonce, vecDAAD, "Wr3hvlwCTt1NP4CojS4YZDU7pen", wxcrypto.ErrAEADBase64},
		{"newline inside", vecDKey, vecDNonce, vecDAAD, vecD2CT[:100] + "\n" + vecD2CT[100:103], wxcrypto.ErrAEADBase64},
		{"CRLF inside", vecDKey, vecDNonce, vecDAAD, vecD1CT[:10] + "\r\n" + vecD1CT[10:26], wxcrypto.ErrAEADBase64},
		{"huge", vecDKey, vecDNonce, vecDAAD, strings.Repeat("AAAA", 400000), wxcrypto.ErrAEADShort},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", c.name, r)
				}
			}()
			pt, err := wxcrypto.DecryptAEAD(c.key, c.nonce, c.aad, c.ctB64)
			if !errors.Is(err, c.is) {
				t.Errorf("%s: %q, %v; want %v", c.name, pt, err, c.is)
			}
			if err != nil && strings.Contains(err.Error(), string(vecDKey)) {
				t.Errorf("%s: the error shows the key", c.name)
			}
		}()
	}
	if _, err := wxcrypto.EncryptAEAD(vecDKey, "short", "", []byte("x")); !errors.Is(err, wxcrypto.ErrAEADNonce) {
		t.Errorf("Seal with a short nonce: %v", err)
	}
	if _, err := wxcrypto.EncryptAEAD("short", vecDNonce, "", []byte("x")); !errors.Is(err, wxcrypto.ErrAPIv3Key) {
		t.Errorf("Seal with a short key: %v", err)
	}
}

func TestAEADRoundTripAndFormat(t *testing.T) {
	a, err := wxcrypto.NewAEAD(vecDKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("支付"), 1000)} {
		ct, err := a.Seal("0123456789ab", "certificate", pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Open("0123456789ab", "certificate", ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("round trip of %d bytes: %v", len(pt), err)
		}
	}
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		b.Reset()
		fmtFprintf(&b, verb, a)
		if strings.Contains(b.String(), string(vecDKey)) || strings.Contains(b.String(), hex.EncodeToString([]byte(vecDKey))[:16]) {
			t.Errorf("%s shows the key: %s", verb, b.String())
		}
	}
}

func FuzzDecryptAEAD(f *testing.F) {
	f.Add(string(vecDKey), vecDNonce, vecDAAD, vecD1CT)
	f.Add(string(vecDKey), vecDNonce, vecDAAD, vecD2CT)
	f.Add(string(vecDKey), vecDNonce, "certificate", vecD2CT)
	f.Add(string(vecDKey), "", "", "")
	f.Add("short", vecDNonce[:11], vecDAAD, "====")
	f.Add(string(vecDKey), vecDNonce+"x", vecDAAD, vecD1CT+"\n")
	want := sha256.Sum256([]byte(vecD2PT))
	f.Fuzz(func(t *testing.T, key, nonce, aad, ct string) {
		pt, err := wxcrypto.DecryptAEAD(wxpay.Secret(key), nonce, aad, ct)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext with an error")
			}
			return
		}
		// Anything that opens under the vector's key must be the vector:
		// random input never authenticates.
		if key == string(vecDKey) && ct != vecD1CT && ct != vecD2CT {
			t.Fatalf("forged ciphertext opened: %q", ct)
		}
		if key == string(vecDKey) && ct == vecD2CT && sha256.Sum256(pt) != want {
			t.Fatal("D2 opened to another plaintext")
		}
		// What opens re-seals to the same ciphertext.
		again, err := wxcrypto.EncryptAEAD(wxpay.Secret(key), nonce, aad, pt)
		if err != nil || again != ct {
			t.Fatalf("re-seal: %v", err)
		}
	})
}
