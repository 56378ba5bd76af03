package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

func TestErrorTable(t *testing.T) {
	want := map[string]int{
		merchant.EINVALID: 400, merchant.EUNAUTHORIZED: 401, merchant.ENOTFOUND: 404, merchant.ECONFLICT: 409,
		merchant.ERATELIMIT: 429, merchant.EUNAVAILABLE: 503, merchant.EUPSTREAM: 502, merchant.EINTERNAL: 500,
		ETOOLARGE: 413, EMEDIATYPE: 415, EMETHOD: 405, ENOTIMPLEMENTED: 501,
	}
	for code, status := range want {
		if got := ErrorStatus(code); got != status {
			t.Errorf("%s: %d, want %d", code, got, status)
		}
	}
	if len(statuses) != len(want) {
		t.Errorf("the table has %d codes, the test knows %d", len(statuses), len(want))
	}
	if ErrorStatus("no such code") != 500 {
		t.Error("an unknown code is not 500")
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{merchant.Errorf(merchant.ECONFLICT, "x"), merchant.ECONFLICT},
		{fmt.Errorf("wrapped: %w", merchant.Errorf(merchant.ENOTFOUND, "x")), merchant.ENOTFOUND},
		{fmt.Errorf("%w: timeout", merchant.ErrUnknownOutcome), merchant.EUNAVAILABLE},
		{fmt.Errorf("%w: ORDERNOTEXIST", merchant.ErrOrderNotExist), merchant.ENOTFOUND},
		{fmt.Errorf("%w: NOAUTH", merchant.ErrRejected), merchant.EUPSTREAM},
		{context.DeadlineExceeded, merchant.EUNAVAILABLE},
		{errors.New("sql: connection refused to 10.0.0.1 password=hunter2"), merchant.EINTERNAL},
	} {
		code, msg := classify(c.err)
		if code != c.code {
			t.Errorf("%v: %s, want %s", c.err, code, c.code)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, "timeout") || strings.Contains(msg, "NOAUTH") {
			t.Errorf("%v: message %q shows the detail", c.err, msg)
		}
	}
}

