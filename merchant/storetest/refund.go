package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

func reserve(t tb, s merchant.Store, no, order string, fee int64) *merchant.Refund {
	t.Helper()
	r, created, err := s.ReserveRefund(t.Context(), &merchant.Refund{OutRefundNo: no, OutTradeNo: order, RefundFee: fee, Reason: "r"}, at(time.Hour))
	if err != nil || !created {
		t.Fatalf("ReserveRefund(%s, %d) = %v, %v; want created", no, fee, created, err)
	}
	return r
}

func update(t tb, s merchant.Store, u merchant.RefundUpdate, want bool) {
	t.Helper()
	if u.Now.IsZero() {
		u.Now = at(2 * time.Hour)
	}
	ok, err := s.UpdateRefund(t.Context(), u)
	if err != nil || ok != want {
		t.Fatalf("UpdateRefund(%s → %s) = %v, %v; want %v", u.OutRefundNo, u.To, ok, err, want)
	}
}

func testReserveRefund(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "F1", 1000)
	in := &merchant.Refund{OutRefundNo: "RF1", OutTradeNo: "F1", RefundFee: 300, TotalFee: 1, Reason: "broken cup",
		Status: merchant.RefundSuccess, RefundID: "forged", Attempts: 9}
	now := at(time.Hour)
	r, created, err := s.ReserveRefund(ctx, in, now)
	if err != nil || !created {
		t.Fatalf("ReserveRefund = %v, %v", created, err)
	}
	want := merchant.Refund{OutRefundNo: "RF1", OutTradeNo: "F1", RefundFee: 300, TotalFee: 1000, Reason: "broken cup",
		Status: merchant.RefundReserved, CreatedAt: now, UpdatedAt: now}
	equal(t, "reserved", *r, want)
	got, err := s.Refund(ctx, "RF1")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "stored", *got, want)
	o := getOrder(t, s, "F1")
	if o.RefundedFee != 300 || o.RefundCount != 1 || o.Status != merchant.OrderPaid || o.Refundable() != 700 {
		t.Fatalf("order after reserve: %+v", o)
	}

	// The same number, order and amount: the stored refund.
	again, created, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF1", OutTradeNo: "F1", RefundFee: 300}, at(2*time.Hour))
	if err != nil || created {
		t.Fatalf("ReserveRefund(again) = %v, %v; want the existing one", created, err)
	}
	equal(t, "again", *again, want)
	if o := getOrder(t, s, "F1"); o.RefundedFee != 300 || o.RefundCount != 1 {
		t.Fatalf("order after retry: %+v", o)
	}
	// The same number with another amount or order: a conflict.
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF1", OutTradeNo: "F1", RefundFee: 301}, now)
	wantCode(t, err, merchant.ECONFLICT, "")
	createPaid(t, s, "F2", 1000)
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF1", OutTradeNo: "F2", RefundFee: 300}, now)
	wantCode(t, err, merchant.ECONFLICT, "")

	// Not more than is left.
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF2", OutTradeNo: "F1", RefundFee: 701}, now)
	wantCode(t, err, merchant.EINVALID, "refund exceeds the refundable amount (700 fen left)")
	reserve(t, s, "RF3", "F1", 700)
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF4", OutTradeNo: "F1", RefundFee: 1}, now)
	wantCode(t, err, merchant.EINVALID, "(0 fen left)")
	if o := getOrder(t, s, "F1"); o.RefundedFee != 1000 || o.RefundCount != 2 {
		t.Fatalf("order: %+v", o)
	}
	_, err = s.Refund(ctx, "RF2")
	wantCode(t, err, merchant.ENOTFOUND, "")

	// Only a paid order, only a positive amount, only an order that exists.
	create(t, s, newOrder("F3", 1000))
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF5", OutTradeNo: "F3", RefundFee: 1}, now)
	wantCode(t, err, merchant.EINVALID, "order is not paid")
	create(t, s, newOrder("F4", 1000))
	if _, err := s.MarkClosed(ctx, "F4", merchant.OrderClosed, "close", now); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF6", OutTradeNo: "F4", RefundFee: 1}, now)
	wantCode(t, err, merchant.EINVALID, "order is not paid")
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF7", OutTradeNo: "nope", RefundFee: 1}, now)
	wantCode(t, err, merchant.ENOTFOUND, "")
	for _, fee := range []int64{0, -1} {
		_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "RF8", OutTradeNo: "F2", RefundFee: fee}, now)
		wantCode(t, err, merchant.EINVALID, "")
	}
	_, _, err = s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "", OutTradeNo: "F2", RefundFee: 1}, now)
	wantCode(t, err, merchant.EINVALID, "")
	if o := getOrder(t, s, "F2"); o.RefundedFee != 0 || o.RefundCount != 0 {
		t.Fatalf("F2 after refused refunds: %+v", o)
	}

	// Refunds of an order, oldest first.
	rs, err := s.Refunds(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	var nos []string
	for _, r := range rs {
		nos = append(nos, r.OutRefundNo)
	}
	equal(t, "Refunds", nos, []string{"RF1", "RF3"})
	if rs, err := s.Refunds(ctx, "F3"); err != nil || len(rs) != 0 {
		t.Fatalf("Refunds(F3) = %v, %v", rs, err)
	}

	// Attempts.
	for range 3 {
		if err := s.CountRefundAttempt(ctx, "RF1", at(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := s.Refund(ctx, "RF1"); r.Attempts != 3 || !r.UpdatedAt.Equal(at(3*time.Hour)) || r.Status != merchant.RefundReserved {
		t.Fatalf("after attempts: %+v", r)
	}
	wantCode(t, s.CountRefundAttempt(ctx, "nope", now), merchant.ENOTFOUND, "")
}

// testReserveRefundLimit: at most MaxRefunds refunds per order, failed
// ones included.
func testReserveRefundLimit(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "K1", 10000)
	for i := range merchant.MaxRefunds {
		no := fmt.Sprintf("K1-%02d", i)
		reserve(t, s, no, "K1", 1)
		if i%2 == 0 {
			update(t, s, merchant.RefundUpdate{OutRefundNo: no, To: merchant.RefundFailed}, true)
		}
	}
	o := getOrder(t, s, "K1")
	if o.RefundCount != merchant.MaxRefunds || o.RefundedFee != merchant.MaxRefunds/2 {
		t.Fatalf("order: count %d, refunded %d", o.RefundCount, o.RefundedFee)
	}
	_, _, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "K1-50", OutTradeNo: "K1", RefundFee: 1}, at(time.Hour))
	wantCode(t, err, merchant.EINVALID, "50")
	// A retry of an existing one is still answered.
	if _, created, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "K1-01", OutTradeNo: "K1", RefundFee: 1}, at(time.Hour)); err != nil || created {
		t.Fatalf("retry = %v, %v", created, err)
	}
}

