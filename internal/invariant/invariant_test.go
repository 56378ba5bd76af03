package invariant_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/wxsim"
)

const (
	appID = wxsim.DefaultAppID
	mchID = wxsim.DefaultMchID
)

// now is the time of the world the tests build: 2026-11-28 12:00 CST.
var now = time.Date(2026, 11, 28, 12, 0, 0, 0, wxpay.China)

// world is a consistent pair of records: a SQLite store and a ledger that
// agree, with one order in each interesting state.
//
//	A  paid                 (local PAID,   WeChat SUCCESS)
//	B  closed               (local CLOSED, WeChat CLOSED)
//	C  paid, refunded 500   (local REFUND, WeChat REFUND, refund R1 SUCCESS)
//	D  unpaid, not expired  (local NOTPAY, WeChat NOTPAY)
type world struct {
	t      *testing.T
	ctx    context.Context
	store  *sqlite.Store
	ledger wxsim.Ledger
}

const (
	orderA = "WXA000000000000001"
	orderB = "WXB000000000000001"
	orderC = "WXC000000000000001"
	orderD = "WXD000000000000001"
	refund = "RF0000000000000001"
)

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), sqlite.WithNow(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, ctx: ctx, store: st, ledger: wxsim.Ledger{Now: now}}
	created := now.Add(-time.Hour)
	for _, no := range []string{orderA, orderB, orderC, orderD} {
		expires := created.Add(30 * time.Minute)
		if no == orderD {
			expires = now.Add(30 * time.Minute)
		}
		_, _, err := st.CreateOrder(ctx, &merchant.Order{OutTradeNo: no, OpenID: "oUser", AppID: appID, MchID: mchID,
			TradeType: wxpay.TradeTypeJSAPI, TotalFee: 1500, Body: "coffee", ClientIP: "127.0.0.1",
			Items:     []merchant.Item{{SKU: "COFFEE", Name: "coffee", Quantity: 1, UnitPrice: 1500}},
			ExpiresAt: expires, CreatedAt: created})
		if err != nil {
			t.Fatal(err)
		}
		w.ledger.Orders = append(w.ledger.Orders, wxsim.Order{MchID: mchID, AppID: appID, OutTradeNo: no,
			TradeType: wxpay.TradeTypeJSAPI, State: wxpay.TradeStateNotPay, TotalFee: 1500, CreatedAt: created, TimeExpire: expires})
	}
	paidAt := now.Add(-50 * time.Minute)
	for i, no := range []string{orderA, orderC} {
		txn := "42000000000000000000000000" + string(rune('1'+i)) + "0"
		w.pay(no, txn, paidAt)
	}
	if _, err := st.MarkClosed(ctx, orderB, merchant.OrderClosed, "close", now); err != nil {
		t.Fatal(err)
	}
	w.sim(orderB).State = wxpay.TradeStateClosed

	if _, _, err := st.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: refund, OutTradeNo: orderC, RefundFee: 500}, now); err != nil {
		t.Fatal(err)
	}
	for _, to := range []merchant.RefundStatus{merchant.RefundProcessing, merchant.RefundSuccess} {
		if _, err := st.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: refund, To: to, RefundID: "503", Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	c := w.sim(orderC)
	c.State = wxpay.TradeStateRefund
	c.Refunded = 500
	c.Refunds = []wxsim.Refund{{MchID: mchID, OutTradeNo: orderC, TransactionID: c.TransactionID, OutRefundNo: refund,
		RefundID: "503", RefundFee: 500, TotalFee: 1500, Status: wxpay.RefundStatusSuccess, Executions: 1, Requests: 1}}
	w.ledger.Refunds = c.Refunds
	return w
}

// pay marks an order paid on both sides.
func (w *world) pay(no, txn string, at time.Time) {
	w.t.Helper()
	out, _, err := w.store.MarkPaid(w.ctx, &merchant.Payment{OutTradeNo: no, TransactionID: txn, AppID: appID, MchID: mchID,
		TotalFee: 1500, CashFee: 1500, FeeType: "CNY", PaidAt: at, Source: merchant.SourceNotify}, now)
	if err != nil || out != merchant.PayApplied {
		w.t.Fatalf("pay %s: %s %v", no, out, err)
	}
	s := w.sim(no)
	s.State, s.Paid, s.PaidAt, s.TransactionID = wxpay.TradeStateSuccess, true, at, txn
}

func (w *world) sim(no string) *wxsim.Order {
	for i := range w.ledger.Orders {
		if w.ledger.Orders[i].OutTradeNo == no {
			return &w.ledger.Orders[i]
		}
	}
	w.t.Fatalf("no sim order %s", no)
	return nil
}

