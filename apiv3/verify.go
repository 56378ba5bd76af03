package apiv3

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// The headers of a signed answer or notify (protocol.md §13.2). They are
// in canonical form, as net/http stores them.
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial" // also sent by the merchant with RSA-OAEP encrypted fields
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-Id"
)

// SignatureWindow is how far Wechatpay-Timestamp may be from the client's
// clock: an answer or notify is refused when |now − timestamp| ≥ 5 minutes
// (protocol.md §13.2, reliability.md F1, N5). Keep the host's clock in sync
// (NTP): with a clock 6 minutes off, every notify fails (reliability.md C5).
const SignatureWindow = 5 * time.Minute

// ProbePrefix starts the signatures of the probe notifies WeChat Pay sends
// to check that merchants verify (protocol.md §13.2, UNCONFIRMED there;
// reliability.md N7). They never verify, and are refused with
// ErrProbeSignature before any key is looked up.
const ProbePrefix = "WECHATPAY/SIGNTEST/"

// PublicKeyIDPrefix starts the Wechatpay-Serial of a message signed with
// the WeChat Pay public key rather than a platform certificate
// (protocol.md §13.3). The prefix is part of the id.
const PublicKeyIDPrefix = "PUB_KEY_ID_"

// The reasons a signed answer or notify is refused (protocol.md §13.2).
// Each error the verification returns wraps exactly one of them.
var (
	// ErrMissingHeader: Wechatpay-Timestamp, -Nonce, -Signature or
	// -Serial is absent or empty (a proxy that strips them, reliability.md
	// N12, or a forged notify, N1).
	ErrMissingHeader = errors.New("apiv3: Wechatpay-* signature header missing or empty")
	// ErrTimestamp: Wechatpay-Timestamp is not Unix seconds (reliability.md
	// C2) or is SignatureWindow or more away from the clock (F1, N5, C5).
	ErrTimestamp = errors.New("apiv3: Wechatpay-Timestamp malformed or outside the 5-minute window")
	// ErrProbeSignature: a WECHATPAY/SIGNTEST/ probe (reliability.md N7).
	ErrProbeSignature = errors.New("apiv3: WECHATPAY/SIGNTEST/ probe signature refused")
	// ErrUnknownSerial: no key for the Wechatpay-Serial (a certificate not
	// downloaded yet, a PUB_KEY_ID_ of another merchant, a forged serial).
	ErrUnknownSerial = errors.New("apiv3: no verification key for this Wechatpay-Serial")
	// ErrSignature: the signature is malformed or does not verify over the
	// raw body (reliability.md F1, N4, N12), or the key's certificate is
	// outside its validity dates, or Wechatpay-Signature-Type is not
	// WECHATPAY2-SHA256-RSA2048.
	ErrSignature = errors.New("apiv3: signature does not verify")
)

// Verifier checks the signature of an answer or a notify with the key that
// serial (the Wechatpay-Serial header) names (protocol.md §13.2, §13.3).
// timestamp and nonce are the Wechatpay-Timestamp and Wechatpay-Nonce
// headers as received, body the raw body as received. The Client checks the
// headers' presence, the probe prefix and the time window before calling
// it. Verify returns nil, or an error wrapping ErrUnknownSerial or
// ErrSignature. Implementations must be safe for concurrent use.
//
// The implementations here: PublicKeyVerifier (the WeChat Pay public key),
// CertificateVerifier (platform certificates kept by serial),
// CertificateManager (a CertificateVerifier kept up to date by downloads),
// MultiVerifier (both during a migration).
type Verifier interface {
	Verify(ctx context.Context, serial, timestamp, nonce string, body []byte, signature string) error
}

// Encrypter is implemented by the verifiers that can name a key to encrypt
// sensitive request fields with (protocol.md §13.3): the serial to send as
// Wechatpay-Serial and the RSA key for RSA-OAEP.
type Encrypter interface {
	EncryptionKey() (serial string, key *rsa.PublicKey, err error)
}

// keyLister is implemented by the verifiers here, so that NewClient can
// refuse the merchant's own certificate configured as a platform one.
type keyLister interface {
	verifierKeys() []verifierKey
}

