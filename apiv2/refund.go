package apiv2

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

var (
	epRefund      = &endpoint{name: "refund", path: "/secapi/pay/refund", sandboxPath: "/sandboxnew/pay/refund", cert: true, safe: safeDialErr}
	epRefundQuery = &endpoint{name: "refundquery", path: "/pay/refundquery", safe: safeAlways}
)

// RefundRequest is the refund request (protocol.md §5.4). One of
// TransactionID and OutTradeNo names the order.
type RefundRequest struct {
	TransactionID string
	OutTradeNo    string
	// OutRefundNo is your refund number and the idempotency key: store it
	// before the first call and send the same number and amount on every
	// retry. ≤ 64 of [0-9A-Za-z_-|*@].
	OutRefundNo   string
	TotalFee      int64 // the order's amount, fen
	RefundFee     int64 // this refund, fen, ≤ TotalFee
	RefundFeeType string
	RefundDesc    string              // shown to the user
	RefundAccount wxpay.RefundAccount // default unsettled funds
	NotifyURL     string              // the refund notify URL, overriding the merchant platform's
	Extra         map[string]string
}

// RefundResponse is the answer to refund: the refund was accepted, not
// done. Its result comes from the refund notify or RefundQuery.
type RefundResponse struct {
	Envelope
	TransactionID       string
	OutTradeNo          string
	OutRefundNo         string
	RefundID            string
	RefundFee           int64
	SettlementRefundFee int64
	TotalFee            int64
	SettlementTotalFee  int64
	FeeType             string
	CashFee             int64
	CashRefundFee       int64
	CouponRefundFee     int64
	CouponRefundCount   int
}

// Refund asks WeChat to refund (申请退款, POST /secapi/pay/refund, with the
// client certificate). A nil error means accepted, not refunded. On
// ErrOutcomeUnknown or ErrBizNeedRetry, call again with the same
// OutRefundNo and amount — never a new number for an unknown outcome.
// ErrNotEnough means the merchant's refundable balance is short.
func (c *Client) Refund(ctx context.Context, req *RefundRequest) (*RefundResponse, error) {
	r, err := c.call(ctx, epRefund, func(e *encoder) {
		e.require(req.TransactionID != "" || req.OutTradeNo != "", "refund: TransactionID or OutTradeNo is required")
		e.require(req.OutRefundNo != "" && len(req.OutRefundNo) <= 64, "refund: OutRefundNo must have 1 to 64 characters")
		if err := checkChars("out_refund_no", req.OutRefundNo); err != nil {
			e.fail(err)
		}
		e.require(req.TotalFee > 0, "refund: TotalFee must be > 0 fen")
		if !(req.RefundFee > 0 && req.RefundFee <= req.TotalFee) {
			e.fail(invalid("refund: RefundFee must be > 0 and ≤ TotalFee (%d), is %d", req.TotalFee, req.RefundFee))
		}
		if req.NotifyURL != "" {
			if err := sdkhttp.CheckNotifyURL(req.NotifyURL); err != nil {
				e.fail(invalid("refund: %v", err))
			}
		}
		e.str("transaction_id", req.TransactionID)
		e.str("out_trade_no", req.OutTradeNo)
		e.str("out_refund_no", req.OutRefundNo)
		e.num("total_fee", req.TotalFee)
		e.num("refund_fee", req.RefundFee)
		e.str("refund_fee_type", req.RefundFeeType)
		e.str("refund_desc", req.RefundDesc)
		e.str("refund_account", string(req.RefundAccount))
		e.str("notify_url", req.NotifyURL)
		e.extra(req.Extra)
	})
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &RefundResponse{
		TransactionID: d.str("transaction_id"), OutTradeNo: d.str("out_trade_no"),
		OutRefundNo: d.str("out_refund_no"), RefundID: d.str("refund_id"),
		RefundFee: d.int("refund_fee"), SettlementRefundFee: d.int("settlement_refund_fee"),
		TotalFee: d.int("total_fee"), SettlementTotalFee: d.int("settlement_total_fee"),
		FeeType: d.str("fee_type"), CashFee: d.int("cash_fee"), CashRefundFee: d.int("cash_refund_fee"),
		CouponRefundFee: d.int("coupon_refund_fee"), CouponRefundCount: int(d.int("coupon_refund_count")),
	}
	out.Envelope.decode(d)
	if d.err != nil {
		return nil, &Error{API: epRefund.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: d.err}
	}
	if out.OutRefundNo != req.OutRefundNo || out.RefundFee != req.RefundFee {
		return nil, &Error{API: epRefund.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true,
			Err: errAnswer(fmt.Sprintf("answer is for refund %q of %d fen", out.OutRefundNo, out.RefundFee))}
	}
	return out, nil
}

