package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

func testCreateOrder(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	in := newOrder("O1", 12345)
	in.Items = []merchant.Item{{SKU: "tea", Name: "Tea 茶", Quantity: 2, UnitPrice: 5000}, {SKU: "cake", Name: "Cake", Quantity: 1, UnitPrice: 2345}}
	in.IdempotencyKey = "key-1"
	// Fields the store must not take from the caller.
	in.Status, in.PrepayState = merchant.OrderPaid, merchant.PrepayOK
	in.TransactionID, in.PaidAt, in.RefundedFee, in.RefundCount = "tx-forged", t0, 100, 3
	// Times: nanoseconds and another zone are normalized to UTC
	// microseconds; zero times stay zero.
	shanghai := time.FixedZone("CST", 8*3600)
	in.CreatedAt = time.Date(2026, 11, 28, 18, 0, 0, 123456789, shanghai)
	in.UpdatedAt = in.CreatedAt
	in.ExpiresAt = in.CreatedAt.Add(2 * time.Hour)

	got, created, err := s.CreateOrder(ctx, in)
	if err != nil || !created {
		t.Fatalf("CreateOrder = %v, %v; want created", created, err)
	}
	want := *in
	want.Status, want.PrepayState = merchant.OrderNotPay, merchant.PrepayPending
	want.TransactionID, want.PaidAt, want.RefundedFee, want.RefundCount = "", time.Time{}, 0, 0
	want.CreatedAt = time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.UTC)
	want.UpdatedAt = want.CreatedAt
	want.ExpiresAt = want.CreatedAt.Add(2 * time.Hour)
	equalOrder(t, "CreateOrder", got, &want)
	equalOrder(t, "Order", getOrder(t, s, "O1"), &want)
	if in.Status != merchant.OrderPaid {
		t.Error("CreateOrder changed its argument")
	}

	// A NATIVE order without an openid or items.
	n := newOrder("O2", 1)
	n.OpenID, n.TradeType, n.Items, n.ExpiresAt = "", wxpay.TradeTypeNative, nil, time.Time{}
	got, _, err = s.CreateOrder(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	equalOrder(t, "native order", getOrder(t, s, "O2"), got)
	if !getOrder(t, s, "O2").ExpiresAt.IsZero() {
		t.Error("zero ExpiresAt did not round-trip")
	}

	// The same out_trade_no again, without a key or with another one.
	_, _, err = s.CreateOrder(ctx, newOrder("O1", 12345))
	wantCode(t, err, merchant.ECONFLICT, "")
	dup := newOrder("O1", 12345)
	dup.IdempotencyKey = "key-2"
	_, _, err = s.CreateOrder(ctx, dup)
	wantCode(t, err, merchant.ECONFLICT, "")

	_, _, err = s.CreateOrder(ctx, newOrder("", 1))
	wantCode(t, err, merchant.EINVALID, "")
	_, _, err = s.CreateOrder(ctx, newOrder("O3", 0))
	wantCode(t, err, merchant.EINVALID, "")
	_, _, err = s.CreateOrder(ctx, newOrder("O4", -5))
	wantCode(t, err, merchant.EINVALID, "")

	_, err = s.Order(ctx, "nope")
	wantCode(t, err, merchant.ENOTFOUND, "")
}

func testCreateOrderIdempotency(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	a := newOrder("A1", 100)
	a.IdempotencyKey = "k"
	first := create(t, s, a)

	// The same user and key: the first order, not a new one.
	b := newOrder("A2", 999)
	b.IdempotencyKey = "k"
	got, created, err := s.CreateOrder(ctx, b)
	if err != nil || created {
		t.Fatalf("CreateOrder(same key) = %v, %v; want the existing order", created, err)
	}
	equalOrder(t, "same key", got, first)
	if _, err := s.Order(ctx, "A2"); merchant.ErrorCode(err) != merchant.ENOTFOUND {
		t.Fatalf("A2 was stored: %v", err)
	}

	// The key is per user.
	c := newOrder("A3", 100)
	c.IdempotencyKey, c.OpenID = "k", "oUser2"
	create(t, s, c)

	// No key: every order is new.
	create(t, s, newOrder("A4", 100))
	create(t, s, newOrder("A5", 100))

	// Concurrent requests with one key: one order.
	const n = 10
	results := make(chan string, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			o := newOrder(fmt.Sprintf("C%d", i), 100)
			o.IdempotencyKey = "race"
			got, _, err := s.CreateOrder(ctx, o)
			if err != nil {
				errs <- err
				return
			}
			results <- got.OutTradeNo
		}()
	}
	close(start)
	seen := map[string]int{}
	for range n {
		select {
		case no := <-results:
			seen[no]++
		case err := <-errs:
			t.Fatalf("concurrent CreateOrder: %v", err)
		}
	}
	if len(seen) != 1 {
		t.Fatalf("one key gave orders %v; want one", seen)
	}
}

