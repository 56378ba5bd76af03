package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wxpay-go/wxpay/merchant"
)

const refundColumns = `out_refund_no, out_trade_no, refund_fee, total_fee, reason, status, refund_id,
	created_at, updated_at, success_at, attempts`

func scanRefund(row pgx.Row) (*merchant.Refund, error) {
	var r merchant.Refund
	var status string
	err := row.Scan(&r.OutRefundNo, &r.OutTradeNo, &r.RefundFee, &r.TotalFee, &r.Reason, &status, &r.RefundID,
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, timeCol{&r.SuccessAt}, &r.Attempts)
	if err != nil {
		return nil, err
	}
	r.Status = merchant.RefundStatus(status)
	return &r, nil
}

func getRefund(ctx context.Context, q queryer, outRefundNo string, lock bool) (*merchant.Refund, error) {
	query := `SELECT ` + refundColumns + ` FROM refunds WHERE out_refund_no = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	r, err := scanRefund(q.QueryRow(ctx, query, outRefundNo))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, merchant.Errorf(merchant.ENOTFOUND, "refund %s not found", outRefundNo)
	}
	if err != nil {
		return nil, errf(err, "refund %s", outRefundNo)
	}
	return r, nil
}

func queryRefunds(ctx context.Context, q queryer, query string, args ...any) ([]*merchant.Refund, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refunds []*merchant.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, err
		}
		refunds = append(refunds, r)
	}
	return refunds, rows.Err()
}

// errRefundRace: a refund of the same number was inserted for another
// order after the transaction looked; the transaction is run again.
var errRefundRace = errors.New("postgres: refund number taken concurrently")

// ReserveRefund stores r as RESERVED (no attempts yet, TotalFee the
// order's) and adds its amount to the order's RefundedFee and RefundCount,
// in one transaction that holds the order row (SELECT … FOR UPDATE) while
// it checks and changes it. The same OutRefundNo with the same order and
// amount returns the stored refund and false; with another, ECONFLICT.
// ENOTFOUND when the order does not exist; EINVALID when it is not paid,
// has MaxRefunds refunds already, or has less than RefundFee left to
// refund, or when RefundFee is not positive.
func (s *Store) ReserveRefund(ctx context.Context, r *merchant.Refund, now time.Time) (*merchant.Refund, bool, error) {
	if r.OutRefundNo == "" {
		return nil, false, merchant.Errorf(merchant.EINVALID, "a refund needs an out_refund_no")
	}
	if r.RefundFee <= 0 {
		return nil, false, merchant.Errorf(merchant.EINVALID, "a refund must be at least 1 fen")
	}
	now = norm(s.clock(now))
	var (
		res     *merchant.Refund
		created bool
	)
	for range maxAttempts {
		err := s.tx(ctx, func(tx pgx.Tx) error {
			// Lock the order first: a concurrent reservation of the same
			// number for it has committed once we hold the lock, so the
			// lookup below sees it.
			o, oerr := getOrder(ctx, tx, r.OutTradeNo, true)
			if oerr != nil && merchant.ErrorCode(oerr) != merchant.ENOTFOUND {
				return oerr
			}
			e, err := getRefund(ctx, tx, r.OutRefundNo, false)
			if err == nil {
				if e.OutTradeNo != r.OutTradeNo || e.RefundFee != r.RefundFee {
					return merchant.Errorf(merchant.ECONFLICT, "out_refund_no %s was used for another refund (%s, %d fen)",
						r.OutRefundNo, e.OutTradeNo, e.RefundFee)
				}
				res, created = e, false
				return nil
			}
			if merchant.ErrorCode(err) != merchant.ENOTFOUND {
				return err
			}
			if oerr != nil {
				return oerr
			}
			if err := checkRefundable(o, r.RefundFee); err != nil {
				return err
			}
			n := &merchant.Refund{OutRefundNo: r.OutRefundNo, OutTradeNo: o.OutTradeNo, RefundFee: r.RefundFee,
				TotalFee: o.TotalFee, Reason: r.Reason, Status: merchant.RefundReserved, CreatedAt: now, UpdatedAt: now}
			tag, err := tx.Exec(ctx, `INSERT INTO refunds (`+refundColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (out_refund_no) DO NOTHING`,
				n.OutRefundNo, n.OutTradeNo, n.RefundFee, n.TotalFee, n.Reason, string(n.Status), n.RefundID,
				n.CreatedAt, n.UpdatedAt, ts(n.SuccessAt), n.Attempts)
			if err != nil {
				return errf(err, "reserve refund %s", n.OutRefundNo)
			}
			if tag.RowsAffected() == 0 {
				return errRefundRace
			}
			if _, err := tx.Exec(ctx, `UPDATE orders SET refunded_fee = refunded_fee + $1, refund_count = refund_count + 1, updated_at = $2
				WHERE out_trade_no = $3`, n.RefundFee, now, o.OutTradeNo); err != nil {
				return errf(err, "reserve refund %s", n.OutRefundNo)
			}
			res, created = n, true
			return nil
		})
		if errors.Is(err, errRefundRace) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return res, created, nil
	}
	return nil, false, fmt.Errorf("postgres: reserve refund %s: %w", r.OutRefundNo, errRefundRace)
}

