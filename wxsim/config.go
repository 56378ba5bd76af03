package wxsim

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The default merchant: the values of the reference SDK's sample
// configuration (design.md).
const (
	DefaultAppID     = "wx426b3015555a46be"
	DefaultMchID     = "1225312702"
	DefaultAPIKey    = "e10adc3949ba59abbe56e057f20f883e"
	DefaultAppSecret = "01c6d59a3f9024db6336662ac95c8e74"
)

// DefaultMerchant returns the default merchant: mch id 1225312702 with
// the mini program wx426b3015555a46be.
func DefaultMerchant() Merchant {
	return Merchant{
		MchID:  DefaultMchID,
		APIKey: DefaultAPIKey,
		Apps:   []App{{AppID: DefaultAppID, AppSecret: DefaultAppSecret}},
	}
}

// App is a mini program (or official account, or mobile app) bound to a
// merchant.
type App struct {
	AppID     string // e.g. wx426b3015555a46be
	AppSecret string // what jscode2session checks as "secret"
}

// Merchant is one WeChat Pay merchant account.
type Merchant struct {
	MchID  string // the merchant id (商户号); digits
	APIKey string // the 32-character v2 API key (API密钥); never logged
	Apps   []App  // the app ids bound to this merchant; at least one

	// NativeCallbackURL is the Native mode-1 product callback ("扫码回调
	// 链接" set in the merchant platform): when a user scans a mode-1 QR
	// code the simulator POSTs the scan to it and pays the prepay id it
	// answers. Empty: mode-1 scans fail.
	NativeCallbackURL string

	// RefundNotifyURL is the refund-result notify URL of the merchant
	// platform, used when a refund request carries no notify_url. Empty:
	// such refunds send no notify.
	RefundNotifyURL string

	// ClientCertOptional lets /secapi/* and /pay/downloadfundflow be
	// called without the merchant's client certificate even when the
	// simulator is served over TLS. False (the default) requires it, as
	// WeChat does. Over plain HTTP no certificate can be checked.
	ClientCertOptional bool

	// SandboxKey is the key getsignkey returns and sandbox calls are signed
	// with. Empty: one is generated.
	SandboxKey string

	// FeeRate is WeChat's fee in hundredths of a percent, used in bills:
	// 60 is 0.60%. Zero means 60; negative means no fee.
	FeeRate int64

	// V3 is the merchant's APIv3 setup (APIv3 key, registered API
	// certificate, public-key mode); see MerchantV3 in v3config.go. The
	// zero value enables APIv3 with generated credentials.
	V3 MerchantV3
}

