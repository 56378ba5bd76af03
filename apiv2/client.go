package apiv2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/pkcs12"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Version is the SDK version sent in the User-Agent.
const Version = "0.1.0"

// Config is what identifies a merchant to WeChat Pay v2.
type Config struct {
	// AppID is the app bound to the merchant: for mini-program pay, the
	// mini program's AppID. Required.
	AppID string
	// MchID is the merchant id (商户号). Required.
	MchID string
	// APIKey is the 32-character v2 API key (商户平台 → 账户中心 → API安全 →
	// API密钥). Required. It is not the AppSecret and not the APIv3 key.
	APIKey wxpay.Secret
	// SignType is the signature algorithm of requests and the one expected
	// on answers and notifies: MD5 (the default) or HMAC-SHA256.
	SignType wxpay.SignType
	// NotifyURL is the default notify_url of UnifiedOrder requests that do
	// not set one.
	NotifyURL string

	// The client certificate for /secapi/* (refund, reverse) and
	// downloadfundflow: a PEM pair (CertPEM+KeyPEM or CertFile+KeyFile), or
	// PKCS#12 (P12 or P12File, password P12Password, which defaults to the
	// merchant id as WeChat issues it). Optional: without one, those calls
	// fail with ErrNoCertificate against an https host (WeChat); over plain
	// http (the simulator, a local proxy) no certificate can be presented
	// and none is asked for. The key and the PKCS#12 bytes are secrets: they
	// print as REDACTED.
	CertPEM     []byte
	KeyPEM      wxpay.Secret
	CertFile    string
	KeyFile     string
	P12         wxpay.Secret
	P12File     string
	P12Password wxpay.Secret

	// AppSecret and APIv3Key are optional and used only to diagnose
	// signature failures: a signature made with one of them is reported as
	// that mix-up. An API key equal to the AppSecret is refused.
	AppSecret wxpay.Secret
	APIv3Key  wxpay.Secret
}

// ErrNoCertificate is returned by the calls that need the merchant's client
// certificate when none was configured.
var ErrNoCertificate = errors.New("apiv2: this API needs the merchant client certificate (Config.CertFile/KeyFile or P12File)")

