package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// Canary secrets: recognisable values that must never show up in a log
// line or, but for the token in the login answer, in a response
// (reliability.md I9).
const (
	canaryAPIKey     = "CANARYapikeyCANARYapikey00000001" // 32 characters, as the v2 API key
	canaryAppSecret  = "CANARYappsecret0000000000000001"
	canaryAdminToken = "CANARY-admin-token-0000000000001"
	canarySessionKey = "CANARYsessionKey" // + 5 digits + "A==": base64 of 16 bytes
)

const appID = wxsim.DefaultAppID
const mchID = wxsim.DefaultMchID

// start is 2026-11-28 10:00:00 China Standard Time.
var start = time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)

var catalog = merchant.Catalog{
	"COFFEE": {SKU: "COFFEE", Name: "咖啡", Price: 1500},
	"TEA":    {SKU: "TEA", Name: "茶", Price: 990},
}

// logBuffer collects every log line of the merchant side, safely for
// concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// canaryIDs is the simulator's sequential ids, but with session keys that
// carry a canary, so a leak of the session_key can be seen.
type canaryIDs struct {
	wxsim.IDSource
	n atomic.Int64
}

func (c *canaryIDs) NewID(kind wxsim.IDKind, now time.Time) string {
	if kind == wxsim.IDSessionKey {
		// 24 characters of valid base64 (16 bytes), as WeChat's, that
		// start with the canary.
		return fmt.Sprintf("%s%05dA==", canarySessionKey, c.n.Add(1))
	}
	return c.IDSource.NewID(kind, now)
}

// lateHandler lets an httptest server start before its handler exists, so
// that the simulator can be told the merchant's URLs first.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*l.h.Load()).ServeHTTP(w, r)
}

// env is the merchant service served by httptest, on a real SQLite store
// and a real gateway (apiv2 and miniprogram clients) talking to an
// in-process simulator on a manual clock.
type env struct {
	t       *testing.T
	clock   *wxsim.ManualClock
	sim     *wxsim.Simulator
	simURL  string
	store   *sqlite.Store
	svc     *payments.Service
	server  *httpapi.Server
	metrics *httpapi.Metrics
	ts      *httptest.Server
	logs    *logBuffer
	pay     *apiv2.Client
}

type envOptions struct {
	http   func(*httpapi.Config)
	sim    func(*wxsim.Config)
	native bool // wire a NativeCallback
	v3     bool // the merchant uses APIv3 (wxgateway.NewV3)
}

// withV3 makes the merchant an APIv3 one.
func withV3(o *envOptions) { o.v3 = true }

func newEnv(t *testing.T, opts ...func(*envOptions)) *env {
	t.Helper()
	var o envOptions
	for _, f := range opts {
		f(&o)
	}
	e := &env{t: t, clock: wxsim.NewManualClock(start), logs: &logBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	late := &lateHandler{}
	e.ts = httptest.NewServer(late)
	t.Cleanup(e.ts.Close)

	simCfg := wxsim.Config{
		Merchants: []wxsim.Merchant{{
			MchID: mchID, APIKey: canaryAPIKey,
			Apps:              []wxsim.App{{AppID: appID, AppSecret: canaryAppSecret}},
			NativeCallbackURL: e.ts.URL + "/wxpay/native/callback",
		}},
		Clock:       e.clock,
		IDs:         &canaryIDs{IDSource: wxsim.NewSequentialIDs()},
		CloseMinAge: -1,
	}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim, err := wxsim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	simTS := httptest.NewServer(sim)
	e.simURL = simTS.URL
	t.Cleanup(func() {
		simTS.Close()
		sim.Close()
	})

	pay, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: canaryAPIKey},
		apiv2.WithBaseURL(simTS.URL), apiv2.WithClock(e.clock.Now), apiv2.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	e.pay = pay
	login, err := miniprogram.NewClient(appID, canaryAppSecret, miniprogram.WithBaseURL(simTS.URL), miniprogram.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e.metrics = httpapi.NewMetrics(reg)
	var gw merchant.Gateway
	if o.v3 {
		gw = newV3Gateway(t, sim, simTS.URL, e.clock.Now, logger, login, e.ts.URL, e.metrics)
	} else {
		gw, err = wxgateway.New(wxgateway.Config{Pay: pay, Login: login,
			NotifyURL: e.ts.URL + "/wxpay/notify/pay", RefundNotifyURL: e.ts.URL + "/wxpay/notify/refund",
			Observe: e.metrics.ObserveWeChat})
		if err != nil {
			t.Fatal(err)
		}
	}
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "merchant.db"), sqlite.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	t.Cleanup(func() { store.Close() })
	svc, err := payments.New(store, gw, payments.Config{Catalog: catalog, Now: e.clock.Now, Logger: logger, Metrics: e.metrics})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	cfg := httpapi.Config{Service: svc, AdminToken: canaryAdminToken, Logger: logger, Metrics: e.metrics, Registry: reg}
	if o.native {
		cfg.NativeCallback = &nativeCallback{pay: pay, svc: svc}
	}
	if o.http != nil {
		o.http(&cfg)
	}
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.server = srv
	h := srv.Handler()
	late.h.Store(&h)
	return e
}

