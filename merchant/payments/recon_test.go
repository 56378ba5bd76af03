package payments_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/wxsim"
)

const (
	day1 = "2026-11-28"
	day2 = "2026-11-29"
)

// toNextMorning moves the clock to 10:30 China time of the next day, when
// WeChat serves yesterday's bill.
func (h *harness) toNextMorning() {
	now := h.clock.Now().In(wxpay.China)
	y, m, d := now.Date()
	h.advance(time.Date(y, m, d+1, 10, 30, 0, 0, wxpay.China).Sub(now))
}

func excKeys(list []*merchant.ReconException) []string {
	var out []string
	for _, e := range list {
		out = append(out, fmt.Sprintf("%s %s %s healed=%v", e.Kind, e.OutTradeNo, e.OutRefundNo, e.Healed))
	}
	sort.Strings(out)
	return out
}

// TestE1ReconDiscrepancies: the simulator's bill of a day is changed
// (SetBillMutator) to hold every kind of difference reliability.md E1
// lists; reconciliation finds exactly those, heals the payment it can
// prove (through a query, with its audit event), and running it again adds
// nothing.
func TestE1ReconDiscrepancies(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		o1 := h.paidOrder(sess, oneCoffee) // matched
		res := h.create(sess, oneCoffee)   // paid, its notify lost: "long"
		h.sim.NotifyDrop(1)
		h.payAtSim(sess, res)
		o2 := h.order(res.Order.OutTradeNo)
		o3 := h.paidOrder(sess, oneCoffee) // missing from the bill: "short"
		o4 := h.paidOrder(sess, oneCoffee) // one fen less in the bill
		o5 := h.paidOrder(sess, oneCoffee) // its refund missing from the bill
		r5, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o5.OutTradeNo, RefundFee: 500})
		if err != nil {
			t.Fatal(err)
		}
		h.advance(11 * time.Second) // the refund succeeds, its notify comes
		if r := h.refund(r5.OutRefundNo); r.Status != merchant.RefundSuccess {
			t.Fatalf("refund %s", r.Status)
		}
		// A trade at the day boundary: ordered 23:59:00, paid 00:00:30.
		h.advance(time.Date(2026, 11, 28, 23, 59, 0, 0, wxpay.China).Sub(h.clock.Now()))
		res6 := h.create(sess, oneCoffee)
		h.advance(90 * time.Second)
		h.payAtSim(sess, res6)
		if o := h.order(res6.Order.OutTradeNo); day(o.PaidAt) != day2 {
			t.Fatalf("paid %s", o.PaidAt)
		}

		h.sim.SetBillMutator(func(_ string, d time.Time, rows []wxsim.BillRow) []wxsim.BillRow {
			if d.Format(time.DateOnly) != day1 {
				return rows
			}
			var out []wxsim.BillRow
			var tmpl wxsim.BillRow
			for _, r := range rows {
				switch {
				case !r.Refund && r.OutTradeNo == o3.OutTradeNo:
					continue // short
				case r.Refund && r.OutRefundNo == r5.OutRefundNo:
					continue // refund only here
				case !r.Refund && r.OutTradeNo == o4.OutTradeNo:
					r.TotalFee--
					r.Settlement--
				case !r.Refund && r.OutTradeNo == o1.OutTradeNo:
					tmpl = r
				}
				out = append(out, r)
			}
			never := tmpl
			never.OutTradeNo, never.TransactionID = "WXNEVERISSUED00001", "4200000000202611280000000999"
			refund := tmpl
			refund.Refund, refund.TradeState, refund.OutRefundNo, refund.RefundID = true, "REFUND", "RFBILLONLY000001", "50300000000000000000000000999"
			refund.RefundFee, refund.RefundApplied, refund.RefundStatus, refund.RefundType = 100, 100, "SUCCESS", "ORIGINAL"
			refund.Settlement, refund.TotalFee, refund.Fee = 0, 0, -1
			return append(out, never, refund)
		})
		h.toNextMorning()

		want := []string{
			fmt.Sprintf("%s %s  healed=true", merchant.ReconMissingLocal, o2.OutTradeNo),
			fmt.Sprintf("%s %s  healed=false", merchant.ReconMissingBill, o3.OutTradeNo),
			fmt.Sprintf("%s %s  healed=false", merchant.ReconAmount, o4.OutTradeNo),
			fmt.Sprintf("%s %s %s healed=false", merchant.ReconRefundOneSide, o5.OutTradeNo, r5.OutRefundNo),
			fmt.Sprintf("%s %s  healed=false", merchant.ReconUnknownOrder, "WXNEVERISSUED00001"),
			fmt.Sprintf("%s %s %s healed=false", merchant.ReconRefundOneSide, o1.OutTradeNo, "RFBILLONLY000001"),
		}
		sort.Strings(want)
		for run := range 2 {
			_, found, err := h.rec.Reconcile(h.ctx, day1)
			if err != nil {
				t.Fatal(err)
			}
			wantFound := want
			if run > 0 { // healed: the payment now matches
				wantFound = slices.DeleteFunc(slices.Clone(want), func(k string) bool { return strings.HasSuffix(k, "healed=true") })
			}
			if got := excKeys(found); !slices.Equal(got, wantFound) {
				t.Fatalf("run %d found\n%v\nwant\n%v", run+1, got, wantFound)
			}
			stored, err := h.base.ReconExceptions(h.ctx, day1)
			if err != nil {
				t.Fatal(err)
			}
			if got := excKeys(stored); !slices.Equal(got, want) {
				t.Fatalf("run %d stored\n%v\nwant\n%v", run+1, got, want)
			}
		}
		// The healed payment went through a query, with its audit event.
		h.wantOnePayment(o2.OutTradeNo)
		if ev := h.events(o2.OutTradeNo); ev[0].Source != string(merchant.SourceQuery) {
			t.Fatalf("healed by %q", ev[0].Source)
		}
		// The next day's bill has the boundary trade, and nothing else to say.
		if _, found, err := h.rec.Reconcile(h.ctx, day2); err != nil || len(found) != 0 {
			t.Fatalf("day 2: %v %v", excKeys(found), err)
		}
		h.reconciled[day1], h.reconciled[day2] = true, true
		h.finish()
	})
}

