package river

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
)

// Job kinds: the names RunOnce and Enqueue take, the River job kinds, and
// the kind Config.Observe is told.
const (
	KindSettle    = "wxpay_settle"    // query stale unpaid orders; close expired ones
	KindRefunds   = "wxpay_refunds"   // resubmit or query open refunds
	KindOutbox    = "wxpay_outbox"    // deliver business events to the webhook
	KindReconcile = "wxpay_reconcile" // reconcile yesterday's bill (China time)
)

// Outcomes Config.Observe is told, besides the per-item ones (for settle
// the order's status after the run — "paid", "closed", "payerror",
// "pending" — for refunds the refund's — "processing", "success",
// "reserved" … — for outbox "delivered", "failed" or "no_webhook", for
// reconcile "exception" and "healed").
const (
	OutcomeError     = "error"     // one item (or the whole run) failed; it is retried next run
	OutcomeRun       = "run"       // a run finished (whatever its items did)
	OutcomeNotReady  = "not_ready" // reconcile: the bill is not ready; the job is snoozed
	OutcomeScheduled = "scheduled" // the leader inserted the periodic job (only the leader does)
)

// Config configures the background jobs. Zero durations and counts take
// the documented defaults.
type Config struct {
	// Payments is the service the jobs work through; required.
	Payments *payments.Service
	// Reconciler runs the daily reconciliation; nil leaves it out.
	Reconciler *recon.Reconciler
	// Driver is the database River keeps its queue in: SQLite or
	// Postgres; required by Start, unused by NewRunner.
	Driver Driver

	// Webhook is where outbox events go. With no URL, events are marked
	// delivered with the note "no webhook configured" (nothing else would
	// ever deliver them, and a queue that only grows helps nobody).
	Webhook Webhook

	// SettleEvery is how often unpaid orders are settled; default 30 s.
	SettleEvery time.Duration
	// SettleAfter is how old an unpaid order must be before it is queried
	// (its notify had that long to arrive); default 60 s.
	SettleAfter time.Duration
	// CloseGrace is how long after its time_expire an unpaid order is
	// closed (after a query; CLOSED only once WeChat confirms); default 60 s.
	CloseGrace time.Duration
	// RefundsEvery is how often open refunds are settled; default 30 s.
	RefundsEvery time.Duration
	// RefundsAfter is how long a refund must have been RESERVED or
	// PROCESSING, unchanged, before it is resubmitted or queried; default
	// 30 s.
	RefundsAfter time.Duration
	// OutboxEvery is how often the outbox is delivered; default 5 s.
	OutboxEvery time.Duration
	// ReconcileAt is when, into the China day, yesterday's bill is
	// reconciled; default 10 h (10:00, when WeChat promises the bill).
	ReconcileAt time.Duration
	// Limit caps the items one run handles; default 100.
	Limit int

	// PollInterval is how often an idle River client looks for jobs;
	// default 1 s, at least 100 ms (River's SQLite driver needs that much).
	PollInterval time.Duration
	// MaxWorkers is how many jobs one instance runs at once; default 4.
	MaxWorkers int
	// ID names this instance in River (for its leader election and
	// logs); default River's own (host name and time).
	ID string

	// NoStagger starts River's maintenance services — the periodic job
	// scheduler among them — at once when this instance becomes leader,
	// instead of after River's random sleep of up to a second each (a few
	// seconds in all). For tests; production keeps the stagger.
	NoStagger bool

	// Logger receives the jobs' logs and River's; nil discards.
	Logger *slog.Logger
	// Observe, when set, is told every outcome: the kind (KindSettle …)
	// and an outcome (OutcomeRun, OutcomeError, or a per-item one). It
	// must be fast and safe for concurrent use (a Prometheus counter).
	Observe func(kind, outcome string)
}

// Webhook is the merchant's own endpoint for business events.
type Webhook struct {
	// URL receives a POST of each event as JSON; empty: none (see
	// Config.Webhook).
	URL string
	// Secret signs every delivery (HMAC-SHA256, see Sign); required with
	// a URL. It prints as REDACTED.
	Secret wxpay.Secret
	// Client sends the deliveries; default a client with Timeout.
	Client *http.Client
	// Timeout bounds one delivery; default 10 s.
	Timeout time.Duration
	// Backoff is the wait after the first failed delivery, doubled after
	// each further one up to MaxBackoff; default 10 s.
	Backoff time.Duration
	// MaxBackoff caps the wait between deliveries; default 1 h. Events
	// are retried until delivered.
	MaxBackoff time.Duration
}

