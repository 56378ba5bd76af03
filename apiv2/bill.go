package apiv2

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
)

// This file parses the text bills of downloadbill and downloadfundflow
// (protocol.md §5.6, §5.7 and §11). A bill has four parts, one line each
// except the second: a detail header, detail rows whose every field starts
// with a backquote, a summary header and exactly one summary row. The
// parsers are strict (reliability.md E2, X11): anything that could be a
// truncated or corrupted download is an error, never a shorter bill.

// MaxBillSize caps the decompressed size of a gzip bill (tar_type=GZIP,
// protocol.md §5.6): 256 MiB. A larger stream is rejected rather than read
// into memory. Uncompressed input is parsed as given: the caller already
// holds it, and the client caps the body it downloads.
const MaxBillSize = 256 << 20

// ErrNotBill is matched (errors.Is) by the error of ParseBill and
// ParseFundFlow when the body is XML: WeChat answers a failed download, for
// example "No Bill Exist" on a day without trades, with an XML envelope
// instead of a bill (protocol.md §5.6). The client turns that envelope into
// ErrNoBill and friends; the parsers only refuse it.
var ErrNotBill = errors.New("apiv2: not a bill: the body is an XML response")

// ErrBillTruncated is matched (errors.Is) by the error of ParseBill and
// ParseFundFlow when the bill ends early: an empty body, no summary, a
// summary header without its row, or a gzip stream cut short. A truncated
// download is a hard error, never "fewer rows" (reliability.md E2).
var ErrBillTruncated = errors.New("apiv2: bill truncated")

// ErrBillMismatch is matched (errors.Is) by the error of ParseBill and
// ParseFundFlow when the detail rows disagree with the summary row: the
// row count, or a sum of money columns (reliability.md E2, "Σ rows ==
// summary totals"). It means a corrupted or partial bill.
var ErrBillMismatch = errors.New("apiv2: bill rows do not match the summary")

// BillError is the error of ParseBill and ParseFundFlow. Line is the
// 1-based line of the bill text the error is about (0 when it is about the
// whole body, such as a broken gzip stream); Err, when set, is one of
// ErrNotBill, ErrBillTruncated and ErrBillMismatch, or the gzip error.
// Errors never quote more than a short field value.
type BillError struct {
	Line   int    // 1-based line in the (decompressed) text; 0 for the whole body
	Reason string // what is wrong, lowercase
	Err    error  // the sentinel or cause, for errors.Is; may be nil
}

// Error returns "apiv2: bill line 12: reason", or "apiv2: bill: reason"
// when Line is 0.
func (e *BillError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("apiv2: bill line %d: %s", e.Line, e.Reason)
	}
	return "apiv2: bill: " + e.Reason
}

// Unwrap returns Err.
func (e *BillError) Unwrap() error { return e.Err }

// Millifen is an exact amount in thousandths of a fen, that is 0.00001
// yuan: the unit of the 手续费 (service fee) columns, which bills print with
// five decimals (protocol.md §11), for example "0.00600" = 600 Millifen =
// 0.6 fen. It is a distinct type so that it is never added to fen by
// mistake.
type Millifen int64

// String formats m in yuan with five decimals, as bills print it:
// 600 → "0.00600", -54000 → "-0.54000".
func (m Millifen) String() string { return billFormatDecimal(int64(m), 5) }

// Bill is a parsed trade bill of downloadbill (protocol.md §5.6, §11), of
// any bill_type: ALL, SUCCESS, REFUND or RECHARGE_REFUND, current or
// pre-2018 column set. Strings in it share the memory of one copy of the
// bill text.
type Bill struct {
	// Header is the detail header: the column names in bill order. Columns
	// the parser does not know are kept per row in BillRow.Extra.
	Header []string
	// Rows are the detail rows in bill order.
	Rows []BillRow
	// Summary is the summary row, verified against Rows.
	Summary BillSummary
}

// BillRow is one detail row of a trade bill (protocol.md §11). A field
// whose column the bill lacks is zero: SUCCESS bills have no refund
// columns, only REFUND bills have RefundApplyTime and RefundSuccessTime,
// pre-2018 bills have no RateRemark and no RefundRequestFee.
//
// In a pre-2018 bill the single amount column 总金额 fills both TotalFee and
// SettlementTotalFee (that format had no settlement amount distinct from the
// order amount); its 代金券或立减优惠金额 (or 企业红包金额) fills CouponFee and
// its 代金券或立减优惠退款金额 (or 企业红包退款金额) fills
// RechargeCouponRefundFee. 子商户号 fills SubMchID.
//
// Values are kept as WeChat writes them, without the backquote: payment
// rows of some bills carry "0" in the refund-number columns, for example.
// TradeState is checked with Valid; TradeType and RefundStatus are not
// checked, so that a new product does not break reconciliation.
type BillRow struct {
	TradeTime     time.Time        // 交易时间, China Standard Time: the payment time, or the refund time in an ALL bill
	AppID         string           // 公众账号ID
	MchID         string           // 商户号
	SubMchID      string           // 特约商户号 (子商户号 in older bills)
	DeviceInfo    string           // 设备号
	TransactionID string           // 微信订单号
	OutTradeNo    string           // 商户订单号
	OpenID        string           // 用户标识
	TradeType     wxpay.TradeType  // 交易类型, not checked
	TradeState    wxpay.TradeState // 交易状态, checked with Valid
	BankType      string           // 付款银行
	FeeType       string           // 货币种类, e.g. CNY

	SettlementTotalFee      int64              // 应结订单金额, fen (总金额 in older bills)
	CouponFee               int64              // 代金券金额, fen
	RefundID                string             // 微信退款单号
	OutRefundNo             string             // 商户退款单号
	RefundFee               int64              // 退款金额, fen
	RechargeCouponRefundFee int64              // 充值券退款金额, fen
	RefundType              string             // 退款类型, e.g. ORIGINAL
	RefundStatus            wxpay.RefundStatus // 退款状态, not checked
	Body                    string             // 商品名称
	Attach                  string             // 商户数据包
	ServiceFee              Millifen           // 手续费, in 0.00001 yuan; negative on refund rows in some bills
	Rate                    string             // 费率, e.g. "0.60%"
	TotalFee                int64              // 订单金额, fen (总金额 in older bills)
	RefundRequestFee        int64              // 申请退款金额, fen
	RateRemark              string             // 费率备注
	RefundApplyTime         time.Time          // 退款申请时间 (REFUND bills); zero when absent or empty
	RefundSuccessTime       time.Time          // 退款成功时间 (REFUND bills); zero when absent or empty

	// Extra holds the columns the parser does not know, by header name, so
	// that a column WeChat adds never breaks parsing. Nil when there are
	// none.
	Extra map[string]string
}

