package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"time"
)

func TestLoadFileEnvAndSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "wxpay.toml")
	keyFile := filepath.Join(dir, "api_key")
	os.WriteFile(keyFile, []byte("e10adc3949ba59abbe56e057f20f883e\n"), 0o600)
	os.WriteFile(file, []byte(`
addr = ":9000"
public_url = "https://shop.example"
[wechat]
app_id = "wx1"
mch_id = "123"
api_key_file = "`+keyFile+`"
[shop]
order_ttl = "15m"
[[shop.products]]
sku = "a"
name = "A"
price = 100
`), 0o644)
	env := map[string]string{"WXPAY_ADDR": ":9100", "WXPAY_WECHAT_MCH_ID": "456", "WXPAY_ADMIN_TOKEN": "0123456789abcdef0", "WXPAY_WECHAT_FAILOVER": "true"}
	c, err := Load(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9100" || c.WeChat.MchID != "456" || c.WeChat.AppID != "wx1" || !c.WeChat.Failover {
		t.Fatalf("env did not override: %+v", c)
	}
	if c.WeChat.APIKey.Reveal() != "e10adc3949ba59abbe56e057f20f883e" {
		t.Fatal("api key file not read")
	}
	if c.Shop.OrderTTL.Duration != 15*time.Minute || c.Catalog()["a"].Price != 100 {
		t.Fatalf("shop: %+v", c.Shop)
	}
	if err := c.ValidateWeChat(); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Fatalf("validate: %v", err)
	}
}

func TestRefusesReadableSecretAndUnknownKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	os.WriteFile(keyFile, []byte("x"), 0o644)
	if _, err := ReadSecretFile(keyFile); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable secret accepted: %v", err)
	}
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("adr = \":1\"\n"), 0o644)
	if _, err := Load(file, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

// TestExampleConfigIsCurrent keeps docs/wxpay.example.toml in step with
// Config: every key in it must be known.
func TestExampleConfigIsCurrent(t *testing.T) {
	var c Config
	md, err := toml.DecodeFile("../../docs/wxpay.example.toml", &c)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("unknown keys in the example: %v", und)
	}
	if len(c.Shop.Products) == 0 || c.WeChat.MchID == "" {
		t.Fatalf("example decoded to %+v", c)
	}
}

func TestV3Settings(t *testing.T) {
	dir := t.TempDir()
	v3key := filepath.Join(dir, "apiv3_key")
	os.WriteFile(v3key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	env := map[string]string{"WXPAY_WECHAT_API_VERSION": "v3", "WXPAY_WECHAT_APIV3_KEY_FILE": v3key,
		"WXPAY_WECHAT_APP_ID": "wx1", "WXPAY_WECHAT_MCH_ID": "123", "WXPAY_WECHAT_APP_SECRET": "s",
		"WXPAY_PUBLIC_URL": "https://shop.example", "WXPAY_ADMIN_TOKEN": "0123456789abcdef0"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := Load("", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if !c.WeChat.V3() || c.WeChat.APIv3Key.Reveal() != "0123456789abcdef0123456789abcdef" || c.WeChat.Verifier != VerifierCertificates {
		t.Fatalf("v3 settings: %+v", c.WeChat)
	}
	// No API key is needed for v3, but the merchant key and serial are.
	err = c.ValidateWeChat()
	if err == nil || strings.Contains(err.Error(), "api_key has") || !strings.Contains(err.Error(), "key_file") || !strings.Contains(err.Error(), "cert_serial") {
		t.Fatalf("validate v3: %v", err)
	}
	c.WeChat.KeyFile, c.WeChat.CertSerial = "/k.pem", "ABC"
	if err := c.ValidateWeChat(); err != nil {
		t.Fatalf("a complete v3 section: %v", err)
	}
	c.WeChat.Verifier = VerifierBoth
	if err := c.ValidateWeChat(); err == nil || !strings.Contains(err.Error(), "public_key_id") {
		t.Fatalf("both without a public key: %v", err)
	}

	env["WXPAY_WECHAT_API_VERSION"] = "v4"
	if _, err := Load("", lookup); err == nil || !strings.Contains(err.Error(), "api_version") {
		t.Fatalf("api_version v4: %v", err)
	}
	env["WXPAY_WECHAT_API_VERSION"] = "v3"
	env["WXPAY_WECHAT_VERIFIER"] = "platform"
	if _, err := Load("", lookup); err == nil || !strings.Contains(err.Error(), "verifier") {
		t.Fatalf("verifier platform: %v", err)
	}
	os.Chmod(v3key, 0o644)
	delete(env, "WXPAY_WECHAT_VERIFIER")
	if _, err := Load("", lookup); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a readable APIv3 key file: %v", err)
	}
}
