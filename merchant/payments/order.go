package payments

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

// prepayLife is how long WeChat keeps a prepay id valid; one is reused
// until prepayMargin before that.
const (
	prepayLife   = 2 * time.Hour
	prepayMargin = 10 * time.Minute
)

// CreateOrderRequest is a client's order: products and quantities, never
// prices.
type CreateOrderRequest struct {
	Items     []merchant.CartLine
	TradeType wxpay.TradeType // JSAPI (default) or NATIVE
	// IdempotencyKey makes a double tap return the same order: the same
	// key with the same cart gives the same order; with another cart, a
	// conflict. Optional, ≤ 64 characters.
	IdempotencyKey string
	ClientIP       string
}

// OrderResult is an order with what the client needs to pay it.
type OrderResult struct {
	Order     *merchant.Order
	PayParams *merchant.PayParams // JSAPI
	CodeURL   string              // NATIVE
	Created   bool                // false when the idempotency key returned an earlier order
}

// CreateOrder prices the cart from the catalog, stores the order (before
// WeChat hears of it), calls unifiedorder and signs the pay parameters.
// The payer is the session's user, whatever the request says.
func (s *Service) CreateOrder(ctx context.Context, sess *merchant.Session, req CreateOrderRequest) (*OrderResult, error) {
	tt := req.TradeType
	if tt == "" {
		tt = wxpay.TradeTypeJSAPI
	}
	if tt != wxpay.TradeTypeJSAPI && tt != wxpay.TradeTypeNative {
		return nil, merchant.Errorf(merchant.EINVALID, "trade_type must be JSAPI or NATIVE")
	}
	if len(req.IdempotencyKey) > 64 {
		return nil, merchant.Errorf(merchant.EINVALID, "the idempotency key has more than 64 characters")
	}
	items, total, err := s.cfg.Catalog.Price(req.Items)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	ip := req.ClientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	o := &merchant.Order{
		OutTradeNo: newNumber("WX", now), OpenID: sess.OpenID, AppID: s.gw.AppID(), MchID: s.gw.MchID(),
		TradeType: tt, Items: items, TotalFee: total, Body: s.body(items), ClientIP: ip,
		Status: merchant.OrderNotPay, PrepayState: merchant.PrepayPending,
		ExpiresAt: now.Add(s.cfg.OrderTTL).Truncate(time.Second), IdempotencyKey: req.IdempotencyKey,
		CreatedAt: now, UpdatedAt: now,
	}
	stored, created, err := s.store.CreateOrder(ctx, o)
	if err != nil {
		return nil, err
	}
	if !created {
		if stored.TradeType != tt || !slices.Equal(stored.Items, items) {
			return nil, merchant.Errorf(merchant.ECONFLICT, "the idempotency key was used for another cart")
		}
	} else {
		s.m.OrderCreated(string(tt))
	}
	res, err := s.payable(ctx, stored)
	if res != nil {
		res.Created = created
	}
	return res, err
}

// body is the order description: prefix and the first product's name.
func (s *Service) body(items []merchant.Item) string {
	b := s.cfg.BodyPrefix + items[0].Name
	if len(items) > 1 {
		b += "等"
	}
	if len(b) > 120 { // String(128): cut on a rune boundary
		b = strings.ToValidUTF8(b[:120], "")
	}
	return b
}

// PayParams returns what the client needs to pay an order of its user:
// the pay parameters (JSAPI) or code url (NATIVE), calling unifiedorder
// again when the held prepay id is missing or about to expire.
func (s *Service) PayParams(ctx context.Context, sess *merchant.Session, outTradeNo string) (*OrderResult, error) {
	o, err := s.userOrder(ctx, sess, outTradeNo)
	if err != nil {
		return nil, err
	}
	return s.payable(ctx, o)
}

func (s *Service) payable(ctx context.Context, o *merchant.Order) (*OrderResult, error) {
	if o.Status != merchant.OrderNotPay {
		return &OrderResult{Order: o}, nil
	}
	if err := s.ensurePrepay(ctx, o); err != nil {
		return nil, err
	}
	res := &OrderResult{Order: o, CodeURL: o.CodeURL}
	if o.TradeType == wxpay.TradeTypeJSAPI {
		p, err := s.gw.PayParams(o.PrepayID)
		if err != nil {
			return nil, err
		}
		res.PayParams = p
	}
	return res, nil
}

