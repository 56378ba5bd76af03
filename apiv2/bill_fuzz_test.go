package apiv2

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets for the bill parsers (style.md habit 7: errors are fine,
// panics are not). Run one with, for example,
//
//	go test ./apiv2 -run='^$' -fuzz=FuzzParseBill -fuzztime=60s

const (
	billFuzzMinimal = "交易时间,微信订单号,商户订单号,交易状态,应结订单金额,退款金额,X\n" +
		"`2026-01-01 00:00:00,`1,`2,`SUCCESS,`0.01,`0,`x\n`2026-01-01 00:00:01,`1,`2,`REFUND,`0,`0.01,`\n" +
		"总交易单数,应结订单总金额,退款总金额\n`2,`0.01,`0.01\n"
	billFuzzMinimalFundFlow = "记账时间,微信支付业务单号,资金流水单号,收支类型,收支金额（元）\n" +
		"`2026-01-01 00:00:00,`1,`2,`收入,`0.01\n`2026-01-01 00:00:01,`1,`3,`支出,`0.01\n" +
		"资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\n`2,`1,`0.01,`1,`0.01\n"
)

// The minimal seeds are valid, so the fuzzer starts from parsing bills.
func TestBillFuzzSeeds(t *testing.T) {
	if b, err := ParseBill([]byte(billFuzzMinimal)); err != nil || len(b.Rows) != 2 || b.Rows[0].Extra["X"] != "x" {
		t.Errorf("minimal bill: %v", err)
	}
	if b, err := ParseFundFlow([]byte(billFuzzMinimalFundFlow)); err != nil || len(b.Rows) != 2 {
		t.Errorf("minimal fund flow: %v", err)
	}
}

func billFuzzSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "bill", "*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(billGzip(f, b))
	}
	f.Add([]byte{})
	f.Add([]byte("<xml><return_code>FAIL</return_code></xml>"))
	f.Add([]byte("a\n`1\n总交易单数\n`1"))
	// Minimal valid bills, easier for the fuzzer to mutate than the golden ones.
	f.Add([]byte(billFuzzMinimal))
	f.Add([]byte(billFuzzMinimalFundFlow))
}

// billFuzzErr checks that err is a *BillError whose text is bounded.
func billFuzzErr(t *testing.T, err error) {
	var be *BillError
	if !errors.As(err, &be) {
		t.Fatalf("error %v is a %T, not a *BillError", err, err)
	}
	if len(err.Error()) > 400 {
		t.Fatalf("error text of %d bytes", len(err.Error()))
	}
}

func FuzzParseBill(f *testing.F) {
	billFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBill(data)
		if err != nil {
			billFuzzErr(t, err)
			return
		}
		// A bill that parses satisfies Σ rows == summary totals.
		if len(b.Rows) != b.Summary.Count {
			t.Fatalf("%d rows, summary count %d", len(b.Rows), b.Summary.Count)
		}
		var settlement, refund int64
		for _, r := range b.Rows {
			if !r.TradeState.Valid() || r.TradeTime.IsZero() {
				t.Fatalf("row %+v", r)
			}
			settlement += r.SettlementTotalFee
			refund += r.RefundFee
		}
		if settlement != b.Summary.SettlementTotalFee || refund != b.Summary.RefundFee {
			t.Fatalf("sums %d/%d, summary %d/%d", settlement, refund, b.Summary.SettlementTotalFee, b.Summary.RefundFee)
		}
		// Parsing is deterministic and the text is the same in gzip.
		if b2, err := ParseBill(billGzip(t, data)); data[0] != 0x1f && (err != nil || len(b2.Rows) != len(b.Rows)) {
			t.Fatalf("gzip of a good bill: %v", err)
		}
	})
}

func FuzzParseFundFlow(f *testing.F) {
	billFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseFundFlow(data)
		if err != nil {
			billFuzzErr(t, err)
			return
		}
		s := b.Summary
		var in, out int64
		var nin, nout int
		for _, r := range b.Rows {
			switch r.Direction {
			case FundFlowIncome:
				nin++
				in += r.Amount
			case FundFlowExpense:
				nout++
				out += r.Amount
			default:
				t.Fatalf("direction %q", r.Direction)
			}
		}
		if len(b.Rows) != s.Count || nin != s.IncomeCount || nout != s.ExpenseCount || in != s.Income || out != s.Expense {
			t.Fatalf("rows %d/%d/%d %d/%d, summary %+v", len(b.Rows), nin, nout, in, out, s)
		}
	})
}

func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{
		"0", "12", "0.1", "0.01", "123.45", "-0.05", "-0", "1e2", "1.001", " 1", "+1", "", ".5", "5.", "1.2.3",
		"92233720368547758.07", "-92233720368547758.08", "92233720368547758.08", "0.00600",
	} {
		f.Add(s)
	}
	hundred := big.NewRat(100, 1)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseYuan(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "apiv2: invalid yuan amount") {
				t.Fatalf("error %q", err)
			}
			return
		}
		// The round trip property.
		back, err := ParseYuan(FormatYuan(v))
		if err != nil || back != v {
			t.Fatalf("ParseYuan(%q) = %d; ParseYuan(FormatYuan) = %d, %v", s, v, back, err)
		}
		// Exactness against math/big: v fen == s yuan.
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("ParseYuan accepted %q, which math/big rejects", s)
		}
		if r.Mul(r, hundred); !r.IsInt() || r.Num().Int64() != v || !r.Num().IsInt64() {
			t.Fatalf("ParseYuan(%q) = %d, want %s", s, v, r.RatString())
		}
		// The fee parser (5 decimals) agrees, scaled by 1000.
		if m, reason := billParseDecimal(s, 5); reason != "" && v > -1<<53 && v < 1<<53 {
			t.Fatalf("fee parse of %q: %s", s, reason)
		} else if reason == "" && m != v*1000 {
			t.Fatalf("fee parse of %q = %d, want %d", s, m, v*1000)
		}
	})
}
