package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wxpay-go/wxpay/merchant"
)

// ErrNotifyRejected is returned for a notify whose content disagrees with
// our records; it is answered FAIL (a refusal: it wraps
// merchant.ErrBadNotify), and recorded once as an anomaly.
var ErrNotifyRejected = fmt.Errorf("%w: payments: notify disagrees with our records", merchant.ErrBadNotify)

// HandlePayNotify verifies a pay notify and applies it. It returns nil —
// and only then may the caller answer SUCCESS — once the payment is
// committed (or was already). A forged, malformed or mismatching notify
// returns an error and changes nothing but the anomaly log.
func (s *Service) HandlePayNotify(ctx context.Context, header http.Header, body []byte) error {
	n, err := s.gw.ParsePayNotify(ctx, header, body)
	if err != nil {
		s.m.Notify("pay", "rejected", reason(err))
		s.log.WarnContext(ctx, "pay notify refused", slog.String("reason", reason(err)), slog.String("error", err.Error()))
		return err
	}
	if !n.Paid {
		// A verified notify that reports no payment (v2 result_code FAIL,
		// v3 trade_state other than SUCCESS) changes no order, but it is
		// recorded once as an anomaly with an alert (reliability.md A2):
		// WeChat sends pay notifies for payments, so someone should look.
		// It is acknowledged: its content will not change on a retry, and
		// the settle job's query says what really happened.
		return s.notPaid(ctx, &n.Payment)
	}
	n.Source = merchant.SourceNotify
	outcome, _, err := s.store.MarkPaid(ctx, &n.Payment, s.cfg.Now())
	if err != nil {
		s.m.Notify("pay", "error", "store")
		return err
	}
	s.paid(ctx, outcome, &n.Payment)
	if outcome == merchant.PayRejected {
		s.m.Notify("pay", "rejected", "mismatch")
		return fmt.Errorf("%w: %s", ErrNotifyRejected, n.OutTradeNo)
	}
	s.m.Notify("pay", "ok", string(outcome))
	return nil
}

// notPaid records a verified pay notify that reports no payment.
func (s *Service) notPaid(ctx context.Context, p *merchant.Payment) error {
	fresh, err := s.store.RecordAnomaly(ctx, &merchant.Anomaly{
		OutTradeNo: p.OutTradeNo, Kind: merchant.AnomalyNotPaid, Ref: p.TransactionID,
		Detail:    fmt.Sprintf("a verified pay notify for %s reports no payment", p.OutTradeNo),
		CreatedAt: s.cfg.Now(),
	})
	if err != nil {
		s.m.Notify("pay", "error", "store")
		return err
	}
	if fresh {
		s.log.ErrorContext(ctx, "a verified pay notify reports no payment", slog.String("out_trade_no", p.OutTradeNo),
			slog.String("anomaly", string(merchant.AnomalyNotPaid)))
	}
	s.m.Notify("pay", "ok", "not_paid")
	return nil
}

// reason names why a notify was refused, for logs and metrics.
func reason(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	return "invalid"
}

// HandleRefundNotify decrypts a refund notify, matches it to a refund we
// created (number, order and amount), confirms it with a refund query —
// the v2 refund notify is not signed, and ECB gives it no integrity; the
// v3 one is, but the query is what we act on for both — and applies what
// the query says.
func (s *Service) HandleRefundNotify(ctx context.Context, header http.Header, body []byte) error {
	res, err := s.gw.ParseRefundNotify(ctx, header, body)
	if err != nil {
		s.m.Notify("refund", "rejected", reason(err))
		s.log.WarnContext(ctx, "refund notify refused", slog.String("reason", reason(err)), slog.String("error", err.Error()))
		return err
	}
	r, err := s.store.Refund(ctx, res.OutRefundNo)
	if merchant.ErrorCode(err) == merchant.ENOTFOUND || err == nil && (r.OutTradeNo != res.OutTradeNo || r.RefundFee != res.RefundFee) {
		_, _ = s.store.RecordAnomaly(ctx, &merchant.Anomaly{
			OutTradeNo: res.OutTradeNo, Kind: merchant.AnomalyRefundMismatch, Ref: res.OutRefundNo,
			Detail:    fmt.Sprintf("refund notify for %s (%d fen) matches none of our refunds", res.OutRefundNo, res.RefundFee),
			CreatedAt: s.cfg.Now(),
		})
		s.m.Notify("refund", "rejected", "mismatch")
		return fmt.Errorf("%w: refund %s", ErrNotifyRejected, res.OutRefundNo)
	}
	if err != nil {
		s.m.Notify("refund", "error", "store")
		return err
	}
	if _, err := s.SyncRefund(ctx, r.OutRefundNo); err != nil {
		s.m.Notify("refund", "error", "query")
		return err
	}
	s.m.Notify("refund", "ok", string(res.Status))
	return nil
}
