package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/internal/loadtest"
)

func init() {
	extraCommands = append(extraCommands, newLoadCmd)
	serveLoadPprof()
}

// serveLoadPprof serves net/http/pprof on the loopback address of
// WXPAY_LOAD_PPROF: `wxpay load --profile DIR` sets it in the instances it
// starts, to take their CPU and heap profiles while the load runs. Nothing
// else sets it, and only a 127.0.0.1 address is taken.
func serveLoadPprof() {
	addr := os.Getenv("WXPAY_LOAD_PPROF")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return
	}
	// runtime/pprof, not net/http/pprof: that one registers itself on
	// http.DefaultServeMux in every process of this binary.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs < 1 || secs > 300 {
			secs = 15
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	mux.HandleFunc("GET /debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_ = pprof.Lookup("heap").WriteTo(w, 0)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
}

// loadChild says how `wxpay load` starts a service instance: this binary
// with `serve`. Tests replace it (a test binary is not wxpay: it re-runs
// itself with WXPAY_LOAD_CHILD=1, see load_test.go).
var loadChild = func(inst loadtest.Instance) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "serve", "--config", inst.ConfigFile)
}

// loadCheck checks the invariants at the end of `wxpay load`; tests
// replace it to see a failing run fail.
var loadCheck = invariant.Check