// Validate checks the configuration without reading any file.
func (c *Config) Validate() error {
	var problems []string
	if c.AppID == "" {
		problems = append(problems, "AppID is empty")
	}
	if c.MchID == "" {
		problems = append(problems, "MchID is empty")
	}
	if n := len(c.APIKey); n != 32 {
		problems = append(problems, fmt.Sprintf("APIKey has %d characters; the v2 API key (API密钥) has exactly 32", n))
	}
	if c.APIKey != "" && c.APIKey == c.AppSecret {
		problems = append(problems, "APIKey is the mini program's AppSecret; use the API key (API密钥) from the merchant platform")
	}
	if c.SignType != "" && !c.SignType.Valid() {
		problems = append(problems, fmt.Sprintf("SignType %q is neither MD5 nor HMAC-SHA256", string(c.SignType)))
	}
	if (len(c.CertPEM) > 0) != (len(c.KeyPEM) > 0) {
		problems = append(problems, "CertPEM and KeyPEM go together")
	}
	if (c.CertFile != "") != (c.KeyFile != "") {
		problems = append(problems, "CertFile and KeyFile go together")
	}
	if c.NotifyURL != "" {
		if err := sdkhttp.CheckNotifyURL(c.NotifyURL); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("apiv2: invalid config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// certificate loads the client certificate named by the config, if any.
func (c *Config) certificate() (*tls.Certificate, error) {
	certPEM, keyPEM := c.CertPEM, []byte(c.KeyPEM.Reveal())
	if c.CertFile != "" {
		var err error
		if certPEM, err = os.ReadFile(c.CertFile); err != nil {
			return nil, fmt.Errorf("apiv2: reading the client certificate: %w", err)
		}
		if keyPEM, err = os.ReadFile(c.KeyFile); err != nil {
			return nil, fmt.Errorf("apiv2: reading the client key: %w", err)
		}
	}
	if len(certPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("apiv2: client certificate: %w", err)
		}
		return &cert, nil
	}
	p12 := []byte(c.P12.Reveal())
	if c.P12File != "" {
		var err error
		if p12, err = os.ReadFile(c.P12File); err != nil {
			return nil, fmt.Errorf("apiv2: reading the PKCS#12 certificate: %w", err)
		}
	}
	if len(p12) == 0 {
		return nil, nil
	}
	pass := c.P12Password.Reveal()
	if pass == "" {
		pass = c.MchID
	}
	key, leaf, err := pkcs12.Decode(p12, pass)
	if err != nil {
		return nil, fmt.Errorf("apiv2: PKCS#12 certificate (the password defaults to the merchant id): %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Client calls WeChat Pay v2 for one merchant and app. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	key      string // the API key, or the sandbox key in sandbox mode
	signType wxpay.SignType

	base, backup string
	hc, certHC   *http.Client
	now          func() time.Time
	nonce        func() string
	log          *slog.Logger
	timeout      time.Duration

	sandbox    bool
	sandboxMu  sync.Mutex
	sandboxKey string
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	base, backup string
	hc           *http.Client
	now          func() time.Time
	nonce        func() string
	log          *slog.Logger
	timeout      time.Duration
	sandbox      bool
}

// WithBaseURL sends every call to base instead of https://api.mch.weixin.qq.com:
// the simulator, a proxy, a regional host.
func WithBaseURL(base string) Option {
	return func(o *options) error {
		b, err := sdkhttp.BaseURL(base)
		if err != nil {
			return fmt.Errorf("apiv2: base URL: %w", err)
		}
		o.base = b
		return nil
	}
}

// WithFailover lets calls that are safe to repeat go to the backup host
// when the primary fails: queries, bills and tools on any transport failure
// or HTTP 5xx; unifiedorder, closeorder, refund and reverse (idempotent by
// their numbers) only when the primary could not be reached at all. Micropay
// never fails over. An empty backup means https://api2.mch.weixin.qq.com.
func WithFailover(backup string) Option {
	return func(o *options) error {
		if backup == "" {
			backup = wxpay.HostPayBackup
		}
		b, err := sdkhttp.BaseURL(backup)
		if err != nil {
			return fmt.Errorf("apiv2: backup URL: %w", err)
		}
		o.backup = b
		return nil
	}
}

// WithHTTPClient uses hc for every call. When a client certificate is
// configured, hc's Transport must be an *http.Transport (it is cloned and
// given the certificate) or nil.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("apiv2: nil http.Client")
		}
		o.hc = hc
		return nil
	}
}

// WithClock sets the clock used for pay-parameter timestamps.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithNonce sets the nonce source (default: 32 random characters from
// crypto/rand). Tests use it for deterministic messages.
func WithNonce(nonce func() string) Option {
	return func(o *options) error { o.nonce = nonce; return nil }
}

// WithLogger logs one debug line per call (API, host, duration, codes);
// never a key, a signature or a body.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.log = l; return nil }
}

// WithTimeout bounds every call whose context has no deadline, except
// micropay (default: the official SDK's 6 s; micropay 10 s; report 1 s,
// which WithTimeout replaces too).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("apiv2: timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// WithSandbox sends calls to WeChat's v2 sandbox (/sandboxnew/…): the sign
// key is fetched once with getsignkey and every call is signed with it,
// with MD5. Note that WeChat's current sandbox only answers micropay cases.
func WithSandbox() Option {
	return func(o *options) error { o.sandbox = true; return nil }
}

// NewClient checks the configuration, loads the client certificate if one
// is configured, and returns a Client.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{base: wxpay.HostPay}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Client{
		cfg: cfg, key: cfg.APIKey.Reveal(), signType: cfg.SignType,
		base: o.base, backup: o.backup, hc: o.hc, now: o.now, nonce: o.nonce,
		log: o.log, timeout: o.timeout, sandbox: o.sandbox,
	}
	if c.signType == "" {
		c.signType = wxpay.SignTypeMD5
	}
	if c.sandbox {
		c.signType = wxpay.SignTypeMD5
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: sdkhttp.PooledTransport()}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.nonce == nil {
		c.nonce = wxcrypto.NewNonce
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	cert, err := cfg.certificate()
	if err != nil {
		return nil, err
	}
	if cert != nil {
		var tr *http.Transport
		switch t := c.hc.Transport.(type) {
		case nil:
			tr = sdkhttp.PooledTransport()
		case *http.Transport:
			tr = t.Clone()
		default:
			return nil, fmt.Errorf("apiv2: the client certificate needs an *http.Transport, the http.Client has %T", t)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		hc := *c.hc
		hc.Transport = tr
		c.certHC = &hc
	}
	return c, nil
}

// Format prints the client as its app, merchant, sign type and host, for
// every verb. fmt never calls the String method of a wxpay.Secret held in
// an unexported field, so printing the client's fields would show the API
// key, the AppSecret and the client certificate's private key.
func (c *Client) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "apiv2.Client{AppID: %s, MchID: %s, SignType: %s, Host: %s}", c.cfg.AppID, c.cfg.MchID, c.signType, c.base)
}

