package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// writeFile writes a test file with the given mode and returns its path.
func writeFile(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testdataFile reads a file of apiv3/testdata (TEST-ONLY keys).
func testdataFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "apiv3", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// selfSigned makes a certificate for key with the given CN and dates.
func selfSigned(t *testing.T, key *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(notBefore.UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Tenpay.com"}},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func testKey(t *testing.T, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := wxcrypto.ParsePrivateKey([]byte(testdataFile(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCertsDownload downloads the simulator's platform certificates as an
// operator would, and each way it must refuse.
func TestCertsDownload(t *testing.T) {
	srv := wxpaytest.NewServer(t)
	creds, err := srv.Sim.V3Credentials(srv.MchID)
	if err != nil {
		t.Fatal(err)
	}
	platform := creds.PlatformCertificates[0]
	dir := t.TempDir()
	certFile := writeFile(t, dir, "apiclient_cert.pem", creds.CertPEM, 0o644)
	keyFile := writeFile(t, dir, "apiclient_key.pem", creds.PrivateKeyPEM, 0o600)
	apiv3KeyFile := writeFile(t, dir, "apiv3_key.txt", creds.APIv3Key+"\n", 0o600)
	wrongAPIv3Key := writeFile(t, dir, "wrong_apiv3_key.txt", srv.APIKey.Reveal(), 0o600) // the v2 API key: the classic mix-up
	wrongKey := writeFile(t, dir, "other_key.pem", testdataFile(t, "merchant_key.pem"), 0o600)
	platformFile := writeFile(t, dir, "platform.pem", platform.CertPEM, 0o644)
	now := time.Now()
	impostor := writeFile(t, dir, "impostor.pem", selfSigned(t, testKey(t, "platform2_key.pem"), "Tenpay.com sign", now.Add(-time.Hour), now.AddDate(1, 0, 0)), 0o644)
	out := filepath.Join(dir, "certs")
	base := []string{"certs", "download", "--base-url", srv.URL, "--mchid", srv.MchID, "--cert-file", certFile}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	good := []string{"--key-file", keyFile, "--apiv3-key", "@" + apiv3KeyFile}

	config := writeFile(t, dir, "wxpay.toml", `[wechat]
api_version = "v3"
mch_id = "`+srv.MchID+`"
cert_serial = "`+creds.CertSerial+`"
key_file = "`+keyFile+`"
apiv3_key_file = "`+apiv3KeyFile+`"
base_url = "`+srv.URL+`"
`, 0o600)
	pinnedConfig := writeFile(t, dir, "pinned.toml", strings.Replace(string(must(os.ReadFile(config))), "[wechat]\n",
		"[wechat]\nplatform_cert_file = \""+impostor+"\"\n", 1), 0o600)

	for _, c := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"trust on first use, --out", with(append(good, "--out", out)...), 0, platform.Serial, "trust on first use"},
		{"pinned", with(append(good, "--trust", platformFile)...), 0, "pinned", "signed by the certificate of --trust"},
		{"config file", []string{"certs", "download", "--config", config}, 0, platform.Serial, "trust on first use"},
		{"config's platform_cert_file pins", []string{"certs", "download", "--config", pinnedConfig}, 1, "", "not signed by the --trust certificate"},
		{"simulator's merchant", []string{"certs", "download", "--sim", "--base-url", srv.URL}, 0, platform.Serial, ""},
		{"pin that does not match", with(append(good, "--trust", impostor)...), 1, "", "not signed by the --trust certificate"},
		{"merchant certificate as the pin", with(append(good, "--trust", certFile)...), 1, "", "is a merchant API certificate"},
		{"wrong APIv3 key", with("--key-file", keyFile, "--apiv3-key", "@"+wrongAPIv3Key), 1, "", "did not decrypt with the APIv3 key"},
		{"APIv3 key inline and short", with("--key-file", keyFile, "--apiv3-key", "tooshort"), 2, "", "not 32"},
		{"wrong merchant key", with("--key-file", wrongKey, "--apiv3-key", "@"+apiv3KeyFile), 1, "", "SIGN_ERROR"},
		{"certificate as the key", with("--key-file", writeFile(t, dir, "cert_as_key.pem", creds.CertPEM, 0o600), "--apiv3-key", "@"+apiv3KeyFile), 1, "", "certificate"},
		{"loose key file", with("--key-file", writeFile(t, dir, "loose_key.pem", creds.PrivateKeyPEM, 0o644), "--apiv3-key", "@"+apiv3KeyFile), 1, "", "chmod 600"},
		{"incomplete", []string{"certs", "download", "--mchid", srv.MchID}, 2, "", "--key-file"},
		{"a PUB_KEY_ID as the serial", []string{"certs", "download", "--base-url", srv.URL, "--mchid", srv.MchID, "--serial", "PUB_KEY_ID_0112253127020000000000000000",
			"--key-file", keyFile, "--apiv3-key", "@" + apiv3KeyFile}, 2, "", "not a certificate serial"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", c.args...)
			if code != c.code || !strings.Contains(stdout, c.out) || !strings.Contains(stderr, c.err) {
				t.Fatalf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, c.code, c.out, stdout, c.err, stderr)
			}
			for _, secret := range []string{creds.APIv3Key, "PRIVATE KEY", srv.APIKey.Reveal()} {
				if strings.Contains(stdout+stderr, secret) {
					t.Fatalf("the output holds a secret (%.12s…)", secret)
				}
			}
		})
	}

	// --out wrote the certificate, as downloaded.
	path := filepath.Join(out, "wechatpay_"+platform.Serial+".pem")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := wxcrypto.ParseCertificate(got); err != nil || wxcrypto.CertificateSerial(cert) != platform.Serial {
		t.Fatalf("%s: %v", path, err)
	}

	// A rotation: both certificates; the old pin still vouches.
	next, err := srv.Sim.RotatePlatformCertificate(srv.MchID, 0)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", with(append(good, "--trust", platformFile)...)...)
	if code != 0 || !strings.Contains(stdout, platform.Serial) || !strings.Contains(stdout, next) {
		t.Fatalf("after a rotation: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "1825") && !strings.Contains(stdout, "1826") && !strings.Contains(stdout, "1824") {
		t.Errorf("no days left (five years) in\n%s", stdout)
	}
}

