package payments_test

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxsim"
)

// machine is the model of the order/refund state machine test: the
// service under test (a fresh harness per rapid check) and what the test
// did to it. The model's state is small on purpose — which orders exist,
// which pay notifies were captured — because the truth about money is the
// simulator's ledger, and every step compares the service with it.
type machine struct {
	h      *harness
	sess   *merchant.Session
	orders []string
}

func (m *machine) pick(t *rapid.T, label string) string {
	if len(m.orders) == 0 {
		t.Skip("no order yet")
	}
	return rapid.SampledFrom(m.orders).Draw(t, label)
}

// pickWhere picks an order for which ok holds.
func (m *machine) pickWhere(t *rapid.T, label string, ok func(no string) bool) string {
	var list []string
	for _, no := range m.orders {
		if ok(no) {
			list = append(list, no)
		}
	}
	if len(list) == 0 {
		t.Skip("no such order")
	}
	return rapid.SampledFrom(list).Draw(t, label)
}

// rarely skips a disruptive action (closing, a day passing) most of the
// time, so that sequences also build up paid and refunded orders.
func rarely(t *rapid.T, label string) {
	if rapid.IntRange(0, 3).Draw(t, label) != 0 {
		t.Skip("not this time")
	}
}

func (m *machine) create(t *rapid.T) {
	sku := rapid.SampledFrom([]string{"COFFEE", "TEA", "CAKE"}).Draw(t, "sku")
	q := rapid.Int64Range(1, 3).Draw(t, "quantity")
	res, err := m.h.svc.CreateOrder(m.h.ctx, m.sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: sku, Quantity: q}}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if res.Order.TotalFee != catalog[sku].Price*q {
		t.Fatalf("total_fee %d", res.Order.TotalFee)
	}
	m.orders = append(m.orders, res.Order.OutTradeNo)
}