// BillSummary is the summary row of a trade bill (protocol.md §11). Count
// equals len(Bill.Rows) and every money total present in the bill equals the
// sum of its detail column, except ServiceFee, which is reported as written
// (see ParseBill).
type BillSummary struct {
	Count                   int      // 总交易单数
	SettlementTotalFee      int64    // 应结订单总金额, fen (总交易额 in older bills)
	RefundFee               int64    // 退款总金额, fen (总退款金额)
	RechargeCouponRefundFee int64    // 充值券退款总金额, fen (总代金券或立减优惠退款金额, 总企业红包退款金额)
	ServiceFee              Millifen // 手续费总金额, 0.00001 yuan
	TotalFee                int64    // 订单总金额, fen (总交易额 in older bills)
	RefundRequestFee        int64    // 申请退款总金额, fen

	// Extra holds the summary columns the parser does not know, by name.
	Extra map[string]string
}

// ParseBill parses a trade bill as downloadbill returns it (protocol.md
// §5.6, §11): plain UTF-8 text, or the same text gzip-compressed
// (tar_type=GZIP, detected by its magic bytes and decompressed up to
// MaxBillSize). Lines may end in "\r\n" or "\n"; a UTF-8 byte-order mark is
// skipped.
//
// Columns are recognised by header name, not position, so the current
// format, the SUCCESS and REFUND variants, the pre-2018 format and columns
// added later (kept in BillRow.Extra) all parse. The detail header must
// name 交易时间, 微信订单号, 商户订单号, 交易状态 and an amount (应结订单金额 or
// 总金额); the summary header 总交易单数 and 应结订单总金额 (or 总交易额), plus
// 退款总金额 when the rows have 退款金额. A column name may appear only once.
//
// The parser is strict (reliability.md E2, X11). Every error is a
// *BillError carrying the line (0 for the whole body); it is an error when
//   - the body is XML (ErrNotBill) or not valid UTF-8;
//   - the bill is empty, has no summary or no summary row, or the gzip
//     stream is cut short (ErrBillTruncated);
//   - a row has more or fewer fields than its header, or a field lacks its
//     backquote, or a line is empty before the summary;
//   - anything but empty lines follows the summary row;
//   - a time is not yyyy-MM-dd HH:mm:ss, an amount is not a plain decimal
//     with at most 2 decimals (5 for 手续费), 交易状态 is not a known
//     wxpay.TradeState, or a row has neither 微信订单号 nor 商户订单号;
//   - 总交易单数 differs from the number of detail rows, or a money total of
//     the summary differs from the sum of its column (ErrBillMismatch): the
//     settlement, refund, recharge-coupon refund, order and refund-request
//     amounts, in fen. A total whose column the rows lack must be 0.
//
// Counts may be written with a zero fraction ("20.0"), as seen in fund-flow
// bills; amounts may have fewer decimals than WeChat prints ("0.0").
//
// The fee total 手续费总金额 is not verified: each row's fee is rounded to
// 0.00001 yuan and WeChat's rule for the total is not documented. Note the
// one truncation the checks cannot see: a plain-text download cut inside
// the last field of the summary row, when that field is the unverified fee
// total (pre-2018 bills) or when only trailing zeros are lost. Download with
// tar_type=GZIP, whose CRC-32 catches every truncation.
//
// Field splitting treats ",`" as the separator, so a comma inside a field
// (a 商品名称 such as "咖啡,大杯") survives; a field that itself contains
// ",`" breaks the row's width and is an error.
func ParseBill(data []byte) (*Bill, error) {
	return billParseTrade(data, MaxBillSize)
}

// ParseFundFlow parses a fund-flow bill as downloadfundflow returns it
// (protocol.md §5.7): the same four-part text, plain or gzip, as a trade
// bill (see ParseBill for the format rules and the errors). The detail
// header must name 记账时间, 微信支付业务单号, 资金流水单号, 收支类型 and
// 收支金额（元）; the summary header 资金流水总笔数, 收入笔数, 收入金额, 支出笔数
// and 支出金额. Amounts are in fen; 收支类型 must be 收入 or 支出.
//
// Verified (ErrBillMismatch): the row count, the number of income and of
// expense rows, and the sums of their amounts. Amounts are summed as
// written (expense rows are positive in the samples we have, and so is
// 支出金额).
func ParseFundFlow(data []byte) (*FundFlowBill, error) {
	return billParseFundFlow(data, MaxBillSize)
}

// Directions of a fund-flow row (收支类型, protocol.md §5.7).
const (
	FundFlowIncome  = "收入" // money in
	FundFlowExpense = "支出" // money out
)

// FundFlowBill is a parsed fund-flow bill of downloadfundflow (protocol.md
// §5.7). Strings in it share the memory of one copy of the bill text.
type FundFlowBill struct {
	Header  []string        // the detail header, in bill order
	Rows    []FundFlowRow   // the detail rows, in bill order
	Summary FundFlowSummary // the summary row, verified against Rows
}

