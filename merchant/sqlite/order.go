package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

const orderColumns = `out_trade_no, open_id, app_id, mch_id, trade_type, items, total_fee, body, client_ip,
	status, prepay_state, prepay_id, code_url, prepay_expires_at, expires_at, transaction_id, paid_at,
	refunded_fee, refund_count, idempotency_key, created_at, updated_at, last_queried_at`

type scanner interface{ Scan(dest ...any) error }

// Statements of the write transactions.
const (
	sqlOrder       = `SELECT ` + orderColumns + ` FROM orders WHERE out_trade_no = ?`
	sqlOrderByKey  = `SELECT ` + orderColumns + ` FROM orders WHERE open_id = ? AND idempotency_key = ? AND idempotency_key <> ''`
	sqlInsertOrder = `INSERT INTO orders (` + orderColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// The "<> ''" terms let SQLite use the partial unique indexes.
	sqlOrderByTransaction = `SELECT out_trade_no FROM orders WHERE transaction_id = ? AND transaction_id <> ''`
	sqlPay                = `UPDATE orders SET status = 'PAID', transaction_id = ?, paid_at = ?, updated_at = ?
		WHERE out_trade_no = ? AND status = ?`
	sqlClose = `UPDATE orders SET status = ?, updated_at = ? WHERE out_trade_no = ? AND status = 'NOTPAY'`
)

func scanOrder(row scanner) (*merchant.Order, error) {
	var o merchant.Order
	var items string
	err := row.Scan(&o.OutTradeNo, &o.OpenID, &o.AppID, &o.MchID, &o.TradeType, &items, &o.TotalFee, &o.Body, &o.ClientIP,
		&o.Status, &o.PrepayState, &o.PrepayID, &o.CodeURL, timeCol{&o.PrepayExpiresAt}, timeCol{&o.ExpiresAt},
		&o.TransactionID, timeCol{&o.PaidAt}, &o.RefundedFee, &o.RefundCount, &o.IdempotencyKey,
		timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt}, timeCol{&o.LastQueriedAt})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return nil, fmt.Errorf("sqlite: order %s: items: %w", o.OutTradeNo, err)
	}
	return &o, nil
}

func getOrder(ctx context.Context, q queryer, outTradeNo string) (*merchant.Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, sqlOrder, outTradeNo))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, merchant.Errorf(merchant.ENOTFOUND, "order %s not found", outTradeNo)
	}
	if err != nil {
		return nil, errf(err, "order %s", outTradeNo)
	}
	return o, nil
}

