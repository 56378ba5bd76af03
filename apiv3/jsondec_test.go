package apiv3

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func TestJSONStrings(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:                  "abc",
		`"支付成功"`:                 "支付成功",
		`"a\"b\\c\/d"`:           `a"b\c/d`,
		`"\b\f\n\r\t"`:           "\b\f\n\r\t",
		`"\u00e9\u4E2D"`:         "é中",
		`"\ud83d\ude00"`:         "😀",
		`null`:                   "",
		` "x" `:                  "x",
		`"\u0000"`:               "\x00",
		`"` + "\u2028" + `"`:     "\u2028",
		`"tab\tin escape\u0009"`: "tab\tin escape\t",
	} {
		d := jdec{s: in}
		got, err := d.str()
		if err == nil {
			err = d.end()
		}
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`"abc`, `abc`, `"\x"`, `"\u12"`, `"\u12G4"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`,
		"\"a\x01b\"", "\"\xff\"", "\"\xed\xa0\x80\"", `"a"b`, `'a'`, `"\`} {
		d := jdec{s: in}
		_, err := d.str()
		if err == nil {
			err = d.end()
		}
		if !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%q accepted: %v", in, err)
		}
	}
}

func TestJSONIntegers(t *testing.T) {
	for in, want := range map[string]int64{`0`: 0, `100`: 100, `-1`: -1, `9223372036854775807`: 1<<63 - 1, `null`: 0, ` 7 `: 7} {
		d := jdec{s: in}
		got, err := d.int64()
		if err == nil {
			err = d.end()
		}
		if err != nil || got != want {
			t.Errorf("%s: %d, %v", in, got, err)
		}
	}
	for _, in := range []string{`1.0`, `1.5`, `1e2`, `1E2`, `01`, `-`, `+1`, `9223372036854775808`, `"1"`, `0x10`, `.5`, `1.`, `true`, ``, `--1`, `Infinity`, `NaN`} {
		d := jdec{s: in}
		_, err := d.int64()
		if err == nil {
			err = d.end()
		}
		if !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestJSONObjects(t *testing.T) {
	var keys []string
	collect := func(d *jdec, key string) error { keys = append(keys, key); return d.skip() }
	if err := decodeObject(`{"a":1,"b":[1,2.5e-3,{"c":null}],"d":{"e":"f"},"g":true,"h":false,"i":null,"j":-0}`, collect); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,b,d,g,h,i,j" {
		t.Errorf("keys %v", keys)
	}
	for _, in := range []string{`{"a":1,"a":2}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":1`, `{"a":1}x`, `{"a":1}{}`, `[]`, `{a:1}`,
		`{"a":[1,]}`, `{"a":[1 2]}`, `{"a":tru}`, `{"a":nul}`, `{null:1}`, `{"a":01}`, `{"a":"\u"}`,
		strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), `{"a":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`} {
		if err := decodeObject(in, collect); !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%.40q accepted: %v", in, err)
		}
	}
	// A duplicate key inside a nested object we read is refused too, and
	// in objects we skip nothing is checked but the syntax.
	var tx Transaction
	if err := decodeObject(`{"amount":{"total":1,"total":2}}`, tx.field); !errors.Is(err, ErrMalformedJSON) {
		t.Errorf("nested duplicate: %v", err)
	}
	// Many keys (more than the stack array) still detect duplicates.
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 40; i++ {
		b.WriteString(`"k` + strings.Repeat("q", i) + `":1,`)
	}
	b.WriteString(`"kqqq":2}`) // the key of i = 3 again
	if err := decodeObject(b.String(), collect); !errors.Is(err, ErrMalformedJSON) {
		t.Errorf("late duplicate: %v", err)
	}
	if err := decodeObject(`null`, collect); err != nil {
		t.Errorf("null object: %v", err)
	}
}

func TestJSONTimes(t *testing.T) {
	for in, want := range map[string]time.Time{
		`"2018-06-08T10:34:56+08:00"`:     time.Date(2018, 6, 8, 10, 34, 56, 0, wxpay.China),
		`"2018-06-08T02:34:56Z"`:          time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC),
		`"2018-06-08T10:34:56.789+08:00"`: time.Date(2018, 6, 8, 10, 34, 56, 789e6, wxpay.China),
		`"2018-06-08T11:34:56+09:00"`:     time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC),
		`"2024-02-29T00:00:00+08:00"`:     time.Date(2024, 2, 29, 0, 0, 0, 0, wxpay.China),
		`""`:                              {},
		`null`:                            {},
	} {
		d := jdec{s: in}
		got, err := d.timeValue()
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{`"2018-06-08 10:34:56"`, `"2018-13-08T10:34:56+08:00"`, `"2023-02-29T00:00:00+08:00"`,
		`"2018-06-08T24:00:00+08:00"`, `"2018-06-08T10:60:00+08:00"`, `"2018-06-0xT10:34:56+08:00"`, `1528425296`, `"yesterday"`} {
		d := jdec{s: in}
		if _, err := d.timeValue(); !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%s accepted", in)
		}
	}
}

// FuzzDecodeTransaction: the strict decoder never panics, accepts only
// valid JSON, and what it decodes survives a round trip through
// encoding/json (the types' JSON tags agree with the decoder).
func FuzzDecodeTransaction(f *testing.F) {
	f.Add(transactionJSON)
	f.Add(fullTransaction)
	f.Add(`{"mchid":"1","out_trade_no":"2","trade_state":"NOTPAY","amount":{"total":1},"payer":null,"promotion_detail":[]}`)
	f.Add(`{"mchid":"\u0031","out_trade_no":"\ud83d\ude00","trade_state":"CLOSED"}`)
	f.Fuzz(func(t *testing.T, s string) {
		tx, err := decodeTransaction(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedJSON) {
				t.Fatalf("error %v is not ErrMalformedJSON", err)
			}
			return
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
		again, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		tx2, err := decodeTransaction(string(again))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		again2, _ := json.Marshal(tx2)
		if !bytes.Equal(again, again2) {
			t.Fatalf("round trip\n%s\n%s", again, again2)
		}
	})
}

func TestSkipPlain(t *testing.T) {
	slow := func(s string, i int) int {
		for i < len(s) && plain[s[i]] {
			i++
		}
		return i
	}
	for n := 0; n < 40; n++ {
		for _, c := range []byte{0x00, 0x1f, 0x20, 0x21, '"', '\\', '#', '[', 0x7f, 0x80, 0x9f, 0xa0, 0xff} {
			for pos := 0; pos <= n; pos++ {
				b := bytes.Repeat([]byte{'a'}, n)
				if pos < n {
					b[pos] = c
				}
				for from := 0; from <= n; from += 3 {
					if got, want := skipPlain(string(b), from), slow(string(b), from); got != want {
						t.Fatalf("skipPlain(%q, %d) = %d, want %d", b, from, got, want)
					}
				}
			}
		}
	}
}
