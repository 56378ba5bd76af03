package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/internal/pgtest"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/postgres"
	"github.com/wxpay-go/wxpay/merchant/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.New(t))
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

// TestOpenConcurrently: instances that start together on one database
// migrate one at a time and all open.
func TestOpenConcurrently(t *testing.T) {
	dsn := pgtest.New(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			defer s.Close()
			if err := s.Ping(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestRetry: a transaction that PostgreSQL aborts with a serialization
// failure or a deadlock is run again, and a failure that lasts is reported
// with the state unchanged.
func TestRetry(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	pool := s.Pool()
	// Inserts into order_events and refunds fail while nextval('tries') ≤
	// failures.n, with failures.code. A sequence is not rolled back with
	// the transaction that the failure aborts, so it counts the tries.
	if _, err := pool.Exec(ctx, `
		CREATE SEQUENCE tries;
		CREATE TABLE failures (n bigint NOT NULL, code text NOT NULL);
		INSERT INTO failures VALUES (0, '40001');
		CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE f failures;
		BEGIN
			SELECT * INTO f FROM failures;
			IF nextval('tries') <= f.n THEN
				RAISE EXCEPTION 'injected failure' USING ERRCODE = f.code;
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail BEFORE INSERT ON order_events FOR EACH ROW EXECUTE FUNCTION fail();
		CREATE TRIGGER fail BEFORE INSERT ON refunds FOR EACH ROW EXECUTE FUNCTION fail();`); err != nil {
		t.Fatal(err)
	}
	failures := func(n int, code string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `ALTER SEQUENCE tries RESTART`); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE failures SET n = $1, code = $2`, n, code); err != nil {
			t.Fatal(err)
		}
	}
	tries := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT last_value FROM tries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now()
	create := func(no string) {
		t.Helper()
		if _, _, err := s.CreateOrder(ctx, &merchant.Order{OutTradeNo: no, AppID: "wx", MchID: "m", TotalFee: 100}); err != nil {
			t.Fatal(err)
		}
	}
	pay := func(no string) (merchant.PayOutcome, error) {
		out, _, err := s.MarkPaid(ctx, &merchant.Payment{OutTradeNo: no, TransactionID: "tx" + no, AppID: "wx", MchID: "m", TotalFee: 100}, now)
		return out, err
	}

	for _, code := range []string{"40001", "40P01"} {
		// Fails twice, then works: MarkPaid (one statement) and
		// ReserveRefund (a transaction) both get through.
		no := "R" + code
		create(no)
		failures(2, code)
		if out, err := pay(no); err != nil || out != merchant.PayApplied {
			t.Fatalf("%s: MarkPaid = %v, %v; want applied after retries", code, out, err)
		}
		if n := tries(); n != 3 {
			t.Fatalf("%s: MarkPaid tried %d times; want 3", code, n)
		}
		failures(2, code)
		if _, created, err := s.ReserveRefund(ctx, &merchant.Refund{OutRefundNo: no + "-r", OutTradeNo: no, RefundFee: 10}, now); err != nil || !created {
			t.Fatalf("%s: ReserveRefund = %v, %v; want created after retries", code, created, err)
		}
		if o, err := s.Order(ctx, no); err != nil || o.RefundedFee != 10 || o.RefundCount != 1 {
			t.Fatalf("%s: order after the retried reservation: %+v, %v", code, o, err)
		}
	}

	// Fails for good: an error, and nothing changed.
	create("F1")
	failures(1000, "40001")
	if _, err := pay("F1"); err == nil {
		t.Fatal("MarkPaid succeeded through lasting failures")
	}
	failures(0, "40001")
	if o, err := s.Order(ctx, "F1"); err != nil || o.Status != merchant.OrderNotPay {
		t.Fatalf("after the failure: %+v, %v", o, err)
	}
	if ob, err := s.OutboxFor(ctx, "F1"); err != nil || len(ob) != 0 {
		t.Fatalf("outbox after the failure: %v, %v", ob, err)
	}
	if out, err := pay("F1"); err != nil || out != merchant.PayApplied {
		t.Fatalf("MarkPaid once the failures stop = %v, %v", out, err)
	}
}

// TestSchema: the log of transitions is append-only, money is whole fen,
// and an order's refunds never exceed it, whatever writes to the database.
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
		`TRUNCATE order_events CASCADE`,
		`UPDATE orders SET refunded_fee = 101`,
		`UPDATE orders SET status = 'PAID'`, // no transaction id
		`UPDATE orders SET status = 'LOST'`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
	// Money columns are bigint (1.5 would be rounded, never stored).
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name IN ('total_fee', 'refunded_fee', 'refund_fee',
			'bill_total', 'local_total', 'bill_refunds') AND data_type <> 'bigint'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d money columns are not bigint (%v)", n, err)
	}
}
