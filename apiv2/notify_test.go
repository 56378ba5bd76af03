package apiv2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

// payNotify returns the fields of a genuine pay notify for the test
// merchant (protocol.md §6).
func payNotify() map[string]string {
	return map[string]string{
		"return_code": "SUCCESS", "return_msg": "OK", "appid": testAppID, "mch_id": testMchID,
		"device_info": "WEB", "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c", "result_code": "SUCCESS",
		"openid": testOpenID, "is_subscribe": "Y", "trade_type": "JSAPI", "bank_type": "CFT", "total_fee": "1999",
		"settlement_total_fee": "1899", "fee_type": "CNY", "cash_fee": "1899", "coupon_fee": "100", "coupon_count": "1",
		"coupon_type_0": "CASH", "coupon_id_0": "10000", "coupon_fee_0": "100",
		"transaction_id": "4200000001202611290000000001", "out_trade_no": "T2026112900001", "attach": "桌号=7",
		"time_end": "20261129101530",
	}
}

func notifyClient(t testing.TB, st wxpay.SignType) *Client {
	t.Helper()
	cfg := testConfig()
	cfg.SignType = st
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParsePayNotify(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	n, err := c.ParsePayNotify(signedXML(t, wxpay.SignTypeMD5, testKey, payNotify()))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Paid() || n.OutTradeNo != "T2026112900001" || n.TotalFee != 1999 || n.SettlementTotalFee != 1899 || n.CashFee != 1899 ||
		n.TransactionID != "4200000001202611290000000001" || n.OpenID != testOpenID || n.Attach != "桌号=7" || n.BankType != "CFT" ||
		n.AppID != testAppID || n.MchID != testMchID || n.DeviceInfo != "WEB" || n.IsSubscribe != "Y" || n.SignType != "" {
		t.Errorf("%+v", n)
	}
	if len(n.Coupons) != 1 || n.Coupons[0] != (Coupon{Type: "CASH", ID: "10000", Fee: 100}) || n.CouponCount != 1 {
		t.Errorf("coupons %+v", n.Coupons)
	}
	if !n.TimeEnd.Equal(time.Date(2026, 11, 29, 10, 15, 30, 0, wxpay.China)) {
		t.Errorf("time_end %v", n.TimeEnd)
	}
	if n.Get("sign") == "" || n.Get("return_msg") != "OK" {
		t.Error("fields not kept")
	}
}

// A notify for an order placed with HMAC-SHA256 carries sign_type.
func TestParsePayNotifyHMACSHA256(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeHMACSHA256)
	m := payNotify()
	m["sign_type"] = "HMAC-SHA256"
	n, err := c.ParsePayNotify(signedXML(t, wxpay.SignTypeHMACSHA256, testKey, m))
	if err != nil {
		t.Fatal(err)
	}
	if n.SignType != "HMAC-SHA256" || !n.Paid() {
		t.Errorf("%+v", n)
	}
}

// A payment that failed is a valid notify, not a paid one.
func TestParsePayNotifyNotPaid(t *testing.T) {
	m := payNotify()
	m["result_code"], m["err_code"], m["err_code_des"] = "FAIL", "NOTENOUGH", "余额不足"
	delete(m, "transaction_id")
	n, err := notifyClient(t, wxpay.SignTypeMD5).ParsePayNotify(signedXML(t, wxpay.SignTypeMD5, testKey, m))
	if err != nil {
		t.Fatal(err)
	}
	if n.Paid() || n.ErrCode != "NOTENOUGH" || n.ErrCodeDes != "余额不足" {
		t.Errorf("%+v", n)
	}
}

// A7: a field WeChat adds, signed over, is accepted and kept.
func TestParsePayNotifyUnknownField(t *testing.T) {
	m := payNotify()
	m["new_field"] = "x"
	m["promotion_detail"] = `[{"promotion_id":"1"}]`
	n, err := notifyClient(t, wxpay.SignTypeMD5).ParsePayNotify(signedXML(t, wxpay.SignTypeMD5, testKey, m))
	if err != nil {
		t.Fatal(err)
	}
	if n.Get("new_field") != "x" || n.Get("promotion_detail") == "" {
		t.Errorf("fields %v", n.Fields)
	}
}

