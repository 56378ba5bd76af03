package apiv2

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func billGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bill", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func billGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func cst(s string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, s, wxpay.China)
	if err != nil {
		panic(err)
	}
	return t
}

// billCheckErr asserts err is a *BillError on line (unless line < 0), that
// it matches sentinel (unless nil), and that its text contains substr.
func billCheckErr(t *testing.T, err error, line int, sentinel error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error (line %d, %v, %q), got nil", line, sentinel, substr)
	}
	var be *BillError
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *BillError", err, err)
	}
	if line >= 0 && be.Line != line {
		t.Errorf("error %q: line %d, want %d", err, be.Line, line)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("error %q: does not match %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q: want it to contain %q", err, substr)
	}
}

// ---------------------------------------------------------------------------
// Money.

func TestParseYuan(t *testing.T) {
	ok := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"12", 1200},
		{"0.1", 10},
		{"0.01", 1},
		{"0.00", 0},
		{"123.45", 12345},
		{"-0.05", -5},
		{"-0", 0},
		{"-0.00", 0},
		{"007.50", 750},
		{"1000000.00", 100000000},
		{"92233720368547758.07", math.MaxInt64},
		{"-92233720368547758.08", math.MinInt64},
	}
	for _, c := range ok {
		got, err := ParseYuan(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", "-", "+1", " 1", "1 ", "1.001", "0.000", "1e2", "1E2", "1.2.3", "1..2",
		".5", "5.", "-.5", "--1", "1-", "0x10", "１", "1,000.00", "NaN", "Inf",
		"92233720368547758.08", "-92233720368547758.09", "99999999999999999999",
		"100000000000000000000000000000.00",
	}
	for _, s := range bad {
		if got, err := ParseYuan(s); err == nil {
			t.Errorf("ParseYuan(%q) = %d, want an error", s, got)
		} else if !strings.HasPrefix(err.Error(), "apiv2: invalid yuan amount") {
			t.Errorf("ParseYuan(%q): error %q", s, err)
		}
	}
}

