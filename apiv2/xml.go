package apiv2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// MaxMessageSize is the default cap on a v2 XML message (a response or a
// notify): 1 MiB. Bills have their own cap, MaxBillSize.
const MaxMessageSize = 1 << 20

// Errors of the strict XML decoder. They wrap into *XMLError, which also
// gives the byte offset; callers branch with errors.Is.
var (
	ErrXMLDoctype   = errors.New("DOCTYPE or entity declaration refused")
	ErrXMLDuplicate = errors.New("duplicate element")
	ErrXMLTrailing  = errors.New("content after the root element")
	ErrXMLSyntax    = errors.New("malformed XML")
	ErrXMLNested    = errors.New("nested element inside a field")
	ErrXMLEncoding  = errors.New("not UTF-8")
	ErrXMLTooLarge  = errors.New("message too large")
)

// XMLError is a message that the strict decoder refused.
type XMLError struct {
	Offset int    // byte offset of the problem in the input
	Field  string // the element concerned, when there is one
	Err    error  // one of the ErrXML… sentinels
}

func (e *XMLError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("apiv2: xml: %v <%s> at byte %d", e.Err, e.Field, e.Offset)
	}
	return fmt.Sprintf("apiv2: xml: %v at byte %d", e.Err, e.Offset)
}

func (e *XMLError) Unwrap() error { return e.Err }

// ParseMessage decodes a flat v2 XML document, <xml><name>value</name>…</xml>,
// into its fields sorted by name. It is strict where encoding/xml is lax: a
// DOCTYPE, entity declaration, comment or processing instruction (other than
// the XML declaration) is refused; so are attributes, nested elements,
// duplicate elements, text between fields, content after </xml>, an
// encoding other than UTF-8, and bytes that are not UTF-8. Values may be
// CDATA, escaped text, or both mixed; a self-closing element is an empty
// value. The returned values share memory with a single copy of data.
func ParseMessage(data []byte) ([]wxcrypto.Field, error) {
	if len(data) > MaxMessageSize {
		return nil, &XMLError{Offset: MaxMessageSize, Err: ErrXMLTooLarge}
	}
	return parseFlat(string(data), "xml", nil)
}

// parseFlat decodes s whose root element is root, appending its fields to
// dst, and returns them sorted by name.
func parseFlat(s, root string, dst []wxcrypto.Field) ([]wxcrypto.Field, error) {
	if !utf8.ValidString(s) {
		return nil, &XMLError{Err: ErrXMLEncoding}
	}
	if dst == nil {
		dst = make([]wxcrypto.Field, 0, 32)
	}
	p := scanner{s: s}
	p.skip("\uFEFF")
	p.space()
	if p.skip("<?xml") {
		if err := p.declaration(); err != nil {
			return nil, err
		}
		p.space()
	}
	if err := p.open(root); err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.skip("</") {
			if !p.skip(root) || !p.skip(">") {
				return nil, p.fail(ErrXMLSyntax, "")
			}
			break
		}
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		dst = append(dst, f)
	}
	p.space()
	if p.i != len(s) {
		return nil, p.fail(ErrXMLTrailing, "")
	}
	sortFields(dst)
	for i := 1; i < len(dst); i++ {
		if dst[i].Name == dst[i-1].Name {
			return nil, &XMLError{Offset: strings.Index(s, "<"+dst[i].Name), Field: dst[i].Name, Err: ErrXMLDuplicate}
		}
	}
	return dst, nil
}

// sortFields sorts a message's fields by name. A message has a few dozen
// fields: an insertion sort of their indices, then one pass putting them in
// place, moves far fewer pointers (each move is a write barrier while the
// GC runs) than swapping the fields themselves.
func sortFields(f []wxcrypto.Field) {
	if len(f) > 64 || wxcrypto.Sorted(f) {
		wxcrypto.SortFields(f)
		return
	}
	var idx [64]uint8
	order := idx[:len(f)]
	for i := range f {
		j := i
		for j > 0 && f[order[j-1]].Name > f[i].Name {
			order[j] = order[j-1]
			j--
		}
		order[j] = uint8(i)
	}
	var tmp [64]wxcrypto.Field
	copy(tmp[:len(f)], f)
	for i, k := range order {
		f[i] = tmp[k]
	}
}

