package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans checks that the statements of the money paths and the
// lists find their rows through an index, not by reading a whole table.
func TestQueryPlans(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queries := []string{
		sqlOrder, sqlOrderByKey, sqlOrderByTransaction, sqlPay, sqlClose,
		sqlRefund, sqlReserve, sqlUpdateRefund, sqlRelease, sqlRefundOrder,
		`SELECT ` + orderColumns + ` FROM orders WHERE status = 'NOTPAY' AND created_at < ?
			ORDER BY last_queried_at ASC NULLS FIRST, created_at ASC, out_trade_no ASC LIMIT ?`,
		`SELECT ` + orderColumns + ` FROM orders WHERE paid_at >= ? AND paid_at < ? ORDER BY paid_at, out_trade_no`,
		`SELECT ` + refundColumns + ` FROM refunds WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id`,
		`SELECT ` + refundColumns + ` FROM refunds WHERE out_trade_no = ? ORDER BY id`,
		`SELECT ` + orderColumns + ` FROM orders WHERE (created_at, out_trade_no) < (?, ?) ORDER BY created_at DESC, out_trade_no DESC LIMIT ?`,
		`SELECT ` + orderColumns + ` FROM orders WHERE open_id = ? ORDER BY created_at DESC, out_trade_no DESC LIMIT ?`,
		`SELECT ` + refundColumns + ` FROM refunds WHERE status IN (?, ?) AND updated_at < ? ORDER BY updated_at, id LIMIT ?`,
		`SELECT ` + outboxColumns + ` FROM outbox WHERE delivered_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`,
		`SELECT ` + outboxColumns + ` FROM outbox WHERE out_trade_no = ? ORDER BY id`,
		`SELECT id FROM order_events WHERE out_trade_no = ? ORDER BY id`,
		`SELECT id FROM anomalies WHERE out_trade_no = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
		`SELECT id FROM recon_exceptions WHERE healed = 0 ORDER BY id`,
		`SELECT id FROM recon_exceptions WHERE date = ? ORDER BY id`,
	}
	for _, q := range queries {
		rows, err := s.w.db.Query("EXPLAIN QUERY PLAN "+q, make([]any, strings.Count(q, "?"))...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "INDEX") {
				t.Errorf("%s\nreads a whole table: %s", strings.Join(strings.Fields(q), " "), strings.Join(plan, "; "))
			}
		}
	}
}