func day(t time.Time) string { return t.In(wxpay.China).Format(time.DateOnly) }

// TestE2BillStrict: a bill that cannot be read whole — cut short in
// transit, or inconsistent — is an error, and nothing of the day is
// reconciled (no report, no exception); the whole bill then reconciles.
func TestE2BillStrict(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk)
		sess := h.user()
		a := h.paidOrder(sess, oneCoffee)
		h.paidOrder(sess, []merchant.CartLine{{SKU: "TEA", Quantity: 3}})
		h.toNextMorning()
		cut := func(n func(int) int) {
			fn := func(path string, body []byte) []byte {
				if path == "/pay/downloadbill" {
					return body[:n(len(body))]
				}
				return body
			}
			h.simFr.truncate.Store(&fn)
		}
		mutate := func(f func(rows []wxsim.BillRow) []wxsim.BillRow) {
			h.simFr.truncate.Store(nil)
			h.sim.SetBillMutator(func(_ string, _ time.Time, rows []wxsim.BillRow) []wxsim.BillRow { return f(rows) })
		}
		cases := []struct {
			name  string
			setup func()
		}{
			{"cut in half", func() { cut(func(n int) int { return n / 2 }) }},
			{"gzip trailer missing", func() { cut(func(n int) int { return n - 8 }) }},
			{"last bytes missing", func() { cut(func(n int) int { return n - 1 }) }},
			{"a row dated the next day", func() {
				mutate(func(rows []wxsim.BillRow) []wxsim.BillRow {
					rows[0].Time = rows[0].Time.Add(24 * time.Hour)
					return rows
				})
			}},
			{"a payment listed twice", func() {
				mutate(func(rows []wxsim.BillRow) []wxsim.BillRow { return append(rows, rows[0]) })
			}},
			{"a zero amount", func() {
				mutate(func(rows []wxsim.BillRow) []wxsim.BillRow {
					rows[0].TotalFee, rows[0].Settlement = 0, 0
					return rows
				})
			}},
		}
		for _, c := range cases {
			c.setup()
			rep, found, err := h.rec.Reconcile(h.ctx, day1)
			if err == nil {
				t.Fatalf("%s: reconciled: %+v, %d exceptions", c.name, rep, len(found))
			}
			if _, err := h.base.Recon(h.ctx, day1); errCode(err) != merchant.ENOTFOUND {
				t.Fatalf("%s: a report was saved (%v)", c.name, err)
			}
			if list, _ := h.base.ReconExceptions(h.ctx, day1); len(list) != 0 {
				t.Fatalf("%s: exceptions %v", c.name, excKeys(list))
			}
		}
		h.simFr.truncate.Store(nil)
		h.sim.SetBillMutator(nil)
		rep, found, err := h.rec.Reconcile(h.ctx, day1)
		if err != nil || len(found) != 0 || rep.BillRows != 2 || rep.Matched != 2 || rep.BillTotal != a.TotalFee+3*990 {
			t.Fatalf("the whole bill: %+v %v %v", rep, excKeys(found), err)
		}
		h.reconciled[day1] = true
		h.finish()
	})
}