type verifierKey struct {
	serial string
	key    *rsa.PublicKey
}

// checkSigned applies protocol.md §13.2 to a signed message: the four
// headers present, not a probe, the signature type if given, the timestamp
// well-formed and within SignatureWindow of now, then the Verifier.
func checkSigned(ctx context.Context, v Verifier, now time.Time, h http.Header, body []byte) error {
	ts := headerValue(h, HeaderTimestamp)
	nonce := headerValue(h, HeaderNonce)
	sig := headerValue(h, HeaderSignature)
	serial := headerValue(h, HeaderSerial)
	if ts == "" || nonce == "" || sig == "" || serial == "" {
		var missing []string
		for _, p := range [...][2]string{{HeaderTimestamp, ts}, {HeaderNonce, nonce}, {HeaderSignature, sig}, {HeaderSerial, serial}} {
			if p[1] == "" {
				missing = append(missing, p[0])
			}
		}
		return fmt.Errorf("%w: %s", ErrMissingHeader, strings.Join(missing, ", "))
	}
	if strings.HasPrefix(sig, ProbePrefix) {
		return ErrProbeSignature
	}
	if st := headerValue(h, HeaderSignatureType); st != "" && st != wxcrypto.AuthSchemeV3 {
		return fmt.Errorf("%w: Wechatpay-Signature-Type %q", ErrSignature, st)
	}
	t, ok := wxcrypto.ParseV3Timestamp(ts)
	if !ok {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	skew := now.Unix() - t
	if skew < 0 {
		skew = -skew
	}
	if skew >= int64(SignatureWindow/time.Second) {
		return fmt.Errorf("%w: %d s from the clock", ErrTimestamp, now.Unix()-t)
	}
	if strings.ContainsAny(nonce, "\r\n") {
		return fmt.Errorf("%w: malformed Wechatpay-Nonce", ErrSignature)
	}
	return v.Verify(ctx, serial, ts, nonce, body, sig)
}

// headerValue returns the first value of a header given in canonical form,
// without the canonicalisation http.Header.Get does.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func verifyWith(pub *rsa.PublicKey, serial, timestamp, nonce string, body []byte, signature string) error {
	if err := wxcrypto.VerifyV3(pub, timestamp, nonce, body, signature); err != nil {
		return fmt.Errorf("%w (serial %s): %w", ErrSignature, serial, err)
	}
	return nil
}

// PublicKeyVerifier verifies with the WeChat Pay public key (微信支付公钥,
// protocol.md §13.3), the mode of merchants registered since 2024 and the
// target of every migration: one key, downloaded once from the merchant
// platform, named by an id that starts with PUB_KEY_ID_ (keep the prefix).
// Messages whose Wechatpay-Serial is another id fail with ErrUnknownSerial.
type PublicKeyVerifier struct {
	ID  string         // the id, e.g. PUB_KEY_ID_0114232134912410000000000000
	Key *rsa.PublicKey // the key of pub_key.pem
}

// NewPublicKeyVerifier reads the WeChat Pay public key from PEM (the
// pub_key.pem the merchant platform gives) and checks the id.
func NewPublicKeyVerifier(id string, pemBytes []byte) (*PublicKeyVerifier, error) {
	pub, err := wxcrypto.ParsePublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("apiv3: WeChat Pay public key: %w", err)
	}
	v := &PublicKeyVerifier{ID: id, Key: pub}
	if err := v.check(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *PublicKeyVerifier) check() error {
	if !strings.HasPrefix(v.ID, PublicKeyIDPrefix) || len(v.ID) == len(PublicKeyIDPrefix) {
		return fmt.Errorf("apiv3: WeChat Pay public key id %q does not start with %s (keep the prefix)", v.ID, PublicKeyIDPrefix)
	}
	if v.Key == nil || v.Key.N.BitLen() < wxcrypto.MinRSABits {
		return errors.New("apiv3: WeChat Pay public key missing or shorter than 2048 bits")
	}
	return nil
}

