package merchant

import (
	"time"

	"github.com/wxpay-go/wxpay"
)

// OrderStatus is the state of an order as the service shows it.
type OrderStatus string

// Order statuses.
const (
	OrderNotPay   OrderStatus = "NOTPAY"   // created, not paid (the only non-terminal state)
	OrderPaid     OrderStatus = "PAID"     // paid
	OrderRefund   OrderStatus = "REFUND"   // paid, and some amount refunded (or being refunded)
	OrderClosed   OrderStatus = "CLOSED"   // closed unpaid, confirmed by WeChat
	OrderPayError OrderStatus = "PAYERROR" // the payment failed for good (micropay)
)

// Valid reports whether s is one of the statuses.
func (s OrderStatus) Valid() bool {
	switch s {
	case OrderNotPay, OrderPaid, OrderRefund, OrderClosed, OrderPayError:
		return true
	}
	return false
}

// Terminal reports whether s is final (only a refund or a late payment
// moves it further).
func (s OrderStatus) Terminal() bool { return s != OrderNotPay && s.Valid() }

// Paid reports whether the money was received.
func (s OrderStatus) Paid() bool { return s == OrderPaid || s == OrderRefund }

// CanTransition reports whether an order may move from one status to
// another. These are the only edges (reliability.md I4):
//
//	NOTPAY → PAID, CLOSED, PAYERROR
//	PAID   → REFUND
//	CLOSED, PAYERROR → PAID   (a payment that arrived after all: also an anomaly)
//
// REFUND means a refund was accepted at some point; it stays REFUND even if
// every refund later fails or closes (RefundedFee then goes back to 0).
func CanTransition(from, to OrderStatus) bool {
	switch from {
	case OrderNotPay:
		return to == OrderPaid || to == OrderClosed || to == OrderPayError
	case OrderPaid:
		return to == OrderRefund
	case OrderClosed, OrderPayError:
		return to == OrderPaid
	}
	return false
}

// PrepayState says where the order stands with WeChat's unifiedorder.
type PrepayState string

// Prepay states. The order row is written (PrepayPending) before
// unifiedorder is called, so that no WeChat order exists without a row.
const (
	PrepayPending PrepayState = "PENDING" // stored; unifiedorder not called yet, or its outcome unknown
	PrepayOK      PrepayState = "OK"      // a prepay id (or code url) is held
	PrepayFailed  PrepayState = "FAILED"  // WeChat refused with a definite answer
)

// Order is an order of the shop.
type Order struct {
	OutTradeNo string          // our number, sent to WeChat
	OpenID     string          // the payer (from the session, never from the request body)
	AppID      string          // the app the order was placed for
	MchID      string          // the merchant
	TradeType  wxpay.TradeType // JSAPI or NATIVE
	Items      []Item
	TotalFee   int64 // fen, computed from the catalog
	Body       string
	ClientIP   string
	Status     OrderStatus

	// The unifiedorder parameters are fixed at creation so that every
	// retry sends identical ones, as WeChat requires.
	PrepayState     PrepayState
	PrepayID        string
	CodeURL         string
	PrepayExpiresAt time.Time // a prepay id is valid 2 hours
	ExpiresAt       time.Time // time_expire sent to WeChat; closed after it

	TransactionID string    // WeChat's number, once paid
	PaidAt        time.Time // WeChat's time_end
	RefundedFee   int64     // Σ of refunds reserved, processing or done (never above TotalFee)
	RefundCount   int       // refunds created, failed ones included (≤ 50)

	IdempotencyKey string // the client's key; the same key returns the same order
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastQueriedAt  time.Time
}

// Refundable returns how much can still be refunded.
func (o *Order) Refundable() int64 {
	if !o.Status.Paid() {
		return 0
	}
	return o.TotalFee - o.RefundedFee
}

// PaymentSource says what told the service that an order was paid.
type PaymentSource string

// Payment sources.
const (
	SourceNotify PaymentSource = "notify" // WeChat's pay notify
	SourceQuery  PaymentSource = "query"  // an orderquery (on read, by a job, by reconciliation)
)

// Payment is what WeChat says about a payment, from a notify or a query,
// after its signature was verified.
type Payment struct {
	OutTradeNo    string
	TransactionID string
	AppID         string
	MchID         string
	TotalFee      int64 // the order total WeChat charged, fen
	CashFee       int64
	FeeType       string
	OpenID        string
	TradeType     wxpay.TradeType
	PaidAt        time.Time
	Source        PaymentSource
}

// Check compares a payment with the order it claims to pay: the amount
// (the order total, not the cash paid: coupons differ legitimately), the
// app, the merchant and the currency. It returns the anomaly kind, or ""
// when they agree.
func (o *Order) Check(p *Payment) AnomalyKind {
	switch {
	case p.OutTradeNo != o.OutTradeNo:
		return AnomalyUnknownOrder
	case p.TotalFee != o.TotalFee:
		return AnomalyAmount
	case p.AppID != o.AppID:
		return AnomalyApp
	case p.MchID != o.MchID:
		return AnomalyMerchant
	case p.FeeType != "" && p.FeeType != "CNY":
		return AnomalyCurrency
	case p.TransactionID == "":
		return AnomalyMalformed
	}
	return ""
}

// AnomalyKind classifies a notify or query result that could not be
// applied to an order (reliability.md A2, I6).
type AnomalyKind string

// Anomaly kinds.
const (
	AnomalyAmount         AnomalyKind = "amount_mismatch"
	AnomalyApp            AnomalyKind = "app_mismatch"
	AnomalyMerchant       AnomalyKind = "merchant_mismatch"
	AnomalyCurrency       AnomalyKind = "currency_mismatch"
	AnomalyUnknownOrder   AnomalyKind = "unknown_order"
	AnomalyMalformed      AnomalyKind = "malformed"
	AnomalyTransaction    AnomalyKind = "transaction_mismatch" // paid again under another transaction id
	AnomalyLatePayment    AnomalyKind = "late_payment"         // paid after we closed it: refund or ship by hand
	AnomalyRefundMismatch AnomalyKind = "refund_mismatch"      // a refund notify that matches none of our refunds
	AnomalyNotPaid        AnomalyKind = "not_paid_notify"      // a verified pay notify that reports no payment
)

// Anomaly is a recorded disagreement between WeChat and our records. The
// store keeps one row per (OutTradeNo, Kind, Ref), however often it is
// reported.
type Anomaly struct {
	ID         int64
	OutTradeNo string
	Kind       AnomalyKind
	Ref        string // what tells repeats apart: a transaction id, a refund number
	Detail     string // for people; never a secret
	CreatedAt  time.Time
}

// OrderEvent is one transition of an order, in an append-only log.
type OrderEvent struct {
	ID         int64
	OutTradeNo string
	From, To   OrderStatus
	Source     string // notify, query, close, refund, recon …
	At         time.Time
}
