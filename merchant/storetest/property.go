package storetest

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wxpay-go/wxpay/merchant"
)

// allowedEdge is merchant.CanTransition (which includes PAYERROR → PAID:
// a payment WeChat reports for an order we marked PAYERROR is money
// received, recorded as a late payment like CLOSED → PAID).
func allowedEdge(from, to merchant.OrderStatus) bool {
	return merchant.CanTransition(from, to)
}

// testProperty runs random sequences of store operations on a few orders
// and checks, after every step, that the store's own records agree with
// the rules: transitions only along allowed edges (I4, from the event
// log), RefundedFee = Σ refunds that hold and 0 ≤ RefundedFee ≤ TotalFee
// (I3), one order.paid outbox event per paid order and none for the others
// (I5); and that each call's answer is the one the state before it calls
// for.
func testProperty(t *testing.T, s merchant.Store) {
	var run atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		ctx := t.Context()
		prefix := fmt.Sprintf("p%d-", run.Add(1))
		clock := t0
		tick := func() time.Time { clock = clock.Add(time.Second); return clock }

		var orders []string
		for i := range rapid.IntRange(1, 3).Draw(rt, "orders") {
			o := newOrder(fmt.Sprintf("%s%d", prefix, i), rapid.Int64Range(1, 10_000).Draw(rt, "total"))
			o.CreatedAt = tick()
			create(rt, s, o)
			orders = append(orders, o.OutTradeNo)
		}
		var refunds []string // every out_refund_no used
		// The orders a step may have changed: only those need checking.
		dirty := map[string]bool{}
		for _, no := range orders {
			dirty[no] = true
		}
		state := func(no string) *merchant.Order { dirty[no] = true; return getOrder(rt, s, no) }

		actions := map[string]func(*rapid.T){
			"pay": func(rt *rapid.T) {
				no := rapid.SampledFrom(orders).Draw(rt, "order")
				before := state(no)
				p := payment(before, rapid.SampledFrom([]string{"tx-" + no, "tx-" + no + "-other"}).Draw(rt, "txid"))
				bad := rapid.IntRange(0, 4).Draw(rt, "bad") == 0
				if bad {
					p.TotalFee++
				}
				p.PaidAt = tick()
				out, after, err := s.MarkPaid(ctx, p, clock)
				if err != nil {
					rt.Fatalf("MarkPaid: %v", err)
				}
				var want merchant.PayOutcome
				switch {
				case bad:
					want = merchant.PayRejected
				case before.Status == merchant.OrderNotPay:
					want = merchant.PayApplied
				case before.Status == merchant.OrderClosed || before.Status == merchant.OrderPayError:
					want = merchant.PayLate
				case before.TransactionID == p.TransactionID:
					want = merchant.PayDuplicate
				default:
					want = merchant.PayRejected
				}
				if out != want {
					rt.Fatalf("MarkPaid(%s, %s) on %s = %s; want %s", no, p.TransactionID, before.Status, out, want)
				}
				if now := state(no); after.Status != now.Status || after.TransactionID != now.TransactionID {
					rt.Fatalf("MarkPaid returned %s/%s, the store holds %s/%s", after.Status, after.TransactionID, now.Status, now.TransactionID)
				}
			},
			"close": func(rt *rapid.T) {
				no := rapid.SampledFrom(orders).Draw(rt, "order")
				to := rapid.SampledFrom([]merchant.OrderStatus{merchant.OrderClosed, merchant.OrderPayError}).Draw(rt, "to")
				before := state(no)
				ok, err := s.MarkClosed(ctx, no, to, "close", tick())
				if err != nil {
					rt.Fatalf("MarkClosed: %v", err)
				}
				if ok != (before.Status == merchant.OrderNotPay) {
					rt.Fatalf("MarkClosed(%s) on %s = %v", no, before.Status, ok)
				}
			},
			"reserve": func(rt *rapid.T) {
				no := rapid.SampledFrom(orders).Draw(rt, "order")
				before := state(no)
				var r *merchant.Refund
				if len(refunds) > 0 && rapid.IntRange(0, 3).Draw(rt, "retry") == 0 {
					// A retry of a number already used, with its amount or another.
					old, err := s.Refund(ctx, rapid.SampledFrom(refunds).Draw(rt, "refund"))
					if err != nil {
						rt.Fatal(err)
					}
					dirty[old.OutTradeNo] = true
					r = &merchant.Refund{OutRefundNo: old.OutRefundNo, OutTradeNo: old.OutTradeNo, RefundFee: old.RefundFee}
					if rapid.Bool().Draw(rt, "changed") {
						r.RefundFee++
					}
					got, created, err := s.ReserveRefund(ctx, r, tick())
					if r.RefundFee == old.RefundFee {
						if err != nil || created || got.OutRefundNo != old.OutRefundNo || got.Status != old.Status {
							rt.Fatalf("retry of %s = %v, %v, %v", old.OutRefundNo, got, created, err)
						}
					} else if merchant.ErrorCode(err) != merchant.ECONFLICT {
						rt.Fatalf("retry of %s with another amount: %v; want ECONFLICT", old.OutRefundNo, err)
					}
					return
				}
				r = &merchant.Refund{OutRefundNo: fmt.Sprintf("%sr%d", prefix, len(refunds)), OutTradeNo: no,
					RefundFee: rapid.Int64Range(1, before.TotalFee).Draw(rt, "fee")}
				_, created, err := s.ReserveRefund(ctx, r, tick())
				switch {
				case !before.Status.Paid(), before.RefundCount >= merchant.MaxRefunds, r.RefundFee > before.Refundable():
					if merchant.ErrorCode(err) != merchant.EINVALID {
						rt.Fatalf("ReserveRefund(%d) on %s with %d left: %v; want EINVALID", r.RefundFee, before.Status, before.Refundable(), err)
					}
				default:
					if err != nil || !created {
						rt.Fatalf("ReserveRefund(%d) on %s with %d left = %v, %v", r.RefundFee, before.Status, before.Refundable(), created, err)
					}
					refunds = append(refunds, r.OutRefundNo)
				}
			},
			"update": func(rt *rapid.T) {
				if len(refunds) == 0 {
					return
				}
				no := rapid.SampledFrom(refunds).Draw(rt, "refund")
				to := rapid.SampledFrom([]merchant.RefundStatus{merchant.RefundProcessing, merchant.RefundSuccess,
					merchant.RefundClosed, merchant.RefundChange, merchant.RefundFailed}).Draw(rt, "to")
				before, err := s.Refund(ctx, no)
				if err != nil {
					rt.Fatal(err)
				}
				dirty[before.OutTradeNo] = true
				ok, err := s.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: no, To: to, Source: "notify", Now: tick()})
				if err != nil {
					rt.Fatalf("UpdateRefund: %v", err)
				}
				if ok != merchant.CanTransitionRefund(before.Status, to) {
					rt.Fatalf("UpdateRefund(%s: %s → %s) = %v", no, before.Status, to, ok)
				}
				if after, _ := s.Refund(ctx, no); ok && after.Status != to || !ok && after.Status != before.Status {
					rt.Fatalf("refund %s is %s after %s → %s (%v)", no, after.Status, before.Status, to, ok)
				}
			},
		}
		check := func() {
			for no := range dirty {
				checkInvariants(rt, s, no)
			}
			clear(dirty)
		}
		// A short sequence (rapid.T.Repeat runs 30 steps on average): the
		// suite runs this property on every store, under -race too.
		names := slices.Sorted(maps.Keys(actions))
		check()
		for range rapid.IntRange(1, 25).Draw(rt, "steps") {
			actions[rapid.SampledFrom(names).Draw(rt, "action")](rt)
			check()
		}
	})
}

