// Package storetest is the conformance suite of merchant.Store: one set of
// tests that every implementation (sqlite, postgres) runs, in the manner of
// litestream's RunWithReplicaClient. It checks every method of the
// interface and the money invariants of reliability.md on it: exactly one
// transition and one outbox event per payment under duplicates and races
// (A3, I4, I5), one anomaly per bad notify (A2, I6), refunds never above
// the payment under concurrency (D1, I3), idempotent refund numbers (D2),
// and a property test over random sequences of operations.
//
// A store package runs it from a test:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) merchant.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Times in the suite are whole microseconds: stores keep times to the
// microsecond (PostgreSQL's precision), in UTC.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

// Run runs the conformance suite. Each subtest calls open for a new, empty
// store of its own, which open arranges to close when t ends.
func Run(t *testing.T, open func(t *testing.T) merchant.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s merchant.Store)
	}{
		{"CreateOrder", testCreateOrder},
		{"CreateOrderIdempotency", testCreateOrderIdempotency},
		{"SetPrepay", testSetPrepay},
		{"MarkPaidApplied", testMarkPaidApplied},
		{"MarkPaidDuplicate", testMarkPaidDuplicate},
		{"MarkPaidLate", testMarkPaidLate},
		{"MarkPaidRejected", testMarkPaidRejected},
		{"MarkPaidAnomalyOnce", testMarkPaidAnomalyOnce},
		{"MarkPaidTransactionOfAnotherOrder", testMarkPaidTransactionOfAnotherOrder},
		{"MarkPaidConcurrent", testMarkPaidConcurrent},
		{"MarkPaidRacesClose", testMarkPaidRacesClose},
		{"MarkPaidAcrossAPIVersions", testMarkPaidAcrossAPIVersions},
		{"MarkClosed", testMarkClosed},
		{"PendingOrders", testPendingOrders},
		{"ListOrders", testListOrders},
		{"ReserveRefund", testReserveRefund},
		{"ReserveRefundLimit", testReserveRefundLimit},
		{"ReserveRefundConcurrent", testReserveRefundConcurrent},
		{"ReserveRefundConcurrentSmall", testReserveRefundConcurrentSmall},
		{"ReserveRefundConcurrentSameNo", testReserveRefundConcurrentSameNo},
		{"UpdateRefund", testUpdateRefund},
		{"UpdateRefundRelease", testUpdateRefundRelease},
		{"UpdateRefundConcurrent", testUpdateRefundConcurrent},
		{"RefundsByStatus", testRefundsByStatus},
		{"Anomalies", testAnomalies},
		{"Outbox", testOutbox},
		{"Sessions", testSessions},
		{"Recon", testRecon},
		{"PaidBetween", testPaidBetween},
		{"Ping", testPing},
		{"Property", testProperty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Context() context.Context
}

// Defaults of the orders the suite creates.
const (
	appID = "wx426b3015555a46be"
	mchID = "1225312702"
)

// t0 is the suite's epoch: whole microseconds, UTC.
var t0 = time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func newOrder(no string, fee int64) *merchant.Order {
	return &merchant.Order{
		OutTradeNo: no,
		OpenID:     "oUser1",
		AppID:      appID,
		MchID:      mchID,
		TradeType:  wxpay.TradeTypeJSAPI,
		Items:      []merchant.Item{{SKU: "tea", Name: "Tea", Quantity: 1, UnitPrice: fee}},
		TotalFee:   fee,
		Body:       "Shop - tea",
		ClientIP:   "203.0.113.7",
		ExpiresAt:  t0.Add(2 * time.Hour),
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
}

func create(t tb, s merchant.Store, o *merchant.Order) *merchant.Order {
	t.Helper()
	got, created, err := s.CreateOrder(t.Context(), o)
	if err != nil {
		t.Fatalf("CreateOrder(%s): %v", o.OutTradeNo, err)
	}
	if !created {
		t.Fatalf("CreateOrder(%s): not created", o.OutTradeNo)
	}
	return got
}

// payment returns the payment of o by transaction txid, as WeChat reports it.
func payment(o *merchant.Order, txid string) *merchant.Payment {
	return &merchant.Payment{
		OutTradeNo:    o.OutTradeNo,
		TransactionID: txid,
		AppID:         o.AppID,
		MchID:         o.MchID,
		TotalFee:      o.TotalFee,
		CashFee:       o.TotalFee,
		FeeType:       "CNY",
		OpenID:        o.OpenID,
		TradeType:     o.TradeType,
		PaidAt:        t0.Add(time.Minute),
		Source:        merchant.SourceNotify,
	}
}

// createPaid creates an order of fee and pays it.
func createPaid(t tb, s merchant.Store, no string, fee int64) *merchant.Order {
	t.Helper()
	o := create(t, s, newOrder(no, fee))
	out, paid, err := s.MarkPaid(t.Context(), payment(o, "tx-"+no), at(time.Minute))
	if err != nil || out != merchant.PayApplied {
		t.Fatalf("MarkPaid(%s) = %v, %v; want applied", no, out, err)
	}
	return paid
}

func getOrder(t tb, s merchant.Store, no string) *merchant.Order {
	t.Helper()
	o, err := s.Order(t.Context(), no)
	if err != nil {
		t.Fatalf("Order(%s): %v", no, err)
	}
	return o
}

func events(t tb, s merchant.Store, no string) []string {
	t.Helper()
	evs, err := s.Events(t.Context(), no)
	if err != nil {
		t.Fatalf("Events(%s): %v", no, err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s>%s", e.From, e.To))
	}
	return out
}

func outbox(t tb, s merchant.Store, no string) []*merchant.OutboxEvent {
	t.Helper()
	evs, err := s.OutboxFor(t.Context(), no)
	if err != nil {
		t.Fatalf("OutboxFor(%s): %v", no, err)
	}
	return evs
}

func anomalies(t tb, s merchant.Store, no string) []*merchant.Anomaly {
	t.Helper()
	as, err := s.Anomalies(t.Context(), no, 1000)
	if err != nil {
		t.Fatalf("Anomalies(%s): %v", no, err)
	}
	return as
}

func anomalyKinds(as []*merchant.Anomaly) []string {
	var kinds []string
	for _, a := range as {
		kinds = append(kinds, string(a.Kind)+":"+a.Ref)
	}
	return kinds
}

// wantCode fails unless err is a *merchant.Error with the code (and, when
// msg is not empty, a message that contains it).
func wantCode(t tb, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil; want %s", code)
	}
	if got := merchant.ErrorCode(err); got != code {
		t.Fatalf("err = %v (code %s); want code %s", err, got, code)
	}
	if msg != "" && !strings.Contains(merchant.ErrorMessage(err), msg) {
		t.Fatalf("err = %q; want a message with %q", merchant.ErrorMessage(err), msg)
	}
}

func equal[V any](t tb, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// equalOrder compares two orders field by field.
func equalOrder(t tb, what string, got, want *merchant.Order) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
		return
	}
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	var diffs []string
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(gf, wf) {
			diffs = append(diffs, fmt.Sprintf("  %s: got %+v, want %+v", g.Type().Field(i).Name, gf, wf))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%s differs:\n%s", what, strings.Join(diffs, "\n"))
	}
}

func testPing(t *testing.T, s merchant.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
