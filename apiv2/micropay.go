package apiv2

import (
	"context"
	"errors"
	"time"

	"github.com/wxpay-go/wxpay"
)

var (
	epMicroPay = &endpoint{name: "micropay", path: "/pay/micropay", safe: safeNever, timeout: 10 * time.Second}
	epReverse  = &endpoint{name: "reverse", path: "/secapi/pay/reverse", sandboxPath: "/sandboxnew/pay/reverse", cert: true, safe: safeDialErr}
)

// MicroPayRequest is a payment-code (barcode) payment (protocol.md §5.8).
type MicroPayRequest struct {
	AuthCode       string // the scanned payment code; required
	Body           string // required
	OutTradeNo     string // required, 6–32 of [0-9A-Za-z_-|*@]
	TotalFee       int64  // fen, > 0
	SpbillCreateIP string // required
	DeviceInfo     string
	Detail         string
	Attach         string
	FeeType        string
	GoodsTag       string
	LimitPay       string
	TimeStart      time.Time
	TimeExpire     time.Time
	Receipt        string
	SceneInfo      string
	Extra          map[string]string
}

// MicroPayResponse is a successful micropay: the payment.
type MicroPayResponse struct {
	Envelope
	Payment
}

// MicroPay charges a payment code (付款码支付, POST /pay/micropay), once. Its
// outcome is often not final: ErrUserPaying (the user must enter a
// password), ErrSystemError and ErrBankError are all ErrOutcomeUnknown —
// query, and reverse if it stays unknown. MicroPayAndWait does all that.
// A micropay is never sent to the backup host: a payment code is single use.
func (c *Client) MicroPay(ctx context.Context, req *MicroPayRequest) (*MicroPayResponse, error) {
	r, err := c.call(ctx, epMicroPay, func(e *encoder) {
		e.require(req.AuthCode != "", "micropay: AuthCode is required")
		e.require(req.Body != "", "micropay: Body is required")
		e.require(req.TotalFee > 0, "micropay: TotalFee must be > 0 fen")
		e.require(req.SpbillCreateIP != "", "micropay: SpbillCreateIP is required")
		if err := checkOutTradeNo("out_trade_no", req.OutTradeNo); err != nil {
			e.fail(err)
		}
		e.str("auth_code", req.AuthCode)
		e.str("body", req.Body)
		e.str("out_trade_no", req.OutTradeNo)
		e.num("total_fee", req.TotalFee)
		e.str("spbill_create_ip", req.SpbillCreateIP)
		e.str("device_info", req.DeviceInfo)
		e.str("detail", req.Detail)
		e.str("attach", req.Attach)
		e.str("fee_type", req.FeeType)
		e.str("goods_tag", req.GoodsTag)
		e.str("limit_pay", req.LimitPay)
		e.time("time_start", req.TimeStart)
		e.time("time_expire", req.TimeExpire)
		e.str("receipt", req.Receipt)
		e.str("scene_info", req.SceneInfo)
		e.extra(req.Extra)
	})
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &MicroPayResponse{}
	out.Envelope.decode(d)
	out.Payment.decode(d)
	if d.err != nil {
		return nil, &Error{API: epMicroPay.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: d.err}
	}
	return out, nil
}

// ReverseResponse is the answer to reverse.
type ReverseResponse struct {
	Envelope
	// Recall is true when WeChat asks to call reverse again (recall=Y).
	Recall bool
}

// Reverse cancels a micropay order (撤销订单, POST /secapi/pay/reverse, with
// the client certificate): an unpaid order is closed, a paid one refunded.
// Only within 7 days, and not sooner than 15 s after the payment request.
// When the answer says Recall, call again. Name the order by
// transactionID or outTradeNo (transactionID wins).
func (c *Client) Reverse(ctx context.Context, transactionID, outTradeNo string) (*ReverseResponse, error) {
	r, err := c.call(ctx, epReverse, func(e *encoder) {
		e.require(transactionID != "" || outTradeNo != "", "reverse: a transaction id or out_trade_no is required")
		e.str("transaction_id", transactionID)
		e.str("out_trade_no", outTradeNo)
	})
	if r == nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &ReverseResponse{Recall: d.str("recall") == "Y"}
	out.Envelope.decode(d)
	return out, err
}

