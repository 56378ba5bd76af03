package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/internal/loadtest"
	"github.com/wxpay-go/wxpay/internal/pgtest"
)

// TestMain lets this test binary play the wxpay binary for `wxpay load`:
// with WXPAY_LOAD_CHILD=1 it runs its command line (`serve --config …`)
// as main would, instead of the tests. It also stops pgtest's server.
func TestMain(m *testing.M) {
	if os.Getenv("WXPAY_LOAD_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], streams{os.Stdin, os.Stdout, os.Stderr})
		stop()
		os.Exit(code)
	}
	pgtest.Main(m)
}

// testBinaryChildren makes `wxpay load` start its instances as this test
// binary in child mode.
func testBinaryChildren(t *testing.T) {
	t.Helper()
	old := loadChild
	loadChild = func(inst loadtest.Instance) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "serve", "--config", inst.ConfigFile)
		cmd.Env = []string{"WXPAY_LOAD_CHILD=1"}
		return cmd
	}
	t.Cleanup(func() { loadChild = old })
}

// pgURL turns pgtest's DSN (key=value, a unix socket) into the
// postgres:// URL that --db takes.
func pgURL(t *testing.T, dsn string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return dsn
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	q := url.Values{}
	for k, v := range kv {
		if k != "user" && k != "dbname" && k != "password" {
			q.Set(k, v)
		}
	}
	u := url.URL{Scheme: "postgres", Path: "/" + kv["dbname"], RawQuery: q.Encode()}
	if kv["password"] != "" {
		u.User = url.UserPassword(kv["user"], kv["password"])
	} else {
		u.User = url.User(kv["user"])
	}
	return u.String()
}

// loadRun runs `wxpay load` with the short CI scenario — a few hundred
// orders, every notify duplicated and reordered, faults on the WeChat
// calls, one instance killed and restarted — and checks that it passes
// with every invariant holding.
func loadRun(t *testing.T, extra ...string) *loadtest.Result {
	t.Helper()
	testBinaryChildren(t)
	dir := t.TempDir()
	args := append([]string{"load", "--orders", "300", "--concurrency", "16", "--dup-notifies", "2", "--reorder",
		"--faults", "unifiedorder:SYSTEMERROR:0.03,unifiedorder:DROP_AFTER_COMMIT:0.02,orderquery:SYSTEMERROR:0.02,refund:DROP_AFTER_COMMIT:0.1,notify:DROP:0.02",
		"--kill-every", "700ms", "--max-kills", "1", "--refund-ratio", "0.2", "--close-ratio", "0.05", "--abandon-ratio", "0.05",
		"--duration", "40s", "--notify-burst", "300", "--work-dir", dir, "--json", "--report", dir + "/report.html"}, extra...)
	code, out, errOut := runCmd(t, "", args...)
	var res loadtest.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("exit %d, output is not the JSON result: %v\nstdout:\n%s\nstderr:\n%s", code, err, clip(out, 2000), errOut)
	}
	var text strings.Builder
	res.WriteText(&text)
	t.Logf("%s\n%s", errOut, text.String())
	if code != 0 {
		t.Fatalf("wxpay load exited %d\nstderr:\n%s", code, errOut)
	}
	if !res.Completed || !res.InvariantsOK || len(res.Invariants) != 9 {
		t.Fatalf("completed %v, invariants ok %v (%d of them)", res.Completed, res.InvariantsOK, len(res.Invariants))
	}
	for _, inv := range res.Invariants {
		if inv.Violations != 0 {
			t.Errorf("%s %s: %d violations: %v", inv.ID, inv.Name, inv.Violations, inv.Examples)
		}
	}
	if len(res.Kills) != 1 {
		t.Errorf("%d kills, want exactly 1", len(res.Kills))
	}
	if res.Orders.Paid < res.Orders.Users*2/3 || res.Orders.Refunded == 0 {
		t.Errorf("only %d paid and %d refunded of %d", res.Orders.Paid, res.Orders.Refunded, res.Orders.Users)
	}
	if res.Notify.Acknowledged < res.Orders.Paid {
		t.Errorf("%d notifies acknowledged for %d paid orders", res.Notify.Acknowledged, res.Orders.Paid)
	}
	html, err := os.ReadFile(dir + "/report.html")
	if err != nil || !strings.Contains(string(html), "<svg") {
		t.Errorf("the HTML report is missing or has no chart: %v", err)
	}
	return &res
}

