// Package wxgateway implements merchant.Gateway over the v2 SDK (apiv2,
// New) or over APIv3 (apiv3, NewV3), with the mini-program login client
// (miniprogram): the one place where SDK types become domain types and SDK
// errors become the merchant sentinels.
package wxgateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/miniprogram"
)

// Config wires the gateway.
type Config struct {
	Pay   *apiv2.Client       // required
	Login *miniprogram.Client // required for Login
	// NotifyURL is the pay notify URL sent with unifiedorder; required.
	NotifyURL string
	// RefundNotifyURL is the refund notify URL sent with refunds; optional.
	RefundNotifyURL string
	// Observe, when set, is told of every WeChat call: the API, its outcome
	// (ok, unknown, rejected, or an err_code) and how long it took.
	Observe func(api, outcome string, d time.Duration)
}

// Gateway is a merchant.Gateway over WeChat Pay v2.
type Gateway struct {
	cfg Config
}

var _ merchant.Gateway = (*Gateway)(nil)

// New checks the config and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Pay == nil {
		return nil, errors.New("wxgateway: an apiv2 client is required")
	}
	if cfg.NotifyURL == "" {
		return nil, errors.New("wxgateway: a notify URL is required")
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string, time.Duration) {}
	}
	return &Gateway{cfg: cfg}, nil
}

// AppID returns the app id of the pay client.
func (g *Gateway) AppID() string { return g.cfg.Pay.AppID() }

// MchID returns the merchant id of the pay client.
func (g *Gateway) MchID() string { return g.cfg.Pay.MchID() }

// observe times a call and maps its error.
func (g *Gateway) observe(api string, start time.Time, err error) error {
	var code string
	if ae := (*apiv2.Error)(nil); errors.As(err, &ae) {
		code = string(ae.Code)
	}
	g.cfg.Observe(api, outcome(err, apiv2.OutcomeUnknown(err), code), time.Since(start))
	return mapErr(err)
}

// outcome names a call's result for metrics: ok, unknown, WeChat's error
// code, or rejected.
func outcome(err error, unknown bool, code string) string {
	switch {
	case err == nil:
		return "ok"
	case unknown:
		return "unknown"
	case code != "":
		return code
	}
	return "rejected"
}

// mapErr turns an SDK error into one wrapping a merchant sentinel, keeping
// the SDK error in the chain for logs.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case apiv2.OutcomeUnknown(err):
		sentinel = merchant.ErrUnknownOutcome
	case errors.Is(err, apiv2.ErrOrderPaid):
		sentinel = merchant.ErrOrderPaid
	case errors.Is(err, apiv2.ErrOrderClosed), errors.Is(err, apiv2.ErrOrderReversed):
		sentinel = merchant.ErrOrderClosed
	case errors.Is(err, apiv2.ErrOrderNotExist):
		sentinel = merchant.ErrOrderNotExist
	case errors.Is(err, apiv2.ErrRefundNotExist):
		sentinel = merchant.ErrRefundNotExist
	case errors.Is(err, apiv2.ErrNoBill):
		sentinel = merchant.ErrNoBill
	case errors.Is(err, apiv2.ErrBillCreating):
		sentinel = merchant.ErrBillNotReady
	case errors.Is(err, apiv2.ErrBizNeedRetry), errors.Is(err, apiv2.ErrFrequencyLimited):
		sentinel = merchant.ErrUnknownOutcome // not executed, but retry with the same parameters
	case errors.Is(err, apiv2.ErrInvalidArgument):
		sentinel = merchant.ErrRejected // refused by the SDK: nothing was sent
	default:
		var ae *apiv2.Error
		if errors.As(err, &ae) && (ae.Code != "" || ae.ReturnCode == "FAIL" || ae.HTTPStatus >= 400 && ae.HTTPStatus < 500) {
			sentinel = merchant.ErrRejected
		} else {
			sentinel = merchant.ErrUnknownOutcome
		}
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// Login trades a code for an openid.
func (g *Gateway) Login(ctx context.Context, code string) (*merchant.Login, error) {
	return login(ctx, g.cfg.Login, g.cfg.Observe, code)
}

