package payments_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/postgres"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The child process of TestA4CrashPoints (v2 and APIv3) is this test binary re-executed
// with -test.run=^TestHelperProcess$ and these variables.
const (
	envHelper    = "WXPAY_PAYMENTS_HELPER"  // "1" in the child
	envKind      = "WXPAY_HELPER_KIND"      // sqlite or postgres
	envDB        = "WXPAY_HELPER_DB"        // the SQLite file or the PostgreSQL DSN
	envSim       = "WXPAY_HELPER_SIM"       // the simulator's base URL
	envAddr      = "WXPAY_HELPER_ADDR"      // host:port to serve the notify endpoint on
	envFailpoint = "WXPAY_HELPER_FAILPOINT" // where to die: see failpoints
	envCrashRuns = "WXPAY_TEST_CRASH_RUNS"  // runs per kill point (default 3)
	envV3        = "WXPAY_HELPER_V3"        // "1": the merchant uses APIv3
)

// failpoints are A4's kill points: the child exits with status 2
//
//   - before-commit: after the notify verified, before the store's
//     transaction (the gateway returned a verified payment);
//   - after-commit: after the store committed PAID and its outbox event,
//     before the HTTP reply;
//   - before-flush: after the SUCCESS reply was written into the
//     response, before net/http flushed it (WeChat sees the connection
//     closed without an answer).
var failpoints = []string{"before-commit", "after-commit", "before-flush"}

// TestHelperProcess is the merchant's notify server in a child process:
// its own store on the parent's database, its own gateway and service,
// httpapi's notify endpoint, and the failpoint of envFailpoint. It is not
// a test of its own.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("the notify server of TestA4CrashPoints, run as a child process")
	}
	if err := runHelper(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
}

func runHelper() error {
	ctx := context.Background()
	simURL, fp, addr := os.Getenv(envSim), os.Getenv(envFailpoint), os.Getenv(envAddr)
	hc := &http.Client{Timeout: 5 * time.Second}
	// The service's clock is the simulator's, read over its control API.
	now := func() time.Time {
		r, err := hc.Get(simURL + "/sim/v1/clock")
		if err != nil {
			return time.Now()
		}
		defer r.Body.Close()
		var v struct {
			Now time.Time `json:"now"`
		}
		if json.NewDecoder(r.Body).Decode(&v) != nil {
			return time.Now()
		}
		return v.Now
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var (
		st  merchant.Store
		err error
	)
	switch os.Getenv(envKind) {
	case "sqlite":
		st, err = sqlite.Open(ctx, os.Getenv(envDB), sqlite.WithNow(now))
	case "postgres":
		st, err = postgres.Open(ctx, os.Getenv(envDB), postgres.WithNow(now))
	default:
		err = errors.New("no store kind")
	}
	if err != nil {
		return err
	}
	defer st.Close()
	var gw merchant.Gateway
	if os.Getenv(envV3) == "1" {
		gw, err = helperV3Gateway(ctx, hc, simURL, "http://"+addr+"/wxpay/notify/pay", now, logger)
	} else {
		var pay *apiv2.Client
		pay, err = apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: canaryAPIKey},
			apiv2.WithBaseURL(simURL), apiv2.WithClock(now), apiv2.WithLogger(logger))
		if err == nil {
			gw, err = wxgateway.New(wxgateway.Config{Pay: pay, NotifyURL: "http://" + addr + "/wxpay/notify/pay"})
		}
	}
	if err != nil {
		return err
	}
	svc, err := payments.New(failStore{st, fp}, failGateway{gw, fp}, payments.Config{Catalog: catalog, Now: now, Logger: logger})
	if err != nil {
		return err
	}
	srv, err := httpapi.New(httpapi.Config{Service: svc, Logger: logger})
	if err != nil {
		return err
	}
	h := srv.Handler()
	if fp == "before-flush" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wxpay/notify/pay" {
				w = exitAfterWrite{w}
			}
			inner.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("READY")
	return http.Serve(ln, h)
}

// helperV3Gateway is the child's APIv3 gateway: the merchant's v3
// credentials from the simulator's control API, the platform certificates
// downloaded as the service does at startup.
func helperV3Gateway(ctx context.Context, hc *http.Client, simURL, notifyURL string, now func() time.Time, logger *slog.Logger) (merchant.Gateway, error) {
	r, err := hc.Get(simURL + "/sim/v1/v3/merchants/" + mchID)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	var creds wxsim.V3Credentials
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		return nil, err
	}
	boot, err := apiv3.NewClient(apiv3.Config{MchID: mchID, AppID: appID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key)},
		apiv3.WithBaseURL(simURL), apiv3.WithClock(now), apiv3.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mgr, err := apiv3.NewCertificateManager(boot, wxpay.Secret(creds.APIv3Key))
	if err != nil {
		return nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		return nil, err
	}
	client, err := boot.WithVerifier(mgr)
	if err != nil {
		return nil, err
	}
	return wxgateway.NewV3(wxgateway.ConfigV3{Pay: client, NotifyURL: notifyURL})
}

// failGateway dies after a pay notify verified (before-commit).
type failGateway struct {
	merchant.Gateway
	fp string
}

func (g failGateway) ParsePayNotify(ctx context.Context, header http.Header, body []byte) (*merchant.PayNotice, error) {
	n, err := g.Gateway.ParsePayNotify(ctx, header, body)
	if err == nil && n.Paid && g.fp == "before-commit" {
		os.Exit(2)
	}
	return n, err
}