func newLoadCmd(s streams) *cobra.Command {
	var (
		cfg                 loadtest.Config
		faults              string
		chaos, asJSON, keep bool
		report              string
		progress            string
		fromJSON            string
	)
	cmd := &cobra.Command{
		Use: "load [--orders N] [--concurrency C] [--rate R] [--db sqlite:…|postgres://…] [--instances K] [--v3 [--verifier V] [--v3-probes P]] " +
			"[--dup-notifies D] [--reorder] [--faults SPEC] [--kill-every DURATION] [--refund-ratio X] [--duration T] [--chaos] [--json] [--report F.html]",
		Short: "Load and chaos run of the service against the simulator, ending with the money invariants I1–I9",
		Long: `load starts the WeChat Pay simulator in this process and K service instances
(` + "`wxpay serve`" + ` child processes of this binary, all on loopback, sharing one
database; K > 1 needs PostgreSQL), and drives N mini-program users through the
real flow over HTTP: wx.login → POST /api/v1/login → POST /api/v1/orders →
wx.requestPayment (the simulator's) → GET /api/v1/orders/{no} until PAID. A
share of them refund (admin API), close or abandon their order.

--v3 runs the service on WeChat Pay APIv3: the simulator's merchant gets its
APIv3 credentials, the merchant private key and the APIv3 key are written to
the work directory as 0600 files, and the instances are configured with
WXPAY_WECHAT_API_VERSION=v3 and the files (WXPAY_WECHAT_KEY_FILE,
WXPAY_WECHAT_APIV3_KEY_FILE, WXPAY_WECHAT_CERT_SERIAL, WXPAY_WECHAT_VERIFIER).
--verifier picks how they verify WeChat: platform certificates (the default),
the WeChat Pay public key (public_key: the simulator switches to it first), or
both (the switch-over half done: either key signs). --v3-probes P signs a
share P of the service's v3 answers and notifies with WeChat's
WECHATPAY/SIGNTEST/ probe signature, which the service must refuse.

Chaos while it runs: every notify duplicated (--dup-notifies) and reordered
(--reorder), SYSTEMERROR, lost answers and timeouts injected into the
service's WeChat calls (--faults), an instance killed with SIGKILL every
--kill-every and restarted on the same port. --chaos turns all of it on.

At the end it quiesces — chaos off, every instance up, the simulator's notify
retries done (--time-scale shrinks WeChat's 24 h schedule), settle, refund and
outbox work run to the end, the simulator's clock moved past the end of the
day so that the day's bill exists and is reconciled — and checks the
invariants I1–I9 against the simulator's ledger. The exit status is 0 only if
the run completed and every invariant holds.

--faults SPEC is comma-separated API:KIND:HOW[:ARG]: HOW a probability
("0.02") or a count ("x5"); ARG the delay of DELAY ("300ms"; "7s" is past
the service's 6 s timeout) or the err_code of ERR_CODE. APIs: unifiedorder,
orderquery, closeorder, refund, refundquery, jscode2session … and notify
(DROP, DUPLICATE, NOTIFY_DELAY, BAD_SIGNATURE: HOW is then the share of
payments whose notify is hit); with --v3, v3_prepay, v3_query, v3_close,
v3_refund, v3_refundquery (the v2 names are taken as these) and the kind
V3_PROBE. --chaos uses:
  ` + loadtest.ChaosFaults + `
and with --v3, plus --v3-probes ` + fmt.Sprint(loadtest.ChaosV3Probes) + `:
  ` + loadtest.ChaosFaultsV3 + `
A service that acknowledges a probe notify fails the run.

The simulator's close-order minimum age is 1 s here (WeChat's is 5 minutes)
so that closing users need not wait.`,
		Example: `  wxpay load --orders 500
  wxpay load --orders 10000 --concurrency 128 --report load.html
  wxpay load --orders 10000 --rate 500 --json
  wxpay load --v3 --orders 2000 --chaos
  wxpay load --v3 --verifier both --orders 500 --v3-probes 0.02
  wxpay load --db postgres://wxpay@localhost/wxpay --instances 2 --chaos --kill-every 3s
  wxpay load --faults unifiedorder:SYSTEMERROR:0.02,orderquery:DROP_AFTER_COMMIT:0.01 --dup-notifies 2 --reorder`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if chaos {
				if !f.Changed("dup-notifies") {
					cfg.DupNotifies = 1
				}
				if !f.Changed("reorder") {
					cfg.Reorder = true
				}
				if !f.Changed("faults") {
					faults = loadtest.ChaosFaults
					if cfg.V3 {
						faults = loadtest.ChaosFaultsV3
					}
				}
				if cfg.V3 && !f.Changed("v3-probes") {
					cfg.V3Probes = loadtest.ChaosV3Probes
				}
				if !f.Changed("kill-every") {
					cfg.KillEvery = 5 * time.Second
				}
			}
			if fromJSON != "" {
				return renderLoadResult(s, fromJSON, report, asJSON)
			}
			var err error
			if cfg.Faults, err = loadtest.ParseFaults(faults); err != nil {
				return usageError{fmt.Errorf("--faults: %w", err)}
			}
			cfg.KeepWorkDir = keep
			cfg.Spawn = loadChild
			cfg.OpenMerchant = openLoadMerchant
			cfg.Check = loadCheck
			cfg.Log = s.err
			switch progress {
			case "auto":
				if !asJSON && isTerminal(s.err) {
					cfg.Progress = s.err
				}
			case "on":
				cfg.Progress = s.err
			case "off":
			default:
				return usageError{fmt.Errorf("--progress %q: use auto, on or off", progress)}
			}
			res, err := loadtest.Run(cmd.Context(), cfg)
			var ce *loadtest.ConfigError
			if errors.As(err, &ce) {
				return usageError{err}
			}
			if res == nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				if e := enc.Encode(res); e != nil {
					return e
				}
			} else {
				res.WriteText(s.out)
			}
			if report != "" {
				if e := writeLoadReport(report, res); e != nil {
					return e
				}
				fmt.Fprintf(s.err, "load: HTML report in %s\n", report)
			}
			if err != nil {
				return &exitError{code: 1, msg: "wxpay load: " + err.Error()}
			}
			if !res.OK() {
				return &exitError{code: 1, msg: "wxpay load: FAIL (see the report above)"}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Orders, "orders", 1000, "virtual users, one order each")
	fl.IntVar(&cfg.Concurrency, "concurrency", 64, "users in flight at most")
	fl.Float64Var(&cfg.Rate, "rate", 0, "orders created per second (0: as fast as the users go)")
	fl.StringVar(&cfg.DB, "db", "", "sqlite:PATH or postgres://… (default: a SQLite file in the work directory)")
	fl.IntVar(&cfg.Instances, "instances", 1, "service instances (more than 1 needs PostgreSQL)")
	fl.BoolVar(&cfg.V3, "v3", false, "run the service on WeChat Pay APIv3 (default: v2)")
	fl.StringVar(&cfg.Verifier, "verifier", "", "with --v3: certificates (default), public_key or both")
	fl.Float64Var(&cfg.V3Probes, "v3-probes", 0, "with --v3: share of v3 answers and notifies signed with a WECHATPAY/SIGNTEST/ probe (--chaos: "+fmt.Sprint(loadtest.ChaosV3Probes)+")")
	fl.IntVar(&cfg.DupNotifies, "dup-notifies", 0, "extra copies of every pay notify (the first sent at the same time)")
	fl.BoolVar(&cfg.Reorder, "reorder", false, "hold notifies in small windows and send each newest first")
	fl.StringVar(&faults, "faults", "", "faults injected into WeChat calls: API:KIND:RATE[:ARG],… (see above)")
	fl.BoolVar(&chaos, "chaos", false, "all the chaos: --dup-notifies 1 --reorder --faults <the set above> --kill-every 5s, with --v3 also --v3-probes (each unless given)")
	fl.DurationVar(&cfg.KillEvery, "kill-every", 0, "SIGKILL a random instance this often, and restart it (0: never)")
	fl.IntVar(&cfg.MaxKills, "max-kills", 0, "kill at most this many times (0: no bound)")
	fl.DurationVar(&cfg.KillPause, "kill-pause", 500*time.Millisecond, "how long a killed instance stays down")
	fl.Float64Var(&cfg.RefundRatio, "refund-ratio", 0.1, "share of paid orders partly refunded through the admin API")
	fl.Float64Var(&cfg.CloseRatio, "close-ratio", 0.02, "share of users who close their unpaid order")
	fl.Float64Var(&cfg.AbandonRatio, "abandon-ratio", 0.02, "share of users who leave their order unpaid")
	fl.BoolVar(&cfg.SimHTTP, "sim-http", false, "the users' WeChat-side actions (user, wx.login, wx.requestPayment) over the simulator's HTTP control API, not direct calls")
	fl.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "no new user starts after this long")
	fl.IntVar(&cfg.NotifyBurst, "notify-burst", 0, "duplicate notifies sent after the users to measure notifies/s (default min(2×orders, 20000); -1: none)")
	fl.Float64Var(&cfg.TimeScale, "time-scale", 3600, "the simulator's time scale (notify retries, refund completion)")
	fl.Uint64Var(&cfg.Seed, "seed", 0, "seed of the users' choices and the faults (0: random; printed)")
	fl.StringVar(&cfg.WorkDir, "work-dir", "", "where the config, SQLite database and instance logs go (default: a temporary directory)")
	fl.BoolVar(&keep, "keep", false, "keep the temporary work directory")
	fl.StringVar(&cfg.LogLevel, "log-level", "info", "the instances' log level")
	fl.StringVar(&cfg.ProfileDir, "profile", "", "write CPU and heap profiles of the load process and of every instance to this directory")
	fl.IntVar(&cfg.ProfileSeconds, "profile-seconds", 15, "how many seconds of the users' phase the CPU profiles cover")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.StringVar(&report, "report", "", "write an HTML report with latency charts to this file")
	fl.StringVar(&fromJSON, "from-json", "", "run nothing: print a result saved with --json again (and --report it as HTML)")
	fl.StringVar(&progress, "progress", "auto", "progress bar on stderr: auto (a terminal, not --json), on, off")
	return cmd
}