// pay has the user pay an order WeChat still lets her pay; its first
// notify is delivered or lost.
func (m *machine) pay(t *rapid.T) {
	no := m.pickWhere(t, "order", func(no string) bool {
		s, _ := m.h.sim.Order(mchID, no)
		return s.State == wxpay.TradeStateNotPay && m.h.order(no).Status == merchant.OrderNotPay
	})
	res, err := m.h.svc.PayParams(m.h.ctx, m.sess, no)
	if err != nil || res.PayParams == nil {
		t.Skip("no pay parameters (expired or not NOTPAY here)")
	}
	if rapid.Bool().Draw(t, "lose the notify") {
		m.h.sim.NotifyDrop(1)
	}
	p := res.PayParams
	out := m.h.sim.RequestPayment(wxsim.PaymentRequest{OpenID: m.sess.OpenID, AppID: p.AppID, TimeStamp: p.TimeStamp,
		NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
	if !out.OK() {
		t.Fatalf("requestPayment: %s", out.ErrMsg)
	}
	m.h.sim.Flush()
}

// dupNotify replays a genuine pay notify captured earlier: acknowledged,
// no second effect. A v3 notify carries the time it was signed: one
// replayed 5 minutes or more after it is refused by the signature window
// (reliability.md N5), which changes nothing either.
func (m *machine) dupNotify(t *rapid.T) {
	no := m.pick(t, "order")
	header, body, signed, ok := m.h.capturedPay(no)
	if !ok {
		t.Skip("no notify captured")
	}
	err := m.h.svc.HandlePayNotify(m.h.ctx, header, body)
	switch {
	case m.h.replayable(signed):
		if err != nil {
			t.Fatalf("a genuine notify again: %v", err)
		}
	case !errors.Is(err, merchant.ErrBadNotify):
		t.Fatalf("a v3 notify signed %v ago, replayed: %v, want it refused", m.h.clock.Now().Sub(signed), err)
	}
}

func (m *machine) query(t *rapid.T) {
	no := m.pick(t, "order")
	o, err := m.h.svc.Sync(m.h.ctx, no)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	s, _ := m.h.sim.Order(mchID, no)
	if o.Status.Paid() != s.Paid {
		t.Fatalf("after a query: %s here, %s at WeChat", o.Status, s.State)
	}
}

// close closes an order the way the user's cancel and the close job do;
// sometimes the user pays between the query and closeorder.
func (m *machine) close(t *rapid.T) {
	rarely(t, "close now")
	no := m.pick(t, "order")
	racing := rapid.Bool().Draw(t, "user pays first")
	if racing {
		if err := m.h.sim.InjectFault(wxsim.Fault{API: m.h.faultAPI("closeorder"), Kind: wxsim.FaultUserPaysFirst}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := m.h.svc.Close(m.h.ctx, no)
	m.h.sim.ClearFaults()
	m.h.sim.Flush()
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	s, _ := m.h.sim.Order(mchID, no)
	switch {
	case s.Paid && !o.Status.Paid():
		t.Fatalf("closing a paid order left it %s", o.Status)
	case !s.Paid && o.Status != merchant.OrderClosed:
		t.Fatalf("closing an unpaid order left it %s (WeChat %s)", o.Status, s.State)
	}
}

func (m *machine) refund(t *rapid.T) {
	no := m.pick(t, "order")
	if rapid.IntRange(0, 3).Draw(t, "a paid one") != 0 {
		no = m.pickWhere(t, "paid order", func(no string) bool { return m.h.order(no).Refundable() > 0 })
	}
	o := m.h.order(no)
	fee := rapid.Int64Range(1, o.TotalFee+100).Draw(t, "refund_fee")
	r, err := m.h.svc.Refund(m.h.ctx, payments.RefundRequest{OutTradeNo: no, RefundFee: fee})
	switch {
	case !o.Status.Paid() || fee > o.Refundable():
		if errCode(err) != merchant.EINVALID {
			t.Fatalf("a refund of %d fen of a %s order with %d fen refundable: %+v %v", fee, o.Status, o.Refundable(), r, err)
		}
	case err != nil || r.Status != merchant.RefundProcessing:
		t.Fatalf("refund: %+v %v", r, err)
	}
}

// completeRefund ends a refund at WeChat; its notify brings the end here.
func (m *machine) completeRefund(t *rapid.T) {
	var open []wxsim.Refund
	for _, r := range m.h.sim.Refunds(mchID) {
		if r.Status == wxpay.RefundStatusProcessing {
			open = append(open, r)
		}
	}
	if len(open) == 0 {
		t.Skip("no refund in progress")
	}
	r := rapid.SampledFrom(open).Draw(t, "refund")
	end := rapid.SampledFrom([]wxpay.RefundStatus{wxpay.RefundStatusSuccess, wxpay.RefundStatusClosed, wxpay.RefundStatusChange}).Draw(t, "end")
	if err := m.h.sim.CompleteRefund(mchID, r.OutRefundNo, end); err != nil {
		t.Fatal(err)
	}
	m.h.sim.Flush()
	want := map[wxpay.RefundStatus]merchant.RefundStatus{wxpay.RefundStatusSuccess: merchant.RefundSuccess,
		wxpay.RefundStatusClosed: merchant.RefundClosed, wxpay.RefundStatusChange: merchant.RefundChange}[end]
	if got := m.h.refund(r.OutRefundNo).Status; got != want {
		t.Fatalf("refund %s ended %s at WeChat, %s here after its notify", r.OutRefundNo, end, got)
	}
}

func (m *machine) wait(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{5 * time.Second, time.Minute, 10 * time.Minute, 40 * time.Minute, 3 * time.Hour}).Draw(t, "wait")
	m.h.advance(d)
}

func (m *machine) job(t *rapid.T) {
	kind := rapid.SampledFrom([]string{river.KindSettle, river.KindRefunds}).Draw(t, "job")
	res, err := m.h.runner.RunOnce(m.h.ctx, kind)
	if err != nil || res.Errors() != 0 {
		t.Fatalf("%s: %v %v", kind, res, err)
	}
	m.h.sim.Flush()
}

// reconcile moves to the next morning and reconciles every day not yet.
func (m *machine) reconcile(t *rapid.T) {
	rarely(t, "a day passes")
	m.h.toNextMorning()
	for day := time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China); day.Before(m.h.clock.Now().Add(-34 * time.Hour)); day = day.AddDate(0, 0, 1) {
		date := day.Format(recon.DateLayout)
		if m.h.reconciled[date] {
			continue
		}
		if _, _, err := m.h.rec.Reconcile(m.h.ctx, date); err != nil {
			t.Fatalf("reconcile %s: %v", date, err)
		}
		m.h.reconciled[date] = true
	}
	m.h.sim.Flush()
}

// check runs after every step: the safety invariants that hold at all
// times, not only after quiescence — states only move forward (I4), one
// order.paid event per paid order (I5), no PAID order differing from
// WeChat's (I6), paid here ⇒ paid at WeChat, CLOSED here ⇒ not paid at
// WeChat, refunds ≤ paid here and at WeChat, each refund executed at most
// once.
func (m *machine) check(t *rapid.T) {
	h := m.h
	rep, err := invariant.Check(h.ctx, invariant.Input{Store: h.base, Ledger: h.sim.Ledger(), MchID: mchID, Now: h.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if (r.ID == "I4" || r.ID == "I5" || r.ID == "I6") && r.Violations != 0 {
			t.Fatalf("%s", rep)
		}
	}
	for _, no := range m.orders {
		o := h.order(no)
		s, _ := h.sim.Order(mchID, no)
		if o.Status.Paid() && !s.Paid {
			t.Fatalf("%s is %s here, %s at WeChat", no, o.Status, s.State)
		}
		if o.Status == merchant.OrderClosed && s.Paid {
			t.Fatalf("%s is CLOSED here, paid at WeChat", no)
		}
		if o.RefundedFee > o.TotalFee || o.RefundedFee < 0 {
			t.Fatalf("%s holds %d fen of refunds for %d", no, o.RefundedFee, o.TotalFee)
		}
		var refunded int64
		for _, r := range s.Refunds {
			if r.Executions > 1 {
				t.Fatalf("refund %s executed %d times", r.OutRefundNo, r.Executions)
			}
			if r.Status != wxpay.RefundStatusClosed {
				refunded += r.RefundFee
			}
		}
		if refunded > s.TotalFee {
			t.Fatalf("WeChat refunded %d fen of %d", refunded, s.TotalFee)
		}
	}
}

// TestStateMachine drives the service with random sequences of create,
// pay (notify delivered or lost), duplicate notify, query, close (with
// and without the user paying first), refund of any amount, refund end
// (SUCCESS, REFUNDCLOSE, CHANGE, by notify), time passing, the settle and
// refund jobs and reconciliation, checking the safety invariants after
// every step and I1–I9 after quiescence at the end. Each rapid check has a
// fresh simulator and database: for a v2 merchant 40 checks on SQLite and
// 8 on PostgreSQL, for an APIv3 merchant 10 and 2 (more with
// -rapid.checks: that many for each API on SQLite, a fifth on PostgreSQL).
func TestStateMachine(t *testing.T) {
	for _, c := range []struct {
		sk     storeKind
		api    apiKind
		checks int
	}{{sqliteKind, apiV2, 40}, {sqliteKind, apiV3, 10}, {postgresKind, apiV2, 8}, {postgresKind, apiV3, 2}} {
		t.Run(c.sk.name+"/"+string(c.api), func(t *testing.T) {
			t.Parallel()
			if c.sk.name == "postgres" {
				postgresKind.open(t) // skip (or fail in CI) here when PostgreSQL is missing
			}
			n := 0
			ran := map[string]int{}
			budget := rapidBudget(c.checks)
			if c.sk.name == "postgres" && budget != c.checks {
				budget = max(1, budget/5)
			}
			rapid.Check(t, func(rt *rapid.T) {
				n++
				if n > budget {
					return
				}
				h := newHarness(t, c.sk, withAPI(c.api), withSim(func(c *wxsim.Config) { c.RefundDelay = 6 * time.Hour }))
				m := &machine{h: h, sess: h.user()}
				actions := map[string]func(*rapid.T){
					"create":         m.create,
					"pay":            m.pay,
					"pay another":    m.pay,
					"dupNotify":      m.dupNotify,
					"query":          m.query,
					"close":          m.close,
					"refund":         m.refund,
					"refund again":   m.refund,
					"completeRefund": m.completeRefund,
					"wait":           m.wait,
					"job":            m.job,
					"reconcile":      m.reconcile,
				}
				for name, f := range actions {
					actions[name] = func(t *rapid.T) {
						f(t)
						ran[name]++ // not reached when the action skipped
					}
				}
				actions[""] = m.check
				rt.Repeat(actions)
				h.finish()
			})
			t.Logf("%d checks; actions run: %v", min(n, budget), sortedStrings(ran))
		})
	}
}
