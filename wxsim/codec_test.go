package wxsim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestDecodeXMLAccepts(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want message
	}{
		{"plain", "<xml><a>1</a><b>x y</b></xml>", message{{Name: "a", Value: "1"}, {Name: "b", Value: "x y"}}},
		{"cdata", "<xml><a><![CDATA[<&>]]></a></xml>", message{{Name: "a", Value: "<&>"}}},
		{"mixed", "<xml><a>x<![CDATA[]]]]><![CDATA[>]]>&amp;y&#x4E2D;&#25991;</a></xml>", message{{Name: "a", Value: "x]]>&y中文"}}},
		{"entities", "<xml><a>&lt;&gt;&amp;&quot;&apos;</a></xml>", message{{Name: "a", Value: `<>&"'`}}},
		{"white space", "\n <xml>\n\t<a>1</a>\r\n <b></b>\n</xml>\n\n", message{{Name: "a", Value: "1"}, {Name: "b", Value: ""}}},
		{"declaration", `<?xml version="1.0" encoding="UTF-8"?><xml><a>1</a></xml>`, message{{Name: "a", Value: "1"}}},
		{"declaration single quotes", `<?xml version='1.0' encoding='utf-8' standalone='yes' ?>` + "\n<xml><a>1</a></xml>", message{{Name: "a", Value: "1"}}},
		{"bom", "\xEF\xBB\xBF<xml><a>1</a></xml>", message{{Name: "a", Value: "1"}}},
		{"comments", "<!-- c --><xml><!-- x --><a>1<!-- y -->2</a></xml><!-- z -->", message{{Name: "a", Value: "12"}}},
		{"self-closing", "<xml><a/><b /></xml>", message{{Name: "a"}, {Name: "b"}}},
		{"empty root", "<xml></xml>", message{}},
		{"self-closing root", "<xml/>", nil},
		{"crlf normalized", "<xml><a>x\r\ny\rz</a><b><![CDATA[p\r\nq]]></b><c>&#13;</c></xml>", message{{Name: "a", Value: "x\ny\nz"}, {Name: "b", Value: "p\nq"}, {Name: "c", Value: "\r"}}},
		{"chinese", "<xml><body>测试商店-商品</body></xml>", message{{Name: "body", Value: "测试商店-商品"}}},
		{"single bracket", "<xml><a>]x]]</a></xml>", message{{Name: "a", Value: "]x]]"}}},
		{"names", "<xml><execute_time_>1</execute_time_><a-b.c>2</a-b.c></xml>", message{{Name: "execute_time_", Value: "1"}, {Name: "a-b.c", Value: "2"}}},
		{"end tag space", "<xml><a>1</a ></xml >", message{{Name: "a", Value: "1"}}},
	}
	for _, c := range cases {
		got, err := decodeXML([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			}
		}
	}
}