// AppID returns the configured app id.
func (c *Client) AppID() string { return c.cfg.AppID }

// MchID returns the configured merchant id.
func (c *Client) MchID() string { return c.cfg.MchID }

// SignType returns the signature algorithm the client uses.
func (c *Client) SignType() wxpay.SignType { return c.signType }

// safety says when a call may be sent again to the backup host.
type safety int

const (
	safeNever   safety = iota // micropay: the payment code is single use
	safeDialErr               // idempotent writes: only if the primary was never reached
	safeAlways                // reads
)

// endpoint describes one v2 API.
type endpoint struct {
	name        string
	path        string
	sandboxPath string // when it differs from "/sandboxnew" + path
	cert        bool   // needs the client certificate
	safe        safety
	timeout     time.Duration
	signType    wxpay.SignType // forced sign type (downloadfundflow)
	noAppID     bool           // the request carries no appid
	unsigned    bool           // the answer carries no sign
	noResult    bool           // the answer may lack result_code (a FAIL one still counts)
}

func (c *Client) url(base string, ep *endpoint) string {
	if c.sandbox {
		if ep.sandboxPath != "" {
			return base + ep.sandboxPath
		}
		return base + "/sandboxnew" + ep.path
	}
	return base + ep.path
}

// response is a checked answer: its fields sorted by name.
type response struct {
	fields []wxcrypto.Field
}

func (r *response) get(name string) string { return lookup(r.fields, name) }

// lookup finds a field by binary search in fields sorted by name.
func lookup(fields []wxcrypto.Field, name string) string {
	lo, hi := 0, len(fields)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if fields[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(fields) && fields[lo].Name == name {
		return fields[lo].Value
	}
	return ""
}

// call signs and sends a request, and checks the answer in order: HTTP
// status, return_code, signature, result_code. On a business failure it
// returns the parsed answer together with the *Error (reverse needs recall).
func (c *Client) call(ctx context.Context, ep *endpoint, build func(*encoder)) (*response, error) {
	body, st, key, e, err := c.prepare(ctx, ep, build)
	if err != nil {
		return nil, err
	}
	defer putEncoder(e)
	status, data, err := c.send(ctx, ep, body, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	return c.check(ep, st, key, status, data, e)
}

// prepare builds and signs a request: the base fields, the fields build
// adds, the signature with the endpoint's sign type and the current key.
// The caller returns the encoder to the pool when it no longer needs it
// (diagnostics read the request's fields from it).
func (c *Client) prepare(ctx context.Context, ep *endpoint, build func(*encoder)) (body []byte, st wxpay.SignType, key string, e *encoder, err error) {
	if key, err = c.signKey(ctx); err != nil {
		return nil, "", "", nil, err
	}
	st = c.signType
	if ep.signType != "" {
		st = ep.signType
	}
	e = getEncoder()
	c.base2(e, ep, st)
	build(e)
	if e.err != nil {
		err = &Error{API: ep.name, Err: e.err}
	} else if body, err = e.encode(st, key); err != nil {
		err = &Error{API: ep.name, Err: err}
	}
	if err != nil {
		putEncoder(e)
		return nil, "", "", nil, err
	}
	return body, st, key, e, nil
}

// base2 adds the base fields every request carries.
func (c *Client) base2(e *encoder, ep *endpoint, st wxpay.SignType) {
	if !ep.noAppID {
		e.str("appid", c.cfg.AppID)
	}
	e.str("mch_id", c.cfg.MchID)
	e.str("nonce_str", c.nonce())
	if st == wxpay.SignTypeHMACSHA256 {
		e.str("sign_type", string(st))
	}
}

// check applies the decision order of protocol.md §1 to an answer.
func (c *Client) check(ep *endpoint, st wxpay.SignType, key string, status int, data []byte, req *encoder) (*response, error) {
	if status != http.StatusOK {
		return nil, &Error{API: ep.name, HTTPStatus: status, Unknown: status >= 500}
	}
	fields, err := ParseMessage(data)
	if err != nil {
		// A 200 we cannot read may follow an executed call.
		return nil, &Error{API: ep.name, HTTPStatus: status, Unknown: true, Err: err}
	}
	r := &response{fields: fields}
	rc := r.get("return_code")
	switch rc {
	case "SUCCESS":
	case "FAIL":
		e := &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, ReturnMsg: r.get("return_msg")}
		if signMsg(e.ReturnMsg) {
			e.Diagnosis = c.diagnose(req.fields(), "", st, key)
		}
		return nil, e
	default:
		return nil, &Error{API: ep.name, HTTPStatus: status, Unknown: true,
			Err: fmt.Errorf("answer has return_code %q", rc)}
	}
	if !ep.unsigned {
		sign := r.get("sign")
		if sign == "" {
			return nil, &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, Unknown: true, Err: &sigError{"missing"}}
		}
		if !wxcrypto.Verify(st, key, fields, sign) {
			return nil, &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, Unknown: true,
				Err: &sigError{"does not verify"}, Diagnosis: c.diagnose(fields, sign, st, key)}
		}
	}
	if ep.noResult && r.get("result_code") == "" {
		return r, nil
	}
	switch res := r.get("result_code"); res {
	case "SUCCESS":
		return r, nil
	case "FAIL":
		code := ErrorCode(r.get("err_code"))
		e := &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, Code: code,
			Message: r.get("err_code_des"), Unknown: unknownCode(code)}
		if code == ErrSignError {
			e.Diagnosis = c.diagnose(req.fields(), "", st, key)
		}
		return r, e
	default:
		return nil, &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, Unknown: true,
			Err: fmt.Errorf("answer has result_code %q", res)}
	}
}