// checkRefundable applies the rules of a new refund of fee to o.
func checkRefundable(o *merchant.Order, fee int64) error {
	if !o.Status.Paid() {
		return merchant.Errorf(merchant.EINVALID, "order is not paid")
	}
	if o.RefundCount >= merchant.MaxRefunds {
		return merchant.Errorf(merchant.EINVALID, "an order can have at most %d refunds", merchant.MaxRefunds)
	}
	if left := o.TotalFee - o.RefundedFee; fee > left {
		return merchant.Errorf(merchant.EINVALID, "refund exceeds the refundable amount (%d fen left)", left)
	}
	return nil
}

// Refund returns a refund; ENOTFOUND when there is none.
func (s *Store) Refund(ctx context.Context, outRefundNo string) (*merchant.Refund, error) {
	return getRefund(ctx, s.pool, outRefundNo, false)
}

// Refunds returns an order's refunds, oldest first.
func (s *Store) Refunds(ctx context.Context, outTradeNo string) ([]*merchant.Refund, error) {
	refunds, err := queryRefunds(ctx, s.pool, `SELECT `+refundColumns+` FROM refunds WHERE out_trade_no = $1 ORDER BY id`, outTradeNo)
	if err != nil {
		return nil, errf(err, "refunds of %s", outTradeNo)
	}
	return refunds, nil
}