// FundFlowRow is one detail row of a fund-flow bill (protocol.md §5.7).
type FundFlowRow struct {
	Time       time.Time // 记账时间, China Standard Time
	BusinessNo string    // 微信支付业务单号: a transaction_id, refund_id, …
	FlowNo     string    // 资金流水单号
	Name       string    // 业务名称, e.g. 交易, 退款
	Kind       string    // 业务类型
	Direction  string    // 收支类型: FundFlowIncome or FundFlowExpense
	Amount     int64     // 收支金额（元）, in fen
	Balance    int64     // 账户结余（元）, in fen, the balance after this row
	Applicant  string    // 资金变更提交申请人, e.g. system
	Remark     string    // 备注
	VoucherNo  string    // 业务凭证号

	// Extra holds the columns the parser does not know, by header name.
	// Nil when there are none.
	Extra map[string]string
}

// FundFlowSummary is the summary row of a fund-flow bill (protocol.md
// §5.7), verified against the rows.
type FundFlowSummary struct {
	Count        int   // 资金流水总笔数
	IncomeCount  int   // 收入笔数
	Income       int64 // 收入金额, fen
	ExpenseCount int   // 支出笔数
	Expense      int64 // 支出金额, fen

	// Extra holds the summary columns the parser does not know, by name.
	Extra map[string]string
}

// ParseYuan converts a bill amount in yuan to fen exactly, as a decimal
// string to an integer, never through a float (protocol.md §4.1, §11;
// reliability.md E2). It accepts an optional leading "-", digits, and at
// most two decimals after a point with digits on both sides: "0", "12",
// "0.1", "0.01", "123.45", "-0.05". It rejects the empty string, "+",
// spaces, exponents ("1e2"), more than two decimals, several points, a
// bare point (".5", "5.") and values outside int64 fen.
func ParseYuan(s string) (int64, error) {
	v, reason := billParseDecimal(s, 2)
	if reason != "" {
		return 0, fmt.Errorf("apiv2: invalid yuan amount %q: %s", billClip(s), reason)
	}
	return v, nil
}

// FormatYuan formats fen as yuan with two decimals, the way bills write
// amounts (protocol.md §11): 1 → "0.01", 12345 → "123.45", -5 → "-0.05".
// ParseYuan(FormatYuan(v)) == v for every int64.
func FormatYuan(fen int64) string { return billFormatDecimal(fen, 2) }

// ---------------------------------------------------------------------------
// Text decoding and the four-part structure shared by both bills.

// billDecode turns the body into bill text: gunzipped (at most limit bytes)
// when it starts with the gzip magic, without a UTF-8 BOM, checked for XML
// and for UTF-8.
func billDecode(data []byte, limit int64) (string, error) {
	var text string
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		var err error
		if text, err = billGunzip(data, limit); err != nil {
			return "", err
		}
	} else {
		text = string(data)
	}
	text = strings.TrimPrefix(text, "\uFEFF")
	if t := strings.TrimLeft(text[:min(len(text), 64)], " \t\r\n"); strings.HasPrefix(t, "<") {
		return "", &BillError{Line: 1, Reason: "the body is XML (an error response such as No Bill Exist), not a bill", Err: ErrNotBill}
	}
	if !utf8.ValidString(text) {
		return "", &BillError{Line: billInvalidUTF8Line(text), Reason: "invalid UTF-8"}
	}
	return text, nil
}

// billGunzip decompresses a gzip bill into a string without an extra copy.
// Concatenated members are read as one stream, like gunzip does; anything
// else after the last member is an error.
func billGunzip(data []byte, limit int64) (string, error) {
	br := bytes.NewReader(data) // an io.ByteReader: gzip reads no further than each member
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "", billGzipError(err)
	}
	var sb strings.Builder
	// ISIZE, the last member's length mod 2^32, is a good capacity hint;
	// deflate cannot expand more than 1032:1, which bounds a forged hint.
	var hint int64
	if len(data) >= 18 { // a header and a trailer
		hint = int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	}
	sb.Grow(int(min(hint, limit, int64(len(data))*1032)))
	var n int64
	for {
		zr.Multistream(false)
		m, err := io.Copy(&sb, io.LimitReader(zr, limit+1-n))
		if err != nil {
			return "", billGzipError(err)
		}
		if n += m; n > limit {
			return "", &BillError{Reason: fmt.Sprintf("gzip bill larger than %d bytes once decompressed", limit)}
		}
		rest := data[len(data)-br.Len():]
		if len(rest) == 0 {
			return sb.String(), nil
		}
		if len(rest) < 2 || rest[0] != 0x1f || rest[1] != 0x8b {
			return "", &BillError{Reason: fmt.Sprintf("%d bytes of data after the gzip stream", len(rest))}
		}
		if err := zr.Reset(br); err != nil {
			return "", billGzipError(err)
		}
	}
}

func billGzipError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &BillError{Reason: "gzip stream cut short", Err: ErrBillTruncated}
	}
	return &BillError{Reason: "corrupt gzip stream: " + err.Error(), Err: err}
}

func billInvalidUTF8Line(text string) int {
	line := 1
	for {
		i := strings.IndexByte(text, '\n')
		if i < 0 || !utf8.ValidString(text[:i]) {
			return line
		}
		text = text[i+1:]
		line++
	}
}

// billSink receives the parts of a bill from billScan.
type billSink interface {
	header(line int, s string) error
	row(line int, s string) error
	summaryHeader(line int, s string) error
	summaryRow(line int, s string) error
}

