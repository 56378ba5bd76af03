package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// runCmd runs the command line in-process and returns its exit code and
// output.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, streams{in: strings.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

const vectorBKey = "192006250b4c09247ec02edce69f6a2d"

func TestTools(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(vectorBKey+"\n"), 0o600)
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte(vectorBKey), 0o644)
	signedNotify := "<xml><appid>wxd930ea5d5a258f4f</appid><body>test</body><device_info>1000</device_info><mch_id>10000100</mch_id>" +
		"<nonce_str>ibuaiVcKdpRxkhJA</nonce_str><sign>9A0A8659F005D6984697E2CA0A9CF3B7</sign></xml>"
	hmacNotify := strings.Replace(signedNotify, "9A0A8659F005D6984697E2CA0A9CF3B7", "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6", 1)
	refundNotify := "<xml><return_code>SUCCESS</return_code><mch_id>10000100</mch_id><req_info>" +
		"bDP/xixH0hFEaZusu714U7rO4wZDF5SwkOt7MIFNUaladrdy0yQefoW3LYmmUmF3r7t23yZjibKV29fZKVgeUQ==</req_info></xml>"
	vectorB := []string{"appid=wxd930ea5d5a258f4f", "mch_id=10000100", "device_info=1000", "body=test", "nonce_str=ibuaiVcKdpRxkhJA"}
	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		out, err string // substrings expected
		notIn    string // must not appear anywhere
	}{
		{name: "sign vector B", args: append([]string{"sign", "--key", vectorBKey}, vectorB...), out: "9A0A8659F005D6984697E2CA0A9CF3B7"},
		{name: "sign HMAC", args: append([]string{"sign", "--key", vectorBKey, "--type", "hmac-sha256"}, vectorB...),
			out: "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"},
		{name: "sign -v redacts", args: append([]string{"sign", "-v", "--key", "@" + keyFile}, vectorB...),
			out: "key=REDACTED", notIn: vectorBKey},
		{name: "sign stdin", stdin: signedNotify, args: []string{"sign", "--key", vectorBKey}, out: "9A0A8659F005D6984697E2CA0A9CF3B7"},
		{name: "sign no key", args: []string{"sign", "a=b"}, code: 2, err: "--key is required"},
		{name: "sign bad type", args: []string{"sign", "--key", "k", "--type", "SHA1", "a=b"}, code: 2, err: "MD5 or HMAC-SHA256"},
		{name: "sign bad arg", args: []string{"sign", "--key", "k", "nonsense"}, code: 2, err: "not key=value"},
		{name: "sign loose key file", args: []string{"sign", "--key", "@" + loose, "a=b"}, code: 1, err: "chmod 600"},
		{name: "verify valid", stdin: signedNotify, args: []string{"verify", "--key", vectorBKey}, out: "valid (MD5)"},
		{name: "verify HMAC mix-up", stdin: hmacNotify, args: []string{"verify", "--key", vectorBKey}, code: 1,
			err: "made with HMAC-SHA256, not MD5", notIn: vectorBKey},
		{name: "verify AppSecret mix-up", stdin: signedNotify,
			args: []string{"verify", "--key", "0123456789abcdef0123456789abcdef", "--app-secret", vectorBKey}, code: 1,
			err: "AppSecret as the key", notIn: vectorBKey},
		{name: "verify no sign", stdin: "<xml><a>1</a></xml>", args: []string{"verify", "--key", vectorBKey}, code: 1, err: "no sign field"},
		{name: "verify malformed", stdin: "<xml><a>1</a><a>2</a></xml>", args: []string{"verify", "--key", vectorBKey}, code: 1, err: "duplicate"},
		{name: "verify doctype", stdin: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`,
			args: []string{"verify", "--key", vectorBKey}, code: 1, err: "DOCTYPE"},
		{name: "verify empty", args: []string{"verify", "--key", vectorBKey}, code: 2, err: "stdin"},
		{name: "paysign vector A", args: []string{"paysign", "--appid", "wxd678efh567hg6787", "--key", "qazwsxedcrfvtgbyhnujmikolp111111",
			"--prepay-id", "wx2017033010242291fcfe0db70013231072", "--timestamp", "1490840662", "--nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"},
			out: `"paySign": "22D9B4E54AB1950F51E0649E8810ACD6"`, err: "signed string: appId="},
		{name: "paysign missing", args: []string{"paysign", "--key", "k"}, code: 2, err: "--appid and --prepay-id"},
		{name: "decrypt vector C1", stdin: refundNotify, args: []string{"decrypt-refund", "--key", vectorBKey},
			out: "<root><refund_status><![CDATA[SUCCESS]]></refund_status></root>"},
		{name: "decrypt wrong key", stdin: refundNotify, args: []string{"decrypt-refund", "--key", strings.Repeat("0", 32)}, code: 1, err: "padding"},
		{name: "decrypt not refund", stdin: signedNotify, args: []string{"decrypt-refund", "--key", vectorBKey}, code: 1, err: "no req_info"},
		{name: "qr terminal", args: []string{"qr", "weixin://wxpay/bizpayurl?pr=abc"}, out: "█"},
		{name: "qr png", args: []string{"qr", "weixin://wxpay/bizpayurl?pr=abc", "--out", filepath.Join(dir, "q.png")}, out: "wrote"},
		{name: "qr no url", args: []string{"qr"}, code: 2, err: "takes 1 argument"},
		{name: "version", args: []string{"version"}, out: "wxpay "},
		{name: "unknown command", args: []string{"bogus"}, code: 2, err: "unknown command"},
		{name: "unknown flag", args: []string{"sign", "--bogus"}, code: 2, err: "unknown flag"},
		{name: "help", args: []string{"--help"}, out: "Examples:"},
		{name: "bill bad date", args: []string{"bill", "--date", "28/11/2026"}, code: 2, err: "YYYY-MM-DD"},
		{name: "refund no fee", args: []string{"refund", "X1234567"}, code: 2, err: "--fee"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, c.stdin, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			if !strings.Contains(out, c.out) || !strings.Contains(errOut, c.err) {
				t.Fatalf("want stdout ∋ %q and stderr ∋ %q\nstdout: %s\nstderr: %s", c.out, c.err, out, errOut)
			}
			if c.notIn != "" && (strings.Contains(out, c.notIn) || strings.Contains(errOut, c.notIn)) {
				t.Fatalf("output contains %q", c.notIn)
			}
			if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
				t.Fatalf("stack trace on stderr: %s", errOut)
			}
			if c.code != 0 && strings.Count(strings.TrimSpace(strings.SplitN(errOut, "\n", 2)[0]), "\n") > 0 {
				t.Fatalf("error is not one line: %s", errOut)
			}
		})
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRoot(streams{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "completion" || c.Name() == "version" {
			continue
		}
		if c.Example == "" && len(c.Commands()) == 0 {
			t.Errorf("wxpay %s has no example in --help", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" && c.Example == "" {
				t.Errorf("wxpay %s %s has no example", c.Name(), sub.Name())
			}
		}
	}
}

func TestDemo(t *testing.T) {
	code, out, errOut := runCmd(t, "", "demo")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"wx.login()", "jscode2session", "unifiedorder", "signed string: appId=", "requestPayment:ok",
		"/wxpay/notify/pay", "PAID", "req_info decrypted", "SUCCESS", "0 differences", "All 11 steps checked out"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "01c6d59a3f9024db6336662ac95c8e74") || strings.Contains(out, "e10adc3949ba59abbe56e057f20f883e") {
		t.Error("demo printed a secret")
	}
	_ = wxcrypto.Redacted
}

func TestDemoV3(t *testing.T) {
	code, out, errOut := runCmd(t, "", "demo", "--v3")
	if code != 0 {
		t.Fatalf("demo --v3 exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"APIv3", "/v3/certificates", "/v3/pay/transactions/jsapi", "signType=RSA",
		"requestPayment:ok", "verifies Wechatpay-Signature", "TRANSACTION.SUCCESS", "PAID", "/v3/refund/domestic/refunds",
		"REFUND.SUCCESS, resource decrypted", "reply: HTTP 204", "SHA-1 checked", "0 differences", "All 12 steps checked out"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --v3 output lacks %q", want)
		}
	}
	// The APIv3 key the simulator derives for its default merchant, and
	// any private key, must not be printed.
	sim, err := wxsim.New(wxsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	creds, err := sim.V3Credentials(wxsim.DefaultMchID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, creds.APIv3Key) || strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, wxsim.DefaultAPIKey) {
		t.Error("demo --v3 printed a secret")
	}
}

// The demo on APIv3 for a merchant that verifies with the WeChat Pay
// public key only, and for one migrating (both kinds of key sign).
func TestDemoV3Verifiers(t *testing.T) {
	for _, v := range []string{"public_key", "both"} {
		code, out, errOut := runCmd(t, "", "demo", "--v3", "--verifier", v, "-q")
		if code != 0 {
			t.Fatalf("demo --v3 --verifier %s: exit %d\n%s\n%s", v, code, out, errOut)
		}
		if !strings.Contains(out, "the WeChat Pay public key PUB_KEY_ID_") || !strings.Contains(out, "All 12 steps checked out") {
			t.Errorf("demo --v3 --verifier %s:\n%s", v, out)
		}
		if v == "both" && !strings.Contains(out, "platform certificates") {
			t.Errorf("both: no platform certificates in\n%s", out)
		}
	}
	if code, _, errOut := runCmd(t, "", "demo", "--verifier", "both"); code == 0 || !strings.Contains(errOut, "--v3") {
		t.Errorf("--verifier without --v3: exit %d %s", code, errOut)
	}
}