// Verify implements Verifier.
func (v *PublicKeyVerifier) Verify(_ context.Context, serial, timestamp, nonce string, body []byte, signature string) error {
	if serial != v.ID {
		return fmt.Errorf("%w: %q (the public key is %s)", ErrUnknownSerial, serial, v.ID)
	}
	return verifyWith(v.Key, serial, timestamp, nonce, body, signature)
}

// EncryptionKey implements Encrypter: the public key and its id.
func (v *PublicKeyVerifier) EncryptionKey() (string, *rsa.PublicKey, error) { return v.ID, v.Key, nil }

func (v *PublicKeyVerifier) verifierKeys() []verifierKey {
	return []verifierKey{{v.ID, v.Key}}
}

// certEntry is one key of a CertificateVerifier.
type certEntry struct {
	serial string            // as WeChat writes it
	key    *rsa.PublicKey    // parsed once
	cert   *x509.Certificate // nil for a key pinned without its certificate
}

// CertificateVerifier verifies with platform certificates (平台证书,
// protocol.md §13.3), kept by serial: every certificate that is currently
// valid verifies, so that during a rotation messages signed with the old
// and with the new certificate both pass (reliability.md F3). A certificate
// verifies only between its NotBefore and NotAfter, by the verifier's clock.
// It is safe for concurrent use; lookups take no lock. The zero value is
// an empty verifier on time.Now.
//
// Fill it with NewCertificateVerifier from certificates you hold, or let a
// CertificateManager download and refresh them.
type CertificateVerifier struct {
	now func() time.Time
	mu  sync.Mutex // serialises writers
	set atomic.Pointer[map[string]*certEntry]
}

// NewCertificateVerifier returns a verifier holding certs (parse them with
// wxcrypto.ParseCertificate). Each must have an RSA key of 2048 bits or
// more. The clock is time.Now; see SetClock.
func NewCertificateVerifier(certs ...*x509.Certificate) (*CertificateVerifier, error) {
	v := &CertificateVerifier{now: time.Now}
	m := map[string]*certEntry{}
	v.set.Store(&m)
	if err := v.Add(certs...); err != nil {
		return nil, err
	}
	return v, nil
}

// SetClock sets the clock the validity dates are checked with. Call it
// before the verifier is used.
func (v *CertificateVerifier) SetClock(now func() time.Time) { v.now = now }

func certEntryOf(cert *x509.Certificate) (*certEntry, error) {
	if cert == nil {
		return nil, errors.New("apiv3: nil certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < wxcrypto.MinRSABits {
		return nil, fmt.Errorf("apiv3: platform certificate %s: key is not RSA of at least 2048 bits", wxcrypto.CertificateSerial(cert))
	}
	return &certEntry{serial: wxcrypto.CertificateSerial(cert), key: pub, cert: cert}, nil
}

// Add adds certificates (copy on write: verifications in flight are not
// disturbed). A certificate with the serial of one already held replaces it.
func (v *CertificateVerifier) Add(certs ...*x509.Certificate) error {
	entries := make([]*certEntry, 0, len(certs))
	for _, c := range certs {
		e, err := certEntryOf(c)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.entries()
	m := make(map[string]*certEntry, len(old)+len(entries))
	for k, e := range old {
		m[k] = e
	}
	for _, e := range entries {
		m[wxcrypto.NormalizeSerial(e.serial)] = e
	}
	v.set.Store(&m)
	return nil
}

// replace swaps the whole set (the CertificateManager's refresh).
func (v *CertificateVerifier) replace(entries []*certEntry) {
	m := make(map[string]*certEntry, len(entries))
	for _, e := range entries {
		m[wxcrypto.NormalizeSerial(e.serial)] = e
	}
	v.mu.Lock()
	v.set.Store(&m)
	v.mu.Unlock()
}

// entries returns the current set; a zero CertificateVerifier is empty.
func (v *CertificateVerifier) entries() map[string]*certEntry {
	if p := v.set.Load(); p != nil {
		return *p
	}
	return nil
}

// clock returns the verifier's time; a zero CertificateVerifier uses time.Now.
func (v *CertificateVerifier) clock() time.Time {
	if v.now == nil {
		return time.Now()
	}
	return v.now()
}

func (v *CertificateVerifier) lookup(serial string) *certEntry {
	return v.entries()[wxcrypto.NormalizeSerial(serial)]
}

// Certificates returns the certificates held, in no particular order.
func (v *CertificateVerifier) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, e := range v.entries() {
		if e.cert != nil {
			out = append(out, e.cert)
		}
	}
	return out
}

// Serials returns the serials held, in no particular order.
func (v *CertificateVerifier) Serials() []string {
	var out []string
	for _, e := range v.entries() {
		out = append(out, e.serial)
	}
	return out
}

// Verify implements Verifier.
func (v *CertificateVerifier) Verify(_ context.Context, serial, timestamp, nonce string, body []byte, signature string) error {
	e := v.lookup(serial)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownSerial, serial)
	}
	if e.cert != nil {
		if now := v.clock(); now.Before(e.cert.NotBefore) || now.After(e.cert.NotAfter) {
			return fmt.Errorf("%w: platform certificate %s is valid from %s to %s", ErrSignature, e.serial,
				e.cert.NotBefore.Format(time.RFC3339), e.cert.NotAfter.Format(time.RFC3339))
		}
	}
	return verifyWith(e.key, serial, timestamp, nonce, body, signature)
}