// concurrentReserve runs n ReserveRefund at once, each of fee with its own
// number, and returns how many were accepted and the codes of the others.
func concurrentReserve(t *testing.T, s merchant.Store, order string, n int, fee int64) (int, map[string]int) {
	ctx := t.Context()
	var (
		mu       sync.Mutex
		accepted int
		codes    = map[string]int{}
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, created, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: fmt.Sprintf("%s-c%02d", order, i), OutTradeNo: order, RefundFee: fee}, at(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				codes[merchant.ErrorCode(err)]++
				if merchant.ErrorCode(err) != merchant.EINVALID {
					t.Errorf("ReserveRefund: %v", err)
				}
			case created:
				accepted++
			default:
				t.Errorf("ReserveRefund of a new number was not created")
			}
		})
	}
	close(start)
	wg.Wait()
	return accepted, codes
}

// testReserveRefundConcurrent: 20 refunds of 60 % at once: one (D1).
func testReserveRefundConcurrent(t *testing.T, s merchant.Store) {
	createPaid(t, s, "W1", 10000)
	accepted, codes := concurrentReserve(t, s, "W1", 20, 6000)
	if accepted != 1 || codes[merchant.EINVALID] != 19 {
		t.Fatalf("accepted %d, refused %v; want 1 and 19 EINVALID", accepted, codes)
	}
	o := getOrder(t, s, "W1")
	if o.RefundedFee != 6000 || o.RefundCount != 1 {
		t.Fatalf("order: refunded %d, count %d", o.RefundedFee, o.RefundCount)
	}
	if rs, _ := s.Refunds(t.Context(), "W1"); len(rs) != 1 {
		t.Fatalf("%d refunds stored", len(rs))
	}
}

