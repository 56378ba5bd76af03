package apiv3

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// The test merchant. Its keys are the TEST-ONLY keys of testdata/ (see its
// README.txt).
const (
	testMchID          = "1900009191"
	testAppID          = "wxd678efh567hg6787"
	testOpenID         = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	testNonce          = "593BEC0C930BF1AFEB40B4A08C8FB242"
	testNotifyURL      = "https://shop.example/wxpay/notify"
	merchantSerial     = "3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8"
	testAPIv3Key       = wxpay.Secret("WeChatPayApiV3KeyForTestOnly0032")
	platformSerial     = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	platform2Serial    = "6A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
	pubKeyID           = "PUB_KEY_ID_0114232134912410000000000000"
	answerNonce        = "c5ac7061fccab6bf3e254dcf98995b8c"
	testPrepayID       = "wx201410272009395522657a690389285100"
	testTransactionID  = "4200000000000000000000000001"
	testOutTradeNo     = "1217752501201407033233368018"
	testOutRefundNo    = "R1217752501201407033233368018"
	testRefundID       = "50000000382019052709732678859"
	canaryPrivateKeyID = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" // the start of every PKCS#8 RSA key: never in a log
)

// testNow is the clock of the tests.
var testNow = time.Date(2026, 11, 29, 10, 0, 0, 0, wxpay.China)

func fixedClock() time.Time { return testNow }
func fixedNonce() string    { return testNonce }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var keyCache sync.Map

// testKey returns a private key of testdata/.
func testKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	if k, ok := keyCache.Load(name); ok {
		return k.(*rsa.PrivateKey)
	}
	k, err := wxcrypto.ParsePrivateKey(readTestdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	keyCache.Store(name, k)
	return k
}

func merchantKey(t testing.TB) *rsa.PrivateKey  { return testKey(t, "merchant_key.pem") }
func platformKey(t testing.TB) *rsa.PrivateKey  { return testKey(t, "platform_key.pem") }
func platform2Key(t testing.TB) *rsa.PrivateKey { return testKey(t, "platform2_key.pem") }
func pubKeyKey(t testing.TB) *rsa.PrivateKey    { return testKey(t, "pubkey_key.pem") }

