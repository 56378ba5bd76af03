package merchant

import (
	"context"
	"time"
)

// Store keeps the service's records. Every method is atomic: the ones that
// change an order check its state and change it in one transaction with a
// conditional update, write the order event and, for a payment, the outbox
// event in that same transaction. Implementations: sqlite, postgres; both
// pass storetest.
type Store interface {
	// CreateOrder inserts o (Status NOTPAY, PrepayPending). When the same
	// (OpenID, IdempotencyKey) exists it returns that order and false
	// instead; the caller compares them.
	CreateOrder(ctx context.Context, o *Order) (*Order, bool, error)
	// Order returns an order; ENOTFOUND when there is none.
	Order(ctx context.Context, outTradeNo string) (*Order, error)
	// SetPrepay records the outcome of unifiedorder on a NOTPAY order.
	SetPrepay(ctx context.Context, outTradeNo string, st PrepayState, prepayID, codeURL string, expiresAt time.Time) error
	// MarkPaid applies a verified payment (see PayOutcome).
	MarkPaid(ctx context.Context, p *Payment, now time.Time) (PayOutcome, *Order, error)
	// MarkClosed moves a NOTPAY order to CLOSED (or PAYERROR) and reports
	// whether it did.
	MarkClosed(ctx context.Context, outTradeNo string, to OrderStatus, source string, now time.Time) (bool, error)
	// TouchQueried records when WeChat was last asked about an order.
	TouchQueried(ctx context.Context, outTradeNo string, now time.Time) error
	// ListOrders lists orders, newest first, a page at a time.
	ListOrders(ctx context.Context, f OrderFilter) ([]*Order, string, error)
	// PendingOrders returns NOTPAY orders created before the time, oldest
	// first, least recently queried first.
	PendingOrders(ctx context.Context, createdBefore time.Time, limit int) ([]*Order, error)

	// ReserveRefund stores a refund in RESERVED and adds its amount to the
	// order's RefundedFee in one transaction that checks the order is paid,
	// that Σ refunds ≤ TotalFee and that the order has fewer than
	// MaxRefunds. The same OutRefundNo with the same order and amount
	// returns the existing refund and false; with another, ECONFLICT.
	ReserveRefund(ctx context.Context, r *Refund, now time.Time) (*Refund, bool, error)
	// Refund returns a refund; ENOTFOUND when there is none.
	Refund(ctx context.Context, outRefundNo string) (*Refund, error)
	// Refunds returns an order's refunds, oldest first.
	Refunds(ctx context.Context, outTradeNo string) ([]*Refund, error)
	// UpdateRefund moves a refund to another status when
	// CanTransitionRefund allows it, and reports whether it did. Moving to
	// FAILED or CLOSED releases the amount; moving to PROCESSING, SUCCESS or
	// CHANGE turns a PAID order into REFUND.
	UpdateRefund(ctx context.Context, u RefundUpdate) (bool, error)
	// CountRefundAttempt records one more call to WeChat for a refund.
	CountRefundAttempt(ctx context.Context, outRefundNo string, now time.Time) error
	// RefundsByStatus returns refunds in the statuses, last updated
	// before the time, oldest first.
	RefundsByStatus(ctx context.Context, statuses []RefundStatus, updatedBefore time.Time, limit int) ([]*Refund, error)

	// RecordAnomaly stores an anomaly once per (OutTradeNo, Kind, Ref) and
	// reports whether it was new.
	RecordAnomaly(ctx context.Context, a *Anomaly) (bool, error)
	// Anomalies lists anomalies ("" for all orders), newest first.
	Anomalies(ctx context.Context, outTradeNo string, limit int) ([]*Anomaly, error)
	// Events returns an order's transitions, oldest first.
	Events(ctx context.Context, outTradeNo string) ([]*OrderEvent, error)

	// PendingOutbox returns undelivered outbox events due at the time.
	PendingOutbox(ctx context.Context, now time.Time, limit int) ([]*OutboxEvent, error)
	// OutboxFor returns an order's outbox events.
	OutboxFor(ctx context.Context, outTradeNo string) ([]*OutboxEvent, error)
	// MarkOutbox records a delivery attempt: delivered, or failed with the
	// next try at next.
	MarkOutbox(ctx context.Context, id int64, delivered bool, next time.Time, lastError string, now time.Time) error

	// CreateSession stores a mini-program session (by its token's hash).
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session of a token hash; EUNAUTHORIZED when it is
	// missing or expired at now.
	Session(ctx context.Context, tokenHash string, now time.Time) (*Session, error)

	// SaveRecon stores a reconciliation report (one per date, replaced).
	SaveRecon(ctx context.Context, r *ReconReport) error
	// Recon returns the report of a date; ENOTFOUND when there is none.
	Recon(ctx context.Context, date string) (*ReconReport, error)
	// AddReconException stores an exception once per (Date, Kind,
	// OutTradeNo, OutRefundNo): a repeat changes nothing, except that a
	// later run that healed it marks it healed. It reports whether a row
	// was added or healed.
	AddReconException(ctx context.Context, e *ReconException) (bool, error)
	// ReconExceptions lists a date's exceptions ("" for all open ones).
	ReconExceptions(ctx context.Context, date string) ([]*ReconException, error)
	// PaidBetween returns the orders paid in [from, to) and the refunds
	// created in it, for reconciliation.
	PaidBetween(ctx context.Context, from, to time.Time) ([]*Order, []*Refund, error)

	// Ping checks the database (readiness).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// PayOutcome is what MarkPaid did.
type PayOutcome string

// Pay outcomes.
const (
	// PayApplied: the order moved to PAID; its outbox event was written.
	PayApplied PayOutcome = "applied"
	// PayDuplicate: the order was already paid by this transaction;
	// nothing changed. Answer the notify SUCCESS.
	PayDuplicate PayOutcome = "duplicate"
	// PayLate: the order was CLOSED and is now PAID; a late_payment
	// anomaly was recorded for a person to refund or ship.
	PayLate PayOutcome = "late"
	// PayRejected: the payment disagrees with the order (amount, app,
	// merchant, another transaction id, unknown order); an anomaly was
	// recorded and nothing else changed.
	PayRejected PayOutcome = "rejected"
)

// RefundUpdate moves a refund (see Store.UpdateRefund).
type RefundUpdate struct {
	OutRefundNo string
	To          RefundStatus
	RefundID    string    // set when known
	SuccessAt   time.Time // set for SUCCESS
	Source      string    // api, notify, query
	Now         time.Time
}

// OrderFilter selects orders for ListOrders.
type OrderFilter struct {
	Status OrderStatus // "" for all
	OpenID string      // "" for all
	Since  time.Time   // created at or after; zero for no bound
	Until  time.Time   // created before; zero for no bound
	Limit  int         // 1..200; default 50
	Cursor string      // from the previous page
}

// OutboxEvent is a business event to deliver to the merchant's own systems
// (a webhook), written in the same transaction as the change it reports.
type OutboxEvent struct {
	ID          int64
	Type        string // "order.paid", "refund.succeeded", …
	OutTradeNo  string
	Ref         string // what makes the event unique with Type: an order or refund number
	Payload     string // JSON
	CreatedAt   time.Time
	NextAt      time.Time
	Attempts    int
	DeliveredAt time.Time
	LastError   string
}

// Outbox event types.
const (
	EventOrderPaid      = "order.paid"
	EventRefundSucceded = "refund.succeeded"
)

// Session is a logged-in mini-program user. The client holds an opaque
// token; the store holds only its SHA-256. The WeChat session_key is not
// kept at all.
type Session struct {
	TokenHash string
	OpenID    string
	AppID     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ReconKind classifies a difference between the bill and our orders.
type ReconKind string

// Reconciliation kinds (reliability.md E1).
const (
	ReconMissingLocal  ReconKind = "missing_local"   // in the bill, not paid here ("long")
	ReconMissingBill   ReconKind = "missing_in_bill" // paid here, not in the bill ("short")
	ReconAmount        ReconKind = "amount_differs"
	ReconRefundOneSide ReconKind = "refund_one_side"
	ReconUnknownOrder  ReconKind = "unknown_order" // an out_trade_no we never issued
)

// ReconException is one difference found by reconciliation. Healed is true
// when the service fixed it itself (a missing payment found by a query).
type ReconException struct {
	ID          int64
	Date        string // yyyy-mm-dd, China Standard Time
	Kind        ReconKind
	OutTradeNo  string
	OutRefundNo string
	Detail      string
	Healed      bool
	CreatedAt   time.Time
}

// ReconReport sums up the reconciliation of one day.
type ReconReport struct {
	Date        string
	BillRows    int
	Matched     int
	Exceptions  int
	Healed      int
	BillTotal   int64 // fen paid according to the bill
	LocalTotal  int64 // fen paid according to our orders
	BillRefunds int64
	RanAt       time.Time
}
