package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/storetest"
)

func open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "merchant.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) merchant.Store { return open(t) })
}

// TestSecondPool: River keeps its own pool of one connection on the same
// file, opened with the store's DSN. Both write at once without errors.
func TestSecondPool(t *testing.T) {
	s := open(t)
	other, err := sql.Open("sqlite", s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			tx, err := other.BeginTx(ctx, nil)
			if err != nil {
				t.Errorf("jobs: begin: %v", err)
				return
			}
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM jobs`).Scan(&n); err != nil {
				t.Errorf("jobs: %v", err)
			}
			if _, err := tx.Exec(`INSERT INTO jobs (v) VALUES (?)`, fmt.Sprint(i)); err != nil {
				t.Errorf("jobs: %v", err)
			}
			if err := tx.Commit(); err != nil {
				t.Errorf("jobs: commit: %v", err)
			}
		}
	})
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				no := fmt.Sprintf("P%d-%d", i, j)
				o := &merchant.Order{OutTradeNo: no, AppID: "wx", MchID: "m", TotalFee: 100}
				if _, _, err := s.CreateOrder(ctx, o); err != nil {
					t.Errorf("CreateOrder: %v", err)
					return
				}
				p := &merchant.Payment{OutTradeNo: no, TransactionID: "tx" + no, AppID: "wx", MchID: "m", TotalFee: 100}
				if out, _, err := s.MarkPaid(ctx, p, time.Now()); err != nil || out != merchant.PayApplied {
					t.Errorf("MarkPaid = %v, %v", out, err)
				}
			}
		})
	}
	wg.Wait()
	var jobs int
	if err := other.QueryRow(`SELECT count(*) FROM jobs`).Scan(&jobs); err != nil || jobs != 200 {
		t.Fatalf("%d jobs, %v", jobs, err)
	}
	if orders, _, err := s.ListOrders(ctx, merchant.OrderFilter{Status: merchant.OrderPaid, Limit: 200}); err != nil || len(orders) != 200 {
		t.Fatalf("%d paid orders, %v", len(orders), err)
	}
}

// TestBusy: another connection holds the write lock longer than the busy
// timeout. The store's write fails, changes nothing, and succeeds once the
// lock is free.
func TestBusy(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "merchant.db"), sqlite.WithBusyTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: "O1", AppID: "wx", MchID: "m", TotalFee: 100}); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin() // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	p := &merchant.Payment{OutTradeNo: "O1", TransactionID: "tx1", AppID: "wx", MchID: "m", TotalFee: 100}
	if _, _, err := s.MarkPaid(ctx, p, time.Now()); err == nil || merchant.ErrorCode(err) != merchant.EINTERNAL {
		t.Fatalf("MarkPaid under another writer's lock: %v; want an internal error", err)
	}
	tx.Rollback()
	o, err := s.Order(ctx, "O1")
	if err != nil || o.Status != merchant.OrderNotPay {
		t.Fatalf("after the failure: %v, %v", o, err)
	}
	if out, _, err := s.MarkPaid(ctx, p, time.Now()); err != nil || out != merchant.PayApplied {
		t.Fatalf("MarkPaid again = %v, %v; want applied", out, err)
	}
}

// TestReopen: the data outlives the store, and migrating again is a no-op.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "merchant.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: "O1", AppID: "wx", MchID: "m", TotalFee: 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.Order(ctx, "O1"); err != nil || o.TotalFee != 100 {
		t.Fatalf("after reopening: %v, %v", o, err)
	}
	if s.Path() != path || !strings.HasPrefix(s.DSN(), path+"?") {
		t.Fatalf("Path %q, DSN %q", s.Path(), s.DSN())
	}
	if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: "O2", AppID: "wx", MchID: "m", TotalFee: 100}); err != nil {
		t.Fatal(err)
	}
	// A closed store refuses writes.
	s.Close()
	if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: "O3", AppID: "wx", MchID: "m", TotalFee: 100}); err == nil {
		t.Fatal("a closed store wrote")
	}
}

// TestSchema: the log of transitions is append-only, money is whole fen,
// and an order's refunds never exceed it, whatever writes to the file.
func TestSchema(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: "O1", AppID: "wx", MchID: "m", TotalFee: 100}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkClosed(ctx, "O1", merchant.OrderClosed, "close", time.Now()); err != nil || !ok {
		t.Fatalf("MarkClosed = %v, %v", ok, err)
	}
	for _, q := range []string{
		`UPDATE order_events SET to_status = 'PAID'`,
		`DELETE FROM order_events`,
		`UPDATE orders SET total_fee = 1.5`,
		`UPDATE orders SET refunded_fee = 101`,
		`UPDATE orders SET status = 'PAID'`, // no transaction id
		`UPDATE orders SET status = 'LOST'`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}
