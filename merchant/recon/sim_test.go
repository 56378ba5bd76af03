package recon_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestReconcileAgainstSimulator runs reconciliation end to end: orders
// placed and paid through the real gateway and SDK against the simulator
// (no notify ever arrives), the bill generated from the simulator's ledger
// with discrepancies injected, downloaded, parsed and compared. Afterwards
// our records agree with the simulator's ledger wherever the bill did
// (reliability.md E1, I1, I2, I7).
func TestReconcileAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 28, 9, 0, 0, 0, wxpay.China)
	srv := wxpaytest.NewServer(t, wxpaytest.WithManualClock(start),
		wxpaytest.WithConfig(func(c *wxsim.Config) { c.RefundDelay = time.Minute; c.BillCreatingUntil = 10 * time.Hour }))
	srv.Sim.NotifyDrop(1000) // every notify is lost: only queries tell us
	gw, err := wxgateway.New(wxgateway.Config{Pay: srv.Pay, Login: srv.Login, NotifyURL: "http://127.0.0.1:9/wxpay/notify/pay"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sim.db"), sqlite.WithNow(srv.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := payments.New(store, gw, payments.Config{
		Catalog: merchant.Catalog{"latte": {SKU: "latte", Name: "Latte", Price: 2800}, "tea": {SKU: "tea", Name: "Tea", Price: 1500}},
		Now:     srv.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := recon.New(svc, recon.Options{})
	sess := &merchant.Session{OpenID: srv.NewUser(t), AppID: srv.AppID}

	// place creates an order through unifiedorder; the user pays it in the
	// simulator; sync, when set, lets us learn it by a query.
	place := func(sku string, qty int64, sync bool) *merchant.Order {
		t.Helper()
		res, err := svc.CreateOrder(ctx, sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: sku, Quantity: qty}}})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := srv.Sim.PayOrder(srv.MchID, res.Order.OutTradeNo, "", wxsim.OutcomeSuccess); err != nil || r.TransactionID == "" {
			t.Fatalf("pay %s: %+v %v", res.Order.OutTradeNo, r, err)
		}
		srv.Clock.Advance(time.Minute)
		if !sync {
			return res.Order
		}
		o, err := svc.Sync(ctx, res.Order.OutTradeNo)
		if err != nil || o.Status != merchant.OrderPaid {
			t.Fatalf("sync %s: %+v %v", res.Order.OutTradeNo, o, err)
		}
		return o
	}
	fine := place("latte", 1, true)
	lost := place("tea", 2, false) // the notify was lost and nobody queried
	short := place("latte", 2, true)
	amount := place("tea", 1, true)
	refunded := place("latte", 3, true)
	rf, err := svc.Refund(ctx, payments.RefundRequest{OutTradeNo: refunded.OutTradeNo, RefundFee: 1000, Reason: "test"})
	if err != nil || rf.Status != merchant.RefundProcessing {
		t.Fatalf("refund: %+v %v", rf, err)
	}
	// An unpaid order: in no bill, closed by nobody here — not a difference.
	if _, err := svc.CreateOrder(ctx, sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: "tea", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}

	srv.Sim.SetBillMutator(func(_ string, _ time.Time, rows []wxsim.BillRow) []wxsim.BillRow {
		var out []wxsim.BillRow
		for _, r := range rows {
			switch {
			case r.OutTradeNo == short.OutTradeNo && !r.Refund:
				continue // "short": a payment of ours missing from the bill
			case r.OutTradeNo == amount.OutTradeNo && !r.Refund:
				r.TotalFee--
				r.Settlement--
			}
			out = append(out, r)
		}
		base := rows[0]
		ghost := base
		ghost.OutTradeNo, ghost.TransactionID = "GHOST0000000001", "4200009999202611289999999999"
		ghost.TotalFee, ghost.Settlement, ghost.Time = 4200, 4200, start.Add(3*time.Hour)
		theirs := base
		theirs.Refund, theirs.TradeState = true, string(wxpay.TradeStateRefund)
		theirs.OutTradeNo, theirs.TransactionID = refunded.OutTradeNo, refunded.TransactionID
		theirs.OutRefundNo, theirs.RefundID = "THEIRREFUND0001", "50300099992026112899999999999"
		theirs.RefundFee, theirs.RefundApplied, theirs.RefundStatus = 500, 500, string(wxpay.RefundStatusSuccess)
		theirs.Settlement, theirs.TotalFee, theirs.Time = 0, 0, start.Add(4*time.Hour)
		return append(out, ghost, theirs)
	})

	// Before 10:00 the next day the bill is still being made.
	srv.Clock.Advance(time.Date(2026, 11, 29, 9, 30, 0, 0, wxpay.China).Sub(srv.Clock.Now()))
	if _, _, err := rec.Reconcile(ctx, "2026-11-28"); !isNotReady(err) {
		t.Fatalf("Reconcile at 09:30 = %v, want not ready", err)
	}
	srv.Clock.Advance(time.Hour)

	rep, found, err := rec.Reconcile(ctx, "2026-11-28")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"amount_differs " + amount.OutTradeNo,
		"missing_in_bill " + short.OutTradeNo,
		"missing_local " + lost.OutTradeNo + " healed",
		"refund_one_side " + refunded.OutTradeNo + " THEIRREFUND0001",
		"unknown_order GHOST0000000001",
	}
	slices.Sort(want)
	if got := keys(found); !slices.Equal(got, want) {
		t.Fatalf("exceptions:\n got %q\nwant %q", got, want)
	}
	paidTotal := fine.TotalFee + lost.TotalFee + short.TotalFee + amount.TotalFee + refunded.TotalFee
	if rep.LocalTotal != paidTotal || rep.BillTotal != paidTotal-short.TotalFee-1+4200 || rep.BillRefunds != 1500 {
		t.Errorf("report %+v; paid %d", *rep, paidTotal)
	}

	// I1/I2: every order the simulator says was paid is paid here, with
	// the same amount and transaction; the day's sums agree.
	var simPaid int64
	for _, so := range srv.Sim.Orders(srv.MchID) {
		o, err := store.Order(ctx, so.OutTradeNo)
		if err != nil {
			t.Fatal(err)
		}
		if so.Paid != o.Status.Paid() || so.Paid && (o.TotalFee != so.TotalFee || o.TransactionID != so.TransactionID) {
			t.Errorf("I1: %s is %s here (%d fen, %s), %s at WeChat (%d fen, %s)", o.OutTradeNo, o.Status, o.TotalFee,
				o.TransactionID, so.State, so.TotalFee, so.TransactionID)
		}
		if so.Paid {
			simPaid += so.TotalFee
		}
	}
	if simPaid != rep.LocalTotal {
		t.Errorf("I2: the simulator took %d fen, we booked %d", simPaid, rep.LocalTotal)
	}

	// Again: nothing new.
	before, _ := store.ReconExceptions(ctx, "2026-11-28")
	_, found2, err := rec.Reconcile(ctx, "2026-11-28")
	if err != nil {
		t.Fatal(err)
	}
	after, _ := store.ReconExceptions(ctx, "2026-11-28")
	if len(after) != len(before) || len(found2) != len(want)-1 {
		t.Fatalf("second run: %d stored before, %d after; found %q", len(before), len(after), keys(found2))
	}
}

func isNotReady(err error) bool {
	_, ok := err.(*recon.NotReadyError)
	return ok
}
