package apiv3

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

var epCertificates = &endpoint{name: "certificates", method: "GET", safe: safeAlways, selfVerified: true}

// Defaults of a CertificateManager.
const (
	// DefaultRefreshInterval is how often the certificates are downloaded.
	DefaultRefreshInterval = 12 * time.Hour
	// DefaultUnknownSerialInterval is the least time between two downloads
	// caused by an unknown Wechatpay-Serial (reliability.md F3, N11).
	DefaultUnknownSerialInterval = time.Minute
)

// CertificateAAD is the associated_data of every encrypted platform
// certificate (protocol.md §13.3); another value is refused.
const CertificateAAD = "certificate"

// ErrUntrustedCertificates means a certificate download is refused: it is
// not signed by a trusted key, or it holds a certificate that contradicts
// one already trusted (same serial, another key), or the merchant's own.
var ErrUntrustedCertificates = errors.New("apiv3: platform certificate download refused")

// CertificateManager keeps the platform certificates (protocol.md §13.3):
// it downloads GET /v3/certificates when started and then every refresh
// interval (default 12 h), decrypts each certificate with the APIv3 key
// (AEAD_AES_256_GCM, associated_data "certificate"), checks it (an RSA key
// of 2048 bits or more, its serial, not expired, not the merchant's own
// certificate) and keeps every one by serial, so that both certificates of
// a rotation verify (reliability.md F3). It is a Verifier: a message with a
// serial it does not hold causes at most one download per unknown-serial
// interval (default 1 min), which concurrent verifications share — a flood
// of forged serials never becomes a flood of downloads (reliability.md N11).
//
// The caller owns it: Start it, give it to a Client with WithVerifier (or
// to a MultiVerifier), and Stop it. There is no global state.
//
// Trust. The download's answer is verified too: with the trusted key its
// Wechatpay-Serial names — a certificate already held (from an earlier
// download) or pinned with WithTrustedCertificate or WithTrustedKey. When
// the serial is not trusted: with pins, the download is refused; without
// pins (the first download, or a rotation the manager missed), the answer
// is verified with the downloaded certificate of that serial —
// trust-on-first-use, whose only guarantee is the APIv3 key: whoever knows
// it can make certificates that decrypt. Pin a certificate (or key) you
// fetched out of band, e.g. with WeChat's certificate tool, to remove that
// gap; the pinned certificate's successors are then accepted only when the
// download is signed by a trusted key.
type CertificateManager struct {
	c          *Client
	aead       *wxcrypto.AEAD
	store      *CertificateVerifier
	pins       []*certEntry
	interval   time.Duration
	minUnknown time.Duration

	mu          sync.Mutex // guards the fields below
	lastUnknown time.Time
	inflight    chan struct{}
	running     bool
	life        context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	refreshMu sync.Mutex // one download at a time
}

// ManagerOption configures a CertificateManager.
type ManagerOption func(*managerOptions) error

type managerOptions struct {
	interval, minUnknown time.Duration
	pins                 []*certEntry
}

// WithRefreshInterval sets how often the certificates are downloaded
// (default DefaultRefreshInterval). After a failed download the next try
// comes sooner: after five unknown-serial intervals, or the refresh
// interval if that is shorter.
func WithRefreshInterval(d time.Duration) ManagerOption {
	return func(o *managerOptions) error {
		if d <= 0 {
			return errors.New("apiv3: refresh interval must be positive")
		}
		o.interval = d
		return nil
	}
}

// WithUnknownSerialInterval sets the least time between two downloads
// caused by an unknown serial (default DefaultUnknownSerialInterval).
func WithUnknownSerialInterval(d time.Duration) ManagerOption {
	return func(o *managerOptions) error {
		if d <= 0 {
			return errors.New("apiv3: unknown-serial interval must be positive")
		}
		o.minUnknown = d
		return nil
	}
}

// WithTrustedCertificate pins a platform certificate obtained out of band:
// it verifies messages, and certificate downloads must be signed by a
// trusted key.
func WithTrustedCertificate(cert *x509.Certificate) ManagerOption {
	return func(o *managerOptions) error {
		e, err := certEntryOf(cert)
		if err != nil {
			return err
		}
		o.pins = append(o.pins, e)
		return nil
	}
}

