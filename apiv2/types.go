package apiv2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// ErrInvalidArgument wraps every request that the client refuses before
// sending it (a required field missing, an amount ≤ 0, a malformed
// out_trade_no): nothing was sent, so the outcome is known.
var ErrInvalidArgument = errors.New("apiv2: invalid argument")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// Envelope is the common part of every v2 answer (protocol.md §3).
type Envelope struct {
	ReturnCode string
	ReturnMsg  string
	AppID      string
	MchID      string
	NonceStr   string
	Sign       string
	ResultCode string
	ErrCode    string
	ErrCodeDes string
	// Fields holds every field of the answer, sorted by name, including
	// those that have no typed counterpart (WeChat adds fields over time).
	Fields []wxcrypto.Field
}

// Get returns the value of any field of the answer ("" when absent).
func (e *Envelope) Get(name string) string { return lookup(e.Fields, name) }

func (e *Envelope) decode(d *decoder) {
	for _, f := range d.f {
		e.set(f)
	}
	e.Fields = d.f
}

// set assigns f if it is an envelope field and reports whether it was.
func (e *Envelope) set(f wxcrypto.Field) bool {
	switch f.Name {
	case "return_code":
		e.ReturnCode = f.Value
	case "return_msg":
		e.ReturnMsg = f.Value
	case "appid":
		e.AppID = f.Value
	case "mch_id":
		e.MchID = f.Value
	case "nonce_str":
		e.NonceStr = f.Value
	case "sign":
		e.Sign = f.Value
	case "result_code":
		e.ResultCode = f.Value
	case "err_code":
		e.ErrCode = f.Value
	case "err_code_des":
		e.ErrCodeDes = f.Value
	default:
		return false
	}
	return true
}

// Coupon is one coupon used in a payment (coupon_type_$n, coupon_id_$n,
// coupon_fee_$n).
type Coupon struct {
	Type string // CASH or NO_CASH
	ID   string
	Fee  int64 // fen
}

// Payment holds the fields that describe a payment, shared by orderquery,
// micropay and the pay notify (protocol.md §5.2, §6).
type Payment struct {
	DeviceInfo         string
	OpenID             string
	IsSubscribe        string // Y or N
	TradeType          wxpay.TradeType
	BankType           string
	TotalFee           int64 // the order amount, fen: compare this with your order
	SettlementTotalFee int64 // fen, when non-recharge coupons were used
	FeeType            string
	CashFee            int64 // what the payer paid in cash, fen
	CashFeeType        string
	CouponFee          int64 // fen
	CouponCount        int
	Coupons            []Coupon
	TransactionID      string
	OutTradeNo         string
	Attach             string
	TimeEnd            time.Time // payment time (zero when unpaid)
}

func (p *Payment) decode(d *decoder) {
	p.decodeWith(d, nil)
}

// decodeWith reads the payment fields in one pass over the answer, and
// hands every other field to other (when not nil).
func (p *Payment) decodeWith(d *decoder, other func(wxcrypto.Field)) {
	for _, f := range d.f {
		switch f.Name {
		case "device_info":
			p.DeviceInfo = f.Value
		case "openid":
			p.OpenID = f.Value
		case "is_subscribe":
			p.IsSubscribe = f.Value
		case "trade_type":
			p.TradeType = wxpay.TradeType(f.Value)
		case "bank_type":
			p.BankType = f.Value
		case "total_fee":
			p.TotalFee = d.parseInt(f)
		case "settlement_total_fee":
			p.SettlementTotalFee = d.parseInt(f)
		case "fee_type":
			p.FeeType = f.Value
		case "cash_fee":
			p.CashFee = d.parseInt(f)
		case "cash_fee_type":
			p.CashFeeType = f.Value
		case "coupon_fee":
			p.CouponFee = d.parseInt(f)
		case "coupon_count":
			p.CouponCount = int(d.parseInt(f))
		case "transaction_id":
			p.TransactionID = f.Value
		case "out_trade_no":
			p.OutTradeNo = f.Value
		case "attach":
			p.Attach = f.Value
		case "time_end":
			p.TimeEnd = d.parseTime(f)
		default:
			if strings.HasPrefix(f.Name, "coupon_") {
				p.coupon(d, f)
			} else if other != nil {
				other(f)
			}
		}
	}
}

// coupon reads coupon_id_$n, coupon_type_$n and coupon_fee_$n.
func (p *Payment) coupon(d *decoder, f wxcrypto.Field) {
	rest := f.Name[len("coupon_"):]
	var kind string
	switch {
	case strings.HasPrefix(rest, "id_"):
		kind, rest = "id", rest[3:]
	case strings.HasPrefix(rest, "type_"):
		kind, rest = "type", rest[5:]
	case strings.HasPrefix(rest, "fee_"):
		kind, rest = "fee", rest[4:]
	default:
		return
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n >= 100 {
		return
	}
	for len(p.Coupons) <= n {
		p.Coupons = append(p.Coupons, Coupon{})
	}
	switch kind {
	case "id":
		p.Coupons[n].ID = f.Value
	case "type":
		p.Coupons[n].Type = f.Value
	case "fee":
		p.Coupons[n].Fee = d.parseInt(f)
	}
}

// checkOutTradeNo applies WeChat's rule: 6 to 32 characters of digits,
// letters and _ - | * @.
func checkOutTradeNo(name, s string) error {
	if len(s) < 6 || len(s) > 32 {
		return invalid("%s %q must have 6 to 32 characters", name, s)
	}
	return checkChars(name, s)
}

func checkChars(name, s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c == '_' || c == '-' || c == '|' || c == '*' || c == '@') {
			return invalid("%s %q may hold only digits, letters and _ - | * @", name, s)
		}
	}
	return nil
}
