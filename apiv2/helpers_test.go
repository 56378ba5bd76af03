package apiv2

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// update rewrites the golden files of testdata/ instead of comparing:
//
//	go test ./apiv2 -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The test merchant. testKey is the API key of the tests; otherKey is
// someone else's.
const (
	testKey      = "e10adc3949ba59abbe56e057f20f883e"
	otherKey     = "0123456789abcdef0123456789abcdef"
	testAppID    = "wx426b3015555a46be"
	testMchID    = "1225312702"
	testNonce    = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
	testPrepayID = "wx2017033010242291fcfe0db70013231072"
	testOpenID   = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	testNotify   = "https://shop.example/notify"
)

func testConfig() Config {
	return Config{AppID: testAppID, MchID: testMchID, APIKey: testKey, NotifyURL: testNotify}
}

// The certificates of testdata/certs: test-only keys (see its README.txt).
var (
	certFile       = filepath.Join("testdata", "certs", "apiclient_cert.pem")
	keyFile        = filepath.Join("testdata", "certs", "apiclient_key.pem")
	p12File        = filepath.Join("testdata", "certs", "apiclient_cert.p12")
	caFile         = filepath.Join("testdata", "certs", "ca.pem")
	serverCertFile = filepath.Join("testdata", "certs", "server.pem")
	serverKeyFile  = filepath.Join("testdata", "certs", "server.key")
)