// WithTrustedKey pins a platform key by serial, for when only the public
// key is at hand; like WithTrustedCertificate, without validity dates.
func WithTrustedKey(serial string, key *rsa.PublicKey) ManagerOption {
	return func(o *managerOptions) error {
		if !wxcrypto.IsHexSerial(serial) || key == nil || key.N.BitLen() < wxcrypto.MinRSABits {
			return errors.New("apiv3: a trusted key needs a hex serial and an RSA key of at least 2048 bits")
		}
		o.pins = append(o.pins, &certEntry{serial: strings.ToUpper(serial), key: key})
		return nil
	}
}

// NewCertificateManager returns a manager that downloads with client. The
// client needs no Verifier (the manager verifies its own downloads); the
// usual bootstrap is:
//
//	boot, err := apiv3.NewClient(cfg)                 // cfg.Verifier nil
//	mgr, err := apiv3.NewCertificateManager(boot, cfg.APIv3Key)
//	err = mgr.Start(ctx)                              // first download
//	defer mgr.Stop()
//	client, err := boot.WithVerifier(mgr)             // use this one
//
// apiV3Key decrypts the certificates; empty means the client's.
func NewCertificateManager(client *Client, apiV3Key wxpay.Secret, opts ...ManagerOption) (*CertificateManager, error) {
	if client == nil {
		return nil, errors.New("apiv3: nil client")
	}
	o := managerOptions{interval: DefaultRefreshInterval, minUnknown: DefaultUnknownSerialInterval}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if apiV3Key == "" {
		apiV3Key = client.cfg.APIv3Key
	}
	aead, err := wxcrypto.NewAEAD(apiV3Key)
	if err != nil {
		return nil, err
	}
	for _, p := range o.pins {
		if err := client.checkNotMerchant(p.serial, p.key); err != nil {
			return nil, err
		}
	}
	m := &CertificateManager{c: client, aead: aead, pins: o.pins, interval: o.interval, minUnknown: o.minUnknown,
		store: &CertificateVerifier{now: client.now}}
	m.store.replace(o.pins)
	return m, nil
}

// Start downloads the certificates once, and returns its error; on success
// it refreshes them in the background every refresh interval until Stop is
// called or ctx is cancelled. Starting twice is an error.
func (m *CertificateManager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("apiv3: certificate manager already started")
	}
	m.mu.Unlock()
	if err := m.Refresh(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return errors.New("apiv3: certificate manager already started")
	}
	m.life, m.cancel = context.WithCancel(ctx)
	m.running = true
	m.wg.Add(1)
	go m.loop(m.life)
	return nil
}

func (m *CertificateManager) loop(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTimer(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := m.interval
		if err := m.refreshWithTimeout(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.c.log.LogAttrs(ctx, slog.LevelWarn, "wxpay v3: platform certificate refresh failed", slog.String("error", err.Error()))
			next = min(m.interval, 5*m.minUnknown)
		}
		t.Reset(next)
	}
}

func (m *CertificateManager) refreshWithTimeout(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	return m.Refresh(ctx)
}

// Stop ends the background refreshes and waits for a download in flight.
// Verification keeps working with the certificates held. Stop may be
// called more than once, and before Start.
func (m *CertificateManager) Stop() {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	m.running = false
	m.mu.Unlock()
	m.wg.Wait()
}

// Certificates returns the certificates held (the pinned ones included).
func (m *CertificateManager) Certificates() []*x509.Certificate { return m.store.Certificates() }

// Serials returns the serials held.
func (m *CertificateManager) Serials() []string { return m.store.Serials() }

// EncryptionKey implements Encrypter: the newest valid certificate.
func (m *CertificateManager) EncryptionKey() (string, *rsa.PublicKey, error) {
	return m.store.EncryptionKey()
}

func (m *CertificateManager) verifierKeys() []verifierKey { return m.store.verifierKeys() }

// Verify implements Verifier. A serial it does not hold — and that looks
// like a certificate serial — triggers a download if none was triggered in
// the last unknown-serial interval and the manager is running; concurrent
// callers wait for that one download (or their context), then look again.
func (m *CertificateManager) Verify(ctx context.Context, serial, timestamp, nonce string, body []byte, signature string) error {
	err := m.store.Verify(ctx, serial, timestamp, nonce, body, signature)
	if err == nil || !errors.Is(err, ErrUnknownSerial) || !wxcrypto.IsHexSerial(serial) {
		return err
	}
	if !m.refreshForUnknown(ctx) {
		return err
	}
	return m.store.Verify(ctx, serial, timestamp, nonce, body, signature)
}