// A1, N1, N2, N4: only a notify signed with our key, our sign type and over
// exactly what it says is accepted.
func TestParsePayNotifyRefused(t *testing.T) {
	withSign := func(m map[string]string, sign string) map[string]string { m["sign"] = sign; return m }
	signedThenEdited := func(edit func(map[string]string)) []byte {
		m := payNotify()
		m["sign"] = refSign(wxpay.SignTypeMD5, testKey, m)
		edit(m)
		return unsignedXML(t, m)
	}
	tests := []struct {
		name   string
		client wxpay.SignType
		body   []byte
		reason NotifyReason
		is     error
	}{
		{"A1 sign missing", "MD5", unsignedXML(t, payNotify()), ReasonSignature, ErrNotifySignature},
		{"A1 empty sign", "MD5", unsignedXML(t, withSign(payNotify(), "")), ReasonSignature, ErrNotifySignature},
		{"A1 another key", "MD5", signedXML(t, "MD5", otherKey, payNotify()), ReasonSignature, ErrNotifySignature},
		{"A1 lower-case hex", "MD5", unsignedXML(t, withSign(payNotify(), strings.ToLower(refSign("MD5", testKey, payNotify())))), ReasonSignature, ErrNotifySignature},
		{"A1 MD5 sign, client HMAC-SHA256", "HMAC-SHA256", signedXML(t, "MD5", testKey, payNotify()), ReasonSignature, ErrNotifySignature},
		{"A1 HMAC-SHA256 sign, client MD5", "MD5", signedXML(t, "HMAC-SHA256", testKey, payNotify()), ReasonSignature, ErrNotifySignature},
		{"A1 sign_type HMAC-SHA256 to an MD5 client", "MD5", func() []byte {
			m := payNotify()
			m["sign_type"] = "HMAC-SHA256"
			return signedXML(t, "HMAC-SHA256", testKey, m)
		}(), ReasonSignature, ErrNotifySignature},
		{"A1 sign_type MD5, MD5-signed, to an HMAC client", "HMAC-SHA256", func() []byte {
			m := payNotify()
			m["sign_type"] = "MD5"
			return signedXML(t, "MD5", testKey, m)
		}(), ReasonSignature, ErrNotifySignature},
		{"A1 sign_type disagrees with the signature", "MD5", func() []byte {
			m := payNotify()
			m["sign_type"] = "HMAC-SHA256"
			return signedXML(t, "MD5", testKey, m)
		}(), ReasonSignature, ErrNotifySignature},
		{"N2 empty key", "MD5", signedXML(t, "MD5", "", payNotify()), ReasonSignature, ErrNotifySignature},
		{"N2 empty key, attacker's sign_type", "HMAC-SHA256", func() []byte {
			m := payNotify()
			m["sign_type"] = "HMAC-SHA256"
			return signedXML(t, "HMAC-SHA256", "", m)
		}(), ReasonSignature, ErrNotifySignature},
		{"N4 out_trade_no edited", "MD5", signedThenEdited(func(m map[string]string) { m["out_trade_no"] = "T-EXPENSIVE-B" }), ReasonSignature, ErrNotifySignature},
		{"total_fee edited", "MD5", signedThenEdited(func(m map[string]string) { m["total_fee"] = "100000" }), ReasonSignature, ErrNotifySignature},
		{"field removed", "MD5", signedThenEdited(func(m map[string]string) { delete(m, "attach") }), ReasonSignature, ErrNotifySignature},
		{"field added", "MD5", signedThenEdited(func(m map[string]string) { m["coupon_fee_1"] = "1000" }), ReasonSignature, ErrNotifySignature},
		{"another appid", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			m["appid"] = "wx0000000000000000"
			return m
		}()), ReasonMerchant, nil},
		{"another mch_id", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			m["mch_id"] = "1900000109"
			return m
		}()), ReasonMerchant, nil},
		{"return_code FAIL", "MD5", unsignedXML(t, map[string]string{"return_code": "FAIL", "return_msg": "参数格式校验错误"}), ReasonFailure, nil},
		{"no out_trade_no", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			delete(m, "out_trade_no")
			return m
		}()), ReasonMalformed, nil},
		{"paid without transaction_id", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			delete(m, "transaction_id")
			return m
		}()), ReasonMalformed, nil},
		{"amount in yuan", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			m["total_fee"] = "19.99"
			return m
		}()), ReasonMalformed, nil},
		{"malformed XML", "MD5", []byte("<xml><return_code>SUCCESS</return_code>"), ReasonMalformed, ErrXMLSyntax},
		{"JSON", "MD5", []byte(`{"return_code":"SUCCESS"}`), ReasonMalformed, ErrXMLSyntax},
		{"XXE", "MD5", []byte(`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><attach>&e;</attach></xml>`), ReasonMalformed, ErrXMLDoctype},
		{"duplicate total_fee", "MD5", bytes.Replace(signedXML(t, "MD5", testKey, payNotify()), []byte("<total_fee>1999</total_fee>"),
			[]byte("<total_fee>1999</total_fee><total_fee>1</total_fee>"), 1), ReasonMalformed, ErrXMLDuplicate},
		{"trailing second message", "MD5", append(signedXML(t, "MD5", testKey, payNotify()), "<xml></xml>"...), ReasonMalformed, ErrXMLTrailing},
		{"too large", "MD5", signedXML(t, "MD5", testKey, func() map[string]string {
			m := payNotify()
			m["attach"] = strings.Repeat("x", MaxNotifySize)
			return m
		}()), ReasonMalformed, ErrXMLTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := notifyClient(t, tt.client).ParsePayNotify(tt.body)
			var ne *NotifyError
			if !errors.As(err, &ne) {
				t.Fatalf("accepted: %+v (%v)", n, err)
			}
			if ne.Reason != tt.reason {
				t.Errorf("reason %s, want %s: %v", ne.Reason, tt.reason, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatal("the key is in the error")
			}
			if ne.Diagnosis != nil && strings.Contains(ne.Diagnosis.String(), testKey) {
				t.Fatal("the key is in the diagnosis")
			}
		})
	}
}

