package wxsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// v3KeyCache holds the RSA keys the simulator generated, by pool, for the
// life of the process: a 2048-bit key takes a tenth of a second or more,
// and every Simulator of a test binary can share them.
var v3KeyCache struct {
	mu   sync.Mutex
	keys map[string][]*rsa.PrivateKey
}

// cachedKey returns the i-th generated key of pool.
func cachedKey(pool string, i int) (*rsa.PrivateKey, error) {
	v3KeyCache.mu.Lock()
	defer v3KeyCache.mu.Unlock()
	if v3KeyCache.keys == nil {
		v3KeyCache.keys = make(map[string][]*rsa.PrivateKey)
	}
	for len(v3KeyCache.keys[pool]) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		v3KeyCache.keys[pool] = append(v3KeyCache.keys[pool], k)
	}
	return v3KeyCache.keys[pool][i], nil
}

// v3Issuer is the simulator's stand-in for WeChat Pay's certificate
// authority: it issues the platform certificates and the merchant API
// certificates the simulator generates. One per process.
var v3Issuer struct {
	once sync.Once
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	err  error
}

func issuer() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	v3Issuer.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			v3Issuer.err = err
			return
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          certSerial(),
			Subject:               pkix.Name{CommonName: "wxsim Tenpay.com Root CA", Organization: []string{"wxsim (WeChat Pay simulator)"}},
			NotBefore:             now.AddDate(-30, 0, 0),
			NotAfter:              now.AddDate(50, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			v3Issuer.err = err
			return
		}
		v3Issuer.cert, v3Issuer.err = x509.ParseCertificate(der)
		v3Issuer.key = key
	})
	return v3Issuer.cert, v3Issuer.key, v3Issuer.err
}

// certSerial is a random positive 160-bit serial whose hex form has 40
// digits, like WeChat's (e.g. 5157F09EFDC096DE15EBE81A47057A7232F1B8E1).
func certSerial() *big.Int {
	var b [20]byte
	_, _ = rand.Read(b[:])
	b[0] = 0x10 + b[0]%0x60
	return new(big.Int).SetBytes(b[:])
}

// issueCert issues an RSA certificate for key, valid from notBefore for
// years, named cn. It returns the PEM and the serial as WeChat writes it.
func issueCert(key *rsa.PrivateKey, cn string, ou []string, notBefore time.Time, years int) (pemBytes []byte, serial string, notAfter time.Time, err error) {
	ca, caKey, err := issuer()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	notAfter = notBefore.AddDate(years, 0, 0)
	tmpl := &x509.Certificate{
		SerialNumber: certSerial(),
		Subject: pkix.Name{CommonName: cn, Organization: []string{"Tenpay.com"}, OrganizationalUnit: ou,
			Country: []string{"CN"}, Locality: []string{"ShenZhen"}},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), wxcrypto.SerialString(tmpl.SerialNumber), notAfter, nil
}

// v3MerchantCert is a merchant API certificate registered with WeChat Pay.
type v3MerchantCert struct {
	serial  string
	pub     *rsa.PublicKey
	certPEM []byte
	cert    *x509.Certificate
	keyPEM  []byte // the private key, when the simulator issued it
}

// v3PlatformCert is a platform certificate (平台证书) with its key.
type v3PlatformCert struct {
	serial    string
	key       *rsa.PrivateKey
	certPEM   []byte
	effective time.Time
	expire    time.Time
}

// v3PublicKey is a WeChat Pay public key (微信支付公钥) with its private
// half.
type v3PublicKey struct {
	id     string
	key    *rsa.PrivateKey
	pubPEM []byte
}

// v3Signer is the key that signs one answer or notify.
type v3Signer struct {
	serial string // Wechatpay-Serial
	key    *rsa.PrivateKey
}

