package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

func testAnomalies(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	add := func(no string, kind merchant.AnomalyKind, ref string, d time.Duration, want bool) {
		t.Helper()
		isNew, err := s.RecordAnomaly(ctx, &merchant.Anomaly{OutTradeNo: no, Kind: kind, Ref: ref, Detail: "d " + ref, CreatedAt: at(d)})
		if err != nil || isNew != want {
			t.Fatalf("RecordAnomaly(%s, %s, %s) = %v, %v; want %v", no, kind, ref, isNew, err, want)
		}
	}
	add("A1", merchant.AnomalyAmount, "tx1", 1*time.Minute, true)
	add("A1", merchant.AnomalyAmount, "tx1", 2*time.Minute, false)
	add("A1", merchant.AnomalyAmount, "tx2", 3*time.Minute, true)
	add("A1", merchant.AnomalyApp, "tx1", 4*time.Minute, true)
	add("A2", merchant.AnomalyAmount, "tx1", 5*time.Minute, true)
	add("A3", merchant.AnomalyRefundMismatch, "RF9", 6*time.Minute, true)
	add("A3", merchant.AnomalyRefundMismatch, "", 7*time.Minute, true)
	add("A3", merchant.AnomalyRefundMismatch, "", 8*time.Minute, false)

	as := anomalies(t, s, "A1")
	equal(t, "A1, newest first", anomalyKinds(as), []string{"app_mismatch:tx1", "amount_mismatch:tx2", "amount_mismatch:tx1"})
	a := as[2]
	if a.ID == 0 || a.OutTradeNo != "A1" || a.Detail != "d tx1" || !a.CreatedAt.Equal(at(time.Minute)) {
		t.Fatalf("anomaly = %+v", a)
	}
	all, err := s.Anomalies(ctx, "", 100)
	if err != nil || len(all) != 6 || all[0].OutTradeNo != "A3" || all[5].OutTradeNo != "A1" {
		t.Fatalf("all anomalies: %d, %v", len(all), err)
	}
	limited, err := s.Anomalies(ctx, "", 2)
	if err != nil || len(limited) != 2 || limited[0].ID != all[0].ID || limited[1].ID != all[1].ID {
		t.Fatalf("limited: %v, %v", limited, err)
	}
	if as := anomalies(t, s, "none"); len(as) != 0 {
		t.Fatalf("anomalies of none: %v", as)
	}
}