func testSetPrepay(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	o := create(t, s, newOrder("P1", 100))
	exp := at(2 * time.Hour)
	if err := s.SetPrepay(ctx, "P1", merchant.PrepayOK, "wx2811", "weixin://wxpay/bizpayurl?pr=x", exp); err != nil {
		t.Fatal(err)
	}
	got := getOrder(t, s, "P1")
	if got.PrepayState != merchant.PrepayOK || got.PrepayID != "wx2811" || got.CodeURL != "weixin://wxpay/bizpayurl?pr=x" || !got.PrepayExpiresAt.Equal(exp) {
		t.Fatalf("after SetPrepay: %+v", got)
	}
	if got.Status != merchant.OrderNotPay || got.TotalFee != o.TotalFee {
		t.Fatalf("SetPrepay changed more: %+v", got)
	}
	if err := s.SetPrepay(ctx, "P1", merchant.PrepayFailed, "", "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := getOrder(t, s, "P1"); got.PrepayState != merchant.PrepayFailed || !got.PrepayExpiresAt.IsZero() {
		t.Fatalf("after SetPrepay(FAILED): %+v", got)
	}

	wantCode(t, s.SetPrepay(ctx, "nope", merchant.PrepayOK, "x", "", exp), merchant.ENOTFOUND, "")
	createPaid(t, s, "P2", 100)
	wantCode(t, s.SetPrepay(ctx, "P2", merchant.PrepayOK, "x", "", exp), merchant.ECONFLICT, "")
}

func testMarkClosed(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	create(t, s, newOrder("C1", 100))
	ok, err := s.MarkClosed(ctx, "C1", merchant.OrderClosed, "close", at(time.Hour))
	if err != nil || !ok {
		t.Fatalf("MarkClosed = %v, %v; want true", ok, err)
	}
	o := getOrder(t, s, "C1")
	if o.Status != merchant.OrderClosed || !o.UpdatedAt.Equal(at(time.Hour)) {
		t.Fatalf("after MarkClosed: %+v", o)
	}
	evs, err := s.Events(ctx, "C1")
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events = %v, %v", evs, err)
	}
	e := evs[0]
	if e.OutTradeNo != "C1" || e.From != merchant.OrderNotPay || e.To != merchant.OrderClosed || e.Source != "close" || !e.At.Equal(at(time.Hour)) || e.ID == 0 {
		t.Fatalf("event = %+v", e)
	}
	// Again: nothing changes.
	ok, err = s.MarkClosed(ctx, "C1", merchant.OrderClosed, "close", at(2*time.Hour))
	if err != nil || ok {
		t.Fatalf("MarkClosed again = %v, %v; want false", ok, err)
	}
	equal(t, "events", events(t, s, "C1"), []string{"NOTPAY>CLOSED"})

	// PAYERROR.
	create(t, s, newOrder("C2", 100))
	if ok, err := s.MarkClosed(ctx, "C2", merchant.OrderPayError, "query", at(time.Hour)); err != nil || !ok {
		t.Fatalf("MarkClosed(PAYERROR) = %v, %v", ok, err)
	}
	equal(t, "status", getOrder(t, s, "C2").Status, merchant.OrderPayError)

	// A paid order is not closed.
	createPaid(t, s, "C3", 100)
	if ok, err := s.MarkClosed(ctx, "C3", merchant.OrderClosed, "close", at(time.Hour)); err != nil || ok {
		t.Fatalf("MarkClosed(paid) = %v, %v; want false", ok, err)
	}
	equal(t, "status", getOrder(t, s, "C3").Status, merchant.OrderPaid)
	equal(t, "events", events(t, s, "C3"), []string{"NOTPAY>PAID"})

	// Only CLOSED and PAYERROR are closing statuses.
	create(t, s, newOrder("C4", 100))
	for _, to := range []merchant.OrderStatus{merchant.OrderPaid, merchant.OrderRefund, merchant.OrderNotPay, "BOGUS"} {
		_, err := s.MarkClosed(ctx, "C4", to, "close", at(time.Hour))
		wantCode(t, err, merchant.EINVALID, "")
	}
	equal(t, "status", getOrder(t, s, "C4").Status, merchant.OrderNotPay)

	_, err = s.MarkClosed(ctx, "nope", merchant.OrderClosed, "close", at(time.Hour))
	wantCode(t, err, merchant.ENOTFOUND, "")
}