// The diagnosis of a refused notify says what is wrong.
func TestParsePayNotifyDiagnosis(t *testing.T) {
	m := payNotify()
	m["sign"] = strings.ToLower(refSign(wxpay.SignTypeMD5, testKey, m))
	_, err := notifyClient(t, wxpay.SignTypeMD5).ParsePayNotify(unsignedXML(t, m))
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Diagnosis == nil {
		t.Fatalf("%v", err)
	}
	if d := ne.Diagnosis.String(); !strings.Contains(d, "lower case") || !strings.Contains(d, "out_trade_no=T2026112900001") {
		t.Errorf("diagnosis:\n%s", d)
	}
}

// handlerRecorder collects what a notify handler does.
type handlerRecorder struct {
	calls   atomic.Int64
	mu      sync.Mutex
	reasons []NotifyReason
	log     bytes.Buffer
}

func (h *handlerRecorder) options(timeout time.Duration) NotifyHandlerOptions {
	return NotifyHandlerOptions{
		Timeout: timeout,
		Logger:  slog.New(slog.NewJSONHandler(&lockedWriter{w: &h.log, mu: &h.mu}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnReject: func(r NotifyReason, err error) {
			h.mu.Lock()
			h.reasons = append(h.reasons, r)
			h.mu.Unlock()
		},
	}
}

func (h *handlerRecorder) lastReason() NotifyReason {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reasons) == 0 {
		return ""
	}
	return h.reasons[len(h.reasons)-1]
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func post(h http.Handler, method string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/wxpay/notify", bytes.NewReader(body)))
	return rec
}

// isFail reports whether body is a FAIL reply.
func isFail(body []byte) bool {
	f, err := ParseMessage(body)
	return err == nil && lookup(f, "return_code") == "FAIL"
}

func TestPayNotifyHandler(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	rec := &handlerRecorder{}
	var got *PayNotify
	h := c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		rec.calls.Add(1)
		got = n
		return nil
	}, rec.options(0))
	body := signedXML(t, wxpay.SignTypeMD5, testKey, payNotify())

	resp := post(h, http.MethodPost, body)
	if resp.Code != 200 || !bytes.Equal(resp.Body.Bytes(), NotifySuccess) {
		t.Fatalf("%d %q", resp.Code, resp.Body)
	}
	if string(NotifySuccess) != "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>" {
		t.Fatalf("NotifySuccess is not the reply of protocol.md §6: %s", NotifySuccess)
	}
	if ct := resp.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.calls.Load() != 1 || got.OutTradeNo != "T2026112900001" {
		t.Fatalf("%d calls, %+v", rec.calls.Load(), got)
	}
	if len(rec.reasons) != 0 {
		t.Errorf("rejections %v", rec.reasons)
	}
}