// newV3Gateway is the APIv3 gateway of the simulator's merchant, with a
// started CertificateManager.
func newV3Gateway(t *testing.T, sim *wxsim.Simulator, simURL string, now func() time.Time, logger *slog.Logger,
	login *miniprogram.Client, merchantURL string, m *httpapi.Metrics) merchant.Gateway {
	t.Helper()
	creds, err := sim.V3Credentials(mchID)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := apiv3.NewClient(apiv3.Config{MchID: mchID, AppID: appID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key)},
		apiv3.WithBaseURL(simURL), apiv3.WithClock(now), apiv3.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := apiv3.NewCertificateManager(boot, wxpay.Secret(creds.APIv3Key))
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Stop)
	client, err := boot.WithVerifier(mgr)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := wxgateway.NewV3(wxgateway.ConfigV3{Pay: client, Login: login,
		NotifyURL: merchantURL + "/wxpay/notify/pay", RefundNotifyURL: merchantURL + "/wxpay/notify/refund",
		Observe: m.ObserveWeChat})
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// resp is an answer of the service.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%d): %v\n%s", r.status, err, r.body)
	}
}

// errCode returns the code of an error answer.
func (r resp) errCode(t *testing.T) string {
	t.Helper()
	var b httpapi.ErrorBody
	r.json(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b.Error.Code
}

// req describes a request: a JSON body (any value, or raw bytes / string
// sent as is), a Bearer token and headers.
type req struct {
	token   string
	body    any
	ctype   string
	headers map[string]string
}

// do sends a request to the service and reads the answer.
func (e *env) do(method, path string, q req) resp {
	e.t.Helper()
	var body io.Reader
	switch b := q.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	r, err := http.NewRequestWithContext(e.t.Context(), method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		ct := q.ctype
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	for k, v := range q.headers {
		r.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

// want fails unless the answer has the status.
func (r resp) want(t *testing.T, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// user is a WeChat user of the simulator, logged in to the service.
type user struct {
	openID string
	token  string
}

// login creates a simulator user, has it call wx.login and logs it in.
func (e *env) login() user {
	e.t.Helper()
	u, err := e.sim.CreateUser(wxsim.NewUser{AppID: appID})
	if err != nil {
		e.t.Fatal(err)
	}
	code, err := e.sim.LoginCode(appID, u.OpenID)
	if err != nil {
		e.t.Fatal(err)
	}
	var lr httpapi.LoginResponse
	e.do("POST", "/api/v1/login", req{body: map[string]string{"code": code}}).want(e.t, 200).json(e.t, &lr)
	if lr.Token == "" || lr.OpenID != u.OpenID {
		e.t.Fatalf("login answered %+v for %s", lr, u.OpenID)
	}
	return user{openID: u.OpenID, token: lr.Token}
}

// order places a JSAPI order of one coffee for u.
func (e *env) order(u user, key string) httpapi.PayableOrder {
	e.t.Helper()
	q := req{token: u.token, body: map[string]any{"items": []map[string]any{{"sku": "COFFEE", "quantity": 1}}, "trade_type": "JSAPI"}}
	if key != "" {
		q.headers = map[string]string{"Idempotency-Key": key}
	}
	r := e.do("POST", "/api/v1/orders", q)
	if r.status != 201 && r.status != 200 {
		e.t.Fatalf("create order: %d %s", r.status, r.body)
	}
	var po httpapi.PayableOrder
	r.json(e.t, &po)
	return po
}

// payWith has u pay with the pay parameters, as wx.requestPayment, and
// runs the notify that follows.
func (e *env) payWith(u user, p *httpapi.PayParams) {
	e.t.Helper()
	if p == nil {
		e.t.Fatal("no pay params")
	}
	res := e.sim.RequestPayment(wxsim.PaymentRequest{OpenID: u.openID, AppID: p.AppID, TimeStamp: p.TimeStamp,
		NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
	if !res.OK() {
		e.t.Fatalf("requestPayment: %s", res.ErrMsg)
	}
	e.sim.Flush()
}

// getOrder reads an order of u.
func (e *env) getOrder(u user, no string) httpapi.OrderView {
	e.t.Helper()
	var v httpapi.OrderView
	e.do("GET", "/api/v1/orders/"+no, req{token: u.token}).want(e.t, 200).json(e.t, &v)
	return v
}

// admin sends an admin request.
func (e *env) admin(method, path string, body any) resp {
	e.t.Helper()
	return e.do(method, path, req{token: canaryAdminToken, body: body})
}

// nativeCallback is how the command answers a Native mode-1 scan: verify
// the callback with apiv2, place a NATIVE order for the scanned product
// for the scanning user, and reply with its prepay id.
type nativeCallback struct {
	pay *apiv2.Client
	svc *payments.Service
}

func (n *nativeCallback) Handle(ctx context.Context, body []byte) ([]byte, error) {
	cb, err := n.pay.ParseNativeCallback(body)
	if err != nil {
		return nil, err
	}
	sess := &merchant.Session{OpenID: cb.OpenID, AppID: cb.AppID}
	res, err := n.svc.CreateOrder(ctx, sess, payments.CreateOrderRequest{
		Items: []merchant.CartLine{{SKU: cb.ProductID, Quantity: 1}}, TradeType: wxpay.TradeTypeNative,
	})
	if err != nil {
		reply, rerr := n.pay.NativeCallbackReply("", merchant.ErrorMessage(err))
		if rerr != nil {
			return nil, rerr
		}
		return reply, err
	}
	return n.pay.NativeCallbackReply(res.Order.PrepayID, "")
}

// msg is a flat v2 message a test builds, as WeChat would send it.
type msg map[string]string

// signed returns a copy of m signed (MD5) with key.
func (m msg) signed(key string) msg {
	out := msg{}
	for k, v := range m {
		out[k] = v
	}
	delete(out, "sign")
	sig, err := wxcrypto.SignMap(wxpay.SignTypeMD5, key, out)
	if err != nil {
		panic(err)
	}
	out["sign"] = sig
	return out
}

// lowerSign returns a copy of m with its sign in lower case.
func (m msg) lowerSign() msg {
	out := msg{}
	for k, v := range m {
		out[k] = v
	}
	out["sign"] = strings.ToLower(out["sign"])
	return out
}

// xml writes m as WeChat's flat XML, values in CDATA, keys sorted.
func (m msg) xml() []byte {
	fields := wxcrypto.FieldsFromMap(m)
	wxcrypto.SortFields(fields)
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, f := range fields {
		b.WriteString("<" + f.Name + "><![CDATA[" + f.Value + "]]></" + f.Name + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// setField sets a field of a message.
func setField(fields []wxcrypto.Field, name, value string) []wxcrypto.Field {
	for i := range fields {
		if fields[i].Name == name {
			fields[i].Value = value
			return fields
		}
	}
	return append(fields, wxcrypto.Field{Name: name, Value: value})
}

// simUser describes a new simulator user of the app.
func simUser() wxsim.NewUser { return wxsim.NewUser{AppID: appID} }
