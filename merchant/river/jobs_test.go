package river_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestSettleLostNotify is reliability.md C1: WeChat never delivers the
// notify; the settle job's query marks the order paid. An order not yet
// expired is left alone.
func TestSettleLostNotify(t *testing.T) {
	t.Parallel()
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dc)
			paid := h.order()
			h.pay(paid)
			unpaid := h.order()
			h.srv.Clock.Advance(2 * time.Minute) // older than SettleAfter
			begin := time.Now()
			h.start(h.config())
			eventually(t, 30*time.Second, "the settle job marks the order paid", func() bool {
				return h.status(paid.OutTradeNo) == merchant.OrderPaid
			})
			t.Logf("%s: lost notify settled %s after Start", dc.name, time.Since(begin).Round(time.Millisecond))
			eventually(t, 5*time.Second, "a settle run ends", func() bool { return h.counts.get(river.KindSettle, river.OutcomeRun) > 0 })
			if s := h.status(unpaid.OutTradeNo); s != merchant.OrderNotPay {
				t.Fatalf("an unpaid order not yet expired became %s", s)
			}
			evs, err := h.store.Events(h.ctx, paid.OutTradeNo)
			if err != nil || len(evs) == 0 || evs[len(evs)-1].Source != string(merchant.SourceQuery) {
				t.Fatalf("events: %+v %v", evs, err)
			}
			if outbox, _ := h.store.OutboxFor(h.ctx, paid.OutTradeNo); len(outbox) != 1 {
				t.Fatalf("outbox events of the paid order: %d, want 1", len(outbox))
			}
		})
	}
}

// closeRace is WeChat for the expiry test: the simulator closes an order
// itself at time_expire, so a user paying between our query and our
// closeorder, or a closeorder failing with SYSTEMERROR, cannot be staged
// there. This gateway answers query and closeorder from a script and
// hands everything else to the simulator's gateway.
type closeRace struct {
	merchant.Gateway
	h *harness

	mu      sync.Mutex
	script  map[string][]error // closeorder answers, per order, in turn
	paid    map[string]bool    // the user paid (during the close)
	closed  map[string]bool
	calls   map[string]int
	atRetry map[string]merchant.OrderStatus // our status when close was called again
}

func (g *closeRace) Query(_ context.Context, no string) (*merchant.TradeStatus, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.paid[no]:
		o, err := g.h.store.Order(context.Background(), no)
		if err != nil {
			return nil, err
		}
		return &merchant.TradeStatus{State: wxpay.TradeStateSuccess, Payment: &merchant.Payment{
			OutTradeNo: no, TransactionID: "4200000000" + no[len(no)-10:] + "00000000", AppID: o.AppID, MchID: o.MchID,
			TotalFee: o.TotalFee, CashFee: o.TotalFee, FeeType: "CNY", OpenID: o.OpenID, TradeType: o.TradeType,
			PaidAt: g.h.srv.Clock.Now(),
		}}, nil
	case g.closed[no]:
		return &merchant.TradeStatus{State: wxpay.TradeStateClosed}, nil
	}
	return &merchant.TradeStatus{State: wxpay.TradeStateNotPay}, nil
}

func (g *closeRace) Close(_ context.Context, no string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[no]++
	if g.calls[no] > 1 {
		o, _ := g.h.store.Order(context.Background(), no)
		g.atRetry[no] = o.Status
	}
	var err error
	if s := g.script[no]; len(s) > 0 {
		err, g.script[no] = s[0], s[1:]
	}
	switch {
	case errors.Is(err, merchant.ErrOrderPaid):
		g.paid[no] = true
	case err == nil:
		g.closed[no] = true
	}
	return err
}

