package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

const orderColumns = `out_trade_no, open_id, app_id, mch_id, trade_type, items, total_fee, body, client_ip,
	status, prepay_state, prepay_id, code_url, prepay_expires_at, expires_at, transaction_id, paid_at,
	refunded_fee, refund_count, idempotency_key, created_at, updated_at, last_queried_at`

func scanOrder(row pgx.Row) (*merchant.Order, error) {
	var o merchant.Order
	var items, tradeType, status, prepay string
	err := row.Scan(&o.OutTradeNo, &o.OpenID, &o.AppID, &o.MchID, &tradeType, &items, &o.TotalFee, &o.Body, &o.ClientIP,
		&status, &prepay, &o.PrepayID, &o.CodeURL, timeCol{&o.PrepayExpiresAt}, timeCol{&o.ExpiresAt},
		&o.TransactionID, timeCol{&o.PaidAt}, &o.RefundedFee, &o.RefundCount, &o.IdempotencyKey,
		timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt}, timeCol{&o.LastQueriedAt})
	if err != nil {
		return nil, err
	}
	o.TradeType, o.Status, o.PrepayState = wxpay.TradeType(tradeType), merchant.OrderStatus(status), merchant.PrepayState(prepay)
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return nil, fmt.Errorf("postgres: order %s: items: %w", o.OutTradeNo, err)
	}
	return &o, nil
}

const sqlOrder = `SELECT ` + orderColumns + ` FROM orders WHERE out_trade_no = $1`

func getOrder(ctx context.Context, q queryer, outTradeNo string, lock bool) (*merchant.Order, error) {
	query := sqlOrder
	if lock {
		query += ` FOR UPDATE`
	}
	o, err := scanOrder(q.QueryRow(ctx, query, outTradeNo))
	if errors.Is(err, pgx.ErrNoRows) {
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

	// Insert first: a key is new far more often than it is reused. A
	// conflict on either unique key inserts nothing; the key tells which.
	tag, err := s.pool.Exec(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT DO NOTHING`,
		n.OutTradeNo, n.OpenID, n.AppID, n.MchID, string(n.TradeType), string(items), n.TotalFee, n.Body, n.ClientIP,
		string(n.Status), string(n.PrepayState), n.PrepayID, n.CodeURL, ts(n.PrepayExpiresAt), ts(n.ExpiresAt),
		n.TransactionID, ts(n.PaidAt), n.RefundedFee, n.RefundCount, n.IdempotencyKey,
		n.CreatedAt, n.UpdatedAt, ts(n.LastQueriedAt))
	if err != nil {
		return nil, false, errf(err, "create order %s", n.OutTradeNo)
	}
	if tag.RowsAffected() == 1 {
		return &n, true, nil
	}
	if n.IdempotencyKey != "" {
		e, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders
			WHERE open_id = $1 AND idempotency_key = $2 AND idempotency_key <> ''`, n.OpenID, n.IdempotencyKey))
		switch {
		case err == nil:
			return e, false, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, false, errf(err, "create order %s", n.OutTradeNo)
		}
	}
	return nil, false, merchant.Errorf(merchant.ECONFLICT, "order %s exists", n.OutTradeNo)
}