// ensurePrepay makes sure a NOTPAY order holds a valid prepay id, calling
// unifiedorder with the order's fixed parameters — several times when the
// outcome is unknown, since WeChat answers identical re-entries with the
// prepay id.
func (s *Service) ensurePrepay(ctx context.Context, o *merchant.Order) error {
	now := s.cfg.Now()
	if o.PrepayState == merchant.PrepayOK && o.PrepayExpiresAt.After(now.Add(prepayMargin)) {
		return nil
	}
	if !o.ExpiresAt.After(now.Add(time.Minute)) {
		return merchant.Errorf(merchant.ECONFLICT, "order %s has expired; place a new order", o.OutTradeNo)
	}
	var err error
	for attempt := 0; attempt < s.cfg.PrepayAttempts; attempt++ {
		var p *merchant.Prepay
		p, err = s.gw.Prepay(ctx, o)
		if err == nil {
			exp := now.Add(prepayLife)
			if err := s.store.SetPrepay(ctx, o.OutTradeNo, merchant.PrepayOK, p.PrepayID, p.CodeURL, exp); err != nil {
				return err
			}
			o.PrepayState, o.PrepayID, o.CodeURL, o.PrepayExpiresAt = merchant.PrepayOK, p.PrepayID, p.CodeURL, exp
			return nil
		}
		if !errors.Is(err, merchant.ErrUnknownOutcome) || ctx.Err() != nil {
			break
		}
		s.log.WarnContext(ctx, "unifiedorder outcome unknown, retrying with identical parameters",
			slog.String("out_trade_no", o.OutTradeNo), slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
	}
	switch {
	case errors.Is(err, merchant.ErrOrderPaid):
		_, _ = s.Sync(ctx, o.OutTradeNo)
		return merchant.Errorf(merchant.ECONFLICT, "order %s is already paid", o.OutTradeNo)
	case errors.Is(err, merchant.ErrOrderClosed):
		_, _ = s.Sync(ctx, o.OutTradeNo)
		return merchant.Errorf(merchant.ECONFLICT, "order %s is closed; place a new order", o.OutTradeNo)
	case errors.Is(err, merchant.ErrUnknownOutcome):
		// Left PENDING: the next call (same idempotency key, or reading the
		// order) retries with the same parameters; the settle job queries.
		return merchant.Errorf(merchant.EUNAVAILABLE, "WeChat did not answer in time; retry with the same idempotency key")
	case errors.Is(err, merchant.ErrRejected):
		if serr := s.store.SetPrepay(ctx, o.OutTradeNo, merchant.PrepayFailed, "", "", time.Time{}); serr != nil {
			return serr
		}
		s.log.ErrorContext(ctx, "unifiedorder refused", slog.String("out_trade_no", o.OutTradeNo), slog.String("error", err.Error()))
		return merchant.Errorf(merchant.EUPSTREAM, "WeChat refused the order")
	}
	return err
}

// userOrder loads an order and checks it belongs to the session's user;
// another user's order is "not found", so existence is not revealed.
func (s *Service) userOrder(ctx context.Context, sess *merchant.Session, outTradeNo string) (*merchant.Order, error) {
	o, err := s.store.Order(ctx, outTradeNo)
	if merchant.ErrorCode(err) == merchant.ENOTFOUND || err == nil && o.OpenID != sess.OpenID {
		return nil, merchant.Errorf(merchant.ENOTFOUND, "no order %s", outTradeNo)
	}
	return o, err
}

// GetOrder returns an order of the session's user with its refunds. An
// unpaid order older than QueryAfter is first checked with WeChat: this is
// what the mini program calls after wx.requestPayment says ok, and the only
// thing such a call can do — nothing the client says marks an order paid.
func (s *Service) GetOrder(ctx context.Context, sess *merchant.Session, outTradeNo string) (*merchant.Order, []*merchant.Refund, error) {
	o, err := s.userOrder(ctx, sess, outTradeNo)
	if err != nil {
		return nil, nil, err
	}
	return s.orderView(ctx, o)
}

// AdminOrder is GetOrder without the owner check.
func (s *Service) AdminOrder(ctx context.Context, outTradeNo string) (*merchant.Order, []*merchant.Refund, error) {
	o, err := s.store.Order(ctx, outTradeNo)
	if err != nil {
		return nil, nil, err
	}
	return s.orderView(ctx, o)
}

func (s *Service) orderView(ctx context.Context, o *merchant.Order) (*merchant.Order, []*merchant.Refund, error) {
	now := s.cfg.Now()
	last := o.LastQueriedAt
	if o.CreatedAt.After(last) {
		last = o.CreatedAt
	}
	if o.Status == merchant.OrderNotPay && now.Sub(last) >= s.cfg.QueryAfter {
		if fresh, err := s.Sync(ctx, o.OutTradeNo); err == nil {
			o = fresh
		} else {
			s.log.InfoContext(ctx, "query on read failed", slog.String("out_trade_no", o.OutTradeNo), slog.String("error", err.Error()))
		}
	}
	refunds, err := s.store.Refunds(ctx, o.OutTradeNo)
	if err != nil {
		return nil, nil, err
	}
	return o, refunds, nil
}

// Sync asks WeChat for an order's state and applies it: a payment marks it
// PAID (through the same checks as a notify), a close closes it. It
// returns the order as stored afterwards.
func (s *Service) Sync(ctx context.Context, outTradeNo string) (*merchant.Order, error) {
	o, err := s.store.Order(ctx, outTradeNo)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	ts, err := s.gw.Query(ctx, outTradeNo)
	if errors.Is(err, merchant.ErrOrderNotExist) {
		// WeChat never accepted it (unifiedorder not called, or refused).
		return o, s.store.TouchQueried(ctx, outTradeNo, now)
	}
	if err != nil {
		return nil, err
	}
	switch ts.State {
	case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
		if ts.Payment == nil {
			return nil, errors.New("payments: paid order without payment details")
		}
		p := *ts.Payment
		p.Source = merchant.SourceQuery
		outcome, after, err := s.store.MarkPaid(ctx, &p, now)
		if err != nil {
			return nil, err
		}
		s.paid(ctx, outcome, &p)
		if after != nil {
			return after, nil
		}
	case wxpay.TradeStateClosed, wxpay.TradeStateRevoked:
		if _, err := s.store.MarkClosed(ctx, outTradeNo, merchant.OrderClosed, "query", now); err != nil {
			return nil, err
		}
	case wxpay.TradeStatePayError:
		if _, err := s.store.MarkClosed(ctx, outTradeNo, merchant.OrderPayError, "query", now); err != nil {
			return nil, err
		}
	default: // NOTPAY, USERPAYING, ACCEPT
		if err := s.store.TouchQueried(ctx, outTradeNo, now); err != nil {
			return nil, err
		}
	}
	return s.store.Order(ctx, outTradeNo)
}

// paid logs and counts the outcome of a MarkPaid.
func (s *Service) paid(ctx context.Context, outcome merchant.PayOutcome, p *merchant.Payment) {
	switch outcome {
	case merchant.PayApplied:
		s.m.OrderPaid(string(p.Source))
		s.log.InfoContext(ctx, "order paid", slog.String("out_trade_no", p.OutTradeNo), slog.String("source", string(p.Source)))
	case merchant.PayLate:
		s.m.OrderPaid(string(p.Source))
		s.log.ErrorContext(ctx, "payment of a closed order: marked paid, anomaly recorded for a refund or shipment by hand",
			slog.String("out_trade_no", p.OutTradeNo))
	case merchant.PayRejected:
		s.log.ErrorContext(ctx, "payment disagrees with the order: anomaly recorded, not marked paid",
			slog.String("out_trade_no", p.OutTradeNo), slog.Int64("total_fee", p.TotalFee), slog.String("source", string(p.Source)))
	}
}

// CloseOrder closes an unpaid order of the session's user.
func (s *Service) CloseOrder(ctx context.Context, sess *merchant.Session, outTradeNo string) (*merchant.Order, error) {
	if _, err := s.userOrder(ctx, sess, outTradeNo); err != nil {
		return nil, err
	}
	return s.Close(ctx, outTradeNo)
}

// Close closes an unpaid order: it queries first (a payment wins), then
// calls closeorder, and marks the order CLOSED only when WeChat confirmed.
// An order WeChat never accepted is closed locally. A payment that lands
// after all is applied as a late payment (PAID plus an anomaly).
func (s *Service) Close(ctx context.Context, outTradeNo string) (*merchant.Order, error) {
	o, err := s.Sync(ctx, outTradeNo)
	if err != nil {
		return nil, err
	}
	if o.Status != merchant.OrderNotPay {
		return o, nil
	}
	now := s.cfg.Now()
	err = s.gw.Close(ctx, outTradeNo)
	switch {
	case err == nil, errors.Is(err, merchant.ErrOrderClosed), errors.Is(err, merchant.ErrOrderNotExist):
		if _, err := s.store.MarkClosed(ctx, outTradeNo, merchant.OrderClosed, "close", now); err != nil {
			return nil, err
		}
	case errors.Is(err, merchant.ErrOrderPaid):
		return s.Sync(ctx, outTradeNo)
	case errors.Is(err, merchant.ErrRejected):
		return nil, merchant.Errorf(merchant.ECONFLICT, "WeChat refused to close the order now: %v", err)
	default:
		return nil, merchant.Errorf(merchant.EUNAVAILABLE, "closing %s: the outcome is unknown; it will be retried", outTradeNo)
	}
	return s.store.Order(ctx, outTradeNo)
}