// A merchant registered with the WeChat Pay public key has no platform
// certificates: the tool says what to do instead.
func TestCertsDownloadPublicKeyMerchant(t *testing.T) {
	srv := wxpaytest.NewServer(t, wxpaytest.WithConfig(func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.V3.PublicKeyOnly = true
		c.Merchants = []wxsim.Merchant{m}
	}))
	code, stdout, stderr := runCmd(t, "", "certs", "download", "--sim", "--base-url", srv.URL)
	if code != 1 || !strings.Contains(stderr, "RESOURCE_NOT_EXISTS") || !strings.Contains(stderr, "public key") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestCertsShow(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	platformKey := testKey(t, "platform_key.pem")
	platform := writeFile(t, dir, "wechatpay_platform.pem", selfSigned(t, platformKey, "Tenpay.com sign", now.Add(-time.Hour), now.AddDate(5, 0, 0)), 0o644)
	merchantCert := writeFile(t, dir, "apiclient_cert.pem", testdataFile(t, "merchant_cert.pem"), 0o644)
	merchantKeyPEM := testdataFile(t, "merchant_key.pem")
	merchantKey := writeFile(t, dir, "apiclient_key.pem", merchantKeyPEM, 0o600)
	pubKey := writeFile(t, dir, "pub_key.pem", testdataFile(t, "pub_key.pem"), 0o644)
	soon := writeFile(t, dir, "soon.pem", selfSigned(t, platformKey, "Tenpay.com sign", now.AddDate(0, 0, -30), now.AddDate(0, 0, 10).Add(time.Hour)), 0o644)
	expired := writeFile(t, dir, "expired.pem", selfSigned(t, platformKey, "Tenpay.com sign", now.AddDate(-5, 0, 0), now.AddDate(0, 0, -3)), 0o644)
	both := writeFile(t, dir, "both.pem", testdataFile(t, "merchant_cert.pem")+testdataFile(t, "pub_key.pem"), 0o644)
	block, _ := pem.Decode([]byte(testdataFile(t, "merchant_cert.pem")))
	der := writeFile(t, dir, "apiclient_cert.cer", string(block.Bytes), 0o644)
	junk := writeFile(t, dir, "junk.txt", "hello", 0o644)
	pubBlock, _ := pem.Decode([]byte(testdataFile(t, "pub_key.pem")))
	sum := sha256.Sum256(pubBlock.Bytes)

	for _, c := range []struct {
		name  string
		args  []string
		code  int
		out   []string
		err   string
		notIn []string
	}{
		{"platform certificate", []string{platform}, 0, []string{"certificate", "serial", "CN=Tenpay.com sign", "RSA 2048 bits", "1825 day(s) left", "platform certificate"},
			"", []string{"WARNING"}},
		{"merchant certificate", []string{merchantCert}, 0, []string{"3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8", "CN=1900009191",
			"merchant API certificate (apiclient_cert.pem) of merchant 1900009191", "not a platform certificate: do not use it to verify WeChat's signatures"}, "", nil},
		{"public key", []string{pubKey}, 0, []string{"public key", "RSA 2048 bits", colonHex(sum[:]), "PUB_KEY_ID_"}, "", nil},
		{"expires soon", []string{soon}, 0, []string{"10 day(s) left", "WARNING", "expires in 10 day(s)"}, "", nil},
		{"expired", []string{expired}, 0, []string{"EXPIRED 3 day(s) ago", "WARNING"}, "", nil},
		{"two blocks", []string{both}, 0, []string{"block 1 of 2", "block 2 of 2", "merchant API certificate", "public key"}, "", nil},
		{"DER certificate", []string{der}, 0, []string{"3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8"}, "", nil},
		{"private key refused", []string{merchantCert, merchantKey}, 1, []string{"a private key (PRIVATE KEY): NOT SHOWN",
			"matches   the certificate 3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8"}, "holds a private key: not shown",
			strings.Split(strings.TrimSpace(merchantKeyPEM), "\n")[1:3]},
		{"junk", []string{junk}, 1, []string{"no PEM block"}, "holds no certificate or key", nil},
		{"missing file", []string{filepath.Join(dir, "nope.pem")}, 1, nil, "no such file", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", append([]string{"certs", "show"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.err) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)\n%s", code, c.code, stderr, c.err, stdout)
			}
			for _, w := range c.out {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range c.notIn {
				if strings.Contains(stdout+stderr, w) {
					t.Errorf("output holds %q:\n%s", w, stdout)
				}
			}
		})
	}
	if code, _, stderr := runCmd(t, "", "certs", "show"); code != 2 || !strings.Contains(stderr, "one or more PEM files") {
		t.Errorf("no file: exit %d %s", code, stderr)
	}
}

