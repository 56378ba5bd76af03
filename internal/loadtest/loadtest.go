// Package loadtest is the engine of `wxpay load`: a load and chaos run of
// the merchant service against the in-process WeChat Pay simulator, ended
// by the money invariants of reliability.md Part 0 (I1–I9).
//
// Run starts the simulator on a loopback listener, then K service
// instances as child processes (Config.Spawn: `wxpay serve` configured by
// a TOML file and WXPAY_… variables) sharing one database, each on a fixed
// loopback port so that a killed and restarted instance is found again.
// With K > 1 the instances share one public URL, a small balancer in this
// process that forwards WeChat's notifies to a live instance, as a
// production load balancer would. N virtual mini-program users walk the
// real flow over HTTP — wx.login, POST /api/v1/login, POST /api/v1/orders,
// wx.requestPayment (the simulator's), GET /api/v1/orders/{no} until
// PAID — and a share of them refund (admin API), close or abandon their
// order; each user has a loopback source address of its own (127.10.x.y),
// as the service limits logins and orders per client IP. Meanwhile the
// chaos runs: duplicated and reordered notifies, injected SYSTEMERRORs,
// lost answers and timeouts on the service's WeChat calls, an instance
// killed with SIGKILL every so often and restarted.
//
// Then it quiesces: chaos off, every instance up, the simulator's notify
// retries done (its time scale shrinks WeChat's 24 h schedule), the jobs
// (settle, refunds, outbox) run to the end in-process against the same
// database, the simulator's clock moved past the end of the day (plus
// WeChat's 10 h) so that the day's bill exists and is reconciled; and it
// checks I1–I9 (internal/invariant) against the simulator's ledger, with
// the instances' logs and the API's answers as the texts that must hold
// no secret.
//
// With Config.V3 the same run goes over WeChat Pay APIv3: the instances
// sign with the simulator merchant's API private key, verify with its
// platform certificates or WeChat Pay public key (Config.Verifier), and
// the chaos adds WeChat's WECHATPAY/SIGNTEST/ signature probes on answers
// and notifies (Config.V3Probes), which the service must refuse.
//
// Every loop is bounded in count and in time; the run only talks to
// loopback addresses and stops by itself.
package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/wxsim"
)

