// Package wxpaytest starts the WeChat Pay simulator in-process for tests,
// like net/http/httptest: NewServer(t) returns its URL, the default
// merchant's credentials, and SDK clients (apiv2, miniprogram) already
// pointed at it. Everything is closed when the test ends.
//
//	srv := wxpaytest.NewServer(t)
//	resp, err := srv.Pay.UnifiedOrder(ctx, &apiv2.UnifiedOrderRequest{…})
package wxpaytest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxsim"
)

// Server is a running simulator with clients for its default merchant.
type Server struct {
	// URL is the simulator's base URL (http://127.0.0.1:port).
	URL string
	// Sim is the simulator itself: control it (users, payments, faults,
	// clock) through its methods.
	Sim *wxsim.Simulator
	// Clock is the simulator's clock when WithManualClock was used.
	Clock *wxsim.ManualClock
	// The default merchant and mini program.
	AppID     string
	MchID     string
	APIKey    wxpay.Secret
	AppSecret wxpay.Secret
	// Pay and Login are SDK clients for the default merchant, pointed at
	// the simulator.
	Pay   *apiv2.Client
	Login *miniprogram.Client

	srv *httptest.Server
}

type options struct {
	cfg      wxsim.Config
	signType wxpay.SignType
	payOpts  []apiv2.Option
	notify   string
}

// Option configures NewServer.
type Option func(*options)

// WithConfig lets a test change the simulator's configuration (merchants,
// time scale, fault-free defaults …) before it starts.
func WithConfig(f func(*wxsim.Config)) Option { return func(o *options) { f(&o.cfg) } }

// WithManualClock runs the simulator on a manual clock starting at start
// (nothing happens until the test advances it); see Server.Clock.
func WithManualClock(start time.Time) Option {
	return func(o *options) { o.cfg.Clock = wxsim.NewManualClock(start) }
}

// WithSignType makes the Pay client sign with HMAC-SHA256 (or MD5).
func WithSignType(t wxpay.SignType) Option { return func(o *options) { o.signType = t } }

// WithNotifyURL sets the Pay client's default notify URL (default: an
// address that answers nothing, for tests that ignore notifies).
func WithNotifyURL(u string) Option { return func(o *options) { o.notify = u } }

// WithPayOptions adds options to the Pay client.
func WithPayOptions(opts ...apiv2.Option) Option {
	return func(o *options) { o.payOpts = append(o.payOpts, opts...) }
}

// NewServer starts a simulator and the clients; both end with the test.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{notify: "http://127.0.0.1:9/notify"}
	o.cfg.CloseMinAge = -1 // tests may close at once; opt in to WeChat's 5 minutes with WithConfig
	for _, f := range opts {
		f(&o)
	}
	sim, err := wxsim.New(o.cfg)
	if err != nil {
		t.Fatalf("wxpaytest: starting the simulator: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		_ = sim.Close()
	})
	s := &Server{
		URL: srv.URL, Sim: sim, srv: srv,
		AppID: wxsim.DefaultAppID, MchID: wxsim.DefaultMchID,
		APIKey: wxsim.DefaultAPIKey, AppSecret: wxsim.DefaultAppSecret,
	}
	if c, ok := o.cfg.Clock.(*wxsim.ManualClock); ok {
		s.Clock = c
		o.payOpts = append([]apiv2.Option{apiv2.WithClock(c.Now)}, o.payOpts...)
	}
	s.Pay, err = apiv2.NewClient(apiv2.Config{
		AppID: s.AppID, MchID: s.MchID, APIKey: s.APIKey, SignType: o.signType, NotifyURL: o.notify,
		AppSecret: s.AppSecret,
	}, append([]apiv2.Option{apiv2.WithBaseURL(s.URL), apiv2.WithHTTPClient(srv.Client())}, o.payOpts...)...)
	if err != nil {
		t.Fatalf("wxpaytest: pay client: %v", err)
	}
	s.Login, err = miniprogram.NewClient(s.AppID, s.AppSecret.Reveal(),
		miniprogram.WithBaseURL(s.URL), miniprogram.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatalf("wxpaytest: login client: %v", err)
	}
	return s
}

// NewUser creates a WeChat user of the default mini program with the
// default balance and returns its openid.
func (s *Server) NewUser(t testing.TB) string {
	t.Helper()
	u, err := s.Sim.CreateUser(wxsim.NewUser{AppID: s.AppID})
	if err != nil {
		t.Fatalf("wxpaytest: creating a user: %v", err)
	}
	return u.OpenID
}

// LoginCode returns what wx.login would give that user in the default
// mini program.
func (s *Server) LoginCode(t testing.TB, openID string) string {
	t.Helper()
	code, err := s.Sim.LoginCode(s.AppID, openID)
	if err != nil {
		t.Fatalf("wxpaytest: login code: %v", err)
	}
	return code
}

// RequestPayment does what wx.requestPayment does with pay parameters:
// the simulator checks paySign like the WeChat client and the user pays.
// It returns the errMsg ("requestPayment:ok" on success).
func (s *Server) RequestPayment(openID string, p *apiv2.PayParams) string {
	return s.Sim.RequestPayment(wxsim.PaymentRequest{
		OpenID: openID, AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr,
		Package: p.Package, SignType: p.SignType, PaySign: p.PaySign,
	}).ErrMsg
}