// EncryptionKey implements Encrypter: the currently valid certificate that
// expires last (WeChat Pay's advice: encrypt with the newest certificate).
func (v *CertificateVerifier) EncryptionKey() (string, *rsa.PublicKey, error) {
	now := v.clock()
	var best *certEntry
	for _, e := range v.entries() {
		if e.cert == nil || now.Before(e.cert.NotBefore) || now.After(e.cert.NotAfter) {
			continue
		}
		if best == nil || e.cert.NotAfter.After(best.cert.NotAfter) {
			best = e
		}
	}
	if best == nil {
		return "", nil, errors.New("apiv3: no valid platform certificate to encrypt with")
	}
	return best.serial, best.key, nil
}

func (v *CertificateVerifier) verifierKeys() []verifierKey {
	var out []verifierKey
	for _, e := range v.entries() {
		out = append(out, verifierKey{e.serial, e.key})
	}
	return out
}

// MultiVerifier verifies with both kinds of key during a migration from
// platform certificates to the WeChat Pay public key (protocol.md §13.3,
// reliability.md F3): for about 7 days WeChat Pay signs with either, in a
// rising proportion. Messages whose Wechatpay-Serial starts with
// PUB_KEY_ID_ go to PublicKey, the others to Certificates. A nil member
// fails its messages with ErrUnknownSerial.
type MultiVerifier struct {
	PublicKey    Verifier // usually a *PublicKeyVerifier
	Certificates Verifier // usually a *CertificateManager or *CertificateVerifier
}

// Verify implements Verifier.
func (m *MultiVerifier) Verify(ctx context.Context, serial, timestamp, nonce string, body []byte, signature string) error {
	v := m.Certificates
	if strings.HasPrefix(serial, PublicKeyIDPrefix) {
		v = m.PublicKey
	}
	if v == nil {
		return fmt.Errorf("%w: %q (no verifier for this kind of key)", ErrUnknownSerial, serial)
	}
	return v.Verify(ctx, serial, timestamp, nonce, body, signature)
}

// EncryptionKey implements Encrypter: the public key when there is one
// (the target of the migration), else the newest certificate.
func (m *MultiVerifier) EncryptionKey() (string, *rsa.PublicKey, error) {
	for _, v := range []Verifier{m.PublicKey, m.Certificates} {
		if e, ok := v.(Encrypter); ok && v != nil {
			if s, k, err := e.EncryptionKey(); err == nil {
				return s, k, nil
			}
		}
	}
	return "", nil, errors.New("apiv3: no key to encrypt with")
}

func (m *MultiVerifier) verifierKeys() []verifierKey {
	var out []verifierKey
	for _, v := range []Verifier{m.PublicKey, m.Certificates} {
		if l, ok := v.(keyLister); ok && v != nil {
			out = append(out, l.verifierKeys()...)
		}
	}
	return out
}
