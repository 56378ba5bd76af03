package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

const refundColumns = `out_refund_no, out_trade_no, refund_fee, total_fee, reason, status, refund_id,
	created_at, updated_at, success_at, attempts`

// Statements of the write transactions.
const (
	sqlRefund       = `SELECT ` + refundColumns + ` FROM refunds WHERE out_refund_no = ?`
	sqlInsertRefund = `INSERT INTO refunds (` + refundColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlReserve      = `UPDATE orders SET refunded_fee = refunded_fee + ?, refund_count = refund_count + 1, updated_at = ?
		WHERE out_trade_no = ?`
	sqlUpdateRefund = `UPDATE refunds SET status = ?, refund_id = ?, success_at = ?, updated_at = ?
		WHERE out_refund_no = ? AND status = ?`
	sqlRelease     = `UPDATE orders SET refunded_fee = refunded_fee - ?, updated_at = ? WHERE out_trade_no = ?`
	sqlRefundOrder = `UPDATE orders SET status = 'REFUND', updated_at = ? WHERE out_trade_no = ? AND status = 'PAID'`
)

func scanRefund(row scanner) (*merchant.Refund, error) {
	var r merchant.Refund
	err := row.Scan(&r.OutRefundNo, &r.OutTradeNo, &r.RefundFee, &r.TotalFee, &r.Reason, &r.Status, &r.RefundID,
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, timeCol{&r.SuccessAt}, &r.Attempts)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func getRefund(ctx context.Context, q queryer, outRefundNo string) (*merchant.Refund, error) {
	r, err := scanRefund(q.QueryRowContext(ctx, sqlRefund, outRefundNo))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, merchant.Errorf(merchant.ENOTFOUND, "refund %s not found", outRefundNo)
	}
	if err != nil {
		return nil, errf(err, "refund %s", outRefundNo)
	}
	return r, nil
}

func queryRefunds(ctx context.Context, q queryer, query string, args ...any) ([]*merchant.Refund, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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

// ReserveRefund stores r as RESERVED (no attempts yet, TotalFee the
// order's) and adds its amount to the order's RefundedFee and RefundCount,
// in one BEGIN IMMEDIATE transaction. The same OutRefundNo with the same
// order and amount returns the stored refund and false; with another,
// ECONFLICT. ENOTFOUND when the order does not exist; EINVALID when it is
// not paid, has MaxRefunds refunds already, or has less than RefundFee
// left to refund, or when RefundFee is not positive.
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
	err := s.writeTx(ctx, func(tx txq) error {
		e, err := getRefund(ctx, tx, r.OutRefundNo)
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
		o, err := getOrder(ctx, tx, r.OutTradeNo)
		if err != nil {
			return err
		}
		if err := checkRefundable(o, r.RefundFee); err != nil {
			return err
		}
		n := &merchant.Refund{OutRefundNo: r.OutRefundNo, OutTradeNo: o.OutTradeNo, RefundFee: r.RefundFee,
			TotalFee: o.TotalFee, Reason: r.Reason, Status: merchant.RefundReserved, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.ExecContext(ctx, sqlInsertRefund,
			n.OutRefundNo, n.OutTradeNo, n.RefundFee, n.TotalFee, n.Reason, string(n.Status), n.RefundID,
			tsNotNull(n.CreatedAt), tsNotNull(n.UpdatedAt), ts(n.SuccessAt), n.Attempts); err != nil {
			return errf(err, "reserve refund %s", n.OutRefundNo)
		}
		if _, err := tx.ExecContext(ctx, sqlReserve, n.RefundFee, tsNotNull(now), o.OutTradeNo); err != nil {
			return errf(err, "reserve refund %s", n.OutRefundNo)
		}
		res, created = n, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return res, created, nil
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
	return getRefund(ctx, s.r, outRefundNo)
}

// Refunds returns an order's refunds, oldest first.
func (s *Store) Refunds(ctx context.Context, outTradeNo string) ([]*merchant.Refund, error) {
	refunds, err := queryRefunds(ctx, s.r, `SELECT `+refundColumns+` FROM refunds WHERE out_trade_no = ? ORDER BY id`, outTradeNo)
	if err != nil {
		return nil, errf(err, "refunds of %s", outTradeNo)
	}
	return refunds, nil
}

// UpdateRefund moves a refund to u.To when merchant.CanTransitionRefund
// allows it, in one transaction, and reports whether it did (false, and no
// error, when the refund is already past that point). FAILED and CLOSED
// release the amount from the order's RefundedFee; PROCESSING, SUCCESS and
// CHANGE turn a PAID order into REFUND with an order event (source
// u.Source). SUCCESS sets SuccessAt (u.SuccessAt, or u.Now) and writes the
// refund.succeeded outbox event. A non-empty u.RefundID is recorded.
// ENOTFOUND when there is no such refund.
func (s *Store) UpdateRefund(ctx context.Context, u merchant.RefundUpdate) (bool, error) {
	now := norm(s.clock(u.Now))
	var done bool
	err := s.writeTx(ctx, func(tx txq) error {
		done = false
		r, err := getRefund(ctx, tx, u.OutRefundNo)
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
		res, err := tx.ExecContext(ctx, sqlUpdateRefund,
			string(r.Status), r.RefundID, ts(r.SuccessAt), tsNotNull(now), r.OutRefundNo, string(from))
		if err != nil {
			return errf(err, "update refund %s", r.OutRefundNo)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("sqlite: update refund %s: the refund changed under the write lock", r.OutRefundNo)
		}
		if from.Holds() && !u.To.Holds() {
			if _, err := tx.ExecContext(ctx, sqlRelease,
				r.RefundFee, tsNotNull(now), r.OutTradeNo); err != nil {
				return errf(err, "release refund %s", r.OutRefundNo)
			}
		}
		if u.To == merchant.RefundProcessing || u.To == merchant.RefundSuccess || u.To == merchant.RefundChange {
			res, err := tx.ExecContext(ctx, sqlRefundOrder,
				tsNotNull(now), r.OutTradeNo)
			if err != nil {
				return errf(err, "refund order %s", r.OutTradeNo)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if err := addEvent(ctx, tx, r.OutTradeNo, merchant.OrderPaid, merchant.OrderRefund, refundSource(u.Source), now); err != nil {
					return err
				}
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
		return "", fmt.Errorf("sqlite: outbox payload: %w", err)
	}
	return string(b), nil
}

// CountRefundAttempt records one more call to WeChat for a refund (and
// sets its UpdatedAt to now); ENOTFOUND when there is no such refund.
func (s *Store) CountRefundAttempt(ctx context.Context, outRefundNo string, now time.Time) error {
	now = norm(s.clock(now))
	res, err := s.exec(ctx, `UPDATE refunds SET attempts = attempts + 1, updated_at = ? WHERE out_refund_no = ?`,
		tsNotNull(now), outRefundNo)
	if err != nil {
		return errf(err, "count attempt of %s", outRefundNo)
	}
	if n, _ := res.RowsAffected(); n == 0 {
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
	args := make([]any, 0, len(statuses)+2)
	for _, st := range statuses {
		args = append(args, string(st))
	}
	args = append(args, norm(updatedBefore).UnixMicro(), limitOr(limit, 100))
	refunds, err := queryRefunds(ctx, s.r, `SELECT `+refundColumns+` FROM refunds
		WHERE status IN (?`+strings.Repeat(", ?", len(statuses)-1)+`) AND updated_at < ?
		ORDER BY updated_at, id LIMIT ?`, args...)
	if err != nil {
		return nil, errf(err, "refunds by status")
	}
	return refunds, nil
}