// CreateOrder inserts o as NOTPAY and PrepayPending, with nothing paid or
// refunded; CreatedAt and UpdatedAt default to now. When the same (OpenID,
// IdempotencyKey) exists it returns that order and false. It fails with
// EINVALID without an OutTradeNo or a positive TotalFee, and with ECONFLICT
// when the OutTradeNo is taken.
func (s *Store) CreateOrder(ctx context.Context, o *merchant.Order) (*merchant.Order, bool, error) {
	if o.OutTradeNo == "" {
		return nil, false, merchant.Errorf(merchant.EINVALID, "an order needs an out_trade_no")
	}
	if o.TotalFee <= 0 {
		return nil, false, merchant.Errorf(merchant.EINVALID, "an order's total_fee must be positive")
	}
	n := *o
	if o.Items != nil {
		n.Items = append([]merchant.Item{}, o.Items...)
	}
	n.Status = merchant.OrderNotPay
	n.PrepayState = merchant.PrepayPending
	n.TransactionID, n.PaidAt, n.RefundedFee, n.RefundCount = "", time.Time{}, 0, 0
	n.CreatedAt = norm(s.clock(o.CreatedAt))
	n.UpdatedAt = n.CreatedAt
	if !o.UpdatedAt.IsZero() {
		n.UpdatedAt = norm(o.UpdatedAt)
	}
	n.PrepayExpiresAt, n.ExpiresAt, n.LastQueriedAt = norm(o.PrepayExpiresAt), norm(o.ExpiresAt), norm(o.LastQueriedAt)
	items, err := json.Marshal(n.Items)
	if err != nil {
		return nil, false, errf(err, "order %s: items", o.OutTradeNo)
	}

	var existing *merchant.Order
	err = s.writeTx(ctx, func(tx txq) error {
		existing = nil
		// Insert first: a key is new far more often than it is reused.
		res, err := tx.ExecContext(ctx, sqlInsertOrder,
			n.OutTradeNo, n.OpenID, n.AppID, n.MchID, string(n.TradeType), string(items), n.TotalFee, n.Body, n.ClientIP,
			string(n.Status), string(n.PrepayState), n.PrepayID, n.CodeURL, ts(n.PrepayExpiresAt), ts(n.ExpiresAt),
			n.TransactionID, ts(n.PaidAt), n.RefundedFee, n.RefundCount, n.IdempotencyKey,
			tsNotNull(n.CreatedAt), tsNotNull(n.UpdatedAt), ts(n.LastQueriedAt))
		if err != nil {
			return errf(err, "create order %s", n.OutTradeNo)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return nil
		}
		if n.IdempotencyKey != "" {
			e, err := scanOrder(tx.QueryRowContext(ctx, sqlOrderByKey, n.OpenID, n.IdempotencyKey))
			switch {
			case err == nil:
				existing = e
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return errf(err, "create order %s", n.OutTradeNo)
			}
		}
		return merchant.Errorf(merchant.ECONFLICT, "order %s exists", n.OutTradeNo)
	})
	if err != nil {
		return nil, false, err
	}
	if existing != nil {
		return existing, false, nil
	}
	return &n, true, nil
}

// Order returns an order; ENOTFOUND when there is none.
func (s *Store) Order(ctx context.Context, outTradeNo string) (*merchant.Order, error) {
	return getOrder(ctx, s.r, outTradeNo)
}

