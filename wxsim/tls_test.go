package wxsim_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxsim"
)

// tlsEnv serves a simulator over TLS with a CA in a temporary directory.
func tlsEnv(t *testing.T, tweak ...func(*wxsim.Config)) (*env, *wxsim.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := wxsim.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: wxsim.NewManualClock(start), merchant: newMerchantServer(t)}
	cfg := wxsim.Config{Clock: e.clock, IDs: wxsim.NewSequentialIDs(), CloseMinAge: -1}
	ca.Configure(&cfg)
	for _, f := range tweak {
		f(&cfg)
	}
	sim, err := wxsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	srv := httptest.NewUnstartedServer(sim)
	srv.TLS = ca.ServerTLSConfig()
	srv.StartTLS()
	e.srv = srv
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return e, ca, dir
}

// client returns an http.Client that trusts only the CA, checks the
// server's name as serverName, and presents cert (if any).
func tlsClient(ca *wxsim.CA, serverName string, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: serverName}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func post(t *testing.T, c *http.Client, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTLSClientCertificate(t *testing.T) {
	e, ca, dir := tlsEnv(t)
	cc, err := ca.ClientCert(mchID)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.pem", "server.pem", mchID + "/apiclient_cert.pem", mchID + "/apiclient_key.pem", mchID + "/apiclient_cert.p12"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("missing %s: %v", name, err)
		}
	}
	if cc.Certificate.Leaf.Subject.CommonName != mchID {
		t.Fatalf("client CN %q", cc.Certificate.Leaf.Subject.CommonName)
	}
	cfg, err := ca.ClientTLSConfig(mchID)
	if err != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("client config: %v", err)
	}

	// A paid order to refund.
	plain := &env{t: t, sim: e.sim, clock: e.clock, merchant: e.merchant, srv: e.srv}
	openID := plain.user(0)
	body := uoReq("TLS00001", openID).signed(apiKey).xmlBody()
	withCert := tlsClient(ca, "api.mch.weixin.qq.com", &cc.Certificate)
	if st, b := post(t, withCert, e.srv.URL+"/pay/unifiedorder", body); st != 200 || !strings.Contains(b, "prepay_id") {
		t.Fatalf("unifiedorder over TLS: %d %s", st, b)
	}
	o, _ := e.sim.Order(mchID, "TLS00001")
	req := paySign(apiKey, appID, o.PrepayID, "MD5")
	req.OpenID = openID
	if r := e.sim.RequestPayment(req); !r.OK() {
		t.Fatal(r.ErrMsg)
	}
	refund := refundReq("TLS00001", "RTLS1", 100, 10).signed(apiKey).xmlBody()

	// Without a certificate: nginx's 400.
	noCert := tlsClient(ca, "api.mch.weixin.qq.com", nil)
	if st, b := post(t, noCert, e.srv.URL+"/secapi/pay/refund", refund); st != 400 || !strings.Contains(b, "No required SSL certificate was sent") {
		t.Fatalf("no certificate: %d %s", st, b)
	}
	// A certificate from another CA.
	other, err := wxsim.NewCA("")
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.ClientCert(mchID)
	if st, b := post(t, tlsClient(ca, "api.mch.weixin.qq.com", &foreign.Certificate), e.srv.URL+"/secapi/pay/refund", refund); st != 400 || !strings.Contains(b, "The SSL certificate error") {
		t.Fatalf("foreign certificate: %d %s", st, b)
	}
	// Another merchant's certificate from this CA.
	another, _ := ca.ClientCert("1900000109")
	if st, b := post(t, tlsClient(ca, "api.mch.weixin.qq.com", &another.Certificate), e.srv.URL+"/secapi/pay/refund", refund); st != 200 || !strings.Contains(b, "证书与商户号不匹配") {
		t.Fatalf("another merchant's certificate: %d %s", st, b)
	}
	if rs := e.sim.Refunds(""); len(rs) != 0 {
		t.Fatalf("refunds after refusals: %+v", rs)
	}
	// With the merchant's certificate, on every host name.
	for _, host := range []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com"} {
		if st, b := post(t, tlsClient(ca, host, &cc.Certificate), e.srv.URL+"/secapi/pay/refund", refund); st != 200 || !strings.Contains(b, "<refund_id>") {
			t.Fatalf("refund via %s: %d %s", host, st, b)
		}
	}
	resp, err := tlsClient(ca, "api.weixin.qq.com", nil).Get(e.srv.URL + "/sns/jscode2session")
	if err != nil {
		t.Fatalf("api.weixin.qq.com: %v", err)
	}
	resp.Body.Close()
	// Paths without /secapi need no certificate; reverse and
	// downloadfundflow do.
	if st, b := post(t, noCert, e.srv.URL+"/pay/orderquery", kv("out_trade_no", "TLS00001").signed(apiKey).xmlBody()); st != 200 || !strings.Contains(b, "REFUND") {
		t.Fatalf("orderquery without certificate: %d %s", st, b)
	}
	for _, p := range []string{"/secapi/pay/reverse", "/pay/downloadfundflow"} {
		if st, _ := post(t, noCert, e.srv.URL+p, kv("out_trade_no", "TLS00001").signed(apiKey).xmlBody()); st != 400 {
			t.Fatalf("%s without certificate: %d", p, st)
		}
	}
	// The standard client of ClientTLSConfig works as is (checking the
	// loopback address, which the certificate also covers).
	std := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	if st, b := post(t, std, e.srv.URL+"/secapi/pay/refund", refund); st != 200 || !strings.Contains(b, "SUCCESS") {
		t.Fatalf("ClientTLSConfig: %d %s", st, b)
	}

	// The same directory gives the same CA and client certificate.
	again, err := wxsim.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM(), ca.CertPEM()) || again.CertFile() != filepath.Join(dir, "ca.pem") {
		t.Fatal("the CA changed")
	}
	cc2, _ := again.ClientCert(mchID)
	if !bytes.Equal(cc2.CertPEM, cc.CertPEM) {
		t.Fatal("the client certificate changed")
	}
}

