package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

// Statements of the write transactions.
const (
	sqlEvent  = `INSERT INTO order_events (out_trade_no, from_status, to_status, source, at) VALUES (?, ?, ?, ?, ?)`
	sqlOutbox = `INSERT INTO outbox (type, out_trade_no, ref, payload, created_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, ref) DO NOTHING`
	sqlAnomaly = `INSERT INTO anomalies (out_trade_no, kind, ref, detail, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (out_trade_no, kind, ref) DO NOTHING`
)

func addEvent(ctx context.Context, q queryer, outTradeNo string, from, to merchant.OrderStatus, source string, at time.Time) error {
	_, err := q.ExecContext(ctx, sqlEvent,
		outTradeNo, string(from), string(to), source, tsNotNull(at))
	if err != nil {
		return errf(err, "order event of %s", outTradeNo)
	}
	return nil
}

// addOutbox writes an outbox event due at once, unless one of that type
// and ref exists.
func addOutbox(ctx context.Context, q queryer, typ, outTradeNo, ref, payload string, now time.Time) error {
	_, err := q.ExecContext(ctx, sqlOutbox,
		typ, outTradeNo, ref, payload, tsNotNull(now), tsNotNull(now))
	if err != nil {
		return errf(err, "outbox %s %s", typ, ref)
	}
	return nil
}

