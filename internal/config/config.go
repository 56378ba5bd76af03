// Package config loads the wxpay command's configuration: a TOML file,
// then WXPAY_… environment variables overriding any key, then secrets read
// from files (api_key_file, …) that must not be readable by group or others.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

// Config is the whole configuration. Every key can be set in the TOML file
// or by an environment variable: WXPAY_ plus the key path in upper case,
// sections joined by _ (wechat.api_key → WXPAY_WECHAT_API_KEY).
type Config struct {
	// Addr is the listen address of `wxpay serve`; default ":8080".
	Addr string `toml:"addr"`
	// DB is "sqlite:PATH" (default "sqlite:./wxpay.db") or a postgres:// URL.
	DB string `toml:"db"`
	// PublicURL is the service's address as WeChat reaches it; the notify
	// URLs are built from it (PublicURL + /wxpay/notify/pay …).
	PublicURL string `toml:"public_url"`
	// AdminToken guards the admin API and dashboard (or AdminTokenFile).
	AdminToken     wxpay.Secret `toml:"admin_token"`
	AdminTokenFile string       `toml:"admin_token_file"`
	// LogFormat is "text" (default) or "json"; LogLevel debug, info (default), warn, error.
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`

	WeChat  WeChat  `toml:"wechat"`
	Shop    Shop    `toml:"shop"`
	Jobs    Jobs    `toml:"jobs"`
	Webhook Webhook `toml:"webhook"`
}

// WeChat is the merchant's WeChat Pay account and mini program.
type WeChat struct {
	AppID         string       `toml:"app_id"`
	MchID         string       `toml:"mch_id"`
	APIKey        wxpay.Secret `toml:"api_key"`
	APIKeyFile    string       `toml:"api_key_file"`
	AppSecret     wxpay.Secret `toml:"app_secret"`
	AppSecretFile string       `toml:"app_secret_file"`
	SignType      string       `toml:"sign_type"` // MD5 (default) or HMAC-SHA256
	CertFile      string       `toml:"cert_file"` // apiclient_cert.pem
	KeyFile       string       `toml:"key_file"`  // apiclient_key.pem
	P12File       string       `toml:"p12_file"`  // apiclient_cert.p12 (password: the mch id)
	// BaseURL overrides https://api.mch.weixin.qq.com (the simulator, a proxy).
	BaseURL string `toml:"base_url"`
	// LoginBaseURL overrides https://api.weixin.qq.com.
	LoginBaseURL string `toml:"login_base_url"`
	// Failover sends safe calls to api2.mch.weixin.qq.com when the primary fails.
	Failover bool `toml:"failover"`

	// APIVersion is "v2" (the default: XML, api_key) or "v3" (JSON, RSA
	// request signatures, AES-GCM notifies; needs key_file, cert_serial or
	// cert_file, and the APIv3 key).
	APIVersion string `toml:"api_version"`
	// CertSerial is the serial of the merchant API certificate
	// (apiclient_cert.pem), in hex. Empty: read from cert_file.
	CertSerial string `toml:"cert_serial"`
	// APIv3Key is the 32-byte APIv3 key (APIv3密钥), or APIv3KeyFile.
	APIv3Key     wxpay.Secret `toml:"apiv3_key"`
	APIv3KeyFile string       `toml:"apiv3_key_file"`
	// Verifier says how v3 answers and notifies are verified:
	// "certificates" (the default: platform certificates downloaded from
	// /v3/certificates and refreshed every 12 h), "public_key" (the WeChat
	// Pay public key: public_key_id and public_key_file) or "both" (during
	// the migration from the first to the second).
	Verifier string `toml:"verifier"`
	// PublicKeyID (PUB_KEY_ID_…) and PublicKeyFile (pub_key.pem) are the
	// WeChat Pay public key.
	PublicKeyID   string `toml:"public_key_id"`
	PublicKeyFile string `toml:"public_key_file"`
	// PlatformCertFile optionally pins a platform certificate fetched out
	// of band (PEM): certificate downloads must then be signed by it or
	// its verified successors.
	PlatformCertFile string `toml:"platform_cert_file"`
	// PrivateKeyPEM is the merchant API private key when it comes from
	// the embedded simulator rather than key_file; never in a file or env.
	PrivateKeyPEM wxpay.Secret `toml:"-"`
	// PublicKeyPEM is the WeChat Pay public key when it comes from the
	// embedded simulator rather than public_key_file.
	PublicKeyPEM string `toml:"-"`
}

// V3 reports whether the merchant uses APIv3.
func (w *WeChat) V3() bool { return w.APIVersion == "v3" }

// Shop is what is sold and how orders behave.
type Shop struct {
	Name       string     `toml:"name"`        // the order description's prefix
	OrderTTL   Duration   `toml:"order_ttl"`   // how long an order can be paid; default 30m
	SessionTTL Duration   `toml:"session_ttl"` // default 24h
	Products   []Products `toml:"products"`
}

// Products is one catalog entry; price in fen.
type Products struct {
	SKU   string `toml:"sku"`
	Name  string `toml:"name"`
	Price int64  `toml:"price"`
}

// Jobs tunes the background jobs.
type Jobs struct {
	Disabled bool `toml:"disabled"`
	// ReconcileAt is the China-time hour:minute of the daily reconciliation; default "10:00".
	ReconcileAt string `toml:"reconcile_at"`
}

// Webhook is where business events (order.paid …) are delivered.
type Webhook struct {
	URL        string       `toml:"url"`
	Secret     wxpay.Secret `toml:"secret"`
	SecretFile string       `toml:"secret_file"`
}

// Duration is a time.Duration written as "30m" in TOML and env.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the defaults.
func Default() *Config {
	return &Config{Addr: ":8080", DB: "sqlite:./wxpay.db", LogFormat: "text", LogLevel: "info",
		WeChat: WeChat{SignType: "MD5"}, Jobs: Jobs{ReconcileAt: "10:00"}}
}

// Load reads the file (when path is not empty), then the environment,
// then the secret files, and validates what does not depend on the mode
// (simulator or real WeChat).
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, c)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, fmt.Errorf("config: %s: unknown key %q", path, und[0].String())
		}
	}
	if env == nil {
		env = os.LookupEnv
	}
	if err := applyEnv(reflect.ValueOf(c).Elem(), "WXPAY", env); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		file string
		dst  *wxpay.Secret
	}{
		{c.AdminTokenFile, &c.AdminToken}, {c.WeChat.APIKeyFile, &c.WeChat.APIKey},
		{c.WeChat.AppSecretFile, &c.WeChat.AppSecret}, {c.Webhook.SecretFile, &c.Webhook.Secret},
		{c.WeChat.APIv3KeyFile, &c.WeChat.APIv3Key},
	} {
		if s.file == "" {
			continue
		}
		v, err := ReadSecretFile(s.file)
		if err != nil {
			return nil, err
		}
		*s.dst = v
	}
	for _, f := range []string{c.WeChat.KeyFile, c.WeChat.P12File} {
		if f != "" {
			if err := checkPerm(f); err != nil {
				return nil, err
			}
		}
	}
	if err := c.validateAPIVersion(); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadSecretFile reads a secret from a file that only its owner can read,
// trimming surrounding white space.
func ReadSecretFile(path string) (wxpay.Secret, error) {
	if err := checkPerm(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: reading secret: %w", err)
	}
	return wxpay.Secret(strings.TrimSpace(string(b))), nil
}

// checkPerm refuses a secret file that group or others can read (G1).
func checkPerm(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("config: %s is readable by group or others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	return nil
}

// applyEnv sets every field whose environment variable is present.
func applyEnv(v reflect.Value, prefix string, env func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			if err := applyEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		s, ok := env(name)
		if !ok {
			continue
		}
		if err := setField(fv, s); err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
	}
	return nil
}

func setField(fv reflect.Value, s string) error {
	if u, ok := fv.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	default:
		return errors.New("cannot be set from the environment (use the file)")
	}
	return nil
}

// Catalog returns the configured products as a catalog.
func (c *Config) Catalog() merchant.Catalog {
	cat := merchant.Catalog{}
	for _, p := range c.Shop.Products {
		cat[p.SKU] = merchant.Product{SKU: p.SKU, Name: p.Name, Price: p.Price}
	}
	return cat
}

// DemoCatalog is the catalog `serve --sim` seeds when none is configured.
func DemoCatalog() []Products {
	return []Products{
		{SKU: "coffee", Name: "拿铁咖啡 Latte", Price: 2800},
		{SKU: "tea", Name: "抹茶 Matcha", Price: 2200},
		{SKU: "cake", Name: "芝士蛋糕 Cheesecake", Price: 3500},
		{SKU: "cent", Name: "一分钱测试 1-fen test", Price: 1},
	}
}

// ValidateWeChat checks the WeChat section for talking to the real WeChat.
func (c *Config) ValidateWeChat() error {
	var p []string
	if c.WeChat.AppID == "" {
		p = append(p, "wechat.app_id is empty")
	}
	if c.WeChat.MchID == "" {
		p = append(p, "wechat.mch_id is empty")
	}
	if c.WeChat.V3() {
		p = append(p, c.WeChat.V3Problems()...)
	} else if len(c.WeChat.APIKey) != 32 {
		p = append(p, fmt.Sprintf("wechat.api_key has %d characters, not 32", len(c.WeChat.APIKey)))
	}
	if c.WeChat.AppSecret == "" {
		p = append(p, "wechat.app_secret is empty (needed for jscode2session)")
	}
	if c.PublicURL == "" {
		p = append(p, "public_url is empty (WeChat must reach the notify URLs)")
	}
	if c.AdminToken == "" {
		p = append(p, "admin_token is empty")
	} else if len(c.AdminToken) < 16 {
		p = append(p, "admin_token is shorter than 16 characters")
	}
	if len(p) > 0 {
		return errors.New("config: " + strings.Join(p, "; "))
	}
	return nil
}

// validateAPIVersion checks api_version and verifier spellings.
func (c *Config) validateAPIVersion() error {
	w := &c.WeChat
	switch w.APIVersion {
	case "":
		w.APIVersion = "v2"
	case "v2", "v3":
	default:
		return fmt.Errorf("config: wechat.api_version %q: use \"v2\" or \"v3\"", w.APIVersion)
	}
	switch w.Verifier {
	case "":
		w.Verifier = VerifierCertificates
	case VerifierCertificates, VerifierPublicKey, VerifierBoth:
	default:
		return fmt.Errorf("config: wechat.verifier %q: use %q, %q or %q", w.Verifier,
			VerifierCertificates, VerifierPublicKey, VerifierBoth)
	}
	return nil
}

// The verifier modes of an APIv3 merchant.
const (
	VerifierCertificates = "certificates"
	VerifierPublicKey    = "public_key"
	VerifierBoth         = "both"
)

// V3Problems lists what an APIv3 merchant's section lacks (empty when
// complete).
func (w *WeChat) V3Problems() []string {
	var p []string
	if w.KeyFile == "" && w.PrivateKeyPEM == "" {
		p = append(p, "wechat.key_file is empty (the merchant API private key, apiclient_key.pem, signs every v3 request)")
	}
	if w.CertSerial == "" && w.CertFile == "" {
		p = append(p, "wechat.cert_serial is empty and there is no wechat.cert_file to read it from")
	}
	if len(w.APIv3Key) != 32 {
		p = append(p, fmt.Sprintf("wechat.apiv3_key has %d characters, not 32", len(w.APIv3Key)))
	}
	if w.Verifier == VerifierPublicKey || w.Verifier == VerifierBoth {
		if w.PublicKeyID == "" || w.PublicKeyFile == "" && w.PublicKeyPEM == "" {
			p = append(p, "wechat.verifier = \""+w.Verifier+"\" needs wechat.public_key_id and wechat.public_key_file")
		}
	}
	return p
}

// IsNotExist reports whether err is a missing config file.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