// billScan walks the lines of text once and hands each part to sink,
// enforcing the four-part structure.
func billScan(text string, sink billSink) error {
	const (
		wantHeader = iota
		inRows
		wantSummaryRow
		done
	)
	state, line := wantHeader, 0
	for pos := 0; pos < len(text); {
		var s string
		if i := strings.IndexByte(text[pos:], '\n'); i >= 0 {
			s, pos = text[pos:pos+i], pos+i+1
		} else {
			s, pos = text[pos:], len(text)
		}
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
		line++
		var err error
		switch state {
		case wantHeader:
			switch {
			case s == "":
				return &BillError{Line: line, Reason: "empty line where the detail header belongs"}
			case s[0] == '`':
				return &BillError{Line: line, Reason: "the detail header is missing: the first line is a backquoted row"}
			}
			err, state = sink.header(line, s), inRows
		case inRows:
			switch {
			case s == "":
				return &BillError{Line: line, Reason: "empty line before the summary"}
			case s[0] == '`':
				err = sink.row(line, s)
			default:
				err, state = sink.summaryHeader(line, s), wantSummaryRow
			}
		case wantSummaryRow:
			switch {
			case s == "":
				return &BillError{Line: line, Reason: "the summary row is missing", Err: ErrBillTruncated}
			case s[0] != '`':
				return &BillError{Line: line, Reason: "expected the backquoted summary row"}
			}
			err, state = sink.summaryRow(line, s), done
		case done:
			switch {
			case s == "":
			case s[0] == '`':
				return &BillError{Line: line, Reason: "a second summary row"}
			default:
				return &BillError{Line: line, Reason: "unexpected line after the summary row"}
			}
		}
		if err != nil {
			return err
		}
	}
	switch state {
	case wantHeader:
		return &BillError{Reason: "empty bill", Err: ErrBillTruncated}
	case inRows:
		return &BillError{Line: line, Reason: "the bill ends before its summary", Err: ErrBillTruncated}
	case wantSummaryRow:
		return &BillError{Line: line, Reason: "the bill ends before its summary row", Err: ErrBillTruncated}
	}
	return nil
}

// billSplitHeader splits a header line on commas and trims each name.
func billSplitHeader(line int, s string) ([]string, error) {
	names := strings.Split(s, ",")
	for i, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, &BillError{Line: line, Reason: fmt.Sprintf("column %d has no name", i+1)}
		}
		names[i] = n
	}
	return names, nil
}

// billHasColumn reports whether the header line s names column name. It
// tells a summary header from a detail row that lost its backquote.
func billHasColumn(s, name string) bool {
	for f := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(f) == name {
			return true
		}
	}
	return false
}

// billFields splits a backquoted row (s[0] == '`') into dst. The separator
// is ",`", so commas inside a field survive.
func billFields(s string, dst []string) []string {
	dst = dst[:0]
	start := 1
	for i := 1; ; {
		j := strings.IndexByte(s[i:], ',')
		if j < 0 {
			return append(dst, s[start:])
		}
		i += j + 1
		if i < len(s) && s[i] == '`' {
			dst = append(dst, s[start:i-1])
			i++
			start = i
		}
	}
}

// billWidthError explains a row whose width differs from its header's.
func billWidthError(line int, s string, got, want int) error {
	if parts := strings.Split(s, ","); len(parts) == want {
		for i, p := range parts {
			if !strings.HasPrefix(p, "`") {
				return &BillError{Line: line, Reason: fmt.Sprintf("field %d does not start with a backquote", i+1)}
			}
		}
	}
	return &BillError{Line: line, Reason: fmt.Sprintf("the row has %d fields, its header %d", got, want)}
}

// billFieldError reports a bad value in a column.
func billFieldError(line int, column, value, reason string) error {
	return &BillError{Line: line, Reason: fmt.Sprintf("%s %q: %s", billClip(column), billClip(value), reason)}
}

// billRowCap is the capacity to reserve for the rows: the number of lines,
// bounded by the most rows of width columns the text could hold.
func billRowCap(text string, width int) int {
	return min(strings.Count(text, "\n")+1, len(text)/(2*width)+1)
}

// billAdd adds v to *sum and reports false on overflow.
func billAdd(sum *int64, v int64) bool {
	s := *sum + v
	if (v > 0 && s < *sum) || (v < 0 && s > *sum) {
		return false
	}
	*sum = s
	return true
}

// ---------------------------------------------------------------------------
// Values.

// billParseDecimal parses an optionally negative decimal with at most scale
// decimals into an integer of 10^-scale units. On failure it returns the
// reason instead of an error, so that success costs no allocation.
func billParseDecimal(s string, scale int) (int64, string) {
	if s == "" {
		return 0, "empty"
	}
	const maxPre = (math.MaxUint64 - 9) / 10 // u*10+9 cannot wrap at or below this
	var (
		u        uint64
		overflow bool
		i        int
		neg      = s[0] == '-'
	)
	if neg {
		i = 1
	}
	start := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if u > maxPre {
			overflow = true
			continue
		}
		u = u*10 + uint64(s[i]-'0')
	}
	if i == start {
		if i < len(s) && s[i] == '.' {
			return 0, "no digit before the decimal point"
		}
		if i == len(s) {
			return 0, "no digit"
		}
		return 0, "not a decimal number"
	}
	decimals := 0
	if i < len(s) {
		if s[i] != '.' {
			return 0, "not a decimal number"
		}
		for i++; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, "not a decimal number"
			}
			if decimals++; decimals > scale {
				continue
			}
			if u > maxPre {
				overflow = true
				continue
			}
			u = u*10 + uint64(c-'0')
		}
		switch {
		case decimals == 0:
			return 0, "no digit after the decimal point"
		case decimals > scale && scale == 0:
			return 0, "not an integer"
		case decimals > scale:
			return 0, fmt.Sprintf("more than %d decimals", scale)
		}
	}
	for ; decimals < scale; decimals++ {
		if u > maxPre {
			overflow = true
			break
		}
		u *= 10
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	if overflow || u > limit {
		return 0, "out of range"
	}
	if neg {
		return int64(-u), ""
	}
	return int64(u), ""
}

// billParseCount parses a count: digits, optionally followed by a point and
// zeros (fund-flow bills have been seen to write "20.0").
func billParseCount(s string) (int, string) {
	whole, frac, dot := strings.Cut(s, ".")
	if dot {
		if frac == "" || strings.Trim(frac, "0") != "" {
			return 0, "not a whole count"
		}
	}
	if whole == "" || whole[0] == '-' {
		return 0, "not a count"
	}
	v, reason := billParseDecimal(whole, 0)
	if reason != "" {
		return 0, reason
	}
	if v > math.MaxInt32 {
		return 0, "out of range"
	}
	return int(v), ""
}

