// Package recon reconciles a day's WeChat Pay trade bill with the merchant's
// orders and refunds (reliability.md E1, E2, I7).
//
// A Reconciler downloads the bill of a China day through the service's
// Gateway, loads what the Store says was paid and refunded that day, and
// compares the two by out_trade_no and out_refund_no. Every difference
// becomes a merchant.ReconException, stored once per (date, kind, order,
// refund) so that running the same day again adds nothing:
//
//   - missing_local: the bill lists a payment that is not paid here (a lost
//     notify: "long"). It is healed at once through Service.Sync — the same
//     orderquery and conditional update a notify goes through, which writes
//     the order event — and recorded with Healed set when the order is then
//     paid with the bill's amount;
//   - missing_in_bill: an order paid here that day is not in the bill
//     ("short");
//   - amount_differs: both sides have it, with other amounts;
//   - refund_one_side: a refund the bill lists that we do not hold as
//     accepted (PROCESSING, SUCCESS or CHANGE; a RESERVED one is first
//     settled through Service.SyncRefund), or one of ours in SUCCESS that the
//     bill does not list;
//   - unknown_order: the bill names an out_trade_no we never issued.
//
// The reconciler never changes money itself: only Service.Sync and
// Service.SyncRefund do, with their audit rows. A bill that cannot be read
// whole (truncated, inconsistent totals, a row outside the day) is an error,
// never a partial reconciliation.
//
// Days are China Standard Time (wxpay.China): a trade belongs to the day of
// its success time, and WeChat serves a day's bill after 10:00 the next day
// (protocol.md §5.6, §11).
package recon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
)

// DateLayout is the layout of the date a Reconciler takes: yyyy-mm-dd.
const DateLayout = "2006-01-02"

// BillReadyAfter is how long after the end of a day WeChat promises its
// bill: 10:00 the next day, China Standard Time.
const BillReadyAfter = 10 * time.Hour

// Options tunes a Reconciler. The zero value is ready to use.
type Options struct {
	// Logger receives a line per difference and per run; nil discards.
	Logger *slog.Logger
}

// Reconciler compares a day's bill with the service's records. It is safe
// for concurrent use; two runs of the same day store each exception once.
type Reconciler struct {
	svc   *payments.Service
	store merchant.Store
	gw    merchant.Gateway
	log   *slog.Logger
}

// New returns a Reconciler working through svc: its Store, its Gateway, its
// clock, and its Sync and SyncRefund to heal what the bill proves.
func New(svc *payments.Service, opts Options) *Reconciler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{svc: svc, store: svc.Store(), gw: svc.Gateway(), log: log}
}

// NotReadyError says that a day's bill cannot be had yet: the day has not
// ended, or WeChat is still creating its bill (it promises it after 10:00
// the next day, China Standard Time). Retry at RetryAt. It matches
// merchant.ErrBillNotReady with errors.Is and is a *merchant.Error with
// code EUNAVAILABLE for errors.As.
type NotReadyError struct {
	Date    string
	RetryAt time.Time
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("recon: the bill of %s is not ready; retry after %s China time",
		e.Date, e.RetryAt.In(wxpay.China).Format("2006-01-02 15:04"))
}

// Unwrap returns merchant.ErrBillNotReady and the *merchant.Error the API
// shows.
func (e *NotReadyError) Unwrap() []error {
	return []error{merchant.ErrBillNotReady, &merchant.Error{Code: merchant.EUNAVAILABLE, Message: e.Error()}}
}

// ParseDate parses a yyyy-mm-dd date as the start of that day in China
// Standard Time. It refuses anything else (also "2026-02-30").
func ParseDate(date string) (time.Time, error) {
	day, err := time.ParseInLocation(DateLayout, date, wxpay.China)
	if err != nil || day.Format(DateLayout) != date {
		return time.Time{}, merchant.Errorf(merchant.EINVALID, "date must be yyyy-mm-dd, got %q", date)
	}
	return day, nil
}

// Yesterday returns the China date before the China day of now, as
// yyyy-mm-dd: the day whose bill WeChat serves today.
func Yesterday(now time.Time) string {
	y, m, d := now.In(wxpay.China).Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, wxpay.China).Format(DateLayout)
}

