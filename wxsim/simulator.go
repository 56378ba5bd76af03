package wxsim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxpay-go/wxpay"
)

// Simulator is a local WeChat Pay v2 and mini-program login server with its
// state: merchants, users and their balances, orders, refunds, codes and the
// notify delivery log. It is an http.Handler serving WeChat's paths
// (/pay/unifiedorder, /secapi/pay/refund, /sns/jscode2session …) and the
// control API and cashier page under /sim/. It is safe for concurrent use.
type Simulator struct {
	cfg   Config
	clock Clock
	ids   IDSource
	log   *slog.Logger
	sched *scheduler

	merchants map[string]*merchant // by mch_id; fixed after New
	apps      map[string]string    // app id -> app secret; fixed after New

	mu          sync.Mutex // guards the maps below and every user
	users       []*user
	byOpenID    map[string]*user  // any app's openid -> user
	openIDApp   map[string]string // openid -> the app it belongs to
	loginCodes  map[string]*loginCode
	authCodes   map[string]*authCode
	prepays     map[string]orderRef // prepay_id -> order
	codeURLs    map[string]orderRef // code_url -> order
	shortURLs   map[string]string   // short_url -> long_url
	reports     int64
	billMutator func(mchID string, day time.Time, rows []BillRow) []BillRow

	faults   faultBox
	notifier notifier
	v3       v3State // APIv3 (v3*.go)

	control http.Handler
	closed  atomic.Bool
}

// merchant is a configured merchant with its two ledgers.
type merchant struct {
	cfg        Merchant
	apps       map[string]bool
	sandboxKey string
	prod       *book
	sandbox    *book
}

// New returns a Simulator for cfg, after applying defaults and validating.
// Call Close to stop its background work.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Simulator{
		cfg:        cfg,
		clock:      cfg.Clock,
		ids:        cfg.IDs,
		log:        cfg.Logger,
		merchants:  make(map[string]*merchant),
		apps:       make(map[string]string),
		byOpenID:   make(map[string]*user),
		openIDApp:  make(map[string]string),
		loginCodes: make(map[string]*loginCode),
		authCodes:  make(map[string]*authCode),
		prepays:    make(map[string]orderRef),
		codeURLs:   make(map[string]orderRef),
		shortURLs:  make(map[string]string),
	}
	s.sched = newScheduler(cfg.Clock, cfg.TimeScale, func(r any) {
		s.log.Error("wxsim: scheduled work panicked", "panic", fmt.Sprint(r))
	})
	switch c := cfg.Clock.(type) {
	case *ManualClock:
		if err := c.attach(s.sched); err != nil {
			return nil, err
		}
	case *RealClock:
		if err := c.attach(s.sched); err != nil {
			return nil, err
		}
	}
	for _, mc := range cfg.Merchants {
		m := &merchant{cfg: mc, apps: make(map[string]bool), sandboxKey: mc.SandboxKey}
		if m.sandboxKey == "" {
			m.sandboxKey = s.ids.NewID(IDSandboxKey, s.clock.Now())
		}
		for _, a := range mc.Apps {
			m.apps[a.AppID] = true
			s.apps[a.AppID] = a.AppSecret
		}
		m.prod = newBook(m, false)
		m.sandbox = newBook(m, true)
		s.merchants[mc.MchID] = m
	}
	s.faults.init(cfg.Seed)
	s.notifier.init(s)
	if err := s.initV3(); err != nil {
		return nil, err
	}
	s.control = s.controlHandler()
	s.sched.start()
	return s, nil
}

// Close stops the background work: scheduled notify retries, refund
// completions and micropay completions are dropped and notifies in flight
// are cancelled. The handler keeps answering calls afterwards, but nothing
// is scheduled any more.
func (s *Simulator) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.sched.close()
	switch c := s.clock.(type) {
	case *ManualClock:
		_ = c.attach(nil)
	case *RealClock:
		_ = c.attach(nil)
	}
	return nil
}

// Now returns the simulator's time.
func (s *Simulator) Now() time.Time { return s.clock.Now() }

// Advance moves the simulator's clock forward by d and runs everything that
// falls due (see ManualClock and RealClock). It returns ErrClockFixed for
// another Clock.
func (s *Simulator) Advance(d time.Duration) error {
	switch c := s.clock.(type) {
	case *ManualClock:
		c.Advance(d)
	case *RealClock:
		c.Advance(d)
	default:
		return ErrClockFixed
	}
	return nil
}

// Flush runs the work that is due now (for example the first try of a pay
// notify after a payment) and waits for it to finish. Work scheduled for
// later is left alone.
func (s *Simulator) Flush() { s.sched.flush() }

// Quiesce brings the simulator to rest: with a ManualClock it advances the
// clock through every scheduled piece of work (notify retries, refund
// completions …) until none is left; with a real clock it waits for them,
// or for ctx. Micropays left in USERPAYING for ever are not work and stay.
func (s *Simulator) Quiesce(ctx context.Context) error { return s.sched.quiesce(ctx) }

// Pending returns the number of scheduled pieces of work and of those
// running now.
func (s *Simulator) Pending() (scheduled, running int) { return s.sched.pending() }

// merchant returns the merchant with the given id, or nil.
func (s *Simulator) merchant(mchID string) *merchant { return s.merchants[mchID] }

// MchIDs returns the configured merchant ids.
func (s *Simulator) MchIDs() []string {
	out := make([]string, 0, len(s.cfg.Merchants))
	for _, m := range s.cfg.Merchants {
		out = append(out, m.MchID)
	}
	return out
}

// ServeHTTP serves WeChat's paths, the control API (/sim/v1/…) and the
// cashier page (/sim/).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("wxsim: handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
			http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		}
	}()
	p := r.URL.Path
	if p == "/sim" || strings.HasPrefix(p, "/sim/") {
		s.control.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(p, "/v3/") {
		s.serveV3(w, r)
		return
	}
	if p == "/sns/jscode2session" {
		s.serveJSCode2Session(w, r)
		return
	}
	if spec, env := lookupAPI(p); spec != nil {
		s.serveWeChat(w, r, spec, env)
		return
	}
	s.serveUnknown(w, r)
}

// serveUnknown answers a path WeChat does not serve: the mini-program API
// host answers JSON errcode 40066, the pay host an nginx 404 page.
func (s *Simulator) serveUnknown(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/sns/") || strings.HasPrefix(p, "/cgi-bin/") || strings.HasPrefix(p, "/wxa/") {
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 40066, "errmsg": "invalid url rid: " + s.ids.NewID(IDRequest, s.clock.Now())})
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
}

// cst formats t in China Standard Time with layout.
func cst(t time.Time, layout string) string { return t.In(wxpay.China).Format(layout) }

const (
	layoutCompact = "20060102150405"      // yyyyMMddHHmmss
	layoutDash    = "2006-01-02 15:04:05" // yyyy-MM-dd HH:mm:ss
	layoutDay     = "20060102"            // yyyyMMdd
)
