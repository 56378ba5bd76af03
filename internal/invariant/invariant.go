package invariant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/wxsim"
)

// Input is what Check compares.
type Input struct {
	Store    merchant.Store
	Ledger   wxsim.Ledger  // sim.Ledger() taken after sim.Quiesce and the jobs ran
	MchID    string        // the merchant whose orders are compared
	Now      time.Time     // "now" for I8 (the service's clock)
	Grace    time.Duration // I8: NOTPAY orders whose ExpiresAt+Grace < Now are violations
	Canaries []string      // I9: secrets that must not appear …
	Texts    []string      // … in these captured logs, response bodies, DB dump text
}

// Result is the outcome of one invariant.
type Result struct {
	ID, Name   string
	Checked    int
	Violations int
	Examples   []string // ≤ 5, human readable, no secrets
}

// Report holds one Result per invariant, I1 to I9 in order.
type Report struct {
	Results []Result
}

// OK reports whether no invariant was violated.
func (r *Report) OK() bool {
	for _, res := range r.Results {
		if res.Violations != 0 {
			return false
		}
	}
	return true
}

// String is one line per invariant, for example
// "I1 local state agrees with WeChat: 1234 checked, 0 violations", with up
// to five examples on the same line when there are violations.
func (r *Report) String() string {
	var b strings.Builder
	for i, res := range r.Results {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s %s: %d checked, %d violations", res.ID, res.Name, res.Checked, res.Violations)
		if len(res.Examples) > 0 {
			b.WriteString(" (e.g. ")
			b.WriteString(strings.Join(res.Examples, "; "))
			b.WriteString(")")
		}
	}
	return b.String()
}

// maxExamples bounds Result.Examples.
const maxExamples = 5

// workers is how many orders are loaded at once.
const workers = 4

// names of the invariants, in order.
var names = [...]string{
	"local state agrees with WeChat",
	"money in matches, per day and overall",
	"money out: refunds bounded, same set, executed once",
	"states only move forward",
	"one order.paid event per paid order",
	"no PAID order differs from WeChat's",
	"every difference is healed or recorded",
	"every expired order is closed",
	"no secret in logs, responses or dumps",
}

type checker struct {
	in      Input
	results [9]Result
}

func (c *checker) checked(i int) { c.results[i-1].Checked++ }

