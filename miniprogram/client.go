package miniprogram

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/wxpay-go/wxpay/internal/sdkhttp"
)

// DefaultBaseURL is the WeChat API host that Code2Session calls unless
// WithBaseURL says otherwise.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultTimeout bounds each Code2Session call unless WithTimeout says
// otherwise. The caller's context can always make it shorter.
const DefaultTimeout = 10 * time.Second

// Client calls the mini-program login API (jscode2session) for one mini
// program. Create it with NewClient; it is safe for concurrent use.
//
// The AppSecret it holds never appears in an error, a log line or the
// output of fmt (%v, %+v and %#v print REDACTED in its place).
type Client struct {
	appID   string
	secret  *secretString // a pointer, so fmt prints an address for it
	base    *url.URL
	http    *http.Client
	log     *slog.Logger
	timeout time.Duration
}

// Option configures a Client. An Option that is given an unusable value makes
// NewClient return an error.
type Option func(*Client) error

// NewClient returns a Client for the mini program appID whose AppSecret is
// appSecret (from the mini program's admin console; keep it server-side).
// Both are required. Without options the client calls DefaultBaseURL with
// its own http.Client, a DefaultTimeout per call and no logging.
func NewClient(appID, appSecret string, opts ...Option) (*Client, error) {
	if appID == "" {
		return nil, errors.New("miniprogram: NewClient: empty appID")
	}
	if appSecret == "" {
		return nil, errors.New("miniprogram: NewClient: empty appSecret")
	}
	base, err := parseBaseURL(DefaultBaseURL)
	if err != nil {
		return nil, err // unreachable: the default is well-formed
	}
	secret := secretString(appSecret)
	c := &Client{
		appID:   appID,
		secret:  &secret,
		base:    base,
		http:    &http.Client{Transport: sdkhttp.PooledTransport()},
		log:     slog.New(slog.DiscardHandler),
		timeout: DefaultTimeout,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AppID returns the mini program AppID the client was created with.
func (c *Client) AppID() string { return c.appID }

// WithBaseURL makes the client call rawURL instead of DefaultBaseURL, for
// example the simulator's address. It must be an absolute http or https URL
// without user info, query or fragment; a path is kept as a prefix
// ("http://127.0.0.1:8080/wx" calls "http://127.0.0.1:8080/wx/sns/jscode2session").
func WithBaseURL(rawURL string) Option {
	return func(c *Client) error {
		u, err := parseBaseURL(rawURL)
		if err != nil {
			return err
		}
		c.base = u
		return nil
	}
}

// WithHTTPClient makes the client send its requests with hc, for example one
// with a custom transport or httptest.Server.Client(). hc must not be nil.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("miniprogram: WithHTTPClient: nil *http.Client")
		}
		c.http = hc
		return nil
	}
}

// WithLogger makes the client write one debug line per Code2Session call to
// l (appid, duration, errcode or failure; never the secret, the js_code, the
// openid or the session_key). A nil l discards, which is the default.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.log = l
		return nil
	}
}

// WithTimeout bounds each Code2Session call to d (DefaultTimeout if this
// option is not given). Zero means no bound other than the caller's context;
// a negative d is an error.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("miniprogram: WithTimeout: negative duration %v", d)
		}
		c.timeout = d
		return nil
	}
}

// parseBaseURL checks that raw is an absolute http(s) URL fit to prefix API
// paths. Error messages never repeat raw: it might carry credentials.
func parseBaseURL(raw string) (*url.URL, error) {
	b, err := sdkhttp.BaseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("miniprogram: WithBaseURL: %w", err)
	}
	return url.Parse(b)
}

// secretString holds the AppSecret. Client keeps it behind a pointer:
// fmt cannot call methods on unexported fields, but prints pointers in them
// as addresses, so printing a Client (%v, %+v, %#v) cannot reveal it; the
// methods below cover a dereferenced value.
type secretString string

func (secretString) String() string   { return redacted }
func (secretString) GoString() string { return redacted }

// Format prints REDACTED whatever the verb.
func (secretString) Format(f fmt.State, verb rune) { formatRedacted(f, verb) }

// LogValue keeps the secret out of structured logs.
func (secretString) LogValue() slog.Value { return slog.StringValue(redacted) }
