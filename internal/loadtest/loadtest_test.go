package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/wxsim"
)

func TestParseFaults(t *testing.T) {
	got, err := ParseFaults("unifiedorder:SYSTEMERROR:0.02, orderquery:drop-after-commit:0.01,refund:DELAY:0.05:300ms," +
		"closeorder:ERR_CODE:x3:BIZERR_NEED_RETRY,notify:DROP:0.01,notify:delay:0.1:2s,refundquery:HTTP_500:5")
	if err != nil {
		t.Fatal(err)
	}
	want := []FaultSpec{
		{API: "unifiedorder", Kind: wxsim.FaultSystemError, Rate: 0.02},
		{API: "orderquery", Kind: wxsim.FaultDropAfterCommit, Rate: 0.01},
		{API: "refund", Kind: wxsim.FaultDelay, Rate: 0.05, Delay: 300 * time.Millisecond},
		{API: "closeorder", Kind: wxsim.FaultErrCode, Count: 3, ErrCode: "BIZERR_NEED_RETRY"},
		{API: "notify", Kind: wxsim.FaultNotifyDrop, Rate: 0.01},
		{API: "notify", Kind: wxsim.FaultNotifyDelay, Rate: 0.1, Delay: 2 * time.Second},
		{API: "refundquery", Kind: wxsim.FaultHTTP500, Count: 5},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ParseFaults:\n got %v\nwant %v", got, want)
	}
	// String writes what ParseFaults reads.
	var specs []string
	for _, f := range got {
		specs = append(specs, f.String())
	}
	again, err := ParseFaults(strings.Join(specs, ","))
	if err != nil || fmt.Sprint(again) != fmt.Sprint(want) {
		t.Fatalf("round trip of %q: %v, %v", strings.Join(specs, ","), again, err)
	}
	if fs, err := ParseFaults(""); err != nil || len(fs) != 0 {
		t.Errorf("empty spec: %v, %v", fs, err)
	}
	if _, err := ParseFaults(ChaosFaults); err != nil {
		t.Errorf("ChaosFaults: %v", err)
	}
	for spec, msg := range map[string]string{
		"unifiedorder:SYSTEMERROR":           "want API:KIND:RATE",
		"unifiedorder:SYSTEMERROR:0.1:x:y":   "want API:KIND:RATE",
		"payments:SYSTEMERROR:0.1":           "unknown API",
		"unifiedorder:EXPLODE:0.1":           "unknown fault kind",
		"unifiedorder:SYSTEMERROR:1.5":       "must be in (0, 1)",
		"unifiedorder:SYSTEMERROR:0":         "neither a probability",
		"unifiedorder:SYSTEMERROR:x0":        "neither a probability",
		"unifiedorder:SYSTEMERROR:often":     "neither a probability",
		"unifiedorder:DELAY:0.1":             "needs a positive delay",
		"unifiedorder:DELAY:0.1:-1s":         "needs a positive delay",
		"unifiedorder:ERR_CODE:0.1":          "needs the err_code",
		"unifiedorder:SYSTEMERROR:0.1:300ms": "takes no 4th part",
		"notify:SYSTEMERROR:0.1":             "notify API takes",
		"unifiedorder:DUPLICATE:0.1":         "notify api only",
		"orderquery:USER_PAYS_FIRST:0.1":     "applies to closeorder",
	} {
		if _, err := ParseFaults(spec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseFaults(%q) = %v, want an error with %q", spec, err, msg)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := uint64(rng.Int64N(1 << uint(rng.IntN(40))))
		b := bucketOf(v)
		if lo, hi := lowOf(b), highOf(b); v < lo || v > hi || b >= maxBucket {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, b, lo, hi)
		}
		if v >= subBuckets && float64(highOf(b)-lowOf(b)+1)/float64(v) > 1.0/64+1e-9 {
			t.Fatalf("bucket of %d is %d wide: more than 1/64", v, highOf(b)-lowOf(b)+1)
		}
	}
	if b := bucketOf(math.MaxUint64); b != maxBucket-1 {
		t.Errorf("the largest value is in bucket %d, want %d", b, maxBucket-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Summary() != (Summary{}) || h.Buckets() != nil {
		t.Fatal("an empty histogram must report zeros")
	}
	// 1 ms … 10000 ms, once each, shuffled.
	vals := rand.New(rand.NewPCG(3, 4)).Perm(10000)
	for _, v := range vals {
		h.Record(time.Duration(v+1) * time.Millisecond)
	}
	s := h.Summary()
	if s.Count != 10000 || s.Min != 1 || s.Max != 10000 {
		t.Fatalf("count %d min %v max %v", s.Count, s.Min, s.Max)
	}
	for _, c := range []struct{ got, want float64 }{{s.P50, 5000}, {s.P90, 9000}, {s.P95, 9500}, {s.P99, 9900}, {s.P999, 9990}, {s.Mean, 5000.5}} {
		if math.Abs(c.got-c.want)/c.want > 0.01 {
			t.Errorf("got %v, want %v within 1%%", c.got, c.want)
		}
	}
	if q := h.Quantile(0); q != time.Millisecond {
		t.Errorf("q0 = %v, want the min", q)
	}
	if q := h.Quantile(1); q != 10*time.Second {
		t.Errorf("q1 = %v, want the max", q)
	}
	var n uint64
	for _, b := range h.Buckets() {
		n += b.Count
		if b.Low >= b.High {
			t.Errorf("bucket %+v", b)
		}
	}
	if n != 10000 {
		t.Errorf("buckets hold %d samples", n)
	}
	// Merge adds up.
	var m Histogram
	m.Record(-time.Second) // counts as zero
	m.Merge(&h)
	if m.Count() != 10001 || m.Summary().Min != 0 || m.Summary().Max != 10000 {
		t.Errorf("merged: %+v", m.Summary())
	}
	// One sample: every quantile is it.
	var one Histogram
	one.Record(1234 * time.Microsecond)
	if s := one.Summary(); s.P50 != 1.234 || s.P99 != 1.234 {
		t.Errorf("one sample: %+v", s)
	}
}

func TestPacer(t *testing.T) {
	p := newPacer(200)
	start := time.Now()
	for range 21 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 95*time.Millisecond || d > 2*time.Second {
		t.Errorf("21 waits at 200/s took %v, want about 100 ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newPacer(0.1)
	_ = slow.wait(ctx) // the first slot is now
	if err := slow.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait returned %v", err)
	}
	if err := newPacer(0).wait(context.Background()); err != nil {
		t.Errorf("unpaced: %v", err)
	}
}

func TestUserIP(t *testing.T) {
	seen := map[string]bool{}
	for i := range 200000 {
		ip := userIP(i)
		if !ip.IsLoopback() || ip.To4()[3] == 0 || ip.To4()[3] == 255 {
			t.Fatalf("user %d: %v", i, ip)
		}
		if seen[ip.String()] {
			t.Fatalf("user %d: %v used twice", i, ip)
		}
		seen[ip.String()] = true
	}
}

func TestAPIOf(t *testing.T) {
	for path, want := range map[string]string{
		"/pay/unifiedorder": "unifiedorder", "/secapi/pay/refund": "refund", "/sns/jscode2session": "jscode2session",
		"/sim/v1/request-payment": "sim:request-payment", "/sim/v1/users/abc/balance": "sim:users",
		"/v3/pay/transactions/jsapi": "v3_prepay", "/v3/pay/transactions/native": "v3_prepay",
		"/v3/pay/transactions/out-trade-no/WX261129101500ABCDEFGHJK":       "v3_query",
		"/v3/pay/transactions/id/4200000000202611290000000001":             "v3_query",
		"/v3/pay/transactions/out-trade-no/WX261129101500ABCDEFGHJK/close": "v3_close",
		"/v3/refund/domestic/refunds":                                      "v3_refund", "/v3/refund/domestic/refunds/LR0001": "v3_refundquery",
		"/v3/bill/tradebill": "v3_bill", "/v3/billdownload/file": "v3_billdownload", "/v3/certificates": "v3_certificates",
	} {
		if got := apiOf(path); got != want {
			t.Errorf("apiOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestClassifyErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&apiError{status: 503, code: "UNAVAILABLE"}, "HTTP 503 UNAVAILABLE"},
		{&apiError{status: 502}, "HTTP 502"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset"},
		{errors.New("wx.requestPayment: requestPayment:fail 余额不足"), "wx.requestPayment"},
	} {
		if got := classifyErr(c.err); got != c.want {
			t.Errorf("classifyErr(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if !retryable(&apiError{status: 503}) || !retryable(&apiError{status: 429}) || retryable(&apiError{status: 400}) ||
		!retryable(syscall.ECONNREFUSED) || retryable(context.Canceled) {
		t.Error("retryable")
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	ok := Config{Spawn: loadChildStub, OpenMerchant: openMerchantStub}
	c, err := ok.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Orders != 1000 || c.Concurrency != 64 || c.Instances != 1 || c.NotifyBurst != 2000 || c.TimeScale != 3600 ||
		c.CloseMinAge != time.Second || c.Seed == 0 || c.CloseRatio != 0.02 {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []Config{
		{Instances: 2},
		{Instances: 2, DB: "sqlite:/tmp/x.db"},
		{DB: "mysql://x"},
		{RefundRatio: 0.9, CloseRatio: 0.2},
		{Orders: -1},
		{KillEvery: time.Millisecond},
	} {
		bad.Spawn, bad.OpenMerchant = ok.Spawn, ok.OpenMerchant
		var ce *ConfigError
		if _, err := bad.withDefaults(); !errors.As(err, &ce) {
			t.Errorf("%+v: %v, want a ConfigError", bad, err)
		}
	}
	// APIv3: the verifier's default, the v2 fault names moved to the v3
	// endpoints, and the v3 settings refused without V3.
	faults, err := ParseFaults("unifiedorder:SYSTEMERROR:0.02,orderquery:DELAY:0.1:1s,refund:DROP_AFTER_COMMIT:x2,jscode2session:SYSTEMERROR:0.01,notify:DROP:0.01")
	if err != nil {
		t.Fatal(err)
	}
	v3 := Config{Spawn: loadChildStub, OpenMerchant: openMerchantStub, V3: true, Faults: faults}
	if c, err = v3.withDefaults(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range c.Faults {
		names = append(names, f.String())
	}
	if want := "v3_prepay:SYSTEMERROR:0.02,v3_query:DELAY:0.1:1s,v3_refund:DROP_AFTER_COMMIT:x2,jscode2session:SYSTEMERROR:0.01,notify:DROP:0.01"; strings.Join(names, ",") != want || c.Verifier != VerifierCertificates {
		t.Errorf("v3 faults %s, verifier %q", strings.Join(names, ","), c.Verifier)
	}
	if faults[0].API != "unifiedorder" {
		t.Error("withDefaults changed the caller's faults")
	}
	if _, err := ParseFaults(ChaosFaultsV3); err != nil {
		t.Errorf("ChaosFaultsV3: %v", err)
	}
	v3Faults, _ := ParseFaults("v3_query:V3_PROBE:0.1")
	for _, bad := range []Config{
		{Verifier: VerifierBoth},
		{V3Probes: 0.1},
		{Faults: v3Faults},
		{V3: true, Verifier: "keys"},
		{V3: true, V3Probes: 1},
		{V3: true, V3Probes: -0.1},
	} {
		bad.Spawn, bad.OpenMerchant = ok.Spawn, ok.OpenMerchant
		var ce *ConfigError
		if _, err := bad.withDefaults(); !errors.As(err, &ce) {
			t.Errorf("%+v: %v, want a ConfigError", bad, err)
		}
	}
	if _, err := (Config{}).withDefaults(); err == nil || !strings.Contains(err.Error(), "Spawn and OpenMerchant") {
		t.Errorf("no Spawn: %v", err)
	}
	if _, err := Run(context.Background(), Config{Instances: 2}); err == nil {
		t.Error("Run took a bad config")
	}
}

// sampleResult is a finished run's result, without running one.
func sampleResult() *Result {
	var create, api Histogram
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		create.Record(time.Duration(2e6 * math.Exp(rng.NormFloat64()*0.6)))
		api.Record(time.Duration(1e5 * math.Exp(rng.NormFloat64())))
	}
	r := &Result{
		Settings:  settingsOf(Config{Orders: 5000, Concurrency: 64, Rate: 500, DB: "postgres://u:secret@localhost/db", Instances: 2, KillEvery: 3 * time.Second}),
		Started:   time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC),
		Completed: true, InvariantsOK: true,
		Orders:       OrderCounts{Users: 5000, Created: 5000, Paid: 4800, Refunded: 480, Closed: 100, Abandoned: 100},
		DriveSeconds: 10, PaidPerSecond: 480, CreatedPerSecond: 500, PeakPaidPerSecond: 520,
		Latency:       Latencies{CreateOrder: create.Summary(), Login: create.Summary()},
		WeChat:        map[string]Summary{"unifiedorder": api.Summary(), "orderquery": api.Summary()},
		CreateBuckets: create.Buckets(),
		Notify:        NotifyResult{Acknowledged: 4800, Tries: 5000, PerSecond: 480, PeakPerSec: 600},
		NotifyBurst:   &BurstResult{Sent: 10000, Acked: 10000, Seconds: 2, PerSecond: 5000},
		Errors:        []ErrorKind{{Kind: "login: <script>alert(1)</script>", Count: 3, Example: "a & b"}},
		Kills:         []KillEvent{{T: 3, Instance: 1, DownForMS: 600}},
		Instances:     []InstanceResult{{Index: 0, Addr: "127.0.0.1:1", Starts: 1, PeakMB: 60}, {Index: 1, Addr: "127.0.0.1:2", Starts: 2, Kills: 1, PeakMB: 55}},
		Invariants: []invariant.Result{{ID: "I1", Name: "local state agrees with WeChat", Checked: 5000},
			{ID: "I9", Name: "no secret", Checked: 3}},
	}
	for i := range 10 {
		r.Timeline = append(r.Timeline, Tick{T: float64(i + 1), Created: 500, Paid: int64(450 + i), Notifies: 480, Errors: int64(i % 2)})
	}
	return r
}

func loadChildStub(Instance) *exec.Cmd { return nil }

func openMerchantStub(context.Context, MerchantEnv) (*Merchant, error) { return nil, nil }

// wellFormed checks that the page's elements nest (void elements aside)
// and that every SVG in it is well-formed XML.
func wellFormed(t *testing.T, page string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var stack []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the page does not parse: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tk.Name.Local)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != tk.Name.Local {
				t.Fatalf("</%s> closes %v", tk.Name.Local, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements: %v", stack)
	}
	svgs := regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(page, -1)
	if len(svgs) != 3 {
		t.Fatalf("%d SVG charts, want 3", len(svgs))
	}
	for _, s := range svgs {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("an SVG is not well-formed XML: %v\n%s", err, s[:min(len(s), 300)])
			}
		}
	}
}

func TestWriteHTML(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	wellFormed(t, page)
	for _, want := range []string{"<!DOCTYPE html>", "PASS: every invariant holds", "<polyline", "<rect", "local state agrees with WeChat",
		"create-order p99 at 500/s", "notifies handled/s", "&lt;script&gt;", "u:REDACTED@", "instance 1 killed"} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "secret@", "http://", "https://", "@import", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the report holds %q (it must be self-contained and escaped)", bad)
		}
	}

	// A failed run says so; an empty one still draws.
	r.InvariantsOK = false
	r.Invariants[0].Violations, r.Invariants[0].Examples = 2, []string{"WX1: local PAID, sim NOTPAY"}
	b.Reset()
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "FAIL: an invariant is broken") || !strings.Contains(b.String(), "WX1: local PAID") {
		t.Error("a failed run's report does not say so")
	}
	empty := &Result{Settings: settingsOf(Config{})}
	b.Reset()
	if err := empty.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b.String())
}

func TestWriteTextAndJSON(t *testing.T) {
	r := sampleResult()
	var b strings.Builder
	r.WriteText(&b)
	for _, want := range []string{"480.0 paid orders/s", "create order", "unifiedorder", "PASS", "ok   I1", "kill every 3s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, b.String())
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil || back.PaidPerSecond != 480 || back.Latency.CreateOrder.P99 == 0 ||
		len(back.Invariants) != 2 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	if strings.Contains(string(data), "u:secret@") {
		t.Error("the JSON holds the database password")
	}
	if !strings.HasPrefix(b.String(), "wxpay load: APIv2, ") {
		t.Errorf("the text report does not name the API: %.60s", b.String())
	}
	// A result saved before the API version was recorded reads as v2.
	var old Result
	if err := json.Unmarshal([]byte(`{"settings":{"orders":1}}`), &old); err != nil || old.Settings.apiName() != "APIv2" {
		t.Errorf("old result: %v %q", err, old.Settings.apiName())
	}
}

// An APIv3 run names its API and verifier in every report, and a service
// that acknowledges a probe notify fails it.
func TestV3Report(t *testing.T) {
	r := sampleResult()
	r.Settings = settingsOf(Config{Orders: 5000, Concurrency: 64, V3: true, Verifier: VerifierBoth, V3Probes: 0.01})
	r.ProbeAnswers, r.Notify.ProbesSent = 40, 48
	var text, page strings.Builder
	r.WriteText(&text)
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wxpay load: APIv3 (verifier both), 5000 orders", "v3 probe signatures 0.01",
		"signature probes: 48 notifies sent, 0 acknowledged (must be 0); 40 v3 answers probe-signed", "PASS"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(page.String(), "WeChat Pay APIv3 (verifier both): 5000 orders") {
		t.Error("the HTML report does not name the API")
	}
	data, _ := json.Marshal(r)
	if !strings.Contains(string(data), `"api_version":"v3","verifier":"both","v3_probes":0.01`) {
		t.Errorf("JSON settings: %s", data[:200])
	}
	r.Notify.ProbesAccepted = 2
	if r.OK() || !strings.Contains(r.Verdict(), "acknowledged 2 notifies with a probe signature") {
		t.Errorf("a probe acknowledged: OK %v, %s", r.OK(), r.Verdict())
	}
	page.Reset()
	if err := r.WriteHTML(&page); err != nil || !strings.Contains(page.String(), "acknowledged 2 notifies with a probe signature") {
		t.Errorf("the HTML verdict: %v", err)
	}
}

func TestTextLog(t *testing.T) {
	l := newTextLog([]string{"CANARY"})
	l.add(bytes.Repeat([]byte("x"), textCap-10))
	l.add(nil)
	l.add([]byte("no canary, past the cap"))    // dropped
	l.add([]byte("a CANARY past the cap, too")) // kept: it holds a canary
	texts, seen, kept := l.texts()
	if seen != 3 || kept != 2 || len(texts) != 2 || !strings.Contains(texts[1], "CANARY") {
		t.Errorf("seen %d kept %d texts %d", seen, kept, len(texts))
	}
}