func TestPayNotifyHandlerRefuses(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	rec := &handlerRecorder{}
	h := c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		rec.calls.Add(1)
		return nil
	}, rec.options(0))
	good := signedXML(t, wxpay.SignTypeMD5, testKey, payNotify())
	big := signedXML(t, wxpay.SignTypeMD5, testKey, func() map[string]string {
		m := payNotify()
		m["attach"] = strings.Repeat("x", MaxNotifySize)
		return m
	}())

	tests := []struct {
		name   string
		method string
		body   []byte
		status int
		reason NotifyReason
	}{
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed, ""},
		{"PUT", http.MethodPut, good, http.StatusMethodNotAllowed, ""},
		{"body over 64 KiB", http.MethodPost, big, http.StatusRequestEntityTooLarge, ReasonMalformed},
		{"bad signature", http.MethodPost, signedXML(t, wxpay.SignTypeMD5, otherKey, payNotify()), http.StatusBadRequest, ReasonSignature},
		{"malformed", http.MethodPost, []byte("<xml>"), http.StatusBadRequest, ReasonMalformed},
		{"empty", http.MethodPost, nil, http.StatusBadRequest, ReasonMalformed},
		{"another merchant", http.MethodPost, signedXML(t, wxpay.SignTypeMD5, testKey, func() map[string]string {
			m := payNotify()
			m["mch_id"] = "1900000109"
			return m
		}()), http.StatusBadRequest, ReasonMerchant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.reasons)
			resp := post(h, tt.method, tt.body)
			if resp.Code != tt.status || !isFail(resp.Body.Bytes()) {
				t.Fatalf("%d %q, want %d FAIL", resp.Code, resp.Body, tt.status)
			}
			if tt.method != http.MethodPost && resp.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q", resp.Header().Get("Allow"))
			}
			if tt.reason != "" && (len(rec.reasons) != before+1 || rec.lastReason() != tt.reason) {
				t.Errorf("OnReject %v, want %s", rec.reasons[before:], tt.reason)
			}
		})
	}
	if rec.calls.Load() != 0 {
		t.Fatalf("fn called %d times for refused notifies", rec.calls.Load())
	}
	if strings.Contains(rec.log.String(), testKey) {
		t.Fatal("the key is in the log")
	}
	if !strings.Contains(rec.log.String(), `"reason":"signature"`) {
		t.Errorf("log lacks the reason:\n%s", rec.log.String())
	}
}

// A notify of exactly 64 KiB is read whole.
func TestPayNotifyHandlerLimit(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	m := payNotify()
	m["attach"] = ""
	n := len(signedXML(t, wxpay.SignTypeMD5, testKey, m)) + len("<attach><![CDATA[]]></attach>")
	m["attach"] = strings.Repeat("x", MaxNotifySize-n)
	body := signedXML(t, wxpay.SignTypeMD5, testKey, m)
	if len(body) != MaxNotifySize {
		t.Fatalf("%d bytes", len(body))
	}
	h := c.PayNotifyHandler(func(context.Context, *PayNotify) error { return nil }, NotifyHandlerOptions{})
	if resp := post(h, http.MethodPost, body); resp.Code != 200 {
		t.Fatalf("%d %s", resp.Code, resp.Body)
	}
}

