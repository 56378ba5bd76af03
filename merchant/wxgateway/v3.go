package wxgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/miniprogram"
)

// ConfigV3 wires a gateway over APIv3.
type ConfigV3 struct {
	// Pay is the APIv3 client, with its Verifier (a CertificateManager the
	// caller started, a PublicKeyVerifier, or a MultiVerifier during a
	// migration); required.
	Pay *apiv3.Client
	// Login is required for Login (jscode2session is the same for both
	// API generations).
	Login *miniprogram.Client
	// NotifyURL is the pay notify URL sent with every order; required.
	NotifyURL string
	// RefundNotifyURL is sent with refunds; optional (WeChat then uses the
	// URL configured in the merchant platform).
	RefundNotifyURL string
	// Observe, when set, is told of every WeChat call, as Config.Observe.
	Observe func(api, outcome string, d time.Duration)
}

// V3 is a merchant.Gateway over WeChat Pay APIv3: JSON requests signed
// with the merchant's RSA key, answers and notifies verified with the
// platform certificates or the WeChat Pay public key, resources decrypted
// with AES-256-GCM, mini-program pay parameters signed with RSA.
type V3 struct {
	cfg ConfigV3
}

var _ merchant.Gateway = (*V3)(nil)

// NewV3 checks the config and returns a V3 gateway.
func NewV3(cfg ConfigV3) (*V3, error) {
	if cfg.Pay == nil {
		return nil, errors.New("wxgateway: an apiv3 client is required")
	}
	if cfg.Pay.Verifier() == nil {
		return nil, errors.New("wxgateway: the apiv3 client has no Verifier: answers and notifies could not be verified")
	}
	if cfg.Pay.AppID() == "" {
		return nil, errors.New("wxgateway: the apiv3 client needs the mini program's AppID")
	}
	if cfg.NotifyURL == "" {
		return nil, errors.New("wxgateway: a notify URL is required")
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string, time.Duration) {}
	}
	return &V3{cfg: cfg}, nil
}

// AppID returns the app id of the pay client.
func (g *V3) AppID() string { return g.cfg.Pay.AppID() }

// MchID returns the merchant id of the pay client.
func (g *V3) MchID() string { return g.cfg.Pay.MchID() }

// observe times a call and maps its error.
func (g *V3) observe(api string, start time.Time, err error) error {
	var code string
	if ae := (*apiv3.Error)(nil); errors.As(err, &ae) {
		code = string(ae.Code)
	}
	g.cfg.Observe(api, outcome(err, apiv3.OutcomeUnknown(err), code), time.Since(start))
	return mapErrV3(err)
}