// withDefaults checks cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Payments == nil {
		return cfg, errors.New("river: Config.Payments is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.SettleEvery, 30*time.Second)
	def(&cfg.SettleAfter, 60*time.Second)
	def(&cfg.CloseGrace, 60*time.Second)
	def(&cfg.RefundsEvery, 30*time.Second)
	def(&cfg.RefundsAfter, 30*time.Second)
	def(&cfg.OutboxEvery, 5*time.Second)
	def(&cfg.ReconcileAt, recon.BillReadyAfter)
	def(&cfg.PollInterval, time.Second)
	def(&cfg.Webhook.Timeout, 10*time.Second)
	def(&cfg.Webhook.Backoff, 10*time.Second)
	def(&cfg.Webhook.MaxBackoff, time.Hour)
	if cfg.Limit <= 0 {
		cfg.Limit = 100
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 4
	}
	for name, d := range map[string]time.Duration{"SettleEvery": cfg.SettleEvery, "RefundsEvery": cfg.RefundsEvery, "OutboxEvery": cfg.OutboxEvery} {
		if d < time.Second {
			return cfg, fmt.Errorf("river: Config.%s must be at least 1 s (River's periodic jobs), is %s", name, d)
		}
	}
	if cfg.SettleAfter < 0 || cfg.CloseGrace < 0 || cfg.RefundsAfter < 0 {
		return cfg, errors.New("river: SettleAfter, CloseGrace and RefundsAfter must not be negative")
	}
	if cfg.ReconcileAt < 0 || cfg.ReconcileAt >= 24*time.Hour {
		return cfg, fmt.Errorf("river: Config.ReconcileAt must be within a day, is %s", cfg.ReconcileAt)
	}
	if cfg.PollInterval < 100*time.Millisecond {
		return cfg, fmt.Errorf("river: Config.PollInterval must be at least 100 ms, is %s", cfg.PollInterval)
	}
	if cfg.Webhook.URL != "" && len(cfg.Webhook.Secret) == 0 {
		return cfg, errors.New("river: a webhook URL needs a secret to sign with")
	}
	if cfg.Webhook.Client == nil {
		cfg.Webhook.Client = &http.Client{Timeout: cfg.Webhook.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string) {}
	}
	return cfg, nil
}

// Result is what one run of a job did: how many items ended in each
// outcome (see the Outcome constants and Config.Observe).
type Result struct {
	Kind   string
	Counts map[string]int
}

// Errors returns how many items failed.
func (r *Result) Errors() int { return r.Counts[OutcomeError] }

func (r *Result) String() string {
	parts := make([]string, 0, len(r.Counts))
	for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Counts[k]))
	}
	return r.Kind + ": " + strings.Join(parts, " ")
}

// Runner does the work of each job once, directly: River's workers call
// it, and so can tests, the load harness and the wxpay commands (without
// River, and then without River's guarantee that one run of a kind goes at
// a time — do not run the same kind concurrently with itself).
type Runner struct {
	cfg   Config
	svc   *payments.Service
	store merchant.Store
	log   *slog.Logger
}

// NewRunner returns a Runner for cfg (its Driver is not used).
func NewRunner(cfg Config) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, svc: cfg.Payments, store: cfg.Payments.Store(), log: cfg.Logger}, nil
}

// RunOnce runs one job of the kind now and returns what it did. The
// reconcile kind reconciles yesterday (China time, by the service's clock).
func (r *Runner) RunOnce(ctx context.Context, kind string) (*Result, error) {
	switch kind {
	case KindSettle:
		return r.Settle(ctx)
	case KindRefunds:
		return r.Refunds(ctx)
	case KindOutbox:
		return r.Outbox(ctx)
	case KindReconcile:
		return r.Reconcile(ctx, recon.Yesterday(r.svc.Now()))
	}
	return nil, fmt.Errorf("river: no job kind %q (want one of %s)", kind, strings.Join([]string{KindSettle, KindRefunds, KindOutbox, KindReconcile}, ", "))
}

// result starts a Result and returns a function that counts an outcome.
func (r *Runner) result(kind string) (*Result, func(string)) {
	res := &Result{Kind: kind, Counts: map[string]int{}}
	return res, func(outcome string) {
		res.Counts[outcome]++
		r.cfg.Observe(kind, outcome)
	}
}

// done finishes a run: it counts the run, or the run's failure, and logs.
func (r *Runner) done(ctx context.Context, res *Result, err error) (*Result, error) {
	if err != nil {
		r.cfg.Observe(res.Kind, OutcomeError)
		r.log.ErrorContext(ctx, "job failed", slog.String("kind", res.Kind), slog.String("error", err.Error()))
		return res, err
	}
	r.cfg.Observe(res.Kind, OutcomeRun)
	level := slog.LevelDebug
	if len(res.Counts) > 0 {
		level = slog.LevelInfo
	}
	r.log.Log(ctx, level, "job done", slog.String("kind", res.Kind), slog.String("result", res.String()))
	return res, nil
}

