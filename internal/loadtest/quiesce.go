package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxsim"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes (a log).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// QuiesceResult is what the end of the run did before the check.
type QuiesceResult struct {
	Seconds float64        `json:"seconds"`
	Jobs    map[string]int `json:"jobs"` // "wxpay_settle/closed" → count, over every run of the job
	// ClockAdvance is how far the simulator's clock was moved (past the
	// end of the last day of the run plus WeChat's 10 h) so that every
	// order has expired and the day's bill exists.
	ClockAdvance string            `json:"clock_advance"`
	Reconciled   []ReconDay        `json:"reconciled"`
	Notes        []string          `json:"notes,omitempty"`
	NotifyStats  wxsim.NotifyStats `json:"notify_stats"`
}

// ReconDay is the reconciliation of one China day of the run.
type ReconDay struct {
	Date       string `json:"date"`
	Exceptions int    `json:"exceptions"`
	Healed     int    `json:"healed"`
	Error      string `json:"error,omitempty"`
}

// quiesceAndCheck ends the run: notify retries done, jobs run to the end,
// the day reconciled, the instances stopped, the invariants checked.
func (e *engine) quiesceAndCheck(ctx context.Context) error {
	start := time.Now()
	sim := e.sim.sim
	q := &QuiesceResult{Jobs: map[string]int{}}
	e.res.Quiesce = q
	var schedule time.Duration
	for _, d := range wxsim.NotifySchedule() {
		schedule += d
	}
	quiesce := func() error {
		limit := time.Duration(float64(schedule)/e.cfg.TimeScale) + time.Minute
		qctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		if err := sim.Quiesce(qctx); err != nil {
			sched, running := sim.Pending()
			return fmt.Errorf("the simulator did not quiesce within %s (%d tasks scheduled, %d running): %w", limit, sched, running, err)
		}
		return nil
	}
	e.logf("quiescing: the simulator's notify retries (24h04m at time scale %g)", e.cfg.TimeScale)
	if err := quiesce(); err != nil {
		return err
	}

	// The service in this process, on the simulator's clock.
	mlog := &lockedBuffer{}
	m, err := e.cfg.OpenMerchant(ctx, MerchantEnv{ConfigFile: e.configFile, Env: e.env(e.insts[0].addr), Now: sim.Now, Log: mlog})
	if err != nil {
		return fmt.Errorf("opening the service in-process: %w", err)
	}
	defer m.Close()
	runner, err := river.NewRunner(river.Config{Payments: m.Service, Reconciler: m.Reconciler,
		SettleAfter: time.Millisecond, CloseGrace: time.Millisecond, RefundsAfter: time.Millisecond, Limit: 500,
		Logger: slog.New(slog.NewTextHandler(mlog, nil))})
	if err != nil {
		return err
	}

	drain := func(kind string) {
		rounds := e.cfg.Orders/500 + 10
		deadline := time.Now().Add(3 * time.Minute)
		for r := 0; r < rounds && time.Now().Before(deadline) && ctx.Err() == nil; r++ {
			res, err := runner.RunOnce(ctx, kind)
			if res != nil {
				for k, n := range res.Counts {
					q.Jobs[kind+"/"+k] += n
				}
			}
			if err != nil {
				q.Notes = append(q.Notes, fmt.Sprintf("%s: %v", kind, err))
				continue
			}
			if len(res.Counts) == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		q.Notes = append(q.Notes, fmt.Sprintf("%s still had work after %d runs", kind, rounds))
	}
	// Refunds first, on today's clock: one whose answer was lost is
	// submitted again (the same out_refund_no) today, as the refund job
	// would have done, so that it is on today's bill.
	drain(river.KindRefunds)
	if err := quiesce(); err != nil {
		return err
	}
	drain(river.KindRefunds)

	// Past the end of the last day of the run, plus the 10 h after which
	// WeChat promises the bill: every unpaid order has expired, and the
	// bills of the run's days can be had.
	first := e.res.Started.In(wxpay.China)
	last := time.Now().In(wxpay.China)
	endOfLast := time.Date(last.Year(), last.Month(), last.Day()+1, 0, 0, 0, 0, wxpay.China)
	if adv := endOfLast.Add(recon.BillReadyAfter + time.Minute).Sub(sim.Now()); adv > 0 {
		sim.Advance(adv)
		q.ClockAdvance = adv.Round(time.Second).String()
	}
	e.logf("quiescing: notify retries and refunds done (%.1f s); the simulator's clock moved %s ahead; settling and outbox run to the end",
		since(start), q.ClockAdvance)
	drain(river.KindSettle)
	drain(river.KindRefunds)
	drain(river.KindOutbox)
	if err := quiesce(); err != nil {
		return err
	}

	// Reconcile every China day the run touched.
	for d := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, wxpay.China); !d.After(last); d = d.AddDate(0, 0, 1) {
		date := d.Format("2006-01-02")
		res, err := runner.Reconcile(ctx, date)
		day := ReconDay{Date: date}
		if res != nil {
			day.Exceptions, day.Healed = res.Counts["exception"], res.Counts["healed"]
		}
		if err != nil {
			day.Error = err.Error()
		}
		q.Reconciled = append(q.Reconciled, day)
	}
	e.logf("quiescing: reconciled %d day(s) (%.1f s); stopping the instances", len(q.Reconciled), since(start))
	var wg sync.WaitGroup
	for _, in := range e.insts {
		wg.Add(1)
		go func() { defer wg.Done(); in.stop() }()
	}
	wg.Wait()
	e.logf("quiescing: done in %.1f s", since(start))
	for _, in := range e.insts {
		if err := in.stopError(); err != nil {
			e.note(fmt.Sprintf("instance %d ended with %v after SIGTERM", in.idx, err))
		}
	}
	logs := e.readLogs()
	for _, l := range logs {
		// A service built with -race (the tests) reports its races in its log.
		if strings.Contains(l, "WARNING: DATA RACE") {
			return errors.New("an instance's log reports a data race (see the logs in " + e.workDir + ")")
		}
		if n := strings.Count(l, "panic:"); n > 0 {
			e.res.Errors = append(e.res.Errors, ErrorKind{Kind: "instance: panic in its log", Count: n, Example: "see " + e.workDir})
		}
	}
	q.NotifyStats = sim.NotifyStats()
	e.res.Notify.ProbesSent, e.res.Notify.ProbesAccepted = int64(q.NotifyStats.ProbesSent), int64(q.NotifyStats.ProbesAccepted)
	q.Seconds = round(since(start), 2)

	// The check.
	texts := logs
	responses, seen, kept := e.texts.texts()
	texts = append(texts, responses...)
	texts = append(texts, mlog.String())
	e.res.SecretScan = fmt.Sprintf("%d instance log(s), %d of %d API answers, the in-process service's log", len(logs), kept, seen)
	e.logf("checking the invariants I1–I9")
	rep, err := e.cfg.Check(ctx, invariant.Input{
		Store: m.Service.Store(), Ledger: sim.Ledger(), MchID: wxsim.DefaultMchID, Now: sim.Now(), Grace: time.Minute,
		Canaries: e.texts.canaries, Texts: texts,
	})
	if err != nil {
		return fmt.Errorf("checking the invariants: %w", err)
	}
	e.res.Invariants = rep.Results
	e.res.InvariantsOK = rep.OK()
	if e.res.Orders.Paid == 0 {
		return errNoPaid
	}
	return nil
}