// UpdateRefund moves a refund to u.To when merchant.CanTransitionRefund
// allows it, in one transaction that holds the refund row, and reports
// whether it did (false, and no error, when the refund is already past
// that point). FAILED and CLOSED release the amount from the order's
// RefundedFee; PROCESSING, SUCCESS and CHANGE turn a PAID order into
// REFUND with an order event (source u.Source). SUCCESS sets SuccessAt
// (u.SuccessAt, or u.Now) and writes the refund.succeeded outbox event. A
// non-empty u.RefundID is recorded. ENOTFOUND when there is no such refund.
func (s *Store) UpdateRefund(ctx context.Context, u merchant.RefundUpdate) (bool, error) {
	now := norm(s.clock(u.Now))
	var done bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		done = false
		r, err := getRefund(ctx, tx, u.OutRefundNo, true)
		if err != nil {
			return err
		}
		if !merchant.CanTransitionRefund(r.Status, u.To) {
			return nil
		}
		from := r.Status
		r.Status, r.UpdatedAt = u.To, now
		if u.RefundID != "" {
			r.RefundID = u.RefundID
		}
		if u.To == merchant.RefundSuccess {
			r.SuccessAt = norm(u.SuccessAt)
			if r.SuccessAt.IsZero() {
				r.SuccessAt = now
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE refunds SET status = $1, refund_id = $2, success_at = $3, updated_at = $4
			WHERE out_refund_no = $5 AND status = $6`,
			string(r.Status), r.RefundID, ts(r.SuccessAt), now, r.OutRefundNo, string(from))
		if err != nil {
			return errf(err, "update refund %s", r.OutRefundNo)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("postgres: update refund %s: the refund changed under its lock", r.OutRefundNo)
		}
		if from.Holds() && !u.To.Holds() {
			if _, err := tx.Exec(ctx, `UPDATE orders SET refunded_fee = refunded_fee - $1, updated_at = $2 WHERE out_trade_no = $3`,
				r.RefundFee, now, r.OutTradeNo); err != nil {
				return errf(err, "release refund %s", r.OutRefundNo)
			}
		}
		if u.To == merchant.RefundProcessing || u.To == merchant.RefundSuccess || u.To == merchant.RefundChange {
			if _, err := tx.Exec(ctx, `WITH refunding AS (
				UPDATE orders SET status = 'REFUND', updated_at = $2 WHERE out_trade_no = $1 AND status = 'PAID'
				RETURNING out_trade_no
			)
			INSERT INTO order_events (out_trade_no, from_status, to_status, source, at)
			SELECT out_trade_no, 'PAID', 'REFUND', $3, $2 FROM refunding`, r.OutTradeNo, now, refundSource(u.Source)); err != nil {
				return errf(err, "refund order %s", r.OutTradeNo)
			}
		}
		if u.To == merchant.RefundSuccess {
			payload, err := refundPayload(r)
			if err != nil {
				return err
			}
			if err := addOutbox(ctx, tx, merchant.EventRefundSucceded, r.OutTradeNo, r.OutRefundNo, payload, now); err != nil {
				return err
			}
		}
		done = true
		return nil
	})
	return done, err
}

func refundSource(s string) string {
	if s == "" {
		return "refund"
	}
	return s
}

// refundPayload is the JSON of a refund.succeeded outbox event.
func refundPayload(r *merchant.Refund) (string, error) {
	b, err := json.Marshal(struct {
		OutRefundNo string    `json:"out_refund_no"`
		OutTradeNo  string    `json:"out_trade_no"`
		RefundID    string    `json:"refund_id"`
		RefundFee   int64     `json:"refund_fee"`
		SuccessAt   time.Time `json:"success_at"`
	}{r.OutRefundNo, r.OutTradeNo, r.RefundID, r.RefundFee, r.SuccessAt.UTC()})
	if err != nil {
		return "", fmt.Errorf("postgres: outbox payload: %w", err)
	}
	return string(b), nil
}

// CountRefundAttempt records one more call to WeChat for a refund (and
// sets its UpdatedAt to now); ENOTFOUND when there is no such refund.
func (s *Store) CountRefundAttempt(ctx context.Context, outRefundNo string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE refunds SET attempts = attempts + 1, updated_at = $1 WHERE out_refund_no = $2`,
		norm(s.clock(now)), outRefundNo)
	if err != nil {
		return errf(err, "count attempt of %s", outRefundNo)
	}
	if tag.RowsAffected() == 0 {
		return merchant.Errorf(merchant.ENOTFOUND, "refund %s not found", outRefundNo)
	}
	return nil
}

// RefundsByStatus returns at most limit (default 100) refunds in the
// statuses, last updated before the time, least recently updated first.
func (s *Store) RefundsByStatus(ctx context.Context, statuses []merchant.RefundStatus, updatedBefore time.Time, limit int) ([]*merchant.Refund, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	sts := make([]string, len(statuses))
	for i, st := range statuses {
		sts[i] = string(st)
	}
	refunds, err := queryRefunds(ctx, s.pool, `SELECT `+refundColumns+` FROM refunds
		WHERE status = ANY($1) AND updated_at < $2 ORDER BY updated_at, id LIMIT $3`,
		sts, norm(updatedBefore), limitOr(limit, 100))
	if err != nil {
		return nil, errf(err, "refunds by status")
	}
	return refunds, nil
}
