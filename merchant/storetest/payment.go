package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

func testMarkPaidApplied(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	o := create(t, s, newOrder("T1", 8800))
	p := payment(o, "4200000001")
	p.PaidAt = time.Date(2026, 11, 28, 18, 1, 2, 0, time.FixedZone("CST", 8*3600))
	p.CashFee = 8000 // a coupon: the order total is what counts
	now := at(90 * time.Second)

	out, got, err := s.MarkPaid(ctx, p, now)
	if err != nil || out != merchant.PayApplied {
		t.Fatalf("MarkPaid = %v, %v; want applied", out, err)
	}
	want := *o
	want.Status, want.TransactionID, want.PaidAt, want.UpdatedAt = merchant.OrderPaid, "4200000001", p.PaidAt.UTC(), now
	equalOrder(t, "returned order", got, &want)
	equalOrder(t, "stored order", getOrder(t, s, "T1"), &want)

	evs, err := s.Events(ctx, "T1")
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events = %v, %v", evs, err)
	}
	if e := evs[0]; e.From != merchant.OrderNotPay || e.To != merchant.OrderPaid || e.Source != "notify" || !e.At.Equal(now) {
		t.Fatalf("event = %+v", e)
	}
	ob := outbox(t, s, "T1")
	if len(ob) != 1 {
		t.Fatalf("outbox = %+v; want one event", ob)
	}
	e := ob[0]
	if e.ID == 0 || e.Type != merchant.EventOrderPaid || e.OutTradeNo != "T1" || e.Ref != "T1" || !e.CreatedAt.Equal(now) ||
		e.NextAt.After(now) || e.Attempts != 0 || !e.DeliveredAt.IsZero() || e.LastError != "" {
		t.Fatalf("outbox event = %+v", e)
	}
	var payload struct {
		OutTradeNo    string    `json:"out_trade_no"`
		TransactionID string    `json:"transaction_id"`
		TotalFee      int64     `json:"total_fee"`
		PaidAt        time.Time `json:"paid_at"`
	}
	if err := json.Unmarshal([]byte(e.Payload), &payload); err != nil {
		t.Fatalf("payload %s: %v", e.Payload, err)
	}
	if payload.OutTradeNo != "T1" || payload.TransactionID != "4200000001" || payload.TotalFee != 8800 || !payload.PaidAt.Equal(p.PaidAt) {
		t.Fatalf("payload = %s", e.Payload)
	}
	if as := anomalies(t, s, "T1"); len(as) != 0 {
		t.Fatalf("anomalies = %v", anomalyKinds(as))
	}

	// A payment without a time (some queries): paid at now.
	o2 := create(t, s, newOrder("T2", 100))
	p2 := payment(o2, "4200000002")
	p2.PaidAt, p2.Source, p2.FeeType = time.Time{}, merchant.SourceQuery, ""
	out, got, err = s.MarkPaid(ctx, p2, now)
	if err != nil || out != merchant.PayApplied || !got.PaidAt.Equal(now) {
		t.Fatalf("MarkPaid(no time) = %v, %+v, %v", out, got, err)
	}
	if evs, _ := s.Events(ctx, "T2"); len(evs) != 1 || evs[0].Source != "query" {
		t.Fatalf("events = %+v", evs)
	}
}

func testMarkPaidDuplicate(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	paid := createPaid(t, s, "D1", 100)
	for i := range 3 {
		p := payment(paid, "tx-D1")
		p.Source = merchant.SourceQuery
		out, got, err := s.MarkPaid(ctx, p, at(time.Duration(i+2)*time.Minute))
		if err != nil || out != merchant.PayDuplicate {
			t.Fatalf("MarkPaid again = %v, %v; want duplicate", out, err)
		}
		equalOrder(t, "duplicate", got, paid)
	}
	equalOrder(t, "stored", getOrder(t, s, "D1"), paid)
	equal(t, "events", events(t, s, "D1"), []string{"NOTPAY>PAID"})
	if ob := outbox(t, s, "D1"); len(ob) != 1 {
		t.Fatalf("outbox = %d events; want 1", len(ob))
	}

	// Still a duplicate once refunding.
	if _, _, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "R1", OutTradeNo: "D1", RefundFee: 10}, at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: "R1", To: merchant.RefundProcessing, Now: at(time.Hour)}); err != nil || !ok {
		t.Fatalf("UpdateRefund = %v, %v", ok, err)
	}
	out, got, err := s.MarkPaid(ctx, payment(paid, "tx-D1"), at(2*time.Hour))
	if err != nil || out != merchant.PayDuplicate || got.Status != merchant.OrderRefund {
		t.Fatalf("MarkPaid(REFUND order) = %v, %v, %v; want duplicate", out, got, err)
	}
	if as := anomalies(t, s, "D1"); len(as) != 0 {
		t.Fatalf("anomalies = %v", anomalyKinds(as))
	}
}

