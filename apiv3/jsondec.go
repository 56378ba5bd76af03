package apiv3

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
)

// ErrMalformedJSON matches a JSON document the strict decoder refuses:
// invalid JSON, a duplicate key, a non-integer or out-of-range amount,
// invalid UTF-8, trailing content, nesting deeper than 32, a required field
// missing (reliability.md X10).
var ErrMalformedJSON = errors.New("apiv3: malformed JSON")

// jsonError locates a refusal of the strict decoder. It never quotes the
// document.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string {
	return "apiv3: malformed JSON at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

func (e *jsonError) Is(target error) bool { return target == ErrMalformedJSON }

// maxJSONDepth bounds nesting: WeChat's documents nest three or four deep.
const maxJSONDepth = 32

// jdec is the strict JSON decoder of the typed answers and notifies. It
// reads a string (the whole document, converted once) and returns strings
// that are substrings of it whenever they hold no escape, so that a notify
// decodes with a handful of allocations. It refuses what encoding/json
// lets through and what matters for money (reliability.md X10): duplicate
// keys (one value verified, another used), fractions and exponents where an
// integer amount is expected, integers beyond int64, invalid UTF-8 and lone
// surrogates, trailing content. Unknown keys are skipped (WeChat adds
// fields), after their value was checked to be valid JSON.
//
// A field's function reads the value with one of str, int64, boolean,
// timeValue, object, array or skip.
type jdec struct {
	s     string
	b     []byte // the same bytes as s when the caller has them, for strBytes
	i     int
	depth int
}

func (d *jdec) fail(msg string) error { return &jsonError{off: d.i, msg: msg} }

func (d *jdec) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// literal consumes lit (true, false, null) if it is next.
func (d *jdec) literal(lit string) bool {
	if strings.HasPrefix(d.s[d.i:], lit) {
		d.i += len(lit)
		return true
	}
	return false
}

// null consumes a null if it is next.
func (d *jdec) null() bool {
	d.ws()
	return d.literal("null")
}

// end checks that only whitespace follows the value.
func (d *jdec) end() error {
	d.ws()
	if d.i != len(d.s) {
		return d.fail("content after the document")
	}
	return nil
}

// object reads an object, calling field for each key; field must consume
// the value. null reads as an empty object. A key seen twice is refused.
func (d *jdec) object(field func(d *jdec, key string) error) error {
	if d.null() {
		return nil
	}
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return d.fail("want an object")
	}
	if d.depth++; d.depth > maxJSONDepth {
		return d.fail("nested too deep")
	}
	d.i++
	var seenBuf [24]string
	seen := seenBuf[:0]
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return nil
	}
	for {
		d.ws()
		start := d.i
		key, err := d.str()
		if err != nil {
			return err
		}
		if start < len(d.s) && d.s[start] != '"' {
			d.i = start
			return d.fail("want a key")
		}
		for _, k := range seen {
			if k == key {
				d.i = start
				return d.fail("duplicate key " + strconv.Quote(key))
			}
		}
		seen = append(seen, key)
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return d.fail("want ':'")
		}
		d.i++
		d.ws()
		if err := field(d, key); err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.s) {
			return d.fail("unterminated object")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or '}'")
		}
	}
}

// array reads an array, calling elem for each element; elem must consume
// it. null reads as an empty array.
func (d *jdec) array(elem func(d *jdec) error) error {
	if d.null() {
		return nil
	}
	if d.i >= len(d.s) || d.s[d.i] != '[' {
		return d.fail("want an array")
	}
	if d.depth++; d.depth > maxJSONDepth {
		return d.fail("nested too deep")
	}
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return nil
	}
	for {
		d.ws()
		if err := elem(d); err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.s) {
			return d.fail("unterminated array")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or ']'")
		}
	}
}

// str reads a string; null reads as "". Without escapes the result is a
// substring of the document.
func (d *jdec) str() (string, error) {
	start, end, esc, err := d.scanString()
	if err != nil || start < 0 {
		return "", err
	}
	if !esc {
		return d.s[start:end], nil
	}
	return unescape(d.s[start:end])
}

// strBytes is str returning bytes of the caller's document (no copy) when
// there is no escape. It needs d.b.
func (d *jdec) strBytes() ([]byte, error) {
	start, end, esc, err := d.scanString()
	if err != nil || start < 0 {
		return nil, err
	}
	if !esc && d.b != nil {
		return d.b[start:end:end], nil
	}
	s, err := unescape(d.s[start:end])
	return []byte(s), err
}

