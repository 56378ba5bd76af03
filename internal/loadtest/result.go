package loadtest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/internal/invariant"
)

// Result is what a run measured and found.
type Result struct {
	Settings  Settings  `json:"settings"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
	Completed bool      `json:"completed"`
	Failure   string    `json:"failure,omitempty"`
	WorkDir   string    `json:"work_dir"`

	Orders OrderCounts `json:"orders"`
	// DriveSeconds is the users' phase: from the first user's start to
	// the last one's end.
	DriveSeconds float64 `json:"drive_seconds"`
	// PaidPerSecond is end-to-end throughput: orders created, paid, their
	// notify handled and seen PAID by their user, per second of the
	// users' phase.
	PaidPerSecond    float64 `json:"paid_per_second"`
	CreatedPerSecond float64 `json:"created_per_second"`
	// PeakPaidPerSecond is the best one-second tick.
	PeakPaidPerSecond int64 `json:"peak_paid_per_second"`

	// CPU is where the machine's time went in the users' phase.
	CPU CPUResult `json:"cpu"`
	// Machine is what the run ran on.
	Machine Machine `json:"machine"`

	Latency Latencies `json:"latency"`
	// WeChat is the simulator's time to serve each API, by API: what the
	// service's WeChat calls cost, less the loopback network.
	WeChat map[string]Summary `json:"wechat_latency"`
	// CreateBuckets is the create-order latency histogram (for charts).
	CreateBuckets []Bucket `json:"create_buckets"`

	Notify NotifyResult `json:"notify"`
	// ProbeAnswers counts the APIv3 answers the simulator signed with a
	// WECHATPAY/SIGNTEST/ probe signature (V3_PROBE, Config.V3Probes):
	// the service must take each as an unknown outcome.
	ProbeAnswers int64        `json:"v3_probe_answers,omitempty"`
	NotifyBurst  *BurstResult `json:"notify_burst,omitempty"`

	Errors       []ErrorKind        `json:"errors"`
	Kills        []KillEvent        `json:"kills"`
	Instances    []InstanceResult   `json:"instances"`
	LoadPeakMB   float64            `json:"load_process_peak_rss_mb"` // this process: simulator and users
	Timeline     []Tick             `json:"timeline"`
	Quiesce      *QuiesceResult     `json:"quiesce,omitempty"`
	SecretScan   string             `json:"secret_scan,omitempty"`
	Notes        []string           `json:"notes,omitempty"`
	Invariants   []invariant.Result `json:"invariants"`
	InvariantsOK bool               `json:"invariants_ok"`
}

// Settings are the run's parameters as they were applied.
type Settings struct {
	// APIVersion is the WeChat Pay API the service used: "v2" or "v3"
	// (empty in results saved before APIv3 runs existed: v2).
	APIVersion string `json:"api_version"`
	// Verifier and V3Probes are the APIv3 settings (Config.Verifier,
	// Config.V3Probes).
	Verifier     string   `json:"verifier,omitempty"`
	V3Probes     float64  `json:"v3_probes,omitempty"`
	Orders       int      `json:"orders"`
	Concurrency  int      `json:"concurrency"`
	Rate         float64  `json:"rate"`
	DB           string   `json:"db"`
	Instances    int      `json:"instances"`
	DupNotifies  int      `json:"dup_notifies"`
	Reorder      bool     `json:"reorder"`
	Faults       []string `json:"faults"`
	KillEvery    string   `json:"kill_every"`
	MaxKills     int      `json:"max_kills,omitempty"`
	RefundRatio  float64  `json:"refund_ratio"`
	CloseRatio   float64  `json:"close_ratio"`
	AbandonRatio float64  `json:"abandon_ratio"`
	Duration     string   `json:"duration"`
	SimHTTP      bool     `json:"sim_http"`
	TimeScale    float64  `json:"time_scale"`
	CloseMinAge  string   `json:"close_min_age"`
	Seed         uint64   `json:"seed"`
}

func settingsOf(c Config) Settings {
	s := Settings{APIVersion: "v2", Orders: c.Orders, Concurrency: c.Concurrency, Rate: c.Rate, DB: redactDSN(c.DB), Instances: c.Instances,
		DupNotifies: c.DupNotifies, Reorder: c.Reorder, KillEvery: c.KillEvery.String(), MaxKills: c.MaxKills, RefundRatio: c.RefundRatio,
		CloseRatio: c.CloseRatio, AbandonRatio: c.AbandonRatio, Duration: c.Duration.String(), TimeScale: c.TimeScale,
		CloseMinAge: c.CloseMinAge.String(), Seed: c.Seed, SimHTTP: c.SimHTTP, Faults: []string{}}
	if s.DB == "" {
		s.DB = "sqlite (work dir)"
	}
	if c.V3 {
		s.APIVersion, s.Verifier, s.V3Probes = "v3", c.Verifier, c.V3Probes
	}
	for _, f := range c.Faults {
		s.Faults = append(s.Faults, f.String())
	}
	return s
}

// OrderCounts are what the users did.
type OrderCounts struct {
	Users     int64 `json:"users"`     // started
	Created   int64 `json:"created"`   // got an order with pay parameters
	Paid      int64 `json:"paid"`      // saw it PAID
	Refunded  int64 `json:"refunded"`  // asked for a partial refund, accepted
	Closed    int64 `json:"closed"`    // closed it unpaid
	Abandoned int64 `json:"abandoned"` // left it unpaid
	Failed    int64 `json:"failed"`    // could not finish their flow
}

// CPUResult is the CPU time of the users' phase: the service instances'
// (all processes, killed ones included) and this process's (simulator
// and users), and what a paid order cost the service.
type CPUResult struct {
	ServiceSeconds   float64 `json:"service_seconds"`
	LoadSeconds      float64 `json:"load_process_seconds"`
	ServiceMSPerPaid float64 `json:"service_ms_per_paid_order"`
	// ServiceCores is the service's average use of the machine's cores.
	ServiceCores float64 `json:"service_cores"`
	LoadCores    float64 `json:"load_process_cores"`
	// MachineCores is how many of the machine's cores were busy on
	// average: the instances, this process, the database server — and
	// whatever else ran on the machine.
	MachineCores float64 `json:"machine_busy_cores"`
}

// Machine is the machine of the run: its CPUs and how busy it was (the
// load average includes other work on the machine, not only this run).
type Machine struct {
	CPUs         int    `json:"cpus"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	GoVersion    string `json:"go_version"`
}

