package apiv3

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// testClock is a clock the test moves.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(testNow.UnixNano())
	return c
}

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()).In(wxpay.China) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) option() Option      { return WithClock(c.now) }

// certFake serves GET /v3/certificates.
type certFake struct {
	*fakeWeChat
	clock     *testClock
	mu        sync.Mutex
	certs     []*x509.Certificate
	aad       string
	apiV3Key  wxpay.Secret
	listedAs  map[string]string // serial_no to announce instead of the real one
	downloads atomic.Int64
	delay     time.Duration
}

func newCertFake(t *testing.T, clock *testClock, certs ...*x509.Certificate) *certFake {
	f := &certFake{fakeWeChat: newFake(t), clock: clock, certs: certs, aad: CertificateAAD, apiV3Key: testAPIv3Key}
	f.setSigner(platformKey(t), platformSerial)
	f.fakeWeChat.clock = clock.now
	f.mux.HandleFunc("GET /v3/certificates", func(w http.ResponseWriter, r *http.Request) {
		f.downloads.Add(1)
		f.mu.Lock()
		certs, aad, key, delay := f.certs, f.aad, f.apiV3Key, f.delay
		f.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		type enc struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		}
		type item struct {
			SerialNo      string `json:"serial_no"`
			EffectiveTime string `json:"effective_time"`
			ExpireTime    string `json:"expire_time"`
			Enc           enc    `json:"encrypt_certificate"`
		}
		var list struct {
			Data []item `json:"data"`
		}
		for i, c := range certs {
			nonce := "certnonce" + strconv.Itoa(100+i)
			ct, err := wxcrypto.EncryptAEAD(key, nonce, aad, certPEM(c))
			if err != nil {
				t.Error(err)
			}
			serial := wxcrypto.CertificateSerial(c)
			if s, ok := f.listedAs[serial]; ok {
				serial = s
			}
			list.Data = append(list.Data, item{SerialNo: serial, EffectiveTime: c.NotBefore.Format(time.RFC3339),
				ExpireTime: c.NotAfter.Format(time.RFC3339), Enc: enc{"AEAD_AES_256_GCM", nonce, aad, ct}})
		}
		body, _ := json.Marshal(list)
		f.reply(w, 200, string(body))
	})
	return f
}

func (f *certFake) setCerts(certs ...*x509.Certificate) {
	f.mu.Lock()
	f.certs = certs
	f.mu.Unlock()
}

