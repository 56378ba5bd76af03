package apiv3

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
)

var (
	epRefund      = &endpoint{name: "refund", method: "POST", safe: safeDialErr}
	epQueryRefund = &endpoint{name: "query-refund", method: "GET", safe: safeAlways}
)

// The v3 refund channels beyond ORIGINAL and BALANCE live in the shared
// vocabulary: wxpay.RefundChannelOtherBalance, wxpay.RefundChannelOtherBankcard.

// RefundRequest asks for a refund (protocol.md §13.6, POST
// /v3/refund/domestic/refunds). Amounts are int64 fen. A refund whose
// outcome is unknown must be retried with the same OutRefundNo and the
// same amounts (reliability.md D2).
type RefundRequest struct {
	TransactionID string // WeChat's order id; or OutTradeNo (one is required)
	OutTradeNo    string
	OutRefundNo   string // your refund number, 1–64 of [0-9A-Za-z_-|*@]; required
	Reason        string // shown to the payer, at most 80 characters
	// NotifyURL receives the refund notify. It does not default to
	// Config.NotifyURL: without one WeChat uses the URL configured in the
	// merchant platform.
	NotifyURL string
	// FundsAccount is funds_account: "AVAILABLE" refunds from the available
	// balance; empty means the unsettled funds.
	FundsAccount string
	Refund       int64        // amount.refund: the amount to refund, > 0
	Total        int64        // amount.total: the order's total, > 0
	Currency     string       // default CNY
	From         []RefundFrom // amount.from: which accounts pay the refund
	GoodsDetail  []RefundGoods
}

// RefundFrom is one account paying part of a refund.
type RefundFrom struct {
	Account string `json:"account"` // AVAILABLE or UNAVAILABLE
	Amount  int64  `json:"amount"`
}

// RefundGoods is one line of a refund's goods detail.
type RefundGoods struct {
	MerchantGoodsID  string `json:"merchant_goods_id"`
	WechatpayGoodsID string `json:"wechatpay_goods_id,omitempty"`
	GoodsName        string `json:"goods_name,omitempty"`
	UnitPrice        int64  `json:"unit_price"`
	RefundAmount     int64  `json:"refund_amount"`
	RefundQuantity   int64  `json:"refund_quantity"`
}

type refundWire struct {
	TransactionID string           `json:"transaction_id,omitempty"`
	OutTradeNo    string           `json:"out_trade_no,omitempty"`
	OutRefundNo   string           `json:"out_refund_no"`
	Reason        string           `json:"reason,omitempty"`
	NotifyURL     string           `json:"notify_url,omitempty"`
	FundsAccount  string           `json:"funds_account,omitempty"`
	Amount        refundAmountWire `json:"amount"`
	GoodsDetail   []RefundGoods    `json:"goods_detail,omitempty"`
}

type refundAmountWire struct {
	Refund   int64        `json:"refund"`
	From     []RefundFrom `json:"from,omitempty"`
	Total    int64        `json:"total"`
	Currency string       `json:"currency"`
}

func (r *RefundRequest) encode() ([]byte, error) {
	currency := r.Currency
	if currency == "" {
		currency = CurrencyCNY
	}
	switch {
	case r.TransactionID == "" && r.OutTradeNo == "":
		return nil, invalid("TransactionID or OutTradeNo is required")
	case r.Refund <= 0 || r.Total <= 0:
		return nil, invalid("Refund and Total must be > 0 fen, are %d and %d", r.Refund, r.Total)
	case r.Refund > r.Total:
		return nil, invalid("Refund %d exceeds the order Total %d", r.Refund, r.Total)
	case utf8.RuneCountInString(r.Reason) > 80:
		return nil, invalid("Reason is longer than 80 characters")
	}
	if err := checkOutNo("OutRefundNo", r.OutRefundNo, 1, 64); err != nil {
		return nil, err
	}
	if r.OutTradeNo != "" {
		if err := checkOutNo("OutTradeNo", r.OutTradeNo, 1, 32); err != nil {
			return nil, err
		}
	}
	if r.NotifyURL != "" {
		if err := sdkhttp.CheckNotifyURL(r.NotifyURL); err != nil {
			return nil, invalid("%v", err)
		}
	}
	for _, f := range r.From {
		if f.Amount <= 0 || f.Account == "" {
			return nil, invalid("every From needs an Account and an Amount > 0")
		}
	}
	return json.Marshal(&refundWire{
		TransactionID: r.TransactionID, OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Reason: r.Reason,
		NotifyURL: r.NotifyURL, FundsAccount: r.FundsAccount, GoodsDetail: r.GoodsDetail,
		Amount: refundAmountWire{Refund: r.Refund, From: r.From, Total: r.Total, Currency: currency},
	})
}

