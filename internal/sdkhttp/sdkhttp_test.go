package sdkhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.mch.weixin.qq.com":   "https://api.mch.weixin.qq.com",
		"https://api.mch.weixin.qq.com/":  "https://api.mch.weixin.qq.com",
		"http://127.0.0.1:8090//":         "http://127.0.0.1:8090",
		"http://proxy.internal/wechatpay": "http://proxy.internal/wechatpay",
	} {
		if got, err := BaseURL(in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"":                            "scheme",
		"api.mch.weixin.qq.com":       "scheme",
		"ftp://api.mch.weixin.qq.com": "scheme",
		"https://":                    "no host",
		"https://user:pw@api.example": "user info",
		"https://api.example/?x=1":    "query",
		"https://api.example/?":       "query",
		"https://api.example/#frag":   "fragment",
		"http://[::1":                 "not a valid URL",
	} {
		_, err := BaseURL(in)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("BaseURL(%q) = %v; want an error about %s", in, err, why)
		}
		if err != nil && (strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "x=1")) {
			t.Errorf("BaseURL(%q): the error quotes the URL: %v", in, err)
		}
	}
}

func TestCheckNotifyURL(t *testing.T) {
	for _, ok := range []string{"https://shop.example/wxpay/notify/pay", "http://127.0.0.1:8080/n"} {
		if err := CheckNotifyURL(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "shop.example/n", "https:///n", "https://shop.example/n?a=1",
		"https://shop.example/n#x", "https://shop.example/" + strings.Repeat("a", 256), "https://shop.example/a b"} {
		if err := CheckNotifyURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNeverSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now: the connection is refused
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+addr+"/x", nil)
	_, err = http.DefaultClient.Do(req)
	if err == nil || !NeverSent(err) {
		t.Fatalf("a refused connection: NeverSent(%v) = false", err)
	}
	if NeverSent(errors.New("read: connection reset by peer")) || NeverSent(context.DeadlineExceeded) {
		t.Fatal("an error after sending counted as never sent")
	}
}
