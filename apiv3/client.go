package apiv3

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/sdkhttp"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Version is the SDK version sent in the User-Agent.
const Version = "0.1.0"

// MaxResponseSize caps the body of an API answer the client reads: 1 MiB,
// far above any real answer. Bill files have their own cap (MaxBillSize).
const MaxResponseSize = 1 << 20

// DefaultTimeout bounds a call whose context has no deadline (bill files:
// DefaultBillTimeout).
const DefaultTimeout = 10 * time.Second

// Config is what identifies a merchant to WeChat Pay APIv3 (protocol.md §13).
type Config struct {
	// MchID is the merchant id (商户号). Required.
	MchID string
	// AppID is the default app of orders and pay parameters: for
	// mini-program pay, the mini program's AppID. Optional; a request may
	// carry its own.
	AppID string
	// CertSerial is the serial number of the merchant API certificate
	// (商户API证书序列号, apiclient_cert.pem), in hex; it goes into every
	// Authorization header as serial_no (protocol.md §13.1). Required. It is
	// not a platform certificate's serial nor a PUB_KEY_ID_.
	CertSerial string
	// PrivateKey is the merchant API private key (apiclient_key.pem) as PEM,
	// PKCS#8 or PKCS#1; or give PrivateKeyFile, the path of that file.
	// Exactly one is required. The key is never logged or printed.
	PrivateKey     wxpay.Secret
	PrivateKeyFile string
	// APIv3Key is the 32-byte APIv3 key (APIv3密钥): it decrypts notifies and
	// platform certificates (protocol.md §13.4). Required. It is neither the
	// v2 API key nor the AppSecret.
	APIv3Key wxpay.Secret
	// Verifier checks every answer's and every notify's signature
	// (protocol.md §13.2): a *PublicKeyVerifier for merchants with a WeChat
	// Pay public key, a *CertificateManager for platform certificates, a
	// *MultiVerifier during a migration. A client without one refuses every
	// call with ErrNoVerifier before sending anything, except the
	// certificate download of a CertificateManager; see
	// NewCertificateManager for the bootstrap.
	Verifier Verifier
	// NotifyURL is the default notify_url of orders and refunds that do
	// not set one: an absolute http(s) URL without a query string (WeChat
	// wants https).
	NotifyURL string
}

