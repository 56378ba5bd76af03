package wxsim

import (
	"slices"
	"time"

	"github.com/wxpay-go/wxpay"
)

// Order is a snapshot of one order in the simulator's ledger: the truth a
// checker compares the merchant's records with (reliability.md I1, I2).
type Order struct {
	MchID         string           `json:"mch_id"`
	AppID         string           `json:"appid"`
	Sandbox       bool             `json:"sandbox,omitempty"` // an order of the sandbox ledger
	OutTradeNo    string           `json:"out_trade_no"`
	TransactionID string           `json:"transaction_id,omitempty"`
	TradeType     wxpay.TradeType  `json:"trade_type"`
	State         wxpay.TradeState `json:"trade_state"` // as orderquery would say now
	TotalFee      int64            `json:"total_fee"`
	Body          string           `json:"body"`
	Attach        string           `json:"attach,omitempty"`
	OpenID        string           `json:"openid,omitempty"`       // the openid the order names (JSAPI)
	PayerOpenID   string           `json:"payer_openid,omitempty"` // who paid, in the order's app
	PrepayID      string           `json:"prepay_id,omitempty"`
	CodeURL       string           `json:"code_url,omitempty"`
	NotifyURL     string           `json:"notify_url,omitempty"`
	SignType      wxpay.SignType   `json:"sign_type"` // of the (last) unifiedorder; signs the pay notify
	CreatedAt     time.Time        `json:"created_at"`
	TimeExpire    time.Time        `json:"time_expire,omitzero"` // zero: none
	PaidAt        time.Time        `json:"paid_at,omitzero"`     // time_end; zero when never paid
	ClosedAt      time.Time        `json:"closed_at,omitzero"`
	RevokedAt     time.Time        `json:"revoked_at,omitzero"`
	// Paid reports whether money was taken (also for an order reversed
	// after it was paid, whose money went back).
	Paid bool `json:"paid"`
	// Refunded is the sum of its refunds that are not REFUNDCLOSE, in fen.
	Refunded int64    `json:"refunded"`
	Refunds  []Refund `json:"refunds,omitempty"`
}

// Refund is a snapshot of one refund (reliability.md I3).
type Refund struct {
	MchID         string             `json:"mch_id"`
	Sandbox       bool               `json:"sandbox,omitempty"`
	OutTradeNo    string             `json:"out_trade_no"`
	TransactionID string             `json:"transaction_id"`
	OutRefundNo   string             `json:"out_refund_no"`
	RefundID      string             `json:"refund_id"`
	RefundFee     int64              `json:"refund_fee"`
	TotalFee      int64              `json:"total_fee"`
	Status        wxpay.RefundStatus `json:"refund_status"`
	Account       string             `json:"refund_account"` // REFUND_SOURCE_UNSETTLED_FUNDS or REFUND_SOURCE_RECHARGE_FUNDS
	NotifyURL     string             `json:"notify_url,omitempty"`
	CreatedAt     time.Time          `json:"created_at"`
	SuccessAt     time.Time          `json:"success_at,omitzero"` // zero unless SUCCESS
	// Executions counts how many times the refund's money was moved; a
	// correct simulator keeps it at 1, and a checker asserts it is ≤ 1.
	Executions int `json:"executions"`
	// Requests counts the refund calls that named this out_refund_no
	// (retries included).
	Requests int `json:"requests"`
}

// Ledger is a consistent-per-merchant snapshot of the simulator's state.
type Ledger struct {
	Now     time.Time `json:"now"` // the simulator clock when taken
	Orders  []Order   `json:"orders"`
	Refunds []Refund  `json:"refunds"`
	Users   []User    `json:"users"`
}

func (o *order) snapshot() Order {
	b := o.b
	out := Order{
		MchID: b.m.cfg.MchID, AppID: o.appID, Sandbox: b.sandbox, OutTradeNo: o.outTradeNo,
		TransactionID: o.transactionID, TradeType: o.tradeType, State: o.state, TotalFee: o.totalFee,
		Body: o.body, Attach: o.attach, OpenID: o.openID, PrepayID: o.prepayID, CodeURL: o.codeURL,
		NotifyURL: o.notifyURL, SignType: o.signType, CreatedAt: inCST(o.createdAt), TimeExpire: inCST(o.timeExpire),
		PaidAt: inCST(o.paidAt), ClosedAt: inCST(o.closedAt), RevokedAt: inCST(o.revokedAt), Paid: o.wasPaid, Refunded: o.refunded,
	}
	if !o.paidAt.IsZero() {
		out.PayerOpenID = o.payerOpenID
	}
	for _, rf := range o.refunds {
		out.Refunds = append(out.Refunds, rf.snapshot())
	}
	return out
}

func (rf *refund) snapshot() Refund {
	o := rf.o
	return Refund{
		MchID: o.b.m.cfg.MchID, Sandbox: o.b.sandbox, OutTradeNo: o.outTradeNo, TransactionID: o.transactionID,
		OutRefundNo: rf.outRefundNo, RefundID: rf.refundID, RefundFee: rf.refundFee, TotalFee: rf.totalFee,
		Status: rf.status, Account: rf.account, NotifyURL: rf.notifyURL, CreatedAt: inCST(rf.createdAt),
		SuccessAt: inCST(rf.successAt), Executions: rf.executions, Requests: rf.requests,
	}
}

// Orders returns every order of mchID (every merchant when empty),
// production first then sandbox, each in creation order. Expired unpaid
// orders show as CLOSED.
func (s *Simulator) Orders(mchID string) []Order {
	now := s.clock.Now()
	var out []Order
	for _, sandbox := range []bool{false, true} {
		for _, m := range s.merchantsByID(mchID) {
			b := m.prod
			if sandbox {
				b = m.sandbox
			}
			b.mu.Lock()
			for _, o := range b.orderSeq {
				o.refreshLocked(now)
				out = append(out, o.snapshot())
			}
			b.mu.Unlock()
		}
	}
	return out
}

// Order returns one order by merchant and out_trade_no (or transaction_id).
func (s *Simulator) Order(mchID, outTradeNo string) (Order, bool) {
	ref, err := s.findOrder(mchID, outTradeNo)
	if err != nil {
		return Order{}, false
	}
	ref.b.mu.Lock()
	defer ref.b.mu.Unlock()
	ref.o.refreshLocked(s.clock.Now())
	return ref.o.snapshot(), true
}

// Refunds returns every refund of mchID (every merchant when empty), in
// order of their orders' creation.
func (s *Simulator) Refunds(mchID string) []Refund {
	var out []Refund
	for _, o := range s.Orders(mchID) {
		out = append(out, o.Refunds...)
	}
	return out
}

// Ledger returns orders, refunds and users. Each merchant's part is
// consistent; take it after Quiesce for a checker.
func (s *Simulator) Ledger() Ledger {
	orders := s.Orders("")
	var refunds []Refund
	for _, o := range orders {
		refunds = append(refunds, o.Refunds...)
	}
	users := s.Users()
	slices.SortFunc(users, func(a, b User) int {
		if a.OpenID < b.OpenID {
			return -1
		}
		if a.OpenID > b.OpenID {
			return 1
		}
		return 0
	})
	return Ledger{Now: inCST(s.clock.Now()), Orders: orders, Refunds: refunds, Users: users}
}

// inCST returns t in China Standard Time (a zero time stays zero), so that
// JSON shows +08:00 like WeChat's own times.
func inCST(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(wxpay.China)
}
