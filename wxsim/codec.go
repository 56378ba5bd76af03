package wxsim

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// The simulator's own XML codec for the flat v2 messages (protocol.md §2.3).
// It is deliberately not encoding/xml: that package silently accepts what
// WeChat's parser would refuse (a DOCTYPE, duplicate elements, nested
// elements, content after the root) and would hide bugs on the client side.

// Limits of the request decoder.
const (
	maxFields    = 256 // elements under <xml>
	maxNameBytes = 64  // length of one element name
)

// decodeErrorKind tells which protocol error a decoding failure maps to.
type decodeErrorKind int

const (
	errXMLFormat decodeErrorKind = iota // XML_FORMAT_ERROR
	errNotUTF8                          // NOT_UTF8
)

// decodeError is a request body the decoder refused.
type decodeError struct {
	kind   decodeErrorKind
	offset int
	reason string
}

func (e *decodeError) Error() string {
	return "wxsim: bad XML at byte " + strconv.Itoa(e.offset) + ": " + e.reason
}

// message is a decoded flat message: its fields in document order.
type message []wxcrypto.Field

// get returns the value of the named field, or "".
func (m message) get(name string) string {
	for _, f := range m {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// has reports whether the named field is present with a non-empty value.
func (m message) has(name string) bool { return m.get(name) != "" }

// decodeXML parses a flat v2 message: an optional UTF-8 byte-order mark, an
// optional XML declaration (whose encoding, if given, must be UTF-8),
// comments and white space, then one <xml> root whose children are leaf
// elements holding text, character references and CDATA sections. It
// refuses a DOCTYPE, processing instructions, attributes, nested elements,
// duplicate elements, text directly inside <xml>, anything but white space
// and comments after </xml>, characters XML forbids, and bytes that are not
// UTF-8. Line ends are normalised to \n as an XML parser does.
func decodeXML(b []byte) (message, error) {
	if !utf8.Valid(b) {
		return nil, &decodeError{errNotUTF8, invalidUTF8At(b), "not valid UTF-8"}
	}
	d := decoder{b: b}
	return d.document()
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

type decoder struct {
	b []byte
	p int
}

func (d *decoder) fail(reason string) error {
	return &decodeError{errXMLFormat, d.p, reason}
}

func (d *decoder) rest() []byte { return d.b[d.p:] }

func (d *decoder) hasPrefix(s string) bool { return bytes.HasPrefix(d.rest(), []byte(s)) }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *decoder) skipSpace() {
	for d.p < len(d.b) && isSpace(d.b[d.p]) {
		d.p++
	}
}

func (d *decoder) document() (message, error) {
	if d.hasPrefix("\xEF\xBB\xBF") {
		d.p += 3
	}
	if d.hasPrefix("<?xml") && d.p+5 < len(d.b) && (isSpace(d.b[d.p+5]) || d.b[d.p+5] == '?') {
		if err := d.declaration(); err != nil {
			return nil, err
		}
	}
	if err := d.misc(); err != nil {
		return nil, err
	}
	if d.p >= len(d.b) {
		return nil, d.fail("no root element")
	}
	fields, err := d.root()
	if err != nil {
		return nil, err
	}
	if err := d.misc(); err != nil {
		return nil, err
	}
	if d.p < len(d.b) {
		return nil, d.fail("content after </xml>")
	}
	return fields, nil
}

// declaration parses <?xml version="1.0" encoding="UTF-8" standalone="yes"?>.
func (d *decoder) declaration() error {
	end := bytes.Index(d.rest(), []byte("?>"))
	if end < 0 {
		return d.fail("unterminated XML declaration")
	}
	body := string(d.b[d.p+5 : d.p+end])
	d.p += end + 2
	seen := map[string]bool{}
	for {
		body = strings.TrimLeft(body, " \t\r\n")
		if body == "" {
			break
		}
		eq := strings.IndexByte(body, '=')
		if eq <= 0 {
			return d.fail("malformed XML declaration")
		}
		name := strings.TrimRight(body[:eq], " \t\r\n")
		body = strings.TrimLeft(body[eq+1:], " \t\r\n")
		if body == "" || (body[0] != '"' && body[0] != '\'') {
			return d.fail("malformed XML declaration")
		}
		q := body[0]
		close := strings.IndexByte(body[1:], q)
		if close < 0 {
			return d.fail("malformed XML declaration")
		}
		value := body[1 : 1+close]
		body = body[2+close:]
		if seen[name] {
			return d.fail("repeated attribute in XML declaration")
		}
		seen[name] = true
		switch name {
		case "version":
			if value != "1.0" && value != "1.1" {
				return d.fail("unsupported XML version")
			}
		case "encoding":
			if !strings.EqualFold(value, "UTF-8") && !strings.EqualFold(value, "UTF8") {
				return &decodeError{errNotUTF8, d.p, "declared encoding " + strconv.Quote(value) + " is not UTF-8"}
			}
		case "standalone":
		default:
			return d.fail("unknown attribute in XML declaration")
		}
	}
	if !seen["version"] {
		return d.fail("XML declaration without version")
	}
	return nil
}

// misc skips white space and comments; it refuses a DOCTYPE and
// processing instructions.
func (d *decoder) misc() error {
	for {
		d.skipSpace()
		switch {
		case d.hasPrefix("<!--"):
			if err := d.comment(); err != nil {
				return err
			}
		case d.hasPrefix("<!"):
			return d.fail("DOCTYPE and other declarations are not allowed")
		case d.hasPrefix("<?"):
			return d.fail("processing instructions are not allowed")
		default:
			return nil
		}
	}
}

// comment skips <!-- … -->. XML forbids "--" inside a comment.
func (d *decoder) comment() error {
	start := d.p + 4
	end := bytes.Index(d.b[start:], []byte("--"))
	if end < 0 {
		d.p = len(d.b)
		return d.fail("unterminated comment")
	}
	if start+end+2 >= len(d.b) || d.b[start+end+2] != '>' {
		d.p = start + end
		return d.fail("\"--\" inside a comment")
	}
	if err := d.checkChars(d.b[start : start+end]); err != nil {
		return err
	}
	d.p = start + end + 3
	return nil
}

// checkChars refuses characters that XML 1.0 does not allow.
func (d *decoder) checkChars(b []byte) error {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return &decodeError{errXMLFormat, d.p + i, "control character not allowed in XML"}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == 0xFFFE || r == 0xFFFF {
			return &decodeError{errXMLFormat, d.p + i, "character not allowed in XML"}
		}
		i += n
	}
	return nil
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// name reads an element name (ASCII letters, digits, '_', '-', '.').
func (d *decoder) name() (string, error) {
	start := d.p
	if d.p >= len(d.b) || !isNameStart(d.b[d.p]) {
		return "", d.fail("bad element name")
	}
	for d.p < len(d.b) && isNameChar(d.b[d.p]) {
		d.p++
	}
	if d.p-start > maxNameBytes {
		return "", d.fail("element name too long")
	}
	return string(d.b[start:d.p]), nil
}

// tagEnd reads the end of a start tag: optional white space then ">" or
// "/>"; it reports whether the element was empty ("/>").
func (d *decoder) tagEnd() (empty bool, err error) {
	d.skipSpace()
	switch {
	case d.hasPrefix("/>"):
		d.p += 2
		return true, nil
	case d.hasPrefix(">"):
		d.p++
		return false, nil
	case d.p < len(d.b) && isNameStart(d.b[d.p]):
		return false, d.fail("attributes are not allowed")
	}
	return false, d.fail("malformed start tag")
}

func (d *decoder) endTag(name string) error {
	if !d.hasPrefix("</") {
		return d.fail("expected </" + name + ">")
	}
	d.p += 2
	got, err := d.name()
	if err != nil {
		return err
	}
	if got != name {
		return d.fail("end tag </" + got + "> does not match <" + name + ">")
	}
	d.skipSpace()
	if !d.hasPrefix(">") {
		return d.fail("malformed end tag")
	}
	d.p++
	return nil
}

func (d *decoder) root() (message, error) {
	if !d.hasPrefix("<") {
		return nil, d.fail("text before the root element")
	}
	d.p++
	name, err := d.name()
	if err != nil {
		return nil, err
	}
	if name != "xml" {
		return nil, d.fail("root element must be <xml>, not <" + name + ">")
	}
	empty, err := d.tagEnd()
	if err != nil || empty {
		return nil, err
	}
	fields := make(message, 0, 16)
	for {
		start := d.p
		d.skipSpace()
		switch {
		case d.p >= len(d.b):
			return nil, d.fail("unterminated <xml>")
		case d.hasPrefix("</"):
			if err := d.endTag("xml"); err != nil {
				return nil, err
			}
			return fields, nil
		case d.hasPrefix("<!--"):
			if err := d.comment(); err != nil {
				return nil, err
			}
		case d.hasPrefix("<![CDATA["):
			return nil, d.fail("text directly inside <xml>")
		case d.hasPrefix("<!"), d.hasPrefix("<?"):
			return nil, d.fail("declarations and processing instructions are not allowed")
		case d.hasPrefix("<"):
			d.p++
			f, err := d.field()
			if err != nil {
				return nil, err
			}
			for _, g := range fields {
				if g.Name == f.Name {
					d.p = start
					return nil, d.fail("duplicate element <" + f.Name + ">")
				}
			}
			if len(fields) == maxFields {
				return nil, d.fail("too many elements")
			}
			fields = append(fields, f)
		default:
			return nil, d.fail("text directly inside <xml>")
		}
	}
}

// field parses one leaf element after its "<".
func (d *decoder) field() (wxcrypto.Field, error) {
	name, err := d.name()
	if err != nil {
		return wxcrypto.Field{}, err
	}
	empty, err := d.tagEnd()
	if err != nil {
		return wxcrypto.Field{}, err
	}
	if empty {
		return wxcrypto.Field{Name: name}, nil
	}
	var val []byte
	simple := true // the value is one contiguous run of plain text so far
	textStart := d.p
	for {
		if d.p >= len(d.b) {
			return wxcrypto.Field{}, d.fail("unterminated <" + name + ">")
		}
		c := d.b[d.p]
		switch {
		case c == '<':
			switch {
			case d.hasPrefix("</"):
				if simple {
					val = d.b[textStart:d.p]
				}
				if err := d.endTag(name); err != nil {
					return wxcrypto.Field{}, err
				}
				return wxcrypto.Field{Name: name, Value: string(val)}, nil
			case d.hasPrefix("<![CDATA["):
				start := d.p + 9
				end := bytes.Index(d.b[start:], []byte("]]>"))
				if end < 0 {
					return wxcrypto.Field{}, d.fail("unterminated CDATA section")
				}
				d.p = start
				content := d.b[start : start+end]
				if err := d.checkChars(content); err != nil {
					return wxcrypto.Field{}, err
				}
				d.p = start + end + 3
				if simple && d.p == textStart+9+end+3 && bytes.IndexByte(content, '\r') < 0 && d.hasPrefix("</") {
					// The common case: the value is one CDATA section.
					if err := d.endTag(name); err != nil {
						return wxcrypto.Field{}, err
					}
					return wxcrypto.Field{Name: name, Value: string(content)}, nil
				}
				if simple {
					val = append([]byte(nil), d.b[textStart:start-9]...)
					simple = false
				}
				val = appendNormalized(val, content)
			case d.hasPrefix("<!--"):
				if simple {
					val = append([]byte(nil), d.b[textStart:d.p]...)
					simple = false
				}
				if err := d.comment(); err != nil {
					return wxcrypto.Field{}, err
				}
			case d.hasPrefix("<?") || d.hasPrefix("<!"):
				return wxcrypto.Field{}, d.fail("declarations and processing instructions are not allowed")
			default:
				return wxcrypto.Field{}, d.fail("nested element inside <" + name + ">")
			}
		case c == '&':
			if simple {
				val = append([]byte(nil), d.b[textStart:d.p]...)
				simple = false
			}
			r, err := d.reference()
			if err != nil {
				return wxcrypto.Field{}, err
			}
			val = utf8.AppendRune(val, r)
		case c == '\r':
			if simple {
				val = append([]byte(nil), d.b[textStart:d.p]...)
				simple = false
			}
			val = append(val, '\n')
			d.p++
			if d.p < len(d.b) && d.b[d.p] == '\n' {
				d.p++
			}
		case c == ']' && d.hasPrefix("]]>"):
			return wxcrypto.Field{}, d.fail("\"]]>\" in text")
		default:
			// A run of ordinary characters.
			start := d.p
			for d.p < len(d.b) {
				c := d.b[d.p]
				if c == '<' || c == '&' || c == '\r' || c == ']' {
					break
				}
				d.p++
			}
			if d.p == start { // a ']' not followed by "]>"
				d.p++
			}
			if err := (&decoder{b: d.b, p: start}).checkChars(d.b[start:d.p]); err != nil {
				return wxcrypto.Field{}, err
			}
			if !simple {
				val = append(val, d.b[start:d.p]...)
			}
		}
	}
}

// appendNormalized appends CDATA content with \r\n and \r turned into \n.
func appendNormalized(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		if src[i] == '\r' {
			dst = append(dst, '\n')
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			continue
		}
		dst = append(dst, src[i])
	}
	return dst
}

// reference parses &lt; &gt; &amp; &quot; &apos; &#NN; &#xHH;.
func (d *decoder) reference() (rune, error) {
	end := bytes.IndexByte(d.rest(), ';')
	if end < 0 || end > 12 {
		return 0, d.fail("bare '&' or unterminated reference")
	}
	ref := string(d.b[d.p+1 : d.p+end])
	var r rune
	switch ref {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "quot":
		r = '"'
	case "apos":
		r = '\''
	default:
		if !strings.HasPrefix(ref, "#") || len(ref) < 2 {
			return 0, d.fail("unknown entity &" + ref + ";")
		}
		var n uint64
		var err error
		if ref[1] == 'x' {
			if len(ref) < 3 {
				return 0, d.fail("bad character reference")
			}
			n, err = strconv.ParseUint(ref[2:], 16, 32)
		} else {
			n, err = strconv.ParseUint(ref[1:], 10, 32)
		}
		if err != nil || !validXMLRune(rune(n)) || n > utf8.MaxRune {
			return 0, d.fail("bad character reference")
		}
		r = rune(n)
	}
	d.p += end + 1
	return r, nil
}

func validXMLRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// isDigits reports whether s is a non-empty string of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendXML appends <xml>…</xml> with one element per field, in order.
// Amounts and counts are written bare and everything else in CDATA, as
// WeChat does;
// empty values are left out.
func appendXML(dst []byte, fields []wxcrypto.Field) []byte {
	dst = append(dst, "<xml>"...)
	for _, f := range fields {
		if f.Value == "" {
			continue
		}
		dst = appendElement(dst, f, !(isDigits(f.Value) && isIntField(f.Name)))
	}
	return append(dst, "</xml>"...)
}

// isIntField reports whether a field holds an integer that WeChat writes
// bare (amounts and counts); other values, digits or not, go in CDATA.
func isIntField(name string) bool {
	return strings.Contains(name, "fee") || strings.Contains(name, "count") || name == "offset" || name == "error_code"
}

// appendRootXML appends <root>…</root> with every value in CDATA, one
// element per line, as in the decrypted req_info of a refund notify
// (protocol.md §7, vector C2).
func appendRootXML(dst []byte, fields []wxcrypto.Field) []byte {
	dst = append(dst, "<root>\n"...)
	for _, f := range fields {
		if f.Value == "" {
			continue
		}
		dst = appendElement(dst, f, true)
		dst = append(dst, '\n')
	}
	return append(dst, "</root>"...)
}

func appendElement(dst []byte, f wxcrypto.Field, cdata bool) []byte {
	dst = append(dst, '<')
	dst = append(dst, f.Name...)
	dst = append(dst, '>')
	if cdata {
		dst = append(dst, "<![CDATA["...)
		v := f.Value
		for i := 0; i < len(v); i++ {
			switch {
			case v[i] == ']' && strings.HasPrefix(v[i:], "]]>"):
				// Split "]]>" across two sections.
				dst = append(dst, "]]]]><![CDATA[>"...)
				i += 2
			case v[i] == '\r':
				// A parser turns a raw \r into \n; keep it as a reference.
				dst = append(dst, "]]>&#13;<![CDATA["...)
			default:
				dst = append(dst, v[i])
			}
		}
		dst = append(dst, "]]>"...)
	} else {
		dst = append(dst, f.Value...)
	}
	dst = append(dst, "</"...)
	dst = append(dst, f.Name...)
	return append(dst, '>')
}
