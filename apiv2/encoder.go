package apiv2

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// TimeLayout is the v2 wire layout of times, in China Standard Time.
const TimeLayout = "20060102150405"

type kind uint8

const (
	kindStr kind = iota
	kindInt
	kindTime
)

// entry is one request field before encoding; ints and times are written
// straight into the output, so building a request allocates no strings.
type entry struct {
	name string
	s    string // the value as signed
	wire string // the value as sent, when it differs (shorturl's long_url)
	i    int64
	t    time.Time
	k    kind
}

// encoder builds a signed request. It is pooled.
type encoder struct {
	entries []entry
	order   []uint16 // entries' indices, sorted by name
	keys    []uint64 // nameKey of each entry in order, while sorting
	xml     []byte
	canon   []byte
	err     error
}

var encPool = sync.Pool{New: func() any {
	return &encoder{entries: make([]entry, 0, 32), xml: make([]byte, 0, 1024), canon: make([]byte, 0, 1024)}
}}

func getEncoder() *encoder { return encPool.Get().(*encoder) }

func putEncoder(e *encoder) {
	if cap(e.xml) > 64<<10 {
		return // do not keep huge buffers
	}
	clear(e.entries) // drop references to the caller's strings
	e.entries, e.order, e.keys, e.xml, e.canon, e.err = e.entries[:0], e.order[:0], e.keys[:0], e.xml[:0], e.canon[:0], nil
	encPool.Put(e)
}

// str adds a string field; empty values are left out, as the signature
// leaves them out.
func (e *encoder) str(name, v string) {
	if v != "" {
		e.entries = append(e.entries, entry{name: name, s: v})
	}
}

// num adds an integer field that is always sent.
func (e *encoder) num(name string, v int64) {
	e.entries = append(e.entries, entry{name: name, i: v, k: kindInt})
}

// optNum adds an integer field unless it is zero.
func (e *encoder) optNum(name string, v int64) {
	if v != 0 {
		e.num(name, v)
	}
}

// time adds a time in China Standard Time, unless it is zero.
func (e *encoder) time(name string, t time.Time) {
	if !t.IsZero() {
		e.entries = append(e.entries, entry{name: name, t: t, k: kindTime})
	}
}

// extra adds caller-supplied fields, refusing names that are not element
// names, that collide with a typed field, or that the client sets itself
// (sign, sign_type).
func (e *encoder) extra(fields map[string]string) {
	for k, v := range fields {
		if !validName(k) {
			e.fail(invalid("extra field name %q is not a valid element name", k))
			continue
		}
		if k == "sign" || k == "sign_type" {
			// sign would be sent twice and signed over; sign_type must
			// agree with the client's sign type, which sets it.
			e.fail(invalid("extra field %q is set by the client", k))
			continue
		}
		for _, x := range e.entries {
			if x.name == k {
				e.fail(invalid("extra field %q duplicates a typed field", k))
			}
		}
		e.str(k, v)
	}
}

