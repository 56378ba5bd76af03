// Package payments holds the use cases of the merchant service: login,
// orders and their prepay, pay parameters, notifies, queries, closing and
// refunds. It speaks to the world only through merchant.Store and
// merchant.Gateway, and keeps the promises of reliability.md: the order is
// stored before WeChat is called, an unknown outcome is retried with
// identical parameters or settled by a query, a notify is acknowledged
// only after the commit, and nothing marks an order paid but a verified
// notify or query.
package payments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

// Config tunes the service. Zero values take the documented defaults.
type Config struct {
	// Catalog is what the shop sells; prices come from here only.
	Catalog merchant.Catalog
	// BodyPrefix starts every order description ("小程序名-"); default "wxpay-".
	BodyPrefix string
	// OrderTTL is how long an order can be paid (time_expire); default 30
	// minutes, never less than 6 (WeChat closes no order younger than 5).
	OrderTTL time.Duration
	// QueryAfter is the age past which reading an unpaid order asks WeChat;
	// default 5 s.
	QueryAfter time.Duration
	// SessionTTL is how long a login lasts; default 24 h.
	SessionTTL time.Duration
	// PrepayAttempts is how many times unifiedorder is tried (with
	// identical parameters) when its outcome is unknown; default 3.
	PrepayAttempts int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger gets the service's logs; never a secret.
	Logger *slog.Logger
	// Metrics, when set, is told what happens.
	Metrics Metrics
}

// Metrics receives the service's counts (httpapi exports them to
// Prometheus).
type Metrics interface {
	OrderCreated(tradeType string)
	OrderPaid(source string)
	Notify(kind, result, reason string) // kind pay|refund; result ok|rejected|error
	Refund(status string)
}

type nopMetrics struct{}

func (nopMetrics) OrderCreated(string)           {}
func (nopMetrics) OrderPaid(string)              {}
func (nopMetrics) Notify(string, string, string) {}
func (nopMetrics) Refund(string)                 {}

// Service runs the use cases. It is safe for concurrent use.
type Service struct {
	store merchant.Store
	gw    merchant.Gateway
	cfg   Config
	log   *slog.Logger
	m     Metrics
}

// New returns a Service over a store and a gateway.
func New(store merchant.Store, gw merchant.Gateway, cfg Config) (*Service, error) {
	if store == nil || gw == nil {
		return nil, errors.New("payments: a store and a gateway are required")
	}
	if len(cfg.Catalog) == 0 {
		return nil, errors.New("payments: the catalog is empty")
	}
	for sku, p := range cfg.Catalog {
		if p.SKU != sku || p.Price <= 0 || p.Name == "" {
			return nil, fmt.Errorf("payments: catalog entry %q needs its sku, a name and a price > 0 fen", sku)
		}
	}
	if cfg.BodyPrefix == "" {
		cfg.BodyPrefix = "wxpay-"
	}
	if cfg.OrderTTL == 0 {
		cfg.OrderTTL = 30 * time.Minute
	}
	if cfg.OrderTTL < 6*time.Minute {
		return nil, errors.New("payments: OrderTTL must be at least 6 minutes (WeChat closes no order younger than 5)")
	}
	if cfg.QueryAfter == 0 {
		cfg.QueryAfter = 5 * time.Second
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.PrepayAttempts <= 0 {
		cfg.PrepayAttempts = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := cfg.Metrics
	if m == nil {
		m = nopMetrics{}
	}
	return &Service{store: store, gw: gw, cfg: cfg, log: cfg.Logger, m: m}, nil
}

// Store returns the service's store (for the admin API and jobs).
func (s *Service) Store() merchant.Store { return s.store }

// Gateway returns the service's gateway.
func (s *Service) Gateway() merchant.Gateway { return s.gw }

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// Products returns the catalog sorted by SKU.
func (s *Service) Products() []merchant.Product {
	out := make([]merchant.Product, 0, len(s.cfg.Catalog))
	for _, p := range s.cfg.Catalog {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b merchant.Product) int {
		switch {
		case a.SKU < b.SKU:
			return -1
		case a.SKU > b.SKU:
			return 1
		}
		return 0
	})
	return out
}

// Login trades a wx.login code for the user's openid and opens a session.
// The returned token is what the mini program sends as a Bearer token; the
// store keeps only its hash, and WeChat's session_key is not kept at all.
func (s *Service) Login(ctx context.Context, code string) (token, openID string, err error) {
	if code == "" || len(code) > 128 {
		return "", "", merchant.Errorf(merchant.EINVALID, "code is required")
	}
	l, err := s.gw.Login(ctx, code)
	switch {
	case errors.Is(err, merchant.ErrBadCode):
		return "", "", merchant.Errorf(merchant.EUNAUTHORIZED, "the login code is invalid, expired or used: call wx.login again")
	case err != nil:
		s.log.WarnContext(ctx, "login failed", slog.String("error", err.Error()))
		return "", "", merchant.Errorf(merchant.EUNAVAILABLE, "WeChat login is unavailable, try again")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.cfg.Now()
	err = s.store.CreateSession(ctx, &merchant.Session{
		TokenHash: HashToken(token), OpenID: l.OpenID, AppID: s.gw.AppID(),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
	})
	if err != nil {
		return "", "", err
	}
	return token, l.OpenID, nil
}

// HashToken is how session tokens are stored: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticate returns the session of a Bearer token.
func (s *Service) Authenticate(ctx context.Context, token string) (*merchant.Session, error) {
	if token == "" {
		return nil, merchant.Errorf(merchant.EUNAUTHORIZED, "a Bearer token is required: log in first")
	}
	return s.store.Session(ctx, HashToken(token), s.cfg.Now())
}

// newNumber returns an order or refund number: prefix, the China date and
// time, and 10 random characters — unguessable, sortable, 6–32 characters
// of WeChat's alphabet.
func newNumber(prefix string, now time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return prefix + now.In(wxpay.China).Format("060102150405") + string(b[:])
}
