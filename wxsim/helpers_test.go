package wxsim_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
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

const (
	appID  = wxsim.DefaultAppID
	mchID  = wxsim.DefaultMchID
	apiKey = wxsim.DefaultAPIKey
)

// start is 2026-11-28 10:00:00 China Standard Time.
var start = time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)

// env is a simulator on a manual clock, served by httptest, with a merchant
// server that receives its notifies.
type env struct {
	t        *testing.T
	sim      *wxsim.Simulator
	clock    *wxsim.ManualClock
	srv      *httptest.Server
	merchant *merchantServer
}

func newEnv(t *testing.T, tweak ...func(*wxsim.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: wxsim.NewManualClock(start)}
	e.merchant = newMerchantServer(t)
	cfg := wxsim.Config{
		Clock:       e.clock,
		IDs:         wxsim.NewSequentialIDs(),
		CloseMinAge: -1,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	sim, err := wxsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	e.srv = httptest.NewServer(sim)
	t.Cleanup(func() {
		e.srv.Close()
		sim.Close()
	})
	return e
}

// msg is a flat v2 message as a test builds or reads it.
type msg map[string]string

// kv turns "k", "v", … into a msg.
func kv(pairs ...string) msg {
	m := msg{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// with returns a copy of m with more fields (an empty value deletes).
func (m msg) with(pairs ...string) msg {
	out := msg{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			delete(out, pairs[i])
		} else {
			out[pairs[i]] = pairs[i+1]
		}
	}
	return out
}

// signed adds appid, mch_id, nonce_str (unless present) and a sign made with
// key and the message's sign_type.
func (m msg) signed(key string) msg {
	out := m.with()
	if _, ok := out["appid"]; !ok {
		out["appid"] = appID
	}
	if _, ok := out["mch_id"]; !ok {
		out["mch_id"] = mchID
	}
	if _, ok := out["nonce_str"]; !ok {
		out["nonce_str"] = wxcrypto.NewNonce()
	}
	delete(out, "sign")
	st := wxpay.SignType(out["sign_type"])
	if st == "" {
		st = wxpay.SignTypeMD5
	}
	sig, err := wxcrypto.SignMap(st, key, out)
	if err != nil {
		panic(err)
	}
	out["sign"] = sig
	return out
}

// xmlBody writes the message as WeChat's flat XML, values in CDATA.
func (m msg) xmlBody() []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, k := range sortedKeys(m) {
		b.WriteString("<" + k + "><![CDATA[" + m[k] + "]]></" + k + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

func sortedKeys(m msg) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// parseXML reads a flat <xml> answer with encoding/xml (independent of the
// simulator's codec).
func parseXML(t testing.TB, body []byte) msg {
	t.Helper()
	out := msg{}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var cur string
	var text strings.Builder
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("answer is not XML: %v\n%s", err, body)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				cur = tk.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if depth == 2 {
				text.Write(tk)
			}
		case xml.EndElement:
			if depth == 2 {
				out[cur] = text.String()
			}
			depth--
		}
	}
	return out
}

// verifySigned checks the answer's sign with key and sign type t.
func verifySigned(t testing.TB, m msg, key string, st wxpay.SignType) {
	t.Helper()
	fields := wxcrypto.FieldsFromMap(map[string]string(m))
	if !wxcrypto.Verify(st, key, fields, m["sign"]) {
		t.Fatalf("answer signature does not verify (%s): %v", st, m)
	}
}

// call POSTs a signed request to path and returns the parsed answer,
// checking the envelope's signature when return_code is SUCCESS.
func (e *env) call(path string, m msg) msg {
	e.t.Helper()
	return e.callKey(path, m, apiKey)
}

func (e *env) callKey(path string, m msg, key string) msg {
	e.t.Helper()
	signed := m.signed(key)
	body, resp := e.raw(http.MethodPost, path, signed.xmlBody())
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	ans := parseXML(e.t, body)
	if ans["return_code"] == wxpay.Success && ans["sign"] != "" {
		st := wxpay.SignType(signed["sign_type"])
		if st == "" {
			st = wxpay.SignTypeMD5
		}
		verifySigned(e.t, ans, key, st)
	}
	return ans
}

func (e *env) raw(method, path string, body []byte) ([]byte, *http.Response) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp
}

// ctl calls the control API and decodes the JSON answer into out (if not
// nil); it returns the status.
func (e *env) ctl(method, path string, in, out any) int {
	e.t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	b, resp := e.raw(method, path, body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: bad JSON %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// user creates a user and returns its openid.
func (e *env) user(balance int64) string {
	e.t.Helper()
	u, err := e.sim.CreateUser(wxsim.NewUser{Balance: balance})
	if err != nil {
		e.t.Fatal(err)
	}
	return u.OpenID
}

var orderSeq int

// order places a JSAPI unifiedorder for openid and returns the answer and
// its out_trade_no.
func (e *env) order(openID string, fee int64, extra ...string) (msg, string) {
	e.t.Helper()
	orderSeq++
	otn := "T" + strconv.Itoa(int(time.Now().UnixNano()%1e9)) + strconv.Itoa(orderSeq)
	m := kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", strconv.FormatInt(fee, 10),
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID).with(extra...)
	ans := e.call("/pay/unifiedorder", m)
	if ans["result_code"] != wxpay.Success {
		e.t.Fatalf("unifiedorder: %v", ans)
	}
	return ans, m["out_trade_no"]
}

// paySign computes the mini-program pay parameters for prepayID.
func paySign(key, appid, prepayID string, st wxpay.SignType) wxsim.PaymentRequest {
	req := wxsim.PaymentRequest{AppID: appid, TimeStamp: "1764300000", NonceStr: wxcrypto.NewNonce(),
		Package: "prepay_id=" + prepayID, SignType: string(st)}
	fields := []wxcrypto.Field{{Name: "appId", Value: appid}, {Name: "nonceStr", Value: req.NonceStr},
		{Name: "package", Value: req.Package}, {Name: "signType", Value: req.SignType}, {Name: "timeStamp", Value: req.TimeStamp}}
	sig, err := wxcrypto.Sign(st, key, fields)
	if err != nil {
		panic(err)
	}
	req.PaySign = sig
	return req
}

// pay pays an order placed with e.order.
func (e *env) pay(openID string, ans msg) {
	e.t.Helper()
	req := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeMD5)
	req.OpenID = openID
	if res := e.sim.RequestPayment(req); !res.OK() {
		e.t.Fatalf("requestPayment: %s", res.ErrMsg)
	}
}

// merchantServer receives notifies and answers with a scripted reply.
type merchantServer struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	got     []msg
	reply   func(path string, m msg) (int, string)
	replies []string // scripted bodies, used in order, then okReply
}

const okReply = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"

func newMerchantServer(t *testing.T) *merchantServer {
	ms := &merchantServer{t: t}
	ms.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m := parseXML(t, b)
		m["_path"] = r.URL.Path
		ms.mu.Lock()
		ms.got = append(ms.got, m)
		reply := ms.reply
		var scripted string
		if len(ms.replies) > 0 {
			scripted, ms.replies = ms.replies[0], ms.replies[1:]
		}
		ms.mu.Unlock()
		if reply != nil {
			status, body := reply(r.URL.Path, m)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		if scripted != "" {
			_, _ = io.WriteString(w, scripted)
			return
		}
		_, _ = io.WriteString(w, okReply)
	}))
	t.Cleanup(ms.srv.Close)
	return ms
}

func (ms *merchantServer) url(path string) string { return ms.srv.URL + path }

func (ms *merchantServer) received() []msg {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]msg(nil), ms.got...)
}

func (ms *merchantServer) script(bodies ...string) {
	ms.mu.Lock()
	ms.replies = append(ms.replies, bodies...)
	ms.mu.Unlock()
}

// lockedWriter is an io.Writer safe for concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