// certConfig is testConfig with the client certificate, for refund,
// reverse and downloadfundflow.
func certConfig() Config {
	cfg := testConfig()
	cfg.CertFile, cfg.KeyFile = certFile, keyFile
	return cfg
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixedNonce() string { return testNonce }

// signedXML builds a signed answer from fields, as WeChat would.
func signedXML(t testing.TB, st wxpay.SignType, key string, m map[string]string) []byte {
	t.Helper()
	f := wxcrypto.FieldsFromMap(m)
	s, err := wxcrypto.Sign(st, key, f)
	if err != nil {
		t.Fatal(err)
	}
	f = append(f, wxcrypto.Field{Name: "sign", Value: s})
	b, err := EncodeMessage(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unsignedXML encodes m without a signature.
func unsignedXML(t testing.TB, m map[string]string) []byte {
	t.Helper()
	b, err := EncodeMessage(wxcrypto.FieldsFromMap(m))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refSign computes a v2 signature from scratch (protocol.md §2.1), without
// wxcrypto, so that the tests do not check the SDK against itself.
func refSign(st wxpay.SignType, key string, m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "sign" || m[k] == "" {
			continue
		}
		b.WriteString(k + "=" + m[k] + "&")
	}
	b.WriteString("key=" + key)
	if st == wxpay.SignTypeHMACSHA256 {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(b.String()))
		return strings.ToUpper(hex.EncodeToString(mac.Sum(nil)))
	}
	sum := md5.Sum([]byte(b.String()))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// wxServer is a fake WeChat Pay host: a mux behind an httptest server,
// counting the requests it gets.
type wxServer struct {
	*httptest.Server
	mux  atomic.Pointer[http.ServeMux]
	hits atomic.Int64
}

func newServer(t testing.TB) *wxServer {
	s := &wxServer{}
	s.reset()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mux.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// handle serves path with h.
func (s *wxServer) handle(path string, h http.HandlerFunc) { s.mux.Load().HandleFunc(path, h) }

// handler serves path with h.
func (s *wxServer) handler(path string, h http.Handler) { s.mux.Load().Handle(path, h) }

// reset forgets every handler.
func (s *wxServer) reset() { s.mux.Store(http.NewServeMux()) }

// setup returns a client of the test merchant (MD5, client certificate,
// nonce testNonce) pointed at a new fake WeChat Pay host.
func setup(t testing.TB, opts ...Option) (*Client, *wxServer) {
	t.Helper()
	return setupConfig(t, certConfig(), opts...)
}

func setupConfig(t testing.TB, cfg Config, opts ...Option) (*Client, *wxServer) {
	t.Helper()
	s := newServer(t)
	c, err := NewClient(cfg, append([]Option{WithBaseURL(s.URL), WithNonce(fixedNonce)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// readRequest checks that r is a POST of a v2 message signed with key and
// sign type st, and returns its fields.
func readRequest(t testing.TB, r *http.Request, st wxpay.SignType, key string) map[string]string {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("%s %s, want POST", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "wxpay-go/") {
		t.Errorf("User-Agent %q", ua)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading the request: %v", err)
		return nil
	}
	f, err := ParseMessage(body)
	if err != nil {
		t.Errorf("request is not a flat XML message: %v\n%s", err, body)
		return nil
	}
	m := make(map[string]string, len(f))
	for _, x := range f {
		m[x.Name] = x.Value
	}
	if strings.HasSuffix(r.URL.Path, "/tools/shorturl") {
		// long_url is signed raw and URL-encoded on the wire (§5.10).
		raw, err := url.QueryUnescape(m["long_url"])
		if err != nil {
			t.Errorf("long_url %q: %v", m["long_url"], err)
		}
		m["long_url"] = raw
	}
	if want := refSign(st, key, m); m["sign"] != want {
		t.Errorf("request sign %q, want %s (%s)", m["sign"], want, st)
	}
	switch st {
	case wxpay.SignTypeHMACSHA256:
		if m["sign_type"] != "HMAC-SHA256" {
			t.Errorf("HMAC-SHA256 request with sign_type %q", m["sign_type"])
		}
	default:
		if m["sign_type"] != "" && m["sign_type"] != "MD5" {
			t.Errorf("MD5 request with sign_type %q", m["sign_type"])
		}
	}
	return m
}

// base returns the base fields of a request of the test merchant plus
// fields.
func base(fields map[string]string) map[string]string {
	m := map[string]string{"appid": testAppID, "mch_id": testMchID, "nonce_str": testNonce}
	maps.Copy(m, fields)
	return m
}

// checkFields compares a request's fields, sign excepted, with want.
func checkFields(t testing.TB, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && k != "sign" {
			t.Errorf("unexpected field %s = %q", k, v)
		}
	}
}

// okFields returns a successful answer of the test merchant: the envelope
// plus fields (an empty value in fields removes that field).
func okFields(fields map[string]string) map[string]string {
	m := map[string]string{
		"return_code": "SUCCESS", "return_msg": "OK", "appid": testAppID, "mch_id": testMchID,
		"nonce_str": "wxanswernonce0123456789", "result_code": "SUCCESS",
	}
	maps.Copy(m, fields)
	maps.DeleteFunc(m, func(_, v string) bool { return v == "" })
	return m
}

// answerOK writes a successful answer signed with key.
func answerOK(t testing.TB, w http.ResponseWriter, st wxpay.SignType, key string, fields map[string]string) {
	t.Helper()
	writeXML(w, signedXML(t, st, key, okFields(fields)))
}

// answerCode writes a signed business failure (result_code=FAIL).
func answerCode(t testing.TB, w http.ResponseWriter, st wxpay.SignType, key string, code ErrorCode, fields map[string]string) {
	t.Helper()
	m := map[string]string{"result_code": "FAIL", "err_code": string(code), "err_code_des": "描述 " + string(code)}
	maps.Copy(m, fields)
	answerOK(t, w, st, key, m)
}

// answerReturnFail writes an unsigned protocol failure (return_code=FAIL).
func answerReturnFail(w http.ResponseWriter, msg string) {
	writeXML(w, []byte("<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA["+msg+"]]></return_msg></xml>"))
}

func writeXML(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(b)
}

// answerShort sends a 200 whose body stops before its Content-Length: the
// connection drops in the middle of the answer.
func answerShort(t testing.TB, w http.ResponseWriter, body []byte) {
	t.Helper()
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n", len(body)+100)
	buf.Write(body)
	buf.Flush()
}

// hang blocks until the client gives up (or 10 s pass). It reads the body
// first: only then does the server notice the client hanging up.
func hang(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// wantIs fails unless err matches every target with errors.Is.
func wantIs(t testing.TB, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("nil error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q is not %v", err, target)
		}
	}
}