// refreshForUnknown joins the download in flight, or starts one if the
// interval allows, and reports whether a download finished meanwhile.
func (m *CertificateManager) refreshForUnknown(ctx context.Context) bool {
	m.mu.Lock()
	ch := m.inflight
	if ch == nil {
		now := m.c.now()
		if !m.running || (!m.lastUnknown.IsZero() && now.Sub(m.lastUnknown) < m.minUnknown) {
			m.mu.Unlock()
			return false
		}
		m.lastUnknown = now
		ch = make(chan struct{})
		m.inflight = ch
		life := m.life
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.refreshWithTimeout(life); err != nil {
				m.c.log.LogAttrs(life, slog.LevelWarn, "wxpay v3: platform certificate download for an unknown serial failed",
					slog.String("error", err.Error()))
			}
			m.mu.Lock()
			m.inflight = nil
			m.mu.Unlock()
			close(ch)
		}()
	}
	m.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// certificateList is the answer of GET /v3/certificates.
type certificateList struct {
	Data []struct {
		SerialNo      string `json:"serial_no"`
		EffectiveTime string `json:"effective_time"`
		ExpireTime    string `json:"expire_time"`
		Encrypt       struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"encrypt_certificate"`
	} `json:"data"`
}

// Refresh downloads, checks and installs the certificates now. On error
// the certificates held are kept.
func (m *CertificateManager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	a, err := m.c.call(ctx, epCertificates, "/v3/certificates", nil, "")
	if err != nil {
		return err
	}
	entries, err := m.check(ctx, a)
	if err != nil {
		return &Error{API: epCertificates.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID), Err: err}
	}
	m.store.replace(append(entries, m.pins...))
	return nil
}

// check decrypts and checks a certificate list and verifies its answer.
func (m *CertificateManager) check(ctx context.Context, a *answer) ([]*certEntry, error) {
	var list certificateList
	if err := json.Unmarshal(a.body, &list); err != nil {
		return nil, fmt.Errorf("certificate list does not decode: %w", err)
	}
	now := m.c.now()
	downloaded := map[string]*certEntry{}
	var entries []*certEntry
	for _, d := range list.Data {
		enc := d.Encrypt
		if enc.Algorithm != wxcrypto.AEADAlgorithm || enc.AssociatedData != CertificateAAD {
			return nil, fmt.Errorf("certificate %s: algorithm %q, associated_data %q", d.SerialNo, enc.Algorithm, enc.AssociatedData)
		}
		pemBytes, err := m.aead.Open(enc.Nonce, CertificateAAD, enc.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("certificate %s does not decrypt with the APIv3 key: %w", d.SerialNo, err)
		}
		cert, err := wxcrypto.ParseCertificate(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", d.SerialNo, err)
		}
		e, err := certEntryOf(cert)
		if err != nil {
			return nil, err
		}
		if !wxcrypto.SameSerial(e.serial, d.SerialNo) {
			return nil, fmt.Errorf("certificate listed as %s has serial %s", d.SerialNo, e.serial)
		}
		if err := m.c.checkNotMerchant(e.serial, e.key); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUntrustedCertificates, err)
		}
		if old := m.store.lookup(e.serial); old != nil && !old.key.Equal(e.key) {
			return nil, fmt.Errorf("%w: certificate %s has another key than the one trusted", ErrUntrustedCertificates, e.serial)
		}
		if now.After(cert.NotAfter) {
			continue // expired: not kept
		}
		downloaded[wxcrypto.NormalizeSerial(e.serial)] = e
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, errors.New("the certificate list holds no valid certificate")
	}
	signer := headerValue(a.header, HeaderSerial)
	key := m.trusted(signer, now)
	if key == nil {
		if len(m.pins) > 0 {
			return nil, fmt.Errorf("%w: signed by %q, which is not a trusted key", ErrUntrustedCertificates, signer)
		}
		// Trust on first use: see the type's documentation.
		if e := downloaded[wxcrypto.NormalizeSerial(signer)]; e != nil {
			key = e.key
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: signed by %q, which is neither trusted nor in the list", ErrUntrustedCertificates, signer)
	}
	v := &PublicKeyVerifier{ID: signer, Key: key}
	if err := checkSigned(ctx, v, now, a.header, a.body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrustedCertificates, err)
	}
	return entries, nil
}

// trusted returns the key of a serial held (pinned, or from an earlier
// download and within its dates), or nil.
func (m *CertificateManager) trusted(serial string, now time.Time) *rsa.PublicKey {
	e := m.store.lookup(serial)
	if e == nil || (e.cert != nil && (now.Before(e.cert.NotBefore) || now.After(e.cert.NotAfter))) {
		return nil
	}
	return e.key
}
