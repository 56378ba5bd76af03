package wxsim_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// testAPIv3Key is the APIv3 key of vector D (protocol.md §14).
const testAPIv3Key = "WeChatPayApiV3KeyForTestOnly0032"

// testMerchantSerial is the serial of testMerchantCertPEM.
const testMerchantSerial = "3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8"

// v3env is an env whose default merchant has the fixed test keys for
// APIv3, with a v3 client and a merchant server for v3 notifies.
type v3env struct {
	*env
	cli *v3Client
	ms  *v3MerchantServer
}

// v3Config gives the default merchant the fixed test keys.
func v3Config(c *wxsim.Config) {
	m := wxsim.DefaultMerchant()
	m.V3.CertificatePEM = []byte(testMerchantCertPEM)
	m.V3.APIv3Key = testAPIv3Key
	c.Merchants = []wxsim.Merchant{m}
	c.V3.PlatformKeys = [][]byte{[]byte(testPlatformKeyPEM), []byte(testPlatform2KeyPEM)}
	c.V3.PublicKeyKeys = [][]byte{[]byte(testPubKeyKeyPEM)}
}

func newV3Env(t *testing.T, tweak ...func(*wxsim.Config)) *v3env {
	t.Helper()
	e := newEnv(t, append([]func(*wxsim.Config){v3Config}, tweak...)...)
	key, err := wxcrypto.ParsePrivateKey([]byte(testMerchantKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	ve := &v3env{env: e, ms: newV3MerchantServer(t)}
	ve.cli = &v3Client{t: t, base: e.srv.URL, hc: e.srv.Client(), sim: e.sim, mchID: mchID, serial: testMerchantSerial, key: key}
	return ve
}

// v3Client signs APIv3 requests with wxcrypto, as a merchant would.
type v3Client struct {
	t      testing.TB
	base   string
	hc     *http.Client
	sim    *wxsim.Simulator
	mchID  string
	serial string
	key    *rsa.PrivateKey
	skew   time.Duration // added to the request timestamp
}

// v3Answer is an APIv3 answer.
type v3Answer struct {
	status int
	header http.Header
	body   []byte
}

func (a v3Answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
}

// errBody is a v3 error body.
type errBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  struct {
		Field           string          `json:"field"`
		Value           json.RawMessage `json:"value"`
		Issue           string          `json:"issue"`
		Location        string          `json:"location"`
		SignInformation *struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"sign_information"`
	} `json:"detail"`
}

func (a v3Answer) err(t testing.TB) errBody {
	t.Helper()
	var e errBody
	a.decode(t, &e)
	return e
}

// expectErr checks an error answer's status and code and returns its body.
func (a v3Answer) expectErr(t testing.TB, status int, code string) errBody {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d: %s", a.status, status, a.body)
	}
	e := a.err(t)
	if e.Code != code || e.Message == "" {
		t.Fatalf("error = %+v, want code %s", e, code)
	}
	return e
}

// do sends a signed request; body is nil, []byte or a value to marshal.
func (c *v3Client) do(method, pathQuery string, body any) v3Answer {
	c.t.Helper()
	return c.doWith(method, pathQuery, body, nil)
}

// doWith sends a signed request after letting edit change it (and its
// Authorization) after signing.
func (c *v3Client) doWith(method, pathQuery string, body any, edit func(r *http.Request, a *wxcrypto.AuthorizationV3)) v3Answer {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.base+pathQuery, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	ts := c.sim.Now().Add(c.skew).Unix()
	nonce := wxcrypto.NewNonce()
	sig, err := wxcrypto.SignV3(c.key, method, pathQuery, ts, nonce, raw)
	if err != nil {
		c.t.Fatal(err)
	}
	a := &wxcrypto.AuthorizationV3{MchID: c.mchID, SerialNo: c.serial, Nonce: nonce, Timestamp: ts, Signature: sig}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wxsim-test")
	if edit != nil {
		edit(req, a)
	}
	if req.Header.Get("X-No-Authorization") == "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", a.String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return v3Answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// keys returns WeChat's verification keys of mch by serial: the platform
// certificates and the public key.
func v3Keys(t testing.TB, sim *wxsim.Simulator, mch string) map[string]*rsa.PublicKey {
	t.Helper()
	creds, err := sim.V3Credentials(mch)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, pc := range creds.PlatformCertificates {
		cert, err := wxcrypto.ParseCertificate([]byte(pc.CertPEM))
		if err != nil {
			t.Fatal(err)
		}
		if got := wxcrypto.CertificateSerial(cert); got != pc.Serial {
			t.Fatalf("certificate serial %s listed as %s", got, pc.Serial)
		}
		out[pc.Serial] = cert.PublicKey.(*rsa.PublicKey)
	}
	if creds.PublicKeyID != "" {
		pk, err := wxcrypto.ParsePublicKey([]byte(creds.PublicKeyPEM))
		if err != nil {
			t.Fatal(err)
		}
		out[creds.PublicKeyID] = pk
	}
	return out
}

// verifyV3 checks the Wechatpay-* headers of an answer or notify as a
// merchant must (protocol.md §13.2) and returns the serial.
func verifyV3(t testing.TB, sim *wxsim.Simulator, h http.Header, body []byte) string {
	t.Helper()
	if err := checkV3(sim, mchID, h, body); err != "" {
		t.Fatal(err)
	}
	return h.Get("Wechatpay-Serial")
}

// checkV3 is verifyV3 returning the reason it fails ("" when it passes).
func checkV3(sim *wxsim.Simulator, mch string, h http.Header, body []byte) string {
	serial, ts, nonce, sig := h.Get("Wechatpay-Serial"), h.Get("Wechatpay-Timestamp"), h.Get("Wechatpay-Nonce"), h.Get("Wechatpay-Signature")
	if serial == "" || ts == "" || nonce == "" || sig == "" {
		return "missing Wechatpay-* headers"
	}
	if h.Get("Wechatpay-Signature-Type") != wxcrypto.AuthSchemeV3 {
		return "Wechatpay-Signature-Type = " + h.Get("Wechatpay-Signature-Type")
	}
	if strings.HasPrefix(sig, "WECHATPAY/SIGNTEST/") {
		return "probe signature"
	}
	n, ok := wxcrypto.ParseV3Timestamp(ts)
	if !ok {
		return "bad timestamp " + ts
	}
	if d := sim.Now().Unix() - n; d >= 300 || d <= -300 {
		return "timestamp " + ts + " off by " + strconv.FormatInt(d, 10) + " s"
	}
	keys := v3KeysNoT(sim, mch)
	pub := keys[serial]
	if pub == nil {
		return "unknown serial " + serial
	}
	if err := wxcrypto.VerifyV3(pub, ts, nonce, body, sig); err != nil {
		return "signature under " + serial + ": " + err.Error()
	}
	return ""
}

func v3KeysNoT(sim *wxsim.Simulator, mch string) map[string]*rsa.PublicKey {
	out := map[string]*rsa.PublicKey{}
	creds, err := sim.V3Credentials(mch)
	if err != nil {
		return out
	}
	for _, pc := range creds.PlatformCertificates {
		if cert, err := wxcrypto.ParseCertificate([]byte(pc.CertPEM)); err == nil {
			out[pc.Serial] = cert.PublicKey.(*rsa.PublicKey)
		}
	}
	if pk, err := wxcrypto.ParsePublicKey([]byte(creds.PublicKeyPEM)); err == nil {
		out[creds.PublicKeyID] = pk
	}
	return out
}

// v3Notify is a received v3 notify.
type v3Notify struct {
	path   string
	header http.Header
	body   []byte
}

// v3Envelope is the JSON of a v3 notify.
type v3Envelope struct {
	ID           string `json:"id"`
	CreateTime   string `json:"create_time"`
	EventType    string `json:"event_type"`
	ResourceType string `json:"resource_type"`
	Summary      string `json:"summary"`
	Resource     struct {
		Algorithm      string `json:"algorithm"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
		OriginalType   string `json:"original_type"`
		Nonce          string `json:"nonce"`
	} `json:"resource"`
}

// open decodes the notify and decrypts its resource with the APIv3 key.
func (n v3Notify) open(t testing.TB, key string) (v3Envelope, []byte, error) {
	t.Helper()
	var env v3Envelope
	if err := json.Unmarshal(n.body, &env); err != nil {
		t.Fatalf("notify is not JSON: %v: %s", err, n.body)
	}
	plain, err := wxcrypto.DecryptAEAD(wxpay.Secret(key), env.Resource.Nonce, env.Resource.AssociatedData, env.Resource.Ciphertext)
	return env, plain, err
}

// v3MerchantServer receives v3 notifies, verifies them as a merchant
// does (unless told not to) and answers by script.
type v3MerchantServer struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	got   []v3Notify
	reply func(n v3Notify, i int) (int, string) // i counts from 0
	sim   *wxsim.Simulator                      // when set, notifies failing verification get 401
}