func (c *checker) violation(i int, format string, args ...any) {
	r := &c.results[i-1]
	r.Violations++
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// local is one order of the store with its audit rows.
type local struct {
	o         *merchant.Order
	refunds   []*merchant.Refund
	events    []*merchant.OrderEvent
	outbox    []*merchant.OutboxEvent
	anomalies int
}

// Check loads every order of in.MchID from the store (with its refunds,
// events, outbox events and anomalies), the open recon exceptions and the
// simulator's orders and refunds of that merchant, and measures I1–I9. It
// returns an error only when the store cannot be read.
func Check(ctx context.Context, in Input) (*Report, error) {
	if in.Store == nil {
		return nil, errors.New("invariant: Input.Store is required")
	}
	c := &checker{in: in}
	for i := range c.results {
		c.results[i].ID = fmt.Sprintf("I%d", i+1)
		c.results[i].Name = names[i]
	}

	locals, err := loadLocal(ctx, in.Store, in.MchID)
	if err != nil {
		return nil, err
	}
	byNo := make(map[string]*local, len(locals))
	for _, l := range locals {
		byNo[l.o.OutTradeNo] = l
	}
	sim := map[string]*wxsim.Order{}
	var simOrder []string
	for i := range in.Ledger.Orders {
		o := &in.Ledger.Orders[i]
		if o.Sandbox || in.MchID != "" && o.MchID != in.MchID {
			continue
		}
		sim[o.OutTradeNo] = o
		simOrder = append(simOrder, o.OutTradeNo)
	}
	excs, err := in.Store.ReconExceptions(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("invariant: open recon exceptions: %w", err)
	}
	openByOrder, openByRefund := map[string]bool{}, map[string]bool{}
	for _, e := range excs {
		if e.Healed {
			continue
		}
		if e.OutTradeNo != "" {
			openByOrder[e.OutTradeNo] = true
		}
		if e.OutRefundNo != "" {
			openByRefund[e.OutRefundNo] = true
		}
	}
	// recorded reports whether a difference about an order (and refund)
	// has an anomaly or an open recon exception.
	anomalyCache := map[string]bool{}
	recorded := func(outTradeNo, outRefundNo string) (bool, error) {
		if openByOrder[outTradeNo] || outRefundNo != "" && openByRefund[outRefundNo] {
			return true, nil
		}
		if l, ok := byNo[outTradeNo]; ok {
			return l.anomalies > 0, nil
		}
		if v, ok := anomalyCache[outTradeNo]; ok {
			return v, nil
		}
		list, err := in.Store.Anomalies(ctx, outTradeNo, 1)
		if err != nil {
			return false, fmt.Errorf("invariant: anomalies of %s: %w", outTradeNo, err)
		}
		anomalyCache[outTradeNo] = len(list) > 0
		return len(list) > 0, nil
	}
	// difference handles one difference of invariant i about an order (and
	// refund): recorded ones count for I7 only; unrecorded ones violate i
	// and I7. It reports whether the difference was recorded.
	differences := map[string]bool{} // subject → already counted for I7
	difference := func(i int, outTradeNo, outRefundNo, format string, args ...any) (bool, error) {
		ok, err := recorded(outTradeNo, outRefundNo)
		if err != nil {
			return false, err
		}
		subject := outTradeNo + "/" + outRefundNo
		first := !differences[subject]
		differences[subject] = true
		if first {
			c.checked(7)
		}
		if ok {
			return true, nil
		}
		msg := fmt.Sprintf(format, args...)
		c.violation(i, "%s", msg)
		if first {
			c.violation(7, "unrecorded: %s", msg)
		}
		return false, nil
	}

	// The union of order numbers: local first (newest first), then the
	// simulator's orders the merchant does not have.
	var all []string
	for _, l := range locals {
		all = append(all, l.o.OutTradeNo)
	}
	for _, no := range simOrder {
		if _, ok := byNo[no]; !ok {
			all = append(all, no)
		}
	}

	// I1 and I2's per-order differences.
	type contribution struct {
		paid bool
		fee  int64
		day  string
	}
	excluded := map[string]bool{} // recorded I2 differences: out of both sums
	for _, no := range all {
		l, s := byNo[no], sim[no]
		c.checked(1)
		if msg := i1(l, s, in.Ledger.Now); msg != "" {
			if _, err := difference(1, no, "", "%s: %s", no, msg); err != nil {
				return nil, err
			}
		}
		var lc, sc contribution
		if l != nil && l.o.Status.Paid() {
			lc = contribution{true, l.o.TotalFee, day(l.o.PaidAt)}
		}
		if s != nil && s.Paid {
			sc = contribution{true, s.TotalFee, day(s.PaidAt)}
		}
		if lc != sc {
			ok, err := recorded(no, "")
			if err != nil {
				return nil, err
			}
			subject := no + "/"
			first := !differences[subject]
			differences[subject] = true
			if first {
				c.checked(7)
			}
			if ok {
				excluded[no] = true
			} else if first {
				c.violation(7, "unrecorded: %s: paid here %v (%d fen, day %s), at WeChat %v (%d fen, day %s)",
					no, lc.paid, lc.fee, lc.day, sc.paid, sc.fee, sc.day)
			}
		}
	}

	// I2: the sums per day and overall, without the recorded orders.
	type bucket struct {
		n   int
		fen int64
	}
	localDays, simDays := map[string]bucket{}, map[string]bucket{}
	var localAll, simAll bucket
	for _, no := range all {
		if excluded[no] {
			continue
		}
		if l := byNo[no]; l != nil && l.o.Status.Paid() {
			d := day(l.o.PaidAt)
			b := localDays[d]
			b.n++
			b.fen += l.o.TotalFee
			localDays[d] = b
			localAll.n++
			localAll.fen += l.o.TotalFee
		}
		if s := sim[no]; s != nil && s.Paid {
			d := day(s.PaidAt)
			b := simDays[d]
			b.n++
			b.fen += s.TotalFee
			simDays[d] = b
			simAll.n++
			simAll.fen += s.TotalFee
		}
	}
	days := map[string]bool{}
	for d := range localDays {
		days[d] = true
	}
	for d := range simDays {
		days[d] = true
	}
	for _, d := range slices.Sorted(mapKeys(days)) {
		c.checked(2)
		if lb, sb := localDays[d], simDays[d]; lb != sb {
			c.violation(2, "day %s: %d paid orders, %d fen here; %d, %d fen at WeChat", d, lb.n, lb.fen, sb.n, sb.fen)
		}
	}
	c.checked(2)
	if localAll != simAll {
		c.violation(2, "overall: %d paid orders, %d fen here; %d, %d fen at WeChat", localAll.n, localAll.fen, simAll.n, simAll.fen)
	}

	// I3.
	if err := c.i3(locals, sim, difference); err != nil {
		return nil, err
	}

	// I4, I5, I6, I8: per local order.
	for _, l := range locals {
		c.i4(l)
		c.i5(l)
		c.i6(l, sim[l.o.OutTradeNo])
		c.i8(l)
	}

	// I9.
	for ci, canary := range in.Canaries {
		if canary == "" {
			continue
		}
		for ti, text := range in.Texts {
			c.checked(9)
			if n := strings.Count(text, canary); n > 0 {
				c.violation(9, "canary #%d found %d times in text #%d", ci+1, n, ti+1)
			}
		}
	}

	return &Report{Results: c.results[:]}, nil
}

// i1 describes how an order's local and simulator states disagree, or "".
func i1(l *local, s *wxsim.Order, now time.Time) string {
	switch {
	case l == nil && s == nil:
		return ""
	case l == nil:
		return fmt.Sprintf("WeChat has it (%s, %d fen), we have no such order", s.State, s.TotalFee)
	case s == nil:
		if l.o.Status.Paid() {
			return fmt.Sprintf("%s here, WeChat has no such order", l.o.Status)
		}
		return "" // never reached WeChat: nothing to agree on
	}
	localPaid, simPaid := l.o.Status.Paid(), s.Paid
	if localPaid != simPaid {
		return fmt.Sprintf("%s here, %s at WeChat", l.o.Status, s.State)
	}
	if localPaid {
		return ""
	}
	localClosed := l.o.Status == merchant.OrderClosed || l.o.Status == merchant.OrderPayError
	if localClosed != simClosed(s, now) {
		return fmt.Sprintf("%s here, %s at WeChat", l.o.Status, s.State)
	}
	return ""
}

// simClosed reports whether an unpaid simulator order can no longer be
// paid: CLOSED, REVOKED, PAYERROR, or NOTPAY past its time_expire.
func simClosed(s *wxsim.Order, now time.Time) bool {
	switch s.State {
	case wxpay.TradeStateClosed, wxpay.TradeStateRevoked, wxpay.TradeStatePayError:
		return true
	case wxpay.TradeStateNotPay:
		return !s.TimeExpire.IsZero() && !now.IsZero() && !now.Before(s.TimeExpire)
	}
	return false
}

type differenceFunc func(i int, outTradeNo, outRefundNo, format string, args ...any) (bool, error)

func (c *checker) i3(locals []*local, sim map[string]*wxsim.Order, difference differenceFunc) error {
	// Local bounds.
	localRefunds := map[string]*merchant.Refund{}
	for _, l := range locals {
		c.checked(3)
		var held int64
		for _, r := range l.refunds {
			localRefunds[r.OutRefundNo] = r
			if r.Status.Holds() {
				held += r.RefundFee
			}
		}
		if held > l.o.TotalFee {
			c.violation(3, "%s: refunds holding %d fen of a %d fen order", l.o.OutTradeNo, held, l.o.TotalFee)
		}
	}
	// The simulator's refunds: executions, bound, and the set.
	simRefunds := map[string]*wxsim.Refund{}
	var simNos []string
	for _, s := range sim {
		var refunded int64
		for i := range s.Refunds {
			r := &s.Refunds[i]
			simRefunds[r.OutRefundNo] = r
			simNos = append(simNos, r.OutRefundNo)
			if r.Executions > 1 {
				c.violation(3, "refund %s of %s executed %d times at WeChat", r.OutRefundNo, s.OutTradeNo, r.Executions)
			}
			if r.Status != wxpay.RefundStatusClosed {
				refunded += r.RefundFee
			}
		}
		if len(s.Refunds) > 0 {
			c.checked(3)
			paid := int64(0)
			if s.Paid {
				paid = s.TotalFee
			}
			if refunded > paid {
				c.violation(3, "%s: WeChat refunded %d fen of %d fen paid", s.OutTradeNo, refunded, paid)
			}
		}
	}
	nos := map[string]bool{}
	for no := range localRefunds {
		nos[no] = true
	}
	for _, no := range simNos {
		nos[no] = true
	}
	for _, no := range slices.Sorted(mapKeys(nos)) {
		c.checked(3)
		l, s := localRefunds[no], simRefunds[no]
		var msg, order string
		switch {
		case s == nil:
			order = l.OutTradeNo
			if l.Status == merchant.RefundFailed {
				continue // refused by WeChat: never executed
			}
			msg = fmt.Sprintf("refund %s of %s: %s here (%d fen), WeChat has no such refund", no, l.OutTradeNo, l.Status, l.RefundFee)
		case l == nil:
			order = s.OutTradeNo
			msg = fmt.Sprintf("refund %s of %s: %s at WeChat (%d fen), we have no such refund", no, s.OutTradeNo, s.Status, s.RefundFee)
		default:
			order = l.OutTradeNo
			switch {
			case l.OutTradeNo != s.OutTradeNo:
				msg = fmt.Sprintf("refund %s: of %s here, of %s at WeChat", no, l.OutTradeNo, s.OutTradeNo)
			case l.RefundFee != s.RefundFee:
				msg = fmt.Sprintf("refund %s of %s: %d fen here, %d fen at WeChat", no, l.OutTradeNo, l.RefundFee, s.RefundFee)
			case !refundAgrees(l.Status, s.Status):
				msg = fmt.Sprintf("refund %s of %s: %s here, %s at WeChat", no, l.OutTradeNo, l.Status, s.Status)
			}
		}
		if msg == "" {
			continue
		}
		if _, err := difference(3, order, no, "%s", msg); err != nil {
			return err
		}
	}
	return nil
}

// refundAgrees reports whether a local refund status matches WeChat's.
func refundAgrees(l merchant.RefundStatus, s wxpay.RefundStatus) bool {
	switch s {
	case wxpay.RefundStatusSuccess:
		return l == merchant.RefundSuccess
	case wxpay.RefundStatusClosed:
		return l == merchant.RefundClosed || l == merchant.RefundFailed
	case wxpay.RefundStatusChange:
		return l == merchant.RefundChange
	case wxpay.RefundStatusProcessing:
		return l == merchant.RefundProcessing || l == merchant.RefundReserved
	}
	return false
}

func (c *checker) i4(l *local) {
	c.checked(4)
	no := l.o.OutTradeNo
	at := merchant.OrderNotPay
	for i, e := range l.events {
		if e.From != at {
			c.violation(4, "%s: event %d starts at %s, the order was %s", no, i+1, e.From, at)
			return
		}
		if !merchant.CanTransition(e.From, e.To) {
			c.violation(4, "%s: event %d goes %s → %s, not an allowed edge", no, i+1, e.From, e.To)
			return
		}
		at = e.To
	}
	if at != l.o.Status {
		c.violation(4, "%s: the events end at %s, the order is %s", no, at, l.o.Status)
	}
}

func (c *checker) i5(l *local) {
	c.checked(5)
	n := 0
	for _, e := range l.outbox {
		if e.Type == merchant.EventOrderPaid {
			n++
		}
	}
	want := 0
	if l.o.Status.Paid() {
		want = 1
	}
	if n != want {
		c.violation(5, "%s: %s with %d order.paid events", l.o.OutTradeNo, l.o.Status, n)
	}
}

func (c *checker) i6(l *local, s *wxsim.Order) {
	if !l.o.Status.Paid() {
		return
	}
	c.checked(6)
	if s == nil {
		return // I1's business
	}
	o := l.o
	switch {
	case s.TotalFee != o.TotalFee:
		c.violation(6, "%s: %s for %d fen, WeChat's order is %d fen", o.OutTradeNo, o.Status, o.TotalFee, s.TotalFee)
	case s.AppID != o.AppID:
		c.violation(6, "%s: %s for appid %s, WeChat's order is of %s", o.OutTradeNo, o.Status, o.AppID, s.AppID)
	case s.MchID != o.MchID:
		c.violation(6, "%s: %s for mch_id %s, WeChat's order is of %s", o.OutTradeNo, o.Status, o.MchID, s.MchID)
	case s.Paid && s.TransactionID != o.TransactionID:
		c.violation(6, "%s: %s by transaction %s, WeChat's is %s", o.OutTradeNo, o.Status, o.TransactionID, s.TransactionID)
	}
}

func (c *checker) i8(l *local) {
	c.checked(8)
	o := l.o
	if o.Status != merchant.OrderNotPay || o.ExpiresAt.IsZero() {
		return
	}
	if o.ExpiresAt.Add(c.in.Grace).Before(c.in.Now) {
		c.violation(8, "%s: NOTPAY, expired at %s (now %s)", o.OutTradeNo,
			o.ExpiresAt.In(wxpay.China).Format(time.DateTime), c.in.Now.In(wxpay.China).Format(time.DateTime))
	}
}

// day is the China date of t, or "" for the zero time.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(wxpay.China).Format(time.DateOnly)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// loadLocal pages through the store's orders of mchID ("" for all) and
// loads each one's refunds, events, outbox events and anomaly count, a few
// orders at a time.
func loadLocal(ctx context.Context, st merchant.Store, mchID string) ([]*local, error) {
	var locals []*local
	cursor := ""
	for {
		page, next, err := st.ListOrders(ctx, merchant.OrderFilter{Limit: 200, Cursor: cursor})
		if err != nil {
			return nil, fmt.Errorf("invariant: listing orders: %w", err)
		}
		for _, o := range page {
			if mchID == "" || o.MchID == mchID {
				locals = append(locals, &local{o: o})
			}
		}
		if next == "" || len(page) == 0 {
			break
		}
		cursor = next
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		work     = make(chan *local)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				if err := loadOne(ctx, st, l); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, l := range locals {
		work <- l
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return locals, nil
}

func loadOne(ctx context.Context, st merchant.Store, l *local) error {
	no := l.o.OutTradeNo
	var err error
	if l.refunds, err = st.Refunds(ctx, no); err != nil {
		return fmt.Errorf("invariant: refunds of %s: %w", no, err)
	}
	if l.events, err = st.Events(ctx, no); err != nil {
		return fmt.Errorf("invariant: events of %s: %w", no, err)
	}
	if l.outbox, err = st.OutboxFor(ctx, no); err != nil {
		return fmt.Errorf("invariant: outbox of %s: %w", no, err)
	}
	a, err := st.Anomalies(ctx, no, 1)
	if err != nil {
		return fmt.Errorf("invariant: anomalies of %s: %w", no, err)
	}
	l.anomalies = len(a)
	return nil
}