// run is the state of one reconciliation.
type run struct {
	r      *Reconciler
	date   string
	now    time.Time
	report merchant.ReconReport
	found  []*merchant.ReconException
}

// Reconcile reconciles the day date (yyyy-mm-dd, China Standard Time): it
// downloads the day's bill, heals the payments and refunds the bill proves
// and we missed, records every other difference as an exception (once:
// running a day again adds none) and saves the day's report.
//
// It returns the report, the differences this run found (including those a
// previous run had already recorded, and the healed ones), and an error
// when the bill could not be had whole or a heal could not be attempted —
// then nothing is reported and the day should be run again later. A day
// whose bill is not ready yet gives a *NotReadyError. A day without a bill
// (WeChat's "No Bill Exist") is reconciled as an empty bill: every payment
// we hold that day is then missing_in_bill.
func (r *Reconciler) Reconcile(ctx context.Context, date string) (*merchant.ReconReport, []*merchant.ReconException, error) {
	day, err := ParseDate(date)
	if err != nil {
		return nil, nil, err
	}
	from, to := day, day.AddDate(0, 0, 1)
	now := r.svc.Now()
	if now.Before(to) {
		return nil, nil, &NotReadyError{Date: date, RetryAt: to.Add(BillReadyAfter)}
	}

	entries, err := r.gw.Bill(ctx, day)
	switch {
	case errors.Is(err, merchant.ErrBillNotReady):
		return nil, nil, &NotReadyError{Date: date, RetryAt: maxTime(to.Add(BillReadyAfter), now.Add(10*time.Minute))}
	case errors.Is(err, merchant.ErrNoBill):
		// Before 10:00 "no bill" may only mean "not yet": only trust it after.
		if now.Before(to.Add(BillReadyAfter)) {
			return nil, nil, &NotReadyError{Date: date, RetryAt: to.Add(BillReadyAfter)}
		}
		entries = nil
	case err != nil:
		return nil, nil, fmt.Errorf("recon: downloading the bill of %s: %w", date, err)
	}
	bill, err := readBill(entries, from, to)
	if err != nil {
		return nil, nil, merchant.Errorf(merchant.EUPSTREAM, "recon: the bill of %s does not add up, nothing reconciled: %v", date, err)
	}

	rn := &run{r: r, date: date, now: now}
	rn.report = merchant.ReconReport{Date: date, BillRows: len(entries), BillTotal: bill.total, BillRefunds: bill.refundTotal}
	if err := rn.reconcile(ctx, bill, from, to); err != nil {
		return nil, nil, err
	}
	rn.report.RanAt = now
	for _, e := range rn.found {
		rn.report.Exceptions++
		if e.Healed {
			rn.report.Healed++
		}
	}
	if err := r.store.SaveRecon(ctx, &rn.report); err != nil {
		return nil, nil, fmt.Errorf("recon: saving the report of %s: %w", date, err)
	}
	r.log.InfoContext(ctx, "reconciliation done", slog.String("date", date), slog.Int("bill_rows", rn.report.BillRows),
		slog.Int("matched", rn.report.Matched), slog.Int("exceptions", rn.report.Exceptions), slog.Int("healed", rn.report.Healed),
		slog.Int64("bill_total", rn.report.BillTotal), slog.Int64("local_total", rn.report.LocalTotal))
	return &rn.report, rn.found, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// bill is the checked content of a day's bill.
type bill struct {
	payments    []merchant.BillEntry // SUCCESS rows, in bill order
	revoked     []merchant.BillEntry // REVOKED rows (paid, then reversed)
	refunds     []merchant.BillEntry // refund rows
	paid        map[string]merchant.BillEntry
	refunded    map[string]merchant.BillEntry
	total       int64 // Σ TotalFee of SUCCESS rows
	refundTotal int64 // Σ RefundFee of refund rows
}

// noRefund reports whether a refund-number column is empty: payment rows
// of some bills carry "0" there.
func noRefund(s string) bool { return s == "" || s == "0" }

// readBill sorts a bill's rows and refuses a bill that does not add up:
// a row outside the day, a payment listed twice, a row without its
// numbers, a non-positive amount, a state a trade bill does not have.
func readBill(entries []merchant.BillEntry, from, to time.Time) (*bill, error) {
	b := &bill{paid: map[string]merchant.BillEntry{}, refunded: map[string]merchant.BillEntry{}}
	for i, e := range entries {
		row := i + 1
		if e.OutTradeNo == "" {
			return nil, fmt.Errorf("row %d has no out_trade_no", row)
		}
		switch e.State {
		case wxpay.TradeStateSuccess, wxpay.TradeStateRevoked:
			if e.Time.IsZero() || e.Time.Before(from) || !e.Time.Before(to) {
				return nil, fmt.Errorf("row %d (%s) is dated %s, outside the day", row, e.OutTradeNo, e.Time.In(wxpay.China).Format(time.DateTime))
			}
			if e.TotalFee <= 0 {
				return nil, fmt.Errorf("row %d (%s) has the amount %d fen", row, e.OutTradeNo, e.TotalFee)
			}
			if e.State == wxpay.TradeStateRevoked {
				b.revoked = append(b.revoked, e)
				continue
			}
			if _, dup := b.paid[e.OutTradeNo]; dup {
				return nil, fmt.Errorf("row %d lists the payment of %s a second time", row, e.OutTradeNo)
			}
			b.paid[e.OutTradeNo] = e
			b.payments = append(b.payments, e)
			b.total += e.TotalFee
		case wxpay.TradeStateRefund:
			if noRefund(e.OutRefundNo) {
				return nil, fmt.Errorf("row %d (%s) is a refund without out_refund_no", row, e.OutTradeNo)
			}
			if e.RefundFee <= 0 {
				return nil, fmt.Errorf("row %d (refund %s) has the amount %d fen", row, e.OutRefundNo, e.RefundFee)
			}
			if _, dup := b.refunded[e.OutRefundNo]; dup {
				return nil, fmt.Errorf("row %d lists the refund %s a second time", row, e.OutRefundNo)
			}
			b.refunded[e.OutRefundNo] = e
			b.refunds = append(b.refunds, e)
			b.refundTotal += e.RefundFee
		default:
			return nil, fmt.Errorf("row %d (%s) has the trade state %q", row, e.OutTradeNo, e.State)
		}
	}
	return b, nil
}

// exception records a difference (once per date, kind, order and refund)
// and keeps it for the result.
func (rn *run) exception(ctx context.Context, kind merchant.ReconKind, outTradeNo, outRefundNo string, healed bool, format string, args ...any) error {
	e := &merchant.ReconException{
		Date: rn.date, Kind: kind, OutTradeNo: outTradeNo, OutRefundNo: outRefundNo,
		Detail: fmt.Sprintf(format, args...), Healed: healed, CreatedAt: rn.now,
	}
	added, err := rn.r.store.AddReconException(ctx, e)
	if err != nil {
		return fmt.Errorf("recon: storing an exception of %s: %w", rn.date, err)
	}
	rn.found = append(rn.found, e)
	level := slog.LevelWarn
	if healed {
		level = slog.LevelInfo
	}
	rn.r.log.Log(ctx, level, "reconciliation difference", slog.String("date", rn.date), slog.String("kind", string(kind)),
		slog.String("out_trade_no", outTradeNo), slog.String("out_refund_no", outRefundNo), slog.Bool("healed", healed),
		slog.Bool("new", added), slog.String("detail", e.Detail))
	return nil
}

// refundAccepted reports whether a refund we hold counts as one WeChat
// took: accepted (PROCESSING), done (SUCCESS) or abnormal (CHANGE, which a
// person settles in the merchant platform).
func refundAccepted(s merchant.RefundStatus) bool {
	return s == merchant.RefundProcessing || s == merchant.RefundSuccess || s == merchant.RefundChange
}

// refundGone reports whether a refund we hold counts as not made.
func refundGone(s merchant.RefundStatus) bool {
	return s == merchant.RefundClosed || s == merchant.RefundFailed
}

func (rn *run) reconcile(ctx context.Context, b *bill, from, to time.Time) error {
	store := rn.r.store
	orders, refunds, err := store.PaidBetween(ctx, from, to)
	if err != nil {
		return fmt.Errorf("recon: loading the payments of %s: %w", rn.date, err)
	}
	local := make(map[string]*merchant.Order, len(orders))
	for _, o := range orders {
		local[o.OutTradeNo] = o
	}

	// Payments in the bill.
	healed := false
	for _, e := range b.payments {
		o, ok := local[e.OutTradeNo]
		if !ok {
			o, err = store.Order(ctx, e.OutTradeNo)
			if merchant.ErrorCode(err) == merchant.ENOTFOUND {
				if err := rn.exception(ctx, merchant.ReconUnknownOrder, e.OutTradeNo, "", false,
					"the bill lists a payment of %d fen (transaction %s) for an order we never issued", e.TotalFee, e.TransactionID); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("recon: loading order %s: %w", e.OutTradeNo, err)
			}
		}
		if !o.Status.Paid() {
			// "Long": WeChat took the money and we did not book it. Heal
			// it the way a notify would: query and apply.
			before := o.Status
			after, err := rn.r.svc.Sync(ctx, e.OutTradeNo)
			if err != nil {
				return fmt.Errorf("recon: querying %s, which the bill lists as paid: %w", e.OutTradeNo, err)
			}
			ok := after.Status.Paid() && after.TotalFee == e.TotalFee &&
				(e.TransactionID == "" || after.TransactionID == e.TransactionID)
			healed = healed || ok
			detail := "the bill lists a payment of %d fen (transaction %s) at %s; the order was %s here"
			if ok {
				detail += ", and is now paid after a query"
			} else {
				detail += ", and is %s after a query"
			}
			args := []any{e.TotalFee, e.TransactionID, e.Time.In(wxpay.China).Format(time.DateTime), before}
			if !ok {
				args = append(args, after.Status)
			}
			if err := rn.exception(ctx, merchant.ReconMissingLocal, e.OutTradeNo, "", ok, detail, args...); err != nil {
				return err
			}
			if ok || !after.Status.Paid() {
				continue
			}
			o = after // paid now, but not as the bill says: compare below
		}
		if o.TotalFee != e.TotalFee || e.TransactionID != "" && o.TransactionID != e.TransactionID {
			// The kinds have no "transaction differs": it is recorded with
			// the amounts, its detail saying which.
			if err := rn.exception(ctx, merchant.ReconAmount, e.OutTradeNo, "", false,
				"the bill says %d fen (transaction %s), our order %d fen (transaction %s)",
				e.TotalFee, e.TransactionID, o.TotalFee, o.TransactionID); err != nil {
				return err
			}
			continue
		}
		if _, inDay := local[e.OutTradeNo]; !inDay {
			// Paid, but our payment time falls on another day: that day's
			// reconciliation reports it missing from its bill.
			rn.r.log.WarnContext(ctx, "the bill and our payment time disagree on the day", slog.String("date", rn.date),
				slog.String("out_trade_no", e.OutTradeNo), slog.Time("bill_time", e.Time), slog.Time("paid_at", o.PaidAt))
		}
		rn.report.Matched++
	}

	// Reversed payments: nothing to book; an order we never issued is
	// still news.
	for _, e := range b.revoked {
		if _, ok := local[e.OutTradeNo]; ok {
			continue // paid here that day: reported below as missing from the bill
		}
		_, err := store.Order(ctx, e.OutTradeNo)
		if merchant.ErrorCode(err) == merchant.ENOTFOUND {
			if err := rn.exception(ctx, merchant.ReconUnknownOrder, e.OutTradeNo, "", false,
				"the bill lists a reversed payment of %d fen (transaction %s) for an order we never issued", e.TotalFee, e.TransactionID); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("recon: loading order %s: %w", e.OutTradeNo, err)
		}
		rn.report.Matched++
	}

	// Refunds in the bill.
	localRefunds := make(map[string]*merchant.Refund, len(refunds))
	for _, rf := range refunds {
		localRefunds[rf.OutRefundNo] = rf
	}
	for _, e := range b.refunds {
		if err := rn.billRefund(ctx, e, localRefunds); err != nil {
			return err
		}
	}

	if healed {
		// The heals paid orders: count them in our side of the day.
		if orders, refunds, err = store.PaidBetween(ctx, from, to); err != nil {
			return fmt.Errorf("recon: loading the payments of %s: %w", rn.date, err)
		}
	}

	// Our side: paid that day, missing from the bill ("short").
	for _, o := range orders {
		rn.report.LocalTotal += o.TotalFee
		if _, ok := b.paid[o.OutTradeNo]; ok {
			continue
		}
		how := "does not list it"
		for _, e := range b.revoked {
			if e.OutTradeNo == o.OutTradeNo {
				how = "lists it as reversed (REVOKED)"
			}
		}
		if err := rn.exception(ctx, merchant.ReconMissingBill, o.OutTradeNo, "", false,
			"paid here (%d fen, transaction %s, at %s); the bill %s", o.TotalFee, o.TransactionID,
			o.PaidAt.In(wxpay.China).Format(time.DateTime), how); err != nil {
			return err
		}
	}
	// Our refunds done that day, missing from the bill.
	for _, rf := range refunds {
		if rf.Status != merchant.RefundSuccess {
			continue
		}
		if _, ok := b.refunded[rf.OutRefundNo]; ok {
			continue
		}
		if err := rn.exception(ctx, merchant.ReconRefundOneSide, rf.OutTradeNo, rf.OutRefundNo, false,
			"our refund of %d fen (created %s) is SUCCESS here and not in the bill", rf.RefundFee,
			rf.CreatedAt.In(wxpay.China).Format(time.DateTime)); err != nil {
			return err
		}
	}
	return nil
}

// billRefund checks one refund row of the bill against our refund of that
// number, settling ours through the refund query first when it is still
// open and disagrees.
func (rn *run) billRefund(ctx context.Context, e merchant.BillEntry, local map[string]*merchant.Refund) error {
	store := rn.r.store
	if _, err := store.Order(ctx, e.OutTradeNo); merchant.ErrorCode(err) == merchant.ENOTFOUND {
		return rn.exception(ctx, merchant.ReconUnknownOrder, e.OutTradeNo, e.OutRefundNo, false,
			"the bill lists a refund of %d fen (%s) of an order we never issued", e.RefundFee, e.RefundID)
	} else if err != nil {
		return fmt.Errorf("recon: loading order %s: %w", e.OutTradeNo, err)
	}
	rf, ok := local[e.OutRefundNo]
	if !ok {
		var err error
		rf, err = store.Refund(ctx, e.OutRefundNo)
		if merchant.ErrorCode(err) == merchant.ENOTFOUND {
			return rn.exception(ctx, merchant.ReconRefundOneSide, e.OutTradeNo, e.OutRefundNo, false,
				"the bill lists a refund of %d fen (%s, %s) that we do not have", e.RefundFee, e.RefundID, e.RefundStatus)
		}
		if err != nil {
			return fmt.Errorf("recon: loading refund %s: %w", e.OutRefundNo, err)
		}
	}
	if rf.OutTradeNo != e.OutTradeNo {
		return rn.exception(ctx, merchant.ReconRefundOneSide, e.OutTradeNo, e.OutRefundNo, false,
			"the bill lists the refund for order %s; ours is for order %s", e.OutTradeNo, rf.OutTradeNo)
	}
	billClosed := e.RefundStatus == string(wxpay.RefundStatusClosed) || e.RefundStatus == string(merchant.RefundClosed)
	agrees := func(s merchant.RefundStatus) bool {
		if billClosed {
			return refundGone(s)
		}
		return refundAccepted(s)
	}
	if !agrees(rf.Status) {
		before := rf.Status
		healed := false
		if !rf.Status.Terminal() {
			after, err := rn.r.svc.SyncRefund(ctx, rf.OutRefundNo)
			if err != nil {
				return fmt.Errorf("recon: querying refund %s, which the bill lists: %w", rf.OutRefundNo, err)
			}
			rf = after
			healed = agrees(rf.Status) && rf.RefundFee == e.RefundFee
		}
		return rn.exception(ctx, merchant.ReconRefundOneSide, e.OutTradeNo, e.OutRefundNo, healed,
			"the bill lists the refund as %q (%d fen); ours was %s and is %s", e.RefundStatus, e.RefundFee, before, rf.Status)
	}
	if rf.RefundFee != e.RefundFee {
		return rn.exception(ctx, merchant.ReconAmount, e.OutTradeNo, e.OutRefundNo, false,
			"the bill says the refund is %d fen, ours %d fen", e.RefundFee, rf.RefundFee)
	}
	rn.report.Matched++
	return nil
}