// RefundQueryRequest names what to query; set exactly one of the numbers
// (WeChat's priority: RefundID, OutRefundNo, TransactionID, OutTradeNo).
// Offset pages through orders with more than 10 refunds.
type RefundQueryRequest struct {
	RefundID      string
	OutRefundNo   string
	TransactionID string
	OutTradeNo    string
	Offset        int
}

// RefundRecord is one refund of a refund query (the _$n fields).
type RefundRecord struct {
	OutRefundNo         string
	RefundID            string
	RefundChannel       wxpay.RefundChannel
	RefundFee           int64
	SettlementRefundFee int64
	CouponRefundFee     int64
	CouponRefundCount   int
	Status              wxpay.RefundStatus
	RefundAccount       wxpay.RefundAccount
	RecvAccount         string    // refund_recv_accout_$n (WeChat's spelling): where the money went
	SuccessTime         time.Time // zero until SUCCESS
}

// RefundQueryResponse is the answer to refundquery (protocol.md §5.5).
type RefundQueryResponse struct {
	Envelope
	TransactionID      string
	OutTradeNo         string
	TotalFee           int64
	SettlementTotalFee int64
	FeeType            string
	CashFee            int64
	TotalRefundCount   int // all refunds of the order, for paging
	Refunds            []RefundRecord
}

// RefundQuery asks for the state of refunds (查询退款, POST
// /pay/refundquery). ErrRefundNotExist means no such refund was created.
func (c *Client) RefundQuery(ctx context.Context, req *RefundQueryRequest) (*RefundQueryResponse, error) {
	r, err := c.call(ctx, epRefundQuery, func(e *encoder) {
		n := 0
		for _, s := range []string{req.RefundID, req.OutRefundNo, req.TransactionID, req.OutTradeNo} {
			if s != "" {
				n++
			}
		}
		e.require(n == 1, "refundquery: set exactly one of RefundID, OutRefundNo, TransactionID, OutTradeNo")
		e.str("refund_id", req.RefundID)
		e.str("out_refund_no", req.OutRefundNo)
		e.str("transaction_id", req.TransactionID)
		e.str("out_trade_no", req.OutTradeNo)
		e.optNum("offset", int64(req.Offset))
	})
	if err != nil {
		return nil, err
	}
	d := &decoder{f: r.fields}
	out := &RefundQueryResponse{
		TransactionID: d.str("transaction_id"), OutTradeNo: d.str("out_trade_no"),
		TotalFee: d.int("total_fee"), SettlementTotalFee: d.int("settlement_total_fee"),
		FeeType: d.str("fee_type"), CashFee: d.int("cash_fee"),
		TotalRefundCount: int(d.int("total_refund_count")),
	}
	out.Envelope.decode(d)
	count := int(d.int("refund_count"))
	if count < 0 || count > 50 {
		return nil, &Error{API: epRefundQuery.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true,
			Err: errAnswer(fmt.Sprintf("refund_count %d", count))}
	}
	for i := 0; i < count; i++ {
		n := fmt.Sprint(i)
		rec := RefundRecord{
			OutRefundNo:         d.str("out_refund_no_" + n),
			RefundID:            d.str("refund_id_" + n),
			RefundChannel:       wxpay.RefundChannel(d.str("refund_channel_" + n)),
			RefundFee:           d.int("refund_fee_" + n),
			SettlementRefundFee: d.int("settlement_refund_fee_" + n),
			CouponRefundFee:     d.int("coupon_refund_fee_" + n),
			CouponRefundCount:   int(d.int("coupon_refund_count_" + n)),
			Status:              wxpay.RefundStatus(d.str("refund_status_" + n)),
			RefundAccount:       wxpay.RefundAccount(d.str("refund_account_" + n)),
			RecvAccount:         d.str("refund_recv_accout_" + n),
			SuccessTime:         d.refundTime("refund_success_time_" + n),
		}
		if rec.OutRefundNo == "" || !rec.Status.Valid() {
			return nil, &Error{API: epRefundQuery.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true,
				Err: errAnswer(fmt.Sprintf("refund %d lacks out_refund_no or a known refund_status", i))}
		}
		out.Refunds = append(out.Refunds, rec)
	}
	if d.err != nil {
		return nil, &Error{API: epRefundQuery.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: d.err}
	}
	return out, nil
}