// makeCert makes a self-signed "platform certificate" for key.
func makeCert(t testing.TB, key *rsa.PrivateKey, serialHex string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	n, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		t.Fatalf("bad serial %s", serialHex)
	}
	tmpl := &x509.Certificate{
		SerialNumber: n,
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA test " + serialHex[:6], Organization: []string{"wxpay-go test, not WeChat"}},
		NotBefore:    notBefore, NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// platformCert is valid a year around testNow.
func platformCert(t testing.TB) *x509.Certificate {
	return makeCert(t, platformKey(t), platformSerial, testNow.AddDate(-1, 0, 0), testNow.AddDate(1, 0, 0))
}

func pubKeyVerifier(t testing.TB) *PublicKeyVerifier {
	v, err := NewPublicKeyVerifier(pubKeyID, readTestdata(t, "pub_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fakeWeChat is a stand-in for api.mch.weixin.qq.com: it checks the
// merchant's Authorization header on every request (with the merchant's
// public key, by wxcrypto's verifier and the documented message), and
// signs its answers with a platform key, as WeChat does.
type fakeWeChat struct {
	t        testing.TB
	srv      *httptest.Server
	mux      *http.ServeMux
	requests atomic.Int64

	mu     sync.Mutex
	key    *rsa.PrivateKey  // the signing key of answers
	serial string           // its Wechatpay-Serial
	skew   time.Duration    // added to the answer timestamp
	clock  func() time.Time // the answers' clock; nil means testNow
	last   *http.Request
	body   []byte
}

func newFake(t testing.TB) *fakeWeChat {
	f := &fakeWeChat{t: t, mux: http.NewServeMux(), key: pubKeyKey(t), serial: pubKeyID}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.last, f.body = r, body
		f.mu.Unlock()
		if err := checkAuthorization(t, r, body); err != nil {
			f.reply(w, 401, `{"code":"SIGN_ERROR","message":"`+err.Error()+`"}`)
			return
		}
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// checkAuthorization verifies a request's Authorization as WeChat does.
func checkAuthorization(t testing.TB, r *http.Request, body []byte) error {
	a, err := wxcrypto.ParseAuthorizationV3(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if a.MchID != testMchID || a.SerialNo != merchantSerial {
		return fmt.Errorf("mchid %s serial %s", a.MchID, a.SerialNo)
	}
	return wxcrypto.VerifyV3Request(&merchantKey(t).PublicKey, r.Method, r.URL.RequestURI(), a.Timestamp, a.Nonce, body, a.Signature)
}

func (f *fakeWeChat) setSigner(key *rsa.PrivateKey, serial string) {
	f.mu.Lock()
	f.key, f.serial = key, serial
	f.mu.Unlock()
}

func (f *fakeWeChat) lastRequest() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.body
}

// signHeaders sets the Wechatpay-* headers of body.
func (f *fakeWeChat) signHeaders(h http.Header, body []byte) {
	f.mu.Lock()
	key, serial, skew, clock := f.key, f.serial, f.skew, f.clock
	f.mu.Unlock()
	now := testNow
	if clock != nil {
		now = clock()
	}
	ts := strconv.FormatInt(now.Add(skew).Unix(), 10)
	sig, err := wxcrypto.SignV3Response(key, ts, answerNonce, body)
	if err != nil {
		f.t.Error(err)
	}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderNonce, answerNonce)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSerial, serial)
	h.Set(HeaderSignatureType, wxcrypto.AuthSchemeV3)
	h.Set(HeaderRequestID, "08F78BB5AF0610D302A2E8D0C58E0318E2F9FA03-0")
}

// reply writes a signed answer.
func (f *fakeWeChat) reply(w http.ResponseWriter, status int, body string) {
	f.signHeaders(w.Header(), []byte(body))
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// handle answers a route with a fixed signed answer.
func (f *fakeWeChat) handle(pattern string, status int, body string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { f.reply(w, status, body) })
}

// newTestClient is a client of f, verifying with the WeChat Pay public key.
func newTestClient(t testing.TB, f *fakeWeChat, opts ...Option) *Client {
	t.Helper()
	cfg := testConfig(t)
	cfg.Verifier = pubKeyVerifier(t)
	opts = append([]Option{WithBaseURL(f.srv.URL), WithClock(fixedClock), WithNonce(fixedNonce)}, opts...)
	c, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testConfig(t testing.TB) Config {
	return Config{
		MchID: testMchID, AppID: testAppID, CertSerial: merchantSerial,
		PrivateKey: wxpay.Secret(readTestdata(t, "merchant_key.pem")), APIv3Key: testAPIv3Key,
		NotifyURL: testNotifyURL,
	}
}

// transactionJSON is vector D2's plaintext (protocol.md §14): a paid
// transaction of 431 bytes.
const transactionJSON = `{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`

// ourTransaction is transactionJSON for the test merchant.
var ourTransaction = []byte(`{"mchid":"1900009191","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`)

// notifyBody builds a notify whose resource is plaintext, encrypted with
// the test APIv3 key.
func notifyBody(t testing.TB, event, aad, nonce string, plaintext []byte) []byte {
	t.Helper()
	ct, err := wxcrypto.EncryptAEAD(testAPIv3Key, padNonce(nonce), aad, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00", "event_type": event,
		"resource_type": "encrypt-resource", "summary": "支付成功",
		"resource": map[string]string{"algorithm": "AEAD_AES_256_GCM", "ciphertext": ct, "associated_data": aad,
			"original_type": aad, "nonce": nonce},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// padNonce lets a test give a nonce of the wrong length in the body while
// the ciphertext is made with a valid one.
func padNonce(n string) string {
	if len(n) == 12 {
		return n
	}
	return "fdasflkja484"
}

// signedHeader signs a notify body with the WeChat Pay public key at
// testNow+skew.
func signedHeader(t testing.TB, body []byte, skew time.Duration) http.Header {
	t.Helper()
	f := &fakeWeChat{t: t, key: pubKeyKey(t), serial: pubKeyID, skew: skew}
	h := http.Header{}
	f.signHeaders(h, body)
	return h
}
