package recon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
)

const (
	appID = "wx426b3015555a46be"
	mchID = "1225312702"
	date  = "2026-11-28"
)

// day is the start of date in China; now is 11:00 the next day, when the
// bill is ready.
var (
	day = time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)
	now = time.Date(2026, 11, 29, 11, 0, 0, 0, wxpay.China)
)

// fakeGateway is WeChat as far as reconciliation sees it: bills and
// queries injected per test. Calls it was not told about fail loudly.
type fakeGateway struct {
	mu        sync.Mutex
	bills     map[string][]merchant.BillEntry // by yyyy-mm-dd
	billErr   error
	trades    map[string]*merchant.TradeStatus // orderquery answers
	queryErr  error
	refunds   map[string]*merchant.RefundResult // refundquery answers
	queries   []string
	refundQry []string
}

func newFakeGateway() *fakeGateway {
	return &fakeGateway{bills: map[string][]merchant.BillEntry{}, trades: map[string]*merchant.TradeStatus{},
		refunds: map[string]*merchant.RefundResult{}}
}

var errNotFaked = errors.New("fake gateway: not part of this test")

func (g *fakeGateway) AppID() string { return appID }
func (g *fakeGateway) MchID() string { return mchID }
func (g *fakeGateway) Login(context.Context, string) (*merchant.Login, error) {
	return nil, errNotFaked
}
func (g *fakeGateway) Prepay(context.Context, *merchant.Order) (*merchant.Prepay, error) {
	return nil, errNotFaked
}
func (g *fakeGateway) PayParams(string) (*merchant.PayParams, error) { return nil, errNotFaked }
func (g *fakeGateway) Query(_ context.Context, no string) (*merchant.TradeStatus, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queries = append(g.queries, no)
	if g.queryErr != nil {
		return nil, g.queryErr
	}
	ts, ok := g.trades[no]
	if !ok {
		return nil, fmt.Errorf("%w: %s", merchant.ErrOrderNotExist, no)
	}
	return ts, nil
}
func (g *fakeGateway) Close(context.Context, string) error { return errNotFaked }
func (g *fakeGateway) Refund(context.Context, *merchant.Refund) (string, error) {
	return "", errNotFaked
}
func (g *fakeGateway) RefundQuery(_ context.Context, no string) (*merchant.RefundResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refundQry = append(g.refundQry, no)
	r, ok := g.refunds[no]
	if !ok {
		return nil, fmt.Errorf("%w: %s", merchant.ErrRefundNotExist, no)
	}
	return r, nil
}
func (g *fakeGateway) Bill(_ context.Context, d time.Time) ([]merchant.BillEntry, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.billErr != nil {
		return nil, g.billErr
	}
	rows, ok := g.bills[d.In(wxpay.China).Format(recon.DateLayout)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", merchant.ErrNoBill, d)
	}
	return slices.Clone(rows), nil
}
func (g *fakeGateway) ParsePayNotify(context.Context, http.Header, []byte) (*merchant.PayNotice, error) {
	return nil, errNotFaked
}
func (g *fakeGateway) ParseRefundNotify(context.Context, http.Header, []byte) (*merchant.RefundResult, error) {
	return nil, errNotFaked
}
func (g *fakeGateway) NotifyAck(error) (int, string, []byte) { return 500, "text/plain", nil }

// setBill sets the bill of a date.
func (g *fakeGateway) setBill(date string, rows ...merchant.BillEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bills[date] = rows
}

// paidAtWeChat makes orderquery say the order is paid.
func (g *fakeGateway) paidAtWeChat(o *merchant.Order, txn string, at time.Time, fee int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.trades[o.OutTradeNo] = &merchant.TradeStatus{State: wxpay.TradeStateSuccess, Payment: &merchant.Payment{
		OutTradeNo: o.OutTradeNo, TransactionID: txn, AppID: appID, MchID: mchID, TotalFee: fee, CashFee: fee,
		FeeType: "CNY", OpenID: o.OpenID, TradeType: o.TradeType, PaidAt: at,
	}}
}