// Settle queries the unpaid orders older than SettleAfter (the least
// recently queried first, none queried within SettleAfter) and applies
// what WeChat says — a payment whose notify was lost is marked paid
// (reliability.md C1) — and closes those past their time_expire plus
// CloseGrace through Service.Close: query first, then closeorder, CLOSED
// only when WeChat confirmed (C2). A failure leaves the order as it was
// for the next run (C3).
//
// A run takes batches of Limit orders until none is left to settle, a
// batch settles nothing (WeChat is failing), or one interval has passed:
// after a lost batch of notifies, a fixed batch per interval would take
// hours to catch up.
func (r *Runner) Settle(ctx context.Context) (*Result, error) {
	res, count := r.result(KindSettle)
	deadline := time.Now().Add(r.cfg.SettleEvery)
	seen := map[string]bool{}
	for {
		n, settled, err := r.settleBatch(ctx, seen, count)
		if err != nil {
			return r.done(ctx, res, err)
		}
		if n < r.cfg.Limit || settled == 0 || time.Now().After(deadline) {
			return r.done(ctx, res, nil)
		}
	}
}

// settleBatch settles one batch of unpaid orders, skipping those this run
// has already tried. It returns how many orders the store listed and how
// many were settled without error.
func (r *Runner) settleBatch(ctx context.Context, seen map[string]bool, count func(string)) (int, int, error) {
	now := r.svc.Now()
	orders, err := r.store.PendingOrders(ctx, now.Add(-r.cfg.SettleAfter), r.cfg.Limit)
	if err != nil {
		return 0, 0, fmt.Errorf("river: listing unpaid orders: %w", err)
	}
	settled := 0
	for _, o := range orders {
		if ctx.Err() != nil {
			return len(orders), settled, ctx.Err()
		}
		if seen[o.OutTradeNo] {
			continue
		}
		seen[o.OutTradeNo] = true
		expired := !o.ExpiresAt.IsZero() && now.After(o.ExpiresAt.Add(r.cfg.CloseGrace))
		if !expired && !o.LastQueriedAt.IsZero() && now.Sub(o.LastQueriedAt) < r.cfg.SettleAfter {
			continue // asked lately (by a run or a read): at most once per SettleAfter
		}
		var after *merchant.Order
		if expired {
			after, err = r.svc.Close(ctx, o.OutTradeNo)
		} else {
			after, err = r.svc.Sync(ctx, o.OutTradeNo)
		}
		if err != nil {
			count(OutcomeError)
			r.log.WarnContext(ctx, "settling an order failed; retried next run", slog.String("out_trade_no", o.OutTradeNo),
				slog.Bool("expired", expired), slog.String("error", err.Error()))
			continue
		}
		settled++
		switch {
		case after.Status.Paid():
			count("paid")
		default:
			count(strings.ToLower(string(after.Status)))
		}
	}
	return len(orders), settled, nil
}

// Refunds settles the refunds RESERVED or PROCESSING for longer than
// RefundsAfter (at most Limit, the oldest first) through
// Service.SyncRefund: a RESERVED refund WeChat has not seen is submitted
// again with the same out_refund_no and amount (reliability.md D2); the
// others take the refund query's status (D3).
func (r *Runner) Refunds(ctx context.Context) (*Result, error) {
	res, count := r.result(KindRefunds)
	now := r.svc.Now()
	refunds, err := r.store.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing},
		now.Add(-r.cfg.RefundsAfter), r.cfg.Limit)
	if err != nil {
		return r.done(ctx, res, fmt.Errorf("river: listing open refunds: %w", err))
	}
	for _, rf := range refunds {
		if ctx.Err() != nil {
			return r.done(ctx, res, ctx.Err())
		}
		after, err := r.svc.SyncRefund(ctx, rf.OutRefundNo)
		if err != nil {
			count(OutcomeError)
			r.log.WarnContext(ctx, "settling a refund failed; retried next run", slog.String("out_refund_no", rf.OutRefundNo),
				slog.String("error", err.Error()))
			continue
		}
		count(strings.ToLower(string(after.Status)))
	}
	return r.done(ctx, res, nil)
}

// Reconcile reconciles the bill of date (yyyy-mm-dd, China time). A bill
// not ready yet is a *recon.NotReadyError.
func (r *Runner) Reconcile(ctx context.Context, date string) (*Result, error) {
	res, count := r.result(KindReconcile)
	if r.cfg.Reconciler == nil {
		return r.done(ctx, res, errors.New("river: no reconciler configured"))
	}
	_, found, err := r.cfg.Reconciler.Reconcile(ctx, date)
	var nr *recon.NotReadyError
	if errors.As(err, &nr) {
		count(OutcomeNotReady)
		r.log.InfoContext(ctx, "bill not ready", slog.String("date", date), slog.Time("retry_at", nr.RetryAt))
		return res, err
	}
	if err != nil {
		return r.done(ctx, res, err)
	}
	for _, e := range found {
		if e.Healed {
			count("healed")
		} else {
			count("exception")
		}
	}
	return r.done(ctx, res, nil)
}