// testReserveRefundConcurrentSmall: 20 refunds of 5 % at once: all, and the
// sum is exact.
func testReserveRefundConcurrentSmall(t *testing.T, s merchant.Store) {
	createPaid(t, s, "W2", 10000)
	accepted, codes := concurrentReserve(t, s, "W2", 20, 500)
	if accepted != 20 || len(codes) != 0 {
		t.Fatalf("accepted %d, refused %v; want 20", accepted, codes)
	}
	o := getOrder(t, s, "W2")
	if o.RefundedFee != 10000 || o.RefundCount != 20 || o.Refundable() != 0 {
		t.Fatalf("order: refunded %d, count %d", o.RefundedFee, o.RefundCount)
	}
	rs, err := s.Refunds(t.Context(), "W2")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, r := range rs {
		sum += r.RefundFee
	}
	if len(rs) != 20 || sum != 10000 {
		t.Fatalf("%d refunds, Σ %d", len(rs), sum)
	}
}

// testReserveRefundConcurrentSameNo: one refund number sent 20 times at
// once: one refund (D2).
func testReserveRefundConcurrentSameNo(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "W3", 10000)
	var (
		mu      sync.Mutex
		created int
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			r, c, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "W3-R", OutTradeNo: "W3", RefundFee: 4000}, at(time.Hour))
			if err != nil {
				t.Errorf("ReserveRefund: %v", err)
				return
			}
			if r.OutRefundNo != "W3-R" || r.RefundFee != 4000 || r.Status != merchant.RefundReserved {
				t.Errorf("refund = %+v", r)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d created; want 1", created)
	}
	if o := getOrder(t, s, "W3"); o.RefundedFee != 4000 || o.RefundCount != 1 {
		t.Fatalf("order: refunded %d, count %d", o.RefundedFee, o.RefundCount)
	}
}