// TestSettleClosesExpired is reliability.md C2: an expired order is closed
// only on WeChat's confirmation. closeorder answering ORDERPAID (the user
// paid between our query and our close) ends PAID; SYSTEMERROR leaves it
// NOTPAY, and the next run closes it.
func TestSettleClosesExpired(t *testing.T) {
	t.Parallel()
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dc)
			raced, flaky, fine := h.order(), h.order(), h.order()
			g := &closeRace{Gateway: h.gw, h: h, paid: map[string]bool{}, closed: map[string]bool{}, calls: map[string]int{},
				atRetry: map[string]merchant.OrderStatus{}, script: map[string][]error{
					raced.OutTradeNo: {fmt.Errorf("%w: ORDERPAID", merchant.ErrOrderPaid)},
					flaky.OutTradeNo: {fmt.Errorf("%w: SYSTEMERROR", merchant.ErrUnknownOutcome)},
				}}
			h.service(g)
			h.srv.Clock.Advance(32 * time.Minute) // past time_expire (30 min) and the grace
			h.start(h.config())

			eventually(t, 30*time.Second, "all three settled", func() bool {
				return h.status(raced.OutTradeNo) == merchant.OrderPaid && h.status(flaky.OutTradeNo) == merchant.OrderClosed &&
					h.status(fine.OutTradeNo) == merchant.OrderClosed
			})
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.calls[flaky.OutTradeNo] < 2 || g.atRetry[flaky.OutTradeNo] != merchant.OrderNotPay {
				t.Fatalf("after SYSTEMERROR the order was %q when close was retried (%d calls); want NOTPAY and a retry",
					g.atRetry[flaky.OutTradeNo], g.calls[flaky.OutTradeNo])
			}
			if h.counts.get(river.KindSettle, river.OutcomeError) == 0 {
				t.Errorf("the SYSTEMERROR was not counted: %s", h.counts)
			}
			for no, want := range map[string][]string{
				raced.OutTradeNo: {"NOTPAY>PAID:query"},
				flaky.OutTradeNo: {"NOTPAY>CLOSED:close"},
				fine.OutTradeNo:  {"NOTPAY>CLOSED:close"},
			} {
				evs, err := h.store.Events(h.ctx, no)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range evs {
					if e.From != "" {
						got = append(got, fmt.Sprintf("%s>%s:%s", e.From, e.To, e.Source))
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("events of %s: %q, want %q", no, got, want)
				}
			}
		})
	}
}

// TestRefundsResubmitted is reliability.md D2 and D3: a refund whose
// request never reached WeChat stays RESERVED and the refunds job submits
// it again with the same out_refund_no; one WeChat executed but whose
// answer was lost is found by the refund query, not submitted twice; both
// end SUCCESS from the query (the refund notifies are lost).
func TestRefundsResubmitted(t *testing.T) {
	t.Parallel()
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dc)
			lost := h.refund(wxsim.FaultDropBeforeCommit, "RFLOST00001")
			executed := h.refund(wxsim.FaultDropAfterCommit, "RFEXEC00001")
			h.srv.Clock.Advance(time.Minute) // older than RefundsAfter
			h.start(h.config())
			refundStatus := func(no string) merchant.RefundStatus {
				r, err := h.store.Refund(h.ctx, no)
				if err != nil {
					t.Fatal(err)
				}
				return r.Status
			}
			eventually(t, 30*time.Second, "both refunds accepted", func() bool {
				return refundStatus(lost) == merchant.RefundProcessing && refundStatus(executed) == merchant.RefundProcessing
			})
			h.srv.Clock.Advance(10 * time.Minute) // WeChat completes them
			eventually(t, 30*time.Second, "both refunds done", func() bool {
				return refundStatus(lost) == merchant.RefundSuccess && refundStatus(executed) == merchant.RefundSuccess
			})
			for _, r := range h.srv.Sim.Refunds(h.srv.MchID) {
				if r.Executions != 1 {
					t.Errorf("refund %s executed %d times", r.OutRefundNo, r.Executions)
				}
				if r.OutRefundNo == executed && r.Requests != 1 {
					t.Errorf("refund %s was submitted again (%d requests) although WeChat had it", r.OutRefundNo, r.Requests)
				}
				if r.OutRefundNo != lost && r.OutRefundNo != executed {
					t.Errorf("a refund number we never made: %s", r.OutRefundNo)
				}
			}
			if n := len(h.srv.Sim.Refunds(h.srv.MchID)); n != 2 {
				t.Fatalf("the simulator has %d refunds, want 2", n)
			}
		})
	}
}

// refund refunds 1000 fen of a new paid order with the refund call failing
// as kind says; the refund stays RESERVED.
func (h *harness) refund(kind wxsim.FaultKind, no string) string {
	h.t.Helper()
	o := h.paidOrder()
	if err := h.srv.Sim.InjectFault(wxsim.Fault{API: "refund", Kind: kind}); err != nil {
		h.t.Fatal(err)
	}
	r, err := h.svc.Refund(h.ctx, paymentsRefund(o.OutTradeNo, no))
	if err != nil || r.Status != merchant.RefundReserved {
		h.t.Fatalf("refund with %s: %+v %v", kind, r, err)
	}
	return no
}