// Validate checks the configuration without reading any file.
func (c *Config) Validate() error {
	var problems []string
	if c.MchID == "" {
		problems = append(problems, "MchID is empty")
	}
	switch {
	case c.CertSerial == "":
		problems = append(problems, "CertSerial (the merchant API certificate serial) is empty")
	case strings.HasPrefix(c.CertSerial, PublicKeyIDPrefix):
		problems = append(problems, "CertSerial is a WeChat Pay public key id; it must be the serial of the merchant's own API certificate (apiclient_cert.pem)")
	case !wxcrypto.IsHexSerial(c.CertSerial):
		problems = append(problems, fmt.Sprintf("CertSerial %q is not a hex certificate serial", c.CertSerial))
	}
	switch {
	case c.PrivateKey == "" && c.PrivateKeyFile == "":
		problems = append(problems, "the merchant private key is missing (PrivateKey or PrivateKeyFile)")
	case c.PrivateKey != "" && c.PrivateKeyFile != "":
		problems = append(problems, "give PrivateKey or PrivateKeyFile, not both")
	}
	if n := len(c.APIv3Key); n != wxcrypto.APIv3KeySize {
		problems = append(problems, fmt.Sprintf("APIv3Key has %d bytes; the APIv3 key (APIv3密钥) has exactly 32", n))
	}
	if pk, ok := c.Verifier.(*PublicKeyVerifier); ok && pk != nil {
		if err := pk.check(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.NotifyURL != "" {
		if err := sdkhttp.CheckNotifyURL(c.NotifyURL); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("apiv3: invalid config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Client calls WeChat Pay APIv3 for one merchant: it signs every request
// with the merchant key and verifies every answer with its Verifier. It is
// safe for concurrent use.
type Client struct {
	cfg      Config
	key      *rsa.PrivateKey
	aead     *wxcrypto.AEAD
	verifier Verifier

	base, backup string
	hc           *http.Client
	now          func() time.Time
	nonce        func() string
	log          *slog.Logger
	timeout      time.Duration
	maxBill      int64
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
	maxBill      int64
}

func checkBase(what, base string) (string, error) {
	b, err := sdkhttp.BaseURL(base)
	if err != nil {
		return "", fmt.Errorf("apiv3: %s URL: %w", what, err)
	}
	return b, nil
}

// WithBaseURL sends every call to base instead of
// https://api.mch.weixin.qq.com: the simulator, a proxy. Bill download
// URLs must then point at the same host.
func WithBaseURL(base string) Option {
	return func(o *options) error {
		b, err := checkBase("base", base)
		o.base = b
		return err
	}
}

// WithFailover lets calls that are safe to repeat go to the backup host
// when the primary fails: queries, bills and certificates on any transport
// failure or HTTP 5xx; prepay, close and refund (idempotent by
// out_trade_no and out_refund_no) only when the primary could not be
// reached at all (DNS failure, connection refused). An empty backup means
// https://api2.mch.weixin.qq.com.
func WithFailover(backup string) Option {
	return func(o *options) error {
		if backup == "" {
			backup = wxpay.HostPayBackup
		}
		b, err := checkBase("backup", backup)
		o.backup = b
		return err
	}
}

// WithHTTPClient uses hc for every call. The default client follows no
// redirect; hc should not either (set CheckRedirect to return
// http.ErrUseLastResponse).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("apiv3: nil http.Client")
		}
		o.hc = hc
		return nil
	}
}

// WithClock sets the clock of request timestamps, of the ±5-minute window
// of answers and notifies, and of pay-parameter timestamps.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("apiv3: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithNonce sets the nonce source (default: 32 random characters from
// crypto/rand). Tests use it for deterministic messages.
func WithNonce(nonce func() string) Option {
	return func(o *options) error {
		if nonce == nil {
			return errors.New("apiv3: nil nonce source")
		}
		o.nonce = nonce
		return nil
	}
}

// WithLogger logs one debug line per call (API, host, status, Request-Id,
// duration) and a warning on failover; never a key, a signature, an
// Authorization header or a body.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("apiv3: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithTimeout bounds every call whose context has no deadline (default
// DefaultTimeout; bill files DefaultBillTimeout, which this replaces too).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("apiv3: timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// WithMaxBillSize caps the size of a bill file, downloaded and
// decompressed (default MaxBillSize).
func WithMaxBillSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return errors.New("apiv3: bill size cap must be positive")
		}
		o.maxBill = n
		return nil
	}
}