func (c *Client) diagnose(fields []wxcrypto.Field, given string, st wxpay.SignType, key string) *wxcrypto.Diagnosis {
	return wxcrypto.Diagnose(fields, given, wxcrypto.DiagnoseOptions{
		Key: key, SignType: st,
		OtherSecrets: map[string]string{"AppSecret": c.cfg.AppSecret.Reveal(), "APIv3 key": c.cfg.APIv3Key.Reveal()},
	})
}

// send posts body to the primary host, and to the backup host when the
// failure and the endpoint allow. It returns the status and the body (read
// up to limit bytes).
func (c *Client) send(ctx context.Context, ep *endpoint, body []byte, limit int64) (int, []byte, error) {
	hc := c.hc
	if ep.cert && !c.sandbox {
		switch {
		case c.certHC != nil:
			hc = c.certHC
		case strings.HasPrefix(c.base, "https://"):
			return 0, nil, &Error{API: ep.name, Err: ErrNoCertificate}
		}
		// Over plain http (the simulator, a local proxy) no certificate
		// can be presented, so none is required; WeChat is https only.
	}
	if _, ok := ctx.Deadline(); !ok {
		d := ep.timeout
		if c.timeout > 0 && ep.timeout <= 6*time.Second {
			d = c.timeout
		}
		if d == 0 {
			d = 6 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	status, data, err := c.post(ctx, hc, ep, c.url(c.base, ep), body, limit)
	if c.backup != "" && ctx.Err() == nil && c.failover(ep, status, err) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "wxpay: primary host failed, trying the backup",
			slog.String("api", ep.name), slog.String("error", errText(err, status)))
		status, data, err = c.post(ctx, hc, ep, c.url(c.backup, ep), body, limit)
	}
	if err != nil {
		return 0, nil, &Error{API: ep.name, HTTPStatus: status, Unknown: !sdkhttp.NeverSent(err), Err: err}
	}
	return status, data, nil
}

func errText(err error, status int) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d", status)
}

func (c *Client) failover(ep *endpoint, status int, err error) bool {
	switch ep.safe {
	case safeAlways:
		return err != nil || status >= 500
	case safeDialErr:
		return err != nil && sdkhttp.NeverSent(err)
	}
	return false
}

func (c *Client) post(ctx context.Context, hc *http.Client, ep *endpoint, u string, body []byte, limit int64) (int, []byte, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("User-Agent", "wxpay-go/"+Version)
	resp, err := hc.Do(req)
	if err != nil {
		c.logCall(ctx, ep, u, start, 0, err)
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("answer larger than %d bytes", limit)
	}
	c.logCall(ctx, ep, u, start, resp.StatusCode, err)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, data, nil
}

func (c *Client) logCall(ctx context.Context, ep *endpoint, u string, start time.Time, status int, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	host := u
	if p, perr := url.Parse(u); perr == nil {
		host = p.Host
	}
	attrs := []slog.Attr{slog.String("api", ep.name), slog.String("host", host),
		slog.Duration("duration", time.Since(start)), slog.Int("status", status)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wxpay v2 call", attrs...)
}
