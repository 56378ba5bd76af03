package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServeSimStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	db := "sqlite:" + filepath.Join(t.TempDir(), "wxpay.db")
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--sim", "--addr", "127.0.0.1:0", "--db", db}, streams{in: strings.NewReader(""), out: &out, err: &errb})
	}()
	re := regexp.MustCompile(`wxpay serving on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d\n%s\n%s", code, out.String(), errb.String())
		default:
		}
	}
	if base == "" {
		t.Fatalf("serve did not start\n%s\n%s", out.String(), errb.String())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "", "/metrics": "go_goroutines", "/": "<html",
		"/admin/": "<html", "/sim/": "<html", "/api/v1/products": "coffee"} {
		code, body := get(path)
		if code != 200 || !strings.Contains(strings.ToLower(body), strings.ToLower(want)) {
			t.Errorf("GET %s: %d %.200s", path, code, body)
		}
	}
	if !strings.Contains(out.String(), "admin token") {
		t.Errorf("no generated admin token announced:\n%s", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after the signal\n%s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	code, _, errOut := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if code != 1 || !strings.Contains(errOut, "wechat.app_id is empty") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = runCmd(t, "", "serve", "--sim", "--addr", "127.0.0.1:0", "--db", "mysql://x:secret@h/db")
	if code != 1 || !strings.Contains(errOut, "sqlite:PATH or postgres://") || strings.Contains(errOut, "secret") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