// NewClient checks the configuration, loads the merchant private key and
// returns a Client. It refuses a Verifier that holds the merchant's own
// certificate or key (a platform certificate must be WeChat's, not
// apiclient_cert.pem; reliability.md F3).
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
	pemBytes := []byte(cfg.PrivateKey.Reveal())
	if cfg.PrivateKeyFile != "" {
		var err error
		if pemBytes, err = os.ReadFile(cfg.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("apiv3: reading the merchant private key: %w", err)
		}
	}
	key, err := wxcrypto.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("apiv3: merchant private key: %w", err)
	}
	aead, err := wxcrypto.NewAEAD(cfg.APIv3Key)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg: cfg, key: key, aead: aead,
		base: o.base, backup: o.backup, hc: o.hc, now: o.now, nonce: o.nonce,
		log: o.log, timeout: o.timeout, maxBill: o.maxBill,
	}
	c.cfg.CertSerial = strings.ToUpper(cfg.CertSerial)
	if c.hc == nil {
		c.hc = &http.Client{
			Transport: sdkhttp.PooledTransport(),
			// WeChat Pay does not redirect; following one would take a
			// signed request, or a bill download, to a host nobody checked
			// (reliability.md S8). A 3xx is returned as an *Error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
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
	if c.maxBill == 0 {
		c.maxBill = MaxBillSize
	}
	if err := c.checkVerifier(cfg.Verifier); err != nil {
		return nil, err
	}
	c.verifier = cfg.Verifier
	return c, nil
}

// ErrMerchantCertificate is returned when a Verifier holds the merchant's
// own API certificate (same serial as Config.CertSerial, or the same key
// as the merchant private key): answers are signed with WeChat's key, never
// with the merchant's, so such a verifier fails every call — the most
// common cause of "certificate not found" reports (reliability.md F3, G1).
var ErrMerchantCertificate = errors.New("apiv3: the verifier holds the merchant's own API certificate; configure the WeChat Pay platform certificate or public key instead")

func (c *Client) checkVerifier(v Verifier) error {
	l, ok := v.(keyLister)
	if !ok || v == nil {
		return nil
	}
	for _, k := range l.verifierKeys() {
		if err := c.checkNotMerchant(k.serial, k.key); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) checkNotMerchant(serial string, key *rsa.PublicKey) error {
	if wxcrypto.SameSerial(serial, c.cfg.CertSerial) || (key != nil && key.Equal(&c.key.PublicKey)) {
		return fmt.Errorf("%w (serial %s)", ErrMerchantCertificate, serial)
	}
	return nil
}

// WithVerifier returns a copy of the client that verifies with v; the copy
// shares the HTTP client and the key. It is how a client built without a
// Verifier gets the CertificateManager that it helped start (see
// NewCertificateManager).
func (c *Client) WithVerifier(v Verifier) (*Client, error) {
	if v == nil {
		return nil, errors.New("apiv3: nil Verifier")
	}
	if err := c.checkVerifier(v); err != nil {
		return nil, err
	}
	cc := *c
	cc.verifier = v
	cc.cfg.Verifier = v
	return &cc, nil
}

// Format prints the client as its merchant, serial and host, for every
// verb: fmt does not call the String method of a wxpay.Secret held in an
// unexported field, so printing the fields would show the keys.
func (c *Client) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "apiv3.Client{MchID: %s, AppID: %s, CertSerial: %s, Host: %s}", c.cfg.MchID, c.cfg.AppID, c.cfg.CertSerial, c.base)
}

// MchID returns the configured merchant id.
func (c *Client) MchID() string { return c.cfg.MchID }

// AppID returns the configured default app id.
func (c *Client) AppID() string { return c.cfg.AppID }

// Verifier returns the client's verifier (nil if none).
func (c *Client) Verifier() Verifier { return c.verifier }

// safety says when a call may be sent again to the backup host.
type safety int

const (
	safeDialErr safety = iota // idempotent writes: only if the primary was never reached
	safeAlways                // reads
)

// endpoint describes one APIv3 operation.
type endpoint struct {
	name         string
	method       string
	safe         safety
	unsigned     bool // the answer carries no signature by design (bill files)
	selfVerified bool // the caller verifies the answer (the certificate download)
	bill         bool // bill-file limits and timeout
}

// answer is an HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call signs and sends a request to target (a path and query on the
// client's hosts, or an absolute URL for bill files) and checks the answer:
// a 2xx (202 excepted) is verified and returned; anything else becomes an
// *Error.
func (c *Client) call(ctx context.Context, ep *endpoint, target string, body []byte, serialHeader string) (*answer, error) {
	if c.verifier == nil && !ep.unsigned && !ep.selfVerified {
		return nil, &Error{API: ep.name, Err: ErrNoVerifier}
	}
	if _, ok := ctx.Deadline(); !ok {
		d := DefaultTimeout
		if ep.bill {
			d = DefaultBillTimeout
		}
		if c.timeout > 0 {
			d = c.timeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	absolute := strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://")
	u := target
	if !absolute {
		u = c.base + target
	}
	a, err := c.roundTrip(ctx, ep, u, body, serialHeader)
	if !absolute && c.backup != "" && ctx.Err() == nil && c.failover(ep, a, err) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "wxpay v3: primary host failed, trying the backup",
			slog.String("api", ep.name), slog.String("error", errText(a, err)))
		a, err = c.roundTrip(ctx, ep, c.backup+target, body, serialHeader)
	}
	if err != nil {
		e := &Error{API: ep.name, Unknown: !sdkhttp.NeverSent(err), Err: err}
		if a != nil {
			e.HTTPStatus = a.status
		}
		return nil, e
	}
	return c.check(ctx, ep, a)
}