func TestFormatYuan(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{10, "0.10"},
		{100, "1.00"},
		{12345, "123.45"},
		{-5, "-0.05"},
		{-12345, "-123.45"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	} {
		if got := FormatYuan(c.in); got != c.want {
			t.Errorf("FormatYuan(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMillifenString(t *testing.T) {
	for _, c := range []struct {
		in   Millifen
		want string
	}{
		{0, "0.00000"}, {600, "0.00600"}, {-54000, "-0.54000"}, {122076, "1.22076"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("Millifen(%d).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestYuanRoundTrip: ParseYuan(FormatYuan(v)) == v over random amounts of
// every magnitude, and the formatted text is canonical (two decimals).
func TestYuanRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, -1, 99, 100, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for range 100000 {
		v := r.Int64N(1 << r.IntN(63))
		if r.IntN(2) == 0 {
			v = -v
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		s := FormatYuan(v)
		got, err := ParseYuan(s)
		if err != nil || got != v {
			t.Fatalf("ParseYuan(FormatYuan(%d) = %q) = %d, %v", v, s, got, err)
		}
		if i := strings.IndexByte(s, '.'); i < 0 || len(s)-i != 3 {
			t.Fatalf("FormatYuan(%d) = %q, not two decimals", v, s)
		}
	}
}

// ---------------------------------------------------------------------------
// Golden bills.

func TestParseBillAll(t *testing.T) {
	b, err := ParseBill(billGolden(t, "all.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Header) != 27 || b.Header[0] != "交易时间" || b.Header[26] != "费率备注" {
		t.Errorf("Header = %q", b.Header)
	}
	if len(b.Rows) != 6 {
		t.Fatalf("%d rows, want 6", len(b.Rows))
	}
	want0 := BillRow{
		TradeTime:     cst("2026-11-27 09:15:02"),
		AppID:         "wx2421b1c4370ec43b",
		MchID:         "1900000109",
		DeviceInfo:    "013467007045764",
		TransactionID: "4200001234202611270000000001",
		OutTradeNo:    "ORDER-0001",
		OpenID:        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		TradeType:     wxpay.TradeTypeJSAPI,
		TradeState:    wxpay.TradeStateSuccess,
		BankType:      "CMB_DEBIT",
		FeeType:       "CNY",

		SettlementTotalFee: 100,
		RefundID:           "0",
		OutRefundNo:        "0",
		Body:               "小程序-咖啡",
		ServiceFee:         600,
		Rate:               "0.60%",
		TotalFee:           100,
	}
	if !reflect.DeepEqual(b.Rows[0], want0) {
		t.Errorf("row 0:\n got %+v\nwant %+v", b.Rows[0], want0)
	}
	if r := b.Rows[1]; r.SettlementTotalFee != 12345 || r.CouponFee != 200 || r.TotalFee != 12545 || r.ServiceFee != 74070 || r.Attach != "table=7" {
		t.Errorf("row 1 = %+v", r)
	}
	if r := b.Rows[2]; r.Body != "咖啡,大杯" || r.SettlementTotalFee != 1 || r.ServiceFee != 6 || r.TradeType != wxpay.TradeTypeNative {
		t.Errorf("row 2 (comma in 商品名称) = %+v", r)
	}
	want4 := BillRow{
		TradeTime:     cst("2026-11-27 15:30:05"),
		AppID:         "wx2421b1c4370ec43b",
		MchID:         "1900000109",
		TransactionID: "4200001234202611270000000001",
		OutTradeNo:    "ORDER-0001",
		OpenID:        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		TradeType:     wxpay.TradeTypeJSAPI,
		TradeState:    wxpay.TradeStateRefund,
		BankType:      "CMB_DEBIT",
		FeeType:       "CNY",

		RefundID:         "50000000012026112700000000001",
		OutRefundNo:      "REFUND-0001",
		RefundFee:        100,
		RefundType:       "ORIGINAL",
		RefundStatus:     wxpay.RefundStatusSuccess,
		Body:             "小程序-咖啡",
		ServiceFee:       -600,
		Rate:             "0.60%",
		RefundRequestFee: 100,
	}
	if !reflect.DeepEqual(b.Rows[4], want4) {
		t.Errorf("row 4:\n got %+v\nwant %+v", b.Rows[4], want4)
	}
	wantSum := BillSummary{Count: 6, SettlementTotalFee: 21246, RefundFee: 900, ServiceFee: 122076, TotalFee: 21446, RefundRequestFee: 900}
	if !reflect.DeepEqual(b.Summary, wantSum) {
		t.Errorf("summary = %+v, want %+v", b.Summary, wantSum)
	}
	if got := b.Rows[0].TradeTime.Format(time.RFC3339); got != "2026-11-27T09:15:02+08:00" {
		t.Errorf("TradeTime = %s, want China Standard Time", got)
	}
}

func TestParseBillGoldenVariants(t *testing.T) {
	for _, c := range []struct {
		file    string
		summary BillSummary
		check   func(t *testing.T, b *Bill)
	}{
		{
			file:    "success.txt",
			summary: BillSummary{Count: 4, SettlementTotalFee: 21246, ServiceFee: 127476, TotalFee: 21446},
			check: func(t *testing.T, b *Bill) {
				if len(b.Header) != 20 {
					t.Errorf("%d columns, want 20", len(b.Header))
				}
				for _, r := range b.Rows {
					if r.RefundID != "" || r.RefundFee != 0 || r.TradeState != wxpay.TradeStateSuccess || r.Extra != nil {
						t.Errorf("row %+v", r)
					}
				}
			},
		},
		{
			file:    "refund.txt",
			summary: BillSummary{Count: 2, RefundFee: 900, ServiceFee: -5400, RefundRequestFee: 900},
			check: func(t *testing.T, b *Bill) {
				r := b.Rows[1]
				if !r.TradeTime.Equal(cst("2026-11-27 12:00:01")) || !r.RefundApplyTime.Equal(cst("2026-11-27 18:00:00")) ||
					!r.RefundSuccessTime.Equal(cst("2026-11-27 18:00:09")) || r.RefundFee != 800 || r.OutRefundNo != "REFUND-0002" {
					t.Errorf("row 1 = %+v", r)
				}
			},
		},
		{
			file:    "legacy_all.txt",
			summary: BillSummary{Count: 3, SettlementTotalFee: 1500, RefundFee: 1000, RechargeCouponRefundFee: 50, ServiceFee: 3000, TotalFee: 1500},
			check: func(t *testing.T, b *Bill) {
				r := b.Rows[0]
				if r.SubMchID != "0" || r.TotalFee != 1000 || r.SettlementTotalFee != 1000 || r.CouponFee != 50 || r.DeviceInfo != "WEB" {
					t.Errorf("row 0 = %+v", r)
				}
				if r := b.Rows[2]; r.RechargeCouponRefundFee != 50 || r.RefundFee != 1000 || r.TotalFee != 0 {
					t.Errorf("row 2 = %+v", r)
				}
			},
		},
		{
			file:    "legacy_refund.txt",
			summary: BillSummary{Count: 2, RefundFee: 3},
			check: func(t *testing.T, b *Bill) {
				if r := b.Rows[0]; !r.RefundSuccessTime.Equal(cst("2018-08-21 18:13:12")) || r.SubMchID != "1900000201" {
					t.Errorf("row 0 = %+v", r)
				}
				if r := b.Rows[1]; !r.RefundSuccessTime.IsZero() || r.RefundApplyTime.IsZero() || r.RefundStatus != wxpay.RefundStatusProcessing {
					t.Errorf("row 1 = %+v, want an empty 退款成功时间", r)
				}
			},
		},
	} {
		t.Run(c.file, func(t *testing.T) {
			b, err := ParseBill(billGolden(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.Summary, c.summary) {
				t.Errorf("summary = %+v, want %+v", b.Summary, c.summary)
			}
			if len(b.Rows) != c.summary.Count {
				t.Errorf("%d rows, want %d", len(b.Rows), c.summary.Count)
			}
			c.check(t, b)
		})
	}
}

// TestParseBillProtocolExample: the example of protocol.md §11 is
// inconsistent (its summary says 12 orders and 0.06 yuan for one row of
// 0.01 yuan), so the strict parser must reject it with a count error.
func TestParseBillProtocolExample(t *testing.T) {
	_, err := ParseBill(billGolden(t, "protocol_example.txt"))
	billCheckErr(t, err, 4, ErrBillMismatch, "总交易单数 is 12 but the bill has 1 detail rows")

	// With the count fixed, the sums still disagree.
	fixed := bytes.Replace(billGolden(t, "protocol_example.txt"), []byte("`12,"), []byte("`1,"), 1)
	_, err = ParseBill(fixed)
	billCheckErr(t, err, 4, ErrBillMismatch, "应结订单总金额 is 0.06 but the rows add up to 0.01")

	// With the totals of its one row, it parses.
	consistent := bytes.Replace(billGolden(t, "protocol_example.txt"),
		[]byte("`12,`0.06,`0.06,`0.00,`0.00000,`0.06,`0.06"), []byte("`1,`0.01,`0.00,`0.00,`0.00000,`0.01,`0.00"), 1)
	b, err := ParseBill(consistent)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.Rows[0]; r.SubMchID != "176531292" || r.RateRemark != "" || r.Rate != "0.90%" || r.Body != "微信云托管支付测试" {
		t.Errorf("row = %+v", r)
	}
}

func TestParseBillLineEndingsBOMAndGzip(t *testing.T) {
	crlf := billGolden(t, "all.txt")
	want, err := ParseBill(crlf)
	if err != nil {
		t.Fatal(err)
	}
	lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
	mixed := bytes.Replace(lf, []byte("\n"), []byte("\r\n"), 3)
	noFinal := bytes.TrimSuffix(crlf, []byte("\r\n"))
	bom := append([]byte("\uFEFF"), crlf...)
	trailing := append(append([]byte{}, crlf...), "\r\n\r\n\n"...)
	for name, data := range map[string][]byte{
		"LF":                 lf,
		"mixed":              mixed,
		"no final newline":   noFinal,
		"BOM":                bom,
		"trailing empties":   trailing,
		"gzip":               billGzip(t, crlf),
		"gzip LF BOM":        billGzip(t, append([]byte("\uFEFF"), lf...)),
		"gzip multi-member":  append(billGzip(t, crlf[:100]), billGzip(t, crlf[100:])...),
		"gzip of empty tail": append(billGzip(t, crlf), billGzip(t, nil)...),
	} {
		got, err := ParseBill(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: result differs from the CRLF bill", name)
		}
	}
}

func TestParseBillGzipErrors(t *testing.T) {
	all := billGolden(t, "all.txt")
	z := billGzip(t, all)

	// Every proper prefix of a gzip bill is an error: the CRC-32 and ISIZE
	// trailer make truncation visible.
	for i := 0; i < len(z); i++ {
		_, err := ParseBill(z[:i])
		if err == nil {
			t.Fatalf("gzip prefix of %d/%d bytes parsed", i, len(z))
		}
		var be *BillError
		if !errors.As(err, &be) {
			t.Fatalf("prefix %d: %T %v", i, err, err)
		}
		if i >= 10 && i < len(z)-8 && !errors.Is(err, ErrBillTruncated) {
			t.Errorf("prefix %d: %v, want ErrBillTruncated", i, err)
		}
	}

	corrupt := bytes.Clone(z)
	corrupt[len(corrupt)-6] ^= 0xff // CRC-32
	_, err := ParseBill(corrupt)
	billCheckErr(t, err, 0, gzip.ErrChecksum, "corrupt gzip stream")

	_, err = ParseBill(append(bytes.Clone(z), "garbage"...))
	billCheckErr(t, err, 0, nil, "7 bytes of data after the gzip stream")
	_, err = ParseBill(append(bytes.Clone(z), 0, 0, 0, 0))
	billCheckErr(t, err, 0, nil, "4 bytes of data after the gzip stream")
	_, err = ParseBill(append(bytes.Clone(z), z[:20]...))
	billCheckErr(t, err, 0, ErrBillTruncated, "gzip stream cut short")

	// The size cap, with a small limit (MaxBillSize itself is 256 MiB).
	if _, err := billParseTrade(z, int64(len(all))); err != nil {
		t.Errorf("bill of exactly the limit: %v", err)
	}
	_, err = billParseTrade(z, int64(len(all)-1))
	billCheckErr(t, err, 0, nil, "larger than")
	bomb := billGzip(t, make([]byte, 4<<20))
	_, err = billParseTrade(bomb, 1<<20)
	billCheckErr(t, err, 0, nil, "larger than 1048576 bytes")
}

// TestParseBillTruncatedPrefixes: a plain-text download cut anywhere either
// fails or, when only trailing zeros of the last total are lost, yields the
// very same bill. Truncation never yields fewer rows.
func TestParseBillTruncatedPrefixes(t *testing.T) {
	for _, name := range []string{"all.txt", "refund.txt", "success.txt"} {
		data := billGolden(t, name)
		want, err := ParseBill(data)
		if err != nil {
			t.Fatal(err)
		}
		summaryAt := bytes.LastIndexByte(bytes.TrimRight(data, "\r\n"), '\n') + 1
		for i := 0; i < len(data); i++ {
			got, err := ParseBill(data[:i])
			if err != nil {
				var be *BillError
				if !errors.As(err, &be) {
					t.Fatalf("%s prefix %d: %T %v", name, i, err, err)
				}
				continue
			}
			if i <= summaryAt || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: prefix of %d bytes parsed to a different bill", name, i)
			}
		}
	}
}

// billEdit applies edit to the lines of all.txt and joins them with CRLF.
func billEdit(t *testing.T, edit func(lines []string) []string) []byte {
	lines := strings.Split(strings.TrimSuffix(string(billGolden(t, "all.txt")), "\r\n"), "\r\n")
	return []byte(strings.Join(edit(lines), "\r\n") + "\r\n")
}

func TestParseBillStrict(t *testing.T) {
	// all.txt: line 1 header, 2–7 rows, 8 summary header, 9 summary row.
	replace := func(line int, old, new string) func([]string) []string {
		return func(l []string) []string {
			if !strings.Contains(l[line-1], old) {
				panic(old)
			}
			l[line-1] = strings.Replace(l[line-1], old, new, 1)
			return l
		}
	}
	cases := []struct {
		name     string
		edit     func([]string) []string
		line     int
		sentinel error
		substr   string
	}{
		{"extra field", func(l []string) []string { l[2] += ",`x"; return l }, 3, nil, "the row has 28 fields, its header 27"},
		{"missing field", func(l []string) []string { l[2] = strings.TrimSuffix(l[2], ",`"); return l }, 3, nil, "the row has 26 fields, its header 27"},
		{"field without backquote", replace(2, ",`JSAPI", ",JSAPI"), 2, nil, "field 9 does not start with a backquote"},
		{"row without leading backquote", func(l []string) []string { l[3] = l[3][1:]; return l }, 4, nil, "expected a backquoted detail row or the summary header"},
		{"no summary", func(l []string) []string { return l[:7] }, 7, ErrBillTruncated, "ends before its summary"},
		{"no summary row", func(l []string) []string { return l[:8] }, 8, ErrBillTruncated, "ends before its summary row"},
		{"blank summary row", func(l []string) []string { l[8] = ""; return l }, 9, ErrBillTruncated, "the summary row is missing"},
		{"summary row not backquoted", func(l []string) []string { l[8] = l[8][1:]; return l }, 9, nil, "expected the backquoted summary row"},
		{"header only", func(l []string) []string { return l[:1] }, 1, ErrBillTruncated, "ends before its summary"},
		{"second summary row", func(l []string) []string { return append(l, l[8]) }, 10, nil, "a second summary row"},
		{"data after the summary", func(l []string) []string { return append(l, "", "garbage") }, 11, nil, "unexpected line after the summary row"},
		{"empty line in rows", func(l []string) []string { return append(l[:3], append([]string{""}, l[3:]...)...) }, 4, nil, "empty line before the summary"},
		{"empty first line", func(l []string) []string { return append([]string{""}, l...) }, 1, nil, "empty line"},
		{"missing detail header", func(l []string) []string { return l[1:] }, 1, nil, "the detail header is missing"},
		{"count too high", replace(9, "`6,", "`7,"), 9, ErrBillMismatch, "总交易单数 is 7 but the bill has 6 detail rows"},
		{"count too low", replace(9, "`6,", "`5,"), 9, ErrBillMismatch, "总交易单数 is 5"},
		{"row dropped", func(l []string) []string { return append(l[:3], l[4:]...) }, 8, ErrBillMismatch, "总交易单数 is 6 but the bill has 5"},
		{"settlement total", replace(9, "`212.46", "`212.47"), 9, ErrBillMismatch, "应结订单总金额 is 212.47 but the rows add up to 212.46"},
		{"refund total", replace(9, "`9.00,", "`9.01,"), 9, ErrBillMismatch, "退款总金额 is 9.01 but the rows add up to 9.00"},
		{"recharge refund total", replace(9, "`0.00,", "`0.01,"), 9, ErrBillMismatch, "充值券退款总金额 is 0.01"},
		{"order total", replace(9, "`214.46", "`214.45"), 9, ErrBillMismatch, "订单总金额 is 214.45"},
		{"refund request total", func(l []string) []string { l[8] = strings.TrimSuffix(l[8], "9.00") + "9.10"; return l }, 9, ErrBillMismatch, "申请退款总金额 is 9.10"},
		{"row amount off by one fen", replace(2, "`1.00,`0.00,`0,", "`1.01,`0.00,`0,"), 9, ErrBillMismatch, "应结订单总金额 is 212.46 but the rows add up to 212.47"},
		{"refund amount off by one fen", replace(7, "`8.00,", "`7.99,"), 9, ErrBillMismatch, "退款总金额 is 9.00 but the rows add up to 8.99"},
		{"missing required column", replace(1, "交易时间", "时间"), 1, nil, "the detail header lacks column 交易时间"},
		{"missing amount column", replace(1, "应结订单金额", "应结金额"), 1, nil, "lacks column 应结订单金额"},
		{"duplicate column", replace(1, "设备号", "商户号"), 1, nil, "column 商户号 appears twice"},
		{"duplicate unknown column", func(l []string) []string {
			l[0] = strings.Replace(l[0], "设备号", "X", 1)
			l[0] = strings.Replace(l[0], "费率备注", "X", 1)
			return l
		}, 1, nil, "column X appears twice"},
		{"mixed formats", replace(1, "订单金额,申请", "总金额,申请"), 1, nil, "mixes 总金额"},
		{"empty column name", func(l []string) []string { l[0] += ","; return l }, 1, nil, "column 28 has no name"},
		{"three decimals", replace(3, "`123.45,", "`123.456,"), 3, nil, `应结订单金额 "123.456": more than 2 decimals`},
		{"exponent", replace(3, "`123.45,", "`1.2345e2,"), 3, nil, `应结订单金额 "1.2345e2": not a decimal number`},
		{"plus sign", replace(3, "`123.45,", "`+123.45,"), 3, nil, "not a decimal number"},
		{"empty amount", replace(3, "`123.45,", "`,"), 3, nil, `应结订单金额 "": empty`},
		{"huge amount", replace(3, "`123.45,", "`99999999999999999999,"), 3, nil, "out of range"},
		{"fee with six decimals", replace(2, "`0.00600,", "`0.006000,"), 2, nil, "手续费 \"0.006000\": more than 5 decimals"},
		{"impossible date", replace(2, "2026-11-27 09:15:02", "2026-11-31 09:15:02"), 2, nil, "not a valid date"},
		{"slashed date", replace(2, "2026-11-27 09:15:02", "2026/11/27 09:15:02"), 2, nil, "not yyyy-MM-dd HH:mm:ss"},
		{"hour 24", replace(2, "2026-11-27 09:15:02", "2026-11-27 24:00:00"), 2, nil, "not a valid date"},
		{"empty trade time", replace(2, "`2026-11-27 09:15:02", "`"), 2, nil, "交易时间"},
		{"unknown trade state", replace(2, "`SUCCESS,`CMB", "`PAID,`CMB"), 2, nil, `交易状态 "PAID": not a known trade state`},
		{"no order numbers", replace(4, "`4200001234202611270000000003,`ORDER-0003,", "`,`,"), 4, nil, "neither 微信订单号 nor 商户订单号"},
		{"summary width", func(l []string) []string { l[8] += ",`0"; return l }, 9, nil, "the row has 8 fields, its header 7"},
		{"summary lacks refund total", func(l []string) []string {
			l[7] = strings.Replace(l[7], "退款总金额,充值券", "充值券", 1)
			l[8] = strings.Replace(l[8], "`9.00,`0.00,", "`0.00,", 1)
			return l
		}, 8, nil, "the summary header lacks column 退款总金额"},
		{"summary lacks settlement total", replace(8, "应结订单总金额", "应结"), 8, nil, "lacks column 应结订单总金额"},
		{"fractional count", replace(9, "`6,", "`6.5,"), 9, nil, "not a whole count"},
		{"negative count", replace(9, "`6,", "`-6,"), 9, nil, "not a count"},
		{"bad summary amount", replace(9, "`212.46", "`212,46"), 9, nil, ""},
		{"invalid UTF-8", replace(5, "App-会员", "App-\xff"), 5, nil, "invalid UTF-8"},
		{"xml", func([]string) []string {
			return []string{"<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg></xml>"}
		}, 1, ErrNotBill, "not a bill"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBill(billEdit(t, c.edit))
			billCheckErr(t, err, c.line, c.sentinel, c.substr)
		})
	}
}

func TestParseBillEmptyAndXML(t *testing.T) {
	_, err := ParseBill(nil)
	billCheckErr(t, err, 0, ErrBillTruncated, "empty bill")
	_, err = ParseBill([]byte("\uFEFF"))
	billCheckErr(t, err, 0, ErrBillTruncated, "empty bill")
	_, err = ParseBill([]byte{0x1f, 0x8b})
	billCheckErr(t, err, 0, ErrBillTruncated, "gzip stream cut short")
	_, err = ParseBill(billGzip(t, nil))
	billCheckErr(t, err, 0, ErrBillTruncated, "empty bill")
	for _, x := range []string{
		"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>",
		"  \r\n<xml></xml>",
		`<?xml version="1.0"?><xml/>`,
	} {
		_, err := ParseBill([]byte(x))
		billCheckErr(t, err, 1, ErrNotBill, "not a bill")
		_, err = ParseFundFlow(billGzip(t, []byte(x)))
		billCheckErr(t, err, 1, ErrNotBill, "not a bill")
	}
}

// A well-formed bill without detail rows (a REFUND bill of a day without
// refunds) is valid: its summary says 0.
func TestParseBillNoRows(t *testing.T) {
	data := billEdit(t, func(l []string) []string {
		return []string{l[0], l[7], "`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00"}
	})
	b, err := ParseBill(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rows) != 0 || b.Summary.Count != 0 {
		t.Errorf("bill = %+v", b)
	}
}

func TestParseBillExtraColumns(t *testing.T) {
	data := billEdit(t, func(l []string) []string {
		l[0] = strings.Replace(l[0], "商户号,", "商户号,门店编号,", 1) + ",营销详情"
		for i := 1; i <= 6; i++ {
			l[i] = strings.Replace(l[i], "`1900000109,", "`1900000109,`S"+strconv.Itoa(i)+",", 1) + ",`"
		}
		l[7] += ",新总额"
		l[8] += ",`1.23"
		return l
	})
	b, err := ParseBill(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"门店编号": "S3", "营销详情": ""}
	if r := b.Rows[2]; !reflect.DeepEqual(r.Extra, want) || r.Body != "咖啡,大杯" || r.MchID != "1900000109" || r.DeviceInfo != "" {
		t.Errorf("row 2 = %+v, Extra want %v", r, want)
	}
	if got := b.Summary.Extra; !reflect.DeepEqual(got, map[string]string{"新总额": "1.23"}) {
		t.Errorf("summary Extra = %v", got)
	}
	if len(b.Header) != 29 || b.Header[3] != "门店编号" {
		t.Errorf("Header = %q", b.Header)
	}
}

// Columns are found by name: the same bill with its columns shuffled
// parses to the same rows.
func TestParseBillColumnOrder(t *testing.T) {
	want, err := ParseBill(billGolden(t, "all.txt"))
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(3, 4)).Perm(27)
	data := billEdit(t, func(l []string) []string {
		shuffle := func(fields []string) []string {
			out := make([]string, len(fields))
			for i, j := range perm {
				out[i] = fields[j]
			}
			return out
		}
		l[0] = strings.Join(shuffle(strings.Split(l[0], ",")), ",")
		for i := 1; i <= 6; i++ {
			l[i] = "`" + strings.Join(shuffle(strings.Split(l[i][1:], ",`")), ",`")
		}
		return l
	})
	got, err := ParseBill(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Rows, want.Rows) || !reflect.DeepEqual(got.Summary, want.Summary) {
		t.Error("shuffled columns give different rows")
	}
}

// ---------------------------------------------------------------------------
// Fund flow.

func TestParseFundFlow(t *testing.T) {
	data := billGolden(t, "fundflow.txt")
	b, err := ParseFundFlow(data)
	if err != nil {
		t.Fatal(err)
	}
	wantSum := FundFlowSummary{Count: 5, IncomeCount: 3, Income: 12446, ExpenseCount: 2, Expense: 175}
	if !reflect.DeepEqual(b.Summary, wantSum) {
		t.Errorf("summary = %+v, want %+v", b.Summary, wantSum)
	}
	want2 := FundFlowRow{
		Time:       cst("2026-11-27 15:30:05"),
		BusinessNo: "50000000012026112700000000001",
		FlowNo:     "1900000109202611270000000003",
		Name:       "退款",
		Kind:       "退款",
		Direction:  FundFlowExpense,
		Amount:     100,
		Balance:    22345,
		Applicant:  "system",
		Remark:     "缺货",
		VoucherNo:  "REF4200001234202611270000000001",
	}
	if len(b.Rows) != 5 || !reflect.DeepEqual(b.Rows[2], want2) {
		t.Fatalf("rows = %+v", b.Rows)
	}
	// The balance runs through the rows.
	bal := b.Rows[0].Balance - b.Rows[0].Amount
	for _, r := range b.Rows {
		if r.Direction == FundFlowIncome {
			bal += r.Amount
		} else {
			bal -= r.Amount
		}
		if bal != r.Balance {
			t.Errorf("balance %d after %+v", bal, r)
		}
	}

	gz, err := ParseFundFlow(billGzip(t, append([]byte("\uFEFF"), data...)))
	if err != nil || !reflect.DeepEqual(gz, b) {
		t.Errorf("gzip+BOM: %v", err)
	}
	// Half-width parentheses are accepted too.
	half := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("（"), []byte("(")), []byte("）"), []byte(")"))
	if got, err := ParseFundFlow(half); err != nil || !reflect.DeepEqual(got.Rows, b.Rows) {
		t.Errorf("half-width header: %v", err)
	}
	// A trade bill is not a fund-flow bill, and the other way round.
	_, err = ParseFundFlow(billGolden(t, "all.txt"))
	billCheckErr(t, err, 1, nil, "lacks column 记账时间")
	_, err = ParseBill(data)
	billCheckErr(t, err, 1, nil, "lacks column 交易时间")
}

func TestParseFundFlowStrict(t *testing.T) {
	// fundflow.txt: line 1 header, 2–6 rows, 7 summary header, 8 summary row.
	edit := func(f func([]string) []string) []byte {
		lines := strings.Split(strings.TrimSuffix(string(billGolden(t, "fundflow.txt")), "\r\n"), "\r\n")
		return []byte(strings.Join(f(lines), "\r\n") + "\r\n")
	}
	replace := func(line int, old, new string) func([]string) []string {
		return func(l []string) []string {
			if !strings.Contains(l[line-1], old) {
				panic(old)
			}
			l[line-1] = strings.Replace(l[line-1], old, new, 1)
			return l
		}
	}
	for _, c := range []struct {
		name     string
		edit     func([]string) []string
		line     int
		sentinel error
		substr   string
	}{
		{"no summary", func(l []string) []string { return l[:6] }, 6, ErrBillTruncated, "ends before its summary"},
		{"no summary row", func(l []string) []string { return l[:7] }, 7, ErrBillTruncated, "ends before its summary row"},
		{"count", replace(8, "`5.0,", "`6.0,"), 8, ErrBillMismatch, "资金流水总笔数 is 6 but the bill has 5"},
		{"income count", replace(8, "`3.0,", "`4.0,"), 8, ErrBillMismatch, "收入笔数 is 4 but the bill has 3"},
		{"expense count", replace(8, "`2.0,", "`1,"), 8, ErrBillMismatch, "支出笔数 is 1 but the bill has 2"},
		{"income sum", replace(8, "`124.46,", "`124.45,"), 8, ErrBillMismatch, "收入金额 is 124.45 but the income rows add up to 124.46"},
		{"expense sum", replace(8, "`1.75", "`1.76"), 8, ErrBillMismatch, "支出金额 is 1.76"},
		{"direction flipped", replace(4, "`支出,", "`收入,"), 8, ErrBillMismatch, "收入笔数 is 3 but the bill has 4"},
		{"unknown direction", replace(4, "`支出,", "`转账,"), 4, nil, `收支类型 "转账": neither 收入 nor 支出`},
		{"bad amount", replace(2, "`1.00,", "`1.000,"), 2, nil, "收支金额（元） \"1.000\": more than 2 decimals"},
		{"bad balance", replace(2, "`101.00,", "`101.0.0,"), 2, nil, "账户结余（元）"},
		{"bad time", replace(2, "2026-11-27 09:15:02", "2026-11-27T09:15:02"), 2, nil, "记账时间"},
		{"missing column", replace(1, "资金流水单号", "流水号"), 1, nil, "lacks column 资金流水单号"},
		{"missing summary column", replace(7, "支出笔数", "笔数"), 7, nil, "lacks column 支出笔数"},
		{"row width", func(l []string) []string { l[1] += ",`"; return l }, 2, nil, "the row has 12 fields, its header 11"},
		{"second summary", func(l []string) []string { return append(l, l[7]) }, 9, nil, "a second summary row"},
		{"fractional count", replace(8, "`5.0,", "`5.5,"), 8, nil, "not a whole count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFundFlow(edit(c.edit))
			billCheckErr(t, err, c.line, c.sentinel, c.substr)
		})
	}
}

// ---------------------------------------------------------------------------
// Size and speed.

// billGenerate writes a consistent ALL bill of n rows, every tenth a
// refund, and returns it with its settlement and refund totals in fen.
func billGenerate(n int) (data []byte, settlement, refund int64) {
	var b bytes.Buffer
	b.Grow(n * 330)
	b.WriteString("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n")
	var total, request int64
	var buf []byte
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, wxpay.China)
	for i := range n {
		ts := day.Add(time.Duration(i) * (86400 * time.Second / time.Duration(n))).Format(time.DateTime)
		fee := int64(1 + i%50000)
		buf = buf[:0]
		buf = append(buf, '`')
		buf = append(buf, ts...)
		buf = append(buf, ",`wx2421b1c4370ec43b,`1900000109,`,`,`42000012342026112"...)
		buf = strconv.AppendInt(buf, 10000000000+int64(i), 10)
		buf = append(buf, ",`ORDER-"...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, ",`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`"...)
		if i%10 == 9 {
			buf = append(buf, "REFUND,`CMB_DEBIT,`CNY,`0.00,`0.00,`50000000012026112"...)
			buf = strconv.AppendInt(buf, 10000000000+int64(i), 10)
			buf = append(buf, ",`REFUND-"...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ",`"...)
			buf = append(buf, FormatYuan(fee)...)
			buf = append(buf, ",`0.00,`ORIGINAL,`SUCCESS,`小程序-商品,`,`"...)
			buf = append(buf, Millifen(-fee*6).String()...)
			buf = append(buf, ",`0.60%,`0.00,`"...)
			buf = append(buf, FormatYuan(fee)...)
			refund += fee
			request += fee
		} else {
			buf = append(buf, "SUCCESS,`CMB_DEBIT,`CNY,`"...)
			buf = append(buf, FormatYuan(fee)...)
			buf = append(buf, ",`0.00,`0,`0,`0.00,`0.00,`,`,`小程序-商品,`attach,`"...)
			buf = append(buf, Millifen(fee*6).String()...)
			buf = append(buf, ",`0.60%,`"...)
			buf = append(buf, FormatYuan(fee)...)
			buf = append(buf, ",`0.00"...)
			settlement += fee
			total += fee
		}
		buf = append(buf, ",`\r\n"...)
		b.Write(buf)
	}
	b.WriteString("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n")
	b.WriteString("`" + strconv.Itoa(n) + ",`" + FormatYuan(settlement) + ",`" + FormatYuan(refund) + ",`0.00,`0.00000,`" +
		FormatYuan(total) + ",`" + FormatYuan(request) + "\r\n")
	return b.Bytes(), settlement, refund
}

func TestParseBillLarge(t *testing.T) {
	const n = 200000
	data, settlement, refund := billGenerate(n)
	start := time.Now()
	b, err := ParseBill(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows, %.1f MB in %v", n, float64(len(data))/1e6, time.Since(start))
	if len(b.Rows) != n || b.Summary.Count != n {
		t.Fatalf("%d rows, summary %d", len(b.Rows), b.Summary.Count)
	}
	var s, r int64
	for _, row := range b.Rows {
		s += row.SettlementTotalFee
		r += row.RefundFee
	}
	if s != settlement || r != refund || b.Summary.SettlementTotalFee != settlement || b.Summary.RefundFee != refund {
		t.Errorf("sums %d/%d, summary %d/%d, want %d/%d", s, r, b.Summary.SettlementTotalFee, b.Summary.RefundFee, settlement, refund)
	}
	if last := b.Rows[n-1]; last.OutRefundNo != "REFUND-199999" || last.TradeState != wxpay.TradeStateRefund {
		t.Errorf("last row = %+v", last)
	}

	// One fen off in one row of 200,000 is caught.
	i := bytes.Index(data, []byte(",`ORDER-123456,"))
	j := i + bytes.Index(data[i:], []byte(",`CNY,`")) + len(",`CNY,`")
	k := j + bytes.Index(data[j:], []byte(",`")) - 1
	bad := bytes.Clone(data)
	bad[k]++ // the fen digit of 应结订单金额
	_, err = ParseBill(bad)
	billCheckErr(t, err, n+3, ErrBillMismatch, "应结订单总金额")
}

func BenchmarkParseBill(b *testing.B) {
	data, _, _ := billGenerate(200000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBill(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBillGzip(b *testing.B) {
	data, _, _ := billGenerate(200000)
	z := billGzip(b, data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBill(z); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseYuan(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseYuan("123456.78"); err != nil {
			b.Fatal(err)
		}
	}
}