func testMarkPaidLate(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	for _, closed := range []merchant.OrderStatus{merchant.OrderClosed, merchant.OrderPayError} {
		t.Run(string(closed), func(t *testing.T) {
			no := "late-" + string(closed)
			o := create(t, s, newOrder(no, 500))
			if ok, err := s.MarkClosed(ctx, no, closed, "close", at(time.Hour)); err != nil || !ok {
				t.Fatalf("MarkClosed = %v, %v", ok, err)
			}
			p := payment(o, "tx-late-"+no)
			out, got, err := s.MarkPaid(ctx, p, at(2*time.Hour))
			if err != nil || out != merchant.PayLate {
				t.Fatalf("MarkPaid(%s) = %v, %v; want late", closed, out, err)
			}
			if got.Status != merchant.OrderPaid || got.TransactionID != p.TransactionID || !got.PaidAt.Equal(p.PaidAt) {
				t.Fatalf("order = %+v", got)
			}
			equalOrder(t, "stored", getOrder(t, s, no), got)
			equal(t, "events", events(t, s, no), []string{"NOTPAY>" + string(closed), string(closed) + ">PAID"})
			if ob := outbox(t, s, no); len(ob) != 1 || ob[0].Type != merchant.EventOrderPaid {
				t.Fatalf("outbox = %+v", ob)
			}
			equal(t, "anomalies", anomalyKinds(anomalies(t, s, no)), []string{"late_payment:" + p.TransactionID})

			// The same notify again is a duplicate: no second anomaly.
			out, _, err = s.MarkPaid(ctx, p, at(3*time.Hour))
			if err != nil || out != merchant.PayDuplicate {
				t.Fatalf("MarkPaid again = %v, %v; want duplicate", out, err)
			}
			if as := anomalies(t, s, no); len(as) != 1 {
				t.Fatalf("anomalies = %v", anomalyKinds(as))
			}
		})
	}
}

func testMarkPaidRejected(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	tests := []struct {
		name   string
		change func(p *merchant.Payment)
		kind   merchant.AnomalyKind
	}{
		{"amount", func(p *merchant.Payment) { p.TotalFee-- }, merchant.AnomalyAmount},
		{"amount above", func(p *merchant.Payment) { p.TotalFee++ }, merchant.AnomalyAmount},
		{"app", func(p *merchant.Payment) { p.AppID = "wxOther" }, merchant.AnomalyApp},
		{"merchant", func(p *merchant.Payment) { p.MchID = "1900000109" }, merchant.AnomalyMerchant},
		{"currency", func(p *merchant.Payment) { p.FeeType = "USD" }, merchant.AnomalyCurrency},
		{"no transaction id", func(p *merchant.Payment) { p.TransactionID = "" }, merchant.AnomalyMalformed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			no := fmt.Sprintf("X%d", i)
			o := create(t, s, newOrder(no, 1000))
			p := payment(o, "tx-"+no)
			tt.change(p)
			out, got, err := s.MarkPaid(ctx, p, at(time.Hour))
			if err != nil || out != merchant.PayRejected {
				t.Fatalf("MarkPaid = %v, %v; want rejected", out, err)
			}
			equalOrder(t, "returned order", got, o)
			equalOrder(t, "stored order", getOrder(t, s, no), o)
			equal(t, "events", events(t, s, no), []string(nil))
			if ob := outbox(t, s, no); len(ob) != 0 {
				t.Fatalf("outbox = %+v", ob)
			}
			as := anomalies(t, s, no)
			equal(t, "anomalies", anomalyKinds(as), []string{string(tt.kind) + ":" + p.TransactionID})
			if a := as[0]; a.ID == 0 || a.OutTradeNo != no || a.Detail == "" || !a.CreatedAt.Equal(at(time.Hour)) {
				t.Fatalf("anomaly = %+v", a)
			}
			// The order can still be paid by the right payment.
			if out, _, err := s.MarkPaid(ctx, payment(o, "tx-"+no), at(2*time.Hour)); err != nil || out != merchant.PayApplied {
				t.Fatalf("MarkPaid(right) = %v, %v; want applied", out, err)
			}
		})
	}

	t.Run("unknown order", func(t *testing.T) {
		p := payment(newOrder("NEVER", 100), "tx-never")
		out, got, err := s.MarkPaid(ctx, p, at(time.Hour))
		if err != nil || out != merchant.PayRejected || got != nil {
			t.Fatalf("MarkPaid = %v, %v, %v; want rejected, nil order", out, got, err)
		}
		equal(t, "anomalies", anomalyKinds(anomalies(t, s, "NEVER")), []string{"unknown_order:tx-never"})
		if _, err := s.Order(ctx, "NEVER"); merchant.ErrorCode(err) != merchant.ENOTFOUND {
			t.Fatalf("Order(NEVER) = %v", err)
		}
	})

	t.Run("another transaction id", func(t *testing.T) {
		paid := createPaid(t, s, "Y1", 1000)
		out, got, err := s.MarkPaid(ctx, payment(paid, "tx-other"), at(time.Hour))
		if err != nil || out != merchant.PayRejected {
			t.Fatalf("MarkPaid = %v, %v; want rejected", out, err)
		}
		equalOrder(t, "returned", got, paid)
		equalOrder(t, "stored", getOrder(t, s, "Y1"), paid)
		equal(t, "anomalies", anomalyKinds(anomalies(t, s, "Y1")), []string{"transaction_mismatch:tx-other"})
		equal(t, "events", events(t, s, "Y1"), []string{"NOTPAY>PAID"})
		if ob := outbox(t, s, "Y1"); len(ob) != 1 {
			t.Fatalf("outbox = %d events", len(ob))
		}
	})
}