// webhook is the merchant's endpoint: it checks every signature, fails
// the first delivery of each event, and counts the accepted ones.
type webhook struct {
	secret []byte
	mu     sync.Mutex
	tries  map[string]int
	ok     map[string]int
	bad    []string
	events map[string]river.Event
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := river.Verify(r.Header.Get(river.SignatureHeader), body, time.Now(), 0, w.secret); err != nil {
		w.bad = append(w.bad, err.Error())
		http.Error(rw, "bad signature", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(river.EventIDHeader)
	w.tries[id]++
	if w.tries[id] == 1 {
		http.Error(rw, "try again", http.StatusInternalServerError)
		return
	}
	var ev river.Event
	if err := jsonUnmarshal(body, &ev); err != nil || ev.ID != id {
		w.bad = append(w.bad, fmt.Sprintf("body %s: %v", body, err))
	}
	w.events[id] = ev
	w.ok[id]++
}

// TestOutboxDelivers: each order.paid event reaches the webhook, signed,
// exactly once, although the webhook fails the first delivery of each.
func TestOutboxDelivers(t *testing.T) {
	t.Parallel()
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dc)
			wh := &webhook{secret: []byte("whsec_test"), tries: map[string]int{}, ok: map[string]int{}, events: map[string]river.Event{}}
			srv := httptest.NewServer(wh)
			defer srv.Close()
			a, b := h.paidOrder(), h.paidOrder()
			cfg := h.config()
			cfg.Webhook = river.Webhook{URL: srv.URL, Secret: wxpay.Secret(wh.secret), Backoff: 10 * time.Second}
			h.start(cfg)
			count := func(m map[string]int) (n int) {
				wh.mu.Lock()
				defer wh.mu.Unlock()
				for _, v := range m {
					n += v
				}
				return n
			}
			eventually(t, 30*time.Second, "both first deliveries fail", func() bool { return count(wh.tries) == 2 })
			time.Sleep(1500 * time.Millisecond) // runs go by: not due yet (10 s backoff, service time)
			if n := count(wh.tries); n != 2 {
				t.Fatalf("%d deliveries before the backoff passed", n)
			}
			h.srv.Clock.Advance(15 * time.Second)
			eventually(t, 30*time.Second, "both delivered", func() bool { return count(wh.ok) == 2 })
			time.Sleep(2500 * time.Millisecond) // more runs: nothing is sent again
			wh.mu.Lock()
			defer wh.mu.Unlock()
			if len(wh.bad) > 0 {
				t.Fatalf("bad deliveries: %q", wh.bad)
			}
			for id, n := range wh.ok {
				if n != 1 || wh.tries[id] != 2 {
					t.Errorf("event %s accepted %d times in %d tries", id, n, wh.tries[id])
				}
			}
			for _, o := range []*merchant.Order{a, b} {
				evs, err := h.store.OutboxFor(h.ctx, o.OutTradeNo)
				if err != nil || len(evs) != 1 {
					t.Fatalf("outbox of %s: %+v %v", o.OutTradeNo, evs, err)
				}
				ev := evs[0]
				if ev.DeliveredAt.IsZero() || ev.Attempts != 2 {
					t.Errorf("outbox event %d: delivered %v after %d attempts", ev.ID, ev.DeliveredAt, ev.Attempts)
				}
				got := wh.events[fmt.Sprint(ev.ID)]
				if got.Type != merchant.EventOrderPaid || got.OutTradeNo != o.OutTradeNo || len(got.Data) == 0 {
					t.Errorf("delivered %+v", got)
				}
			}
		})
	}
}

// TestReconcileJob: once yesterday's bill is promised (10:00 China time by
// the service's clock), the leader inserts the day's reconciliation and
// it runs; its report is saved.
func TestReconcileJob(t *testing.T) {
	t.Parallel()
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dc)
			h.paidOrder()
			lost := h.order()
			h.pay(lost) // only the bill (and the reconciliation's heal) tell us
			h.srv.Clock.Advance(time.Date(2026, 11, 29, 10, 30, 0, 0, wxpay.China).Sub(h.srv.Clock.Now()))
			h.start(h.config())
			eventually(t, 30*time.Second, "the reconcile job ran", func() bool { return h.counts.get(river.KindReconcile, river.OutcomeRun) == 1 })
			rep, err := h.store.Recon(h.ctx, "2026-11-28")
			// The settle job (also run at start) may find the lost payment
			// first; either way both bill rows end up accounted for.
			if err != nil || rep.BillRows != 2 || rep.Matched+rep.Healed != 2 || rep.Exceptions != rep.Healed {
				t.Fatalf("report: %+v %v", rep, err)
			}
			if s := h.status(lost.OutTradeNo); s != merchant.OrderPaid {
				t.Fatalf("the payment the bill proves is %s", s)
			}
		})
	}
}