// SUCCESS only when fn returned nil: an error or a timeout is FAIL (and 5xx),
// so that WeChat sends the notify again.
func TestPayNotifyHandlerFnFails(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	body := signedXML(t, wxpay.SignTypeMD5, testKey, payNotify())

	rec := &handlerRecorder{}
	h := c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		rec.calls.Add(1)
		return errors.New("database is down")
	}, rec.options(0))
	resp := post(h, http.MethodPost, body)
	if resp.Code != http.StatusInternalServerError || !isFail(resp.Body.Bytes()) || rec.calls.Load() != 1 {
		t.Fatalf("%d %q %d", resp.Code, resp.Body, rec.calls.Load())
	}
	if rec.lastReason() != ReasonHandler {
		t.Errorf("reason %v", rec.reasons)
	}
	if strings.Contains(resp.Body.String(), "database") {
		t.Errorf("the merchant's error is sent to WeChat: %s", resp.Body)
	}

	// fn blocks past the timeout: FAIL, never SUCCESS, even if it finishes
	// later.
	rec = &handlerRecorder{}
	release := make(chan struct{})
	finished := make(chan struct{})
	h = c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		defer close(finished)
		rec.calls.Add(1)
		<-release
		return nil
	}, rec.options(30*time.Millisecond))
	start := time.Now()
	resp = post(h, http.MethodPost, body)
	close(release)
	<-finished
	if resp.Code != http.StatusInternalServerError || !isFail(resp.Body.Bytes()) {
		t.Fatalf("%d %q", resp.Code, resp.Body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v", d)
	}
	if rec.lastReason() != ReasonTimeout {
		t.Errorf("reason %v", rec.reasons)
	}

	// fn sees its context cancelled at the timeout.
	h = c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		<-ctx.Done()
		return ctx.Err()
	}, NotifyHandlerOptions{Timeout: 20 * time.Millisecond})
	if resp := post(h, http.MethodPost, body); resp.Code != http.StatusInternalServerError || !isFail(resp.Body.Bytes()) {
		t.Fatalf("%d %q", resp.Code, resp.Body)
	}
}

// The handler over a real HTTP server, as WeChat calls it.
func TestPayNotifyHandlerHTTP(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	var calls atomic.Int64
	srv := httptest.NewServer(c.PayNotifyHandler(func(ctx context.Context, n *PayNotify) error {
		calls.Add(1)
		return nil
	}, NotifyHandlerOptions{}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/xml", bytes.NewReader(signedXML(t, wxpay.SignTypeMD5, testKey, payNotify())))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, NotifySuccess) || calls.Load() != 1 {
		t.Fatalf("%d %q %d", resp.StatusCode, b, calls.Load())
	}
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestNotifyFail(t *testing.T) {
	b := NotifyFail("签名失败 ]]> <x>")
	f, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if lookup(f, "return_code") != "FAIL" || lookup(f, "return_msg") != "签名失败 ]]> <x>" {
		t.Errorf("%v", f)
	}
}

// The v2 signature does not pin field boundaries: "a=1&b=2" signs the same
// as a single field a="1&b=2". A genuine notify re-cut that way still
// verifies; the typed checks must then refuse it where it matters, and a
// caller must never trust a free-text field such as attach.
func TestParsePayNotifyBoundaryShift(t *testing.T) {
	c := notifyClient(t, wxpay.SignTypeMD5)
	shift := func(into, from string) []byte {
		m := payNotify()
		m["sign"] = refSign(wxpay.SignTypeMD5, testKey, m)
		m[into] += "&" + from + "=" + m[from]
		delete(m, from)
		return unsignedXML(t, m)
	}
	// total_fee folded into time_end: it verifies, and is refused.
	_, err := c.ParsePayNotify(shift("time_end", "total_fee"))
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Reason != ReasonMalformed {
		t.Errorf("total_fee folded into time_end: %v", err)
	}
	// transaction_id folded into trade_type: refused.
	if _, err := c.ParsePayNotify(shift("trade_type", "transaction_id")); !errors.As(err, &ne) || ne.Reason != ReasonMalformed {
		t.Errorf("transaction_id folded into trade_type: %v", err)
	}
	// bank_type folded into attach: nothing required is lost, so it is
	// accepted, with a different attach.
	n, err := c.ParsePayNotify(shift("attach", "bank_type"))
	if err != nil {
		t.Fatal(err)
	}
	if n.Attach != "桌号=7&bank_type=CFT" || n.BankType != "" || n.OutTradeNo != "T2026112900001" || n.TotalFee != 1999 {
		t.Errorf("%+v", n)
	}
}
