package apiv2

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxpay-go/wxpay"
)

// tlsServer is a fake WeChat Pay host that requires a client certificate
// issued by the test CA, and answers refunds. It records the common name of
// the certificate each request came with.
type tlsServer struct {
	*httptest.Server
	hits atomic.Int64
	cn   atomic.Value
}

func newTLSServer(t *testing.T) (*tlsServer, *http.Client) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, caFile)) {
		t.Fatal("bad CA")
	}
	cert, err := tls.LoadX509KeyPair(serverCertFile, serverKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != "/secapi/pay/refund" || len(r.TLS.PeerCertificates) == 0 {
			http.NotFound(w, r)
			return
		}
		s.cn.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"out_refund_no": f["out_refund_no"], "refund_fee": f["refund_fee"], "refund_id": "50000000382026112900001",
		})
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	s.StartTLS()
	t.Cleanup(s.Close)
	// The merchant's http.Client trusts the test CA, as a real one trusts
	// WeChat's.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return s, &http.Client{Transport: tr}
}

// Refund over mutual TLS, with every way of giving the certificate.
func TestRefundClientCertificate(t *testing.T) {
	t.Parallel()
	srv, hc := newTLSServer(t)
	cfgs := map[string]func(*Config){
		"PEM files": func(c *Config) { c.CertFile, c.KeyFile = certFile, keyFile },
		"PEM bytes": func(c *Config) { c.CertPEM, c.KeyPEM = readFile(t, certFile), wxpay.Secret(readFile(t, keyFile)) },
		"P12 file, password defaults to the mch id": func(c *Config) { c.P12File = p12File },
		"P12 bytes, explicit password":              func(c *Config) { c.P12, c.P12Password = wxpay.Secret(readFile(t, p12File)), wxpay.Secret(testMchID) },
	}
	for name, edit := range cfgs {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			edit(&cfg)
			c, err := NewClient(cfg, WithBaseURL(srv.URL), WithHTTPClient(hc))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Refund(context.Background(), testRefund())
			if err != nil {
				t.Fatal(err)
			}
			if resp.RefundID != "50000000382026112900001" {
				t.Errorf("refund id %q", resp.RefundID)
			}
			if cn, _ := srv.cn.Load().(string); cn != testMchID {
				t.Errorf("server saw certificate CN %q", cn)
			}
		})
	}
}

// The certificate is only on the calls that need it: the same server
// refuses the handshake of a call made without it.
func TestClientCertificateOnlyForSecAPI(t *testing.T) {
	t.Parallel()
	srv, hc := newTLSServer(t)
	cfg := certConfig()
	c, err := NewClient(cfg, WithBaseURL(srv.URL), WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T2026112900001"})
	if err == nil {
		t.Fatal("orderquery went through a server that requires a client certificate")
	}
	if hc.Transport.(*http.Transport).TLSClientConfig.Certificates != nil {
		t.Fatal("NewClient changed the caller's http.Client")
	}
}

func TestRefundWithoutCertificate(t *testing.T) {
	t.Parallel()
	srv, hc := newTLSServer(t)
	c, err := NewClient(testConfig(), WithBaseURL(srv.URL), WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Refund":  func() error { _, err := c.Refund(context.Background(), testRefund()); return err },
		"Reverse": func() error { _, err := c.Reverse(context.Background(), "", "M2026112900001"); return err },
		"DownloadFundFlow": func() error {
			_, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{Date: billDay})
			return err
		},
	} {
		err := call()
		wantIs(t, err, ErrNoCertificate)
		if OutcomeUnknown(err) {
			t.Errorf("%s: nothing was sent, yet the outcome is unknown", name)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("the server saw %d requests", n)
	}
}

func TestP12WrongPassword(t *testing.T) {
	cfg := testConfig()
	cfg.P12File, cfg.P12Password = p12File, "not-the-password"
	_, err := NewClient(cfg)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"PKCS#12", "password", "merchant id"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Error("the password is in the message")
	}
	// Without a password, the mch id is tried: another mch id fails.
	cfg = testConfig()
	cfg.MchID, cfg.P12File = "1900000109", p12File
	if _, err := NewClient(cfg); err == nil || !strings.Contains(err.Error(), "PKCS#12") {
		t.Errorf("a P12 opened with another merchant's id: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The certificate must be added to an *http.Transport; a custom
// RoundTripper cannot take one.
func TestClientCertificateNeedsHTTPTransport(t *testing.T) {
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("unused")
	})}
	_, err := NewClient(certConfig(), WithHTTPClient(hc))
	if err == nil || !strings.Contains(err.Error(), "*http.Transport") {
		t.Fatalf("error %v", err)
	}
	// Without a certificate any RoundTripper does.
	if _, err := NewClient(testConfig(), WithHTTPClient(hc)); err != nil {
		t.Fatal(err)
	}
	// A nil Transport means the default one, cloned.
	if _, err := NewClient(certConfig(), WithHTTPClient(&http.Client{})); err != nil {
		t.Fatal(err)
	}
}

// Over plain http (the simulator, a local proxy) no certificate can be
// presented, so a client without one may still call refund there.
func TestRefundPlainHTTPWithoutCertificate(t *testing.T) {
	c, s := setupConfig(t, testConfig())
	s.handle("/secapi/pay/refund", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"out_refund_no": f["out_refund_no"], "refund_fee": f["refund_fee"]})
	})
	if _, err := c.Refund(context.Background(), testRefund()); err != nil {
		t.Fatal(err)
	}
}
