package miniprogram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Canary values: none of them may ever show up in an error or a log line.
const (
	testAppID    = "wx0123456789abcdef"
	canarySecret = "CANARYSECRETc0ffee1234567890abcd"
	canaryKey    = "CANARYKEYtiihtNczf5v6AKRyjw=="
	canaryCode   = "CANARYCODE081xYz0w3X9RkK1"
	canaryOpenID = "oCANARYOPENIDxyz"
	path         = "/sns/jscode2session"
)

// syncBuffer is a bytes.Buffer safe for the log handler and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setup starts a server with an empty mux and a client pointed at it that
// logs at debug level into the returned buffer.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux, *syncBuffer) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	all := append([]Option{WithBaseURL(srv.URL), WithHTTPClient(srv.Client()), WithLogger(logger)}, opts...)
	c, err := NewClient(testAppID, canarySecret, all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, mux, logs
}

// reply registers a handler answering jscode2session with status and body.
func reply(mux *http.ServeMux, status int, body string) {
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain") // what WeChat sends
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
}

// assertNoLeak fails if s contains any canary value.
func assertNoLeak(t *testing.T, what, s string) {
	t.Helper()
	for _, canary := range []string{canarySecret, url.QueryEscape(canarySecret), canaryKey, url.QueryEscape(canaryKey), canaryCode, canaryOpenID, "secret=", "js_code="} {
		if strings.Contains(s, canary) {
			t.Errorf("%s leaks %q: %s", what, canary, s)
		}
	}
}

func TestCode2SessionSuccess(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Session
	}{
		{
			name: "no errcode",
			body: `{"openid":"oABC","session_key":"` + canaryKey + `"}`,
			want: Session{OpenID: "oABC", SessionKey: canaryKey},
		},
		{
			name: "errcode 0",
			body: `{"errcode":0,"errmsg":"ok","openid":"oABC","session_key":"` + canaryKey + `"}`,
			want: Session{OpenID: "oABC", SessionKey: canaryKey},
		},
		{
			name: "with unionid",
			body: `{"openid":"oABC","session_key":"` + canaryKey + `","unionid":"uXYZ"}`,
			want: Session{OpenID: "oABC", UnionID: "uXYZ", SessionKey: canaryKey},
		},
		{
			name: "unknown fields and whitespace",
			body: "\n {\"openid\":\"oABC\",\"session_key\":\"" + canaryKey + "\",\"extra\":{\"a\":[1,2]}}\n",
			want: Session{OpenID: "oABC", SessionKey: canaryKey},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, logs := setup(t)
			reply(mux, http.StatusOK, tt.body)
			got, err := c.Code2Session(context.Background(), canaryCode)
			if err != nil {
				t.Fatalf("Code2Session: %v", err)
			}
			if got.OpenID != tt.want.OpenID || got.UnionID != tt.want.UnionID ||
				got.SessionKey.Reveal() != tt.want.SessionKey.Reveal() {
				t.Errorf("got %+v (key %q), want %+v (key %q)",
					got, got.SessionKey.Reveal(), tt.want, tt.want.SessionKey.Reveal())
			}
			line := logs.String()
			for _, want := range []string{"level=DEBUG", "appid=" + testAppID, "errcode=0", "status=200", "duration="} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %q: %s", want, line)
				}
			}
			assertNoLeak(t, "log", line)
		})
	}
}

func TestCode2SessionRequest(t *testing.T) {
	c, mux, _ := setup(t)
	code := "a+b/c=d&e f%é" // every character that needs escaping
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("method = %s, want GET", r.Method)
		}
		if r.URL.Path != path {
			t.Errorf("path = %q, want %q", r.URL.Path, path)
		}
		want := url.Values{
			"appid":      {testAppID},
			"secret":     {canarySecret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		}
		if got := r.URL.Query(); !reflect.DeepEqual(got, want) {
			t.Errorf("query = %v, want %v", got, want)
		}
		if r.ContentLength > 0 {
			t.Errorf("request has a body of %d bytes", r.ContentLength)
		}
		fmt.Fprint(w, `{"openid":"o","session_key":"k"}`)
	})
	if _, err := c.Code2Session(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", calls.Load())
	}
}