func errText(a *answer, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d", a.status)
}

func (c *Client) failover(ep *endpoint, a *answer, err error) bool {
	switch ep.safe {
	case safeAlways:
		return err != nil || a.status >= 500
	case safeDialErr:
		return err != nil && sdkhttp.NeverSent(err)
	}
	return false
}

// authorization builds the Authorization header of a request (protocol.md
// §13.1).
func (c *Client) authorization(method, canonicalURL string, body []byte) (string, error) {
	ts := c.now().Unix()
	nonce := c.nonce()
	sig, err := wxcrypto.SignV3(c.key, method, canonicalURL, ts, nonce, body)
	if err != nil {
		return "", err
	}
	a := wxcrypto.AuthorizationV3{MchID: c.cfg.MchID, SerialNo: c.cfg.CertSerial, Nonce: nonce, Timestamp: ts, Signature: sig}
	return a.String(), nil
}

// roundTrip sends one signed request and reads the answer. The signature
// covers the request URI exactly as net/http sends it.
func (c *Client) roundTrip(ctx context.Context, ep *endpoint, u string, body []byte, serialHeader string) (*answer, error) {
	start := time.Now()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, ep.method, u, rd)
	if err != nil {
		return nil, err
	}
	auth, err := c.authorization(ep.method, req.URL.RequestURI(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "wxpay-go/"+Version+" apiv3")
	if serialHeader != "" {
		req.Header.Set(HeaderSerial, serialHeader)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.logCall(ctx, ep, req.URL.Host, start, nil, err)
		return nil, err
	}
	defer resp.Body.Close()
	limit := int64(MaxResponseSize)
	if ep.bill {
		limit = c.maxBill
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("answer larger than %d bytes", limit)
	}
	a := &answer{status: resp.StatusCode, header: resp.Header, body: data}
	c.logCall(ctx, ep, req.URL.Host, start, a, err)
	if err != nil {
		return a, err
	}
	return a, nil
}

func (c *Client) logCall(ctx context.Context, ep *endpoint, host string, start time.Time, a *answer, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("api", ep.name), slog.String("host", host), slog.Duration("duration", time.Since(start))}
	if a != nil {
		attrs = append(attrs, slog.Int("status", a.status), slog.String("request_id", a.header.Get(HeaderRequestID)))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wxpay v3 call", attrs...)
}