func testMarkPaidAnomalyOnce(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	o := create(t, s, newOrder("B1", 1000))
	bad := payment(o, "tx-B1")
	bad.TotalFee = 999
	// WeChat retries a notify 15 times.
	for i := range 15 {
		out, _, err := s.MarkPaid(ctx, bad, at(time.Duration(i)*time.Minute))
		if err != nil || out != merchant.PayRejected {
			t.Fatalf("try %d: MarkPaid = %v, %v; want rejected", i, out, err)
		}
	}
	as := anomalies(t, s, "B1")
	equal(t, "anomalies", anomalyKinds(as), []string{"amount_mismatch:tx-B1"})
	if !as[0].CreatedAt.Equal(t0) {
		t.Errorf("anomaly CreatedAt = %v; want the first report's %v", as[0].CreatedAt, t0)
	}
	// Unknown orders too.
	for range 15 {
		if _, _, err := s.MarkPaid(ctx, payment(newOrder("B2", 1), "tx-B2"), t0); err != nil {
			t.Fatal(err)
		}
	}
	if as := anomalies(t, s, "B2"); len(as) != 1 {
		t.Fatalf("anomalies of an unknown order = %v", anomalyKinds(as))
	}
	// Concurrently too.
	var wg sync.WaitGroup
	for range 15 {
		wg.Go(func() {
			if _, _, err := s.MarkPaid(ctx, bad, at(time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if as := anomalies(t, s, "B1"); len(as) != 1 {
		t.Fatalf("anomalies = %v", anomalyKinds(as))
	}
	equal(t, "status", getOrder(t, s, "B1").Status, merchant.OrderNotPay)
}

func testMarkPaidTransactionOfAnotherOrder(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "G1", 100)
	o := create(t, s, newOrder("G2", 100))
	out, got, err := s.MarkPaid(ctx, payment(o, "tx-G1"), at(time.Hour))
	if err != nil || out != merchant.PayRejected {
		t.Fatalf("MarkPaid(G2, G1's transaction) = %v, %v; want rejected", out, err)
	}
	equalOrder(t, "returned", got, o)
	equalOrder(t, "stored", getOrder(t, s, "G2"), o)
	equal(t, "anomalies", anomalyKinds(anomalies(t, s, "G2")), []string{"transaction_mismatch:tx-G1"})
	equal(t, "events", events(t, s, "G2"), []string(nil))
	// G2 is still payable by its own transaction.
	if out, _, err := s.MarkPaid(ctx, payment(o, "tx-G2"), at(time.Hour)); err != nil || out != merchant.PayApplied {
		t.Fatalf("MarkPaid(G2) = %v, %v", out, err)
	}
}

// testMarkPaidConcurrent: 50 deliveries of one notify at once (A3).
func testMarkPaidConcurrent(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	o := create(t, s, newOrder("N1", 4200))
	p := payment(o, "tx-N1")
	const n = 50
	outcomes := make(chan merchant.PayOutcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			out, got, err := s.MarkPaid(ctx, p, at(time.Minute))
			if err != nil {
				t.Errorf("MarkPaid: %v", err)
				return
			}
			if got == nil || got.Status != merchant.OrderPaid || got.TransactionID != "tx-N1" {
				t.Errorf("MarkPaid returned %+v", got)
			}
			outcomes <- out
		})
	}
	close(start)
	wg.Wait()
	close(outcomes)
	count := map[merchant.PayOutcome]int{}
	for out := range outcomes {
		count[out]++
	}
	equal(t, "outcomes", count, map[merchant.PayOutcome]int{merchant.PayApplied: 1, merchant.PayDuplicate: n - 1})
	equal(t, "events", events(t, s, "N1"), []string{"NOTPAY>PAID"})
	if ob := outbox(t, s, "N1"); len(ob) != 1 {
		t.Fatalf("outbox = %d events; want 1", len(ob))
	}
	if as := anomalies(t, s, "N1"); len(as) != 0 {
		t.Fatalf("anomalies = %v", anomalyKinds(as))
	}
}

// testMarkPaidRacesClose: a notify against the close-expired job (A3):
// either the payment wins (PAID) or the close does and the payment then
// arrives late (CLOSED, then PAID with an anomaly). Never both, never lost.
func testMarkPaidRacesClose(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	seen := map[string]int{}
	for i := range 20 {
		no := fmt.Sprintf("R%02d", i)
		o := create(t, s, newOrder(no, 300))
		var (
			out    merchant.PayOutcome
			closed bool
			perr   error
			cerr   error
			wg     sync.WaitGroup
		)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			out, _, perr = s.MarkPaid(ctx, payment(o, "tx-"+no), at(time.Minute))
		})
		wg.Go(func() {
			<-start
			closed, cerr = s.MarkClosed(ctx, no, merchant.OrderClosed, "close", at(time.Minute))
		})
		close(start)
		wg.Wait()
		if perr != nil || cerr != nil {
			t.Fatalf("MarkPaid: %v; MarkClosed: %v", perr, cerr)
		}
		got := getOrder(t, s, no)
		evs := events(t, s, no)
		kinds := anomalyKinds(anomalies(t, s, no))
		if got.Status != merchant.OrderPaid || len(outbox(t, s, no)) != 1 {
			t.Fatalf("%s: status %s, %d outbox events", no, got.Status, len(outbox(t, s, no)))
		}
		switch {
		case !closed && out == merchant.PayApplied:
			equal(t, "events", evs, []string{"NOTPAY>PAID"})
			equal(t, "anomalies", kinds, []string(nil))
			seen["paid first"]++
		case closed && out == merchant.PayLate:
			equal(t, "events", evs, []string{"NOTPAY>CLOSED", "CLOSED>PAID"})
			equal(t, "anomalies", kinds, []string{"late_payment:tx-" + no})
			seen["closed first"]++
		default:
			t.Fatalf("%s: closed %v and payment %s", no, closed, out)
		}
	}
	t.Logf("winners: %v", seen)
}