// SetPrepay records the outcome of unifiedorder on a NOTPAY order:
// ENOTFOUND when there is no such order, ECONFLICT when it is no longer
// NOTPAY.
func (s *Store) SetPrepay(ctx context.Context, outTradeNo string, st merchant.PrepayState, prepayID, codeURL string, expiresAt time.Time) error {
	switch st {
	case merchant.PrepayPending, merchant.PrepayOK, merchant.PrepayFailed:
	default:
		return merchant.Errorf(merchant.EINVALID, "unknown prepay state %q", st)
	}
	res, err := s.exec(ctx, `UPDATE orders SET prepay_state = ?, prepay_id = ?, code_url = ?, prepay_expires_at = ?, updated_at = ?
		WHERE out_trade_no = ? AND status = 'NOTPAY'`,
		string(st), prepayID, codeURL, ts(expiresAt), s.now().UnixMicro(), outTradeNo)
	if err != nil {
		return errf(err, "set prepay of %s", outTradeNo)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	o, err := getOrder(ctx, s.r, outTradeNo)
	if err != nil {
		return err
	}
	return merchant.Errorf(merchant.ECONFLICT, "order %s is %s, not NOTPAY", outTradeNo, o.Status)
}

// MarkPaid applies a verified payment in one transaction; see
// merchant.PayOutcome. An unknown order, a payment that disagrees with the
// order (merchant.Order.Check), a second transaction id for a paid order,
// or a transaction id that already pays another order is recorded as an
// anomaly (once per order, kind and transaction id) and rejected. A NOTPAY
// order becomes PAID (PayApplied); a CLOSED or PAYERROR one too, with a
// late_payment anomaly (PayLate). Either way an order event and the
// order.paid outbox event are written. PaidAt is p.PaidAt, or now when
// WeChat gave no time. The returned order is the state after the call (nil
// for an unknown order).
func (s *Store) MarkPaid(ctx context.Context, p *merchant.Payment, now time.Time) (merchant.PayOutcome, *merchant.Order, error) {
	now = norm(s.clock(now))
	var (
		out merchant.PayOutcome
		o   *merchant.Order
	)
	err := s.writeTx(ctx, func(tx txq) error {
		var err error
		o, err = getOrder(ctx, tx, p.OutTradeNo)
		if merchant.ErrorCode(err) == merchant.ENOTFOUND {
			o, out = nil, merchant.PayRejected
			_, err := recordAnomaly(ctx, tx, &merchant.Anomaly{OutTradeNo: p.OutTradeNo, Kind: merchant.AnomalyUnknownOrder,
				Ref: p.TransactionID, Detail: anomalyDetail(merchant.AnomalyUnknownOrder, nil, p), CreatedAt: now})
			return err
		}
		if err != nil {
			return err
		}
		if kind := o.Check(p); kind != "" {
			out = merchant.PayRejected
			_, err := recordAnomaly(ctx, tx, &merchant.Anomaly{OutTradeNo: o.OutTradeNo, Kind: kind,
				Ref: p.TransactionID, Detail: anomalyDetail(kind, o, p), CreatedAt: now})
			return err
		}
		switch o.Status {
		case merchant.OrderPaid, merchant.OrderRefund:
			if o.TransactionID == p.TransactionID {
				out = merchant.PayDuplicate
				return nil
			}
			out = merchant.PayRejected
			_, err := recordAnomaly(ctx, tx, &merchant.Anomaly{OutTradeNo: o.OutTradeNo, Kind: merchant.AnomalyTransaction,
				Ref: p.TransactionID, Detail: anomalyDetail(merchant.AnomalyTransaction, o, p), CreatedAt: now})
			return err
		case merchant.OrderNotPay, merchant.OrderClosed, merchant.OrderPayError:
		default:
			return fmt.Errorf("sqlite: order %s has an unknown status %q", o.OutTradeNo, o.Status)
		}

		from := o.Status
		paidAt := norm(p.PaidAt)
		if paidAt.IsZero() {
			paidAt = now
		}
		res, err := tx.ExecContext(ctx, sqlPay,
			p.TransactionID, tsNotNull(paidAt), tsNotNull(now), o.OutTradeNo, string(from))
		if isUnique(err) {
			// WeChat never reuses a transaction id: one that pays another
			// order already is an anomaly, not a payment of this one. (The
			// failed statement changed nothing; the transaction goes on.)
			var other string
			if err := tx.QueryRowContext(ctx, sqlOrderByTransaction, p.TransactionID).Scan(&other); err != nil {
				return errf(err, "mark %s paid", o.OutTradeNo)
			}
			out = merchant.PayRejected
			_, err := recordAnomaly(ctx, tx, &merchant.Anomaly{OutTradeNo: o.OutTradeNo, Kind: merchant.AnomalyTransaction,
				Ref: p.TransactionID, Detail: fmt.Sprintf("transaction %s already pays order %s", p.TransactionID, other), CreatedAt: now})
			return err
		}
		if err != nil {
			return errf(err, "mark %s paid", o.OutTradeNo)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			// BEGIN IMMEDIATE makes this impossible; refuse to go on.
			return fmt.Errorf("sqlite: mark %s paid: the order changed under the write lock", o.OutTradeNo)
		}
		o.Status, o.TransactionID, o.PaidAt, o.UpdatedAt = merchant.OrderPaid, p.TransactionID, paidAt, now
		if err := addEvent(ctx, tx, o.OutTradeNo, from, merchant.OrderPaid, paySource(p), now); err != nil {
			return err
		}
		payload, err := paidPayload(o)
		if err != nil {
			return err
		}
		if err := addOutbox(ctx, tx, merchant.EventOrderPaid, o.OutTradeNo, o.OutTradeNo, payload, now); err != nil {
			return err
		}
		out = merchant.PayApplied
		if from != merchant.OrderNotPay {
			out = merchant.PayLate
			_, err := recordAnomaly(ctx, tx, &merchant.Anomaly{OutTradeNo: o.OutTradeNo, Kind: merchant.AnomalyLatePayment,
				Ref: p.TransactionID, Detail: fmt.Sprintf("paid by transaction %s (%d fen) after the order was %s: refund it or ship it",
					p.TransactionID, p.TotalFee, from), CreatedAt: now})
			return err
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return out, o, nil
}

func paySource(p *merchant.Payment) string {
	if p.Source == "" {
		return "payment"
	}
	return string(p.Source)
}

// paidPayload is the JSON of an order.paid outbox event.
func paidPayload(o *merchant.Order) (string, error) {
	b, err := json.Marshal(struct {
		OutTradeNo    string    `json:"out_trade_no"`
		TransactionID string    `json:"transaction_id"`
		TotalFee      int64     `json:"total_fee"`
		PaidAt        time.Time `json:"paid_at"`
	}{o.OutTradeNo, o.TransactionID, o.TotalFee, o.PaidAt.UTC()})
	if err != nil {
		return "", fmt.Errorf("sqlite: outbox payload: %w", err)
	}
	return string(b), nil
}

// anomalyDetail describes a payment that cannot be applied, for people.
func anomalyDetail(kind merchant.AnomalyKind, o *merchant.Order, p *merchant.Payment) string {
	src := paySource(p)
	switch kind {
	case merchant.AnomalyUnknownOrder:
		return fmt.Sprintf("%s for an order we do not have (transaction %s, %d fen)", src, p.TransactionID, p.TotalFee)
	case merchant.AnomalyAmount:
		return fmt.Sprintf("%s says total_fee %d fen, the order's is %d fen", src, p.TotalFee, o.TotalFee)
	case merchant.AnomalyApp:
		return fmt.Sprintf("%s says appid %q, the order's is %q", src, p.AppID, o.AppID)
	case merchant.AnomalyMerchant:
		return fmt.Sprintf("%s says mch_id %q, the order's is %q", src, p.MchID, o.MchID)
	case merchant.AnomalyCurrency:
		return fmt.Sprintf("%s says fee_type %q, the order is in CNY", src, p.FeeType)
	case merchant.AnomalyMalformed:
		return fmt.Sprintf("%s without a transaction id", src)
	case merchant.AnomalyTransaction:
		return fmt.Sprintf("%s says transaction %s, the order was paid by %s", src, p.TransactionID, o.TransactionID)
	}
	return fmt.Sprintf("%s: %s", src, kind)
}

// MarkClosed moves a NOTPAY order to CLOSED or PAYERROR, with an order
// event, and reports whether it did (false when the order is no longer
// NOTPAY). ENOTFOUND when there is no such order; EINVALID for another
// target status.
func (s *Store) MarkClosed(ctx context.Context, outTradeNo string, to merchant.OrderStatus, source string, now time.Time) (bool, error) {
	if to != merchant.OrderClosed && to != merchant.OrderPayError {
		return false, merchant.Errorf(merchant.EINVALID, "an order cannot be closed as %q", to)
	}
	now = norm(s.clock(now))
	var done bool
	err := s.writeTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, sqlClose,
			string(to), tsNotNull(now), outTradeNo)
		if err != nil {
			return errf(err, "close %s", outTradeNo)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			done = false
			_, err := getOrder(ctx, tx, outTradeNo)
			return err
		}
		done = true
		return addEvent(ctx, tx, outTradeNo, merchant.OrderNotPay, to, source, now)
	})
	return done, err
}

// TouchQueried records when WeChat was last asked about an order;
// ENOTFOUND when there is none.
func (s *Store) TouchQueried(ctx context.Context, outTradeNo string, now time.Time) error {
	now = norm(s.clock(now))
	res, err := s.exec(ctx, `UPDATE orders SET last_queried_at = ? WHERE out_trade_no = ?`, tsNotNull(now), outTradeNo)
	if err != nil {
		return errf(err, "touch %s", outTradeNo)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return merchant.Errorf(merchant.ENOTFOUND, "order %s not found", outTradeNo)
	}
	return nil
}

// Limits of ListOrders.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// ListOrders lists the orders that match f, newest first (by CreatedAt,
// then OutTradeNo), at most f.Limit (default 50, at most 200), and returns
// the cursor of the next page ("" after the last). A cursor that is not
// one of ours is EINVALID.
func (s *Store) ListOrders(ctx context.Context, f merchant.OrderFilter) ([]*merchant.Order, string, error) {
	limit := min(limitOr(f.Limit, DefaultListLimit), MaxListLimit)
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.OpenID != "" {
		where, args = append(where, "open_id = ?"), append(args, f.OpenID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, norm(f.Since).UnixMicro())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, norm(f.Until).UnixMicro())
	}
	if f.Cursor != "" {
		at, no, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where, args = append(where, "(created_at, out_trade_no) < (?, ?)"), append(args, at, no)
	}
	q := `SELECT ` + orderColumns + ` FROM orders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, out_trade_no DESC LIMIT ?`
	args = append(args, limit+1)
	orders, err := queryOrders(ctx, s.r, q, args...)
	if err != nil {
		return nil, "", errf(err, "list orders")
	}
	next := ""
	if len(orders) > limit {
		orders = orders[:limit]
		last := orders[limit-1]
		next = encodeCursor(last.CreatedAt.UnixMicro(), last.OutTradeNo)
	}
	return orders, next, nil
}