// login is jscode2session, the same for both API generations.
func login(ctx context.Context, c *miniprogram.Client, observe func(string, string, time.Duration), code string) (*merchant.Login, error) {
	if c == nil {
		return nil, errors.New("wxgateway: no mini-program login client configured")
	}
	start := time.Now()
	s, err := c.Code2Session(ctx, code)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	observe("jscode2session", outcome, time.Since(start))
	switch {
	case errors.Is(err, miniprogram.ErrInvalidCode), errors.Is(err, miniprogram.ErrCodeUsed):
		return nil, fmt.Errorf("%w: %w", merchant.ErrBadCode, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", merchant.ErrUnknownOutcome, err)
	}
	return &merchant.Login{OpenID: s.OpenID, UnionID: s.UnionID}, nil
}

// Prepay calls unifiedorder with the order's stored parameters, identical
// on every call for the same order.
func (g *Gateway) Prepay(ctx context.Context, o *merchant.Order) (*merchant.Prepay, error) {
	req := &apiv2.UnifiedOrderRequest{
		Body: o.Body, OutTradeNo: o.OutTradeNo, TotalFee: o.TotalFee, SpbillCreateIP: o.ClientIP,
		TradeType: o.TradeType, NotifyURL: g.cfg.NotifyURL, TimeExpire: o.ExpiresAt,
	}
	switch o.TradeType {
	case wxpay.TradeTypeJSAPI:
		req.OpenID = o.OpenID
	case wxpay.TradeTypeNative:
		if len(o.Items) > 0 {
			req.ProductID = o.Items[0].SKU
		}
	}
	start := time.Now()
	resp, err := g.cfg.Pay.UnifiedOrder(ctx, req)
	if err = g.observe("unifiedorder", start, err); err != nil {
		return nil, err
	}
	return &merchant.Prepay{PrepayID: resp.PrepayID, CodeURL: resp.CodeURL}, nil
}

// PayParams signs the mini-program pay parameters.
func (g *Gateway) PayParams(prepayID string) (*merchant.PayParams, error) {
	p, err := g.cfg.Pay.PayParams(prepayID)
	if err != nil {
		return nil, err
	}
	return &merchant.PayParams{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package,
		SignType: p.SignType, PaySign: p.PaySign, Signed: p.CanonicalString()}, nil
}

func payment(env *apiv2.Envelope, p *apiv2.Payment) *merchant.Payment {
	return &merchant.Payment{
		OutTradeNo: p.OutTradeNo, TransactionID: p.TransactionID, AppID: env.AppID, MchID: env.MchID,
		TotalFee: p.TotalFee, CashFee: p.CashFee, FeeType: p.FeeType, OpenID: p.OpenID,
		TradeType: p.TradeType, PaidAt: p.TimeEnd,
	}
}

// Query asks for an order's state.
func (g *Gateway) Query(ctx context.Context, outTradeNo string) (*merchant.TradeStatus, error) {
	start := time.Now()
	resp, err := g.cfg.Pay.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: outTradeNo})
	if err = g.observe("orderquery", start, err); err != nil {
		return nil, err
	}
	ts := &merchant.TradeStatus{State: resp.TradeState}
	if resp.TradeState.Paid() {
		ts.Payment = payment(&resp.Envelope, &resp.Payment)
	}
	return ts, nil
}

// Close closes an order at WeChat.
func (g *Gateway) Close(ctx context.Context, outTradeNo string) error {
	start := time.Now()
	_, err := g.cfg.Pay.CloseOrder(ctx, outTradeNo)
	return g.observe("closeorder", start, err)
}

// Refund submits a refund with its stored number and amount.
func (g *Gateway) Refund(ctx context.Context, r *merchant.Refund) (string, error) {
	start := time.Now()
	resp, err := g.cfg.Pay.Refund(ctx, &apiv2.RefundRequest{
		OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, TotalFee: r.TotalFee, RefundFee: r.RefundFee,
		RefundDesc: r.Reason, NotifyURL: g.cfg.RefundNotifyURL,
	})
	if err = g.observe("refund", start, err); err != nil {
		return "", err
	}
	return resp.RefundID, nil
}

func refundStatus(s wxpay.RefundStatus) merchant.RefundStatus {
	switch s {
	case wxpay.RefundStatusSuccess:
		return merchant.RefundSuccess
	case wxpay.RefundStatusClosed:
		return merchant.RefundClosed
	case wxpay.RefundStatusChange:
		return merchant.RefundChange
	}
	return merchant.RefundProcessing
}

// RefundQuery asks for a refund's state.
func (g *Gateway) RefundQuery(ctx context.Context, outRefundNo string) (*merchant.RefundResult, error) {
	start := time.Now()
	resp, err := g.cfg.Pay.RefundQuery(ctx, &apiv2.RefundQueryRequest{OutRefundNo: outRefundNo})
	if err = g.observe("refundquery", start, err); err != nil {
		return nil, err
	}
	for _, r := range resp.Refunds {
		if r.OutRefundNo == outRefundNo {
			return &merchant.RefundResult{OutRefundNo: r.OutRefundNo, OutTradeNo: resp.OutTradeNo, RefundID: r.RefundID,
				RefundFee: r.RefundFee, Status: refundStatus(r.Status), SuccessAt: r.SuccessTime}, nil
		}
	}
	return nil, fmt.Errorf("%w: refund query answer does not list %s", merchant.ErrRefundNotExist, outRefundNo)
}

