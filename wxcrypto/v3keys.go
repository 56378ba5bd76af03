package wxcrypto

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MinRSABits is the smallest RSA key the v3 functions accept: WeChat Pay
// issues 2048-bit keys (the scheme is WECHATPAY2-SHA256-RSA2048).
const MinRSABits = 2048

// Errors of the key and certificate parsers. They never hold key material.
var (
	// ErrKeyPEM means the bytes hold no PEM block of the expected kind.
	ErrKeyPEM = errors.New("wxcrypto: no PEM key block found")
	// ErrKeyNotRSA means the key is not an RSA key.
	ErrKeyNotRSA = errors.New("wxcrypto: the key is not an RSA key")
	// ErrKeyTooSmall means an RSA key has fewer than MinRSABits bits.
	ErrKeyTooSmall = errors.New("wxcrypto: the RSA key is shorter than 2048 bits")
	// ErrCertificatePEM means the bytes hold no CERTIFICATE block.
	ErrCertificatePEM = errors.New("wxcrypto: no PEM CERTIFICATE block found")
)

// ParsePrivateKey reads the merchant API private key (apiclient_key.pem,
// protocol.md §13.1) from PEM: a "PRIVATE KEY" block (PKCS#8, what the
// merchant platform's certificate tool writes) or an "RSA PRIVATE KEY" block
// (PKCS#1). It refuses encrypted keys, non-RSA keys and keys under 2048
// bits, and says so in words. Blocks of other types (a certificate in the
// same file) are skipped; a file holding only a certificate is named as
// such, since giving apiclient_cert.pem for apiclient_key.pem is a common
// mistake. The error never holds the key.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	rest := pemBytes
	var sawCert bool
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if block.Headers["Proc-Type"] != "" {
				return nil, errors.New("wxcrypto: the private key is encrypted; decrypt it first (openssl rsa -in key.pem -out plain.pem)")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("wxcrypto: the private key is encrypted (ENCRYPTED PRIVATE KEY); decrypt it first (openssl pkcs8 -in key.pem -out plain.pem)")
		case "EC PRIVATE KEY":
			return nil, fmt.Errorf("%w: found an EC private key", ErrKeyNotRSA)
		case "CERTIFICATE":
			sawCert = true
			continue
		default:
			continue
		}
		if err != nil {
			// x509's messages name the structure, never the bytes.
			return nil, fmt.Errorf("wxcrypto: %s block does not parse: %v", block.Type, err)
		}
		rk, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: found %T", ErrKeyNotRSA, key)
		}
		if n := rk.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("%w (%d bits)", ErrKeyTooSmall, n)
		}
		return rk, nil
	}
	if sawCert {
		return nil, fmt.Errorf("%w: the PEM holds a certificate, not a private key (apiclient_cert.pem given for apiclient_key.pem?)", ErrKeyPEM)
	}
	return nil, fmt.Errorf("%w: want \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1)", ErrKeyPEM)
}

// ParsePublicKey reads an RSA public key from PEM: a "PUBLIC KEY" block
// (PKIX, the format of the WeChat Pay public key file pub_key.pem,
// protocol.md §13.3), an "RSA PUBLIC KEY" block (PKCS#1), or a
// "CERTIFICATE" block, whose key is returned. Keys under 2048 bits are
// refused.
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: want \"PUBLIC KEY\", \"RSA PUBLIC KEY\" or \"CERTIFICATE\"", ErrKeyPEM)
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				key = cert.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wxcrypto: %s block does not parse: %v", block.Type, err)
		}
		return checkPublicKey(key)
	}
}

// checkPublicKey accepts an RSA public key of at least MinRSABits bits.
func checkPublicKey(key any) (*rsa.PublicKey, error) {
	pk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: found %T", ErrKeyNotRSA, key)
	}
	if n := pk.N.BitLen(); n < MinRSABits {
		return nil, fmt.Errorf("%w (%d bits)", ErrKeyTooSmall, n)
	}
	return pk, nil
}

// ParseCertificate reads the first CERTIFICATE block of PEM bytes (a
// platform certificate, or the merchant's apiclient_cert.pem) and checks
// that its key is RSA of at least 2048 bits. It does not check the dates:
// callers compare NotBefore/NotAfter with their own clock.
func ParseCertificate(pemBytes []byte) (*x509.Certificate, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, ErrCertificatePEM
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wxcrypto: certificate does not parse: %v", err)
		}
		if _, err := checkPublicKey(cert.PublicKey); err != nil {
			return nil, err
		}
		return cert, nil
	}
}

// CertificateSerial returns a certificate's serial number as WeChat Pay
// writes it in serial_no and Wechatpay-Serial: upper-case hex (protocol.md
// §13.1, §13.3), formatted like the official Go SDK (fmt "%X" of the
// number, so without leading zeros). Compare serials with SameSerial.
func CertificateSerial(cert *x509.Certificate) string {
	return SerialString(cert.SerialNumber)
}

// SerialString formats a serial number as CertificateSerial does.
func SerialString(n *big.Int) string {
	return strings.ToUpper(n.Text(16))
}

// NormalizeSerial returns the form of a serial number used to compare and
// index serials: upper case, without leading zeros. "0A1B" and "a1b" are
// the same serial. A PUB_KEY_ID_… public-key id is returned unchanged.
func NormalizeSerial(s string) string {
	if strings.HasPrefix(s, "PUB_KEY_ID_") {
		return s
	}
	return strings.ToUpper(strings.TrimLeft(s, "0"))
}

// SameSerial reports whether two serial numbers name the same certificate
// (see NormalizeSerial).
func SameSerial(a, b string) bool {
	return a != "" && b != "" && NormalizeSerial(a) == NormalizeSerial(b)
}

// IsHexSerial reports whether s is a certificate serial number: 1 to 64 hex
// digits.
func IsHexSerial(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