// refundStatus maps a v3 refund status onto wxpay.RefundStatus: SUCCESS
// and PROCESSING are the same, CLOSED is v2's REFUNDCLOSE, and ABNORMAL is
// v2's CHANGE (abnormal: the payer's account is closed or frozen; handle it
// by hand in the merchant platform). Another value is kept as it is, and
// is not Valid.
func refundStatus(s string) wxpay.RefundStatus {
	switch s {
	case "CLOSED":
		return wxpay.RefundStatusClosed
	case "ABNORMAL":
		return wxpay.RefundStatusChange
	}
	return wxpay.RefundStatus(s)
}

// Refund is a refund as WeChat Pay reports it (protocol.md §13.6). Status
// is mapped onto wxpay's v2 names: CLOSED reads as RefundStatusClosed
// (REFUNDCLOSE) and ABNORMAL as RefundStatusChange (CHANGE).
type Refund struct {
	RefundID            string              `json:"refund_id"`
	OutRefundNo         string              `json:"out_refund_no"`
	TransactionID       string              `json:"transaction_id"`
	OutTradeNo          string              `json:"out_trade_no"`
	Channel             wxpay.RefundChannel `json:"channel"` // ORIGINAL, BALANCE, OTHER_BALANCE, OTHER_BANKCARD
	UserReceivedAccount string              `json:"user_received_account"`
	SuccessTime         time.Time           `json:"success_time"` // zero until SUCCESS
	CreateTime          time.Time           `json:"create_time"`
	Status              wxpay.RefundStatus  `json:"status"`
	FundsAccount        string              `json:"funds_account"`
	Amount              RefundAmount        `json:"amount"`
	Promotions          []RefundPromotion   `json:"promotion_detail,omitempty"`
}

// RefundAmount is the amount of a refund, in fen.
type RefundAmount struct {
	Total            int64        `json:"total"`
	Refund           int64        `json:"refund"`
	PayerTotal       int64        `json:"payer_total"`
	PayerRefund      int64        `json:"payer_refund"`
	SettlementRefund int64        `json:"settlement_refund"`
	SettlementTotal  int64        `json:"settlement_total"`
	DiscountRefund   int64        `json:"discount_refund"`
	RefundFee        int64        `json:"refund_fee"`
	Currency         string       `json:"currency"`
	From             []RefundFrom `json:"from,omitempty"`
}

// RefundPromotion is a coupon's share of a refund.
type RefundPromotion struct {
	PromotionID  string `json:"promotion_id"`
	Scope        string `json:"scope"`
	Type         string `json:"type"`
	Amount       int64  `json:"amount"`
	RefundAmount int64  `json:"refund_amount"`
}