// v3State is the APIv3 side of a Simulator.
type v3State struct {
	s         *Simulator
	merchants map[string]*v3Merchant // fixed after New

	mu             sync.Mutex // guards the fields below; taken after v3Merchant.mu
	skew           time.Duration
	probeResponses float64
	probeNotifies  float64
	rng            *mrand.Rand
	next           map[string]int // key pool -> next index
	bills          map[string]*v3BillFile
}

// v3Merchant is one merchant's APIv3 state.
type v3Merchant struct {
	st            *v3State
	m             *merchant
	apiV3Key      string
	aead          *wxcrypto.AEAD
	pubKeyID      string
	publicKeyOnly bool

	mu       sync.Mutex
	ready    bool              // the first platform certificate or public key exists
	certs    []*v3MerchantCert // the registered merchant API certificates
	platform []*v3PlatformCert // oldest first
	newShare float64           // how often the newest certificate signs rather than the one before it
	pub      *v3PublicKey
	pubShare float64 // how often the public key signs rather than a certificate
}

// initV3 prepares the APIv3 state; keys are made lazily.
func (s *Simulator) initV3() error {
	st := &s.v3
	st.s = s
	st.merchants = make(map[string]*v3Merchant)
	st.skew = s.cfg.V3.ClockSkew
	seed := s.cfg.Seed
	st.rng = mrand.New(mrand.NewPCG(seed^0x5bd1e995, seed+0x27d4eb2f165667c5))
	st.next = make(map[string]int)
	st.bills = make(map[string]*v3BillFile)
	for _, mc := range s.cfg.Merchants {
		key := mc.V3.APIv3Key
		if key == "" {
			key = derivedAPIv3Key(mc.APIKey)
		}
		aead, err := wxcrypto.NewAEAD(wxpay.Secret(key))
		if err != nil {
			return fmt.Errorf("wxsim: merchant %s: %w", mc.MchID, err)
		}
		vm := &v3Merchant{st: st, m: s.merchants[mc.MchID], apiV3Key: key, aead: aead,
			pubKeyID: mc.V3.PublicKeyID, publicKeyOnly: mc.V3.PublicKeyOnly, newShare: 1}
		if vm.pubKeyID == "" {
			vm.pubKeyID = defaultPublicKeyID(mc.MchID)
		}
		if len(mc.V3.CertificatePEM) > 0 {
			certs, err := parseMerchantCerts(mc.V3.CertificatePEM)
			if err != nil {
				return fmt.Errorf("wxsim: merchant %s: %w", mc.MchID, err)
			}
			vm.certs = certs
		}
		st.merchants[mc.MchID] = vm
	}
	return nil
}

// chance reports true with probability p.
func (st *v3State) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rng.Float64() < p
}

// now is WeChat Pay's clock: the simulator clock plus the skew.
func (st *v3State) now() time.Time {
	st.mu.Lock()
	skew := st.skew
	st.mu.Unlock()
	return st.s.clock.Now().Add(skew)
}

// key returns the next key of pool ("platform", "pubkey", "merchant"):
// the configured ones first, then generated ones.
func (st *v3State) key(pool string) (*rsa.PrivateKey, error) {
	st.mu.Lock()
	i := st.next[pool]
	st.next[pool]++
	st.mu.Unlock()
	var configured [][]byte
	switch pool {
	case "platform":
		configured = st.s.cfg.V3.PlatformKeys
	case "pubkey":
		configured = st.s.cfg.V3.PublicKeyKeys
	}
	if i < len(configured) {
		return wxcrypto.ParsePrivateKey(configured[i])
	}
	return cachedKey(pool, i-len(configured))
}

// v3Merchant returns the APIv3 state of mchID, or nil.
func (s *Simulator) v3Merchant(mchID string) *v3Merchant { return s.v3.merchants[mchID] }

// ensureLocked makes the first platform certificate (or, for a
// public-key-only merchant, the public key). vm.mu must be held.
func (vm *v3Merchant) ensureLocked() error {
	if vm.ready {
		return nil
	}
	if vm.publicKeyOnly {
		if err := vm.makePublicKeyLocked(); err != nil {
			return err
		}
		vm.pubShare = 1
	} else if _, err := vm.issuePlatformLocked(); err != nil {
		return err
	}
	vm.ready = true
	return nil
}

