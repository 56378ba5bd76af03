package apiv3

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// signedBy returns the Wechatpay-* headers of body signed with the key of
// serial at testNow+skew.
func signedBy(t testing.TB, serial string, body []byte, skew time.Duration) http.Header {
	t.Helper()
	f := &fakeWeChat{t: t, serial: serial, skew: skew, key: testKeyFor(t, serial)}
	h := http.Header{}
	f.signHeaders(h, body)
	return h
}

func testKeyFor(t testing.TB, serial string) *rsa.PrivateKey {
	switch serial {
	case platformSerial:
		return platformKey(t)
	case platform2Serial:
		return platform2Key(t)
	}
	return pubKeyKey(t)
}

func flipBit(b []byte, bit int) []byte {
	out := bytes.Clone(b)
	out[bit/8%len(out)] ^= 1 << (bit % 8)
	return out
}

// reliability.md F1 (and N5, N7, N12, C2, C3) as one table, through the
// client's clock.
func TestVerifySignatureF1(t *testing.T) {
	c := newTestClient(t, newFake(t))
	ctx := context.Background()
	body := ourTransaction
	good := signedHeader(t, body, 0)
	if err := c.VerifySignature(ctx, good, body); err != nil {
		t.Fatalf("a correct signature: %v", err)
	}
	mod := func(f func(h http.Header)) http.Header {
		h := good.Clone()
		f(h)
		return h
	}
	sig, _ := base64.StdEncoding.DecodeString(good.Get(HeaderSignature))
	type tc struct {
		name string
		h    http.Header
		body []byte
		is   error
	}
	cases := []tc{
		{"CRLF added", good, append(bytes.Clone(body), '\r', '\n'), ErrSignature},
		{"LF added", good, append(bytes.Clone(body), '\n'), ErrSignature},
		{"re-serialised body", good, bytes.ReplaceAll(body, []byte(`":`), []byte(`": `)), ErrSignature},
		{"empty body", good, nil, ErrSignature},
		{"non-numeric timestamp", mod(func(h http.Header) { h.Set(HeaderTimestamp, "abc") }), body, ErrTimestamp},
		{"timestamp in ms", mod(func(h http.Header) { h.Set(HeaderTimestamp, strconv.FormatInt(testNow.UnixMilli(), 10)) }), body, ErrTimestamp},
		{"negative timestamp", mod(func(h http.Header) { h.Set(HeaderTimestamp, "-"+good.Get(HeaderTimestamp)) }), body, ErrTimestamp},
		{"timestamp 1e10", mod(func(h http.Header) { h.Set(HeaderTimestamp, "1e10") }), body, ErrTimestamp},
		{"probe", mod(func(h http.Header) { h.Set(HeaderSignature, "WECHATPAY/SIGNTEST/"+h.Get(HeaderSignature)) }), body, ErrProbeSignature},
		{"probe alone", mod(func(h http.Header) { h.Set(HeaderSignature, "WECHATPAY/SIGNTEST/") }), body, ErrProbeSignature},
		{"URL-safe signature", mod(func(h http.Header) { h.Set(HeaderSignature, base64.URLEncoding.EncodeToString(sig)) }), body, ErrSignature},
		{"signature with a newline", mod(func(h http.Header) { s := h.Get(HeaderSignature); h.Set(HeaderSignature, s[:100]+"\n"+s[100:]) }), body, ErrSignature},
		{"unknown serial", mod(func(h http.Header) { h.Set(HeaderSerial, "PUB_KEY_ID_0000") }), body, ErrUnknownSerial},
		{"certificate serial", mod(func(h http.Header) { h.Set(HeaderSerial, platformSerial) }), body, ErrUnknownSerial},
		{"signature type", mod(func(h http.Header) { h.Set(HeaderSignatureType, "WECHATPAY2-SM2-WITH-SM3") }), body, ErrSignature},
		{"nonce with CR", mod(func(h http.Header) { h.Set(HeaderNonce, "a\rb") }), body, ErrSignature},
	}
	for _, name := range []string{HeaderTimestamp, HeaderNonce, HeaderSignature, HeaderSerial} {
		cases = append(cases, tc{"missing " + name, mod(func(h http.Header) { h.Del(name) }), body, ErrMissingHeader},
			tc{"empty " + name, mod(func(h http.Header) { h.Set(name, "") }), body, ErrMissingHeader})
	}
	cases = append(cases, tc{"no headers", http.Header{}, body, ErrMissingHeader})
	for bit := 0; bit < 8*len(body); bit += 97 {
		cases = append(cases, tc{"body bit " + strconv.Itoa(bit), good, flipBit(body, bit), ErrSignature})
	}
	for bit := 0; bit < 8*len(sig); bit += 61 {
		s := base64.StdEncoding.EncodeToString(flipBit(sig, bit))
		cases = append(cases, tc{"signature bit " + strconv.Itoa(bit), mod(func(h http.Header) { h.Set(HeaderSignature, s) }), body, ErrSignature})
	}
	for bit := 0; bit < 8*len(answerNonce); bit += 5 {
		n := string(flipBit([]byte(answerNonce), bit))
		if bytes.ContainsAny([]byte(n), "\r\n") || n == "" {
			continue
		}
		cases = append(cases, tc{"nonce bit " + strconv.Itoa(bit), mod(func(h http.Header) { h.Set(HeaderNonce, n) }), body, ErrSignature})
	}
	// A flipped timestamp digit stays a number but leaves the window or
	// breaks the signature; a flipped bit that makes it non-numeric is
	// malformed.
	ts := good.Get(HeaderTimestamp)
	for bit := 0; bit < 8*len(ts); bit++ {
		v := string(flipBit([]byte(ts), bit))
		if _, ok := wxcrypto.ParseV3Timestamp(v); !ok {
			continue
		}
		cases = append(cases, tc{"timestamp bit " + strconv.Itoa(bit), mod(func(h http.Header) { h.Set(HeaderTimestamp, v) }), body, nil})
	}
	for _, c2 := range cases {
		err := c.VerifySignature(ctx, c2.h, c2.body)
		if err == nil {
			t.Errorf("%s: verifies", c2.name)
			continue
		}
		if c2.is != nil && !errors.Is(err, c2.is) {
			t.Errorf("%s: %v, want %v", c2.name, err, c2.is)
		}
	}
}

