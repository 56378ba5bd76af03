package wxcrypto_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

func fmtFprintf(w io.Writer, format string, a ...any) { fmt.Fprintf(w, format, a...) }

func TestOAEP(t *testing.T) {
	platform := mustKey(t, platformKeyPEM)
	ct, err := wxcrypto.EncryptOAEP(&platform.PublicKey, "张三")
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(ct); len(raw) != 256 {
		t.Errorf("ciphertext %d bytes, want 256", len(raw))
	}
	pt, err := wxcrypto.DecryptOAEP(platform, ct)
	if err != nil || pt != "张三" {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	// The parameters are SHA-1 / MGF1-SHA-1 / no label: the stdlib with
	// those parameters opens it too.
	raw, _ := base64.StdEncoding.DecodeString(ct)
	if got, err := rsa.DecryptOAEP(sha1.New(), nil, platform, raw, nil); err != nil || string(got) != "张三" {
		t.Errorf("stdlib SHA-1 OAEP: %q, %v", got, err)
	}
	// Randomised.
	if ct2, _ := wxcrypto.EncryptOAEP(&platform.PublicKey, "张三"); ct2 == ct {
		t.Error("two encryptions are equal")
	}
	merchant := mustKey(t, merchantKeyPEM)
	altered := []byte(ct)
	altered[10] ^= 'A' ^ 'B' // another letter of the alphabet
	for name, c := range map[string]string{"wrong key": ct, "not base64": "!!!!", "altered": string(altered), "empty": ""} {
		k := platform
		if name == "wrong key" {
			k = merchant
		}
		if _, err := wxcrypto.DecryptOAEP(k, c); !errors.Is(err, wxcrypto.ErrOAEP) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := wxcrypto.EncryptOAEP(&platform.PublicKey, strings.Repeat("x", 300)); err == nil {
		t.Error("a message longer than the key allows was encrypted")
	}
	if _, err := wxcrypto.EncryptOAEP(nil, "x"); !errors.Is(err, wxcrypto.ErrNilKey) {
		t.Errorf("nil key: %v", err)
	}
	// A ciphertext with a label is not what WeChat's SDKs send, and does not
	// open.
	raw256, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, &platform.PublicKey, []byte("x"), []byte("label"))
	if _, err := wxcrypto.DecryptOAEP(platform, base64.StdEncoding.EncodeToString(raw256)); !errors.Is(err, wxcrypto.ErrOAEP) {
		t.Errorf("labelled ciphertext: %v", err)
	}
}