func newV3MerchantServer(t *testing.T) *v3MerchantServer {
	ms := &v3MerchantServer{t: t}
	ms.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := v3Notify{path: r.URL.Path, header: r.Header.Clone(), body: b}
		ms.mu.Lock()
		i := len(ms.got)
		ms.got = append(ms.got, n)
		reply, sim := ms.reply, ms.sim
		ms.mu.Unlock()
		if sim != nil {
			if why := checkV3(sim, mchID, r.Header, b); why != "" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"code":"FAIL","message":"`+why+`"}`)
				return
			}
		}
		if reply != nil {
			status, body := reply(n, i)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ms.srv.Close)
	return ms
}

func (ms *v3MerchantServer) url(path string) string { return ms.srv.URL + path }

func (ms *v3MerchantServer) received() []v3Notify {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]v3Notify(nil), ms.got...)
}

func (ms *v3MerchantServer) setReply(f func(n v3Notify, i int) (int, string)) {
	ms.mu.Lock()
	ms.reply = f
	ms.mu.Unlock()
}

var v3Seq int

// newOTN returns a fresh out_trade_no.
func newOTN() string {
	v3Seq++
	return "V3T" + strconv.Itoa(int(time.Now().UnixNano()%1e9)) + strconv.Itoa(v3Seq)
}

// prepayBody is a v3 prepay request body.
func (e *v3env) prepayBody(otn string, total int64, openID string) map[string]any {
	b := map[string]any{
		"appid": appID, "mchid": mchID, "description": "测试商店-商品", "out_trade_no": otn,
		"notify_url": e.ms.url("/v3/notify/pay"), "amount": map[string]any{"total": total, "currency": "CNY"},
	}
	if openID != "" {
		b["payer"] = map[string]any{"openid": openID}
	}
	return b
}

// prepayJSAPI places a v3 JSAPI order and returns its prepay_id.
func (e *v3env) prepayJSAPI(otn string, total int64, openID string) string {
	e.t.Helper()
	a := e.cli.do("POST", "/v3/pay/transactions/jsapi", e.prepayBody(otn, total, openID))
	if a.status != http.StatusOK {
		e.t.Fatalf("prepay: %d %s", a.status, a.body)
	}
	verifyV3(e.t, e.sim, a.header, a.body)
	var r struct {
		PrepayID string `json:"prepay_id"`
	}
	a.decode(e.t, &r)
	if !strings.HasPrefix(r.PrepayID, "wx") {
		e.t.Fatalf("prepay answer %s", a.body)
	}
	return r.PrepayID
}

// rsaPayment is the v3 wx.requestPayment parameters for prepayID, signed
// with key.
func rsaPayment(t testing.TB, key *rsa.PrivateKey, openID, prepayID string) wxsim.PaymentRequest {
	t.Helper()
	req := wxsim.PaymentRequest{OpenID: openID, AppID: appID, TimeStamp: "1764300000", NonceStr: wxcrypto.NewNonce(),
		Package: "prepay_id=" + prepayID, SignType: "RSA"}
	sig, err := wxcrypto.MiniProgramPaySignV3(key, appID, req.TimeStamp, req.NonceStr, prepayID)
	if err != nil {
		t.Fatal(err)
	}
	req.PaySign = sig
	return req
}

// payV3 pays a v3 JSAPI order through wx.requestPayment with an RSA paySign.
func (e *v3env) payV3(openID, prepayID string) string {
	e.t.Helper()
	res := e.sim.RequestPayment(rsaPayment(e.t, e.cli.key, openID, prepayID))
	if !res.OK() {
		e.t.Fatalf("requestPayment: %s", res.ErrMsg)
	}
	return res.TransactionID
}

// v3Txn is a decoded v3 transaction.
type v3Txn struct {
	MchID          string `json:"mchid"`
	AppID          string `json:"appid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id"`
	TradeType      string `json:"trade_type"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type"`
	Attach         string `json:"attach"`
	SuccessTime    string `json:"success_time"`
	Payer          struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
	Amount struct {
		Total      int64  `json:"total"`
		PayerTotal int64  `json:"payer_total"`
		Currency   string `json:"currency"`
	} `json:"amount"`
}

// query queries an order by out_trade_no through v3.
func (e *v3env) query(otn string) v3Txn {
	e.t.Helper()
	a := e.cli.do("GET", "/v3/pay/transactions/out-trade-no/"+otn+"?mchid="+mchID, nil)
	if a.status != http.StatusOK {
		e.t.Fatalf("query %s: %d %s", otn, a.status, a.body)
	}
	verifyV3(e.t, e.sim, a.header, a.body)
	var tx v3Txn
	a.decode(e.t, &tx)
	return tx
}