// mapErrV3 turns an apiv3 error into one wrapping a merchant sentinel.
func mapErrV3(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case apiv3.OutcomeUnknown(err):
		sentinel = merchant.ErrUnknownOutcome
	case errors.Is(err, apiv3.ErrOrderPaid):
		sentinel = merchant.ErrOrderPaid
	case errors.Is(err, apiv3.ErrOrderClosed):
		sentinel = merchant.ErrOrderClosed
	case errors.Is(err, apiv3.ErrOrderNotExist):
		sentinel = merchant.ErrOrderNotExist
	case errors.Is(err, apiv3.ErrNoStatementExist):
		sentinel = merchant.ErrNoBill
	case errors.Is(err, apiv3.ErrStatementCreating):
		sentinel = merchant.ErrBillNotReady
	case errors.Is(err, apiv3.ErrFrequencyLimited):
		sentinel = merchant.ErrUnknownOutcome // nothing done; retry with the same parameters
	case errors.Is(err, apiv3.ErrInvalidArgument):
		sentinel = merchant.ErrRejected // refused by the SDK: nothing was sent
	default:
		var ae *apiv3.Error
		if errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 {
			sentinel = merchant.ErrRejected
		} else {
			sentinel = merchant.ErrUnknownOutcome
		}
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// Login trades a code for an openid.
func (g *V3) Login(ctx context.Context, code string) (*merchant.Login, error) {
	return login(ctx, g.cfg.Login, g.cfg.Observe, code)
}

// Prepay places the order (JSAPI for the mini program, or NATIVE) with its
// stored parameters, identical on every call for the same order.
func (g *V3) Prepay(ctx context.Context, o *merchant.Order) (*merchant.Prepay, error) {
	req := &apiv3.PrepayRequest{
		Description: o.Body, OutTradeNo: o.OutTradeNo, Total: o.TotalFee, NotifyURL: g.cfg.NotifyURL,
		TimeExpire: o.ExpiresAt,
	}
	if o.ClientIP != "" {
		req.SceneInfo = &apiv3.SceneInfo{PayerClientIP: o.ClientIP}
	}
	start := time.Now()
	switch o.TradeType {
	case wxpay.TradeTypeJSAPI:
		req.OpenID = o.OpenID
		resp, err := g.cfg.Pay.PrepayJSAPI(ctx, req)
		if err = g.observe("prepay-jsapi", start, err); err != nil {
			return nil, err
		}
		return &merchant.Prepay{PrepayID: resp.PrepayID}, nil
	case wxpay.TradeTypeNative:
		resp, err := g.cfg.Pay.PrepayNative(ctx, req)
		if err = g.observe("prepay-native", start, err); err != nil {
			return nil, err
		}
		return &merchant.Prepay{CodeURL: resp.CodeURL}, nil
	}
	return nil, fmt.Errorf("%w: trade type %s is not served over APIv3 by this service", merchant.ErrRejected, o.TradeType)
}

// PayParams signs the mini-program pay parameters with the merchant's RSA
// key (signType RSA).
func (g *V3) PayParams(prepayID string) (*merchant.PayParams, error) {
	p, err := g.cfg.Pay.MiniProgramPayParams("", prepayID)
	if err != nil {
		return nil, err
	}
	return &merchant.PayParams{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package,
		SignType: p.SignType, PaySign: p.PaySign,
		Signed: p.SignedString()}, nil
}

// paymentV3 turns a paid v3 transaction into the domain's payment.
func paymentV3(t *apiv3.Transaction) *merchant.Payment {
	return &merchant.Payment{
		OutTradeNo: t.OutTradeNo, TransactionID: t.TransactionID, AppID: t.AppID, MchID: t.MchID,
		TotalFee: t.Amount.Total, CashFee: t.Amount.PayerTotal, FeeType: t.Amount.Currency, OpenID: t.Payer.OpenID,
		TradeType: t.TradeType, PaidAt: t.SuccessTime,
	}
}

// Query asks for an order's state.
func (g *V3) Query(ctx context.Context, outTradeNo string) (*merchant.TradeStatus, error) {
	start := time.Now()
	t, err := g.cfg.Pay.QueryByOutTradeNo(ctx, outTradeNo)
	if err = g.observe("query", start, err); err != nil {
		return nil, err
	}
	ts := &merchant.TradeStatus{State: t.TradeState}
	if t.TradeState.Paid() {
		ts.Payment = paymentV3(t)
	}
	return ts, nil
}

// Close closes an order at WeChat (204), or says it is paid (ORDER_PAID →
// merchant.ErrOrderPaid, after which the service queries).
func (g *V3) Close(ctx context.Context, outTradeNo string) error {
	start := time.Now()
	return g.observe("close", start, g.cfg.Pay.CloseOrder(ctx, outTradeNo))
}

// Refund submits a refund with its stored number and amounts.
func (g *V3) Refund(ctx context.Context, r *merchant.Refund) (string, error) {
	start := time.Now()
	resp, err := g.cfg.Pay.CreateRefund(ctx, &apiv3.RefundRequest{
		OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Total: r.TotalFee, Refund: r.RefundFee,
		Reason: r.Reason, NotifyURL: g.cfg.RefundNotifyURL,
	})
	if err = g.observe("refund", start, err); err != nil {
		return "", err
	}
	// Accepted, whatever its status: the refund query (which the service
	// always does) says whether it succeeded.
	return resp.RefundID, nil
}

// RefundQuery asks for a refund's state.
func (g *V3) RefundQuery(ctx context.Context, outRefundNo string) (*merchant.RefundResult, error) {
	start := time.Now()
	r, err := g.cfg.Pay.QueryRefund(ctx, outRefundNo)
	if err != nil && errors.Is(err, apiv3.ErrResourceNotExists) {
		g.cfg.Observe("refundquery", string(apiv3.ErrResourceNotExists), time.Since(start))
		return nil, fmt.Errorf("%w: %w", merchant.ErrRefundNotExist, err)
	}
	if err = g.observe("refundquery", start, err); err != nil {
		return nil, err
	}
	return &merchant.RefundResult{OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo, RefundID: r.RefundID,
		RefundFee: r.Amount.Refund, Status: refundStatus(r.Status), SuccessAt: r.SuccessTime}, nil
}

// Bill downloads a day's ALL trade bill (two steps, the file's SHA-1
// checked by apiv3) and parses it with the v2 bill parser: the v3 trade
// bill has the same columns and summary.
func (g *V3) Bill(ctx context.Context, day time.Time) ([]merchant.BillEntry, error) {
	start := time.Now()
	data, err := g.cfg.Pay.TradeBill(ctx, &apiv3.TradeBillRequest{Date: day, Type: wxpay.BillTypeAll, Gzip: true})
	if err = g.observe("tradebill", start, err); err != nil {
		return nil, err
	}
	bill, err := apiv2.ParseBill(data)
	if err != nil {
		return nil, fmt.Errorf("%w: the bill of %s does not parse: %w", merchant.ErrUnknownOutcome, day.Format(time.DateOnly), err)
	}
	return billEntries(bill), nil
}

func refusedV3(err error) error {
	var ne *apiv3.NotifyError
	if errors.As(err, &ne) {
		return &notifyErr{reason: string(ne.Reason), err: err}
	}
	return &notifyErr{reason: "malformed", err: err}
}

// ParsePayNotify verifies (Wechatpay-* headers over the raw body),
// decrypts and decodes a pay notify.
func (g *V3) ParsePayNotify(ctx context.Context, header http.Header, body []byte) (*merchant.PayNotice, error) {
	n, err := g.cfg.Pay.ParseNotify(ctx, header, body)
	if err != nil {
		var ne *apiv3.NotifyError
		if errors.As(err, &ne) && ne.Reason == apiv3.ReasonMerchant && ne.Notify != nil && ne.Notify.Transaction != nil {
			// Authentic, for another mch id: on to the store, which
			// records the anomaly once and marks nothing (see
			// foreignPayment).
			t := ne.Notify.Transaction
			return &merchant.PayNotice{Payment: *paymentV3(t), Paid: t.Paid()}, nil
		}
		return nil, refusedV3(err)
	}
	if n.Transaction == nil {
		return nil, &notifyErr{reason: "event", err: fmt.Errorf("a %s notify at the pay notify URL", n.EventType)}
	}
	t := n.Transaction
	return &merchant.PayNotice{Payment: *paymentV3(t), Paid: t.Paid()}, nil
}

// ParseRefundNotify verifies, decrypts and decodes a refund notify.
func (g *V3) ParseRefundNotify(ctx context.Context, header http.Header, body []byte) (*merchant.RefundResult, error) {
	n, err := g.cfg.Pay.ParseNotify(ctx, header, body)
	if err != nil {
		return nil, refusedV3(err)
	}
	if n.Refund == nil {
		return nil, &notifyErr{reason: "event", err: fmt.Errorf("a %s notify at the refund notify URL", n.EventType)}
	}
	r := n.Refund
	return &merchant.RefundResult{OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo, RefundID: r.RefundID,
		RefundFee: r.Amount.Refund, Status: refundStatus(r.Status), SuccessAt: r.SuccessTime}, nil
}

// v3Failure is the JSON body of a failed v3 notify reply.
type v3Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NotifyAck is the v3 answer: 204 with no body when handled, else a 4xx
// (refused: forged, malformed, mismatching) or 500 (we failed to store it)
// with {"code":"FAIL","message":…}. WeChat judges by the status and
// retries anything but 2xx.
func (g *V3) NotifyAck(err error) (int, string, []byte) {
	const ct = "application/json"
	if err == nil {
		return http.StatusNoContent, ct, nil
	}
	status, msg := http.StatusInternalServerError, "retry later"
	if errors.Is(err, merchant.ErrBadNotify) {
		status, msg = http.StatusBadRequest, "refused"
	}
	body, _ := json.Marshal(v3Failure{Code: "FAIL", Message: msg})
	return status, ct, body
}
