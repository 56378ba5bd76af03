package river_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/river"
)

// errorCounter is a slog handler that keeps the messages of warnings and
// errors.
type errorCounter struct {
	mu   sync.Mutex
	msgs []string
}

func (c *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *errorCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" || a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	c.msgs = append(c.msgs, msg)
	return nil
}
func (c *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *errorCounter) WithGroup(string) slog.Handler      { return c }

// TestSQLiteContention: River's pool and the store's on one SQLite file,
// both busy — the store writing orders and payments from several
// goroutines while River polls every 100 ms, inserts, works and completes
// jobs — and neither sees a lock error.
func TestSQLiteContention(t *testing.T) {
	h := newHarness(t, sqliteCase)
	logs := &errorCounter{}
	cfg := h.config()
	cfg.Logger = slog.New(logs)
	j := h.start(cfg)

	var (
		storeErrs atomic.Int64
		ops       atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
	)
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				begin := time.Now()
				res, err := h.svc.CreateOrder(h.ctx, h.sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: "latte", Quantity: 1}}})
				if err == nil {
					if _, perr := h.srv.Sim.PayOrder(h.srv.MchID, res.Order.OutTradeNo, "", "success"); perr == nil {
						_, err = h.svc.Sync(h.ctx, res.Order.OutTradeNo)
					}
				}
				if err != nil {
					storeErrs.Add(1)
					t.Log(err)
				}
				ops.Add(1)
				mu.Lock()
				lat = append(lat, time.Since(begin))
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for time.Now().Before(deadline) {
			for _, k := range []string{river.KindSettle, river.KindRefunds, river.KindOutbox} {
				if _, err := j.Enqueue(h.ctx, k); err != nil {
					storeErrs.Add(1)
					t.Log(err)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	wg.Wait()
	time.Sleep(300 * time.Millisecond)

	if n := storeErrs.Load(); n > 0 {
		t.Fatalf("%d operations failed", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, m := range logs.msgs {
		// On a starved machine River's own 10 s deadlines can pass and
		// it retries; what must never show is a lock error.
		if l := strings.ToLower(m); strings.Contains(l, "locked") || strings.Contains(l, "busy") {
			t.Errorf("lock error: %s", m)
		} else {
			t.Logf("logged: %s", m)
		}
	}
	runs := h.counts.get(river.KindSettle, river.OutcomeRun) + h.counts.get(river.KindOutbox, river.OutcomeRun) +
		h.counts.get(river.KindRefunds, river.OutcomeRun)
	slices.Sort(lat)
	t.Logf("%d order+pay+sync flows (p50 %s, p99 %s) beside %d River job runs; outbox delivered %d", ops.Load(),
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), runs,
		h.counts.get(river.KindOutbox, "no_webhook"))
	if runs < 5 {
		t.Fatalf("only %d job runs", runs)
	}
}