func TestDecodeXMLRefuses(t *testing.T) {
	cases := []struct {
		name string
		in   string
		utf8 bool // NOT_UTF8 rather than XML_FORMAT_ERROR
	}{
		{"empty", "", false},
		{"spaces", "   ", false},
		{"doctype", `<!DOCTYPE xml [<!ENTITY x "y">]><xml><a>&x;</a></xml>`, false},
		{"doctype inside", `<xml><!DOCTYPE x><a>1</a></xml>`, false},
		{"external entity", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>`, false},
		{"processing instruction", `<?xml-stylesheet href="x"?><xml><a>1</a></xml>`, false},
		{"pi inside", `<xml><?pi x?><a>1</a></xml>`, false},
		{"pi in field", `<xml><a>1<?pi?></a></xml>`, false},
		{"late declaration", ` <?xml version="1.0"?><xml></xml>`, false},
		{"nested", "<xml><a><b>1</b></a></xml>", false},
		{"duplicate", "<xml><a>1</a><a>1</a></xml>", false},
		{"duplicate empty", "<xml><a/><a></a></xml>", false},
		{"trailing element", "<xml><a>1</a></xml><xml></xml>", false},
		{"trailing text", "<xml><a>1</a></xml>x", false},
		{"leading text", "x<xml><a>1</a></xml>", false},
		{"wrong root", "<root><a>1</a></root>", false},
		{"root attribute", `<xml a="1"><b>1</b></xml>`, false},
		{"field attribute", `<xml><b c="1">1</b></xml>`, false},
		{"text in root", "<xml>hello<a>1</a></xml>", false},
		{"cdata in root", "<xml><![CDATA[x]]><a>1</a></xml>", false},
		{"unterminated root", "<xml><a>1</a>", false},
		{"unterminated field", "<xml><a>1", false},
		{"mismatched end", "<xml><a>1</b></xml>", false},
		{"unterminated cdata", "<xml><a><![CDATA[1</a></xml>", false},
		{"unknown entity", "<xml><a>&nbsp;</a></xml>", false},
		{"bare ampersand", "<xml><a>a & b</a></xml>", false},
		{"bad char ref", "<xml><a>&#0;</a></xml>", false},
		{"bad char ref hex", "<xml><a>&#xD800;</a></xml>", false},
		{"bare lt", "<xml><a>a < b</a></xml>", false},
		{"control char", "<xml><a>\x01</a></xml>", false},
		{"control char in cdata", "<xml><a><![CDATA[\x00]]></a></xml>", false},
		{"cdata end in text", "<xml><a>a]]>b</a></xml>", false},
		{"double dash comment", "<xml><!-- a -- b --><a>1</a></xml>", false},
		{"unterminated comment", "<xml><!-- a <a>1</a></xml>", false},
		{"bad name", "<xml><1a>1</1a></xml>", false},
		{"colon name", "<xml><a:b>1</a:b></xml>", false},
		{"long name", "<xml><" + strings.Repeat("a", 65) + ">1</" + strings.Repeat("a", 65) + "></xml>", false},
		{"not utf8", "<xml><a>\xff\xfe</a></xml>", true},
		{"gbk declared", `<?xml version="1.0" encoding="GBK"?><xml><a>1</a></xml>`, true},
		{"bad version", `<?xml version="2.0"?><xml><a>1</a></xml>`, false},
		{"declaration without version", `<?xml encoding="UTF-8"?><xml></xml>`, false},
		{"U+FFFE", "<xml><a>\uFFFE</a></xml>", false},
	}
	for _, c := range cases {
		_, err := decodeXML([]byte(c.in))
		var de *decodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want a decodeError", c.name, err)
			continue
		}
		if (de.kind == errNotUTF8) != c.utf8 {
			t.Errorf("%s: kind = %v", c.name, de.kind)
		}
	}
}

func TestDecodeXMLTooManyFields(t *testing.T) {
	var b strings.Builder
	b.WriteString("<xml>")
	for i := 0; i <= maxFields; i++ {
		b.WriteString("<f" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + itoa(i) + ">1</f" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + itoa(i) + ">")
	}
	b.WriteString("</xml>")
	if _, err := decodeXML([]byte(b.String())); err == nil {
		t.Fatal("accepted more than maxFields elements")
	}
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

func TestAppendXML(t *testing.T) {
	fields := []wxcrypto.Field{
		{Name: "return_code", Value: "SUCCESS"},
		{Name: "mch_id", Value: "1225312702"},
		{Name: "total_fee", Value: "100"},
		{Name: "empty", Value: ""},
		{Name: "attach", Value: "a]]>b<c>&"},
	}
	got := string(appendXML(nil, fields))
	want := "<xml><return_code><![CDATA[SUCCESS]]></return_code><mch_id><![CDATA[1225312702]]></mch_id><total_fee>100</total_fee>" +
		"<attach><![CDATA[a]]]]><![CDATA[>b<c>&]]></attach></xml>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	back, err := decodeXML([]byte(got))
	if err != nil || back.get("attach") != "a]]>b<c>&" || back.has("empty") {
		t.Fatalf("round trip = %q, %v", back, err)
	}
	// encoding/xml reads the same values.
	if v := xmlValues(t, []byte(got))["attach"]; v != "a]]>b<c>&" {
		t.Fatalf("encoding/xml reads attach as %q", v)
	}
}

// xmlValues reads a flat document with encoding/xml.
func xmlValues(t testing.TB, b []byte) map[string]string {
	out := map[string]string{}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var name string
	var val []byte
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("encoding/xml: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			name, val = tk.Name.Local, nil
		case xml.CharData:
			val = append(val, tk...)
		case xml.EndElement:
			if depth == 2 {
				out[name] = string(val)
			}
			depth--
		}
	}
}

func TestRootXMLVectorC2Layout(t *testing.T) {
	got := string(appendRootXML(nil, []wxcrypto.Field{{Name: "a", Value: "1"}, {Name: "b", Value: "支付用户零钱"}}))
	want := "<root>\n<a><![CDATA[1]]></a>\n<b><![CDATA[支付用户零钱]]></b>\n</root>"
	if got != want {
		t.Fatalf("got %q", got)
	}
}

// FuzzDecodeRequest feeds arbitrary bytes to the request decoder: it must
// never panic, and whatever it accepts must survive an encode/decode round
// trip and be well-formed for encoding/xml too.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		"<xml><appid><![CDATA[wx426b3015555a46be]]></appid><total_fee>1</total_fee></xml>",
		`<?xml version="1.0" encoding="UTF-8"?><xml><a>&amp;&#x4E2D;</a><b/></xml>`,
		"<!DOCTYPE x><xml></xml>", "<xml><a><b>1</b></a></xml>", "<xml><a>1</a><a>2</a></xml>",
		"<xml><a>1</a></xml>trailing", "\xEF\xBB\xBF<xml><!-- c --><a>x\r\ny</a></xml>",
		"<xml><a><![CDATA[x]]]]><![CDATA[>]]></a></xml>", "<xml><a>\xff</a></xml>", "",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeXML(in)
		if err != nil {
			var de *decodeError
			if !errors.As(err, &de) {
				t.Fatalf("error of the wrong type: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, f := range m {
			if seen[f.Name] {
				t.Fatalf("duplicate %q accepted", f.Name)
			}
			seen[f.Name] = true
		}
		// Empty values are dropped by the encoder.
		var nonEmpty message
		for _, f := range m {
			if f.Value != "" {
				nonEmpty = append(nonEmpty, f)
			}
		}
		out := appendXML(nil, nonEmpty)
		back, err := decodeXML(out)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%q", err, out)
		}
		if len(back) != len(nonEmpty) {
			t.Fatalf("round trip changed the field count")
		}
		for i := range back {
			if back[i] != nonEmpty[i] {
				t.Fatalf("round trip changed %q: %q -> %q", nonEmpty[i].Name, nonEmpty[i].Value, back[i].Value)
			}
		}
		// encoding/xml must accept what we accepted and see the same values
		// (it keeps \r from character references the same way).
		got := xmlValues(t, out)
		for _, f := range nonEmpty {
			if got[f.Name] != f.Value {
				t.Fatalf("encoding/xml reads %q as %q, we as %q", f.Name, got[f.Name], f.Value)
			}
		}
	})
}