// TestPaySignV3 checks `wxpay paysign --v3` against the pinned vector of
// apiv3 and wxcrypto (protocol.md §13.5 over the test merchant key) and
// with the WeChat client's check.
func TestPaySignV3(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "apiclient_key.pem", testdataFile(t, "merchant_key.pem"), 0o600)
	const (
		appID    = "wxd678efh567hg6787"
		prepayID = "wx2017033010242291fcfe0db70013231072"
		pinned   = "cCEl9aiVcsImSFDVW4AtFsLCWmoGZiXpmecKcQ6ehnZdFd6YTQGte4UvMwgiCd0mppeRQK+dPXrqYfAPeM6erDaay+Ew2p+9wdmfvYiGHUuRsqgkboXKt9NRkuZ6jJmiZ98QrRr2gheI9aTkIOjYeBK/0DAEG3GWwTqU+e6V/0eVZ0ZWnAFpxBdhsmAcIv2c60d7p2j+GzaaCIWLfk8bShNnNiLJziL/2LyUI4yq9hD8IWlhUEZEoWnHz4ho/C8/XC1EXwfGynTY+tdrBDKfmrkScBr8BoV3i87Jx4Ao1TsIW6HxKo1bvhDV1Z+tel7LTQFaVxZsXqog5wRqPLzhiA=="
	)
	pub := &testKey(t, "merchant_key.pem").PublicKey
	args := []string{"paysign", "--v3", "--appid", appID, "--key-file", keyFile, "--prepay-id", prepayID}
	code, stdout, stderr := runCmd(t, "", append(args, "-v", "--timestamp", "1490840662", "--nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var p apiv3.PayParams
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	want := apiv3.PayParams{AppID: appID, TimeStamp: "1490840662", NonceStr: "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", Package: "prepay_id=" + prepayID,
		SignType: "RSA", PaySign: pinned}
	if p != want {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if err := wxcrypto.VerifyMiniProgramPaySignV3(pub, p.AppID, p.TimeStamp, p.NonceStr, prepayID, p.PaySign); err != nil {
		t.Error(err)
	}
	if !strings.Contains(stderr, `signed string: "wxd678efh567hg6787\n1490840662\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=`+prepayID+`\n"`) {
		t.Errorf("-v: %s", stderr)
	}
	if strings.Contains(stdout+stderr, "PRIVATE KEY") {
		t.Error("the key was printed")
	}

	// Now and a random nonce by default, "prepay_id=" taken off, no -v: no stderr.
	code, stdout, stderr = runCmd(t, "", "paysign", "--v3", "--appid", appID, "--key-file", keyFile, "--prepay-id", "prepay_id="+prepayID)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	if err := apiv3.VerifyPayParams(&p, pub); err != nil || p.Package != "prepay_id="+prepayID || len(p.NonceStr) != 32 {
		t.Errorf("%+v: %v", p, err)
	}
	if ts, err := strconv.ParseInt(p.TimeStamp, 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("timestamp %s is not now", p.TimeStamp)
	}

	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"paysign", "--v3", "--appid", appID, "--prepay-id", prepayID}, 2, "--key-file"},
		{[]string{"paysign", "--v3", "--appid", appID, "--key-file", keyFile, "--prepay-id", prepayID, "--key", "k"}, 2, "--key and --type are v2's"},
		{[]string{"paysign", "--appid", appID, "--key-file", keyFile, "--prepay-id", prepayID}, 2, "add --v3"},
		{[]string{"paysign", "--v3", "--appid", appID, "--prepay-id", prepayID, "--key-file", writeFile(t, dir, "loose.pem", testdataFile(t, "merchant_key.pem"), 0o644)}, 1, "chmod 600"},
		{[]string{"paysign", "--v3", "--appid", appID, "--prepay-id", prepayID, "--key-file", writeFile(t, dir, "cert.pem", testdataFile(t, "merchant_cert.pem"), 0o600)}, 1, "certificate"},
	} {
		if code, _, stderr := runCmd(t, "", c.args...); code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("%v: exit %d %q, want %d and %q", c.args, code, stderr, c.code, c.err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