// checkInvariants checks the records of one order against I3, I4 and I5.
func checkInvariants(t *rapid.T, s merchant.Store, no string) {
	ctx := t.Context()
	o := getOrder(t, s, no)

	// I4: the event log is a path along allowed edges that ends at the
	// order's status.
	evs, err := s.Events(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	st := merchant.OrderNotPay
	for _, e := range evs {
		if e.From != st || !allowedEdge(e.From, e.To) {
			t.Fatalf("%s: event %s → %s after %s", no, e.From, e.To, st)
		}
		st = e.To
	}
	if st != o.Status {
		t.Fatalf("%s: events end at %s, the order is %s", no, st, o.Status)
	}
	if o.Status.Paid() != (o.TransactionID != "") || o.Status.Paid() == o.PaidAt.IsZero() {
		t.Fatalf("%s: %s with transaction %q paid at %v", no, o.Status, o.TransactionID, o.PaidAt)
	}

	// I3: what the order holds is what its refunds hold.
	rs, err := s.Refunds(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	succeeded := 0
	for _, r := range rs {
		if r.Status.Holds() {
			held += r.RefundFee
		}
		if r.Status == merchant.RefundSuccess {
			succeeded++
		}
		if r.OutTradeNo != no || r.TotalFee != o.TotalFee {
			t.Fatalf("%s: refund %+v", no, r)
		}
	}
	if o.RefundedFee != held || o.RefundedFee < 0 || o.RefundedFee > o.TotalFee {
		t.Fatalf("%s: RefundedFee %d, refunds hold %d, total %d", no, o.RefundedFee, held, o.TotalFee)
	}
	if o.RefundCount != len(rs) {
		t.Fatalf("%s: RefundCount %d, %d refunds", no, o.RefundCount, len(rs))
	}
	if len(rs) > 0 && !o.Status.Paid() {
		t.Fatalf("%s: %s with refunds", no, o.Status)
	}

	// I5: one order.paid event per paid order, none for the others; one
	// refund.succeeded per successful refund.
	ob, err := s.OutboxFor(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	paid := slices.IndexFunc(ob, func(e *merchant.OutboxEvent) bool { return e.Type == merchant.EventOrderPaid })
	count := map[string]int{}
	for _, e := range ob {
		count[e.Type]++
	}
	wantPaid := 0
	if o.Status.Paid() {
		wantPaid = 1
	}
	if count[merchant.EventOrderPaid] != wantPaid || count[merchant.EventRefundSucceded] != succeeded {
		t.Fatalf("%s (%s, %d refunds succeeded): outbox %v", no, o.Status, succeeded, count)
	}
	if paid >= 0 && ob[paid].Ref != no {
		t.Fatalf("%s: order.paid ref %q", no, ob[paid].Ref)
	}
}

var _ tb = (*rapid.T)(nil)
