package payments

import (
	"context"
	"errors"
	"log/slog"

	"github.com/wxpay-go/wxpay/merchant"
)

// RefundRequest asks for a refund of a paid order.
type RefundRequest struct {
	OutTradeNo string
	RefundFee  int64 // fen, > 0
	Reason     string
	// OutRefundNo makes the request idempotent; one is generated when
	// empty. The same number with the same order and amount returns the
	// same refund.
	OutRefundNo string
}

// Refund reserves the amount against the order (refusing anything above
// what is left), stores the refund with its number before WeChat is
// called, and submits it. The result is PROCESSING until a refund notify
// or query says otherwise; when WeChat's answer is unknown it stays
// RESERVED and the refund job resubmits it with the same number.
func (s *Service) Refund(ctx context.Context, req RefundRequest) (*merchant.Refund, error) {
	if req.RefundFee <= 0 {
		return nil, merchant.Errorf(merchant.EINVALID, "refund_fee must be > 0 fen")
	}
	if len(req.Reason) > 80 {
		return nil, merchant.Errorf(merchant.EINVALID, "the reason has more than 80 bytes")
	}
	o, err := s.store.Order(ctx, req.OutTradeNo)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	no := req.OutRefundNo
	if no == "" {
		no = newNumber("RF", now)
	} else if len(no) > 64 || !refundNoOK(no) {
		return nil, merchant.Errorf(merchant.EINVALID, "out_refund_no must be 1 to 64 of [0-9A-Za-z_-|*@]")
	}
	r, _, err := s.store.ReserveRefund(ctx, &merchant.Refund{
		OutRefundNo: no, OutTradeNo: o.OutTradeNo, RefundFee: req.RefundFee, TotalFee: o.TotalFee,
		Reason: req.Reason, Status: merchant.RefundReserved, CreatedAt: now, UpdatedAt: now,
	}, now)
	if err != nil {
		return nil, err
	}
	if r.Status != merchant.RefundReserved {
		return r, nil
	}
	return s.submitRefund(ctx, r)
}

func refundNoOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '|' || c == '*' || c == '@') {
			return false
		}
	}
	return true
}

// submitRefund calls WeChat for a RESERVED refund, with its stored number
// and amount.
func (s *Service) submitRefund(ctx context.Context, r *merchant.Refund) (*merchant.Refund, error) {
	now := s.cfg.Now()
	if err := s.store.CountRefundAttempt(ctx, r.OutRefundNo, now); err != nil {
		return nil, err
	}
	refundID, err := s.gw.Refund(ctx, r)
	switch {
	case err == nil:
		if _, err := s.store.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: r.OutRefundNo, To: merchant.RefundProcessing,
			RefundID: refundID, Source: "api", Now: now}); err != nil {
			return nil, err
		}
		s.m.Refund(string(merchant.RefundProcessing))
	case errors.Is(err, merchant.ErrRejected):
		s.log.ErrorContext(ctx, "refund refused by WeChat; amount released",
			slog.String("out_refund_no", r.OutRefundNo), slog.String("error", err.Error()))
		if _, err := s.store.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: r.OutRefundNo, To: merchant.RefundFailed,
			Source: "api", Now: now}); err != nil {
			return nil, err
		}
		s.m.Refund(string(merchant.RefundFailed))
	default:
		// Unknown: stays RESERVED; resubmitted with the same number.
		s.log.WarnContext(ctx, "refund outcome unknown; it will be resubmitted with the same number",
			slog.String("out_refund_no", r.OutRefundNo), slog.String("error", err.Error()))
	}
	return s.store.Refund(ctx, r.OutRefundNo)
}

// SyncRefund settles a refund with WeChat: a RESERVED refund WeChat has not
// heard of is submitted (again, with the same number); otherwise the
// refund query's status is applied.
func (s *Service) SyncRefund(ctx context.Context, outRefundNo string) (*merchant.Refund, error) {
	r, err := s.store.Refund(ctx, outRefundNo)
	if err != nil {
		return nil, err
	}
	if r.Status.Terminal() {
		return r, nil
	}
	res, err := s.gw.RefundQuery(ctx, outRefundNo)
	if errors.Is(err, merchant.ErrRefundNotExist) {
		if r.Status == merchant.RefundReserved {
			return s.submitRefund(ctx, r)
		}
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if res.OutTradeNo != r.OutTradeNo || res.RefundFee != r.RefundFee {
		_, _ = s.store.RecordAnomaly(ctx, &merchant.Anomaly{OutTradeNo: r.OutTradeNo, Kind: merchant.AnomalyRefundMismatch,
			Ref: outRefundNo, Detail: "refund query disagrees with the stored refund", CreatedAt: s.cfg.Now()})
		return r, nil
	}
	to := res.Status
	if to == merchant.RefundProcessing && r.Status == merchant.RefundProcessing {
		return r, nil
	}
	moved, err := s.store.UpdateRefund(ctx, merchant.RefundUpdate{OutRefundNo: outRefundNo, To: to, RefundID: res.RefundID,
		SuccessAt: res.SuccessAt, Source: "query", Now: s.cfg.Now()})
	if err != nil {
		return nil, err
	}
	if moved {
		s.m.Refund(string(to))
		if to == merchant.RefundChange {
			s.log.ErrorContext(ctx, "refund is abnormal (CHANGE): handle it in the merchant platform", slog.String("out_refund_no", outRefundNo))
		}
	}
	return s.store.Refund(ctx, outRefundNo)
}