// env is a service on a real SQLite store with the fake gateway.
type env struct {
	t     *testing.T
	ctx   context.Context
	store *sqlite.Store
	gw    *fakeGateway
	svc   *payments.Service
	rec   *recon.Reconciler
	now   time.Time
	seq   int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, gw: newFakeGateway(), now: now}
	var err error
	e.store, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "recon.db"), sqlite.WithNow(func() time.Time { return e.now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.svc, err = payments.New(e.store, e.gw, payments.Config{
		Catalog: merchant.Catalog{"tea": {SKU: "tea", Name: "Tea", Price: 100}},
		Now:     func() time.Time { return e.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rec = recon.New(e.svc, recon.Options{})
	return e
}

// order stores an unpaid order of fee fen created at created.
func (e *env) order(no string, fee int64, created time.Time) *merchant.Order {
	e.t.Helper()
	o := &merchant.Order{
		OutTradeNo: no, OpenID: "o-user", AppID: appID, MchID: mchID, TradeType: wxpay.TradeTypeJSAPI,
		Items: []merchant.Item{{SKU: "tea", Name: "Tea", Quantity: fee / 100, UnitPrice: 100}}, TotalFee: fee,
		Body: "wxpay-Tea", ClientIP: "127.0.0.1", Status: merchant.OrderNotPay, PrepayState: merchant.PrepayOK,
		PrepayID: "wx" + no, ExpiresAt: created.Add(30 * time.Minute), CreatedAt: created, UpdatedAt: created,
	}
	got, created2, err := e.store.CreateOrder(e.ctx, o)
	if err != nil || !created2 {
		e.t.Fatalf("create order %s: %v (created %v)", no, err, created2)
	}
	return got
}

// paid stores an order paid (by a notify) at paidAt, and tells the fake
// WeChat so too.
func (e *env) paid(no string, fee int64, paidAt time.Time) *merchant.Order {
	e.t.Helper()
	o := e.order(no, fee, paidAt.Add(-time.Minute))
	e.seq++
	txn := fmt.Sprintf("4200000000%018d", e.seq)
	out, after, err := e.store.MarkPaid(e.ctx, &merchant.Payment{
		OutTradeNo: no, TransactionID: txn, AppID: appID, MchID: mchID, TotalFee: fee, CashFee: fee,
		FeeType: "CNY", OpenID: o.OpenID, TradeType: o.TradeType, PaidAt: paidAt, Source: merchant.SourceNotify,
	}, paidAt)
	if err != nil || out != merchant.PayApplied {
		e.t.Fatalf("mark %s paid: %v %v", no, out, err)
	}
	e.gw.paidAtWeChat(after, txn, paidAt, fee)
	return after
}

// refund stores a refund of an order, moved to status.
func (e *env) refund(o *merchant.Order, no string, fee int64, at time.Time, status merchant.RefundStatus) *merchant.Refund {
	e.t.Helper()
	r, created, err := e.store.ReserveRefund(e.ctx, &merchant.Refund{OutRefundNo: no, OutTradeNo: o.OutTradeNo, RefundFee: fee,
		TotalFee: o.TotalFee, Status: merchant.RefundReserved, CreatedAt: at, UpdatedAt: at}, at)
	if err != nil || !created {
		e.t.Fatalf("reserve refund %s: %v", no, err)
	}
	path := map[merchant.RefundStatus][]merchant.RefundStatus{
		merchant.RefundReserved:   nil,
		merchant.RefundProcessing: {merchant.RefundProcessing},
		merchant.RefundSuccess:    {merchant.RefundProcessing, merchant.RefundSuccess},
		merchant.RefundClosed:     {merchant.RefundProcessing, merchant.RefundClosed},
		merchant.RefundFailed:     {merchant.RefundFailed},
	}[status]
	for _, to := range path {
		u := merchant.RefundUpdate{OutRefundNo: no, To: to, RefundID: "503" + no, Source: "test", Now: at}
		if to == merchant.RefundSuccess {
			u.SuccessAt = at
		}
		if ok, err := e.store.UpdateRefund(e.ctx, u); err != nil || !ok {
			e.t.Fatalf("refund %s to %s: %v %v", no, to, ok, err)
		}
	}
	r, err = e.store.Refund(e.ctx, no)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// payRow is the bill row of a paid order.
func payRow(o *merchant.Order) merchant.BillEntry {
	return merchant.BillEntry{Time: o.PaidAt, OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID,
		State: wxpay.TradeStateSuccess, TotalFee: o.TotalFee, OutRefundNo: "0", RefundID: "0"}
}

// refundRow is the bill row of a refund.
func refundRow(r *merchant.Refund, status string) merchant.BillEntry {
	return merchant.BillEntry{Time: r.CreatedAt, OutTradeNo: r.OutTradeNo, TransactionID: "4200", State: wxpay.TradeStateRefund,
		OutRefundNo: r.OutRefundNo, RefundID: "503" + r.OutRefundNo, RefundFee: r.RefundFee, RefundStatus: status}
}

// key names an exception for comparisons.
func key(e *merchant.ReconException) string {
	s := string(e.Kind) + " " + e.OutTradeNo
	if e.OutRefundNo != "" {
		s += " " + e.OutRefundNo
	}
	if e.Healed {
		s += " healed"
	}
	return s
}

func keys(list []*merchant.ReconException) []string {
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, key(e))
	}
	slices.Sort(out)
	return out
}

func (e *env) stored(date string) []string {
	e.t.Helper()
	list, err := e.store.ReconExceptions(e.ctx, date)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys(list)
}

func (e *env) reconcile(date string) (*merchant.ReconReport, []*merchant.ReconException) {
	e.t.Helper()
	rep, found, err := e.rec.Reconcile(e.ctx, date)
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", date, err)
	}
	return rep, found
}

// at returns a time of day on date in China.
func at(hh, mm, ss int) time.Time {
	return day.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second)
}

func TestReconcileClean(t *testing.T) {
	e := newEnv(t)
	a := e.paid("ORDER000001", 300, at(9, 0, 0))
	b := e.paid("ORDER000002", 500, at(12, 30, 0))
	rf := e.refund(b, "REFUND000001", 200, at(13, 0, 0), merchant.RefundSuccess)
	e.gw.setBill(date, payRow(a), payRow(b), refundRow(rf, "SUCCESS"))

	rep, found := e.reconcile(date)
	if len(found) != 0 {
		t.Fatalf("exceptions on a clean day: %v", keys(found))
	}
	want := merchant.ReconReport{Date: date, BillRows: 3, Matched: 3, BillTotal: 800, LocalTotal: 800, BillRefunds: 200, RanAt: now}
	if !rep.RanAt.Equal(want.RanAt) {
		t.Errorf("RanAt = %v, want %v", rep.RanAt, want.RanAt)
	}
	rep.RanAt = want.RanAt
	if *rep != want {
		t.Errorf("report = %+v\nwant     %+v", *rep, want)
	}
	saved, err := e.store.Recon(e.ctx, date)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Matched != 3 || saved.BillTotal != 800 || saved.LocalTotal != 800 || saved.BillRefunds != 200 {
		t.Errorf("saved report = %+v", *saved)
	}
}

// TestReconcileEveryKind is reliability.md E1: one bill with every kind of
// difference; exactly those are reported, with the right kind; the lost
// payment is healed through a query (with its audit row); running again
// adds nothing.
func TestReconcileEveryKind(t *testing.T) {
	e := newEnv(t)
	next := day.AddDate(0, 0, 1)

	match := e.paid("MATCH00001", 100, at(8, 0, 0))
	// Lost notify: paid at WeChat, NOTPAY here; the query heals it.
	lost := e.order("LOST000001", 200, at(9, 0, 0))
	e.gw.paidAtWeChat(lost, "4200000000000000000000009001", at(9, 1, 0), 200)
	// Paid at WeChat says the bill, not paid says the query: not healed.
	stuck := e.order("STUCK00001", 300, at(9, 30, 0))
	// Paid here, not in the bill ("short").
	short := e.paid("SHORT00001", 400, at(10, 0, 0))
	// 1 fen apart.
	amount := e.paid("AMOUNT0001", 500, at(11, 0, 0))
	// A refund in the bill that we do not have.
	refunded := e.paid("REFORD0001", 1000, at(12, 0, 0))
	// A refund of ours in SUCCESS that the bill does not list.
	ours := e.refund(refunded, "REFUNDOURS01", 300, at(13, 0, 0), merchant.RefundSuccess)
	// A refund both sides agree on.
	both := e.refund(refunded, "REFUNDBOTH01", 100, at(13, 30, 0), merchant.RefundSuccess)
	// Day boundary: 23:59:59 belongs to date, 00:00:00 to the next day.
	late := e.paid("BOUNDARY01", 600, at(23, 59, 59))
	early := e.paid("BOUNDARY02", 700, next)

	e.gw.setBill(date,
		payRow(match),
		merchant.BillEntry{Time: at(9, 1, 0), OutTradeNo: lost.OutTradeNo, TransactionID: "4200000000000000000000009001",
			State: wxpay.TradeStateSuccess, TotalFee: 200, OutRefundNo: "0"},
		merchant.BillEntry{Time: at(9, 31, 0), OutTradeNo: stuck.OutTradeNo, TransactionID: "4200000000000000000000009002",
			State: wxpay.TradeStateSuccess, TotalFee: 300},
		func() merchant.BillEntry { r := payRow(amount); r.TotalFee = 499; return r }(),
		payRow(refunded),
		merchant.BillEntry{Time: at(12, 30, 0), OutTradeNo: refunded.OutTradeNo, State: wxpay.TradeStateRefund,
			OutRefundNo: "REFUNDTHEIRS", RefundID: "5030000", RefundFee: 50, RefundStatus: "SUCCESS"},
		refundRow(both, "SUCCESS"),
		merchant.BillEntry{Time: at(14, 0, 0), OutTradeNo: "NEVERISSUED1", TransactionID: "4200000000000000000000009003",
			State: wxpay.TradeStateSuccess, TotalFee: 900},
		payRow(late),
	)
	e.gw.setBill("2026-11-29", payRow(early))
	// The next day's bill is read at 11:00 the day after.

	rep, found := e.reconcile(date)
	want := []string{
		"amount_differs AMOUNT0001",
		"missing_in_bill SHORT00001",
		"missing_local LOST000001 healed",
		"missing_local STUCK00001",
		"refund_one_side REFORD0001 REFUNDOURS01",
		"refund_one_side REFORD0001 REFUNDTHEIRS",
		"unknown_order NEVERISSUED1",
	}
	if got := keys(found); !slices.Equal(got, want) {
		t.Fatalf("exceptions:\n got %q\nwant %q", got, want)
	}
	if got := e.stored(date); !slices.Equal(got, want) {
		t.Fatalf("stored exceptions:\n got %q\nwant %q", got, want)
	}
	_, _ = ours, short

	// The heal went through a query and left an audit row.
	o, err := e.store.Order(e.ctx, lost.OutTradeNo)
	if err != nil || o.Status != merchant.OrderPaid || o.TransactionID != "4200000000000000000000009001" {
		t.Fatalf("lost order after reconcile: %+v %v", o, err)
	}
	evs, err := e.store.Events(e.ctx, lost.OutTradeNo)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].To != merchant.OrderPaid || evs[len(evs)-1].Source != string(merchant.SourceQuery) {
		t.Fatalf("lost order events: %+v %v", evs, err)
	}
	if o, _ := e.store.Order(e.ctx, stuck.OutTradeNo); o.Status != merchant.OrderNotPay {
		t.Fatalf("stuck order changed without a payment: %s", o.Status)
	}

	// Bill: 100+200+300+499+1000+900+600 = 3599. Ours after the heal:
	// 100+200+400+500+1000+600 = 2800 (BOUNDARY02 is the next day's).
	wantRep := merchant.ReconReport{Date: date, BillRows: 9, Matched: 4, Exceptions: 7, Healed: 1,
		BillTotal: 3599, LocalTotal: 2800, BillRefunds: 150, RanAt: rep.RanAt}
	if *rep != wantRep {
		t.Errorf("report = %+v\nwant     %+v", *rep, wantRep)
	}
	checkI7(t, e, date)

	// Running again adds nothing; the healed payment now matches.
	rep2, found2 := e.reconcile(date)
	if got := e.stored(date); !slices.Equal(got, want) {
		t.Fatalf("second run changed the stored exceptions:\n got %q\nwant %q", got, want)
	}
	want2 := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return strings.HasSuffix(s, "healed") })
	if got := keys(found2); !slices.Equal(got, want2) {
		t.Fatalf("second run found:\n got %q\nwant %q", got, want2)
	}
	if rep2.Matched != 5 || rep2.Exceptions != 6 || rep2.Healed != 0 || rep2.LocalTotal != 2800 {
		t.Errorf("second report = %+v", *rep2)
	}
	checkI7(t, e, date)

	// The next day: the 00:00:00 payment is there, and nothing of date.
	e.now = now.AddDate(0, 0, 1)
	rep3, found3 := e.reconcile("2026-11-29")
	if len(found3) != 0 || rep3.Matched != 1 || rep3.LocalTotal != 700 || rep3.BillTotal != 700 {
		t.Fatalf("next day: %+v %q", *rep3, keys(found3))
	}
}

