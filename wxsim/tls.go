package wxsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ServerHosts are the names the simulator's server certificate covers:
// WeChat's pay hosts and mini-program API host, plus the loopback names.
var ServerHosts = []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com", "api.weixin.qq.com", "localhost", "127.0.0.1", "::1"}

// CA is the simulator's local certificate authority: it issues the server
// certificate for WeChat's host names and each merchant's client
// certificate (apiclient_cert), so that a merchant's TLS setup, client
// certificate included, is exercised offline.
//
// With a directory, NewCA keeps the CA in ca.pem and ca-key.pem (and
// reuses them next time, so clients keep trusting it), writes the server
// certificate to server.pem and server-key.pem, and each merchant's client
// certificate to <mch_id>/apiclient_cert.pem, apiclient_key.pem and
// apiclient_cert.p12 (PKCS#12, password = the mch id, as WeChat's).
type CA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	server  tls.Certificate
	pool    *x509.CertPool

	mu      sync.Mutex
	clients map[string]*ClientCert
}

// ClientCert is a merchant's client certificate issued by the CA.
type ClientCert struct {
	MchID       string
	Certificate tls.Certificate // for tls.Config.Certificates
	CertPEM     []byte          // apiclient_cert.pem
	KeyPEM      []byte          // apiclient_key.pem (PKCS#8, "PRIVATE KEY")
	P12         []byte          // apiclient_cert.p12, password MchID
	Dir         string          // where the files are; empty without a CA directory
}

// NewCA loads the CA from dir or creates it there (dir is created if
// needed); an empty dir keeps everything in memory. It always issues a new
// server certificate for ServerHosts, valid for a year.
func NewCA(dir string) (*CA, error) {
	ca := &CA{dir: dir, clients: make(map[string]*ClientCert)}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := ca.load(); err != nil {
			return nil, err
		}
	}
	if ca.cert == nil {
		if err := ca.create(); err != nil {
			return nil, err
		}
	}
	ca.pool = x509.NewCertPool()
	ca.pool.AddCert(ca.cert)
	if err := ca.issueServer(); err != nil {
		return nil, err
	}
	return ca, nil
}

func (ca *CA) path(name string) string { return filepath.Join(ca.dir, name) }

func (ca *CA) load() error {
	certPEM, err := os.ReadFile(ca.path("ca.pem"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(ca.path("ca-key.pem"))
	if err != nil {
		return fmt.Errorf("wxsim: ca.pem without ca-key.pem: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("wxsim: bad CA files in %s: %w", ca.dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA || time.Now().After(cert.NotAfter) {
		return fmt.Errorf("wxsim: %s does not hold a usable CA", ca.dir)
	}
	ca.cert, ca.certPEM, ca.key = cert, certPEM, signer
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func (ca *CA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "wxsim local CA", Organization: []string{"wxsim (WeChat Pay simulator)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	ca.cert, ca.key = cert, key
	ca.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if ca.dir != "" {
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(ca.path("ca-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(ca.path("ca.pem"), ca.certPEM, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (ca *CA) issueServer() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ServerHosts[0], Organization: []string{"wxsim (WeChat Pay simulator)"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range ServerHosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	ca.server, err = tls.X509KeyPair(append(certPEM, ca.certPEM...), keyPEM)
	if err != nil {
		return err
	}
	if ca.dir != "" {
		if err := os.WriteFile(ca.path("server-key.pem"), keyPEM, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(ca.path("server.pem"), certPEM, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CertPEM returns the CA certificate in PEM, what a client must trust.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// CertFile returns the path of ca.pem, or "" for an in-memory CA.
func (ca *CA) CertFile() string {
	if ca.dir == "" {
		return ""
	}
	return ca.path("ca.pem")
}

// Pool returns a pool holding the CA certificate: RootCAs for clients,
// ClientCAs for the server.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// ServerTLSConfig returns the server's TLS configuration: the server
// certificate, and client certificates requested (not required at the
// handshake: the simulator checks them per path, as WeChat's nginx does,
// answering HTTP 400 on /secapi/* when one is missing or not issued here).
// Set Config.ClientCAs to Pool() (or call Configure) so the simulator
// can check them.
func (ca *CA) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.server},
		ClientAuth:   tls.RequestClientCert,
	}
}

// Configure sets cfg.ClientCAs to the CA.
func (ca *CA) Configure(cfg *Config) { cfg.ClientCAs = ca.Pool() }

// ClientCert returns the client certificate of mchID, issuing it (and
// writing its files) the first time. The certificate's common name is the
// mch id; its key is RSA 2048 like WeChat's.
func (ca *CA) ClientCert(mchID string) (*ClientCert, error) {
	if mchID == "" || !isDigits(mchID) {
		return nil, errors.New("wxsim: the mch id must be digits")
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.clients[mchID]; c != nil {
		return c, nil
	}
	c, err := ca.loadClient(mchID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		if c, err = ca.issueClient(mchID); err != nil {
			return nil, err
		}
	}
	ca.clients[mchID] = c
	return c, nil
}

// loadClient reuses the files of an earlier run when the CA issued them.
func (ca *CA) loadClient(mchID string) (*ClientCert, error) {
	if ca.dir == "" {
		return nil, nil
	}
	dir := ca.path(mchID)
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "apiclient_cert.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "apiclient_key.pem"))
	p12, err3 := os.ReadFile(filepath.Join(dir, "apiclient_cert.p12"))
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || leaf.Subject.CommonName != mchID || time.Now().After(leaf.NotAfter) {
		return nil, nil
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, nil
	}
	pair.Leaf = leaf
	return &ClientCert{MchID: mchID, Certificate: pair, CertPEM: certPEM, KeyPEM: keyPEM, P12: p12, Dir: dir}, nil
}

func (ca *CA) issueClient(mchID string) (*ClientCert, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject: pkix.Name{CommonName: mchID, Organization: []string{"微信商户系统"}, OrganizationalUnit: []string{"wxsim"},
			Country: []string{"CN"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(5, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &ClientCert{
		MchID:   mchID,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if c.Certificate, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		return nil, err
	}
	if c.Certificate.Leaf, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	if c.P12, err = encodePKCS12(der, key, mchID, "Tenpay Certificate"); err != nil {
		return nil, err
	}
	if ca.dir != "" {
		c.Dir = ca.path(mchID)
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name string
			data []byte
			mode os.FileMode
		}{{"apiclient_cert.pem", c.CertPEM, 0o644}, {"apiclient_key.pem", c.KeyPEM, 0o600}, {"apiclient_cert.p12", c.P12, 0o600}} {
			if err := os.WriteFile(filepath.Join(c.Dir, f.name), f.data, f.mode); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// ClientTLSConfig returns a client TLS configuration for mchID: the CA as
// the only root and the merchant's client certificate. Use it in the
// merchant's http.Client to call the simulator's /secapi/* paths.
func (ca *CA) ClientTLSConfig(mchID string) (*tls.Config, error) {
	c, err := ca.ClientCert(mchID)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool(), Certificates: []tls.Certificate{c.Certificate}}, nil
}