// bootClient is a client of f without a Verifier, on clock.
func bootClient(t *testing.T, f *fakeWeChat, clock *testClock) *Client {
	t.Helper()
	c, err := NewClient(testConfig(t), WithBaseURL(f.srv.URL), clock.option(), WithNonce(fixedNonce))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startManager(t *testing.T, f *certFake, opts ...ManagerOption) (*Client, *CertificateManager) {
	t.Helper()
	boot := bootClient(t, f.fakeWeChat, f.clock)
	m, err := NewCertificateManager(boot, testAPIv3Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	c, err := boot.WithVerifier(m)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func TestCertificateManagerBootstrap(t *testing.T) {
	clock := newTestClock()
	f := newCertFake(t, clock, platformCert(t))
	f.handle("GET /v3/pay/transactions/out-trade-no/{no}", 200, string(ourTransaction))
	c, m := startManager(t, f)
	if s := m.Serials(); len(s) != 1 || s[0] != platformSerial {
		t.Fatalf("serials %v", s)
	}
	if len(m.Certificates()) != 1 {
		t.Error("certificates")
	}
	tx, err := c.QueryByOutTradeNo(context.Background(), testOutTradeNo)
	if err != nil || tx.OutTradeNo != testOutTradeNo {
		t.Fatalf("%+v %v", tx, err)
	}
	if s, _, err := m.EncryptionKey(); err != nil || s != platformSerial {
		t.Errorf("encryption key %s %v", s, err)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Error("started twice")
	}
}

// reliability.md F3: during a rotation messages signed with the old and
// the new certificate both verify; after it, only the new one.
func TestCertificateRotation(t *testing.T) {
	clock := newTestClock()
	old := makeCert(t, platformKey(t), platformSerial, testNow.AddDate(-5, 0, 0), testNow.Add(48*time.Hour))
	next := makeCert(t, platform2Key(t), platform2Serial, testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0))
	f := newCertFake(t, clock, old)
	c, m := startManager(t, f)
	body := ourTransaction
	verify := func(serial string) error {
		return c.VerifySignature(context.Background(), signedHeaderAt(t, serial, body, clock), body)
	}
	if err := verify(platformSerial); err != nil {
		t.Fatal(err)
	}
	// The new certificate appears in the list; the download is still
	// signed with the old one.
	f.setCerts(old, next)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		serial := []string{platformSerial, platform2Serial}[i%2]
		if err := verify(serial); err != nil {
			t.Fatalf("message %d by %s: %v", i, serial, err)
		}
	}
	// WeChat switches to the new certificate, the old one expires.
	f.setSigner(platform2Key(t), platform2Serial)
	f.setCerts(next)
	clock.add(72 * time.Hour)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verify(platform2Serial); err != nil {
		t.Error(err)
	}
	if err := verify(platformSerial); !errors.Is(err, ErrUnknownSerial) && !errors.Is(err, ErrSignature) {
		t.Errorf("old after expiry: %v", err)
	}
	if s, _, _ := m.EncryptionKey(); s != platform2Serial {
		t.Errorf("encryption key %s", s)
	}
}

// signedHeaderAt signs body with the key of serial at clock's time.
func signedHeaderAt(t testing.TB, serial string, body []byte, clock *testClock) http.Header {
	h := signedBy(t, serial, body, time.Duration(clock.now().Unix()-testNow.Unix())*time.Second)
	return h
}

// reliability.md F3, N11: an unknown serial sent 1000 times — at once and
// one after the other — causes at most one download per interval, which
// the concurrent callers share.
func TestUnknownSerialStorm(t *testing.T) {
	clock := newTestClock()
	f := newCertFake(t, clock, platformCert(t))
	c, _ := startManager(t, f, WithUnknownSerialInterval(time.Minute))
	start := f.downloads.Load()
	f.mu.Lock()
	f.delay = 50 * time.Millisecond // keep the download in flight while the callers pile up
	f.mu.Unlock()
	body := ourTransaction
	h := signedHeaderAt(t, platformSerial, body, clock)
	h.Set(HeaderSerial, "ABCDEF0123456789ABCDEF0123456789ABCDEF01")
	var wg sync.WaitGroup
	var unknown atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errors.Is(c.VerifySignature(context.Background(), h, body), ErrUnknownSerial) {
				unknown.Add(1)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 1000; i++ {
		if err := c.VerifySignature(context.Background(), h, body); !errors.Is(err, ErrUnknownSerial) {
			t.Fatalf("sequential %d: %v", i, err)
		}
	}
	if n := f.downloads.Load() - start; n > 1 {
		t.Errorf("%d downloads for 2000 unknown serials, want at most 1", n)
	}
	if unknown.Load() != 1000 {
		t.Errorf("%d of 1000 refused", unknown.Load())
	}
	// Serials that cannot be certificate serials never download.
	h2 := h.Clone()
	h2.Set(HeaderSerial, "not-a-serial")
	clock.add(2 * time.Minute)
	c.VerifySignature(context.Background(), h2, body)
	if n := f.downloads.Load() - start; n > 1 {
		t.Errorf("a junk serial downloaded (%d)", n)
	}
	// After the interval, one more.
	h = signedHeaderAt(t, platformSerial, body, clock)
	h.Set(HeaderSerial, "ABCDEF0123456789ABCDEF0123456789ABCDEF01")
	for i := 0; i < 100; i++ {
		c.VerifySignature(context.Background(), h, body)
	}
	if n := f.downloads.Load() - start; n != 2 {
		t.Errorf("%d downloads after the interval, want 2", n)
	}
}

// A certificate WeChat starts using before the scheduled refresh is picked
// up by the download an unknown serial triggers.
func TestUnknownSerialFindsNewCertificate(t *testing.T) {
	clock := newTestClock()
	old := platformCert(t)
	f := newCertFake(t, clock, old)
	c, _ := startManager(t, f)
	next := makeCert(t, platform2Key(t), platform2Serial, testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0))
	f.setCerts(old, next)
	body := ourTransaction
	if err := c.VerifySignature(context.Background(), signedHeaderAt(t, platform2Serial, body, clock), body); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateDownloadRefusals(t *testing.T) {
	third := makeCert(t, platform2Key(t), platform2Serial, testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0))
	own, _ := wxcrypto.ParseCertificate(readTestdata(t, "merchant_cert.pem"))
	cases := map[string]func(f *certFake){
		"AAD not certificate": func(f *certFake) { f.aad = "transaction" },
		"wrong APIv3 key":     func(f *certFake) { f.apiV3Key = "0123456789abcdef0123456789abcdef" },
		"serial mismatch":     func(f *certFake) { f.listedAs = map[string]string{platformSerial: platform2Serial} },
		"merchant's own":      func(f *certFake) { f.certs = append(f.certs, own) },
		"expired only": func(f *certFake) {
			f.certs = []*x509.Certificate{makeCert(t, platformKey(t), platformSerial, testNow.AddDate(-3, 0, 0), testNow.AddDate(-1, 0, 0))}
		},
		"empty list":                  func(f *certFake) { f.certs = nil },
		"signed by a serial not held": func(f *certFake) { f.setSigner(platform2Key(t), platform2Serial) },
		"signature does not verify":   func(f *certFake) { f.setSigner(platform2Key(t), platformSerial) },
		"signed by the listed third":  func(f *certFake) { f.certs = []*x509.Certificate{third}; f.setSigner(platformKey(t), platformSerial) },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			f := newCertFake(t, clock, platformCert(t))
			mod(f)
			boot := bootClient(t, f.fakeWeChat, clock)
			m, err := NewCertificateManager(boot, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(context.Background()); err == nil {
				t.Fatalf("accepted; serials %v", m.Serials())
			}
			if len(m.Serials()) != 0 {
				t.Errorf("serials %v kept", m.Serials())
			}
		})
	}
	// The merchant's own certificate in a download is named as such.
	clock := newTestClock()
	f := newCertFake(t, clock, platformCert(t), own)
	m, _ := NewCertificateManager(bootClient(t, f.fakeWeChat, clock), "")
	if err := m.Start(context.Background()); !errors.Is(err, ErrMerchantCertificate) || !errors.Is(err, ErrUntrustedCertificates) {
		t.Errorf("own certificate: %v", err)
	}
	// A failed refresh keeps what was held.
	f = newCertFake(t, clock, platformCert(t))
	_, m = startManager(t, f)
	f.setCerts(makeCert(t, platform2Key(t), platformSerial, testNow.AddDate(-1, 0, 0), testNow.AddDate(1, 0, 0)))
	if err := m.Refresh(context.Background()); !errors.Is(err, ErrUntrustedCertificates) {
		t.Errorf("same serial, another key: %v", err)
	}
	if s := m.Serials(); len(s) != 1 || s[0] != platformSerial {
		t.Errorf("serials %v after a failed refresh", s)
	}
}

