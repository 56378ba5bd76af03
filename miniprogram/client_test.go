package miniprogram

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewClientRequiresCredentials(t *testing.T) {
	tests := []struct {
		name, appID, secret, want string
	}{
		{"no appID", "", canarySecret, "empty appID"},
		{"no secret", testAppID, "", "empty appSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.appID, tt.secret)
			if err == nil || c != nil {
				t.Fatalf("NewClient = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "miniprogram: ") {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(testAppID, canarySecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.String(); got != DefaultBaseURL {
		t.Errorf("base = %q, want %q", got, DefaultBaseURL)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", c.timeout, DefaultTimeout)
	}
	if c.http == nil || c.http == http.DefaultClient {
		t.Error("client should own a fresh *http.Client")
	}
	if c.log == nil || c.log.Enabled(t.Context(), slog.LevelError) {
		t.Error("default logger should discard")
	}
	if c.AppID() != testAppID {
		t.Errorf("AppID() = %q", c.AppID())
	}
}

func TestNewClientOptions(t *testing.T) {
	hc := &http.Client{}
	logger := slog.New(slog.DiscardHandler)
	c, err := NewClient(testAppID, canarySecret,
		WithBaseURL("http://127.0.0.1:8080/sim"),
		WithHTTPClient(hc),
		WithLogger(logger),
		WithTimeout(0),
		nil, // ignored
	)
	if err != nil {
		t.Fatal(err)
	}
	if c.base.String() != "http://127.0.0.1:8080/sim" || c.http != hc || c.log != logger || c.timeout != 0 {
		t.Errorf("options not applied: base %v http %p log %p timeout %v", c.base, c.http, c.log, c.timeout)
	}
	c, err = NewClient(testAppID, canarySecret, WithLogger(nil))
	if err != nil || c.log == nil {
		t.Errorf("WithLogger(nil) = %v, logger %v", err, c.log)
	}
}

func TestNewClientBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"empty URL", WithBaseURL(""), "scheme"},
		{"relative URL", WithBaseURL("api.weixin.qq.com"), "scheme"},
		{"path only", WithBaseURL("/sns"), "scheme"},
		{"ftp", WithBaseURL("ftp://api.weixin.qq.com"), "scheme"},
		{"no host", WithBaseURL("https://"), "host"},
		{"user info", WithBaseURL("https://user:" + canarySecret + "@api.weixin.qq.com"), "user info"},
		{"query", WithBaseURL("https://api.weixin.qq.com?secret=" + canarySecret), "query"},
		{"empty query", WithBaseURL("https://api.weixin.qq.com?"), "query"},
		{"fragment", WithBaseURL("https://api.weixin.qq.com#x"), "fragment"},
		{"unparsable", WithBaseURL("http://[::1" + canarySecret), "not a valid URL"},
		{"control char", WithBaseURL("http://host/\x7f"), "not a valid URL"},
		{"nil HTTP client", WithHTTPClient(nil), "nil"},
		{"negative timeout", WithTimeout(-time.Second), "negative"},
		{"custom failing option", func(*Client) error { return errors.New("boom") }, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(testAppID, canarySecret, tt.opt)
			if err == nil || c != nil {
				t.Fatalf("NewClient = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canarySecret) {
				t.Errorf("err leaks the secret: %q", err)
			}
		})
	}
}