func testUpdateRefund(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "U1", 1000)
	reserve(t, s, "U1-a", "U1", 400)

	// RESERVED → PROCESSING: the order is now REFUND.
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U1-a", To: merchant.RefundProcessing, RefundID: "503000001", Source: "api", Now: at(2 * time.Hour)}, true)
	r, _ := s.Refund(ctx, "U1-a")
	if r.Status != merchant.RefundProcessing || r.RefundID != "503000001" || !r.UpdatedAt.Equal(at(2*time.Hour)) || !r.SuccessAt.IsZero() {
		t.Fatalf("refund: %+v", r)
	}
	o := getOrder(t, s, "U1")
	if o.Status != merchant.OrderRefund || o.RefundedFee != 400 {
		t.Fatalf("order: %+v", o)
	}
	evs, _ := s.Events(ctx, "U1")
	if len(evs) != 2 || evs[1].From != merchant.OrderPaid || evs[1].To != merchant.OrderRefund || evs[1].Source != "api" || !evs[1].At.Equal(at(2*time.Hour)) {
		t.Fatalf("events: %v", events(t, s, "U1"))
	}
	if ob := outbox(t, s, "U1"); len(ob) != 1 {
		t.Fatalf("outbox before success: %d events", len(ob))
	}
	// PROCESSING again: not a transition.
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U1-a", To: merchant.RefundProcessing}, false)

	// PROCESSING → SUCCESS: success time, outbox event; the refund id is kept
	// when none is given.
	succ := at(3 * time.Hour)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U1-a", To: merchant.RefundSuccess, SuccessAt: succ, Source: "notify", Now: at(4 * time.Hour)}, true)
	r, _ = s.Refund(ctx, "U1-a")
	if r.Status != merchant.RefundSuccess || r.RefundID != "503000001" || !r.SuccessAt.Equal(succ) || !r.UpdatedAt.Equal(at(4*time.Hour)) {
		t.Fatalf("refund: %+v", r)
	}
	ob := outbox(t, s, "U1")
	if len(ob) != 2 || ob[1].Type != merchant.EventRefundSucceded || ob[1].Ref != "U1-a" || ob[1].OutTradeNo != "U1" {
		t.Fatalf("outbox: %+v", ob)
	}
	var payload struct {
		OutRefundNo string `json:"out_refund_no"`
		OutTradeNo  string `json:"out_trade_no"`
		RefundFee   int64  `json:"refund_fee"`
	}
	if err := json.Unmarshal([]byte(ob[1].Payload), &payload); err != nil || payload.OutRefundNo != "U1-a" || payload.OutTradeNo != "U1" || payload.RefundFee != 400 {
		t.Fatalf("payload %s: %v", ob[1].Payload, err)
	}
	equal(t, "events", events(t, s, "U1"), []string{"NOTPAY>PAID", "PAID>REFUND"})

	// SUCCESS is final: a late CLOSED or a repeated SUCCESS changes nothing.
	for _, to := range []merchant.RefundStatus{merchant.RefundSuccess, merchant.RefundClosed, merchant.RefundFailed, merchant.RefundProcessing, merchant.RefundReserved, merchant.RefundChange} {
		update(t, s, merchant.RefundUpdate{OutRefundNo: "U1-a", To: to}, false)
	}
	if o := getOrder(t, s, "U1"); o.RefundedFee != 400 || o.Status != merchant.OrderRefund {
		t.Fatalf("order: %+v", o)
	}
	if ob := outbox(t, s, "U1"); len(ob) != 2 {
		t.Fatalf("outbox: %d events", len(ob))
	}

	// RESERVED → SUCCESS directly, on a REFUND order: no second PAID→REFUND.
	reserve(t, s, "U1-b", "U1", 100)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U1-b", To: merchant.RefundSuccess, RefundID: "503000002", Now: at(5 * time.Hour)}, true)
	r, _ = s.Refund(ctx, "U1-b")
	if r.Status != merchant.RefundSuccess || !r.SuccessAt.Equal(at(5*time.Hour)) || r.RefundID != "503000002" {
		t.Fatalf("refund: %+v", r)
	}
	equal(t, "events", events(t, s, "U1"), []string{"NOTPAY>PAID", "PAID>REFUND"})
	if o := getOrder(t, s, "U1"); o.RefundedFee != 500 {
		t.Fatalf("order: %+v", o)
	}

	// CHANGE holds the amount and turns the order to REFUND.
	createPaid(t, s, "U2", 1000)
	reserve(t, s, "U2-a", "U2", 250)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U2-a", To: merchant.RefundChange, Source: "query"}, true)
	if o := getOrder(t, s, "U2"); o.RefundedFee != 250 || o.Status != merchant.OrderRefund {
		t.Fatalf("order after CHANGE: %+v", o)
	}
	update(t, s, merchant.RefundUpdate{OutRefundNo: "U2-a", To: merchant.RefundSuccess}, false)

	_, err := s.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: "nope", To: merchant.RefundProcessing, Now: t0})
	wantCode(t, err, merchant.ENOTFOUND, "")
}