// With a pinned certificate, a download signed by a key neither pinned nor
// held is refused, even if it lists that key (no trust on first use).
func TestPinnedCertificate(t *testing.T) {
	clock := newTestClock()
	pinned := platformCert(t)
	next := makeCert(t, platform2Key(t), platform2Serial, testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0))
	f := newCertFake(t, clock, pinned, next)
	boot := bootClient(t, f.fakeWeChat, clock)
	m, err := NewCertificateManager(boot, "", WithTrustedCertificate(pinned))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if len(m.Serials()) != 2 {
		t.Errorf("serials %v", m.Serials())
	}
	// Signed by the new certificate, now held: accepted.
	f.setSigner(platform2Key(t), platform2Serial)
	if err := m.Refresh(context.Background()); err != nil {
		t.Errorf("signed by a held certificate: %v", err)
	}
	// A pinned key alone.
	f2 := newCertFake(t, clock, next)
	f2.setSigner(platform2Key(t), platform2Serial)
	m2, err := NewCertificateManager(bootClient(t, f2.fakeWeChat, clock), "", WithTrustedKey(platformSerial, &platformKey(t).PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Start(context.Background()); !errors.Is(err, ErrUntrustedCertificates) {
		t.Errorf("pinned key, signed by another: %v", err)
	}
	if _, err := NewCertificateManager(boot, "", WithTrustedKey("not hex", &platformKey(t).PublicKey)); err == nil {
		t.Error("bad pin accepted")
	}
}

func TestManagerLoop(t *testing.T) {
	clock := newTestClock()
	f := newCertFake(t, clock, platformCert(t))
	boot := bootClient(t, f.fakeWeChat, clock)
	m, err := NewCertificateManager(boot, "", WithRefreshInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m.Stop() // before Start: harmless
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.downloads.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f.downloads.Load() < 4 {
		t.Fatalf("%d downloads", f.downloads.Load())
	}
	m.Stop()
	m.Stop()
	n := f.downloads.Load()
	time.Sleep(50 * time.Millisecond)
	if f.downloads.Load() != n {
		t.Error("downloads after Stop")
	}
	// A stopped manager still verifies, and does not download for unknown
	// serials.
	c, _ := boot.WithVerifier(m)
	body := ourTransaction
	if err := c.VerifySignature(context.Background(), signedHeaderAt(t, platformSerial, body, clock), body); err != nil {
		t.Error(err)
	}
	h := signedHeaderAt(t, platformSerial, body, clock)
	h.Set(HeaderSerial, "ABCDEF")
	c.VerifySignature(context.Background(), h, body)
	if f.downloads.Load() != n {
		t.Error("a stopped manager downloaded")
	}
	// Cancelling Start's context ends the loop too.
	ctx, cancel := context.WithCancel(context.Background())
	m2, _ := NewCertificateManager(boot, "", WithRefreshInterval(10*time.Millisecond))
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	m2.Stop()
	for _, o := range []ManagerOption{WithRefreshInterval(0), WithUnknownSerialInterval(-1), WithTrustedCertificate(nil)} {
		if _, err := NewCertificateManager(boot, "", o); err == nil {
			t.Error("bad option accepted")
		}
	}
	if _, err := NewCertificateManager(nil, ""); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := NewCertificateManager(boot, "short"); err == nil {
		t.Error("short APIv3 key accepted")
	}
}