// issuePlatformLocked issues a new platform certificate, effective now
// (simulator clock) for five years.
func (vm *v3Merchant) issuePlatformLocked() (*v3PlatformCert, error) {
	key, err := vm.st.key("platform")
	if err != nil {
		return nil, err
	}
	now := vm.st.s.clock.Now().Truncate(time.Second)
	certPEM, serial, expire, err := issueCert(key, "Tenpay.com sign", []string{"Tenpay.com CA Center"}, now, 5)
	if err != nil {
		return nil, err
	}
	pc := &v3PlatformCert{serial: serial, key: key, certPEM: certPEM, effective: now, expire: expire}
	vm.platform = append(vm.platform, pc)
	return pc, nil
}

func (vm *v3Merchant) makePublicKeyLocked() error {
	if vm.pub != nil {
		return nil
	}
	key, err := vm.st.key("pubkey")
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	vm.pub = &v3PublicKey{id: vm.pubKeyID, key: key, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	return nil
}

// ensureMerchantCertLocked issues the merchant an API key and certificate
// when none is registered. vm.mu must be held.
func (vm *v3Merchant) ensureMerchantCertLocked() error {
	if len(vm.certs) > 0 {
		return nil
	}
	key, err := vm.st.key("merchant")
	if err != nil {
		return err
	}
	certPEM, _, _, err := issueCert(key, vm.m.cfg.MchID, []string{"wxsim merchant API certificate"}, vm.st.s.clock.Now().Add(-time.Hour).Truncate(time.Second), 5)
	if err != nil {
		return err
	}
	certs, err := parseMerchantCerts(certPEM)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certs[0].keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	vm.certs = certs
	return nil
}

// merchantCert returns the registered merchant API certificate named by
// serial, or nil.
func (vm *v3Merchant) merchantCert(serial string) *v3MerchantCert {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for _, c := range vm.certs {
		if wxcrypto.SameSerial(c.serial, serial) {
			return c
		}
	}
	return nil
}

// merchantKeys returns the public keys of the registered merchant API
// certificates.
func (vm *v3Merchant) merchantKeys() []*rsa.PublicKey {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	out := make([]*rsa.PublicKey, 0, len(vm.certs))
	for _, c := range vm.certs {
		out = append(out, c.pub)
	}
	return out
}

// isPlatformSerial reports whether serial names one of the merchant's
// platform certificates or its public key (what Wechatpay-Serial of a
// request may name).
func (vm *v3Merchant) isPlatformSerial(serial string) bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.pub != nil && serial == vm.pub.id {
		return true
	}
	for _, pc := range vm.platform {
		if wxcrypto.SameSerial(pc.serial, serial) {
			return true
		}
	}
	return false
}

// signer picks the key that signs the next answer or notify: the public
// key with probability pubShare; otherwise the newest platform
// certificate, or with probability 1 − newShare the one before it.
// certOnly (the certificate download) never picks the public key unless
// the merchant has no certificate.
func (vm *v3Merchant) signer(certOnly bool) (v3Signer, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.ensureLocked(); err != nil {
		return v3Signer{}, err
	}
	n := len(vm.platform)
	if vm.pub != nil && (n == 0 || !certOnly && vm.st.chance(vm.pubShare)) {
		return v3Signer{serial: vm.pub.id, key: vm.pub.key}, nil
	}
	if n == 0 {
		return v3Signer{}, errors.New("wxsim: the merchant has neither a platform certificate nor a public key")
	}
	pc := vm.platform[n-1]
	if n >= 2 && !vm.st.chance(vm.newShare) {
		pc = vm.platform[n-2]
	}
	return v3Signer{serial: pc.serial, key: pc.key}, nil
}

// v3Signature is the set of Wechatpay-* headers of a signed message.
type v3Signature struct {
	timestamp, nonce, signature, serial string
}