// reporter is what checkI7 needs of a *testing.T or a *rapid.T.
type reporter interface {
	Errorf(format string, args ...any)
	Fatal(args ...any)
}

// checkI7 is reliability.md I7, computed independently of the reconciler:
// every difference between the day's bill and our records has an exception
// row of that day for that order (or refund).
func checkI7(t reporter, e *env, date string) {
	d, _ := recon.ParseDate(date)
	rows, err := e.gw.Bill(e.ctx, d)
	if errors.Is(err, merchant.ErrNoBill) {
		rows, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.store.ReconExceptions(e.ctx, date)
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, x := range list {
		has[x.OutTradeNo+"/"+x.OutRefundNo] = true
	}
	orders, refunds, err := e.store.PaidBetween(e.ctx, d, d.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	inBill := map[string]bool{}
	for _, r := range rows {
		if r.State == wxpay.TradeStateRefund {
			inBill[r.OutTradeNo+"/"+r.OutRefundNo] = true
			lr, err := e.store.Refund(e.ctx, r.OutRefundNo)
			accepted := lr != nil && (lr.Status == merchant.RefundProcessing || lr.Status == merchant.RefundSuccess || lr.Status == merchant.RefundChange)
			closed := lr != nil && (lr.Status == merchant.RefundClosed || lr.Status == merchant.RefundFailed)
			if r.RefundStatus == "REFUNDCLOSE" {
				accepted = closed // WeChat closed it: so should we have
			}
			same := err == nil && lr.OutTradeNo == r.OutTradeNo && lr.RefundFee == r.RefundFee && accepted
			if !same && !has[r.OutTradeNo+"/"+r.OutRefundNo] {
				t.Errorf("I7: bill refund %s/%s differs from ours and has no exception", r.OutTradeNo, r.OutRefundNo)
			}
			continue
		}
		inBill[r.OutTradeNo+"/"] = true
		o, err := e.store.Order(e.ctx, r.OutTradeNo)
		same := err == nil && o.Status.Paid() && o.TotalFee == r.TotalFee && o.TransactionID == r.TransactionID
		if !same && !has[r.OutTradeNo+"/"] {
			t.Errorf("I7: bill payment %s differs from ours and has no exception", r.OutTradeNo)
		}
	}
	for _, o := range orders {
		if !inBill[o.OutTradeNo+"/"] && !has[o.OutTradeNo+"/"] {
			t.Errorf("I7: our payment %s is not in the bill and has no exception", o.OutTradeNo)
		}
	}
	for _, r := range refunds {
		if r.Status == merchant.RefundSuccess && !inBill[r.OutTradeNo+"/"+r.OutRefundNo] && !has[r.OutTradeNo+"/"+r.OutRefundNo] {
			t.Errorf("I7: our refund %s is not in the bill and has no exception", r.OutRefundNo)
		}
	}
}

// TestReconcileRefundHeal: a refund still RESERVED here (WeChat's answer
// was lost) that the bill lists is settled by a refund query.
func TestReconcileRefundHeal(t *testing.T) {
	e := newEnv(t)
	o := e.paid("ORDERRF001", 1000, at(9, 0, 0))
	r := e.refund(o, "REFUNDRES001", 400, at(10, 0, 0), merchant.RefundReserved)
	e.gw.refunds[r.OutRefundNo] = &merchant.RefundResult{OutRefundNo: r.OutRefundNo, OutTradeNo: o.OutTradeNo,
		RefundID: "503001", RefundFee: 400, Status: merchant.RefundSuccess, SuccessAt: at(10, 0, 5)}
	e.gw.setBill(date, payRow(o), refundRow(r, "SUCCESS"))

	_, found := e.reconcile(date)
	if got, want := keys(found), []string{"refund_one_side ORDERRF001 REFUNDRES001 healed"}; !slices.Equal(got, want) {
		t.Fatalf("exceptions %q, want %q", got, want)
	}
	if got, _ := e.store.Refund(e.ctx, r.OutRefundNo); got.Status != merchant.RefundSuccess {
		t.Fatalf("refund after reconcile: %s", got.Status)
	}
	checkI7(t, e, date)
}

// TestReconcileNoBill: WeChat has no bill for a day without payments —
// fine; with our payments that day, each is missing from the bill.
func TestReconcileNoBill(t *testing.T) {
	e := newEnv(t)
	rep, found := e.reconcile(date)
	if len(found) != 0 || rep.BillRows != 0 || rep.LocalTotal != 0 {
		t.Fatalf("empty day: %+v %q", *rep, keys(found))
	}
	e.paid("ORDERNB001", 100, at(9, 0, 0))
	_, found = e.reconcile(date)
	if got, want := keys(found), []string{"missing_in_bill ORDERNB001"}; !slices.Equal(got, want) {
		t.Fatalf("exceptions %q, want %q", got, want)
	}
	checkI7(t, e, date)
}

func TestReconcileNotReady(t *testing.T) {
	e := newEnv(t)
	e.paid("ORDERNR001", 100, at(9, 0, 0))
	for _, tc := range []struct {
		name string
		now  time.Time
		err  error
	}{
		{"day not over", at(23, 0, 0), nil},
		{"no bill before 10:00", at(24+9, 59, 0), nil},
		{"bill creating", at(24+11, 0, 0), fmt.Errorf("%w: Bill Creating", merchant.ErrBillNotReady)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.now = tc.now
			e.gw.billErr = tc.err
			rep, _, err := e.rec.Reconcile(e.ctx, date)
			var nr *recon.NotReadyError
			if rep != nil || !errors.As(err, &nr) || !errors.Is(err, merchant.ErrBillNotReady) {
				t.Fatalf("Reconcile = %v, %v; want a NotReadyError", rep, err)
			}
			if merchant.ErrorCode(err) != merchant.EUNAVAILABLE {
				t.Errorf("code %q, want %q", merchant.ErrorCode(err), merchant.EUNAVAILABLE)
			}
			if !strings.Contains(err.Error(), "10:00") && tc.err == nil {
				t.Errorf("the error should say when to retry: %v", err)
			}
			if _, err := e.store.Recon(e.ctx, date); merchant.ErrorCode(err) != merchant.ENOTFOUND {
				t.Errorf("a report was saved: %v", err)
			}
		})
	}
}

// TestReconcileRefusesBadBills: a bill that does not add up is an error,
// never a partial reconciliation (reliability.md E2).
func TestReconcileRefusesBadBills(t *testing.T) {
	e := newEnv(t)
	o := e.paid("ORDERBAD01", 100, at(9, 0, 0))
	for _, tc := range []struct {
		name string
		rows []merchant.BillEntry
		err  error
	}{
		{"parser refused", nil, fmt.Errorf("%w: apiv2: bill truncated", merchant.ErrRejected)},
		{"row of another day", []merchant.BillEntry{func() merchant.BillEntry { r := payRow(o); r.Time = day.AddDate(0, 0, 1); return r }()}, nil},
		{"payment twice", []merchant.BillEntry{payRow(o), payRow(o)}, nil},
		{"no out_trade_no", []merchant.BillEntry{{Time: at(1, 0, 0), State: wxpay.TradeStateSuccess, TotalFee: 1}}, nil},
		{"refund without number", []merchant.BillEntry{{Time: at(1, 0, 0), OutTradeNo: o.OutTradeNo, State: wxpay.TradeStateRefund, OutRefundNo: "0", RefundFee: 1}}, nil},
		{"odd state", []merchant.BillEntry{{Time: at(1, 0, 0), OutTradeNo: o.OutTradeNo, State: wxpay.TradeStateNotPay, TotalFee: 1}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.gw.billErr = tc.err
			e.gw.setBill(date, tc.rows...)
			rep, _, err := e.rec.Reconcile(e.ctx, date)
			if err == nil || rep != nil {
				t.Fatalf("Reconcile = %+v, %v; want an error", rep, err)
			}
			if errors.Is(err, merchant.ErrBillNotReady) {
				t.Fatalf("a bad bill is not a bill not ready: %v", err)
			}
			if _, err := e.store.Recon(e.ctx, date); merchant.ErrorCode(err) != merchant.ENOTFOUND {
				t.Errorf("a report was saved: %v", err)
			}
			if got := e.stored(date); len(got) != 0 {
				t.Errorf("exceptions stored from a bad bill: %q", got)
			}
		})
	}
}

// TestReconcileHealFails: when the query that would heal a payment fails,
// the run fails (to be retried) instead of recording the payment as
// missing for good.
func TestReconcileHealFails(t *testing.T) {
	e := newEnv(t)
	lost := e.order("LOSTFAIL01", 200, at(9, 0, 0))
	e.gw.setBill(date, merchant.BillEntry{Time: at(9, 1, 0), OutTradeNo: lost.OutTradeNo, TransactionID: "42001",
		State: wxpay.TradeStateSuccess, TotalFee: 200})
	e.gw.queryErr = fmt.Errorf("%w: timeout", merchant.ErrUnknownOutcome)
	if _, _, err := e.rec.Reconcile(e.ctx, date); !errors.Is(err, merchant.ErrUnknownOutcome) {
		t.Fatalf("Reconcile error = %v, want the query's", err)
	}
	if got := e.stored(date); len(got) != 0 {
		t.Fatalf("exceptions stored: %q", got)
	}
	e.gw.queryErr = nil
	e.gw.paidAtWeChat(lost, "42001", at(9, 1, 0), 200)
	_, found := e.reconcile(date)
	if got, want := keys(found), []string{"missing_local LOSTFAIL01 healed"}; !slices.Equal(got, want) {
		t.Fatalf("exceptions %q, want %q", got, want)
	}
}

func TestParseDate(t *testing.T) {
	for _, bad := range []string{"", "2026-2-3", "20261128", "2026-02-30", "2026-11-28T00:00:00Z", " 2026-11-28"} {
		if _, err := recon.ParseDate(bad); merchant.ErrorCode(err) != merchant.EINVALID {
			t.Errorf("ParseDate(%q) = %v, want EINVALID", bad, err)
		}
	}
	d, err := recon.ParseDate(date)
	if err != nil || !d.Equal(day) {
		t.Fatalf("ParseDate(%q) = %v, %v", date, d, err)
	}
	e := newEnv(t)
	if _, _, err := e.rec.Reconcile(e.ctx, "yesterday"); merchant.ErrorCode(err) != merchant.EINVALID {
		t.Fatalf("Reconcile(bad date) = %v", err)
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 11, 29, 10, 0, 0, 0, wxpay.China), "2026-11-28"},
		{time.Date(2026, 11, 28, 16, 30, 0, 0, time.UTC), "2026-11-28"}, // 00:30 on the 29th in China
		{time.Date(2026, 3, 1, 10, 0, 0, 0, wxpay.China), "2026-02-28"},
	} {
		if got := recon.Yesterday(tc.now); got != tc.want {
			t.Errorf("Yesterday(%v) = %s, want %s", tc.now, got, tc.want)
		}
	}
}