// reliability.md F1, N5, C5: |now − ts| < 300 s passes, ≥ 300 s fails, both ways.
func TestVerifyWindow(t *testing.T) {
	c := newTestClient(t, newFake(t))
	for skew, ok := range map[time.Duration]bool{
		0: true, 299 * time.Second: true, -299 * time.Second: true,
		300 * time.Second: false, -300 * time.Second: false, 301 * time.Second: false, -301 * time.Second: false,
		6 * time.Minute: false, 24 * time.Hour: false,
	} {
		err := c.VerifySignature(context.Background(), signedHeader(t, ourTransaction, skew), ourTransaction)
		if ok != (err == nil) {
			t.Errorf("skew %v: %v", skew, err)
		}
		if !ok && !errors.Is(err, ErrTimestamp) {
			t.Errorf("skew %v: %v, want ErrTimestamp", skew, err)
		}
	}
}

func TestCertificateVerifier(t *testing.T) {
	old := makeCert(t, platformKey(t), platformSerial, testNow.AddDate(-2, 0, 0), testNow.Add(time.Hour))
	next := makeCert(t, platform2Key(t), platform2Serial, testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0))
	v, err := NewCertificateVerifier(old, next)
	if err != nil {
		t.Fatal(err)
	}
	v.SetClock(fixedClock)
	ctx := context.Background()
	body := []byte(`{"a":1}`)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	sign := func(k *rsa.PrivateKey) string {
		s, _ := wxcrypto.SignV3Response(k, ts, "n", body)
		return s
	}
	// Rotation: both verify; serials compare case-insensitively and
	// without leading zeros.
	if err := v.Verify(ctx, platformSerial, ts, "n", body, sign(platformKey(t))); err != nil {
		t.Errorf("old: %v", err)
	}
	if err := v.Verify(ctx, "0"+platform2Serial, ts, "n", body, sign(platform2Key(t))); err != nil {
		t.Errorf("new: %v", err)
	}
	// A key under another's serial fails.
	if err := v.Verify(ctx, platformSerial, ts, "n", body, sign(platform2Key(t))); !errors.Is(err, ErrSignature) {
		t.Errorf("crossed: %v", err)
	}
	if err := v.Verify(ctx, "ABCDEF", ts, "n", body, sign(platformKey(t))); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("unknown: %v", err)
	}
	// The encryption key is the one that expires last.
	if s, _, err := v.EncryptionKey(); err != nil || s != platform2Serial {
		t.Errorf("encryption key %s %v", s, err)
	}
	// After the old one expires it no longer verifies.
	v.SetClock(func() time.Time { return testNow.Add(2 * time.Hour) })
	if err := v.Verify(ctx, platformSerial, ts, "n", body, sign(platformKey(t))); !errors.Is(err, ErrSignature) {
		t.Errorf("expired: %v", err)
	}
	if len(v.Certificates()) != 2 || len(v.Serials()) != 2 {
		t.Error("listing")
	}
	if _, err := NewCertificateVerifier(nil); err == nil {
		t.Error("nil certificate accepted")
	}
}

func TestMultiVerifierRouting(t *testing.T) {
	cv, _ := NewCertificateVerifier(platformCert(t))
	cv.SetClock(fixedClock)
	m := &MultiVerifier{PublicKey: pubKeyVerifier(t), Certificates: cv}
	cfg := testConfig(t)
	cfg.Verifier = m
	c, err := NewClient(cfg, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := ourTransaction
	// During a migration both kinds arrive.
	for _, serial := range []string{pubKeyID, platformSerial} {
		if err := c.VerifySignature(ctx, signedBy(t, serial, body, 0), body); err != nil {
			t.Errorf("%s: %v", serial, err)
		}
	}
	// A PUB_KEY_ID_ never goes to the certificates and the reverse.
	h := signedBy(t, platformSerial, body, 0)
	h.Set(HeaderSerial, "PUB_KEY_ID_"+platformSerial)
	if err := c.VerifySignature(ctx, h, body); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("routed wrongly: %v", err)
	}
	half := &MultiVerifier{PublicKey: pubKeyVerifier(t)}
	if err := half.Verify(ctx, platformSerial, "1", "n", body, "AAAA"); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("nil member: %v", err)
	}
	if s, _, err := m.EncryptionKey(); err != nil || s != pubKeyID {
		t.Errorf("encryption key %s %v", s, err)
	}
}

func TestNewPublicKeyVerifier(t *testing.T) {
	if _, err := NewPublicKeyVerifier("0114232134912410000000000000", readTestdata(t, "pub_key.pem")); err == nil {
		t.Error("an id without the prefix accepted")
	}
	if _, err := NewPublicKeyVerifier(pubKeyID, readTestdata(t, "merchant_key.pem")); err == nil {
		t.Error("a private key accepted as the public key")
	}
	if _, err := NewPublicKeyVerifier(pubKeyID, []byte(base64.StdEncoding.EncodeToString([]byte("x")))); err == nil {
		t.Error("garbage accepted")
	}
}