// sign signs body with signer at WeChat's clock; probe makes it a
// WECHATPAY/SIGNTEST/ probe signature that must fail verification.
func (st *v3State) sign(signer v3Signer, body []byte, probe bool) v3Signature {
	sig := v3Signature{
		timestamp: fmt.Sprint(st.now().Unix()),
		nonce:     randomString(alnum, 32),
		serial:    signer.serial,
	}
	if probe {
		var b [192]byte
		_, _ = rand.Read(b[:])
		sig.signature = v3ProbePrefix + base64.StdEncoding.EncodeToString(b[:])
		return sig
	}
	s, err := wxcrypto.SignV3Response(signer.key, sig.timestamp, sig.nonce, body)
	if err != nil {
		st.s.log.Error("wxsim: v3 signature failed", "err", err)
	}
	sig.signature = s
	return sig
}

// v3ProbePrefix starts WeChat's probe signatures (签名探测流量), which a
// merchant must refuse.
const v3ProbePrefix = "WECHATPAY/SIGNTEST/"

// V3Credentials is what a merchant needs to call the simulator's APIv3
// and verify its answers: the APIv3 key, the merchant API certificate
// (and its private key when the simulator issued it), the platform
// certificates and the WeChat Pay public key. It holds secrets: it is for
// tests and local tools only.
type V3Credentials struct {
	MchID    string `json:"mch_id"`
	APIv3Key string `json:"apiv3_key"`
	// CertSerial is the serial_no to sign requests with: the serial of
	// the (first) registered merchant API certificate.
	CertSerial string `json:"cert_serial"`
	CertPEM    string `json:"cert_pem"`
	// PrivateKeyPEM is the merchant API private key (PKCS#8), only when
	// the simulator issued it; a configured or CA-issued certificate's
	// key stays with whoever made it.
	PrivateKeyPEM string `json:"private_key_pem,omitempty"`
	// PlatformCertificates are the platform certificates, oldest first,
	// as GET /v3/certificates lists them (empty for a public-key-only
	// merchant).
	PlatformCertificates []V3PlatformCertificate `json:"platform_certificates"`
	// PublicKeyID and PublicKeyPEM are the WeChat Pay public key, once it
	// exists (PublicKeyOnly, or after SwitchToPublicKey).
	PublicKeyID  string `json:"public_key_id,omitempty"`
	PublicKeyPEM string `json:"public_key_pem,omitempty"`
	// PublicKeyShare is how often the public key signs (0 to 1);
	// NewCertificateShare how often the newest platform certificate
	// signs rather than the one before it.
	PublicKeyShare      float64 `json:"public_key_share"`
	NewCertificateShare float64 `json:"new_certificate_share"`
}

// V3PlatformCertificate is one platform certificate.
type V3PlatformCertificate struct {
	Serial        string    `json:"serial_no"`
	CertPEM       string    `json:"cert_pem"`
	EffectiveTime time.Time `json:"effective_time"`
	ExpireTime    time.Time `json:"expire_time"`
}

// ErrUnknownMerchant is returned for a mch id the simulator does not have.
var ErrUnknownMerchant = errors.New("wxsim: no such merchant")

