package wxgateway_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// start is when the simulator's clock starts: 2026-11-28 10:00 China time.
var start = time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)

// notifySink is the merchant's notify URL: it keeps every request (header
// and raw body) and answers 204.
type notifySink struct {
	mu   sync.Mutex
	reqs []capturedNotify
}

type capturedNotify struct {
	path   string
	header http.Header
	body   []byte
}

func (s *notifySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	s.mu.Lock()
	s.reqs = append(s.reqs, capturedNotify{r.URL.Path, r.Header.Clone(), body})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *notifySink) take(path string) []capturedNotify {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []capturedNotify
	for _, r := range s.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// v3env is a V3 gateway against the simulator.
type v3env struct {
	srv     *wxpaytest.Server
	gw      *wxgateway.V3
	sink    *notifySink
	creds   wxsim.V3Credentials
	calls   map[string]string // api → last outcome
	callsMu sync.Mutex
}

func newV3Env(t *testing.T) *v3env {
	t.Helper()
	e := &v3env{sink: &notifySink{}, calls: map[string]string{}}
	ms := httptest.NewServer(e.sink)
	t.Cleanup(ms.Close)
	e.srv = wxpaytest.NewServer(t, wxpaytest.WithManualClock(start), wxpaytest.WithConfig(func(c *wxsim.Config) {
		c.CloseMinAge = -1
		c.RefundDelay = time.Minute
	}))
	var err error
	if e.creds, err = e.srv.Sim.V3Credentials(e.srv.MchID); err != nil {
		t.Fatal(err)
	}
	boot, err := apiv3.NewClient(apiv3.Config{MchID: e.srv.MchID, AppID: e.srv.AppID, CertSerial: e.creds.CertSerial,
		PrivateKey: wxpay.Secret(e.creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(e.creds.APIv3Key)},
		apiv3.WithBaseURL(e.srv.URL), apiv3.WithClock(e.srv.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := apiv3.NewCertificateManager(boot, wxpay.Secret(e.creds.APIv3Key))
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Stop)
	client, err := boot.WithVerifier(mgr)
	if err != nil {
		t.Fatal(err)
	}
	e.gw, err = wxgateway.NewV3(wxgateway.ConfigV3{Pay: client, Login: e.srv.Login,
		NotifyURL: ms.URL + "/notify/pay", RefundNotifyURL: ms.URL + "/notify/refund",
		Observe: func(api, outcome string, _ time.Duration) {
			e.callsMu.Lock()
			e.calls[api] = outcome
			e.callsMu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *v3env) outcome(api string) string {
	e.callsMu.Lock()
	defer e.callsMu.Unlock()
	return e.calls[api]
}

// order is a JSAPI order of 2800 fen for a new user.
func (e *v3env) order(t *testing.T, no string) (*merchant.Order, string) {
	t.Helper()
	user := e.srv.NewUser(t)
	return &merchant.Order{OutTradeNo: no, AppID: e.srv.AppID, MchID: e.srv.MchID, OpenID: user, Body: "wxpay-latte",
		TotalFee: 2800, TradeType: wxpay.TradeTypeJSAPI, ClientIP: "203.0.113.7", ExpiresAt: start.Add(30 * time.Minute)}, user
}

// pay has the user pay the order with the pay parameters the gateway
// signs, as the WeChat client does.
func (e *v3env) pay(t *testing.T, user, prepayID string) {
	t.Helper()
	pp, err := e.gw.PayParams(prepayID)
	if err != nil {
		t.Fatal(err)
	}
	if pp.SignType != "RSA" || pp.AppID != e.srv.AppID || pp.Package != "prepay_id="+prepayID {
		t.Fatalf("pay params: %+v", pp)
	}
	res := e.srv.Sim.RequestPayment(wxsim.PaymentRequest{OpenID: user, AppID: pp.AppID, TimeStamp: pp.TimeStamp,
		NonceStr: pp.NonceStr, Package: pp.Package, SignType: pp.SignType, PaySign: pp.PaySign})
	if !res.OK() {
		t.Fatalf("requestPayment: %s", res.ErrMsg)
	}
}

func (e *v3env) deliver(t *testing.T) {
	t.Helper()
	e.srv.Sim.Flush()
	if err := e.srv.Sim.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewV3Validates(t *testing.T) {
	e := newV3Env(t)
	creds := e.creds
	noVerifier, err := apiv3.NewClient(apiv3.Config{MchID: e.srv.MchID, AppID: e.srv.AppID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := wxcrypto.ParseCertificate([]byte(creds.PlatformCertificates[0].CertPEM))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := apiv3.NewCertificateVerifier(cert)
	if err != nil {
		t.Fatal(err)
	}
	noApp, err := apiv3.NewClient(apiv3.Config{MchID: e.srv.MchID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key), Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	good, err := noVerifier.WithVerifier(verifier)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]wxgateway.ConfigV3{
		"no client":     {NotifyURL: "https://shop.example/n"},
		"no verifier":   {Pay: noVerifier, NotifyURL: "https://shop.example/n"},
		"no app id":     {Pay: noApp, NotifyURL: "https://shop.example/n"},
		"no notify url": {Pay: good},
	} {
		if _, err := wxgateway.NewV3(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestV3FlowThroughTheGateway(t *testing.T) {
	e := newV3Env(t)
	ctx := context.Background()
	if e.gw.AppID() != e.srv.AppID || e.gw.MchID() != e.srv.MchID {
		t.Fatalf("ids: %s %s", e.gw.AppID(), e.gw.MchID())
	}

	// Login is jscode2session, as in v2.
	o, user := e.order(t, "V3GW00000001")
	l, err := e.gw.Login(ctx, e.srv.LoginCode(t, user))
	if err != nil || l.OpenID != user {
		t.Fatalf("login: %+v %v", l, err)
	}
	if _, err := e.gw.Login(ctx, "not-a-code"); !errors.Is(err, merchant.ErrBadCode) {
		t.Fatalf("bad code: %v", err)
	}

	// Prepay, identical on a retry.
	pre, err := e.gw.Prepay(ctx, o)
	if err != nil || !strings.HasPrefix(pre.PrepayID, "wx") {
		t.Fatalf("prepay: %+v %v", pre, err)
	}
	again, err := e.gw.Prepay(ctx, o)
	if err != nil || again.PrepayID != pre.PrepayID {
		t.Fatalf("prepay retry: %+v %v (first %s)", again, err, pre.PrepayID)
	}
	if e.outcome("prepay-jsapi") != "ok" {
		t.Errorf("observed %q", e.outcome("prepay-jsapi"))
	}

	// The paySign is RSA with the merchant key, checked as the client does.
	pp, err := e.gw.PayParams(pre.PrepayID)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := wxcrypto.ParseCertificate([]byte(e.creds.CertPEM))
	if err != nil {
		t.Fatal(err)
	}
	if err := apiv3.VerifyPayParams(&apiv3.PayParams{AppID: pp.AppID, TimeStamp: pp.TimeStamp, NonceStr: pp.NonceStr,
		Package: pp.Package, SignType: pp.SignType, PaySign: pp.PaySign}, cert.PublicKey.(*rsa.PublicKey)); err != nil {
		t.Fatalf("paySign: %v", err)
	}
	if pp.Signed != pp.AppID+"\n"+pp.TimeStamp+"\n"+pp.NonceStr+"\n"+pp.Package+"\n" {
		t.Errorf("signed string %q", pp.Signed)
	}

	// Unpaid, then paid.
	ts, err := e.gw.Query(ctx, o.OutTradeNo)
	if err != nil || ts.State != wxpay.TradeStateNotPay || ts.Payment != nil {
		t.Fatalf("query unpaid: %+v %v", ts, err)
	}
	e.pay(t, user, pre.PrepayID)
	ts, err = e.gw.Query(ctx, o.OutTradeNo)
	if err != nil || ts.State != wxpay.TradeStateSuccess || ts.Payment == nil {
		t.Fatalf("query paid: %+v %v", ts, err)
	}
	p := ts.Payment
	if p.OutTradeNo != o.OutTradeNo || p.TotalFee != 2800 || p.AppID != e.srv.AppID || p.MchID != e.srv.MchID ||
		p.OpenID != user || p.TransactionID == "" || p.PaidAt.IsZero() || p.FeeType != "CNY" || p.TradeType != wxpay.TradeTypeJSAPI {
		t.Fatalf("payment: %+v", p)
	}
	if k := o.Check(p); k != "" {
		t.Fatalf("the payment does not check against its order: %s", k)
	}

	// The pay notify, verified and decrypted; its answer is 204.
	e.deliver(t)
	notes := e.sink.take("/notify/pay")
	if len(notes) != 1 {
		t.Fatalf("%d pay notifies", len(notes))
	}
	n, err := e.gw.ParsePayNotify(ctx, notes[0].header, notes[0].body)
	if err != nil || !n.Paid || n.Payment != *p {
		t.Fatalf("pay notify: %+v %v\nquery: %+v", n, err, p)
	}
	// The same notify at the refund URL is refused.
	if _, err := e.gw.ParseRefundNotify(ctx, notes[0].header, notes[0].body); !errors.Is(err, merchant.ErrBadNotify) {
		t.Fatalf("a pay notify parsed as a refund notify: %v", err)
	}

	// Closing a paid order says so.
	if err := e.gw.Close(ctx, o.OutTradeNo); !errors.Is(err, merchant.ErrOrderPaid) {
		t.Fatalf("close of a paid order: %v", err)
	}

	// A refund, its notify, its query.
	r := &merchant.Refund{OutRefundNo: "V3GWRF000001", OutTradeNo: o.OutTradeNo, TotalFee: 2800, RefundFee: 700, Reason: "spilled"}
	id, err := e.gw.Refund(ctx, r)
	if err != nil || id == "" {
		t.Fatalf("refund: %q %v", id, err)
	}
	if id2, err := e.gw.Refund(ctx, r); err != nil || id2 != id {
		t.Fatalf("refund retry: %q %v (first %q)", id2, err, id)
	}
	rr, err := e.gw.RefundQuery(ctx, r.OutRefundNo)
	if err != nil || rr.Status != merchant.RefundProcessing || rr.RefundFee != 700 || rr.OutTradeNo != o.OutTradeNo {
		t.Fatalf("refund query: %+v %v", rr, err)
	}
	e.srv.Clock.Advance(2 * time.Minute)
	e.deliver(t)
	rnotes := e.sink.take("/notify/refund")
	if len(rnotes) != 1 {
		t.Fatalf("%d refund notifies", len(rnotes))
	}
	rn, err := e.gw.ParseRefundNotify(ctx, rnotes[0].header, rnotes[0].body)
	if err != nil || rn.OutRefundNo != r.OutRefundNo || rn.RefundFee != 700 || rn.Status != merchant.RefundSuccess ||
		rn.RefundID != id || rn.SuccessAt.IsZero() {
		t.Fatalf("refund notify: %+v %v", rn, err)
	}
	if _, err := e.gw.ParsePayNotify(ctx, rnotes[0].header, rnotes[0].body); !errors.Is(err, merchant.ErrBadNotify) {
		t.Fatalf("a refund notify parsed as a pay notify: %v", err)
	}
	rr, err = e.gw.RefundQuery(ctx, r.OutRefundNo)
	if err != nil || rr.Status != merchant.RefundSuccess {
		t.Fatalf("refund query after: %+v %v", rr, err)
	}

	// Unknown numbers.
	if _, err := e.gw.Query(ctx, "V3GWNOSUCH01"); !errors.Is(err, merchant.ErrOrderNotExist) {
		t.Fatalf("query of an unknown order: %v", err)
	}
	if _, err := e.gw.RefundQuery(ctx, "V3GWNOSUCHRF"); !errors.Is(err, merchant.ErrRefundNotExist) {
		t.Fatalf("refund query of an unknown refund: %v", err)
	}

	// The day's bill, the next morning: the payment and the refund.
	if _, err := e.gw.Bill(ctx, start); !errors.Is(err, merchant.ErrNoBill) && !errors.Is(err, merchant.ErrBillNotReady) {
		t.Fatalf("bill of a day not over: %v", err)
	}
	e.srv.Clock.Advance(24 * time.Hour)
	rows, err := e.gw.Bill(ctx, start)
	if err != nil || len(rows) != 2 {
		t.Fatalf("bill: %+v %v", rows, err)
	}
	var paid, refunded int64
	for _, row := range rows {
		switch row.State {
		case wxpay.TradeStateSuccess:
			paid += row.TotalFee
			if row.OutRefundNo != "" || row.TransactionID != p.TransactionID {
				t.Errorf("payment row: %+v", row)
			}
		case wxpay.TradeStateRefund:
			refunded += row.RefundFee
			if row.OutRefundNo != r.OutRefundNo || row.RefundID != id {
				t.Errorf("refund row: %+v", row)
			}
		}
	}
	if paid != 2800 || refunded != 700 {
		t.Fatalf("bill sums: paid %d refunded %d", paid, refunded)
	}
}

func TestV3NativeAndClose(t *testing.T) {
	e := newV3Env(t)
	ctx := context.Background()
	o, _ := e.order(t, "V3GWNATIVE01")
	o.TradeType, o.OpenID = wxpay.TradeTypeNative, ""
	o.Items = []merchant.Item{{SKU: "COFFEE", Quantity: 1, UnitPrice: 2800}}
	pre, err := e.gw.Prepay(ctx, o)
	if err != nil || !strings.HasPrefix(pre.CodeURL, "weixin://wxpay/bizpayurl") || pre.PrepayID != "" {
		t.Fatalf("native prepay: %+v %v", pre, err)
	}
	if e.outcome("prepay-native") != "ok" {
		t.Errorf("observed %q", e.outcome("prepay-native"))
	}
	// An unpaid order closes; the state then says so.
	if err := e.gw.Close(ctx, o.OutTradeNo); err != nil {
		t.Fatalf("close: %v", err)
	}
	ts, err := e.gw.Query(ctx, o.OutTradeNo)
	if err != nil || ts.State != wxpay.TradeStateClosed {
		t.Fatalf("query after close: %+v %v", ts, err)
	}
	// A new prepay of the closed order is refused with a definite answer.
	if _, err := e.gw.Prepay(ctx, o); !errors.Is(err, merchant.ErrOrderClosed) {
		t.Fatalf("prepay of a closed order: %v", err)
	}
}

func TestV3ErrorsMapToSentinels(t *testing.T) {
	e := newV3Env(t)
	ctx := context.Background()
	o, _ := e.order(t, "V3GWFAULT001")
	if err := e.srv.Sim.InjectFault(wxsim.Fault{API: "v3_prepay", Kind: wxsim.FaultSystemError}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Prepay(ctx, o); !errors.Is(err, merchant.ErrUnknownOutcome) {
		t.Fatalf("SYSTEM_ERROR: %v", err)
	}
	if got := e.outcome("prepay-jsapi"); got != "unknown" {
		t.Errorf("observed %q", got)
	}
	if err := e.srv.Sim.InjectFault(wxsim.Fault{API: "v3_query", Kind: wxsim.FaultHTTP500}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Query(ctx, o.OutTradeNo); !errors.Is(err, merchant.ErrUnknownOutcome) {
		t.Fatalf("HTTP 500: %v", err)
	}
	bad := *o
	bad.TotalFee = 0
	if _, err := e.gw.Prepay(ctx, &bad); err == nil || errors.Is(err, merchant.ErrUnknownOutcome) {
		t.Fatalf("an invalid order: %v", err)
	}
	o.TradeType = wxpay.TradeTypeMicroPay
	if _, err := e.gw.Prepay(ctx, o); !errors.Is(err, merchant.ErrRejected) {
		t.Fatalf("micropay over v3: %v", err)
	}
}

func TestV3NotifyRefusals(t *testing.T) {
	e := newV3Env(t)
	ctx := context.Background()
	o, user := e.order(t, "V3GWNOTIFY01")
	pre, err := e.gw.Prepay(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	e.pay(t, user, pre.PrepayID)
	e.deliver(t)
	genuine := e.sink.take("/notify/pay")[0]

	cases := map[string]func(h http.Header, b []byte) (http.Header, []byte){
		"signature": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set(apiv3.HeaderSignature, "AAAA"+h.Get(apiv3.HeaderSignature)[4:])
			return h, b
		},
		"serial": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set(apiv3.HeaderSerial, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
			return h, b
		},
		"timestamp": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set(apiv3.HeaderTimestamp, "1500000000")
			return h, b
		},
		"probe": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set(apiv3.HeaderSignature, apiv3.ProbePrefix+h.Get(apiv3.HeaderSignature))
			return h, b
		},
		"headers": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Del(apiv3.HeaderNonce)
			return h, b
		},
		"signature/reserialised": func(h http.Header, b []byte) (http.Header, []byte) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			out, _ := json.MarshalIndent(m, "", " ")
			return h, out
		},
	}
	for name, mutate := range cases {
		h, b := mutate(genuine.header.Clone(), append([]byte(nil), genuine.body...))
		_, err := e.gw.ParsePayNotify(ctx, h, b)
		if !errors.Is(err, merchant.ErrBadNotify) {
			t.Errorf("%s: accepted (%v)", name, err)
			continue
		}
		want, _, _ := strings.Cut(name, "/")
		var r interface{ Reason() string }
		if !errors.As(err, &r) || r.Reason() != want {
			t.Errorf("%s: reason %v", name, err)
		}
		status, ct, body := e.gw.NotifyAck(err)
		if status != http.StatusBadRequest || ct != "application/json" || !json.Valid(body) || !strings.Contains(string(body), `"code":"FAIL"`) {
			t.Errorf("%s: reply %d %s %s", name, status, ct, body)
		}
	}
	if n, err := e.gw.ParsePayNotify(ctx, genuine.header, genuine.body); err != nil || !n.Paid {
		t.Fatalf("the genuine notify: %v", err)
	}

	// Authentic but for another merchant: handed on (the store records
	// the anomaly), never refused silently.
	if _, err := e.srv.Sim.SendV3Notify(ctx, e.srv.MchID, o.OutTradeNo, "", func(m *wxsim.V3NotifyMessage) {
		m.Resource["mchid"] = "1900000109"
	}); err != nil {
		t.Fatal(err)
	}
	all := e.sink.take("/notify/pay")
	last := all[len(all)-1]
	n, err := e.gw.ParsePayNotify(ctx, last.header, last.body)
	if err != nil || n.MchID != "1900000109" {
		t.Fatalf("foreign merchant: %+v %v", n, err)
	}
	if k := o.Check(&n.Payment); k != merchant.AnomalyMerchant {
		t.Fatal("a foreign merchant's payment checks against our order")
	}

	// A validly signed notify with a bad GCM nonce is refused, not a panic.
	if _, err := e.srv.Sim.SendV3Notify(ctx, e.srv.MchID, o.OutTradeNo, "", func(m *wxsim.V3NotifyMessage) {
		m.Nonce = "short"
	}); err != nil {
		t.Fatal(err)
	}
	all = e.sink.take("/notify/pay")
	last = all[len(all)-1]
	if _, err := e.gw.ParsePayNotify(ctx, last.header, last.body); !errors.Is(err, merchant.ErrBadNotify) {
		t.Fatalf("bad nonce: %v", err)
	}
}

func TestV3NotifyAck(t *testing.T) {
	e := newV3Env(t)
	if status, _, body := e.gw.NotifyAck(nil); status != http.StatusNoContent || len(body) != 0 {
		t.Errorf("success: %d %q", status, body)
	}
	status, ct, body := e.gw.NotifyAck(errors.New("database is down"))
	if status != http.StatusInternalServerError || ct != "application/json" {
		t.Errorf("failure: %d %s", status, ct)
	}
	var f struct{ Code, Message string }
	if err := json.Unmarshal(body, &f); err != nil || f.Code != "FAIL" || f.Message == "" || strings.Contains(string(body), "database") {
		t.Errorf("failure body %s (%v)", body, err)
	}
}