// Config is one run. Zero values take the documented defaults.
type Config struct {
	// Orders is how many virtual users run the flow, one order each;
	// default 1000.
	Orders int
	// Concurrency bounds the users in flight; default 64.
	Concurrency int
	// Rate paces order creation, orders per second; 0: as fast as the
	// users go.
	Rate float64
	// DB is the shared database: "sqlite:PATH" or a postgres:// URL.
	// Empty: a SQLite file in WorkDir.
	DB string
	// Instances is how many service instances run; default 1. More than
	// one needs PostgreSQL.
	Instances int

	// DupNotifies is how many extra copies of each pay notify the service
	// gets: the first is sent at the same time as the original (the
	// simulator's DUPLICATE), the others by the harness right after the
	// user saw the order paid.
	DupNotifies int
	// Reorder holds notifies back in small windows and sends each window
	// newest first (a refund notify may overtake its pay notify).
	Reorder bool
	// Faults are injected into the WeChat calls while the users run.
	// With V3 the faults of the v2 APIs the service would call hit their
	// APIv3 counterparts (unifiedorder → v3_prepay, orderquery →
	// v3_query, closeorder → v3_close, refund → v3_refund, refundquery →
	// v3_refundquery).
	Faults []FaultSpec
	// KillEvery kills a random instance with SIGKILL that often while the
	// users run, and restarts it after KillPause (default 500 ms); 0: no
	// kills.
	KillEvery time.Duration
	KillPause time.Duration
	// MaxKills bounds the kills of the run; 0: no bound.
	MaxKills int

	// RefundRatio is the share of paid orders partly refunded through the
	// admin API. CloseRatio and AbandonRatio are the shares of users who
	// close their unpaid order, or leave it (half of them after cancelling
	// the payment sheet); defaults 0.02 each; negative: none.
	RefundRatio  float64
	CloseRatio   float64
	AbandonRatio float64

	// V3 runs the service on WeChat Pay APIv3: the simulator's merchant
	// gets its APIv3 credentials, the merchant private key and the APIv3
	// key are written to WorkDir as 0600 files, and the instances take
	// wechat.api_version = "v3" with them (WXPAY_WECHAT_… variables).
	V3 bool
	// Verifier is the instances' wechat.verifier with V3: "certificates"
	// (the default: platform certificates downloaded from the simulator),
	// "public_key" (the simulator's merchant is switched to the WeChat Pay
	// public key first) or "both" (the switch-over half done: either key
	// signs).
	Verifier string
	// V3Probes is, with V3, the share of the service's v3 answers and of
	// the v3 notifies WeChat signs with a WECHATPAY/SIGNTEST/ probe
	// signature while the users run (signature probe traffic, which the
	// service must refuse); 0: none.
	V3Probes float64

	// SimHTTP makes the users' WeChat-side actions (creating the WeChat
	// user, wx.login's code, wx.requestPayment) calls of the simulator's
	// control API over HTTP. By default they are direct calls of the
	// in-process simulator: the same code, without the HTTP cost on a
	// machine the service shares with the load. The service's own calls
	// (the mini-program API, WeChat's APIs, notifies) are always HTTP.
	SimHTTP bool

	// Duration caps the users' phase: when it is over no new user starts
	// and those in flight get 30 s to finish; default 10 minutes.
	Duration time.Duration
	// NotifyBurst is how many duplicate pay notifies of paid orders are
	// sent after the users' phase, Concurrency at a time, to measure how
	// many notifies per second the service handles; default
	// min(2×Orders, 20000); negative: none.
	NotifyBurst int

	// TimeScale divides the simulator's delays (notify retries, refund
	// completion); default 3600: WeChat's 24 h retry schedule takes 24 s.
	TimeScale float64
	// CloseMinAge is the simulator's minimum order age for closeorder
	// (WeChat: 5 minutes); default 1 s so that closing users need not wait.
	CloseMinAge time.Duration
	// Seed seeds the users' choices and the faults; 0: random.
	Seed uint64

	// WorkDir holds the config file, the SQLite database and the
	// instances' logs. Empty: a temporary directory, removed at the end
	// unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// LogLevel is the instances' log_level; default "info".
	LogLevel string

	// Spawn returns the command that runs one service instance (not
	// started): `wxpay serve --config F`. Run sets its environment, its
	// output and its parent-death signal. Required.
	Spawn func(Instance) *exec.Cmd
	// OpenMerchant assembles the service in this process, on the same
	// database and configuration as the instances, with the clock now and
	// without jobs: the harness runs the jobs' work through it to quiesce,
	// and checks its store. Required.
	OpenMerchant func(ctx context.Context, env MerchantEnv) (*Merchant, error)

	// ProfileDir, when set, receives CPU profiles of the first
	// ProfileSeconds (default 15) of the users' phase: load.cpu.pprof of
	// this process (simulator and users) and instance-N.cpu.pprof of each
	// instance, and their heap profiles at the end of the phase. The
	// instances serve net/http/pprof on a loopback port of their own
	// (WXPAY_LOAD_PPROF, which Spawn's command must honour).
	ProfileDir     string
	ProfileSeconds int

	// Check checks the invariants; nil: invariant.Check.
	Check func(context.Context, invariant.Input) (*invariant.Report, error)

	// Progress receives a progress bar (carriage returns); nil: none.
	Progress io.Writer
	// Log receives one line per phase; nil: none.
	Log io.Writer
}

// Instance is what Spawn needs to start one service instance.
type Instance struct {
	Index      int
	Addr       string   // 127.0.0.1:PORT, fixed across restarts
	ConfigFile string   // the TOML file (catalog, shop)
	Env        []string // WXPAY_… settings: DB, WeChat base URLs and merchant, public URL, admin token, addr
}

// MerchantEnv is what OpenMerchant needs: the instances' configuration,
// a clock and a log.
type MerchantEnv struct {
	ConfigFile string
	Env        []string // as Instance.Env, with the public URL of instance 0
	Now        func() time.Time
	Log        io.Writer
}