// Bill downloads a day's ALL bill, gzipped.
func (g *Gateway) Bill(ctx context.Context, day time.Time) ([]merchant.BillEntry, error) {
	start := time.Now()
	bill, err := g.cfg.Pay.DownloadBill(ctx, &apiv2.DownloadBillRequest{Date: day, Type: wxpay.BillTypeAll, Gzip: true})
	if err = g.observe("downloadbill", start, err); err != nil {
		return nil, err
	}
	return billEntries(bill), nil
}

// billEntries turns a parsed trade bill (v2, or v3's, which has the same
// columns) into domain rows.
func billEntries(bill *apiv2.Bill) []merchant.BillEntry {
	out := make([]merchant.BillEntry, 0, len(bill.Rows))
	for _, r := range bill.Rows {
		// Payment rows carry "0" in the refund columns.
		if r.OutRefundNo == "0" {
			r.OutRefundNo = ""
		}
		if r.RefundID == "0" {
			r.RefundID = ""
		}
		out = append(out, merchant.BillEntry{
			Time: r.TradeTime, OutTradeNo: r.OutTradeNo, TransactionID: r.TransactionID, State: r.TradeState,
			TotalFee: r.TotalFee, OutRefundNo: r.OutRefundNo, RefundID: r.RefundID, RefundFee: r.RefundFee,
			RefundStatus: string(r.RefundStatus),
		})
	}
	return out
}

// notifyErr is a refused notify, with a reason for metrics.
type notifyErr struct {
	reason string
	err    error
}

func (e *notifyErr) Error() string   { return e.err.Error() }
func (e *notifyErr) Unwrap() []error { return []error{merchant.ErrBadNotify, e.err} }

// Reason names why the notify was refused.
func (e *notifyErr) Reason() string { return e.reason }

func refused(err error) error {
	var ne *apiv2.NotifyError
	if errors.As(err, &ne) {
		return &notifyErr{reason: string(ne.Reason), err: err}
	}
	return &notifyErr{reason: "malformed", err: err}
}

// ParsePayNotify verifies a pay notify.
func (g *Gateway) ParsePayNotify(_ context.Context, _ http.Header, body []byte) (*merchant.PayNotice, error) {
	n, err := g.cfg.Pay.ParsePayNotify(body)
	if err != nil {
		if p := foreignPayment(err); p != nil {
			return p, nil
		}
		return nil, refused(err)
	}
	return &merchant.PayNotice{Payment: *payment(&n.Envelope, &n.Payment), Paid: n.Paid()}, nil
}

// foreignPayment returns the payment of a pay notify that apiv2 refused
// only because it names another appid or mch_id. Its signature verified
// with our key, so it goes on to the service, whose store compares it with
// the order (Order.Check) and records the anomaly once (reliability.md A2,
// I6); it can never mark an order paid, since its app or merchant differs
// from every order's. Any other refusal returns nil.
func foreignPayment(err error) *merchant.PayNotice {
	var ne *apiv2.NotifyError
	if !errors.As(err, &ne) || ne.Reason != apiv2.ReasonMerchant || ne.Notify == nil {
		return nil
	}
	return &merchant.PayNotice{Payment: *payment(&ne.Notify.Envelope, &ne.Notify.Payment), Paid: ne.Notify.Paid()}
}

// ParseRefundNotify decrypts a refund notify.
func (g *Gateway) ParseRefundNotify(_ context.Context, _ http.Header, body []byte) (*merchant.RefundResult, error) {
	n, err := g.cfg.Pay.ParseRefundNotify(body)
	if err != nil {
		return nil, refused(err)
	}
	return &merchant.RefundResult{OutRefundNo: n.OutRefundNo, OutTradeNo: n.OutTradeNo, RefundID: n.RefundID,
		RefundFee: n.RefundFee, Status: refundStatus(n.Status), SuccessAt: n.SuccessTime}, nil
}

// NotifyAck is the v2 answer: the SUCCESS document, or FAIL (HTTP 400 for a
// refused notify, 500 when we failed to store it).
func (g *Gateway) NotifyAck(err error) (int, string, []byte) {
	const ct = "text/xml; charset=utf-8"
	switch {
	case err == nil:
		return http.StatusOK, ct, apiv2.NotifySuccess
	case errors.Is(err, merchant.ErrBadNotify):
		return http.StatusBadRequest, ct, apiv2.NotifyFail("refused")
	}
	return http.StatusInternalServerError, ct, apiv2.NotifyFail("retry later")
}