// testMarkPaidAcrossAPIVersions: the same payment as APIv3 reports it (a
// notify: success_time in RFC 3339 with +08:00, payer_total below the
// total after a coupon) and as v2 reports it (a query: time_end read in
// China time, cash_fee) is one payment — a merchant that switches
// api_version while WeChat still retries the other generation's notifies
// gets a duplicate, never a second transition or an anomaly.
func testMarkPaidAcrossAPIVersions(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	o := create(t, s, newOrder("V3X", 2800))
	v3at, err := time.Parse(time.RFC3339, "2026-11-28T18:01:02+08:00")
	if err != nil {
		t.Fatal(err)
	}
	v3 := payment(o, "4200000777")
	v3.PaidAt, v3.CashFee, v3.FeeType = v3at, 2500, "CNY"
	out, got, err := s.MarkPaid(ctx, v3, at(time.Minute))
	if err != nil || out != merchant.PayApplied || !got.PaidAt.Equal(v3at) {
		t.Fatalf("MarkPaid(v3 notify) = %v, %+v, %v", out, got, err)
	}
	china := time.FixedZone("China", 8*3600)
	v2 := payment(o, "4200000777")
	v2.PaidAt, v2.CashFee, v2.Source = time.Date(2026, 11, 28, 18, 1, 2, 0, china), 2500, merchant.SourceQuery
	out, got, err = s.MarkPaid(ctx, v2, at(2*time.Minute))
	if err != nil || out != merchant.PayDuplicate || !got.PaidAt.Equal(v3at) {
		t.Fatalf("MarkPaid(the same payment via v2) = %v, %+v, %v; want duplicate", out, got, err)
	}
	equal(t, "events", events(t, s, "V3X"), []string{"NOTPAY>PAID"})
	if ob := outbox(t, s, "V3X"); len(ob) != 1 {
		t.Fatalf("outbox = %d events; want 1", len(ob))
	}
	if as := anomalies(t, s, "V3X"); len(as) != 0 {
		t.Fatalf("anomalies = %v", anomalyKinds(as))
	}
}