// Latencies are the users' view, in milliseconds.
type Latencies struct {
	Login       Summary `json:"login"`
	CreateOrder Summary `json:"create_order"`
	Pay         Summary `json:"request_payment"`
	PayToPaid   Summary `json:"pay_to_paid"` // wx.requestPayment answered → the service says PAID
	EndToEnd    Summary `json:"end_to_end"`  // create-order request → seen PAID
	Refund      Summary `json:"refund"`
	Close       Summary `json:"close"`
}

// NotifyResult is the notify traffic of the users' phase, from the
// simulator's counters.
type NotifyResult struct {
	Acknowledged int64   `json:"acknowledged"`
	Tries        int64   `json:"tries"`
	PerSecond    float64 `json:"acknowledged_per_second"`
	PeakPerSec   int64   `json:"peak_per_second"`
	Extra        int64   `json:"extra_copies_sent"` // copies the harness sent (--dup-notifies beyond 1)
	Malformed    int64   `json:"malformed"`
	GaveUp       int64   `json:"gave_up"`
	Dropped      int64   `json:"dropped"`
	// ProbesSent counts the notifies signed with a bad or
	// WECHATPAY/SIGNTEST/ probe signature over the whole run, and
	// ProbesAccepted those the service acknowledged: it must refuse every
	// one (reliability.md N7), or the run fails.
	ProbesSent     int64 `json:"probes_sent"`
	ProbesAccepted int64 `json:"probes_accepted"`
}