func testOutbox(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	for i := range 3 {
		no := fmt.Sprintf("OB%d", i)
		o := create(t, s, newOrder(no, 100))
		if _, _, err := s.MarkPaid(ctx, payment(o, "tx-"+no), at(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(evs []*merchant.OutboxEvent, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Ref)
		}
		return out
	}
	equal(t, "due at 1m", ids(s.PendingOutbox(ctx, at(time.Minute), 10)), []string{"OB0", "OB1"})
	equal(t, "due at 1h", ids(s.PendingOutbox(ctx, at(time.Hour), 10)), []string{"OB0", "OB1", "OB2"})
	equal(t, "limit", ids(s.PendingOutbox(ctx, at(time.Hour), 1)), []string{"OB0"})

	ob0 := outbox(t, s, "OB0")[0]
	// A failed delivery: tried again at next.
	if err := s.MarkOutbox(ctx, ob0.ID, false, at(30*time.Minute), "HTTP 502", at(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	e := outbox(t, s, "OB0")[0]
	if e.Attempts != 1 || !e.NextAt.Equal(at(30*time.Minute)) || e.LastError != "HTTP 502" || !e.DeliveredAt.IsZero() {
		t.Fatalf("after failure: %+v", e)
	}
	equal(t, "due at 20m", ids(s.PendingOutbox(ctx, at(20*time.Minute), 10)), []string{"OB1", "OB2"})
	equal(t, "due at 30m", ids(s.PendingOutbox(ctx, at(30*time.Minute), 10)), []string{"OB1", "OB2", "OB0"})

	// Delivered: never pending again.
	if err := s.MarkOutbox(ctx, ob0.ID, true, time.Time{}, "", at(31*time.Minute)); err != nil {
		t.Fatal(err)
	}
	e = outbox(t, s, "OB0")[0]
	if e.Attempts != 2 || !e.DeliveredAt.Equal(at(31*time.Minute)) || e.LastError != "" {
		t.Fatalf("after delivery: %+v", e)
	}
	equal(t, "due after delivery", ids(s.PendingOutbox(ctx, at(48*time.Hour), 10)), []string{"OB1", "OB2"})
	if err := s.MarkOutbox(ctx, outbox(t, s, "OB1")[0].ID, true, time.Time{}, "", at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	equal(t, "due at the end", ids(s.PendingOutbox(ctx, at(48*time.Hour), 10)), []string{"OB2"})

	wantCode(t, s.MarkOutbox(ctx, 987654321, true, time.Time{}, "", t0), merchant.ENOTFOUND, "")
	if evs := outbox(t, s, "none"); len(evs) != 0 {
		t.Fatalf("outbox of none: %v", evs)
	}
}

func testSessions(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	in := &merchant.Session{TokenHash: "h1", OpenID: "oUser1", AppID: appID, CreatedAt: t0, ExpiresAt: at(2 * time.Hour)}
	if err := s.CreateSession(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, "h1", at(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "session", *got, *in)
	// Expired at ExpiresAt.
	_, err = s.Session(ctx, "h1", at(2*time.Hour))
	wantCode(t, err, merchant.EUNAUTHORIZED, "")
	_, err = s.Session(ctx, "h1", at(3*time.Hour))
	wantCode(t, err, merchant.EUNAUTHORIZED, "")
	if _, err := s.Session(ctx, "h1", at(2*time.Hour-time.Microsecond)); err != nil {
		t.Fatalf("a microsecond before expiry: %v", err)
	}
	_, err = s.Session(ctx, "nope", t0)
	wantCode(t, err, merchant.EUNAUTHORIZED, "")
	wantCode(t, s.CreateSession(ctx, in), merchant.ECONFLICT, "")
}

func testRecon(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	_, err := s.Recon(ctx, "2026-11-28")
	wantCode(t, err, merchant.ENOTFOUND, "")
	r := &merchant.ReconReport{Date: "2026-11-28", BillRows: 10, Matched: 8, Exceptions: 2, Healed: 1,
		BillTotal: 1_000_000_000_001, LocalTotal: 999, BillRefunds: 5, RanAt: at(time.Hour)}
	if err := s.SaveRecon(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recon(ctx, "2026-11-28")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "report", *got, *r)
	// Replaced by a later run.
	r2 := *r
	r2.Matched, r2.Exceptions, r2.Healed, r2.RanAt = 10, 0, 0, at(2*time.Hour)
	if err := s.SaveRecon(ctx, &r2); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Recon(ctx, "2026-11-28")
	equal(t, "replaced", *got, r2)

	add := func(e merchant.ReconException, want bool) {
		t.Helper()
		isNew, err := s.AddReconException(ctx, &e)
		if err != nil || isNew != want {
			t.Fatalf("AddReconException(%+v) = %v, %v; want %v", e, isNew, err, want)
		}
	}
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconMissingLocal, OutTradeNo: "E1", Detail: "long", Healed: true, CreatedAt: at(time.Hour)}, true)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconMissingLocal, OutTradeNo: "E1", Detail: "again", CreatedAt: at(2 * time.Hour)}, false)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconAmount, OutTradeNo: "E1", Detail: "1 fen", CreatedAt: at(time.Hour)}, true)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconRefundOneSide, OutTradeNo: "E1", OutRefundNo: "RF1", CreatedAt: at(time.Hour)}, true)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconRefundOneSide, OutTradeNo: "E1", OutRefundNo: "RF2", CreatedAt: at(time.Hour)}, true)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconRefundOneSide, OutTradeNo: "E1", OutRefundNo: "RF2", CreatedAt: at(time.Hour)}, false)
	add(merchant.ReconException{Date: "2026-11-29", Kind: merchant.ReconMissingLocal, OutTradeNo: "E1", CreatedAt: at(time.Hour)}, true)
	// A later run that healed RF1 marks it healed (once).
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconRefundOneSide, OutTradeNo: "E1", OutRefundNo: "RF1", Detail: "healed by a query", Healed: true, CreatedAt: at(3 * time.Hour)}, true)
	add(merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconRefundOneSide, OutTradeNo: "E1", OutRefundNo: "RF1", Healed: true, CreatedAt: at(4 * time.Hour)}, false)

	list := func(date string) []string {
		t.Helper()
		es, err := s.ReconExceptions(ctx, date)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s/%s/%s/%s/%v", e.Date, e.Kind, e.OutTradeNo, e.OutRefundNo, e.Healed))
		}
		return out
	}
	equal(t, "2026-11-28", list("2026-11-28"), []string{
		"2026-11-28/missing_local/E1//true",
		"2026-11-28/amount_differs/E1//false",
		"2026-11-28/refund_one_side/E1/RF1/true",
		"2026-11-28/refund_one_side/E1/RF2/false",
	})
	equal(t, "open", list(""), []string{
		"2026-11-28/amount_differs/E1//false",
		"2026-11-28/refund_one_side/E1/RF2/false",
		"2026-11-29/missing_local/E1//false",
	})
	equal(t, "none", list("2020-01-01"), []string(nil))
	es, _ := s.ReconExceptions(ctx, "2026-11-28")
	if e := es[0]; e.ID == 0 || e.Detail != "long" || !e.CreatedAt.Equal(at(time.Hour)) {
		t.Fatalf("exception = %+v", e)
	}
}