// TestReconcileJobNotReady: asked before the bill exists, the job is
// snoozed, not failed.
func TestReconcileJobNotReady(t *testing.T) {
	h := newHarness(t, sqliteCase)
	h.srv.Clock.Advance(24 * time.Hour) // 09:00 the next day: no bill yet
	j := h.start(h.config())
	if ok, err := j.Enqueue(h.ctx, river.KindReconcile); err != nil || !ok {
		t.Fatalf("Enqueue = %v, %v", ok, err)
	}
	eventually(t, 10*time.Second, "the job saw the bill not ready", func() bool {
		return h.counts.get(river.KindReconcile, river.OutcomeNotReady) == 1
	})
	if n := h.counts.get(river.KindReconcile, river.OutcomeError); n != 0 {
		t.Fatalf("a bill not ready counted as %d errors", n)
	}
	if _, err := h.store.Recon(h.ctx, "2026-11-28"); merchant.ErrorCode(err) != merchant.ENOTFOUND {
		t.Fatalf("a report was saved: %v", err)
	}
}

// TestOneLeader: two instances on one database share the queue; only the
// leader inserts the periodic jobs, so each period's work runs once.
func TestOneLeader(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc)
			var insts [2]*counter
			begin := time.Now()
			// Both start at once on a fresh database: their migrations too.
			var wg sync.WaitGroup
			for i := range insts {
				insts[i] = newCounter()
				cfg := h.config()
				cfg.ID = fmt.Sprintf("instance-%d", i)
				cfg.Observe = func(kind, outcome string) { insts[i].observe(kind, outcome); h.counts.observe(kind, outcome) }
				wg.Go(func() {
					j, err := river.Start(h.ctx, cfg)
					if err != nil {
						t.Errorf("instance %d: %v", i, err)
						return
					}
					t.Cleanup(func() { _ = j.Stop(context.Background()) })
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			time.Sleep(4 * time.Second)
			elapsed := time.Since(begin)
			scheduled := [2]int{insts[0].get(river.KindSettle, river.OutcomeScheduled), insts[1].get(river.KindSettle, river.OutcomeScheduled)}
			if (scheduled[0] == 0) == (scheduled[1] == 0) {
				t.Fatalf("periodic jobs inserted by %v (instance 0, 1): want exactly one leader", scheduled)
			}
			runs := h.counts.get(river.KindSettle, river.OutcomeRun)
			if max := int(elapsed/time.Second) + 2; runs == 0 || runs > max {
				t.Fatalf("%d settle runs in %s with a 1 s period (max %d)", runs, elapsed.Round(time.Millisecond), max)
			}
			t.Logf("%s: %d settle runs in %s; worked by instance 0: %d, 1: %d", dc.name, runs, elapsed.Round(time.Millisecond),
				insts[0].get(river.KindSettle, river.OutcomeRun), insts[1].get(river.KindSettle, river.OutcomeRun))
		})
	}
}

// TestPickup measures how long River takes to start a job inserted on a
// running instance.
func TestPickup(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc)
			cfg := h.config()
			cfg.SettleEvery, cfg.RefundsEvery, cfg.OutboxEvery = time.Hour, time.Hour, time.Hour
			var mu sync.Mutex
			var ran chan struct{}
			cfg.Observe = func(kind, outcome string) {
				if kind == river.KindRefunds && outcome == river.OutcomeRun {
					mu.Lock()
					if ran != nil {
						close(ran)
						ran = nil
					}
					mu.Unlock()
				}
			}
			j := h.start(cfg)
			var worst, total time.Duration
			const n = 5
			for range n {
				c := make(chan struct{})
				mu.Lock()
				ran = c
				mu.Unlock()
				// Until River has marked the last run completed, an insert
				// is a duplicate of it (the job is a singleton).
				var begin time.Time
				eventually(t, 5*time.Second, "the previous run is marked completed", func() bool {
					begin = time.Now()
					ok, err := j.Enqueue(h.ctx, river.KindRefunds)
					if err != nil {
						t.Fatal(err)
					}
					return ok
				})
				select {
				case <-c:
				case <-time.After(10 * time.Second):
					t.Fatal("the job did not run")
				}
				d := time.Since(begin)
				total += d
				worst = max(worst, d)
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("%s: job inserted → run finished: mean %s, worst %s (poll interval %s)", dc.name,
				(total / n).Round(time.Millisecond), worst.Round(time.Millisecond), cfg.PollInterval)
		})
	}
}