// failStore dies after the payment committed (after-commit).
type failStore struct {
	merchant.Store
	fp string
}

func (s failStore) MarkPaid(ctx context.Context, p *merchant.Payment, now time.Time) (merchant.PayOutcome, *merchant.Order, error) {
	out, o, err := s.Store.MarkPaid(ctx, p, now)
	if err == nil && out == merchant.PayApplied && s.fp == "after-commit" {
		os.Exit(2)
	}
	return out, o, err
}

// exitAfterWrite dies once the success reply sits in net/http's buffer,
// before anything reached the socket (before-flush): v2's SUCCESS
// document, or v3's 204, whose header net/http sends only when the
// handler returns.
type exitAfterWrite struct{ http.ResponseWriter }

func (w exitAfterWrite) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	if code == http.StatusNoContent {
		os.Exit(2)
	}
}

func (w exitAfterWrite) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if bytes.Contains(p, []byte("SUCCESS")) {
		os.Exit(2)
	}
	return n, err
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	stderr *textBuffer
	done   chan error
}

// startChild starts the notify server with a failpoint ("" for none) and
// waits until it listens.
func (h *harness) startChild(addr, fp string) *child {
	h.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	db := h.ref.path
	if h.ref.kind == "postgres" {
		db = h.ref.dsn
	}
	cmd.Env = append(os.Environ(), envHelper+"=1", envKind+"="+h.ref.kind, envDB+"="+db,
		envSim+"="+h.simURL, envAddr+"="+addr, envFailpoint+"="+fp)
	if h.v3 != nil {
		cmd.Env = append(cmd.Env, envV3+"=1")
	}
	c := &child{cmd: cmd, stderr: &textBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		var once sync.Once
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				once.Do(func() { close(ready) })
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-c.done:
		h.t.Fatalf("the child exited before it was ready: %v\n%s", err, c.stderr)
	case <-time.After(60 * time.Second):
		h.t.Fatalf("the child is not ready after a minute\n%s", c.stderr)
	}
	return c
}

// wait waits for the child to exit and returns its exit code.
func (c *child) wait(t testing.TB) int {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not exit\n%s", c.stderr)
	}
	return -1
}

// kill ends the child (SIGKILL: a crash, too) and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	err := <-c.done
	c.done <- err
}

// freeAddr returns a loopback address with a free port, which every child
// of a test listens on in turn (the notify_url is fixed per order).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestA4CrashPoints: a notify is acknowledged only after a durable commit,
// and a crash at any point loses nothing (reliability.md A4). The notify
// endpoint runs in a child process (this binary, re-executed) on the same
// database; a failpoint makes it exit(2) at one of the kill points while
// it handles WeChat's first try. A new child takes over the port, the
// simulator retries 15 s later, and the retry must pay the order — (a) —
// or find it paid and answer SUCCESS without a second side effect — (b),
// (c). Then everything quiesces and I1–I9 hold.
//
// Each kill point runs 3 times per store (WXPAY_TEST_CRASH_RUNS=100 for
// reliability.md's 100): a run costs two process starts, and CI time is
// better spent on the other scenarios. The runs differ by their order
// numbers and by the simulator's state, not by a random seed; the kill
// points themselves are deterministic.
func TestA4CrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv(envCrashRuns)); err == nil && v > 0 {
		runs = v
	}
	eachStore(t, func(t *testing.T, sk storeKind) {
		for _, api := range []string{"v2", "v3"} {
			t.Run(api, func(t *testing.T) { crashPoints(t, sk, api, runs) })
		}
	})
}

// crashPoints is TestA4CrashPoints for one store and API version.
func crashPoints(t *testing.T, sk storeKind, api string, runs int) {
	addr := freeAddr(t)
	opts := []option{withNotifyURL("http://" + addr + "/wxpay/notify/pay")}
	if api == "v3" {
		opts = append(opts, withV3("certificates"))
	}
	h := newHarness(t, sk, opts...)
	sess := h.user()
	for _, fp := range failpoints {
		for run := range runs {
			c := h.startChild(addr, fp)
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			h.payAtSim(sess, res) // WeChat's first try: the child dies
			if code := c.wait(t); code != 2 {
				t.Fatalf("%s run %d: the child exited %d, want 2\n%s", fp, run, code, c.stderr)
			}
			h.extra = append(h.extra, c.stderr.String())
			noRace(t, c)
			last := h.lastNotifyTry("pay", no)
			if last.Acked {
				t.Fatalf("%s: the killed child's try was acknowledged: %+v", fp, last)
			}
			switch fp {
			case "before-commit":
				h.wantUntouched(no)
			default:
				h.wantOnePayment(no) // committed before the crash
			}
			c2 := h.startChild(addr, "")
			h.advance(15 * time.Second) // the retry
			if last := h.lastNotifyTry("pay", no); !last.Acked {
				t.Fatalf("%s: the retry was not acknowledged: %+v", fp, last)
			}
			h.wantOnePayment(no)
			c2.kill()
			h.extra = append(h.extra, c2.stderr.String())
			noRace(t, c2)
		}
	}
	h.finish()
}

// noRace fails when the child's race detector reported a race (it would
// only change the exit status at a normal exit, which a killed child never
// reaches).
func noRace(t *testing.T, c *child) {
	t.Helper()
	if s := c.stderr.String(); strings.Contains(s, "WARNING: DATA RACE") {
		t.Fatalf("the child raced:\n%s", s)
	}
}