func (r *Refund) field(d *jdec, key string) (err error) {
	var s string
	switch key {
	case "refund_id":
		r.RefundID, err = d.str()
	case "out_refund_no":
		r.OutRefundNo, err = d.str()
	case "transaction_id":
		r.TransactionID, err = d.str()
	case "out_trade_no":
		r.OutTradeNo, err = d.str()
	case "channel":
		s, err = d.str()
		r.Channel = wxpay.RefundChannel(s)
	case "user_received_account":
		r.UserReceivedAccount, err = d.str()
	case "success_time":
		r.SuccessTime, err = d.timeValue()
	case "create_time":
		r.CreateTime, err = d.timeValue()
	case "status":
		s, err = d.str()
		r.Status = refundStatus(s)
	case "funds_account":
		r.FundsAccount, err = d.str()
	case "amount":
		err = d.object(r.Amount.field)
	case "promotion_detail":
		err = d.array(func(d *jdec) error {
			var p RefundPromotion
			err := d.object(func(d *jdec, key string) (err error) {
				switch key {
				case "promotion_id":
					p.PromotionID, err = d.str()
				case "scope":
					p.Scope, err = d.str()
				case "type":
					p.Type, err = d.str()
				case "amount":
					return nonNegative(d, &p.Amount)
				case "refund_amount":
					return nonNegative(d, &p.RefundAmount)
				default:
					err = d.skip()
				}
				return err
			})
			r.Promotions = append(r.Promotions, p)
			return err
		})
	default:
		err = d.skip()
	}
	return err
}

func (a *RefundAmount) field(d *jdec, key string) (err error) {
	switch key {
	case "total":
		return nonNegative(d, &a.Total)
	case "refund":
		return nonNegative(d, &a.Refund)
	case "payer_total":
		return nonNegative(d, &a.PayerTotal)
	case "payer_refund":
		return nonNegative(d, &a.PayerRefund)
	case "settlement_refund":
		return nonNegative(d, &a.SettlementRefund)
	case "settlement_total":
		return nonNegative(d, &a.SettlementTotal)
	case "discount_refund":
		return nonNegative(d, &a.DiscountRefund)
	case "refund_fee":
		return nonNegative(d, &a.RefundFee)
	case "currency":
		a.Currency, err = d.str()
	case "from":
		err = d.array(func(d *jdec) error {
			var f RefundFrom
			err := d.object(func(d *jdec, key string) (err error) {
				switch key {
				case "account":
					f.Account, err = d.str()
				case "amount":
					return nonNegative(d, &f.Amount)
				default:
					err = d.skip()
				}
				return err
			})
			a.From = append(a.From, f)
			return err
		})
	default:
		err = d.skip()
	}
	return err
}

func decodeRefund(s string) (*Refund, error) {
	r := new(Refund)
	if err := decodeObject(s, r.field); err != nil {
		return nil, err
	}
	if r.OutRefundNo == "" || r.RefundID == "" || r.Status == "" || r.Amount.Refund <= 0 {
		return nil, &jsonError{msg: "refund without out_refund_no, refund_id, status or a positive amount.refund"}
	}
	return r, nil
}

// CreateRefund asks for a refund (退款申请, POST /v3/refund/domestic/refunds;
// protocol.md §13.6). The answer means "accepted", usually PROCESSING: the
// result comes with the refund notify or QueryRefund (reliability.md D3).
// On ErrOutcomeUnknown retry with the same OutRefundNo and amounts, never a
// new number.
func (c *Client) CreateRefund(ctx context.Context, req *RefundRequest) (*Refund, error) {
	if req == nil {
		return nil, &Error{API: epRefund.name, Err: invalid("nil request")}
	}
	body, err := req.encode()
	if err != nil {
		return nil, &Error{API: epRefund.name, Err: err}
	}
	a, err := c.call(ctx, epRefund, "/v3/refund/domestic/refunds", body, "")
	if err != nil {
		return nil, err
	}
	return decodeAnswer(epRefund, a, decodeRefund)
}

// QueryRefund queries a refund by your refund number (查询单笔退款, GET
// /v3/refund/domestic/refunds/{out_refund_no}; protocol.md §13.6).
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*Refund, error) {
	if err := checkOutNo("OutRefundNo", outRefundNo, 1, 64); err != nil {
		return nil, &Error{API: epQueryRefund.name, Err: err}
	}
	a, err := c.call(ctx, epQueryRefund, "/v3/refund/domestic/refunds/"+url.PathEscape(outRefundNo), nil, "")
	if err != nil {
		return nil, err
	}
	return decodeAnswer(epQueryRefund, a, decodeRefund)
}