// check verifies an answer and turns the failures into *Error
// (protocol.md §13.2, §13.7).
func (c *Client) check(ctx context.Context, ep *endpoint, a *answer) (*answer, error) {
	verify := !ep.unsigned && !ep.selfVerified
	if a.status >= 200 && a.status < 300 && a.status != http.StatusAccepted {
		if verify {
			if err := checkSigned(ctx, c.verifier, c.now(), a.header, a.body); err != nil {
				return nil, &Error{API: ep.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID),
					Unknown: true, Err: &sigError{err}}
			}
		}
		return a, nil
	}
	e := &Error{API: ep.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID)}
	// WeChat signs its answers only when it could check the request's
	// signature, so an error answer may come unsigned (a 401 SIGN_ERROR
	// cannot be signed); one that is signed must verify.
	if verify && headerValue(a.header, HeaderSignature) != "" {
		if err := checkSigned(ctx, c.verifier, c.now(), a.header, a.body); err != nil {
			e.Unknown = true
			e.Err = &sigError{err}
			return nil, e
		}
	}
	var body struct {
		Code    string       `json:"code"`
		Message string       `json:"message"`
		Detail  *ErrorDetail `json:"detail"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil || body.Code == "" {
		e.Err = fmt.Errorf("HTTP %d without a JSON error body", a.status)
	}
	e.Code, e.Message, e.Detail = ErrorCode(body.Code), body.Message, body.Detail
	e.Unknown = a.status >= 500 || a.status == http.StatusAccepted || unknownCode(e.Code)
	return nil, e
}

// decodeAnswer decodes a 2xx answer with dec; a failure is an unknown
// outcome (the call may have been executed).
func decodeAnswer[T any](ep *endpoint, a *answer, dec func(string) (T, error)) (T, error) {
	v, err := dec(string(a.body))
	if err != nil {
		var zero T
		return zero, &Error{API: ep.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID), Unknown: true,
			Err: fmt.Errorf("answer does not decode: %w", err)}
	}
	return v, nil
}

// VerifySignature checks the Wechatpay-* headers and the signature of a
// message (an answer, or a notify, which ParseNotify checks too;
// protocol.md §13.2): the four headers present, not a WECHATPAY/SIGNTEST/
// probe, the timestamp within SignatureWindow of the client's clock, the
// signature verifying over body — the raw bytes as received, never a
// re-serialised body — with the key the Verifier finds for
// Wechatpay-Serial. The error wraps ErrMissingHeader, ErrProbeSignature,
// ErrTimestamp, ErrUnknownSerial or ErrSignature.
func (c *Client) VerifySignature(ctx context.Context, header http.Header, body []byte) error {
	if c.verifier == nil {
		return ErrNoVerifier
	}
	return checkSigned(ctx, c.verifier, c.now(), header, body)
}

// EncryptSensitive encrypts a sensitive request field (a name, an id or
// account number) with RSA-OAEP for WeChat Pay (protocol.md §13.3) and
// returns the ciphertext and the serial to send in the Wechatpay-Serial
// header of the request (Do's wechatpaySerial). The key is the Verifier's
// (see Encrypter): the WeChat Pay public key, or the newest platform
// certificate. See wxcrypto.EncryptOAEP for the UNCONFIRMED parameters.
func (c *Client) EncryptSensitive(plaintext string) (ciphertext, serial string, err error) {
	e, ok := c.verifier.(Encrypter)
	if !ok {
		return "", "", errors.New("apiv3: the Verifier cannot name an encryption key")
	}
	serial, key, err := e.EncryptionKey()
	if err != nil {
		return "", "", err
	}
	ciphertext, err = wxcrypto.EncryptOAEP(key, plaintext)
	return ciphertext, serial, err
}

// Response is a verified answer of Do.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte // the raw body, as verified
}

// Do calls any APIv3 operation this package does not type: it signs the
// request (body is the exact JSON to send, nil for GET), sets
// Wechatpay-Serial when given (for RSA-OAEP encrypted fields, see
// EncryptSensitive), verifies the answer and returns it, or an *Error. GET
// is failed over like a query, other methods like an idempotent write.
func (c *Client) Do(ctx context.Context, method, pathAndQuery string, body []byte, wechatpaySerial string) (*Response, error) {
	if !strings.HasPrefix(pathAndQuery, "/") {
		return nil, &Error{API: "do", Err: invalid("path %q must start with /", pathAndQuery)}
	}
	ep := &endpoint{name: method + " " + pathAndQuery, method: method, safe: safeDialErr}
	if method == http.MethodGet {
		ep.safe = safeAlways
	}
	a, err := c.call(ctx, ep, pathAndQuery, body, wechatpaySerial)
	if err != nil {
		return nil, err
	}
	return &Response{StatusCode: a.status, Header: a.header, Body: a.body}, nil
}