// Config configures a Simulator. Zero values mean the documented defaults.
type Config struct {
	// Merchants are the merchant accounts. Empty: DefaultMerchant alone.
	Merchants []Merchant

	// Clock is the simulator's time. Nil: NewRealClock(). Use a
	// *ManualClock in tests.
	Clock Clock

	// IDs makes transaction ids, prepay ids, refund ids, codes, openids
	// and nonces. Nil: NewRandomIDs(). Use NewSequentialIDs() in tests.
	IDs IDSource

	// TimeScale divides the simulator's own delays: the notify retry
	// schedule, RefundDelay, UserPayingDelay and notify delay faults. It
	// does not change the clock, order expiry, code lifetimes or the
	// close-order minimum. Zero means 1; otherwise it must be ≥ 1. At
	// 60000 the 24h04m notify schedule takes about 1.5 s.
	TimeScale float64

	// HTTPClient sends notifies and Native callbacks. Nil: a client that
	// does not follow redirects. Each try is bounded by NotifyTimeout.
	HTTPClient *http.Client

	// NotifyTimeout bounds one notify try (and one Native callback); a
	// merchant that has not answered by then has failed the try. Zero
	// means 5 s.
	NotifyTimeout time.Duration

	// NotifySchedule is the wait before each retry of an unacknowledged
	// notify. Nil: WeChat's 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m,
	// 60m, 3h, 3h, 3h, 6h, 6h (16 tries in all over 24h04m).
	NotifySchedule []time.Duration

	// CloseMinAge is WeChat's minimum time between unifiedorder and
	// closeorder. Zero means 5 minutes; negative disables the rule.
	CloseMinAge time.Duration

	// MinExpire is the shortest time_expire WeChat accepts, counted from
	// now: zero means 5 minutes for unifiedorder and 1 minute for
	// micropay (the text of WeChat's "time_expire时间过短，刷卡至少1分钟，
	// 其他5分钟"); negative disables the check.
	MinExpire time.Duration

	// PrepayTTL is how long a prepay_id (and a code_url) stays valid.
	// Zero means 2 hours.
	PrepayTTL time.Duration

	// RefundDelay is how long an accepted refund stays PROCESSING before
	// it succeeds (scaled by TimeScale). Zero means 10 s; negative means
	// it succeeds at once.
	RefundDelay time.Duration

	// UserPayingDelay is how long a micropay in USERPAYING waits for the
	// user's password before it completes (scaled by TimeScale). Zero
	// means 10 s.
	UserPayingDelay time.Duration

	// LoginCodeTTL is the lifetime of a wx.login code. Zero means 5
	// minutes.
	LoginCodeTTL time.Duration

	// AuthCodeTTL is the lifetime of a payment code (付款码). Zero means 1
	// minute: WeChat refreshes the code every minute.
	AuthCodeTTL time.Duration

	// DefaultBalance is the balance, in fen, of a user created without
	// one. Zero means 1,000,000 fen (10,000 CNY).
	DefaultBalance int64

	// BillCreatingUntil, when positive, makes downloadbill answer "Bill
	// Creating" for day D until D+1 00:00 plus this much (WeChat: bills
	// are ready after 10:00, so 10*time.Hour). Zero: a day's bill is ready
	// as soon as the day has ended.
	BillCreatingUntil time.Duration

	// ReentryErrCode is the err_code for unifiedorder re-entered with the
	// same out_trade_no but different parameters. Empty means
	// INVALID_REQUEST (with err_code_des "201 商户订单号重复");
	// OUT_TRADE_NO_USED is the other code seen.
	ReentryErrCode string

	// RequireHTTPSNotifyURL refuses notify_url values that are not https,
	// as newer WeChat documents require. False: http is accepted, for
	// local merchants.
	RequireHTTPSNotifyURL bool

	// ClientCAs is the pool of the CA that issues merchants' client
	// certificates (see CA). When the simulator is served over TLS with
	// tls.RequestClientCert, /secapi/* and downloadfundflow calls must
	// present a certificate that chains to it and names the merchant.
	// Nil: only certificates the TLS layer verified (VerifyClientCertIfGiven)
	// are accepted.
	ClientCAs *x509.CertPool

	// MaxBodyBytes caps a request body. Zero means 64 KiB.
	MaxBodyBytes int64

	// Seed seeds the random choices of probabilistic faults (Fault.Rate).
	Seed uint64

	// Logger receives a line per WeChat call and per notify try. Nil
	// discards. API keys, app secrets and session keys are never logged.
	Logger *slog.Logger

	// V3 configures the APIv3 side shared by all merchants (platform and
	// public keys, the timestamp window, clock skew); see V3Config in
	// v3config.go.
	V3 V3Config
}

// defaultSchedule is WeChat's notify retry schedule (protocol.md §6): the
// waits after the first try and after each retry.
var defaultSchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
	10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute,
	30 * time.Minute, 60 * time.Minute, 3 * time.Hour, 3 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// NotifySchedule returns WeChat's notify retry schedule: 15 waits that
// add up to 24h04m.
func NotifySchedule() []time.Duration {
	return append([]time.Duration(nil), defaultSchedule...)
}

