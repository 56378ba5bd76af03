package merchant

import "time"

// RefundStatus is the state of a refund.
type RefundStatus string

// Refund statuses. A refund is RESERVED (its amount held against the order)
// before WeChat is called, PROCESSING once WeChat accepted it, then
// SUCCESS, CLOSED or CHANGE as WeChat says. FAILED means WeChat refused it
// with a definite answer; its amount is released.
const (
	RefundReserved   RefundStatus = "RESERVED"
	RefundProcessing RefundStatus = "PROCESSING"
	RefundSuccess    RefundStatus = "SUCCESS"
	RefundClosed     RefundStatus = "CLOSED"
	RefundChange     RefundStatus = "CHANGE" // abnormal: needs a person (merchant platform)
	RefundFailed     RefundStatus = "FAILED"
)

// Holds reports whether the refund's amount counts against the order.
func (s RefundStatus) Holds() bool {
	return s == RefundReserved || s == RefundProcessing || s == RefundSuccess || s == RefundChange
}

// Terminal reports whether s is final.
func (s RefundStatus) Terminal() bool {
	return s == RefundSuccess || s == RefundClosed || s == RefundChange || s == RefundFailed
}

// Public returns the status as the API shows it: PROCESSING, SUCCESS,
// CLOSED or CHANGE (a reserved refund is processing; a failed one closed).
func (s RefundStatus) Public() RefundStatus {
	switch s {
	case RefundReserved:
		return RefundProcessing
	case RefundFailed:
		return RefundClosed
	}
	return s
}

// CanTransitionRefund reports whether a refund may move between statuses.
func CanTransitionRefund(from, to RefundStatus) bool {
	switch from {
	case RefundReserved:
		return to == RefundProcessing || to == RefundFailed || to == RefundSuccess || to == RefundClosed || to == RefundChange
	case RefundProcessing:
		return to == RefundSuccess || to == RefundClosed || to == RefundChange
	}
	return false
}

// MaxRefunds is WeChat's limit of partial refunds per order.
const MaxRefunds = 50

// Refund is a refund of an order.
type Refund struct {
	OutRefundNo string // ours, stored before the first call and reused on every retry
	OutTradeNo  string
	RefundFee   int64 // fen
	TotalFee    int64 // the order's total, sent with the refund
	Reason      string
	Status      RefundStatus
	RefundID    string // WeChat's number, once accepted
	CreatedAt   time.Time
	UpdatedAt   time.Time
	SuccessAt   time.Time
	Attempts    int // calls made to WeChat
}

// RefundResult is what WeChat says about a refund, from a refund notify or
// a refund query.
type RefundResult struct {
	OutRefundNo string
	OutTradeNo  string
	RefundID    string
	RefundFee   int64
	Status      RefundStatus // PROCESSING, SUCCESS, CLOSED or CHANGE
	SuccessAt   time.Time
}