// billFormatDecimal formats v units of 10^-scale with scale decimals.
func billFormatDecimal(v int64, scale int) string {
	var buf [24]byte
	i := len(buf)
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	for range scale {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	if scale > 0 {
		i--
		buf[i] = '.'
	}
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if v < 0 {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// billParseTime parses "yyyy-MM-dd HH:mm:ss" in China Standard Time. The
// empty string is the zero time when optional.
func billParseTime(s string) (time.Time, string) {
	if len(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, "not yyyy-MM-dd HH:mm:ss"
	}
	var n [6]int
	for k, p := range [6][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}} {
		for i := p[0]; i < p[1]; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return time.Time{}, "not yyyy-MM-dd HH:mm:ss"
			}
			n[k] = n[k]*10 + int(c-'0')
		}
	}
	y, mo, d, h, mi, sec := n[0], n[1], n[2], n[3], n[4], n[5]
	if mo < 1 || mo > 12 || d < 1 || d > billDaysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, "not a valid date and time"
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, 0, wxpay.China), ""
}

func billDaysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// billClip shortens a value quoted in an error.
func billClip(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// ---------------------------------------------------------------------------
// Trade bill.

// billCol identifies a detail column of a trade bill.
type billCol uint8

const (
	billColExtra billCol = iota
	billColTradeTime
	billColAppID
	billColMchID
	billColSubMchID
	billColDeviceInfo
	billColTransactionID
	billColOutTradeNo
	billColOpenID
	billColTradeType
	billColTradeState
	billColBankType
	billColFeeType
	billColSettlementTotalFee
	billColCouponFee
	billColRefundID
	billColOutRefundNo
	billColRefundFee
	billColRechargeCouponRefundFee
	billColRefundType
	billColRefundStatus
	billColBody
	billColAttach
	billColServiceFee
	billColRate
	billColTotalFee
	billColRefundRequestFee
	billColRateRemark
	billColRefundApplyTime
	billColRefundSuccessTime
	billColLegacyTotal // 总金额: order and settlement amount of pre-2018 bills
	billColN
)

func billTradeColumn(name string) billCol {
	switch name {
	case "交易时间":
		return billColTradeTime
	case "公众账号ID":
		return billColAppID
	case "商户号":
		return billColMchID
	case "特约商户号", "子商户号":
		return billColSubMchID
	case "设备号":
		return billColDeviceInfo
	case "微信订单号":
		return billColTransactionID
	case "商户订单号":
		return billColOutTradeNo
	case "用户标识":
		return billColOpenID
	case "交易类型":
		return billColTradeType
	case "交易状态":
		return billColTradeState
	case "付款银行":
		return billColBankType
	case "货币种类":
		return billColFeeType
	case "应结订单金额":
		return billColSettlementTotalFee
	case "代金券金额", "代金券或立减优惠金额", "企业红包金额":
		return billColCouponFee
	case "微信退款单号":
		return billColRefundID
	case "商户退款单号":
		return billColOutRefundNo
	case "退款金额":
		return billColRefundFee
	case "充值券退款金额", "代金券或立减优惠退款金额", "企业红包退款金额":
		return billColRechargeCouponRefundFee
	case "退款类型":
		return billColRefundType
	case "退款状态":
		return billColRefundStatus
	case "商品名称":
		return billColBody
	case "商户数据包":
		return billColAttach
	case "手续费":
		return billColServiceFee
	case "费率":
		return billColRate
	case "订单金额":
		return billColTotalFee
	case "申请退款金额":
		return billColRefundRequestFee
	case "费率备注":
		return billColRateRemark
	case "退款申请时间":
		return billColRefundApplyTime
	case "退款成功时间":
		return billColRefundSuccessTime
	case "总金额":
		return billColLegacyTotal
	}
	return billColExtra
}

// billSum identifies a summary column of a trade bill.
type billSum uint8

const (
	billSumExtra billSum = iota
	billSumCount
	billSumSettlement
	billSumRefund
	billSumRechargeRefund
	billSumServiceFee
	billSumTotal
	billSumRefundRequest
	billSumLegacyTotal // 总交易额 of pre-2018 bills
	billSumN
)

func billSummaryColumn(name string) billSum {
	switch name {
	case "总交易单数":
		return billSumCount
	case "应结订单总金额":
		return billSumSettlement
	case "退款总金额", "总退款金额":
		return billSumRefund
	case "充值券退款总金额", "总代金券或立减优惠退款金额", "总企业红包退款金额":
		return billSumRechargeRefund
	case "手续费总金额":
		return billSumServiceFee
	case "订单总金额":
		return billSumTotal
	case "申请退款总金额":
		return billSumRefundRequest
	case "总交易额":
		return billSumLegacyTotal
	}
	return billSumExtra
}

// billTradeParser is the billSink of ParseBill.
type billTradeParser struct {
	text   string
	bill   Bill
	cols   []billCol
	has    [billColN]bool
	extra  int
	fields []string

	// sums of the detail rows, in fen
	settlement, refund, recharge, total, request int64

	sumNames []string
	sumCols  []billSum
	sumHas   [billSumN]bool
	sumLine  int
}

func billParseTrade(data []byte, limit int64) (*Bill, error) {
	text, err := billDecode(data, limit)
	if err != nil {
		return nil, err
	}
	p := &billTradeParser{text: text}
	if err := billScan(text, p); err != nil {
		return nil, err
	}
	if err := p.verify(); err != nil {
		return nil, err
	}
	return &p.bill, nil
}

func (p *billTradeParser) header(line int, s string) error {
	names, err := billSplitHeader(line, s)
	if err != nil {
		return err
	}
	p.cols = make([]billCol, len(names))
	for i, n := range names {
		c := billTradeColumn(n)
		if c == billColExtra {
			for _, m := range names[:i] {
				if m == n {
					return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
				}
			}
			p.extra++
		} else if p.has[c] {
			return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
		}
		p.has[c] = true
		p.cols[i] = c
	}
	for _, req := range []struct {
		c    billCol
		name string
	}{
		{billColTradeTime, "交易时间"},
		{billColTransactionID, "微信订单号"},
		{billColOutTradeNo, "商户订单号"},
		{billColTradeState, "交易状态"},
	} {
		if !p.has[req.c] {
			return &BillError{Line: line, Reason: "the detail header lacks column " + req.name}
		}
	}
	switch {
	case p.has[billColLegacyTotal] && (p.has[billColSettlementTotalFee] || p.has[billColTotalFee]):
		return &BillError{Line: line, Reason: "the detail header mixes 总金额 (pre-2018) with 应结订单金额 or 订单金额"}
	case !p.has[billColLegacyTotal] && !p.has[billColSettlementTotalFee]:
		return &BillError{Line: line, Reason: "the detail header lacks column 应结订单金额"}
	}
	p.bill.Header = names
	p.bill.Rows = make([]BillRow, 0, billRowCap(p.text, len(names)))
	return nil
}

func (p *billTradeParser) row(line int, s string) error {
	p.fields = billFields(s, p.fields)
	f := p.fields
	if len(f) != len(p.cols) {
		return billWidthError(line, s, len(f), len(p.cols))
	}
	p.bill.Rows = append(p.bill.Rows, BillRow{})
	r := &p.bill.Rows[len(p.bill.Rows)-1]
	for i, v := range f {
		var reason string
		switch p.cols[i] {
		case billColExtra:
			if r.Extra == nil {
				r.Extra = make(map[string]string, p.extra)
			}
			r.Extra[p.bill.Header[i]] = v
		case billColTradeTime:
			r.TradeTime, reason = billParseTime(v)
		case billColAppID:
			r.AppID = v
		case billColMchID:
			r.MchID = v
		case billColSubMchID:
			r.SubMchID = v
		case billColDeviceInfo:
			r.DeviceInfo = v
		case billColTransactionID:
			r.TransactionID = v
		case billColOutTradeNo:
			r.OutTradeNo = v
		case billColOpenID:
			r.OpenID = v
		case billColTradeType:
			r.TradeType = wxpay.TradeType(v)
		case billColTradeState:
			r.TradeState = wxpay.TradeState(v)
			if !r.TradeState.Valid() {
				reason = "not a known trade state"
			}
		case billColBankType:
			r.BankType = v
		case billColFeeType:
			r.FeeType = v
		case billColSettlementTotalFee:
			r.SettlementTotalFee, reason = billParseDecimal(v, 2)
		case billColCouponFee:
			r.CouponFee, reason = billParseDecimal(v, 2)
		case billColRefundID:
			r.RefundID = v
		case billColOutRefundNo:
			r.OutRefundNo = v
		case billColRefundFee:
			r.RefundFee, reason = billParseDecimal(v, 2)
		case billColRechargeCouponRefundFee:
			r.RechargeCouponRefundFee, reason = billParseDecimal(v, 2)
		case billColRefundType:
			r.RefundType = v
		case billColRefundStatus:
			r.RefundStatus = wxpay.RefundStatus(v)
		case billColBody:
			r.Body = v
		case billColAttach:
			r.Attach = v
		case billColServiceFee:
			var m int64
			m, reason = billParseDecimal(v, 5)
			r.ServiceFee = Millifen(m)
		case billColRate:
			r.Rate = v
		case billColTotalFee:
			r.TotalFee, reason = billParseDecimal(v, 2)
		case billColRefundRequestFee:
			r.RefundRequestFee, reason = billParseDecimal(v, 2)
		case billColRateRemark:
			r.RateRemark = v
		case billColRefundApplyTime:
			if v != "" {
				r.RefundApplyTime, reason = billParseTime(v)
			}
		case billColRefundSuccessTime:
			if v != "" {
				r.RefundSuccessTime, reason = billParseTime(v)
			}
		case billColLegacyTotal:
			r.TotalFee, reason = billParseDecimal(v, 2)
			r.SettlementTotalFee = r.TotalFee
		}
		if reason != "" {
			return billFieldError(line, p.bill.Header[i], v, reason)
		}
	}
	if r.TransactionID == "" && r.OutTradeNo == "" {
		return &BillError{Line: line, Reason: "the row has neither 微信订单号 nor 商户订单号"}
	}
	if !billAdd(&p.settlement, r.SettlementTotalFee) || !billAdd(&p.refund, r.RefundFee) ||
		!billAdd(&p.recharge, r.RechargeCouponRefundFee) || !billAdd(&p.total, r.TotalFee) ||
		!billAdd(&p.request, r.RefundRequestFee) {
		return &BillError{Line: line, Reason: "the amounts overflow when summed"}
	}
	return nil
}

func (p *billTradeParser) summaryHeader(line int, s string) error {
	if !billHasColumn(s, "总交易单数") {
		return &BillError{Line: line, Reason: "expected a backquoted detail row or the summary header (总交易单数,…)"}
	}
	names, err := billSplitHeader(line, s)
	if err != nil {
		return err
	}
	p.sumCols = make([]billSum, len(names))
	for i, n := range names {
		c := billSummaryColumn(n)
		if c == billSumExtra {
			for _, m := range names[:i] {
				if m == n {
					return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
				}
			}
		} else if p.sumHas[c] {
			return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
		}
		p.sumHas[c] = true
		p.sumCols[i] = c
	}
	switch {
	case p.sumHas[billSumLegacyTotal] && (p.sumHas[billSumSettlement] || p.sumHas[billSumTotal]):
		return &BillError{Line: line, Reason: "the summary header mixes 总交易额 (pre-2018) with 应结订单总金额 or 订单总金额"}
	case !p.sumHas[billSumLegacyTotal] && !p.sumHas[billSumSettlement]:
		return &BillError{Line: line, Reason: "the summary header lacks column 应结订单总金额"}
	case p.has[billColRefundFee] && !p.sumHas[billSumRefund]:
		return &BillError{Line: line, Reason: "the summary header lacks column 退款总金额"}
	}
	p.sumNames = names
	return nil
}

func (p *billTradeParser) summaryRow(line int, s string) error {
	p.sumLine = line
	f := billFields(s, p.fields)
	if len(f) != len(p.sumCols) {
		return billWidthError(line, s, len(f), len(p.sumCols))
	}
	sum := &p.bill.Summary
	for i, v := range f {
		var reason string
		switch p.sumCols[i] {
		case billSumExtra:
			if sum.Extra == nil {
				sum.Extra = make(map[string]string)
			}
			sum.Extra[p.sumNames[i]] = v
		case billSumCount:
			sum.Count, reason = billParseCount(v)
		case billSumSettlement:
			sum.SettlementTotalFee, reason = billParseDecimal(v, 2)
		case billSumRefund:
			sum.RefundFee, reason = billParseDecimal(v, 2)
		case billSumRechargeRefund:
			sum.RechargeCouponRefundFee, reason = billParseDecimal(v, 2)
		case billSumServiceFee:
			var m int64
			m, reason = billParseDecimal(v, 5)
			sum.ServiceFee = Millifen(m)
		case billSumTotal:
			sum.TotalFee, reason = billParseDecimal(v, 2)
		case billSumRefundRequest:
			sum.RefundRequestFee, reason = billParseDecimal(v, 2)
		case billSumLegacyTotal:
			sum.TotalFee, reason = billParseDecimal(v, 2)
			sum.SettlementTotalFee = sum.TotalFee
		}
		if reason != "" {
			return billFieldError(line, p.sumNames[i], v, reason)
		}
	}
	return nil
}

// verify checks the summary against the rows (reliability.md E2).
func (p *billTradeParser) verify() error {
	sum := &p.bill.Summary
	if sum.Count != len(p.bill.Rows) {
		return &BillError{Line: p.sumLine, Reason: fmt.Sprintf("总交易单数 is %d but the bill has %d detail rows", sum.Count, len(p.bill.Rows)), Err: ErrBillMismatch}
	}
	for i, c := range p.sumCols {
		var got, want int64
		switch c {
		case billSumSettlement:
			got, want = sum.SettlementTotalFee, p.settlement
		case billSumRefund:
			got, want = sum.RefundFee, p.refund
		case billSumRechargeRefund:
			got, want = sum.RechargeCouponRefundFee, p.recharge
		case billSumTotal, billSumLegacyTotal:
			got, want = sum.TotalFee, p.total
		case billSumRefundRequest:
			got, want = sum.RefundRequestFee, p.request
		default:
			continue
		}
		if got != want {
			return &BillError{Line: p.sumLine, Reason: fmt.Sprintf("%s is %s but the rows add up to %s", p.sumNames[i], FormatYuan(got), FormatYuan(want)), Err: ErrBillMismatch}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Fund-flow bill.

type billFlowCol uint8

const (
	billFlowExtra billFlowCol = iota
	billFlowTime
	billFlowBusinessNo
	billFlowFlowNo
	billFlowName
	billFlowKind
	billFlowDirection
	billFlowAmount
	billFlowBalance
	billFlowApplicant
	billFlowRemark
	billFlowVoucherNo
	billFlowN
)

func billFundFlowColumn(name string) billFlowCol {
	switch name {
	case "记账时间":
		return billFlowTime
	case "微信支付业务单号":
		return billFlowBusinessNo
	case "资金流水单号":
		return billFlowFlowNo
	case "业务名称":
		return billFlowName
	case "业务类型":
		return billFlowKind
	case "收支类型":
		return billFlowDirection
	case "收支金额（元）", "收支金额(元)":
		return billFlowAmount
	case "账户结余（元）", "账户结余(元)":
		return billFlowBalance
	case "资金变更提交申请人":
		return billFlowApplicant
	case "备注":
		return billFlowRemark
	case "业务凭证号":
		return billFlowVoucherNo
	}
	return billFlowExtra
}

type billFlowSum uint8

const (
	billFlowSumExtra billFlowSum = iota
	billFlowSumCount
	billFlowSumIncomeCount
	billFlowSumIncome
	billFlowSumExpenseCount
	billFlowSumExpense
	billFlowSumN
)

func billFundFlowSummaryColumn(name string) billFlowSum {
	switch name {
	case "资金流水总笔数":
		return billFlowSumCount
	case "收入笔数":
		return billFlowSumIncomeCount
	case "收入金额":
		return billFlowSumIncome
	case "支出笔数":
		return billFlowSumExpenseCount
	case "支出金额":
		return billFlowSumExpense
	}
	return billFlowSumExtra
}

// billFlowParser is the billSink of ParseFundFlow.
type billFlowParser struct {
	text   string
	bill   FundFlowBill
	cols   []billFlowCol
	extra  int
	fields []string

	incomeCount, expenseCount int
	income, expense           int64

	sumNames []string
	sumCols  []billFlowSum
	sumLine  int
}

func billParseFundFlow(data []byte, limit int64) (*FundFlowBill, error) {
	text, err := billDecode(data, limit)
	if err != nil {
		return nil, err
	}
	p := &billFlowParser{text: text}
	if err := billScan(text, p); err != nil {
		return nil, err
	}
	if err := p.verify(); err != nil {
		return nil, err
	}
	return &p.bill, nil
}

func (p *billFlowParser) header(line int, s string) error {
	names, err := billSplitHeader(line, s)
	if err != nil {
		return err
	}
	var has [billFlowN]bool
	p.cols = make([]billFlowCol, len(names))
	for i, n := range names {
		c := billFundFlowColumn(n)
		if c == billFlowExtra {
			for _, m := range names[:i] {
				if m == n {
					return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
				}
			}
			p.extra++
		} else if has[c] {
			return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
		}
		has[c] = true
		p.cols[i] = c
	}
	for _, req := range []struct {
		c    billFlowCol
		name string
	}{
		{billFlowTime, "记账时间"},
		{billFlowBusinessNo, "微信支付业务单号"},
		{billFlowFlowNo, "资金流水单号"},
		{billFlowDirection, "收支类型"},
		{billFlowAmount, "收支金额（元）"},
	} {
		if !has[req.c] {
			return &BillError{Line: line, Reason: "the detail header lacks column " + req.name}
		}
	}
	p.bill.Header = names
	p.bill.Rows = make([]FundFlowRow, 0, billRowCap(p.text, len(names)))
	return nil
}

func (p *billFlowParser) row(line int, s string) error {
	p.fields = billFields(s, p.fields)
	f := p.fields
	if len(f) != len(p.cols) {
		return billWidthError(line, s, len(f), len(p.cols))
	}
	p.bill.Rows = append(p.bill.Rows, FundFlowRow{})
	r := &p.bill.Rows[len(p.bill.Rows)-1]
	for i, v := range f {
		var reason string
		switch p.cols[i] {
		case billFlowExtra:
			if r.Extra == nil {
				r.Extra = make(map[string]string, p.extra)
			}
			r.Extra[p.bill.Header[i]] = v
		case billFlowTime:
			r.Time, reason = billParseTime(v)
		case billFlowBusinessNo:
			r.BusinessNo = v
		case billFlowFlowNo:
			r.FlowNo = v
		case billFlowName:
			r.Name = v
		case billFlowKind:
			r.Kind = v
		case billFlowDirection:
			r.Direction = v
			if v != FundFlowIncome && v != FundFlowExpense {
				reason = "neither 收入 nor 支出"
			}
		case billFlowAmount:
			r.Amount, reason = billParseDecimal(v, 2)
		case billFlowBalance:
			r.Balance, reason = billParseDecimal(v, 2)
		case billFlowApplicant:
			r.Applicant = v
		case billFlowRemark:
			r.Remark = v
		case billFlowVoucherNo:
			r.VoucherNo = v
		}
		if reason != "" {
			return billFieldError(line, p.bill.Header[i], v, reason)
		}
	}
	var ok bool
	if r.Direction == FundFlowIncome {
		p.incomeCount++
		ok = billAdd(&p.income, r.Amount)
	} else {
		p.expenseCount++
		ok = billAdd(&p.expense, r.Amount)
	}
	if !ok {
		return &BillError{Line: line, Reason: "the amounts overflow when summed"}
	}
	return nil
}

func (p *billFlowParser) summaryHeader(line int, s string) error {
	if !billHasColumn(s, "资金流水总笔数") {
		return &BillError{Line: line, Reason: "expected a backquoted detail row or the summary header (资金流水总笔数,…)"}
	}
	names, err := billSplitHeader(line, s)
	if err != nil {
		return err
	}
	var has [billFlowSumN]bool
	p.sumCols = make([]billFlowSum, len(names))
	for i, n := range names {
		c := billFundFlowSummaryColumn(n)
		if c == billFlowSumExtra {
			for _, m := range names[:i] {
				if m == n {
					return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
				}
			}
		} else if has[c] {
			return &BillError{Line: line, Reason: fmt.Sprintf("column %s appears twice", billClip(n))}
		}
		has[c] = true
		p.sumCols[i] = c
	}
	for _, req := range []struct {
		c    billFlowSum
		name string
	}{
		{billFlowSumIncomeCount, "收入笔数"},
		{billFlowSumIncome, "收入金额"},
		{billFlowSumExpenseCount, "支出笔数"},
		{billFlowSumExpense, "支出金额"},
	} {
		if !has[req.c] {
			return &BillError{Line: line, Reason: "the summary header lacks column " + req.name}
		}
	}
	p.sumNames = names
	return nil
}

func (p *billFlowParser) summaryRow(line int, s string) error {
	p.sumLine = line
	f := billFields(s, p.fields)
	if len(f) != len(p.sumCols) {
		return billWidthError(line, s, len(f), len(p.sumCols))
	}
	sum := &p.bill.Summary
	for i, v := range f {
		var reason string
		switch p.sumCols[i] {
		case billFlowSumExtra:
			if sum.Extra == nil {
				sum.Extra = make(map[string]string)
			}
			sum.Extra[p.sumNames[i]] = v
		case billFlowSumCount:
			sum.Count, reason = billParseCount(v)
		case billFlowSumIncomeCount:
			sum.IncomeCount, reason = billParseCount(v)
		case billFlowSumIncome:
			sum.Income, reason = billParseDecimal(v, 2)
		case billFlowSumExpenseCount:
			sum.ExpenseCount, reason = billParseCount(v)
		case billFlowSumExpense:
			sum.Expense, reason = billParseDecimal(v, 2)
		}
		if reason != "" {
			return billFieldError(line, p.sumNames[i], v, reason)
		}
	}
	return nil
}

func (p *billFlowParser) verify() error {
	sum := &p.bill.Summary
	mismatch := func(format string, args ...any) error {
		return &BillError{Line: p.sumLine, Reason: fmt.Sprintf(format, args...), Err: ErrBillMismatch}
	}
	switch {
	case sum.Count != len(p.bill.Rows):
		return mismatch("资金流水总笔数 is %d but the bill has %d detail rows", sum.Count, len(p.bill.Rows))
	case sum.IncomeCount != p.incomeCount:
		return mismatch("收入笔数 is %d but the bill has %d income rows", sum.IncomeCount, p.incomeCount)
	case sum.ExpenseCount != p.expenseCount:
		return mismatch("支出笔数 is %d but the bill has %d expense rows", sum.ExpenseCount, p.expenseCount)
	case sum.Income != p.income:
		return mismatch("收入金额 is %s but the income rows add up to %s", FormatYuan(sum.Income), FormatYuan(p.income))
	case sum.Expense != p.expense:
		return mismatch("支出金额 is %s but the expense rows add up to %s", FormatYuan(sum.Expense), FormatYuan(p.expense))
	}
	return nil
}