func recordAnomaly(ctx context.Context, q queryer, a *merchant.Anomaly) (bool, error) {
	res, err := q.ExecContext(ctx, sqlAnomaly,
		a.OutTradeNo, string(a.Kind), a.Ref, a.Detail, tsNotNull(a.CreatedAt))
	if err != nil {
		return false, errf(err, "anomaly %s of %s", a.Kind, a.OutTradeNo)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordAnomaly stores an anomaly once per (OutTradeNo, Kind, Ref) and
// reports whether it was new. CreatedAt defaults to now.
func (s *Store) RecordAnomaly(ctx context.Context, a *merchant.Anomaly) (bool, error) {
	c := *a
	c.CreatedAt = norm(s.clock(a.CreatedAt))
	var isNew bool
	err := s.writeTx(ctx, func(tx txq) error {
		var err error
		isNew, err = recordAnomaly(ctx, tx, &c)
		return err
	})
	return isNew, err
}

// Anomalies lists at most limit (default 100) anomalies of an order (""
// for all orders), newest first.
func (s *Store) Anomalies(ctx context.Context, outTradeNo string, limit int) ([]*merchant.Anomaly, error) {
	q, args := `SELECT id, out_trade_no, kind, ref, detail, created_at FROM anomalies
		ORDER BY created_at DESC, id DESC LIMIT ?`, []any{limitOr(limit, 100)}
	if outTradeNo != "" {
		q, args = `SELECT id, out_trade_no, kind, ref, detail, created_at FROM anomalies WHERE out_trade_no = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, []any{outTradeNo, limitOr(limit, 100)}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, errf(err, "anomalies")
	}
	defer rows.Close()
	var list []*merchant.Anomaly
	for rows.Next() {
		var a merchant.Anomaly
		if err := rows.Scan(&a.ID, &a.OutTradeNo, &a.Kind, &a.Ref, &a.Detail, timeCol{&a.CreatedAt}); err != nil {
			return nil, errf(err, "anomalies")
		}
		list = append(list, &a)
	}
	return list, rows.Err()
}

// Events returns an order's transitions, oldest first.
func (s *Store) Events(ctx context.Context, outTradeNo string) ([]*merchant.OrderEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, out_trade_no, from_status, to_status, source, at FROM order_events
		WHERE out_trade_no = ? ORDER BY id`, outTradeNo)
	if err != nil {
		return nil, errf(err, "events of %s", outTradeNo)
	}
	defer rows.Close()
	var list []*merchant.OrderEvent
	for rows.Next() {
		var e merchant.OrderEvent
		if err := rows.Scan(&e.ID, &e.OutTradeNo, &e.From, &e.To, &e.Source, timeCol{&e.At}); err != nil {
			return nil, errf(err, "events of %s", outTradeNo)
		}
		list = append(list, &e)
	}
	return list, rows.Err()
}

const outboxColumns = `id, type, out_trade_no, ref, payload, created_at, next_at, attempts, delivered_at, last_error`

func queryOutbox(ctx context.Context, q queryer, query string, args ...any) ([]*merchant.OutboxEvent, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, errf(err, "outbox")
	}
	defer rows.Close()
	var list []*merchant.OutboxEvent
	for rows.Next() {
		var e merchant.OutboxEvent
		if err := rows.Scan(&e.ID, &e.Type, &e.OutTradeNo, &e.Ref, &e.Payload, timeCol{&e.CreatedAt}, timeCol{&e.NextAt},
			&e.Attempts, timeCol{&e.DeliveredAt}, &e.LastError); err != nil {
			return nil, errf(err, "outbox")
		}
		list = append(list, &e)
	}
	return list, rows.Err()
}

// PendingOutbox returns at most limit (default 100) undelivered outbox
// events whose next try is due at now, the earliest due first.
func (s *Store) PendingOutbox(ctx context.Context, now time.Time, limit int) ([]*merchant.OutboxEvent, error) {
	return queryOutbox(ctx, s.r, `SELECT `+outboxColumns+` FROM outbox
		WHERE delivered_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`,
		norm(s.clock(now)).UnixMicro(), limitOr(limit, 100))
}

// OutboxFor returns an order's outbox events, oldest first.
func (s *Store) OutboxFor(ctx context.Context, outTradeNo string) ([]*merchant.OutboxEvent, error) {
	return queryOutbox(ctx, s.r, `SELECT `+outboxColumns+` FROM outbox WHERE out_trade_no = ? ORDER BY id`, outTradeNo)
}

// MarkOutbox records a delivery attempt: delivered (DeliveredAt = now,
// kept from the first delivery), or failed with the next try at next.
// Either way Attempts grows by one and LastError is set to lastError.
// ENOTFOUND when there is no such event.
func (s *Store) MarkOutbox(ctx context.Context, id int64, delivered bool, next time.Time, lastError string, now time.Time) error {
	now = norm(s.clock(now))
	var res sql.Result
	var err error
	if delivered {
		res, err = s.exec(ctx, `UPDATE outbox SET attempts = attempts + 1, delivered_at = COALESCE(delivered_at, ?), last_error = ?
			WHERE id = ?`, tsNotNull(now), lastError, id)
	} else {
		res, err = s.exec(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?`,
			tsNotNull(norm(s.clock(next))), lastError, id)
	}
	if err != nil {
		return errf(err, "mark outbox %d", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return merchant.Errorf(merchant.ENOTFOUND, "outbox event %d not found", id)
	}
	return nil
}

// CreateSession stores a session; CreatedAt defaults to now. ECONFLICT when
// the token hash exists; EINVALID without a token hash.
func (s *Store) CreateSession(ctx context.Context, ss *merchant.Session) error {
	if ss.TokenHash == "" {
		return merchant.Errorf(merchant.EINVALID, "a session needs a token hash")
	}
	_, err := s.exec(ctx, `INSERT INTO sessions (token_hash, open_id, app_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		ss.TokenHash, ss.OpenID, ss.AppID, tsNotNull(norm(s.clock(ss.CreatedAt))), norm(ss.ExpiresAt).UnixMicro())
	if isUnique(err) {
		return merchant.Errorf(merchant.ECONFLICT, "session exists")
	}
	if err != nil {
		return errf(err, "create session")
	}
	return nil
}

// Session returns the session of a token hash; EUNAUTHORIZED when it is
// missing or expired at now (ExpiresAt ≤ now).
func (s *Store) Session(ctx context.Context, tokenHash string, now time.Time) (*merchant.Session, error) {
	var ss merchant.Session
	err := s.r.QueryRowContext(ctx, `SELECT token_hash, open_id, app_id, created_at, expires_at FROM sessions WHERE token_hash = ?`,
		tokenHash).Scan(&ss.TokenHash, &ss.OpenID, &ss.AppID, timeCol{&ss.CreatedAt}, timeCol{&ss.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, merchant.Errorf(merchant.EUNAUTHORIZED, "no such session")
	}
	if err != nil {
		return nil, errf(err, "session")
	}
	if !ss.ExpiresAt.After(norm(s.clock(now))) {
		return nil, merchant.Errorf(merchant.EUNAUTHORIZED, "session expired")
	}
	return &ss, nil
}

// SaveRecon stores a reconciliation report, replacing the one of the same
// date. RanAt defaults to now.
func (s *Store) SaveRecon(ctx context.Context, r *merchant.ReconReport) error {
	if r.Date == "" {
		return merchant.Errorf(merchant.EINVALID, "a report needs a date")
	}
	_, err := s.exec(ctx, `INSERT INTO recon_reports
		(date, bill_rows, matched, exceptions, healed, bill_total, local_total, bill_refunds, ran_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (date) DO UPDATE SET bill_rows = excluded.bill_rows, matched = excluded.matched,
			exceptions = excluded.exceptions, healed = excluded.healed, bill_total = excluded.bill_total,
			local_total = excluded.local_total, bill_refunds = excluded.bill_refunds, ran_at = excluded.ran_at`,
		r.Date, r.BillRows, r.Matched, r.Exceptions, r.Healed, r.BillTotal, r.LocalTotal, r.BillRefunds,
		tsNotNull(norm(s.clock(r.RanAt))))
	if err != nil {
		return errf(err, "save recon %s", r.Date)
	}
	return nil
}

// Recon returns the report of a date; ENOTFOUND when there is none.
func (s *Store) Recon(ctx context.Context, date string) (*merchant.ReconReport, error) {
	var r merchant.ReconReport
	err := s.r.QueryRowContext(ctx, `SELECT date, bill_rows, matched, exceptions, healed, bill_total, local_total, bill_refunds, ran_at
		FROM recon_reports WHERE date = ?`, date).Scan(&r.Date, &r.BillRows, &r.Matched, &r.Exceptions, &r.Healed,
		&r.BillTotal, &r.LocalTotal, &r.BillRefunds, timeCol{&r.RanAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, merchant.Errorf(merchant.ENOTFOUND, "no reconciliation for %s", date)
	}
	if err != nil {
		return nil, errf(err, "recon %s", date)
	}
	return &r, nil
}

// AddReconException stores an exception once per (Date, Kind, OutTradeNo,
// OutRefundNo); an existing one is left as it is, except that a later run
// that healed it marks it healed. It reports whether a row was added or
// healed. CreatedAt defaults to now.
func (s *Store) AddReconException(ctx context.Context, e *merchant.ReconException) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO recon_exceptions (date, kind, out_trade_no, out_refund_no, detail, healed, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (date, kind, out_trade_no, out_refund_no)
		DO UPDATE SET healed = 1, detail = excluded.detail WHERE excluded.healed = 1 AND recon_exceptions.healed = 0`,
		e.Date, string(e.Kind), e.OutTradeNo, e.OutRefundNo, e.Detail, e.Healed, tsNotNull(norm(s.clock(e.CreatedAt))))
	if err != nil {
		return false, errf(err, "recon exception")
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReconExceptions lists a date's exceptions, healed or not, or with date ""
// every open (not healed) one; in the order they were found.
func (s *Store) ReconExceptions(ctx context.Context, date string) ([]*merchant.ReconException, error) {
	q := `SELECT id, date, kind, out_trade_no, out_refund_no, detail, healed, created_at FROM recon_exceptions `
	var args []any
	if date == "" {
		q += `WHERE healed = 0 ORDER BY id`
	} else {
		q += `WHERE date = ? ORDER BY id`
		args = append(args, date)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, errf(err, "recon exceptions")
	}
	defer rows.Close()
	var list []*merchant.ReconException
	for rows.Next() {
		var e merchant.ReconException
		if err := rows.Scan(&e.ID, &e.Date, &e.Kind, &e.OutTradeNo, &e.OutRefundNo, &e.Detail, &e.Healed,
			timeCol{&e.CreatedAt}); err != nil {
			return nil, errf(err, "recon exceptions")
		}
		list = append(list, &e)
	}
	return list, rows.Err()
}
