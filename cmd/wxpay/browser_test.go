package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/wxsim"
)

// chromium finds Debian's Chromium; without it the browser tests skip
// locally and fail in CI, where scripts/test installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed: scripts/test installs it with apt-get (package chromium)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium); skipping the browser tests")
	return ""
}

// startServe runs the service as `wxpay serve --sim` does, on loopback,
// for a merchant on the API version given ("v2" or "v3").
func startServe(t *testing.T, apiVersion string) (base, admin string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DB = "sqlite:" + filepath.Join(t.TempDir(), "wxpay.db")
	cfg.AdminToken = wxpay.Secret(randomHex(16))
	cfg.WeChat.APIVersion = apiVersion
	a, err := newApp(t.Context(), appOptions{cfg: cfg, listener: ln, sim: true, noJobs: true,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		simConfig: func(c *wxsim.Config) { c.RefundDelay = time.Second },
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := httpapi.NewHTTPServer("", a.handler)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a.baseURL, cfg.AdminToken.Reveal()
}

// browser starts headless Chromium with the flags this machine needs.
func browser(t *testing.T) (context.Context, func(name string)) {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	dir := t.TempDir()
	shot := func(name string) {
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		p := filepath.Join(dir, name+".jpg")
		if err := os.WriteFile(p, b, 0o644); err == nil {
			t.Logf("screenshot: %s", p)
		}
	}
	return ctx, shot
}

func TestBrowserShopPaysAndAdminRefunds(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	// The same pages for a v2 merchant and an APIv3 one (RSA paySign,
	// JSON notifies): the mini program passes what the server returns.
	for _, v := range []string{"v2", "v3"} {
		t.Run(v, func(t *testing.T) { shopPaysAndAdminRefunds(t, v) })
	}
}

func shopPaysAndAdminRefunds(t *testing.T, apiVersion string) {
	ctx, shot := browser(t)
	base, admin := startServe(t, apiVersion)
	do := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(name)
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			shot("text")
			t.Fatal(err)
		}
		return s
	}
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(40*time.Second))
	}

	// The emulated mini program: log in, two coffees, pay, see PAID.
	do("shop", chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#login-status[data-state="ok"]`),
		chromedp.WaitVisible(`[data-sku="coffee"]`),
		chromedp.Click(`[data-sku="coffee"]`),
		chromedp.Click(`[data-sku="coffee"]`),
		chromedp.Click(`#pay-button`),
		poll(`document.querySelector('#order-status').textContent === 'PAID'`))
	no := text(`#order-no`)
	if len(no) < 6 {
		t.Fatalf("order number %q", no)
	}

	// The dashboard: sign in, find the order, refund ¥10.00 of it, see SUCCESS.
	do("admin", chromedp.Navigate(base+"/admin/"),
		chromedp.WaitVisible(`#token-input`),
		chromedp.SendKeys(`#token-input`, admin),
		chromedp.Click(`#token-submit`),
		chromedp.WaitVisible(`#orders-table tr[data-order="`+no+`"]`),
		chromedp.Click(`#orders-table tr[data-order="`+no+`"] td:nth-child(3)`),
		poll(`document.querySelector('#order-status').textContent === 'PAID'`),
		chromedp.SendKeys(`#refund-amount`, "10.00"),
		chromedp.SendKeys(`#refund-reason`, "browser test"),
		chromedp.Click(`#refund-submit`),
		poll(`[...document.querySelectorAll('.refund-status')].some(e => e.textContent === 'SUCCESS')`),
		poll(`document.querySelector('#order-status').textContent === 'REFUND'`))
}
