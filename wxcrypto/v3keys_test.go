package wxcrypto_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestParsePrivateKeyForms(t *testing.T) {
	k8 := mustKey(t, merchantKeyPEM)
	k1 := mustKey(t, merchantKeyPKCS1PEM)
	if !k8.Equal(k1) {
		t.Fatal("PKCS#8 and PKCS#1 forms differ")
	}
	// A file with the certificate first and the key second.
	if k, err := wxcrypto.ParsePrivateKey([]byte(merchantCertPEM + merchantKeyPEM)); err != nil || !k.Equal(k8) {
		t.Errorf("cert+key bundle: %v", err)
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKeyRefusals(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small8, _ := x509.MarshalPKCS8PrivateKey(small)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC, _ := x509.MarshalECPrivateKey(ec)
	cases := []struct {
		name string
		pem  []byte
		is   error
		says string
	}{
		{"1024-bit PKCS#8", pemOf("PRIVATE KEY", small8), wxcrypto.ErrKeyTooSmall, "2048"},
		{"1024-bit PKCS#1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), wxcrypto.ErrKeyTooSmall, "1024 bits"},
		{"EC PKCS#8", pemOf("PRIVATE KEY", ec8), wxcrypto.ErrKeyNotRSA, "ecdsa"},
		{"EC SEC1", pemOf("EC PRIVATE KEY", ecSEC), wxcrypto.ErrKeyNotRSA, "EC"},
		{"certificate only", []byte(merchantCertPEM), wxcrypto.ErrKeyPEM, "apiclient_cert.pem"},
		{"not PEM", []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), wxcrypto.ErrKeyPEM, "PKCS#8"},
		{"empty", nil, wxcrypto.ErrKeyPEM, ""},
		{"encrypted PKCS#8", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), nil, "encrypted"},
		{"garbage DER", pemOf("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), nil, "does not parse"},
	}
	for _, c := range cases {
		_, err := wxcrypto.ParsePrivateKey(c.pem)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", c.name, err, c.is)
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.says)
		}
	}
	// The error never shows the key.
	key := mustKey(t, merchantKeyPEM)
	broken := strings.Replace(merchantKeyPEM, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEvQIBADANBgkqhkiG9w0BAQEFAAAA", 1)
	if _, err := wxcrypto.ParsePrivateKey([]byte(broken)); err == nil || strings.Contains(err.Error(), "MIIE") ||
		strings.Contains(err.Error(), key.D.String()[:12]) {
		t.Errorf("broken key: %v", err)
	}
}

func TestParsePublicKeyForms(t *testing.T) {
	key := mustKey(t, merchantKeyPEM)
	pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	for name, p := range map[string][]byte{
		"PUBLIC KEY":     pemOf("PUBLIC KEY", pkix),
		"RSA PUBLIC KEY": pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&key.PublicKey)),
		"CERTIFICATE":    []byte(merchantCertPEM),
	} {
		pub, err := wxcrypto.ParsePublicKey(p)
		if err != nil || !pub.Equal(&key.PublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := wxcrypto.ParsePublicKey([]byte(merchantKeyPEM)); !errors.Is(err, wxcrypto.ErrKeyPEM) {
		t.Errorf("a private key as public key: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := wxcrypto.ParsePublicKey(pemOf("PUBLIC KEY", ecPub)); !errors.Is(err, wxcrypto.ErrKeyNotRSA) {
		t.Errorf("EC public key: %v", err)
	}
}

func TestCertificateSerial(t *testing.T) {
	cert, err := wxcrypto.ParseCertificate([]byte(merchantCertPEM))
	if err != nil {
		t.Fatal(err)
	}
	if got := wxcrypto.CertificateSerial(cert); got != "3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8" {
		t.Errorf("serial %s", got)
	}
	if got := wxcrypto.SerialString(big.NewInt(0x0ABC)); got != "ABC" {
		t.Errorf("SerialString = %s", got)
	}
	if !wxcrypto.SameSerial("0abc", "ABC") || wxcrypto.SameSerial("ABC", "ABD") || wxcrypto.SameSerial("", "") {
		t.Error("SameSerial")
	}
	if got := wxcrypto.NormalizeSerial("PUB_KEY_ID_0114"); got != "PUB_KEY_ID_0114" {
		t.Errorf("public key id normalised to %s", got)
	}
	for s, want := range map[string]bool{"3775B6A4": true, "3775b6a4": true, "": false, "PUB_KEY_ID_1": false, "12 34": false, strings.Repeat("A", 65): false} {
		if wxcrypto.IsHexSerial(s) != want {
			t.Errorf("IsHexSerial(%q) != %v", s, want)
		}
	}
	if _, err := wxcrypto.ParseCertificate([]byte(merchantKeyPEM)); !errors.Is(err, wxcrypto.ErrCertificatePEM) {
		t.Errorf("key as certificate: %v", err)
	}
}