// Merchant is the service assembled in the harness's process.
type Merchant struct {
	Service    *payments.Service
	Reconciler *recon.Reconciler
	Close      func()
}

func (c Config) withDefaults() (Config, error) {
	if c.Orders == 0 {
		c.Orders = 1000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Instances == 0 {
		c.Instances = 1
	}
	if c.KillPause == 0 {
		c.KillPause = 500 * time.Millisecond
	}
	if c.CloseRatio == 0 {
		c.CloseRatio = 0.02
	}
	if c.AbandonRatio == 0 {
		c.AbandonRatio = 0.02
	}
	c.CloseRatio, c.AbandonRatio = max(c.CloseRatio, 0), max(c.AbandonRatio, 0)
	if c.Duration == 0 {
		c.Duration = 10 * time.Minute
	}
	if c.NotifyBurst == 0 {
		c.NotifyBurst = min(2*c.Orders, 20000)
	}
	c.NotifyBurst = max(c.NotifyBurst, 0)
	if c.TimeScale == 0 {
		c.TimeScale = 3600
	}
	if c.CloseMinAge == 0 {
		c.CloseMinAge = time.Second
	}
	if c.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			c.Seed = c.Seed<<8 | uint64(x)
		}
		c.Seed |= 1
	}
	if c.Check == nil {
		c.Check = invariant.Check
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	var p []string
	switch {
	case c.Orders < 1 || c.Orders > 1_000_000:
		p = append(p, "orders must be 1 to 1,000,000")
	case c.Concurrency < 1 || c.Concurrency > 10_000:
		p = append(p, "concurrency must be 1 to 10,000")
	case c.Rate < 0:
		p = append(p, "rate must be ≥ 0")
	case c.Instances < 1 || c.Instances > 16:
		p = append(p, "instances must be 1 to 16")
	case c.DupNotifies < 0 || c.DupNotifies > 10:
		p = append(p, "dup-notifies must be 0 to 10")
	case c.KillEvery < 0 || c.KillEvery > 0 && c.KillEvery < 200*time.Millisecond:
		p = append(p, "kill-every must be 0 or at least 200ms")
	case c.RefundRatio < 0 || c.RefundRatio > 1:
		p = append(p, "refund-ratio must be in [0, 1]")
	case c.RefundRatio+c.CloseRatio+c.AbandonRatio > 1:
		p = append(p, "refund, close and abandon ratios add up to more than 1")
	case c.Duration < 0 || c.Duration > 24*time.Hour:
		p = append(p, "duration must be up to 24h")
	case c.TimeScale < 1:
		p = append(p, "time scale must be ≥ 1")
	}
	isPG := strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
	if c.DB != "" && !isPG && !strings.HasPrefix(c.DB, "sqlite:") {
		p = append(p, "db must be sqlite:PATH or postgres://…")
	}
	if c.Instances > 1 && !isPG {
		p = append(p, "more than one instance needs PostgreSQL (--db postgres://…): SQLite is one process's database")
	}
	p = append(p, c.checkV3()...)
	if c.Spawn == nil || c.OpenMerchant == nil {
		p = append(p, "Spawn and OpenMerchant are required")
	}
	if len(p) > 0 {
		return c, &ConfigError{Problems: p}
	}
	return c, nil
}

// ConfigError is a Config that cannot run.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return "loadtest: " + strings.Join(e.Problems, "; ") }

// Run runs the load, the chaos, the quiescence and the check. It returns
// the result whenever the run got as far as starting; the error says why
// it did not complete (then Result.Completed is false). ctx cancels the
// run (the instances are stopped all the same).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, res: &Result{Settings: settingsOf(cfg), Started: time.Now(),
		Machine: Machine{CPUs: runtime.NumCPU(), LoadAvgStart: loadAvg(), GoVersion: runtime.Version()}}}
	defer e.cleanup()
	err = e.run(ctx)
	e.res.Ended = time.Now()
	e.res.Machine.LoadAvgEnd = loadAvg()
	if err != nil {
		e.res.Failure = err.Error()
		e.logf("run failed: %v", err)
	} else {
		e.res.Completed = true
	}
	if !e.res.OK() && e.rmWorkDir {
		// Keep the logs of a failed run.
		e.rmWorkDir = false
		e.note("the work directory is kept: " + e.workDir)
	}
	return e.res, err
}