type scanner struct {
	s string
	i int
}

func (p *scanner) fail(err error, field string) error {
	return &XMLError{Offset: p.i, Field: field, Err: err}
}

func (p *scanner) skip(prefix string) bool {
	if strings.HasPrefix(p.s[p.i:], prefix) {
		p.i += len(prefix)
		return true
	}
	return false
}

func (p *scanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// declaration consumes the rest of "<?xml …?>", which must declare UTF-8 if
// it declares an encoding.
func (p *scanner) declaration() error {
	if p.i >= len(p.s) || !(p.s[p.i] == ' ' || p.s[p.i] == '?' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		return p.fail(ErrXMLSyntax, "")
	}
	end := strings.Index(p.s[p.i:], "?>")
	if end < 0 {
		return p.fail(ErrXMLSyntax, "")
	}
	decl := p.s[p.i : p.i+end]
	// EncodingDecl ::= S 'encoding' Eq ('"' EncName '"' | "'" EncName "'"),
	// Eq ::= S? '=' S?: spaces may surround the '='.
	if _, enc, ok := strings.Cut(decl, "encoding"); ok {
		enc, ok = strings.CutPrefix(strings.TrimLeft(enc, " \t\r\n"), "=")
		enc = strings.TrimLeft(enc, " \t\r\n")
		if !ok || enc == "" || (enc[0] != '"' && enc[0] != '\'') {
			return p.fail(ErrXMLSyntax, "")
		}
		v, _, ok := strings.Cut(enc[1:], enc[:1])
		if !ok {
			return p.fail(ErrXMLSyntax, "")
		}
		if !strings.EqualFold(v, "utf-8") {
			return p.fail(ErrXMLEncoding, "")
		}
	}
	p.i += end + 2
	return nil
}

// markup classifies a "<!" or "<?" that is not allowed where it stands.
func (p *scanner) markup(field string) error {
	rest := p.s[p.i:]
	if strings.HasPrefix(rest, "<!DOCTYPE") || strings.HasPrefix(rest, "<!ENTITY") || strings.HasPrefix(rest, "<!doctype") {
		return p.fail(ErrXMLDoctype, field)
	}
	return p.fail(ErrXMLSyntax, field)
}

func (p *scanner) open(name string) error {
	if p.i < len(p.s) && p.s[p.i] == '<' && p.i+1 < len(p.s) && (p.s[p.i+1] == '!' || p.s[p.i+1] == '?') {
		return p.markup("")
	}
	if !p.skip("<") || !p.skip(name) || !p.skip(">") {
		return p.fail(ErrXMLSyntax, name)
	}
	return nil
}

func nameByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' ||
		!first && (c >= '0' && c <= '9' || c == '-' || c == '.')
}