// testPaidBetween: [from, to) by the time WeChat says the order was paid,
// whatever the status now; refunds by their creation.
func testPaidBetween(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	from, to := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 16, 0, 0, 0, time.UTC) // one CST day
	pay := func(no string, paidAt time.Time) {
		t.Helper()
		o := newOrder(no, 100)
		o.CreatedAt = from.Add(-time.Hour)
		o = create(t, s, o)
		p := payment(o, "tx-"+no)
		p.PaidAt = paidAt
		// Recorded much later than paid: the paid time counts.
		if out, _, err := s.MarkPaid(ctx, p, to.Add(time.Hour)); err != nil || out != merchant.PayApplied {
			t.Fatalf("MarkPaid(%s) = %v, %v", no, out, err)
		}
	}
	pay("PB-before", from.Add(-time.Microsecond))
	pay("PB-first", from)
	pay("PB-mid", from.Add(12*time.Hour))
	pay("PB-last", to.Add(-time.Microsecond))
	pay("PB-after", to)
	create(t, s, newOrder("PB-unpaid", 100))
	// A late payment counts on the day it was paid.
	late := create(t, s, newOrder("PB-late", 100))
	if _, err := s.MarkClosed(ctx, "PB-late", merchant.OrderClosed, "close", from); err != nil {
		t.Fatal(err)
	}
	lp := payment(late, "tx-PB-late")
	lp.PaidAt = from.Add(time.Hour)
	if out, _, err := s.MarkPaid(ctx, lp, to.Add(2*time.Hour)); err != nil || out != merchant.PayLate {
		t.Fatalf("MarkPaid(late) = %v, %v", out, err)
	}
	// Refunds: created in and out of the window; a refunded order still
	// counts as paid.
	refund := func(no, order string, created time.Time) {
		t.Helper()
		if _, _, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: no, OutTradeNo: order, RefundFee: 10}, created); err != nil {
			t.Fatal(err)
		}
	}
	refund("RB-before", "PB-before", from.Add(-time.Microsecond))
	refund("RB-first", "PB-mid", from)
	refund("RB-last", "PB-mid", to.Add(-time.Microsecond))
	refund("RB-after", "PB-mid", to)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "RB-first", To: merchant.RefundSuccess, Now: to.Add(time.Hour)}, true)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "RB-last", To: merchant.RefundFailed, Now: to.Add(time.Hour)}, true)

	orders, refunds, err := s.PaidBetween(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var os, rs []string
	var sum int64
	for _, o := range orders {
		os = append(os, o.OutTradeNo)
		sum += o.TotalFee
	}
	for _, r := range refunds {
		rs = append(rs, fmt.Sprintf("%s:%s", r.OutRefundNo, r.Status))
	}
	equal(t, "orders", os, []string{"PB-first", "PB-late", "PB-mid", "PB-last"})
	equal(t, "Σ paid", sum, int64(400))
	equal(t, "refunds", rs, []string{"RB-first:SUCCESS", "RB-last:FAILED"})
	if orders[2].Status != merchant.OrderRefund {
		t.Fatalf("PB-mid is %s", orders[2].Status)
	}

	orders, refunds, err = s.PaidBetween(ctx, to.Add(time.Hour), to.Add(2*time.Hour))
	if err != nil || len(orders) != 0 || len(refunds) != 0 {
		t.Fatalf("empty window: %v, %v, %v", orders, refunds, err)
	}
}