// Order returns an order; ENOTFOUND when there is none.
func (s *Store) Order(ctx context.Context, outTradeNo string) (*merchant.Order, error) {
	return getOrder(ctx, s.pool, outTradeNo, false)
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
	tag, err := s.pool.Exec(ctx, `UPDATE orders SET prepay_state = $1, prepay_id = $2, code_url = $3, prepay_expires_at = $4, updated_at = $5
		WHERE out_trade_no = $6 AND status = 'NOTPAY'`,
		string(st), prepayID, codeURL, ts(expiresAt), norm(s.now()), outTradeNo)
	if err != nil {
		return errf(err, "set prepay of %s", outTradeNo)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	o, err := getOrder(ctx, s.pool, outTradeNo, false)
	if err != nil {
		return err
	}
	return merchant.Errorf(merchant.ECONFLICT, "order %s is %s, not NOTPAY", outTradeNo, o.Status)
}

// sqlPay applies a payment to an order that it matches (amount, app,
// merchant) and that is not paid yet (NOTPAY, or CLOSED or PAYERROR for a
// late payment), holding the row while it does, and writes in the same
// statement, only if it did, the order event, the order.paid outbox event
// and, for a late payment, the late_payment anomaly ($10 is its detail, a
// format() string for the former status). It returns the former status
// and the order as it is now; no row when the order is not payable.
var sqlPay = `WITH cur AS (
	SELECT out_trade_no, status FROM orders
	WHERE out_trade_no = $1 AND status IN ('NOTPAY', 'CLOSED', 'PAYERROR')
		AND total_fee = $2 AND app_id = $3 AND mch_id = $4
	FOR UPDATE
), paid AS (
	UPDATE orders o SET status = 'PAID', transaction_id = $5, paid_at = $6, updated_at = $7
	FROM cur WHERE o.out_trade_no = cur.out_trade_no
	RETURNING cur.status AS from_status, ` + prefixed("o.", orderColumns) + `
), event AS (
	INSERT INTO order_events (out_trade_no, from_status, to_status, source, at)
	SELECT out_trade_no, from_status, 'PAID', $8, $7 FROM paid
), outbox AS (
	INSERT INTO outbox (type, out_trade_no, ref, payload, created_at, next_at)
	SELECT 'order.paid', out_trade_no, out_trade_no, $9, $7, $7 FROM paid
	ON CONFLICT (type, ref) DO NOTHING
), late AS (
	INSERT INTO anomalies (out_trade_no, kind, ref, detail, created_at)
	SELECT out_trade_no, 'late_payment', $5, format($10, from_status), $7 FROM paid WHERE from_status <> 'NOTPAY'
	ON CONFLICT (out_trade_no, kind, ref) DO NOTHING
)
SELECT from_status, ` + orderColumns + ` FROM paid`

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// MarkPaid applies a verified payment; see merchant.PayOutcome. An unknown
// order, a payment that disagrees with the order (merchant.Order.Check), a
// second transaction id for a paid order, or a transaction id that already
// pays another order is recorded as an anomaly (once per order, kind and
// transaction id) and rejected. A NOTPAY order becomes PAID (PayApplied); a
// CLOSED or PAYERROR one too, with a late_payment anomaly (PayLate). Either
// way the change, its order event and the order.paid outbox event are one
// statement, which holds the order row and applies the payment only to an
// order it matches and that is not paid yet; when it applies nothing, the
// order is read and the payment judged (duplicate, anomaly, or another
// change that came first). PaidAt is p.PaidAt, or now when WeChat gave no
// time. The returned order is the state after the call (nil for an unknown
// order).
func (s *Store) MarkPaid(ctx context.Context, p *merchant.Payment, now time.Time) (merchant.PayOutcome, *merchant.Order, error) {
	now = norm(s.clock(now))
	paidAt := norm(p.PaidAt)
	if paidAt.IsZero() {
		paidAt = now
	}
	payload, err := paidPayload(&merchant.Order{OutTradeNo: p.OutTradeNo, TransactionID: p.TransactionID, TotalFee: p.TotalFee, PaidAt: paidAt})
	if err != nil {
		return "", nil, err
	}
	lateDetail := fmt.Sprintf("paid by transaction %s (%d fen) after the order was %%s: refund it or ship it",
		strings.ReplaceAll(p.TransactionID, "%", "%%"), p.TotalFee)
	// The status only moves forward (NOTPAY → CLOSED → PAID at most), so a
	// few rounds always settle.
	for range 5 {
		if p.TransactionID != "" && (p.FeeType == "" || p.FeeType == "CNY") {
			var from string
			var o *merchant.Order
			err := retry(ctx, func() error {
				var err error
				o, err = scanOrder(prefixRow{s.pool.QueryRow(ctx, sqlPay, p.OutTradeNo, p.TotalFee, p.AppID, p.MchID,
					p.TransactionID, paidAt, now, paySource(p), payload, lateDetail), &from})
				return err
			})
			switch {
			case err == nil && from == string(merchant.OrderNotPay):
				return merchant.PayApplied, o, nil
			case err == nil:
				return merchant.PayLate, o, nil
			case isUnique(err, "orders_transaction_id"):
				// WeChat never reuses a transaction id: one that pays
				// another order already is an anomaly, not a payment of
				// this one.
				var other string
				if err := s.pool.QueryRow(ctx, `SELECT out_trade_no FROM orders WHERE transaction_id = $1`, p.TransactionID).Scan(&other); err != nil {
					return "", nil, errf(err, "mark %s paid", p.OutTradeNo)
				}
				o, err := getOrder(ctx, s.pool, p.OutTradeNo, false)
				if err != nil {
					return "", nil, err
				}
				return s.reject(ctx, o, p, merchant.AnomalyTransaction,
					fmt.Sprintf("transaction %s already pays order %s", p.TransactionID, other), now)
			case !errors.Is(err, pgx.ErrNoRows):
				return "", nil, errf(err, "mark %s paid", p.OutTradeNo)
			}
		}

		// Not applied: judge the payment against the order as it is.
		o, err := getOrder(ctx, s.pool, p.OutTradeNo, false)
		if merchant.ErrorCode(err) == merchant.ENOTFOUND {
			_, err := s.recordAnomaly(ctx, s.pool, &merchant.Anomaly{OutTradeNo: p.OutTradeNo, Kind: merchant.AnomalyUnknownOrder,
				Ref: p.TransactionID, Detail: anomalyDetail(merchant.AnomalyUnknownOrder, nil, p), CreatedAt: now})
			if err != nil {
				return "", nil, err
			}
			return merchant.PayRejected, nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		if kind := o.Check(p); kind != "" {
			return s.reject(ctx, o, p, kind, anomalyDetail(kind, o, p), now)
		}
		switch o.Status {
		case merchant.OrderPaid, merchant.OrderRefund:
			if o.TransactionID == p.TransactionID {
				return merchant.PayDuplicate, o, nil
			}
			return s.reject(ctx, o, p, merchant.AnomalyTransaction, anomalyDetail(merchant.AnomalyTransaction, o, p), now)
		case merchant.OrderNotPay, merchant.OrderClosed, merchant.OrderPayError:
			// Payable now: another change came between; apply again.
		default:
			return "", nil, fmt.Errorf("postgres: order %s has an unknown status %q", o.OutTradeNo, o.Status)
		}
	}
	return "", nil, fmt.Errorf("postgres: mark %s paid: the order keeps changing", p.OutTradeNo)
}

// prefixRow scans a row whose first column is a string (into *first) and
// the rest an order.
type prefixRow struct {
	row   pgx.Row
	first *string
}

// Scan implements pgx.Row.
func (r prefixRow) Scan(dest ...any) error {
	return r.row.Scan(append([]any{r.first}, dest...)...)
}

// reject records the anomaly of a payment that cannot be applied.
func (s *Store) reject(ctx context.Context, o *merchant.Order, p *merchant.Payment, kind merchant.AnomalyKind, detail string, now time.Time) (merchant.PayOutcome, *merchant.Order, error) {
	if _, err := s.recordAnomaly(ctx, s.pool, &merchant.Anomaly{OutTradeNo: o.OutTradeNo, Kind: kind,
		Ref: p.TransactionID, Detail: detail, CreatedAt: now}); err != nil {
		return "", nil, err
	}
	return merchant.PayRejected, o, nil
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
		return "", fmt.Errorf("postgres: outbox payload: %w", err)
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
// event in the same statement, and reports whether it did (false when the
// order is no longer NOTPAY). ENOTFOUND when there is no such order;
// EINVALID for another target status.
func (s *Store) MarkClosed(ctx context.Context, outTradeNo string, to merchant.OrderStatus, source string, now time.Time) (bool, error) {
	if to != merchant.OrderClosed && to != merchant.OrderPayError {
		return false, merchant.Errorf(merchant.EINVALID, "an order cannot be closed as %q", to)
	}
	now = norm(s.clock(now))
	var n int
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `WITH closed AS (
			UPDATE orders SET status = $2, updated_at = $3 WHERE out_trade_no = $1 AND status = 'NOTPAY'
			RETURNING out_trade_no
		), event AS (
			INSERT INTO order_events (out_trade_no, from_status, to_status, source, at)
			SELECT out_trade_no, 'NOTPAY', $2, $4, $3 FROM closed
		)
		SELECT count(*) FROM closed`, outTradeNo, string(to), now, source).Scan(&n)
	})
	if err != nil {
		return false, errf(err, "close %s", outTradeNo)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := getOrder(ctx, s.pool, outTradeNo, false); err != nil {
		return false, err
	}
	return false, nil
}

// TouchQueried records when WeChat was last asked about an order;
// ENOTFOUND when there is none.
func (s *Store) TouchQueried(ctx context.Context, outTradeNo string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE orders SET last_queried_at = $1 WHERE out_trade_no = $2`, norm(s.clock(now)), outTradeNo)
	if err != nil {
		return errf(err, "touch %s", outTradeNo)
	}
	if tag.RowsAffected() == 0 {
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
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.OpenID != "" {
		where = append(where, "open_id = "+arg(f.OpenID))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(norm(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(norm(f.Until)))
	}
	if f.Cursor != "" {
		at, no, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, fmt.Sprintf("(created_at, out_trade_no) < (%s, %s)", arg(at), arg(no)))
	}
	q := `SELECT ` + orderColumns + ` FROM orders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, out_trade_no DESC LIMIT ` + arg(limit+1)
	orders, err := queryOrders(ctx, s.pool, q, args...)
	if err != nil {
		return nil, "", errf(err, "list orders")
	}
	next := ""
	if len(orders) > limit {
		orders = orders[:limit]
		last := orders[limit-1]
		next = encodeCursor(last.CreatedAt, last.OutTradeNo)
	}
	return orders, next, nil
}

func encodeCursor(at time.Time, outTradeNo string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "/" + outTradeNo))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if at, no, ok := strings.Cut(string(b), "/"); ok {
			if n, err := strconv.ParseInt(at, 10, 64); err == nil {
				return time.UnixMicro(n).UTC(), no, nil
			}
		}
	}
	return time.Time{}, "", merchant.Errorf(merchant.EINVALID, "bad cursor")
}

func queryOrders(ctx context.Context, q queryer, query string, args ...any) ([]*merchant.Order, error) {
	rows, err := q.Query(ctx, query, args...)
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
	orders, err := queryOrders(ctx, s.pool, `SELECT `+orderColumns+` FROM orders
		WHERE status = 'NOTPAY' AND created_at < $1
		ORDER BY last_queried_at ASC NULLS FIRST, created_at ASC, out_trade_no ASC LIMIT $2`,
		norm(createdBefore), limitOr(limit, 100))
	if err != nil {
		return nil, errf(err, "pending orders")
	}
	return orders, nil
}

// PaidBetween returns the orders paid in [from, to) (by PaidAt, whatever
// their status now) and the refunds created in it (whatever their status),
// each oldest first.
func (s *Store) PaidBetween(ctx context.Context, from, to time.Time) ([]*merchant.Order, []*merchant.Refund, error) {
	f, t := norm(from), norm(to)
	orders, err := queryOrders(ctx, s.pool, `SELECT `+orderColumns+` FROM orders
		WHERE paid_at >= $1 AND paid_at < $2 ORDER BY paid_at, out_trade_no`, f, t)
	if err != nil {
		return nil, nil, errf(err, "paid between")
	}
	refunds, err := queryRefunds(ctx, s.pool, `SELECT `+refundColumns+` FROM refunds
		WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id`, f, t)
	if err != nil {
		return nil, nil, errf(err, "refunds between")
	}
	return orders, refunds, nil
}