// V3Credentials returns mchID's APIv3 credentials (mchID empty: the first
// merchant), issuing the merchant API key and certificate and the first
// platform certificate if they do not exist yet.
func (s *Simulator) V3Credentials(mchID string) (V3Credentials, error) {
	if mchID == "" {
		mchID = s.cfg.Merchants[0].MchID
	}
	vm := s.v3Merchant(mchID)
	if vm == nil {
		return V3Credentials{}, ErrUnknownMerchant
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.ensureMerchantCertLocked(); err != nil {
		return V3Credentials{}, err
	}
	if err := vm.ensureLocked(); err != nil {
		return V3Credentials{}, err
	}
	c := V3Credentials{MchID: mchID, APIv3Key: vm.apiV3Key, CertSerial: vm.certs[0].serial, CertPEM: string(vm.certs[0].certPEM),
		PrivateKeyPEM: string(vm.certs[0].keyPEM), PlatformCertificates: []V3PlatformCertificate{},
		PublicKeyShare: vm.pubShare, NewCertificateShare: vm.newShare}
	for _, pc := range vm.platform {
		c.PlatformCertificates = append(c.PlatformCertificates, V3PlatformCertificate{Serial: pc.serial, CertPEM: string(pc.certPEM),
			EffectiveTime: inCST(pc.effective), ExpireTime: inCST(pc.expire)})
	}
	if vm.pub != nil {
		c.PublicKeyID, c.PublicKeyPEM = vm.pub.id, string(vm.pub.pubPEM)
	}
	return c, nil
}

// v3Targets returns the merchants mchID names (every one when empty).
func (s *Simulator) v3Targets(mchID string) ([]*v3Merchant, error) {
	ms := s.merchantsByID(mchID)
	if len(ms) == 0 {
		return nil, ErrUnknownMerchant
	}
	out := make([]*v3Merchant, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.v3.merchants[m.cfg.MchID])
	}
	return out, nil
}

func checkShare(share float64) error {
	if !(share >= 0 && share <= 1) {
		return errors.New("wxsim: share must be between 0 and 1")
	}
	return nil
}

// RotatePlatformCertificate issues a new platform certificate for mchID
// (empty: every merchant) and returns its serial (of the first merchant).
// GET /v3/certificates lists it with the older ones, which stay valid.
// share is how often the new certificate signs answers and notifies from
// now on, the one before it signing the rest: 1 switches at once, 0 only
// publishes it (as WeChat does ahead of a switch), 0.5 signs at random
// with either (reliability.md F3). SetPlatformCertificateShare changes it
// later. A public-key-only merchant gets its first certificate.
func (s *Simulator) RotatePlatformCertificate(mchID string, share float64) (string, error) {
	if err := checkShare(share); err != nil {
		return "", err
	}
	vms, err := s.v3Targets(mchID)
	if err != nil {
		return "", err
	}
	var first string
	for _, vm := range vms {
		vm.mu.Lock()
		err := vm.ensureLocked()
		var pc *v3PlatformCert
		if err == nil {
			pc, err = vm.issuePlatformLocked()
		}
		if err == nil {
			vm.newShare = share
			if first == "" {
				first = pc.serial
			}
			s.log.Info("wxsim: platform certificate rotated", "mch_id", vm.m.cfg.MchID, "serial", pc.serial, "share", share)
		}
		vm.mu.Unlock()
		if err != nil {
			return "", err
		}
	}
	return first, nil
}

// SetPlatformCertificateShare sets how often the newest platform
// certificate signs rather than the one before it (see
// RotatePlatformCertificate); mchID empty: every merchant.
func (s *Simulator) SetPlatformCertificateShare(mchID string, share float64) error {
	if err := checkShare(share); err != nil {
		return err
	}
	vms, err := s.v3Targets(mchID)
	if err != nil {
		return err
	}
	for _, vm := range vms {
		vm.mu.Lock()
		vm.newShare = share
		vm.mu.Unlock()
	}
	return nil
}