// field reads one <name>value</name> or <name/>.
func (p *scanner) field() (wxcrypto.Field, error) {
	if p.i >= len(p.s) {
		return wxcrypto.Field{}, p.fail(ErrXMLSyntax, "")
	}
	if p.s[p.i] != '<' {
		return wxcrypto.Field{}, p.fail(ErrXMLSyntax, "") // text between fields
	}
	if p.i+1 < len(p.s) && (p.s[p.i+1] == '!' || p.s[p.i+1] == '?') {
		return wxcrypto.Field{}, p.markup("")
	}
	p.i++
	start := p.i
	for p.i < len(p.s) && nameByte(p.s[p.i], p.i == start) {
		p.i++
	}
	name := p.s[start:p.i]
	if name == "" {
		return wxcrypto.Field{}, p.fail(ErrXMLSyntax, "")
	}
	if p.skip("/>") {
		return wxcrypto.Field{Name: name}, nil
	}
	if !p.skip(">") {
		return wxcrypto.Field{}, p.fail(ErrXMLSyntax, name) // attributes or junk
	}
	// The value: text and CDATA sections up to </name>.
	var b *strings.Builder
	value, single := "", true
	add := func(seg string) {
		if single && value == "" && b == nil {
			value = seg
			return
		}
		if b == nil {
			b = &strings.Builder{}
			b.WriteString(value)
		}
		single = false
		b.WriteString(seg)
	}
	for {
		k := strings.IndexByte(p.s[p.i:], '<')
		if k < 0 {
			return wxcrypto.Field{}, p.fail(ErrXMLSyntax, name)
		}
		if k > 0 {
			text := p.s[p.i : p.i+k]
			if strings.IndexByte(text, '&') >= 0 {
				u, err := unescape(text)
				if err != nil {
					return wxcrypto.Field{}, p.fail(ErrXMLSyntax, name)
				}
				text = u
			}
			if text != "" {
				add(text)
			}
			p.i += k
		}
		switch {
		case p.skip("<![CDATA["):
			end := strings.Index(p.s[p.i:], "]]>")
			if end < 0 {
				return wxcrypto.Field{}, p.fail(ErrXMLSyntax, name)
			}
			if end > 0 {
				add(p.s[p.i : p.i+end])
			}
			p.i += end + 3
		case p.skip("</"):
			if !p.skip(name) || !p.skip(">") {
				return wxcrypto.Field{}, p.fail(ErrXMLSyntax, name)
			}
			if b != nil {
				value = b.String()
			}
			return wxcrypto.Field{Name: name, Value: value}, nil
		case p.i+1 < len(p.s) && (p.s[p.i+1] == '!' || p.s[p.i+1] == '?'):
			return wxcrypto.Field{}, p.markup(name)
		default:
			return wxcrypto.Field{}, p.fail(ErrXMLNested, name)
		}
	}
}

// unescape decodes the five predefined entities and character references.
func unescape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, ';')
		if j <= 0 || j > 10 {
			return "", ErrXMLSyntax
		}
		ent := s[:j]
		s = s[j+1:]
		switch ent {
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "amp":
			b.WriteByte('&')
		case "quot":
			b.WriteByte('"')
		case "apos":
			b.WriteByte('\'')
		default:
			if ent[0] != '#' {
				return "", ErrXMLSyntax // named entities need a DTD: refused
			}
			var n uint64
			var err error
			if len(ent) > 1 && (ent[1] == 'x' || ent[1] == 'X') {
				n, err = strconv.ParseUint(ent[2:], 16, 32)
			} else {
				n, err = strconv.ParseUint(ent[1:], 10, 32)
			}
			if err != nil || n == 0 || !utf8.ValidRune(rune(n)) {
				return "", ErrXMLSyntax
			}
			b.WriteRune(rune(n))
		}
	}
}

// appendElement appends <name>value</name>: digits bare, anything else in
// CDATA (with "]]>" split across two sections).
func appendElement(dst []byte, name, value string) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	if isDigits(value) {
		dst = append(dst, value...)
	} else {
		dst = append(dst, "<![CDATA["...)
		for strings.IndexByte(value, ']') >= 0 {
			i := strings.Index(value, "]]>")
			if i < 0 {
				break
			}
			dst = append(dst, value[:i+2]...)
			dst = append(dst, "]]><![CDATA["...)
			value = value[i+2:]
		}
		dst = append(dst, value...)
		dst = append(dst, "]]>"...)
	}
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

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

// validName reports whether s can be an element name on the wire.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// EncodeMessage writes fields as the flat v2 <xml> document, in the order
// given, skipping empty values. A field name that is not a valid element
// name is an error.
func EncodeMessage(fields []wxcrypto.Field) ([]byte, error) {
	out := append(make([]byte, 0, 64+32*len(fields)), "<xml>"...)
	for _, f := range fields {
		if !validName(f.Name) {
			return nil, fmt.Errorf("apiv2: invalid field name %q", f.Name)
		}
		if f.Value != "" {
			out = appendElement(out, f.Name, f.Value)
		}
	}
	return append(out, "</xml>"...), nil
}