// plain marks the bytes that stand for themselves inside a string: ASCII
// from space on, except the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string at the cursor and returns the bounds of its
// content and whether it holds escapes; start is -1 for null.
func (d *jdec) scanString() (start, end int, esc bool, err error) {
	d.ws()
	if d.literal("null") {
		return -1, -1, false, nil
	}
	s := d.s
	if d.i >= len(s) || s[d.i] != '"' {
		return 0, 0, false, d.fail("want a string")
	}
	start = d.i + 1
	i := start
	for {
		i = skipPlain(s, i)
		if i >= len(s) {
			d.i = i
			return 0, 0, false, d.fail("unterminated string")
		}
		switch c := s[i]; {
		case c == '"':
			d.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(s) {
				d.i = i
				return 0, 0, false, d.fail("unterminated escape")
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 || unhex(s[i+3]) < 0 || unhex(s[i+4]) < 0 {
					d.i = i
					return 0, 0, false, d.fail("bad \\u escape")
				}
				i += 5
			default:
				d.i = i
				return 0, 0, false, d.fail("bad escape")
			}
		case c < 0x20:
			d.i = i
			return 0, 0, false, d.fail("control character in a string")
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return 0, 0, false, d.fail("invalid UTF-8")
			}
			i += size
		}
	}
}

// skipPlain returns the index of the first byte from i on that is not
// plain (a quote, a backslash, a control character or non-ASCII), eight
// bytes at a time while none is.
func skipPlain(s string, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q := x ^ ('"' * ones)
		b := x ^ ('\\' * ones)
		// Any byte below 0x20, equal to 0 after the XORs (a quote or a
		// backslash), or with its top bit set.
		if ((x-0x20*ones)&^x|(q-ones)&^q|(b-ones)&^b|x)&highs != 0 {
			break
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(s string) rune {
	return unhex(s[0])<<12 | unhex(s[1])<<8 | unhex(s[2])<<4 | unhex(s[3])
}

// unescape decodes the content of a string that scanString accepted. A
// lone surrogate is refused.
func unescape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			b.WriteByte(s[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(s[i+1 : i+5])
			i += 4
			if 0xD800 <= r && r < 0xDC00 {
				if i+7 > len(s) || s[i+1] != '\\' || s[i+2] != 'u' {
					return "", &jsonError{msg: "lone surrogate in a string"}
				}
				lo := hex4(s[i+3 : i+7])
				if lo < 0xDC00 || lo > 0xDFFF {
					return "", &jsonError{msg: "lone surrogate in a string"}
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			} else if 0xDC00 <= r && r <= 0xDFFF {
				return "", &jsonError{msg: "lone surrogate in a string"}
			}
			b.WriteRune(r)
		}
		i++
	}
	return b.String(), nil
}

// int64 reads an integer: an optional minus, digits without a leading
// zero, no fraction, no exponent, within int64. null reads as 0. Amounts
// are integers of fen: 1.0 and 1e2 are refused, not rounded.
func (d *jdec) int64() (int64, error) {
	if d.null() {
		return 0, nil
	}
	start := d.i
	if err := d.number(); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(d.s[start:d.i], 10, 64)
	if err != nil {
		d.i = start
		return 0, d.fail("want an integer within int64")
	}
	return n, nil
}

// number consumes a JSON number.
func (d *jdec) number() error {
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	first := d.i
	if n := digits(); n == 0 || (n > 1 && d.s[first] == '0') {
		d.i = start
		return d.fail("want a number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return d.fail("bad fraction")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return d.fail("bad exponent")
		}
	}
	return nil
}

// boolean reads true or false; null reads as false.
func (d *jdec) boolean() (bool, error) {
	d.ws()
	switch {
	case d.literal("true"):
		return true, nil
	case d.literal("false"), d.literal("null"):
		return false, nil
	}
	return false, d.fail("want a boolean")
}

// timeValue reads an RFC 3339 time; "" and null read as the zero time.
func (d *jdec) timeValue() (time.Time, error) {
	start := d.i
	s, err := d.str()
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, ok := parseTime(s)
	if !ok {
		d.i = start
		return time.Time{}, d.fail("want an RFC 3339 time")
	}
	return t, nil
}

// parseTime parses RFC 3339. The form WeChat Pay writes,
// 2006-01-02T15:04:05+08:00, is read without allocating, into wxpay.China;
// anything else goes through time.Parse.
func parseTime(s string) (time.Time, bool) {
	if len(s) == 25 && s[19:] == "+08:00" && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' {
		num := func(a, b int) int {
			n := 0
			for _, c := range []byte(s[a:b]) {
				if c < '0' || c > '9' {
					return -1
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
		y, mo, dd, h, mi, sec := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
		if y >= 0 && mo >= 1 && mo <= 12 && dd >= 1 && dd <= daysIn(mo, y) && h >= 0 && h < 24 && mi >= 0 && mi < 60 && sec >= 0 && sec < 60 {
			return time.Date(y, time.Month(mo), dd, h, mi, sec, 0, wxpay.China), true
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func daysIn(m, y int) int {
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

// skip consumes any value, checking that it is valid JSON.
func (d *jdec) skip() error {
	d.ws()
	if d.i >= len(d.s) {
		return d.fail("want a value")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(func(d *jdec, _ string) error { return d.skip() })
	case c == '[':
		return d.array(func(d *jdec) error { return d.skip() })
	case c == '"':
		_, _, _, err := d.scanString()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return d.fail("want a value")
}

// decodeObject decodes a whole document that is one object.
func decodeObject(s string, field func(d *jdec, key string) error) error {
	d := jdec{s: s}
	if err := d.object(field); err != nil {
		return err
	}
	return d.end()
}
