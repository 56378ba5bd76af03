package apiv2

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// fieldMap turns sorted fields into a map, failing on duplicates.
func fieldMap(t testing.TB, f []wxcrypto.Field) map[string]string {
	t.Helper()
	m := make(map[string]string, len(f))
	for _, x := range f {
		if _, dup := m[x.Name]; dup {
			t.Fatalf("duplicate field %s", x.Name)
		}
		m[x.Name] = x.Value
	}
	return m
}

func TestParseMessageAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"CDATA", `<xml><a><![CDATA[x y]]></a></xml>`, map[string]string{"a": "x y"}},
		{"bare text", `<xml><total_fee>1999</total_fee></xml>`, map[string]string{"total_fee": "1999"}},
		{"mixed CDATA and text", `<xml><a>1<![CDATA[2]]>3<![CDATA[4]]></a></xml>`, map[string]string{"a": "1234"}},
		{"empty CDATA", `<xml><a><![CDATA[]]></a></xml>`, map[string]string{"a": ""}},
		{"CDATA is literal", `<xml><a><![CDATA[<b>&amp;</b>]]></a></xml>`, map[string]string{"a": "<b>&amp;</b>"}},
		{"split ]]>", `<xml><a><![CDATA[x]]]]><![CDATA[>y]]></a></xml>`, map[string]string{"a": "x]]>y"}},
		{"predefined entities", `<xml><a>&amp;&lt;&gt;&quot;&apos;</a></xml>`, map[string]string{"a": `&<>"'`}},
		{"decimal reference", `<xml><a>&#20013;&#25991;</a></xml>`, map[string]string{"a": "中文"}},
		{"hex reference", `<xml><a>&#x4e2d;&#X4E2D;</a></xml>`, map[string]string{"a": "中中"}},
		{"entities around text", `<xml><a>a&amp;b=c&lt;d</a></xml>`, map[string]string{"a": "a&b=c<d"}},
		{"self-closing", `<xml><a/><b>1</b></xml>`, map[string]string{"a": "", "b": "1"}},
		{"empty element", `<xml><a></a></xml>`, map[string]string{"a": ""}},
		{"raw UTF-8", `<xml><body>腾讯充值中心-QQ会员充值</body></xml>`, map[string]string{"body": "腾讯充值中心-QQ会员充值"}},
		{"whitespace in values kept", "<xml><a> x\n</a></xml>", map[string]string{"a": " x\n"}},
		{"whitespace between fields", "\n<xml>\n\t<a>1</a>\r\n  <b>2</b>\n</xml>\n\n", map[string]string{"a": "1", "b": "2"}},
		{"> in text", `<xml><a>1>2</a></xml>`, map[string]string{"a": "1>2"}},
		{"no fields", `<xml></xml>`, map[string]string{}},
		{"name characters", `<xml><execute_time_>5</execute_time_><a-b.c9>x</a-b.c9></xml>`, map[string]string{"execute_time_": "5", "a-b.c9": "x"}},
		{"declaration", `<?xml version="1.0"?><xml><a>1</a></xml>`, map[string]string{"a": "1"}},
		{"declaration utf-8", `<?xml version="1.0" encoding="UTF-8"?>` + "\n<xml><a>1</a></xml>", map[string]string{"a": "1"}},
		{"declaration utf-8 lower, single quotes", `<?xml version='1.0' encoding='utf-8' standalone='yes'?><xml><a>1</a></xml>`, map[string]string{"a": "1"}},
		{"declaration utf-8 with spaces", `<?xml version = "1.0" encoding = "UTF-8" ?><xml><a>1</a></xml>`, map[string]string{"a": "1"}},
		{"BOM", "\uFEFF<xml><a>1</a></xml>", map[string]string{"a": "1"}},
		{"BOM and declaration", "\uFEFF<?xml version=\"1.0\" encoding=\"UTF-8\"?><xml><a>1</a></xml>", map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseMessage(%q): %v", tt.in, err)
			}
			if !wxcrypto.Sorted(f) {
				t.Errorf("fields not sorted: %v", f)
			}
			got := fieldMap(t, f)
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
				}
			}
		})
	}
}

func TestParseMessageRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		// X1–X3: no DOCTYPE, so no entity can ever be declared or fetched.
		{"X1 DOCTYPE with external entity", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`, ErrXMLDoctype},
		{"X1 after the declaration", `<?xml version="1.0"?>` + "\n" + `<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`, ErrXMLDoctype},
		{"X2 billion laughs", billionLaughs, ErrXMLDoctype},
		{"X3 external DTD", `<!DOCTYPE xml SYSTEM "http://attacker.example/x.dtd"><xml><a>1</a></xml>`, ErrXMLDoctype},
		{"X3 parameter entity", `<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://attacker.example/p"> %p;]><xml/>`, ErrXMLDoctype},
		{"lower-case doctype", `<!doctype xml><xml><a>1</a></xml>`, ErrXMLDoctype},
		{"DOCTYPE between fields", `<xml><!DOCTYPE x><a>1</a></xml>`, ErrXMLDoctype},
		{"ENTITY inside a value", `<xml><a><!ENTITY e "x"></a></xml>`, ErrXMLDoctype},
		{"undeclared entity", `<xml><a>&e;</a></xml>`, ErrXMLSyntax},
		{"entity without semicolon", `<xml><a>&amp</a></xml>`, ErrXMLSyntax},
		{"empty reference", `<xml><a>&#;</a></xml>`, ErrXMLSyntax},
		{"NUL reference", `<xml><a>&#0;</a></xml>`, ErrXMLSyntax},
		{"surrogate reference", `<xml><a>&#xD800;</a></xml>`, ErrXMLSyntax},
		{"reference beyond Unicode", `<xml><a>&#x110000;</a></xml>`, ErrXMLSyntax},
		{"bad hex reference", `<xml><a>&#xZZ;</a></xml>`, ErrXMLSyntax},
		// X4: one value verified, another used, is impossible.
		{"X4 duplicate", `<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>`, ErrXMLDuplicate},
		{"X4 duplicate, same value", `<xml><total_fee>1</total_fee><total_fee>1</total_fee></xml>`, ErrXMLDuplicate},
		{"X4 duplicate, far apart", `<xml><out_trade_no>A</out_trade_no><b>1</b><c>2</c><out_trade_no><![CDATA[B]]></out_trade_no></xml>`, ErrXMLDuplicate},
		{"X4 duplicate, empty", `<xml><a/><a></a></xml>`, ErrXMLDuplicate},
		{"X4 duplicate sign", `<xml><a>1</a><sign>X</sign><sign>Y</sign></xml>`, ErrXMLDuplicate},
		// X5
		{"X5 trailing garbage", `<xml><a>1</a></xml>garbage`, ErrXMLTrailing},
		{"X5 second root", `<xml><a>1</a></xml><xml><a>2</a></xml>`, ErrXMLTrailing},
		{"X5 trailing comment", `<xml><a>1</a></xml><!-- c -->`, ErrXMLTrailing},
		{"X5 trailing NUL", "<xml><a>1</a></xml>\x00", ErrXMLTrailing},
		// X6
		{"X6 nested", `<xml><a><b>1</b></a></xml>`, ErrXMLNested},
		{"X6 nested root", `<xml><xml><a>1</a></xml></xml>`, ErrXMLNested},
		{"X6 100k nested", "<xml>" + strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000) + "</xml>", ErrXMLNested},
		{"comment", `<xml><!-- c --><a>1</a></xml>`, ErrXMLSyntax},
		{"comment in a value", `<xml><a>1<!-- c --></a></xml>`, ErrXMLSyntax},
		{"comment before the root", `<!-- c --><xml><a>1</a></xml>`, ErrXMLSyntax},
		{"processing instruction", `<xml><?php echo 1; ?><a>1</a></xml>`, ErrXMLSyntax},
		{"processing instruction in a value", `<xml><a><?pi?></a></xml>`, ErrXMLSyntax},
		{"processing instruction before the root", `<?xml-stylesheet href="a"?><xml><a>1</a></xml>`, ErrXMLSyntax},
		{"second declaration", `<?xml version="1.0"?><?xml version="1.0"?><xml/>`, ErrXMLSyntax},
		{"unterminated declaration", `<?xml version="1.0"<xml><a>1</a></xml>`, ErrXMLSyntax},
		{"attribute", `<xml><a x="1">1</a></xml>`, ErrXMLSyntax},
		{"attribute on the root", `<xml a="1"><a>1</a></xml>`, ErrXMLSyntax},
		{"space before />", `<xml><a /></xml>`, ErrXMLSyntax},
		{"mismatched close tag", `<xml><a>1</b></xml>`, ErrXMLSyntax},
		{"close tag prefix", `<xml><ab>1</a></xml>`, ErrXMLSyntax},
		{"unclosed field", `<xml><a>1</xml>`, ErrXMLSyntax},
		{"unclosed root", `<xml><a>1</a>`, ErrXMLSyntax},
		{"unterminated CDATA", `<xml><a><![CDATA[1</a></xml>`, ErrXMLSyntax},
		{"text between fields", `<xml>x<a>1</a></xml>`, ErrXMLSyntax},
		{"text after the last field", `<xml><a>1</a>x</xml>`, ErrXMLSyntax},
		{"bad name", `<xml><1a>1</1a></xml>`, ErrXMLSyntax},
		{"empty name", `<xml><>1</></xml>`, ErrXMLSyntax},
		{"other root", `<root><a>1</a></root>`, ErrXMLSyntax},
		{"self-closing root", `<xml/>`, ErrXMLSyntax},
		{"empty", ``, ErrXMLSyntax},
		{"only a BOM", "\uFEFF", ErrXMLSyntax},
		{"JSON", `{"return_code":"SUCCESS"}`, ErrXMLSyntax},
		// X9: one encoding, UTF-8, and nothing else.
		{"X9 invalid UTF-8 in a value", "<xml><a>\xff\xfe</a></xml>", ErrXMLEncoding},
		{"X9 GBK bytes", "<xml><body>\xd6\xd0\xce\xc4</body></xml>", ErrXMLEncoding},
		{"X9 UTF-16LE BOM", "\xff\xfe<\x00x\x00m\x00l\x00>\x00<\x00/\x00x\x00m\x00l\x00>\x00", ErrXMLEncoding},
		{"X9 UTF-16BE BOM", "\xfe\xff\x00<\x00x\x00m\x00l\x00>\x00<\x00/\x00x\x00m\x00l\x00>", ErrXMLEncoding},
		{"X9 encoding GBK", `<?xml version="1.0" encoding="GBK"?><xml><a>1</a></xml>`, ErrXMLEncoding},
		{"X9 encoding gb2312", `<?xml version="1.0" encoding='gb2312'?><xml><a>1</a></xml>`, ErrXMLEncoding},
		{"X9 encoding UTF-16", `<?xml version="1.0" encoding="UTF-16"?><xml><a>1</a></xml>`, ErrXMLEncoding},
		{"X9 encoding GBK with spaces", `<?xml version="1.0" encoding = "GBK"?><xml><a>1</a></xml>`, ErrXMLEncoding},
		{"X9 encoding GBK with a newline", "<?xml version=\"1.0\"\nencoding=\n'GBK'?><xml><a>1</a></xml>", ErrXMLEncoding},
		{"too large", "<xml><a>" + strings.Repeat("x", MaxMessageSize) + "</a></xml>", ErrXMLTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseMessage([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted: %v", f)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			var xe *XMLError
			if !errors.As(err, &xe) {
				t.Fatalf("error %T is not an *XMLError", err)
			}
			if xe.Offset < 0 || xe.Offset > len(tt.in) {
				t.Errorf("offset %d outside the input (%d bytes)", xe.Offset, len(tt.in))
			}
			if !strings.HasPrefix(err.Error(), "apiv2: xml: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><a>&lol9;</a></xml>`

// The errors say where: the DOCTYPE is refused where it starts, a
// duplicate names its element.
func TestParseMessageErrorDetail(t *testing.T) {
	in := `<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://attacker.example/">` + `<xml/>`
	_, err := ParseMessage([]byte(in))
	var xe *XMLError
	if !errors.As(err, &xe) || xe.Offset != strings.Index(in, "<!DOCTYPE") {
		t.Errorf("DOCTYPE: %v, want offset %d", err, strings.Index(in, "<!DOCTYPE"))
	}

	in = `<xml><appid>wx1</appid><total_fee>1</total_fee><total_fee>100</total_fee></xml>`
	_, err = ParseMessage([]byte(in))
	if !errors.As(err, &xe) || xe.Field != "total_fee" || !strings.Contains(err.Error(), "<total_fee>") {
		t.Errorf("duplicate: %v (%+v)", err, xe)
	}

	_, err = ParseMessage([]byte(`<xml><a><b>1</b></a></xml>`))
	if !errors.As(err, &xe) || xe.Field != "a" || xe.Offset != len(`<xml><a>`) {
		t.Errorf("nested: %v (%+v)", err, xe)
	}
}

// X3: the parser has no way to dial. A listener that an external DTD names
// sees no connection, and the DOCTYPE is refused before anything else.
func TestParseMessageExternalDTDNoNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	url := "http://" + ln.Addr().String() + "/evil.dtd"
	for _, in := range []string{
		`<!DOCTYPE xml SYSTEM "` + url + `"><xml><a>&e;</a></xml>`,
		`<!DOCTYPE xml PUBLIC "-//X//Y" "` + url + `"><xml/>`,
		`<!DOCTYPE xml [<!ENTITY % p SYSTEM "` + url + `"> %p;]><xml><a>1</a></xml>`,
		`<!DOCTYPE xml [<!ENTITY e SYSTEM "` + url + `">]><xml><a>&e;</a></xml>`,
	} {
		if _, err := ParseMessage([]byte(in)); !errors.Is(err, ErrXMLDoctype) {
			t.Errorf("%s: %v", in, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // a dial, had there been one, would have landed
	if n := conns.Load(); n != 0 {
		t.Fatalf("the listener saw %d connections", n)
	}
}

// The size cap is exactly MaxMessageSize.
func TestParseMessageSizeLimit(t *testing.T) {
	frame := len("<xml><a></a></xml>")
	ok := "<xml><a>" + strings.Repeat("x", MaxMessageSize-frame) + "</a></xml>"
	if len(ok) != MaxMessageSize {
		t.Fatal(len(ok))
	}
	if _, err := ParseMessage([]byte(ok)); err != nil {
		t.Errorf("a message of exactly MaxMessageSize: %v", err)
	}
	if _, err := ParseMessage([]byte(ok + " ")); !errors.Is(err, ErrXMLTooLarge) {
		t.Errorf("MaxMessageSize+1: %v", err)
	}
}

// ParseMessage copies its input: the caller may reuse the buffer.
func TestParseMessageCopiesInput(t *testing.T) {
	in := []byte(`<xml><a>value</a></xml>`)
	f, err := ParseMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	copy(in, bytes.Repeat([]byte("z"), len(in)))
	if f[0].Value != "value" {
		t.Fatalf("value changed with the input: %q", f[0].Value)
	}
}

func TestEncodeMessageRoundTrip(t *testing.T) {
	in := []wxcrypto.Field{
		{Name: "z_last", Value: "written in the given order"},
		{Name: "cdata_end", Value: "]]>"},
		{Name: "specials", Value: "<&>\"'"},
		{Name: "many_ends", Value: "a]]>b]]]]>>c]]"},
		{Name: "cdata_in_value", Value: "<![CDATA[x]]>"},
		{Name: "entity_text", Value: "&amp; &#20013;"},
		{Name: "digits", Value: "0012"},
		{Name: "signed", Value: "-12"},
		{Name: "chinese", Value: "支付测试"},
		{Name: "spaces", Value: "  a b \t\n"},
		{Name: "empty", Value: ""},
		{Name: "xml", Value: "<xml><a>1</a></xml>"},
	}
	b, err := EncodeMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<xml><z_last><![CDATA[written")) || !bytes.HasSuffix(b, []byte("</xml>")) {
		t.Errorf("fields not in the given order: %s", b)
	}
	if !bytes.Contains(b, []byte("<digits>0012</digits>")) || !bytes.Contains(b, []byte("<signed><![CDATA[-12]]></signed>")) {
		t.Errorf("digits must be bare, anything else CDATA: %s", b)
	}
	if bytes.Contains(b, []byte("<empty")) {
		t.Errorf("empty value written: %s", b)
	}
	f, err := ParseMessage(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	got := fieldMap(t, f)
	for _, x := range in {
		if x.Value == "" {
			if _, ok := got[x.Name]; ok {
				t.Errorf("empty %s came back", x.Name)
			}
			continue
		}
		if got[x.Name] != x.Value {
			t.Errorf("%s: %q, want %q", x.Name, got[x.Name], x.Value)
		}
	}
	if len(got) != len(in)-1 {
		t.Errorf("%d fields back, want %d", len(got), len(in)-1)
	}
}

func TestEncodeMessageInvalidName(t *testing.T) {
	for _, name := range []string{"", "1a", "a b", "a>", "<a", "a/b", "中文", "a=b"} {
		if b, err := EncodeMessage([]wxcrypto.Field{{Name: name, Value: "x"}}); err == nil {
			t.Errorf("name %q accepted: %s", name, b)
		}
	}
}

// The example of protocol.md §2.3 parses, and its signature (vector B)
// verifies.
func TestParseMessageProtocolExample(t *testing.T) {
	in := `<xml><appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><device_info>1000</device_info><body>test</body><nonce_str>ibuaiVcKdpRxkhJA</nonce_str><sign>9A0A8659F005D6984697E2CA0A9CF3B7</sign></xml>`
	f, err := ParseMessage([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !wxcrypto.Verify("MD5", "192006250b4c09247ec02edce69f6a2d", f, lookup(f, "sign")) {
		t.Fatal("vector B does not verify")
	}
	if got := fmt.Sprint(len(f)); got != "6" {
		t.Fatalf("%s fields", got)
	}
}