func TestTLSClientCertOptional(t *testing.T) {
	e, ca, _ := tlsEnv(t, func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.ClientCertOptional = true
		c.Merchants = []wxsim.Merchant{m}
	})
	noCert := tlsClient(ca, "api.mch.weixin.qq.com", nil)
	if st, b := post(t, noCert, e.srv.URL+"/secapi/pay/refund", refundReq("NOPE0001", "R1", 1, 1).signed(apiKey).xmlBody()); st != 200 || !strings.Contains(b, "ORDERNOTEXIST") {
		t.Fatalf("optional certificate: %d %s", st, b)
	}
}

// TestPKCS12 checks apiclient_cert.p12 with OpenSSL (an independent
// implementation): the MAC and both bags open with the mch id as password
// and not with another.
func TestPKCS12(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	ca, err := wxsim.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ca.ClientCert(mchID)
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(cc.Dir, "apiclient_cert.p12")
	out, err := exec.Command(openssl, "pkcs12", "-in", p12, "-passin", "pass:"+mchID, "-nodes").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "CN = "+mchID) && !strings.Contains(s, "CN="+mchID) || !strings.Contains(s, "BEGIN CERTIFICATE") || !strings.Contains(s, "BEGIN PRIVATE KEY") {
		t.Fatalf("openssl output:\n%s", s)
	}
	// The key in the p12 is the key of apiclient_key.pem.
	key := s[strings.Index(s, "-----BEGIN PRIVATE KEY-----"):]
	key = key[:strings.Index(key, "-----END PRIVATE KEY-----")+len("-----END PRIVATE KEY-----")]
	if strings.TrimSpace(key) != strings.TrimSpace(string(cc.KeyPEM)) {
		t.Fatal("the p12 holds another key")
	}
	if out, err := exec.Command(openssl, "pkcs12", "-in", p12, "-passin", "pass:wrong", "-nodes").CombinedOutput(); err == nil {
		t.Fatalf("opened with a wrong password:\n%s", out)
	}
}