// MicroPayPolicy tunes MicroPayAndWait. Zero values take the defaults of
// protocol.md §10.
type MicroPayPolicy struct {
	PollInterval time.Duration // between order queries while the user pays; default 10 s
	Deadline     time.Duration // how long to wait for the user in all; default 45 s
	ReverseAfter time.Duration // never reverse sooner than this after the payment request; default 15 s
	MaxReverse   int           // reverse calls while WeChat answers recall=Y; default 10
	FirstQuery   time.Duration // wait before the first query after SYSTEMERROR/BANKERROR; default 5 s
	RecallWait   time.Duration // wait between reverse calls while WeChat answers recall=Y; default 1 s
}

// MicroPayResult is the final outcome of MicroPayAndWait.
type MicroPayResult struct {
	// Paid is true when the money was taken; Payment then describes it.
	Paid    bool
	Payment Payment
	// Reversed is true when the order was reversed because its outcome
	// stayed unknown (or the user did not finish paying in time).
	Reversed bool
}

// ErrMicroPayFailed wraps a definite micropay failure: the user was not
// charged (a code such as AUTHCODEEXPIRE or NOTENOUGH is also in the error).
var ErrMicroPayFailed = errors.New("apiv2: micropay failed")

// MicroPayAndWait runs the whole payment-code flow of protocol.md §10: it
// calls MicroPay; on success it returns Paid. On USERPAYING it polls
// OrderQuery until the order is paid or the deadline passes; on
// SYSTEMERROR, BANKERROR or a lost answer it queries after FirstQuery. A
// definite failure (any other code, or ORDERNOTEXIST from the query)
// returns an error wrapping ErrMicroPayFailed. When the deadline passes
// with the outcome still unknown, it reverses the order (waiting until
// ReverseAfter has passed since the request, and again while recall=Y) and
// returns Reversed. If even the reverse does not succeed, the error is
// ErrOutcomeUnknown: the order must be settled by hand or by a later query.
func (c *Client) MicroPayAndWait(ctx context.Context, req *MicroPayRequest, p MicroPayPolicy) (*MicroPayResult, error) {
	if p.PollInterval <= 0 {
		p.PollInterval = 10 * time.Second
	}
	if p.Deadline <= 0 {
		p.Deadline = 45 * time.Second
	}
	if p.ReverseAfter <= 0 {
		p.ReverseAfter = 15 * time.Second
	}
	if p.MaxReverse <= 0 {
		p.MaxReverse = 10
	}
	if p.FirstQuery <= 0 {
		p.FirstQuery = 5 * time.Second
	}
	if p.RecallWait <= 0 {
		p.RecallWait = time.Second
	}
	start := time.Now()
	resp, err := c.MicroPay(ctx, req)
	if err == nil {
		return &MicroPayResult{Paid: true, Payment: resp.Payment}, nil
	}
	if !OutcomeUnknown(err) {
		if errors.Is(err, ErrInvalidArgument) {
			return nil, err
		}
		return nil, errors.Join(ErrMicroPayFailed, err)
	}
	wait := p.PollInterval
	if !errors.Is(err, ErrUserPaying) {
		wait = p.FirstQuery
	}
	for time.Since(start)+wait <= p.Deadline {
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = p.PollInterval
		q, qerr := c.OrderQuery(ctx, &OrderQueryRequest{OutTradeNo: req.OutTradeNo})
		switch {
		case qerr == nil && q.TradeState == wxpay.TradeStateSuccess:
			return &MicroPayResult{Paid: true, Payment: q.Payment}, nil
		case qerr == nil && (q.TradeState == wxpay.TradeStatePayError || q.TradeState == wxpay.TradeStateClosed || q.TradeState == wxpay.TradeStateRevoked):
			return nil, errors.Join(ErrMicroPayFailed, errors.New("order is "+string(q.TradeState)))
		case errors.Is(qerr, ErrOrderNotExist):
			return nil, errors.Join(ErrMicroPayFailed, qerr)
		}
		// USERPAYING, NOTPAY, or a query that failed: keep waiting.
	}
	// Still unknown at the deadline: reverse.
	if d := p.ReverseAfter - time.Since(start); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
	var last error
	for i := 0; i < p.MaxReverse; i++ {
		r, rerr := c.Reverse(ctx, "", req.OutTradeNo)
		if rerr == nil {
			return &MicroPayResult{Reversed: true}, nil
		}
		last = rerr
		if errors.Is(rerr, ErrOrderNotExist) {
			return &MicroPayResult{Reversed: true}, nil // nothing to cancel: never charged
		}
		if r == nil || !r.Recall {
			if !OutcomeUnknown(rerr) {
				break
			}
		}
		if err := sleep(ctx, p.RecallWait); err != nil {
			return nil, err
		}
	}
	return nil, &Error{API: epReverse.name, Unknown: true, Err: last}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