// withDefaults returns c with zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if len(c.Merchants) == 0 {
		c.Merchants = []Merchant{DefaultMerchant()}
	} else {
		c.Merchants = append([]Merchant(nil), c.Merchants...)
	}
	for i := range c.Merchants {
		m := &c.Merchants[i]
		if m.FeeRate == 0 {
			m.FeeRate = 60
		} else if m.FeeRate < 0 {
			m.FeeRate = 0
		}
	}
	if c.Clock == nil {
		c.Clock = NewRealClock()
	}
	if c.IDs == nil {
		c.IDs = NewRandomIDs()
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.NotifyTimeout == 0 {
		c.NotifyTimeout = 5 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.NotifySchedule == nil {
		c.NotifySchedule = NotifySchedule()
	}
	if c.CloseMinAge == 0 {
		c.CloseMinAge = 5 * time.Minute
	}
	if c.PrepayTTL == 0 {
		c.PrepayTTL = 2 * time.Hour
	}
	if c.RefundDelay == 0 {
		c.RefundDelay = 10 * time.Second
	}
	if c.UserPayingDelay == 0 {
		c.UserPayingDelay = 10 * time.Second
	}
	if c.LoginCodeTTL == 0 {
		c.LoginCodeTTL = 5 * time.Minute
	}
	if c.AuthCodeTTL == 0 {
		c.AuthCodeTTL = time.Minute
	}
	if c.DefaultBalance == 0 {
		c.DefaultBalance = 1_000_000
	}
	if c.ReentryErrCode == "" {
		c.ReentryErrCode = "INVALID_REQUEST"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports what is wrong with the configuration, after defaults
// are applied; New calls it.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("wxsim: "+format, args...)) }
	if c.TimeScale < 1 {
		bad("TimeScale %v is below 1", c.TimeScale)
	}
	if c.NotifyTimeout < 0 {
		bad("NotifyTimeout is negative")
	}
	for i, d := range c.NotifySchedule {
		if d < 0 {
			bad("NotifySchedule[%d] is negative", i)
		}
	}
	if c.PrepayTTL < 0 || c.UserPayingDelay < 0 || c.LoginCodeTTL < 0 || c.AuthCodeTTL < 0 {
		bad("PrepayTTL, UserPayingDelay, LoginCodeTTL and AuthCodeTTL must not be negative")
	}
	if c.DefaultBalance < 0 {
		bad("DefaultBalance is negative")
	}
	if c.MaxBodyBytes < 1024 {
		bad("MaxBodyBytes %d is below 1024", c.MaxBodyBytes)
	}
	if c.ReentryErrCode != "INVALID_REQUEST" && c.ReentryErrCode != "OUT_TRADE_NO_USED" {
		bad("ReentryErrCode must be INVALID_REQUEST or OUT_TRADE_NO_USED")
	}
	mchs := map[string]bool{}
	secrets := map[string]string{}
	for i, m := range c.Merchants {
		if m.MchID == "" || len(m.MchID) > 32 || !isDigits(m.MchID) {
			bad("Merchants[%d]: MchID %q must be 1 to 32 digits", i, m.MchID)
		}
		if mchs[m.MchID] {
			bad("Merchants[%d]: MchID %s appears twice", i, m.MchID)
		}
		mchs[m.MchID] = true
		if len(m.APIKey) != 32 {
			bad("Merchants[%d]: the API key has %d characters; WeChat's v2 API key has 32", i, len(m.APIKey))
		}
		if m.SandboxKey != "" && len(m.SandboxKey) != 32 {
			bad("Merchants[%d]: SandboxKey must have 32 characters", i)
		}
		if len(m.Apps) == 0 {
			bad("Merchants[%d]: no app is bound to mch %s", i, m.MchID)
		}
		for j, a := range m.Apps {
			if a.AppID == "" || len(a.AppID) > 32 {
				bad("Merchants[%d].Apps[%d]: AppID must be 1 to 32 characters", i, j)
			}
			if a.AppSecret == "" {
				bad("Merchants[%d].Apps[%d]: AppSecret is empty", i, j)
			}
			if s, ok := secrets[a.AppID]; ok && s != a.AppSecret {
				bad("app %s is configured twice with different secrets", a.AppID)
			}
			secrets[a.AppID] = a.AppSecret
		}
		for _, u := range []struct{ name, v string }{{"NativeCallbackURL", m.NativeCallbackURL}, {"RefundNotifyURL", m.RefundNotifyURL}} {
			if u.v != "" {
				if err := checkURL(u.v, false); err != nil {
					bad("Merchants[%d]: %s: %v", i, u.name, err)
				}
			}
		}
	}
	errs = append(errs, c.validateV3()...)
	return errors.Join(errs...)
}

// checkURL checks a notify or callback URL: absolute http(s) with a host
// and, like WeChat's notify_url, no query string.
func checkURL(raw string, httpsOnly bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case httpsOnly && u.Scheme != "https":
		return errors.New("must be an https URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.RawQuery != "" || strings.Contains(raw, "?"):
		return errors.New("must not carry a query string")
	case u.Fragment != "" || u.User != nil:
		return errors.New("must not carry a fragment or user info")
	}
	return nil
}