// exec runs raw SQL behind the store's back: how the tests seed records
// that the store itself would never write.
func (w *world) exec(query string, args ...any) {
	w.t.Helper()
	if _, err := w.store.DB().ExecContext(w.ctx, query, args...); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) check(in invariant.Input) *invariant.Report {
	w.t.Helper()
	in.Store, in.Ledger, in.MchID = w.store, w.ledger, mchID
	if in.Now.IsZero() {
		in.Now = now
	}
	if in.Grace == 0 {
		in.Grace = 5 * time.Minute
	}
	r, err := invariant.Check(w.ctx, in)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func violations(r *invariant.Report) map[string]int {
	m := map[string]int{}
	for _, res := range r.Results {
		if res.Violations > 0 {
			m[res.ID] = res.Violations
		}
	}
	return m
}

func TestConsistentWorld(t *testing.T) {
	w := newWorld(t)
	r := w.check(invariant.Input{Canaries: []string{"CANARY-secret-1"}, Texts: []string{"a log line", "a response"}})
	if !r.OK() {
		t.Fatalf("a consistent world has violations:\n%s", r)
	}
	if len(r.Results) != 9 {
		t.Fatalf("%d results, want 9", len(r.Results))
	}
	want := map[string]int{"I1": 4, "I2": 2, "I4": 4, "I5": 4, "I6": 2, "I8": 4, "I9": 2}
	for _, res := range r.Results {
		if n, ok := want[res.ID]; ok && res.Checked != n {
			t.Errorf("%s checked %d, want %d", res.ID, res.Checked, n)
		}
	}
	lines := strings.Split(r.String(), "\n")
	if len(lines) != 9 || lines[0] != "I1 local state agrees with WeChat: 4 checked, 0 violations" {
		t.Fatalf("String:\n%s", r)
	}
}

// TestSeededViolations seeds one kind of violation at a time and checks
// the checker sees it, in the invariant it belongs to.
func TestSeededViolations(t *testing.T) {
	const canary = "CANARYapikeyCANARYapikey00000001"
	cases := []struct {
		name string
		seed func(w *world) invariant.Input
		want map[string]int // invariant → violations (exactly these)
	}{
		{"I1 paid at WeChat, unpaid here", func(w *world) invariant.Input {
			s := w.sim(orderD)
			s.State, s.Paid, s.PaidAt, s.TransactionID = wxpay.TradeStateSuccess, true, now, "4200000000000000000000000099"
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I2": 2, "I7": 1}},
		{"I1 paid here, unknown to WeChat", func(w *world) invariant.Input {
			w.ledger.Orders = w.ledger.Orders[1:] // drop A
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I2": 2, "I7": 1}},
		{"I1 WeChat order we never saw", func(w *world) invariant.Input {
			w.ledger.Orders = append(w.ledger.Orders, wxsim.Order{MchID: mchID, AppID: appID, OutTradeNo: "WXE000000000000001",
				State: wxpay.TradeStateNotPay, TotalFee: 100, TimeExpire: now.Add(time.Hour)})
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I7": 1}},
		{"I1 closed here, still payable at WeChat", func(w *world) invariant.Input {
			w.sim(orderB).State = wxpay.TradeStateNotPay
			w.sim(orderB).TimeExpire = now.Add(time.Hour)
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I7": 1}},
		{"I1 closed at WeChat, open here", func(w *world) invariant.Input {
			w.sim(orderD).State = wxpay.TradeStateClosed
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I7": 1}},
		{"I1 NOTPAY past time_expire at WeChat counts as closed", func(w *world) invariant.Input {
			w.sim(orderB).State = wxpay.TradeStateNotPay // expired 30 minutes ago
			return invariant.Input{}
		}, map[string]int{}},
		{"I7 a difference recorded by an anomaly is excused", func(w *world) invariant.Input {
			s := w.sim(orderD)
			s.State, s.Paid, s.PaidAt, s.TransactionID = wxpay.TradeStateSuccess, true, now, "4200000000000000000000000099"
			if _, err := w.store.RecordAnomaly(w.ctx, &merchant.Anomaly{OutTradeNo: orderD, Kind: merchant.AnomalyAmount,
				Ref: "x", Detail: "test", CreatedAt: now}); err != nil {
				w.t.Fatal(err)
			}
			return invariant.Input{}
		}, map[string]int{}},
		{"I7 a difference recorded by an open recon exception is excused", func(w *world) invariant.Input {
			w.ledger.Orders = append(w.ledger.Orders, wxsim.Order{MchID: mchID, AppID: appID, OutTradeNo: "WXE000000000000001",
				State: wxpay.TradeStateSuccess, Paid: true, PaidAt: now, TotalFee: 100, TransactionID: "4200000000000000000000000077"})
			if _, err := w.store.AddReconException(w.ctx, &merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconUnknownOrder,
				OutTradeNo: "WXE000000000000001", Detail: "test", CreatedAt: now}); err != nil {
				w.t.Fatal(err)
			}
			return invariant.Input{}
		}, map[string]int{}},
		{"I7 a healed recon exception excuses nothing", func(w *world) invariant.Input {
			w.sim(orderD).State = wxpay.TradeStateClosed
			if _, err := w.store.AddReconException(w.ctx, &merchant.ReconException{Date: "2026-11-28", Kind: merchant.ReconMissingLocal,
				OutTradeNo: orderD, Detail: "test", Healed: true, CreatedAt: now}); err != nil {
				w.t.Fatal(err)
			}
			return invariant.Input{}
		}, map[string]int{"I1": 1, "I7": 1}},
		{"I2 paid on another day at WeChat", func(w *world) invariant.Input {
			w.sim(orderA).PaidAt = now.Add(24 * time.Hour)
			return invariant.Input{}
		}, map[string]int{"I2": 2, "I7": 1}},
		{"I3 executed twice at WeChat", func(w *world) invariant.Input {
			w.sim(orderC).Refunds[0].Executions = 2
			return invariant.Input{}
		}, map[string]int{"I3": 1}},
		{"I3 WeChat refunded more than paid", func(w *world) invariant.Input {
			c := w.sim(orderC)
			c.Refunds = append(c.Refunds, wxsim.Refund{MchID: mchID, OutTradeNo: orderC, OutRefundNo: "RF0000000000000002",
				RefundFee: 1400, TotalFee: 1500, Status: wxpay.RefundStatusSuccess, Executions: 1})
			return invariant.Input{}
		}, map[string]int{"I3": 2, "I7": 1}}, // the bound, and a refund we do not have
		{"I3 a refund WeChat never heard of", func(w *world) invariant.Input {
			if _, _, err := w.store.ReserveRefund(w.ctx, &merchant.Refund{OutRefundNo: "RF0000000000000003", OutTradeNo: orderA, RefundFee: 100}, now); err != nil {
				w.t.Fatal(err)
			}
			return invariant.Input{}
		}, map[string]int{"I3": 1, "I7": 1}},
		{"I3 a refund FAILED here and unknown to WeChat is fine", func(w *world) invariant.Input {
			if _, _, err := w.store.ReserveRefund(w.ctx, &merchant.Refund{OutRefundNo: "RF0000000000000003", OutTradeNo: orderA, RefundFee: 100}, now); err != nil {
				w.t.Fatal(err)
			}
			if _, err := w.store.UpdateRefund(w.ctx, merchant.RefundUpdate{OutRefundNo: "RF0000000000000003", To: merchant.RefundFailed, Now: now}); err != nil {
				w.t.Fatal(err)
			}
			return invariant.Input{}
		}, map[string]int{}},
		{"I3 refund states disagree", func(w *world) invariant.Input {
			w.sim(orderC).Refunds[0].Status = wxpay.RefundStatusClosed
			w.sim(orderC).Refunded = 0
			return invariant.Input{}
		}, map[string]int{"I3": 1, "I7": 1}},
		{"I3 local refunds above the order total", func(w *world) invariant.Input {
			w.exec(`INSERT INTO refunds (out_refund_no, out_trade_no, refund_fee, total_fee, status, created_at, updated_at)
				VALUES ('RF0000000000000004', ?, 1400, 1500, 'FAILED', 0, 0)`, orderC)
			w.exec(`UPDATE refunds SET status = 'SUCCESS' WHERE out_refund_no = 'RF0000000000000004'`)
			return invariant.Input{}
		}, map[string]int{"I3": 2, "I7": 1}}, // the bound, and a refund WeChat does not have
		{"I4 a step backwards", func(w *world) invariant.Input {
			w.exec(`INSERT INTO order_events (out_trade_no, from_status, to_status, source, at) VALUES (?, 'PAID', 'NOTPAY', 'bug', 0)`, orderA)
			w.exec(`INSERT INTO order_events (out_trade_no, from_status, to_status, source, at) VALUES (?, 'NOTPAY', 'PAID', 'bug', 0)`, orderA)
			return invariant.Input{}
		}, map[string]int{"I4": 1}},
		{"I4 status changed without an event", func(w *world) invariant.Input {
			w.exec(`UPDATE orders SET status = 'CLOSED' WHERE out_trade_no = ?`, orderD)
			w.sim(orderD).State = wxpay.TradeStateClosed
			return invariant.Input{}
		}, map[string]int{"I4": 1}},
		{"I5 a second order.paid event", func(w *world) invariant.Input {
			w.exec(`INSERT INTO outbox (type, out_trade_no, ref, payload, created_at, next_at) VALUES ('order.paid', ?, 'again', '{}', 0, 0)`, orderA)
			return invariant.Input{}
		}, map[string]int{"I5": 1}},
		{"I5 order.paid for an unpaid order", func(w *world) invariant.Input {
			w.exec(`INSERT INTO outbox (type, out_trade_no, ref, payload, created_at, next_at) VALUES ('order.paid', ?, ?, '{}', 0, 0)`, orderD, orderD)
			return invariant.Input{}
		}, map[string]int{"I5": 1}},
		{"I6 paid by another transaction", func(w *world) invariant.Input {
			w.sim(orderA).TransactionID = "4200000000000000000000000055"
			return invariant.Input{}
		}, map[string]int{"I6": 1}},
		{"I6 WeChat's order has another amount", func(w *world) invariant.Input {
			w.sim(orderA).TotalFee = 1499
			return invariant.Input{}
		}, map[string]int{"I6": 1, "I2": 2, "I7": 1}},
		{"I6 WeChat's order is of another app", func(w *world) invariant.Input {
			w.sim(orderA).AppID = "wx0000000000000000"
			return invariant.Input{}
		}, map[string]int{"I6": 1}},
		{"I8 expired and still NOTPAY", func(w *world) invariant.Input {
			return invariant.Input{Now: now.Add(36 * time.Minute)}
		}, map[string]int{"I8": 1}},
		{"I8 within the grace", func(w *world) invariant.Input {
			return invariant.Input{Now: now.Add(34 * time.Minute)}
		}, map[string]int{}},
		{"I9 a canary in a log", func(w *world) invariant.Input {
			return invariant.Input{Canaries: []string{canary, ""},
				Texts: []string{"clean", `{"msg":"signing","key":"` + canary + `"}`}}
		}, map[string]int{"I9": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			in := tc.seed(w)
			r := w.check(in)
			got := violations(r)
			if len(got) != len(tc.want) {
				t.Fatalf("violations %v, want %v:\n%s", got, tc.want, r)
			}
			for id, n := range tc.want {
				if got[id] != n {
					t.Fatalf("violations %v, want %v:\n%s", got, tc.want, r)
				}
			}
			if strings.Contains(r.String(), canary) {
				t.Fatalf("the report shows the canary:\n%s", r)
			}
			if len(tc.want) > 0 && r.OK() {
				t.Fatal("OK with violations")
			}
			for _, res := range r.Results {
				if len(res.Examples) > 5 || res.Violations > 0 && len(res.Examples) == 0 {
					t.Fatalf("%s: %d examples for %d violations", res.ID, len(res.Examples), res.Violations)
				}
			}
		})
	}
}

// TestManyOrders pages through more orders than one page holds.
func TestManyOrders(t *testing.T) {
	w := newWorld(t)
	for i := range 450 {
		no := "WXM" + strings.Repeat("0", 10) + string(rune('A'+i/26%26)) + string(rune('A'+i%26)) + "00" + string(rune('0'+i/676))
		expires := now.Add(time.Hour)
		if _, _, err := w.store.CreateOrder(w.ctx, &merchant.Order{OutTradeNo: no, OpenID: "oUser", AppID: appID, MchID: mchID,
			TradeType: wxpay.TradeTypeJSAPI, TotalFee: 100, ExpiresAt: expires, CreatedAt: now.Add(-time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		w.ledger.Orders = append(w.ledger.Orders, wxsim.Order{MchID: mchID, AppID: appID, OutTradeNo: no,
			State: wxpay.TradeStateNotPay, TotalFee: 100, TimeExpire: expires})
	}
	r := w.check(invariant.Input{})
	if !r.OK() || r.Results[0].Checked != 454 {
		t.Fatalf("%s", r)
	}
	// An order of another merchant is not compared.
	w.ledger.Orders = append(w.ledger.Orders, wxsim.Order{MchID: "1900000109", OutTradeNo: "WXOTHER0000000001", State: wxpay.TradeStateSuccess, Paid: true})
	if r := w.check(invariant.Input{}); !r.OK() {
		t.Fatalf("%s", r)
	}
}
