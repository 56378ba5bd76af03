package wxsim

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// MerchantV3 is one merchant's APIv3 setup (protocol.md §13). The zero
// value enables APIv3 with a derived APIv3 key, a merchant API key and
// certificate the simulator issues on first use, and platform
// certificates.
type MerchantV3 struct {
	// APIv3Key is the 32-byte APIv3 key (APIv3密钥) that encrypts notify
	// resources and the platform certificates. Empty: the first 32 hex
	// digits of SHA-256("wxsim-apiv3:" + the v2 API key), stable across
	// restarts (V3Credentials shows it).
	APIv3Key string

	// CertificatePEM holds the merchant API certificate(s)
	// (apiclient_cert.pem) registered with WeChat Pay: a request must be
	// signed by the key of the certificate its serial_no names. Several
	// PEM blocks may be concatenated (an old and a new certificate while
	// the merchant replaces its own). Empty: the simulator issues a key
	// and a certificate the first time they are needed and hands them
	// out with Simulator.V3Credentials (GET /sim/v1/v3/merchants/{mch_id});
	// CA.ConfigureV3 registers the CA's client certificate instead.
	CertificatePEM []byte

	// PublicKeyOnly makes the merchant one of those registered since late
	// 2024: WeChat Pay signs with the WeChat Pay public key (PUB_KEY_ID_…)
	// from the start, and GET /v3/certificates answers 404
	// RESOURCE_NOT_EXISTS (无可用的平台证书).
	PublicKeyOnly bool

	// PublicKeyID is the id of the merchant's WeChat Pay public key; it
	// must start with PUB_KEY_ID_. Empty: PUB_KEY_ID_01 + the mch id,
	// padded with zeros to 28 digits.
	PublicKeyID string
}

// V3Config is the APIv3 setup shared by every merchant.
type V3Config struct {
	// PlatformKeys are RSA private keys (PEM, ≥ 2048 bits) for the
	// platform certificates, used in order as certificates are issued
	// (each merchant's first certificate, then rotations). Once they run
	// out, keys are generated; generated keys are cached for the life of
	// the process, so a test binary pays for each only once. Give fixed
	// keys for reproducible signatures.
	PlatformKeys [][]byte

	// PublicKeyKeys are the private halves (PEM) of the WeChat Pay public
	// keys, used in order as merchants get one; then generated.
	PublicKeyKeys [][]byte

	// TimestampWindow is how far a request's Authorization timestamp may
	// be from the simulator's clock (plus the clock skew). Zero means
	// 5 minutes, WeChat's window.
	TimestampWindow time.Duration

	// ClockSkew is the initial skew of WeChat Pay's clock against the
	// simulator clock (see Simulator.SetV3ClockSkew): it moves the
	// Wechatpay-Timestamp of answers and notifies, and the time requests
	// are checked against.
	ClockSkew time.Duration

	// BillURLTTL is how long a bill download_url stays valid. Zero means
	// 5 minutes.
	BillURLTTL time.Duration
}

// v3PubKeyPrefix starts every WeChat Pay public key id.
const v3PubKeyPrefix = "PUB_KEY_ID_"

// derivedAPIv3Key is the APIv3 key of a merchant that configures none.
func derivedAPIv3Key(apiKey string) string {
	sum := sha256.Sum256([]byte("wxsim-apiv3:" + apiKey))
	return hex.EncodeToString(sum[:])[:32]
}

// defaultPublicKeyID is the public key id of a merchant that configures
// none.
func defaultPublicKeyID(mchID string) string {
	d := "01" + mchID
	for len(d) < 28 {
		d += "0"
	}
	return v3PubKeyPrefix + d
}

// validateV3 checks the APIv3 parts of the configuration (called by
// Validate, after defaults).
func (c Config) validateV3() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("wxsim: "+format, args...)) }
	if c.V3.TimestampWindow < 0 || c.V3.BillURLTTL < 0 {
		bad("V3.TimestampWindow and V3.BillURLTTL must not be negative")
	}
	for i, k := range c.V3.PlatformKeys {
		if _, err := wxcrypto.ParsePrivateKey(k); err != nil {
			bad("V3.PlatformKeys[%d]: %v", i, err)
		}
	}
	for i, k := range c.V3.PublicKeyKeys {
		if _, err := wxcrypto.ParsePrivateKey(k); err != nil {
			bad("V3.PublicKeyKeys[%d]: %v", i, err)
		}
	}
	for i, m := range c.Merchants {
		v := m.V3
		if v.APIv3Key != "" && len(v.APIv3Key) != wxcrypto.APIv3KeySize {
			bad("Merchants[%d]: V3.APIv3Key has %d bytes; the APIv3 key has exactly 32", i, len(v.APIv3Key))
		}
		if v.APIv3Key != "" && v.APIv3Key == m.APIKey {
			bad("Merchants[%d]: V3.APIv3Key is the v2 API key; WeChat keeps them apart", i)
		}
		if len(v.CertificatePEM) > 0 {
			if _, err := parseMerchantCerts(v.CertificatePEM); err != nil {
				bad("Merchants[%d]: V3.CertificatePEM: %v", i, err)
			}
		}
		if v.PublicKeyID != "" && (!strings.HasPrefix(v.PublicKeyID, v3PubKeyPrefix) || len(v.PublicKeyID) > 64 || len(v.PublicKeyID) == len(v3PubKeyPrefix)) {
			bad("Merchants[%d]: V3.PublicKeyID %q must be PUB_KEY_ID_ followed by the id", i, v.PublicKeyID)
		}
	}
	return errs
}

// parseMerchantCerts reads every CERTIFICATE block: the merchant's
// registered API certificates.
func parseMerchantCerts(pemBytes []byte) ([]*v3MerchantCert, error) {
	var out []*v3MerchantCert
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		one := pem.EncodeToMemory(block)
		cert, err := wxcrypto.ParseCertificate(one)
		if err != nil {
			return nil, err
		}
		out = append(out, &v3MerchantCert{serial: wxcrypto.CertificateSerial(cert), pub: cert.PublicKey.(*rsa.PublicKey), certPEM: one, cert: cert})
	}
	if len(out) == 0 {
		return nil, wxcrypto.ErrCertificatePEM
	}
	return out, nil
}