// BurstResult is the notify burst after the users' phase: duplicate pay
// notifies of paid orders, sent as fast as the service answers them.
type BurstResult struct {
	Sent      int64   `json:"sent"`
	Acked     int64   `json:"acknowledged"`
	Failed    int64   `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	Latency   Summary `json:"latency"`
}

// InstanceResult is one service instance over the run.
type InstanceResult struct {
	Index   int     `json:"index"`
	Addr    string  `json:"addr"`
	Starts  int     `json:"starts"`
	Kills   int     `json:"kills"`
	Crashes int     `json:"crashes"`
	PeakMB  float64 `json:"peak_rss_mb"` // the largest VmHWM of its processes
}

// OK reports whether the run completed, paid something, every
// invariant holds and no probe notify was acknowledged.
func (r *Result) OK() bool {
	return r != nil && r.Completed && r.InvariantsOK && r.Orders.Paid > 0 && r.Notify.ProbesAccepted == 0
}

// Verdict is the run's outcome in one line.
func (r *Result) Verdict() string {
	switch {
	case r.OK():
		return "PASS: every invariant holds"
	case !r.Completed:
		return "FAIL: the run did not complete: " + r.Failure
	case r.Orders.Paid == 0:
		return "FAIL: no order was paid"
	case !r.InvariantsOK:
		return "FAIL: an invariant is broken"
	default:
		return fmt.Sprintf("FAIL: the service acknowledged %d notifies with a probe signature (reliability.md N7)", r.Notify.ProbesAccepted)
	}
}

// apiName is the run's WeChat Pay API for people: "APIv2", or "APIv3
// (verifier …)".
func (s Settings) apiName() string {
	if s.APIVersion != "v3" {
		return "APIv2"
	}
	return "APIv3 (verifier " + s.Verifier + ")"
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// fill takes the figures of the users' phase.
func (r *Result) fill(e *engine) {
	st := e.stats
	r.Orders = OrderCounts{Users: st.started.Load(), Created: st.created.Load(), Paid: st.paid.Load(), Refunded: st.refunded.Load(),
		Closed: st.closed.Load(), Abandoned: st.abandoned.Load(), Failed: st.failed.Load()}
	secs := max(e.driveEnd.Sub(e.driveStart).Seconds(), 0.001)
	r.DriveSeconds = round(secs, 3)
	r.PaidPerSecond = round(float64(r.Orders.Paid)/secs, 1)
	r.CreatedPerSecond = round(float64(r.Orders.Created)/secs, 1)
	svc, load := e.driveCPU[0].Seconds(), e.driveCPU[1].Seconds()
	r.CPU = CPUResult{ServiceSeconds: round(svc, 2), LoadSeconds: round(load, 2),
		ServiceCores: round(svc/secs, 2), LoadCores: round(load/secs, 2), MachineCores: round(e.driveCPU[2].Seconds()/secs, 2)}
	if r.Orders.Paid > 0 {
		r.CPU.ServiceMSPerPaid = round(svc*1000/float64(r.Orders.Paid), 3)
	}
	r.Latency = Latencies{Login: st.login.Summary(), CreateOrder: st.create.Summary(), Pay: st.pay.Summary(),
		PayToPaid: st.paidWait.Summary(), EndToEnd: st.e2e.Summary(), Refund: st.refund.Summary(), Close: st.closing.Summary()}
	r.WeChat = st.wechat.summaries()
	r.CreateBuckets = st.create.Buckets()
	ns := e.driveNotify
	st.mu.Lock()
	r.Timeline = append([]Tick(nil), st.timeline...)
	st.mu.Unlock()
	var peakNotify int64
	for _, t := range r.Timeline {
		if t.T > r.DriveSeconds {
			break // the notify burst
		}
		r.PeakPaidPerSecond = max(r.PeakPaidPerSecond, t.Paid)
		peakNotify = max(peakNotify, t.Notifies)
	}
	r.Notify = NotifyResult{Acknowledged: int64(ns.Acknowledged), Tries: int64(ns.Tries), PerSecond: round(float64(ns.Acknowledged)/secs, 1),
		PeakPerSec: peakNotify, Extra: st.extraNotifies.Load(), Malformed: int64(ns.Malformed), GaveUp: int64(ns.GaveUp), Dropped: int64(ns.Dropped)}
	r.ProbeAnswers = st.probeAnswers.Load()
	r.Errors = st.errorKinds()
	if e.chaos != nil {
		r.Kills = e.chaos.killEvents()
	}
	r.Instances = nil
	for _, in := range e.insts {
		in.mu.Lock()
		r.Instances = append(r.Instances, InstanceResult{Index: in.idx, Addr: in.addr, Starts: in.starts, Kills: in.kills,
			Crashes: in.crashes, PeakMB: round(float64(in.peakKB)/1024, 1)})
		in.mu.Unlock()
	}
	r.LoadPeakMB = round(float64(selfPeakKB())/1024, 1)
}

// Targets are the service issue's goals, for the report.
var Targets = struct {
	PaidPerSecondSQLite, PaidPerSecondPostgres, CreateP99MS, NotifiesPerSecond, RSSMB float64
}{2000, 1500, 20, 5000, 150}

// WriteText writes the report for people.
func (r *Result) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	s := r.Settings
	p("wxpay load: %s, %d orders, %d instance(s) on %s, concurrency %d, rate %s, seed %d", s.apiName(), s.Orders, s.Instances, s.DB,
		s.Concurrency, rateString(s.Rate), s.Seed)
	chaos := []string{}
	if s.DupNotifies > 0 {
		chaos = append(chaos, fmt.Sprintf("notifies ×%d extra", s.DupNotifies))
	}
	if s.Reorder {
		chaos = append(chaos, "reordered notifies")
	}
	if len(s.Faults) > 0 {
		chaos = append(chaos, "faults "+strings.Join(s.Faults, ","))
	}
	if s.V3Probes > 0 {
		chaos = append(chaos, fmt.Sprintf("v3 probe signatures %g", s.V3Probes))
	}
	if s.KillEvery != "0s" {
		chaos = append(chaos, "kill every "+s.KillEvery)
	}
	if len(chaos) == 0 {
		chaos = append(chaos, "none")
	}
	p("chaos: %s", strings.Join(chaos, "; "))
	o := r.Orders
	p("")
	p("users %d: created %d, paid %d (refunded %d), closed %d, abandoned %d, failed %d", o.Users, o.Created, o.Paid, o.Refunded,
		o.Closed, o.Abandoned, o.Failed)
	p("throughput: %.1f paid orders/s end to end (peak %d/s), %.1f created/s, over %.1f s", r.PaidPerSecond, r.PeakPaidPerSecond,
		r.CreatedPerSecond, r.DriveSeconds)
	p("cpu: service %.1f s (%.2f cores, %.2f ms per paid order), load process %.1f s (%.2f cores); machine: %d CPUs, %.2f busy, load average %s → %s",
		r.CPU.ServiceSeconds, r.CPU.ServiceCores, r.CPU.ServiceMSPerPaid, r.CPU.LoadSeconds, r.CPU.LoadCores, r.Machine.CPUs,
		r.CPU.MachineCores, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd)
	p("")
	p("latency (ms)        count      p50      p95      p99      max")
	row := func(name string, s Summary) {
		if s.Count > 0 {
			p("  %-16s %7d %8.2f %8.2f %8.2f %8.1f", name, s.Count, s.P50, s.P95, s.P99, s.Max)
		}
	}
	l := r.Latency
	row("login", l.Login)
	row("create order", l.CreateOrder)
	row("requestPayment", l.Pay)
	row("pay → PAID", l.PayToPaid)
	row("create → PAID", l.EndToEnd)
	row("refund", l.Refund)
	row("close", l.Close)
	if len(r.WeChat) > 0 {
		p("WeChat calls, simulator side (ms)")
		names := make([]string, 0, len(r.WeChat))
		for n := range r.WeChat {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			row(n, r.WeChat[n])
		}
	}
	p("")
	n := r.Notify
	p("notifies: %d acknowledged in %d tries, %.1f/s (peak %d/s); %d extra copies sent by the harness; %d malformed, %d dropped, %d gave up",
		n.Acknowledged, n.Tries, n.PerSecond, n.PeakPerSec, n.Extra, n.Malformed, n.Dropped, n.GaveUp)
	if n.ProbesSent > 0 || n.ProbesAccepted > 0 || r.ProbeAnswers > 0 {
		p("signature probes: %d notifies sent, %d acknowledged (must be 0); %d v3 answers probe-signed", n.ProbesSent, n.ProbesAccepted, r.ProbeAnswers)
	}
	if b := r.NotifyBurst; b != nil {
		p("notify burst: %d duplicate notifies, %d acknowledged in %.2f s: %.1f/s (p50 %.2f ms, p99 %.2f ms)", b.Sent, b.Acked,
			b.Seconds, b.PerSecond, b.Latency.P50, b.Latency.P99)
	}
	for _, in := range r.Instances {
		p("instance %d (%s): peak RSS %.1f MB, %d start(s), %d kill(s), %d crash(es)", in.Index, in.Addr, in.PeakMB, in.Starts, in.Kills, in.Crashes)
	}
	p("load process (simulator + users): peak RSS %.1f MB", r.LoadPeakMB)
	if len(r.Errors) > 0 {
		p("")
		p("errors by kind (retried; a user fails only when its retries run out):")
		for _, e := range r.Errors {
			p("  %6d  %s", e.Count, e.Kind)
		}
	}
	if q := r.Quiesce; q != nil {
		p("")
		p("quiesce: %.1f s; clock +%s; jobs %s", q.Seconds, q.ClockAdvance, jobsString(q.Jobs))
		for _, d := range q.Reconciled {
			if d.Error != "" {
				p("  reconciled %s: error: %s", d.Date, d.Error)
			} else {
				p("  reconciled %s: %d exception(s), %d healed", d.Date, d.Exceptions, d.Healed)
			}
		}
		for _, n := range q.Notes {
			p("  note: %s", n)
		}
	}
	for _, n := range r.Notes {
		p("note: %s", n)
	}
	if len(r.Invariants) > 0 {
		p("")
		p("invariants (secrets scanned in %s):", r.SecretScan)
		for _, v := range r.Invariants {
			mark := "ok  "
			if v.Violations > 0 {
				mark = "FAIL"
			}
			p("  %s %-3s %-40s checked %7d  violations %d", mark, v.ID, v.Name, v.Checked, v.Violations)
			for _, ex := range v.Examples {
				p("         e.g. %s", ex)
			}
		}
	}
	p("")
	p("%s", r.Verdict())
}

func jobsString(m map[string]int) string {
	if len(m) == 0 {
		return "nothing to do"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "wxpay_"), m[k]))
	}
	return strings.Join(parts, " ")
}