func encodeCursor(at int64, outTradeNo string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "/" + outTradeNo))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if at, no, ok := strings.Cut(string(b), "/"); ok {
			if n, err := strconv.ParseInt(at, 10, 64); err == nil {
				return n, no, nil
			}
		}
	}
	return 0, "", merchant.Errorf(merchant.EINVALID, "bad cursor")
}

func queryOrders(ctx context.Context, q queryer, query string, args ...any) ([]*merchant.Order, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var orders []*merchant.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	return orders, rows.Err()
}

// PendingOrders returns at most limit (default 100) NOTPAY orders created
// before the time: those never queried first, then the least recently
// queried, oldest first among equals.
func (s *Store) PendingOrders(ctx context.Context, createdBefore time.Time, limit int) ([]*merchant.Order, error) {
	orders, err := queryOrders(ctx, s.r, `SELECT `+orderColumns+` FROM orders
		WHERE status = 'NOTPAY' AND created_at < ?
		ORDER BY last_queried_at ASC NULLS FIRST, created_at ASC, out_trade_no ASC LIMIT ?`,
		norm(createdBefore).UnixMicro(), limitOr(limit, 100))
	if err != nil {
		return nil, errf(err, "pending orders")
	}
	return orders, nil
}

// PaidBetween returns the orders paid in [from, to) (by PaidAt, whatever
// their status now) and the refunds created in it (whatever their status),
// each oldest first.
func (s *Store) PaidBetween(ctx context.Context, from, to time.Time) ([]*merchant.Order, []*merchant.Refund, error) {
	f, t := norm(from).UnixMicro(), norm(to).UnixMicro()
	orders, err := queryOrders(ctx, s.r, `SELECT `+orderColumns+` FROM orders
		WHERE paid_at >= ? AND paid_at < ? ORDER BY paid_at, out_trade_no`, f, t)
	if err != nil {
		return nil, nil, errf(err, "paid between")
	}
	refunds, err := queryRefunds(ctx, s.r, `SELECT `+refundColumns+` FROM refunds
		WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id`, f, t)
	if err != nil {
		return nil, nil, errf(err, "refunds between")
	}
	return orders, refunds, nil
}