// engine is one run's state.
type engine struct {
	cfg   Config
	res   *Result
	runID string

	adminToken string
	workDir    string
	rmWorkDir  bool
	db         string
	configFile string
	v3Env      []string // the WXPAY_WECHAT_… settings of an APIv3 run

	sim     *simServer
	lb      *balancer // the public address of more than one instance
	insts   []*instance
	stats   *stats
	texts   *textLog
	chaos   *chaos
	closers []func()

	pacer                *pacer
	driveStart, driveEnd time.Time
	extraWG              sync.WaitGroup
	driveNotify          wxsim.NotifyStats // at the end of the users' phase
	driveCPU             [3]time.Duration  // CPU time of the instances, of this process and of the machine in the users' phase
	notesMu              sync.Mutex
}

// note adds a line to the result's notes.
func (e *engine) note(msg string) {
	e.notesMu.Lock()
	e.res.Notes = append(e.res.Notes, msg)
	e.notesMu.Unlock()
}

func (e *engine) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		clear := ""
		if e.cfg.Progress != nil {
			clear = "\r\x1b[K" // over the progress bar, which is drawn again
		}
		fmt.Fprintf(e.cfg.Log, clear+"load: "+format+"\n", args...)
	}
}

func (e *engine) cleanup() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	if e.rmWorkDir {
		_ = os.RemoveAll(e.workDir)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *engine) run(ctx context.Context) error {
	cfg := e.cfg
	e.runID = randomHex(4)
	e.adminToken = "load-admin-" + randomHex(16)
	e.stats = newStats()
	canaries := []string{e.adminToken, wxsim.DefaultAPIKey, wxsim.DefaultAppSecret}
	e.texts = newTextLog(canaries)
	if err := e.prepareDir(); err != nil {
		return err
	}
	e.res.WorkDir = e.workDir

	e.logf("starting the simulator (time scale %g, close-min-age %s)", cfg.TimeScale, cfg.CloseMinAge)
	sim, err := startSim(cfg, e.stats)
	if err != nil {
		return err
	}
	e.sim = sim
	e.closers = append(e.closers, sim.close)
	if cfg.V3 {
		secrets, err := e.setupV3()
		if err != nil {
			return fmt.Errorf("APIv3 credentials: %w", err)
		}
		e.texts = newTextLog(append(canaries, secrets...))
	}

	if err := e.startInstances(ctx); err != nil {
		return err
	}
	e.driveStart = time.Now()
	samplerCtx, stopSamplers := context.WithCancel(context.Background())
	samplersDone := e.startSamplers(samplerCtx)
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			stopSamplers()
			<-samplersDone
		}
	}
	defer stopAll()

	e.chaos = newChaos(e)
	if err := e.chaos.start(ctx); err != nil {
		return err
	}
	e.logf("driving %d users (concurrency %d, rate %s) against %d instance(s) on %s", cfg.Orders, cfg.Concurrency,
		rateString(cfg.Rate), cfg.Instances, redactDSN(e.db))
	e.drive(ctx)
	e.chaos.stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.ensureUp(ctx); err != nil {
		return err
	}
	if cfg.NotifyBurst > 0 {
		e.notifyBurst(ctx)
	}
	stopAll()
	e.res.fill(e)
	if err := e.quiesceAndCheck(ctx); err != nil {
		return err
	}
	return nil
}

func rateString(r float64) string {
	if r <= 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%g/s", r)
}

// ensureUp restarts every instance that is down and waits until all are
// ready.
func (e *engine) ensureUp(ctx context.Context) error {
	for _, in := range e.insts {
		if !in.running() {
			if err := in.start(ctx); err != nil {
				return err
			}
		}
	}
	for _, in := range e.insts {
		if err := in.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// errNoPaid fails a run in which nothing was paid: invariants that hold
// over nothing prove nothing.
var errNoPaid = errors.New("no order was paid")

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