// RemovePlatformCertificate withdraws a platform certificate (as when it
// expires): it is no longer listed nor used. The last certificate of a
// merchant that has no public key cannot be removed.
func (s *Simulator) RemovePlatformCertificate(mchID, serial string) error {
	vm := s.v3Merchant(mchID)
	if vm == nil {
		return ErrUnknownMerchant
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for i, pc := range vm.platform {
		if wxcrypto.SameSerial(pc.serial, serial) {
			if len(vm.platform) == 1 && vm.pub == nil {
				return errors.New("wxsim: cannot remove the only signing key")
			}
			vm.platform = append(vm.platform[:i:i], vm.platform[i+1:]...)
			if len(vm.platform) == 0 {
				vm.pubShare = 1
			}
			return nil
		}
	}
	return errors.New("wxsim: no platform certificate with that serial")
}

// SwitchToPublicKey starts or moves the switch-over of mchID (empty: every
// merchant) to the WeChat Pay public key: share is how often the public
// key signs answers and notifies, a platform certificate signing the rest
// (WeChat raises it over about a week; reliability.md F3). 1 is the end
// of the switch, 0 only creates the key (the merchant can download it).
// It returns the public key id (of the first merchant). A merchant
// without a platform certificate always signs with the public key.
func (s *Simulator) SwitchToPublicKey(mchID string, share float64) (string, error) {
	if err := checkShare(share); err != nil {
		return "", err
	}
	vms, err := s.v3Targets(mchID)
	if err != nil {
		return "", err
	}
	var first string
	for _, vm := range vms {
		vm.mu.Lock()
		err := vm.ensureLocked()
		if err == nil {
			err = vm.makePublicKeyLocked()
		}
		if err == nil {
			if len(vm.platform) > 0 {
				vm.pubShare = share
			}
			if first == "" {
				first = vm.pub.id
			}
			s.log.Info("wxsim: public key switch-over", "mch_id", vm.m.cfg.MchID, "id", vm.pub.id, "share", share)
		}
		vm.mu.Unlock()
		if err != nil {
			return "", err
		}
	}
	return first, nil
}

// SetV3ClockSkew sets how far WeChat Pay's clock is from the simulator
// clock: the Wechatpay-Timestamp of every v3 answer and notify moves by d,
// and request timestamps are checked against the skewed clock. A skew
// beyond ±5 minutes makes a correct merchant refuse every answer and
// notify (reliability.md F1, C5).
func (s *Simulator) SetV3ClockSkew(d time.Duration) {
	s.v3.mu.Lock()
	s.v3.skew = d
	s.v3.mu.Unlock()
}

// V3ClockSkew returns the skew SetV3ClockSkew set.
func (s *Simulator) V3ClockSkew() time.Duration {
	s.v3.mu.Lock()
	defer s.v3.mu.Unlock()
	return s.v3.skew
}

// SetV3ProbeRate makes WeChat's signature probe traffic: each v3 answer
// is, with probability responses, signed with a WECHATPAY/SIGNTEST/…
// signature instead of a real one, and each v3 notify is, with
// probability notifies, preceded by a copy so signed (logged as kind
// "probe"; a merchant that acknowledges it is counted in
// NotifyStats.ProbesAccepted). Both must be in [0, 1]. The V3_PROBE fault
// hits chosen calls instead.
func (s *Simulator) SetV3ProbeRate(responses, notifies float64) error {
	if checkShare(responses) != nil || checkShare(notifies) != nil {
		return errors.New("wxsim: probe rates must be between 0 and 1")
	}
	s.v3.mu.Lock()
	s.v3.probeResponses, s.v3.probeNotifies = responses, notifies
	s.v3.mu.Unlock()
	return nil
}

func (st *v3State) probeRates() (responses, notifies float64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.probeResponses, st.probeNotifies
}

// ConfigureV3 registers, for every merchant of cfg that has no
// Merchant.V3.CertificatePEM, the CA's client certificate of that
// merchant (ClientCert) as its merchant API certificate: as at WeChat,
// apiclient_cert.pem then serves both the v2 /secapi/* TLS calls and the
// v3 request signatures, and apiclient_key.pem signs. Call it after
// setting cfg.Merchants.
func (ca *CA) ConfigureV3(cfg *Config) error {
	if len(cfg.Merchants) == 0 {
		cfg.Merchants = []Merchant{DefaultMerchant()}
	}
	for i := range cfg.Merchants {
		m := &cfg.Merchants[i]
		if len(m.V3.CertificatePEM) > 0 {
			continue
		}
		cc, err := ca.ClientCert(m.MchID)
		if err != nil {
			return err
		}
		m.V3.CertificatePEM = cc.CertPEM
	}
	return nil
}