// require records an error when a required value is missing. The message
// is a constant: a check whose message needs values is written as
// `if !ok { e.fail(invalid(format, args…)) }`, so that the arguments are
// not boxed (allocated) on every call that passes.
func (e *encoder) require(ok bool, msg string) {
	if !ok {
		e.fail(invalid("%s", msg))
	}
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (x *entry) appendValue(dst []byte) []byte {
	switch x.k {
	case kindInt:
		return strconv.AppendInt(dst, x.i, 10)
	case kindTime:
		return appendWireTime(dst, x.t)
	}
	return append(dst, x.s...)
}

// encode sorts the fields, writes the XML and the canonical string in one
// pass, signs, and returns a fresh copy of the XML.
func (e *encoder) encode(st wxpay.SignType, key string) ([]byte, error) {
	// Insertion sort of indices: a request has a few dozen fields, and
	// moving small integers avoids the write barriers of moving entries.
	// Names are compared by their first 8 bytes as one integer, and as
	// strings only when those are equal.
	order, keys := e.order[:0], e.keys[:0]
	for i := range e.entries {
		name := e.entries[i].name
		k := nameKey(name)
		j := len(order)
		order, keys = append(order, uint16(i)), append(keys, k)
		for j > 0 && (keys[j-1] > k || keys[j-1] == k && e.entries[order[j-1]].name > name) {
			order[j], keys[j] = order[j-1], keys[j-1]
			j--
		}
		order[j], keys[j] = uint16(i), k
	}
	e.order, e.keys = order, keys
	xml := append(e.xml[:0], "<xml>"...)
	canon := e.canon[:0]
	for n, i := range order {
		x := &e.entries[i]
		if n > 0 && e.entries[order[n-1]].name == x.name {
			return nil, fmt.Errorf("field %q set twice", x.name)
		}
		canon = append(canon, x.name...)
		canon = append(canon, '=')
		start := len(canon)
		canon = x.appendValue(canon)
		if x.wire != "" {
			xml = appendElement(xml, x.name, x.wire)
		} else if x.k == kindStr {
			xml = appendElement(xml, x.name, x.s)
		} else { // digits: bare
			xml = append(xml, '<')
			xml = append(xml, x.name...)
			xml = append(xml, '>')
			xml = append(xml, canon[start:]...)
			xml = append(xml, "</"...)
			xml = append(xml, x.name...)
			xml = append(xml, '>')
		}
		canon = append(canon, '&')
	}
	if !utf8.Valid(xml) {
		// WeChat refuses it (NOT_UTF8), and so would our own parser.
		for i := range e.entries {
			if !utf8.ValidString(e.entries[i].s) {
				return nil, invalid("field %s is not valid UTF-8", e.entries[i].name)
			}
		}
	}
	xml = append(xml, "<sign>"...)
	var err error
	xml, err = wxcrypto.AppendSignPrefix(xml, st, key, canon)
	if err != nil {
		return nil, err
	}
	xml = append(xml, "</sign></xml>"...)
	e.xml, e.canon = xml, canon
	return append(make([]byte, 0, len(xml)), xml...), nil
}

// nameKey is the first 8 bytes of a name, big-endian, zero-padded: keys
// order as the names do, except that names sharing 8 bytes have equal
// keys (and are then compared as strings).
func nameKey(name string) uint64 {
	var k uint64
	for i := 0; i < 8; i++ {
		k <<= 8
		if i < len(name) {
			k |= uint64(name[i])
		}
	}
	return k
}

// fields returns the request's fields as strings, for diagnostics.
func (e *encoder) fields() []wxcrypto.Field {
	out := make([]wxcrypto.Field, 0, len(e.entries))
	for i := range e.entries {
		out = append(out, wxcrypto.Field{Name: e.entries[i].name, Value: string(e.entries[i].appendValue(nil))})
	}
	wxcrypto.SortFields(out)
	return out
}

// decoder reads typed values out of an answer's sorted fields, keeping the
// first malformed value as its error.
type decoder struct {
	f   []wxcrypto.Field
	err error
}

func (d *decoder) str(name string) string { return lookup(d.f, name) }

func (d *decoder) int(name string) int64 {
	return d.parseInt(wxcrypto.Field{Name: name, Value: lookup(d.f, name)})
}

// parseInt reads a non-negative decimal integer (amounts, counts).
func (d *decoder) parseInt(f wxcrypto.Field) int64 {
	if f.Value == "" {
		return 0
	}
	n, err := strconv.ParseInt(f.Value, 10, 64)
	if (err != nil || n < 0) && d.err == nil {
		d.err = fmt.Errorf("field %s: %q is not a non-negative integer", f.Name, f.Value)
	}
	return n
}

func (d *decoder) time(name string) time.Time {
	return d.parseTime(wxcrypto.Field{Name: name, Value: lookup(d.f, name)})
}

// parseTime reads a yyyyMMddHHmmss time in China Standard Time.
func (d *decoder) parseTime(f wxcrypto.Field) time.Time {
	if f.Value == "" {
		return time.Time{}
	}
	t, ok := parseWireTime(f.Value)
	if !ok && d.err == nil {
		d.err = fmt.Errorf("field %s: %q is not a yyyyMMddHHmmss time", f.Name, f.Value)
	}
	return t
}

// parseWireTime reads yyyyMMddHHmmss in China Standard Time, without the
// generality (and cost) of time.Parse; out-of-range fields are refused.
func parseWireTime(s string) (time.Time, bool) {
	if len(s) != 14 {
		return time.Time{}, false
	}
	var n [7]int
	widths := [7]int{4, 2, 2, 2, 2, 2, 0}
	pos := 0
	for i := 0; i < 6; i++ {
		v := 0
		for j := 0; j < widths[i]; j++ {
			c := s[pos]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			v = v*10 + int(c-'0')
			pos++
		}
		n[i] = v
	}
	y, mo, d, h, mi, sec := n[0], n[1], n[2], n[3], n[4], n[5]
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, wxpay.China)
	if t.Day() != d { // 20260230 and the like
		return time.Time{}, false
	}
	return t, true
}