// testUpdateRefundRelease: FAILED and CLOSED give the amount back.
func testUpdateRefundRelease(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "V1", 1000)
	reserve(t, s, "V1-a", "V1", 600)
	_, _, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: "V1-b", OutTradeNo: "V1", RefundFee: 600}, at(time.Hour))
	wantCode(t, err, merchant.EINVALID, "400 fen left")

	// WeChat refused it: FAILED, released; the order stays PAID.
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-a", To: merchant.RefundFailed, Source: "api"}, true)
	o := getOrder(t, s, "V1")
	if o.RefundedFee != 0 || o.RefundCount != 1 || o.Status != merchant.OrderPaid {
		t.Fatalf("after FAILED: %+v", o)
	}
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-a", To: merchant.RefundFailed}, false)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-a", To: merchant.RefundClosed}, false)
	if o := getOrder(t, s, "V1"); o.RefundedFee != 0 {
		t.Fatalf("released twice: %+v", o)
	}
	// Now 600 fits again.
	reserve(t, s, "V1-b", "V1", 600)

	// PROCESSING → CLOSED: released; the order stays REFUND (no way back).
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-b", To: merchant.RefundProcessing}, true)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-b", To: merchant.RefundClosed, Source: "notify"}, true)
	o = getOrder(t, s, "V1")
	if o.RefundedFee != 0 || o.RefundCount != 2 || o.Status != merchant.OrderRefund {
		t.Fatalf("after CLOSED: %+v", o)
	}
	if r, _ := s.Refund(ctx, "V1-b"); r.Status != merchant.RefundClosed || !r.SuccessAt.IsZero() {
		t.Fatalf("refund: %+v", r)
	}
	equal(t, "events", events(t, s, "V1"), []string{"NOTPAY>PAID", "PAID>REFUND"})
	if ob := outbox(t, s, "V1"); len(ob) != 1 {
		t.Fatalf("outbox: %d events", len(ob))
	}
	// RESERVED → CLOSED too.
	reserve(t, s, "V1-c", "V1", 1000)
	update(t, s, merchant.RefundUpdate{OutRefundNo: "V1-c", To: merchant.RefundClosed}, true)
	if o := getOrder(t, s, "V1"); o.RefundedFee != 0 || o.RefundCount != 3 {
		t.Fatalf("after CLOSED: %+v", o)
	}
}

// testUpdateRefundConcurrent: a refund notify and a refund query report
// the same outcome at once: one transition, one release.
func testUpdateRefundConcurrent(t *testing.T, s merchant.Store) {
	for _, to := range []merchant.RefundStatus{merchant.RefundSuccess, merchant.RefundClosed} {
		no := "Z-" + string(to)
		createPaid(t, s, no, 1000)
		reserve(t, s, no+"-r", no, 700)
		var (
			mu   sync.Mutex
			done int
			wg   sync.WaitGroup
		)
		start := make(chan struct{})
		for range 10 {
			wg.Go(func() {
				<-start
				ok, err := s.UpdateRefund(t.Context(), merchant.RefundUpdate{OutRefundNo: no + "-r", To: to, Now: at(2 * time.Hour)})
				if err != nil {
					t.Errorf("UpdateRefund: %v", err)
				}
				if ok {
					mu.Lock()
					done++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if done != 1 {
			t.Fatalf("%s: %d transitions; want 1", to, done)
		}
		o := getOrder(t, s, no)
		wantFee := int64(700)
		if to == merchant.RefundClosed {
			wantFee = 0
		}
		if o.RefundedFee != wantFee {
			t.Fatalf("%s: refunded %d; want %d", to, o.RefundedFee, wantFee)
		}
	}
}

func testRefundsByStatus(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	createPaid(t, s, "S1", 10000)
	for i, st := range []merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing, merchant.RefundReserved, merchant.RefundSuccess, merchant.RefundProcessing} {
		no := fmt.Sprintf("S1-%d", i)
		reserve(t, s, no, "S1", 100)
		if st != merchant.RefundReserved {
			update(t, s, merchant.RefundUpdate{OutRefundNo: no, To: st, Now: at(time.Hour + time.Duration(10-i)*time.Minute)}, true)
		}
	}
	// Updated: S1-0 1h, S1-1 1h09, S1-2 1h, S1-3 1h07, S1-4 1h06.
	nos := func(rs []*merchant.Refund, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.OutRefundNo)
		}
		return out
	}
	equal(t, "reserved+processing", nos(s.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing}, at(2*time.Hour), 10)),
		[]string{"S1-0", "S1-2", "S1-4", "S1-1"})
	equal(t, "before 1h07", nos(s.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing}, at(67*time.Minute), 10)),
		[]string{"S1-0", "S1-2", "S1-4"})
	equal(t, "limit", nos(s.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing}, at(2*time.Hour), 3)),
		[]string{"S1-0", "S1-2", "S1-4"})
	equal(t, "success", nos(s.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundSuccess}, at(2*time.Hour), 10)), []string{"S1-3"})
	equal(t, "none", nos(s.RefundsByStatus(ctx, []merchant.RefundStatus{merchant.RefundChange}, at(2*time.Hour), 10)), []string(nil))
	equal(t, "no statuses", nos(s.RefundsByStatus(ctx, nil, at(2*time.Hour), 10)), []string(nil))
}