// RefundNotify is a decrypted refund result notify (protocol.md §7).
type RefundNotify struct {
	AppID               string
	MchID               string
	NonceStr            string
	TransactionID       string
	OutTradeNo          string
	RefundID            string
	OutRefundNo         string
	TotalFee            int64
	SettlementTotalFee  int64
	RefundFee           int64
	SettlementRefundFee int64
	Status              wxpay.RefundStatus // SUCCESS, CHANGE or REFUNDCLOSE
	SuccessTime         time.Time
	RecvAccount         string
	RefundAccount       wxpay.RefundAccount
	RequestSource       string // API or VENDOR_PLATFORM
	// Fields are the decrypted req_info's fields, sorted.
	Fields []wxcrypto.Field
}

// ParseRefundNotify decodes a refund notify: the outer message (return_code,
// appid and mch_id equal to the client's), then req_info decrypted with the
// API key (AES-256-ECB, protocol.md §7) and decoded. A refund notify has no
// signature: the encryption is its only authentication, and ECB gives no
// integrity. So before acting on it, check that OutRefundNo, OutTradeNo and
// RefundFee match a refund you created — and preferably confirm with
// RefundQuery.
func (c *Client) ParseRefundNotify(body []byte) (*RefundNotify, error) {
	if len(body) > MaxNotifySize {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: ErrXMLTooLarge}
	}
	outer, err := parseFlat(string(body), "xml", nil)
	if err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
	}
	if rc := lookup(outer, "return_code"); rc != "SUCCESS" {
		return nil, &NotifyError{Reason: ReasonFailure, Err: fmt.Errorf("return_code %q: %s", rc, lookup(outer, "return_msg"))}
	}
	n := &RefundNotify{AppID: lookup(outer, "appid"), MchID: lookup(outer, "mch_id"), NonceStr: lookup(outer, "nonce_str")}
	if n.MchID != c.cfg.MchID || (n.AppID != "" && n.AppID != c.cfg.AppID) {
		return nil, &NotifyError{Reason: ReasonMerchant, Err: fmt.Errorf("refund notify for appid %q mch_id %q", n.AppID, n.MchID)}
	}
	plain, err := wxcrypto.DecryptReqInfo(c.cfg.APIKey.Reveal(), lookup(outer, "req_info"))
	if err != nil {
		return nil, &NotifyError{Reason: ReasonDecrypt, Err: err}
	}
	inner, err := parseFlat(string(plain), "root", nil)
	if err != nil {
		return nil, &NotifyError{Reason: ReasonDecrypt, Err: err}
	}
	d := &decoder{f: inner}
	n.TransactionID = d.str("transaction_id")
	n.OutTradeNo = d.str("out_trade_no")
	n.RefundID = d.str("refund_id")
	n.OutRefundNo = d.str("out_refund_no")
	n.TotalFee = d.int("total_fee")
	n.SettlementTotalFee = d.int("settlement_total_fee")
	n.RefundFee = d.int("refund_fee")
	n.SettlementRefundFee = d.int("settlement_refund_fee")
	n.Status = wxpay.RefundStatus(d.str("refund_status"))
	n.SuccessTime = d.refundTime("success_time")
	n.RecvAccount = d.str("refund_recv_accout")
	n.RefundAccount = wxpay.RefundAccount(d.str("refund_account"))
	n.RequestSource = d.str("refund_request_source")
	n.Fields = inner
	if d.err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: d.err}
	}
	if n.OutRefundNo == "" || n.OutTradeNo == "" || n.RefundFee <= 0 || !n.Status.Final() {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: fmt.Errorf("refund notify lacks out_refund_no, out_trade_no, refund_fee or a final refund_status")}
	}
	return n, nil
}

// RefundNotifyHandler is PayNotifyHandler for the refund notify URL: it
// answers SUCCESS only when fn returned nil.
func (c *Client) RefundNotifyHandler(fn func(ctx context.Context, n *RefundNotify) error, o NotifyHandlerOptions) http.Handler {
	return notifyHandler(o, func(ctx context.Context, body []byte) error {
		n, err := c.ParseRefundNotify(body)
		if err != nil {
			return err
		}
		return fn(ctx, n)
	})
}