// RefundTimeLayout is the layout of refund_success_time_$n and the refund
// notify's success_time, in China Standard Time.
const RefundTimeLayout = "2006-01-02 15:04:05"

func (d *decoder) refundTime(name string) time.Time {
	s := lookup(d.f, name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation(RefundTimeLayout, s, wxpay.China)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("field %s: %q is not a yyyy-MM-dd HH:mm:ss time", name, s)
	}
	return t
}

// indexed calls fn for every field named prefix+N (N a decimal index) with
// N and the value, in the order of the sorted fields.
func indexed(fields []wxcrypto.Field, prefix string, fn func(n int, v string)) {
	i, _ := slices.BinarySearchFunc(fields, prefix, func(f wxcrypto.Field, p string) int { return strings.Compare(f.Name, p) })
	for ; i < len(fields) && strings.HasPrefix(fields[i].Name, prefix); i++ {
		n, err := strconv.Atoi(fields[i].Name[len(prefix):])
		if err == nil && n >= 0 && n < 1000 {
			fn(n, fields[i].Value)
		}
	}
}

// appendWireTime appends t as yyyyMMddHHmmss in China Standard Time.
func appendWireTime(dst []byte, t time.Time) []byte {
	u := t.Unix()
	if u < chinaFixedSince || u >= maxFastTime {
		t = t.In(wxpay.China)
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		if y < 0 || y > 9999 {
			dst = strconv.AppendInt(dst, int64(y), 10) // as time.Format writes it; WeChat refuses it
		} else {
			dst = appendPad(dst, y, 4)
		}
		dst = appendPad(dst, int(mo), 2)
		dst = appendPad(dst, d, 2)
		dst = appendPad(dst, h, 2)
		dst = appendPad(dst, mi, 2)
		return appendPad(dst, sec, 2)
	}
	// UTC+8 wall clock from Unix seconds: the civil-from-days algorithm
	// (H. Hinnant), for 1991 to 9999, with two digits at a time.
	u += 8 * 3600
	days, secs := u/86400, int(u%86400)
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := int(doy - (153*mp+2)/5 + 1)
	m := int(mp + 3)
	if m > 12 {
		m -= 12
	}
	y := int(yoe + era*400)
	if m <= 2 {
		y++
	}
	var b [14]byte
	put2(b[0:], y/100)
	put2(b[2:], y%100)
	put2(b[4:], m)
	put2(b[6:], d)
	put2(b[8:], secs/3600)
	put2(b[10:], secs/60%60)
	put2(b[12:], secs%60)
	return append(dst, b[:]...)
}

// maxFastTime is 10000-01-01T00:00:00+08:00: four-digit years only.
const maxFastTime = 253402300800 - 8*3600

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// put2 writes v (0–99) as two digits.
func put2(b []byte, v int) {
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// chinaFixed is UTC+8. China has kept it, without daylight saving, since
// Asia/Shanghai's last transition (1991-09-15 02:00 CDT became 01:00 CST,
// 1991-09-14 17:00 UTC); from then on a fixed zone writes the same wall
// clock and skips the zone table.
var chinaFixed = time.FixedZone("CST", 8*3600)

const chinaFixedSince = 684867600 // 1991-09-14T17:00:00Z

func appendPad(dst []byte, v, width int) []byte {
	var b [4]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}