// openLoadMerchant assembles the service in the load process, on the
// instances' configuration and database, on the given clock, without
// jobs.
func openLoadMerchant(ctx context.Context, env loadtest.MerchantEnv) (*loadtest.Merchant, error) {
	vars := map[string]string{}
	for _, kv := range env.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	c, err := config.Load(env.ConfigFile, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	// newApp takes the listener its base URL comes from; nothing is
	// served on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a, err := newApp(ctx, appOptions{cfg: c, listener: ln, log: slog.New(slog.NewTextHandler(env.Log, nil)), now: env.Now, noJobs: true})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &loadtest.Merchant{Service: a.svc, Reconciler: a.recon, Close: func() { a.Close(); ln.Close() }}, nil
}

// renderLoadResult prints a result saved with --json, as text (or JSON),
// writes its HTML report when asked, and exits as the run did.
func renderLoadResult(s streams, path, report string, asJSON bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res loadtest.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s is not a wxpay load --json result: %w", path, err)
	}
	if asJSON {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&res); err != nil {
			return err
		}
	} else {
		res.WriteText(s.out)
	}
	if report != "" {
		if err := writeLoadReport(report, &res); err != nil {
			return err
		}
	}
	if !res.OK() {
		return &exitError{code: 1, msg: "wxpay load: the saved run failed"}
	}
	return nil
}

func writeLoadReport(path string, res *loadtest.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