func TestCode2SessionBaseURLPrefix(t *testing.T) {
	for _, suffix := range []string{"/wx", "/wx/"} {
		t.Run(suffix, func(t *testing.T) {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			defer srv.Close()
			mux.HandleFunc("/wx"+path, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"openid":"o","session_key":"k"}`)
			})
			c, err := NewClient(testAppID, canarySecret, WithBaseURL(srv.URL+suffix))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Code2Session(context.Background(), "code"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCode2SessionEmptyCode(t *testing.T) {
	c, mux, logs := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, err := c.Code2Session(context.Background(), "")
	if !errors.Is(err, ErrEmptyCode) {
		t.Fatalf("err = %v, want ErrEmptyCode", err)
	}
	if calls.Load() != 0 {
		t.Errorf("server saw %d requests, want none", calls.Load())
	}
	if Retryable(err) {
		t.Error("Retryable(ErrEmptyCode) = true")
	}
	if !strings.Contains(logs.String(), "err=") {
		t.Errorf("no log line for the rejected call: %q", logs.String())
	}
}

func TestCode2SessionErrCodes(t *testing.T) {
	sentinels := []*Error{ErrBusy, ErrInvalidCode, ErrRateLimited, ErrHighRiskUser, ErrCodeUsed, ErrInvalidSecret}
	tests := []struct {
		code      int
		msg       string
		sentinel  *Error
		temporary bool
	}{
		{-1, "system error", ErrBusy, true},
		{40029, "invalid code, rid: 6650b5a1-1ce2f1c5-4b0d8e5f", ErrInvalidCode, false},
		{40163, "code been used, rid: 6650b5a1", ErrCodeUsed, false},
		{45011, "api minute-quota reach limit  mustslower  retry next minute", ErrRateLimited, true},
		{40226, "high risk user", ErrHighRiskUser, false},
		{40125, "invalid appsecret", ErrInvalidSecret, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			c, mux, logs := setup(t)
			// A failed login may still carry stray fields; the error wins.
			reply(mux, http.StatusOK, fmt.Sprintf(`{"errcode":%d,"errmsg":%q,"openid":"o","session_key":"k"}`, tt.code, tt.msg))
			sess, err := c.Code2Session(context.Background(), canaryCode)
			if sess != nil {
				t.Errorf("got a session with an error: %+v", sess)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			for _, other := range sentinels {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true", err, other)
				}
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("errors.As(%v, *Error) = false", err)
			}
			if apiErr.Code != tt.code || apiErr.Msg != tt.msg {
				t.Errorf("got %+v, want code %d msg %q", apiErr, tt.code, tt.msg)
			}
			if want := fmt.Sprintf("miniprogram: jscode2session errcode %d: %s", tt.code, tt.msg); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if apiErr.Temporary() != tt.temporary || Retryable(err) != tt.temporary {
				t.Errorf("Temporary() = %v, Retryable = %v, want %v", apiErr.Temporary(), Retryable(err), tt.temporary)
			}
			if errors.Is(err, ErrBadResponse) || errors.Is(err, ErrTransport) {
				t.Error("an errcode matches ErrBadResponse or ErrTransport")
			}
			if want := fmt.Sprintf("errcode=%d", tt.code); !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q: %s", want, logs.String())
			}
		})
	}
}

func TestCode2SessionUnknownErrCode(t *testing.T) {
	c, mux, _ := setup(t)
	reply(mux, http.StatusOK, `{"errcode":41002,"errmsg":"appid missing"}`)
	_, err := c.Code2Session(context.Background(), canaryCode)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != 41002 {
		t.Fatalf("err = %v, want *Error 41002", err)
	}
	for _, s := range []*Error{ErrBusy, ErrInvalidCode, ErrRateLimited, ErrHighRiskUser, ErrCodeUsed, ErrInvalidSecret} {
		if errors.Is(err, s) {
			t.Errorf("matches %v", s)
		}
	}
	if !errors.Is(err, &Error{Code: 41002}) {
		t.Error("does not match an *Error with the same code")
	}
	if Retryable(err) {
		t.Error("Retryable = true")
	}
}

func TestCode2SessionErrMsgTruncatedAndScrubbed(t *testing.T) {
	c, mux, _ := setup(t)
	long := "invalid secret " + canarySecret + " for code " + canaryCode + " " + strings.Repeat("界", 300)
	reply(mux, http.StatusOK, fmt.Sprintf(`{"errcode":40125,"errmsg":%q}`, long))
	_, err := c.Code2Session(context.Background(), canaryCode)
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v", err)
	}
	if len(apiErr.Msg) > maxMsgBytes+len("…") {
		t.Errorf("Msg has %d bytes", len(apiErr.Msg))
	}
	if !strings.HasSuffix(apiErr.Msg, "…") || !strings.Contains(apiErr.Msg, "invalid secret REDACTED for code REDACTED") {
		t.Errorf("Msg = %q", apiErr.Msg)
	}
	assertNoLeak(t, "error", err.Error())
}

func TestCode2SessionHTTPStatus(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusTooManyRequests, true},
		{http.StatusNotFound, false},
		{http.StatusFound, false},
		{http.StatusNoContent, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			c, mux, logs := setup(t)
			// Even a well-formed body does not rescue a non-200 status.
			reply(mux, tt.status, `{"openid":"`+canaryOpenID+`","session_key":"`+canaryKey+`"}`)
			sess, err := c.Code2Session(context.Background(), canaryCode)
			if sess != nil {
				t.Errorf("got session %+v", sess)
			}
			var statusErr *StatusError
			if !errors.As(err, &statusErr) || statusErr.StatusCode != tt.status {
				t.Fatalf("err = %v, want *StatusError %d", err, tt.status)
			}
			if !errors.Is(err, ErrBadResponse) {
				t.Error("not ErrBadResponse")
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable = %v, want %v", Retryable(err), tt.retryable)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("Error() = %q lacks the status", err)
			}
			assertNoLeak(t, "error", err.Error())
			assertNoLeak(t, "log", logs.String())
		})
	}
}

func TestCode2SessionBadBody(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"empty", ""},
		{"blank", " \n"},
		{"not json", "<html>" + canaryKey + "</html>"},
		{"truncated", `{"openid":"o","session_key":"` + canaryKey},
		{"trailing garbage", `{"openid":"o","session_key":"` + canaryKey + `"} x`},
		{"array", `["` + canaryKey + `"]`},
		{"string", `"` + canaryKey + `"`},
		{"null", `null`},
		{"empty object", `{}`},
		{"errcode as string", `{"errcode":"40029","errmsg":"` + canaryKey + `"}`},
		{"errcode fractional", `{"errcode":1.5}`},
		{"errcode huge", `{"errcode":1e999}`},
		{"session_key as number", `{"openid":"o","session_key":12345678901234567890}`},
		{"openid as object", `{"openid":{"x":"` + canaryKey + `"},"session_key":"k"}`},
		{"missing openid", `{"session_key":"` + canaryKey + `"}`},
		{"missing session_key", `{"openid":"` + canaryOpenID + `"}`},
		{"empty openid", `{"openid":"","session_key":"` + canaryKey + `","errcode":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, logs := setup(t)
			reply(mux, http.StatusOK, tt.body)
			sess, err := c.Code2Session(context.Background(), canaryCode)
			if sess != nil {
				t.Errorf("got session %+v", sess)
			}
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			var apiErr *Error
			if errors.As(err, &apiErr) {
				t.Errorf("bad body gave *Error %v", apiErr)
			}
			if Retryable(err) {
				t.Error("Retryable = true")
			}
			assertNoLeak(t, "error", err.Error())
			assertNoLeak(t, "log", logs.String())
		})
	}
}

func TestCode2SessionBodyLimit(t *testing.T) {
	const prefix, suffix = `{"openid":"o","session_key":"k","pad":"`, `"}`
	pad := func(total int) string {
		return prefix + strings.Repeat("x", total-len(prefix)-len(suffix)) + suffix
	}
	t.Run("at limit", func(t *testing.T) {
		c, mux, _ := setup(t)
		reply(mux, http.StatusOK, pad(maxBodyBytes))
		if _, err := c.Code2Session(context.Background(), "code"); err != nil {
			t.Fatalf("a body of exactly %d bytes: %v", maxBodyBytes, err)
		}
	})
	t.Run("over limit", func(t *testing.T) {
		c, mux, _ := setup(t)
		reply(mux, http.StatusOK, pad(maxBodyBytes+1))
		_, err := c.Code2Session(context.Background(), "code")
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("err = %v, want ErrBadResponse about size", err)
		}
	})
	t.Run("endless", func(t *testing.T) {
		c, mux, _ := setup(t)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte(" "), 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		_, err := c.Code2Session(context.Background(), "code")
		if !errors.Is(err, ErrBadResponse) {
			t.Fatalf("err = %v, want ErrBadResponse", err)
		}
	})
}

// slowServer registers a handler that answers only when the client gives up
// or the test ends.
func slowServer(t *testing.T, mux *http.ServeMux) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func TestCode2SessionContextDeadline(t *testing.T) {
	c, mux, logs := setup(t)
	slowServer(t, mux)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Code2Session(ctx, canaryCode)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if !errors.Is(err, ErrTransport) {
		t.Errorf("err = %v, want ErrTransport", err)
	}
	if Retryable(err) {
		t.Error("Retryable = true after the caller's deadline")
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("no *url.Error in %v", err)
	}
	if !ue.Timeout() {
		t.Error("url.Error.Timeout() = false")
	}
	assertNoLeak(t, "url.Error", ue.Error())
	assertNoLeak(t, "url.Error.URL", ue.URL)
	assertNoLeak(t, "error", err.Error())
	assertNoLeak(t, "log", logs.String())
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Error() = %q does not name the endpoint", err)
	}
}

func TestCode2SessionClientTimeout(t *testing.T) {
	c, mux, _ := setup(t, WithTimeout(50*time.Millisecond))
	slowServer(t, mux)
	_, err := c.Code2Session(context.Background(), canaryCode)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrTransport and context.DeadlineExceeded", err)
	}
	if !Retryable(err) {
		t.Error("Retryable = false when only the client's own timeout ran out")
	}
	assertNoLeak(t, "error", err.Error())
}

func TestCode2SessionCancel(t *testing.T) {
	c, mux, _ := setup(t)
	slowServer(t, mux)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := c.Code2Session(ctx, canaryCode)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if Retryable(err) {
		t.Error("Retryable = true after cancel")
	}
	assertNoLeak(t, "error", err.Error())
}

func TestCode2SessionConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logs := &syncBuffer{}
	c, err := NewClient(testAppID, canarySecret, WithBaseURL("http://"+addr),
		WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Code2Session(context.Background(), canaryCode)
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrTransport", err)
	}
	if !Retryable(err) {
		t.Error("Retryable = false for a refused connection")
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL != "http://"+addr+path {
		t.Errorf("url.Error = %#v", ue)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("Error() = %q does not name the host", err)
	}
	assertNoLeak(t, "error", err.Error())
	assertNoLeak(t, "log", logs.String())
}

// leakyTransport fails with an error that quotes the full request URL, as a
// careless custom RoundTripper might.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused %s (query %s)", r.URL, r.URL.RawQuery)
}

func TestCode2SessionScrubsTransportErrors(t *testing.T) {
	logs := &syncBuffer{}
	c, err := NewClient(testAppID, canarySecret,
		WithHTTPClient(&http.Client{Transport: leakyTransport{}}),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Code2Session(context.Background(), canaryCode)
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "REDACTED") {
		t.Errorf("Error() = %q, want the secret replaced", err)
	}
	assertNoLeakExceptKeys(t, err.Error())
	assertNoLeakExceptKeys(t, logs.String())
}

// assertNoLeakExceptKeys is assertNoLeak for text that may name the query
// keys (the leaky transport prints them) but not their values.
func assertNoLeakExceptKeys(t *testing.T, s string) {
	t.Helper()
	for _, canary := range []string{canarySecret, canaryCode, canaryKey} {
		if strings.Contains(s, canary) {
			t.Errorf("leaks %q: %s", canary, s)
		}
	}
}

// TestNoSecretsAnywhere runs every kind of call through one client and
// checks every error string and the whole log for the canaries.
func TestNoSecretsAnywhere(t *testing.T) {
	c, mux, logs := setup(t, WithTimeout(200*time.Millisecond))
	var n atomic.Int32
	bodies := []string{
		`{"openid":"` + canaryOpenID + `","session_key":"` + canaryKey + `","unionid":"u"}`,
		`{"errcode":40029,"errmsg":"invalid code ` + canaryCode + `"}`,
		`{"errcode":40125,"errmsg":"invalid appsecret ` + canarySecret + `"}`,
		`{"errcode":-1,"errmsg":"busy"}`,
		`{"openid":"` + canaryOpenID + `","session_key":"` + canaryKey,
		`{"openid":"` + canaryOpenID + `"}`,
		`{"session_key":"` + canaryKey + `"}`,
		"500",
		"slow",
	}
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		switch b := bodies[int(n.Add(1)-1)%len(bodies)]; b {
		case "500":
			http.Error(w, canarySecret+canaryKey, http.StatusInternalServerError)
		case "slow":
			<-r.Context().Done()
		default:
			fmt.Fprint(w, b)
		}
	})
	for range bodies {
		sess, err := c.Code2Session(context.Background(), canaryCode)
		if err != nil {
			for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%s", err)} {
				assertNoLeak(t, "error", text)
			}
			continue
		}
		for _, text := range []string{fmt.Sprintf("%v", sess.SessionKey), fmt.Sprintf("%+v", sess), fmt.Sprintf("%#v", sess)} {
			if strings.Contains(text, canaryKey) {
				t.Errorf("session prints the key: %s", text)
			}
		}
	}
	out := logs.String()
	if got := strings.Count(out, "\n"); got != len(bodies) {
		t.Errorf("%d log lines for %d calls:\n%s", got, len(bodies), out)
	}
	assertNoLeak(t, "log", out)
	for _, text := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%#v", *c)} {
		assertNoLeak(t, "client", text)
	}
}

func TestLoggerDisabledLevel(t *testing.T) {
	logs := &syncBuffer{}
	c, mux, _ := setup(t, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	reply(mux, http.StatusOK, `{"openid":"o","session_key":"k"}`)
	if _, err := c.Code2Session(context.Background(), "code"); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("logged above debug: %s", logs.String())
	}
}