// TestRunOnce: the same work without River.
func TestRunOnce(t *testing.T) {
	h := newHarness(t, sqliteCase)
	paid := h.order()
	h.pay(paid)
	h.srv.Clock.Advance(2 * time.Minute)
	r, err := river.NewRunner(river.Config{Payments: h.svc, Reconciler: h.rec})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunOnce(h.ctx, river.KindSettle)
	if err != nil || res.Counts["paid"] != 1 {
		t.Fatalf("settle: %v %v", res, err)
	}
	// No webhook: the event is marked delivered with a note.
	res, err = r.RunOnce(h.ctx, river.KindOutbox)
	if err != nil || res.Counts["no_webhook"] != 1 {
		t.Fatalf("outbox: %v %v", res, err)
	}
	evs, _ := h.store.OutboxFor(h.ctx, paid.OutTradeNo)
	if len(evs) != 1 || evs[0].DeliveredAt.IsZero() || evs[0].LastError != river.NoWebhookNote {
		t.Fatalf("outbox after a run without a webhook: %+v", evs)
	}
	if res, err = r.RunOnce(h.ctx, river.KindOutbox); err != nil || len(res.Counts) != 0 {
		t.Fatalf("second outbox run: %v %v", res, err)
	}
	if res, err = r.RunOnce(h.ctx, river.KindRefunds); err != nil || len(res.Counts) != 0 {
		t.Fatalf("refunds: %v %v", res, err)
	}
	if _, err = r.RunOnce(h.ctx, river.KindReconcile); err == nil {
		t.Fatal("reconciling the day before the simulator's first day: want the bill not ready")
	}
	if _, err = r.RunOnce(h.ctx, "nope"); err == nil {
		t.Fatal("an unknown kind ran")
	}
}

func TestConfigChecks(t *testing.T) {
	h := newHarness(t, sqliteCase)
	for name, cfg := range map[string]river.Config{
		"no service":      {},
		"fast period":     {Payments: h.svc, SettleEvery: 10 * time.Millisecond},
		"fast poll":       {Payments: h.svc, PollInterval: 10 * time.Millisecond},
		"unsigned hook":   {Payments: h.svc, Webhook: river.Webhook{URL: "http://127.0.0.1:9/"}},
		"reconcile at 25": {Payments: h.svc, ReconcileAt: 25 * time.Hour},
	} {
		if _, err := river.NewRunner(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := river.Start(h.ctx, river.Config{Payments: h.svc}); err == nil {
		t.Error("Start without a driver: accepted")
	}
}

// TestSettleDrainsBacklog: after a batch of lost notifies larger than
// Limit, one settle run settles them all (in batches), and a run during
// a WeChat outage stops after the first batch that settles nothing
// instead of querying the same orders again.
func TestSettleDrainsBacklog(t *testing.T) {
	h := newHarness(t, sqliteCase)
	const n = 25
	orders := make([]*merchant.Order, n)
	for i := range orders {
		orders[i] = h.order()
		h.pay(orders[i])
	}
	h.srv.Clock.Advance(2 * time.Minute)
	r, err := river.NewRunner(river.Config{Payments: h.svc, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}

	// WeChat failing: one batch tried, then the run stops.
	if err := h.srv.Sim.InjectFault(wxsim.Fault{API: "orderquery", Kind: wxsim.FaultSystemError, Count: 1000}); err != nil {
		t.Fatal(err)
	}
	res, err := r.RunOnce(h.ctx, river.KindSettle)
	if err != nil || res.Counts[river.OutcomeError] != 10 || res.Counts["paid"] != 0 {
		t.Fatalf("settle during an outage: %v %v", res, err)
	}
	h.srv.Sim.ClearFaults()

	res, err = r.RunOnce(h.ctx, river.KindSettle)
	if err != nil || res.Counts["paid"] != n {
		t.Fatalf("settle of a backlog of %d with Limit 10: %v %v", n, res, err)
	}
	for _, o := range orders {
		if s := h.status(o.OutTradeNo); s != merchant.OrderPaid {
			t.Fatalf("%s is %s", o.OutTradeNo, s)
		}
	}
	// Nothing left: the next run queries nothing.
	if res, err = r.RunOnce(h.ctx, river.KindSettle); err != nil || len(res.Counts) != 0 {
		t.Fatalf("a run with nothing to settle: %v %v", res, err)
	}
}