func TestWriteErrorHidesInternals(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	r := httptest.NewRequest("GET", "/api/v1/orders/x", nil)
	r = r.WithContext(context.WithValue(r.Context(), keyRequestID, "rid-1"))
	w := httptest.NewRecorder()
	s.writeError(w, r, errors.New("database is locked: secret detail"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "secret detail") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var b ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code != "internal" || b.Error.Message != "internal error" {
		t.Fatalf("%s %v", w.Body, err)
	}
	if !strings.Contains(logs.String(), "secret detail") || !strings.Contains(logs.String(), "rid-1") {
		t.Fatalf("the detail was not logged with the request id: %s", logs.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatal(ct)
	}

	for code, hdr := range map[string]string{merchant.ERATELIMIT: "Retry-After", merchant.EUNAVAILABLE: "Retry-After", merchant.EUNAUTHORIZED: "WWW-Authenticate"} {
		w := httptest.NewRecorder()
		s.writeError(w, r, merchant.Errorf(code, "m"))
		if w.Header().Get(hdr) == "" {
			t.Errorf("%s without %s", code, hdr)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	lm := newLimiter(Limit{Rate: 2, Burst: 3}, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := lm.allow("a"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := lm.allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v %v", ok, wait)
	}
	if ok, _ := lm.allow("b"); !ok {
		t.Fatal("another key was limited")
	}
	now = now.Add(499 * time.Millisecond)
	if ok, _ := lm.allow("a"); ok {
		t.Fatal("a token before its time")
	}
	now = now.Add(time.Millisecond)
	if ok, _ := lm.allow("a"); !ok {
		t.Fatal("no token after 500 ms at 2/s")
	}
	// Refill stops at the burst.
	now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if ok, _ := lm.allow("a"); !ok {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if ok, _ := lm.allow("a"); ok {
		t.Fatal("the bucket grew past its burst")
	}
	if retryAfter(wait) != 1 || retryAfter(1500*time.Millisecond) != 2 {
		t.Fatal("retryAfter rounds up to whole seconds")
	}

	var off *limiter = newLimiter(Limit{Rate: -1}, time.Now)
	for i := 0; i < 100; i++ {
		if ok, _ := off.allow("a"); !ok {
			t.Fatal("a disabled limiter refused")
		}
	}
	if l := (Limit{}).orDefault(DefaultLoginPerIP); l != DefaultLoginPerIP {
		t.Fatal(l)
	}
	if l := (Limit{Rate: 1}).orDefault(DefaultLoginPerIP); l.Burst != 1 {
		t.Fatal(l)
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	now := time.Unix(0, 0)
	lm := newLimiter(Limit{Rate: 1, Burst: 2}, func() time.Time { return now })
	for i := 0; i < 3*maxBuckets; i++ {
		lm.allow(fmt.Sprint("ip-", i))
	}
	if n := len(lm.buckets); n > maxBuckets {
		t.Fatalf("%d buckets", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	lm := newLimiter(Limit{Rate: 0.0001, Burst: 50}, time.Now)
	got := make(chan bool, 200)
	for i := 0; i < 200; i++ {
		go func() { ok, _ := lm.allow("k"); got <- ok }()
	}
	n := 0
	for i := 0; i < 200; i++ {
		if <-got {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("%d of 200 allowed, want the burst of 50", n)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		A int64  `json:"a"`
		B string `json:"b"`
	}
	for _, c := range []struct {
		ct, body string
		code     string
		msg      string
	}{
		{"application/json", `{"a":1,"b":"x"}`, "", ""},
		{"application/json; charset=utf-8", `{"a":1}`, "", ""},
		{"Application/JSON", `{"a":1}`, "", ""},
		{"application/json", "{\"a\":1}\n\n", "", ""},
		{"", `{"a":1}`, EMEDIATYPE, "application/json"},
		{"application/jsonx", `{"a":1}`, EMEDIATYPE, ""},
		{"text/json", `{"a":1}`, EMEDIATYPE, ""},
		{"application/json", `{"a":1,"c":2}`, merchant.EINVALID, `unknown field "c"`},
		{"application/json", `{"a":"1"}`, merchant.EINVALID, `field "a" must be a JSON integer`},
		{"application/json", `{"a":1.5}`, merchant.EINVALID, "integer"},
		{"application/json", `{"a":99999999999999999999}`, merchant.EINVALID, "integer"},
		{"application/json", `{"b":1}`, merchant.EINVALID, "string"},
		{"application/json", `{"a":1} x`, merchant.EINVALID, "single"},
		{"application/json", `{"a":1}{"a":2}`, merchant.EINVALID, "single"},
		{"application/json", `null`, "", ""},
		{"application/json", `"a"`, merchant.EINVALID, "object"},
		{"application/json", ``, merchant.EINVALID, "empty"},
		{"application/json", `{"a":`, merchant.EINVALID, "truncated"},
		{"application/json", `{'a':1}`, merchant.EINVALID, "not valid JSON"},
		{"application/json", `{"a":1,"b":"` + strings.Repeat("x", 100) + `"}`, ETOOLARGE, "larger than 64 bytes"},
		{"application/json", `{"a":1}` + strings.Repeat(" ", 100), ETOOLARGE, ""},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		var v body
		err := decodeJSON(httptest.NewRecorder(), r, 64, &v)
		if c.code == "" {
			if err != nil {
				t.Errorf("%q: %v", c.body, err)
			}
			continue
		}
		if merchant.ErrorCode(err) != c.code || !strings.Contains(merchant.ErrorMessage(err), c.msg) {
			t.Errorf("%s %q: %v, want %s containing %q", c.ct, c.body, err, c.code, c.msg)
		}
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer abc":   "abc",
		"BEARER  abc ": "abc",
		"Bearer ":      "",
		"Bearer":       "",
		"Basic abc":    "",
		"abc":          "",
		"":             "",
		"Bearerabc":    "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := bearer(r); got != want {
			t.Errorf("%q: %q, want %q", h, got, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	for id, ok := range map[string]bool{
		"abc-123_X.y":           true,
		"":                      false,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"a b":                   false,
		"a\nb":                  false,
		"a\x1b[31m":             false,
		"ü":                     false,
	} {
		if validRequestID(id) != ok {
			t.Errorf("%q: %v", id, !ok)
		}
	}
	if id := newRequestID(); len(id) != 16 || !validRequestID(id) {
		t.Fatal(id)
	}
}

// A caller's sane X-Request-Id is kept; an unsafe one is replaced.
func TestMiddlewareRequestID(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil), cfg: Config{ClientIP: remoteIP}}
	var seen string
	h := s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = requestID(r.Context()) }))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Request-Id", "client-id-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if seen != "client-id-1" || w.Header().Get("X-Request-Id") != "client-id-1" {
		t.Fatalf("%q %q", seen, w.Header().Get("X-Request-Id"))
	}
	r.Header.Set("X-Request-Id", "evil\nline")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if seen == "evil\nline" || !validRequestID(seen) {
		t.Fatalf("%q", seen)
	}
}