func testPendingOrders(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	for i, d := range []time.Duration{3, 1, 2, 4, 5} {
		o := newOrder(fmt.Sprintf("Q%d", i), 100)
		o.CreatedAt = at(d * time.Minute)
		create(t, s, o)
	}
	// Q3 is paid, Q4 closed: not pending.
	if _, _, err := s.MarkPaid(ctx, payment(getOrder(t, s, "Q3"), "tx-Q3"), at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkClosed(ctx, "Q4", merchant.OrderClosed, "close", at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	nos := func(os []*merchant.Order) []string {
		var out []string
		for _, o := range os {
			out = append(out, o.OutTradeNo)
		}
		return out
	}
	got, err := s.PendingOrders(ctx, at(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "pending, none queried", nos(got), []string{"Q1", "Q2", "Q0"})

	// Created before the bound only.
	got, err = s.PendingOrders(ctx, at(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "pending before 2m", nos(got), []string{"Q1"})

	// Queried orders go after the ones never queried, least recent first.
	if err := s.TouchQueried(ctx, "Q1", at(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchQueried(ctx, "Q2", at(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err = s.PendingOrders(ctx, at(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "pending after queries", nos(got), []string{"Q0", "Q2", "Q1"})
	equal(t, "LastQueriedAt", getOrder(t, s, "Q1").LastQueriedAt, at(10*time.Minute))

	got, err = s.PendingOrders(ctx, at(time.Hour), 2)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "limit 2", nos(got), []string{"Q0", "Q2"})

	wantCode(t, s.TouchQueried(ctx, "nope", t0), merchant.ENOTFOUND, "")
}

func testListOrders(t *testing.T, s merchant.Store) {
	ctx := t.Context()
	// 12 orders; some share a creation time, so the tie-break by
	// out_trade_no matters.
	var all []string // newest first
	for i := range 12 {
		o := newOrder(fmt.Sprintf("L%02d", i), 100)
		o.CreatedAt = at(time.Duration(i/2) * time.Second)
		if i%3 == 0 {
			o.OpenID = "oOther"
		}
		create(t, s, o)
		all = append([]string{o.OutTradeNo}, all...)
	}
	createPaidAt := func(no string) {
		if _, _, err := s.MarkPaid(ctx, payment(getOrder(t, s, no), "tx-"+no), at(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	createPaidAt("L04")
	createPaidAt("L07")

	list := func(f merchant.OrderFilter) []string {
		t.Helper()
		var out []string
		for page := 0; ; page++ {
			orders, next, err := s.ListOrders(ctx, f)
			if err != nil {
				t.Fatalf("ListOrders(%+v): %v", f, err)
			}
			if f.Limit > 0 && len(orders) > f.Limit {
				t.Fatalf("page of %d orders, limit %d", len(orders), f.Limit)
			}
			for _, o := range orders {
				out = append(out, o.OutTradeNo)
			}
			if next == "" {
				return out
			}
			if page > 20 {
				t.Fatal("too many pages")
			}
			f.Cursor = next
		}
	}
	equal(t, "all", list(merchant.OrderFilter{}), all)
	equal(t, "pages of 5", list(merchant.OrderFilter{Limit: 5}), all)
	equal(t, "pages of 1", list(merchant.OrderFilter{Limit: 1}), all)
	equal(t, "pages of 12", list(merchant.OrderFilter{Limit: 12}), all)

	orders, next, err := s.ListOrders(ctx, merchant.OrderFilter{Limit: 5})
	if err != nil || len(orders) != 5 || next == "" {
		t.Fatalf("first page: %d orders, next %q, %v", len(orders), next, err)
	}
	equalOrder(t, "listed order", orders[0], getOrder(t, s, orders[0].OutTradeNo))
	orders, next, err = s.ListOrders(ctx, merchant.OrderFilter{Limit: 12})
	if err != nil || len(orders) != 12 || next != "" {
		t.Fatalf("exact page: %d orders, next %q, %v", len(orders), next, err)
	}

	equal(t, "status", list(merchant.OrderFilter{Status: merchant.OrderPaid, Limit: 1}), []string{"L07", "L04"})
	equal(t, "open id", list(merchant.OrderFilter{OpenID: "oOther", Limit: 2}), []string{"L09", "L06", "L03", "L00"})
	equal(t, "since/until", list(merchant.OrderFilter{Since: at(2 * time.Second), Until: at(4 * time.Second), Limit: 3}),
		[]string{"L07", "L06", "L05", "L04"})
	equal(t, "nothing", list(merchant.OrderFilter{Status: merchant.OrderRefund}), []string(nil))

	// Limits: default 50, at most 200.
	for i := range 250 {
		o := newOrder(fmt.Sprintf("M%03d", i), 100)
		o.CreatedAt = at(-time.Hour)
		create(t, s, o)
	}
	orders, next, err = s.ListOrders(ctx, merchant.OrderFilter{})
	if err != nil || len(orders) != 50 || next == "" {
		t.Fatalf("default limit: %d orders, next %q, %v", len(orders), next, err)
	}
	orders, _, err = s.ListOrders(ctx, merchant.OrderFilter{Limit: 1000})
	if err != nil || len(orders) != 200 {
		t.Fatalf("limit 1000: %d orders, %v; want 200", len(orders), err)
	}

	_, _, err = s.ListOrders(ctx, merchant.OrderFilter{Cursor: "not a cursor!"})
	wantCode(t, err, merchant.EINVALID, "")
}