// TestLoadV3 is the short CI scenario on APIv3, with WeChat's signature
// probes on top: the v2 faults hit the v3 endpoints, the instances get
// the merchant's v3 credentials as 0600 files, and every invariant holds.
func TestLoadV3(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run: not in -short")
	}
	res := loadRun(t, "--v3", "--orders", "150", "--v3-probes", "0.05", "--notify-burst", "150")
	s := res.Settings
	if s.APIVersion != "v3" || s.Verifier != "certificates" || s.V3Probes != 0.05 {
		t.Errorf("settings: %+v", s)
	}
	for _, f := range s.Faults {
		if !strings.HasPrefix(f, "v3_") && !strings.HasPrefix(f, "notify:") {
			t.Errorf("fault %s was not moved to its v3 endpoint", f)
		}
	}
	if _, ok := res.WeChat["v3_prepay"]; !ok || res.WeChat["unifiedorder"].Count > 0 {
		t.Errorf("WeChat calls: %v", res.WeChat)
	}
	if res.ProbeAnswers == 0 || res.Notify.ProbesSent == 0 || res.Notify.ProbesAccepted != 0 {
		t.Errorf("probes: %d answers, %d notifies sent, %d acknowledged", res.ProbeAnswers, res.Notify.ProbesSent, res.Notify.ProbesAccepted)
	}
	var text strings.Builder
	res.WriteText(&text)
	if !strings.Contains(text.String(), "wxpay load: APIv3 (verifier certificates), 150 orders") {
		t.Errorf("the text report does not name the API:\n%s", text.String())
	}
	html, _ := os.ReadFile(res.WorkDir + "/report.html")
	if !strings.Contains(string(html), "WeChat Pay APIv3 (verifier certificates)") {
		t.Error("the HTML report does not name the API")
	}
	for _, f := range []string{"apiclient_key.pem", "apiv3_key.txt"} {
		st, err := os.Stat(res.WorkDir + "/" + f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, st.Mode().Perm())
		}
	}
}

// TestLoadV3PublicKey runs APIv3 in the middle of the switch-over to the
// WeChat Pay public key: either key signs, the instances verify both.
func TestLoadV3PublicKey(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run: not in -short")
	}
	testBinaryChildren(t)
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "", "load", "--v3", "--verifier", "both", "--orders", "80", "--concurrency", "8", "--dup-notifies", "2",
		"--refund-ratio", "0.2", "--notify-burst", "80", "--work-dir", dir, "--json")
	var res loadtest.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.OK() {
		t.Fatalf("exit %d (%v)\nstdout:\n%s\nstderr:\n%s", code, err, clip(out, 3000), errOut)
	}
	if res.Settings.Verifier != "both" || res.Orders.Refunded == 0 {
		t.Errorf("settings %+v, orders %+v", res.Settings, res.Orders)
	}
	if _, err := os.Stat(dir + "/pub_key.pem"); err != nil {
		t.Error(err)
	}
}

func TestLoadSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run: not in -short")
	}
	res := loadRun(t)
	if res.Instances[0].Starts != 2 {
		t.Errorf("instance started %d times, want 2 (one kill)", res.Instances[0].Starts)
	}
}

func TestLoadPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run: not in -short")
	}
	db := pgURL(t, pgtest.New(t))
	res := loadRun(t, "--db", db, "--instances", "2")
	if len(res.Instances) != 2 {
		t.Fatalf("%d instances, want 2", len(res.Instances))
	}
}

// A broken invariant fails the run: exit 1, the invariant and its
// examples printed.
func TestLoadFailsOnBrokenInvariant(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run: not in -short")
	}
	testBinaryChildren(t)
	old := loadCheck
	loadCheck = func(ctx context.Context, in invariant.Input) (*invariant.Report, error) {
		rep, err := old(ctx, in)
		if err == nil {
			rep.Results[0].Violations, rep.Results[0].Examples = 1, []string{"WX0000: local PAID, WeChat NOTPAY (made up by the test)"}
		}
		return rep, err
	}
	t.Cleanup(func() { loadCheck = old })
	code, out, errOut := runCmd(t, "", "load", "--orders", "30", "--concurrency", "4", "--notify-burst", "-1", "--work-dir", t.TempDir())
	if code != 1 || !strings.Contains(out, "FAIL I1") || !strings.Contains(out, "made up by the test") ||
		!strings.Contains(out, "FAIL: an invariant is broken") || !strings.Contains(errOut, "FAIL") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestLoadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"load", "--instances", "2"}, "needs PostgreSQL"},
		{[]string{"load", "--faults", "unifiedorder:NOPE:0.1"}, "unknown fault kind"},
		{[]string{"load", "--faults", "nowhere:SYSTEMERROR:0.1"}, "unknown API"},
		{[]string{"load", "--faults", "unifiedorder:SYSTEMERROR:1.5"}, "must be in (0, 1)"},
		{[]string{"load", "--refund-ratio", "2"}, "refund-ratio"},
		{[]string{"load", "--db", "mysql://x"}, "sqlite:PATH or postgres"},
		{[]string{"load", "--progress", "sometimes"}, "--progress"},
		{[]string{"load", "extra"}, "takes no arguments"},
		{[]string{"load", "--verifier", "both"}, "APIv3 run (--v3)"},
		{[]string{"load", "--v3-probes", "0.1"}, "APIv3 run (--v3)"},
		{[]string{"load", "--faults", "v3_prepay:SYSTEMERROR:0.1"}, "add --v3"},
		{[]string{"load", "--v3", "--verifier", "keys"}, "verifier \"keys\""},
		{[]string{"load", "--v3", "--v3-probes", "1"}, "v3 probes must be in [0, 1)"},
		{[]string{"load", "--faults", "unifiedorder:V3_PROBE:0.1"}, "V3_PROBE applies to the v3_* apis only"},
	} {
		code, _, errOut := runCmd(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.err)
		}
	}
}

func TestPgURL(t *testing.T) {
	got := pgURL(t, "host=/tmp/pgtest-1 user=postgres dbname=test_ab sslmode=disable")
	want := "postgres://postgres@/test_ab?host=%2Ftmp%2Fpgtest-1&sslmode=disable"
	if got != want {
		t.Errorf("pgURL = %q, want %q", got, want)
	}
}
