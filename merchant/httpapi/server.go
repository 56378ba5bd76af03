package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
)

// NativeCallback answers WeChat's Native pay mode-1 product callback (a
// user scanned a product QR code): it verifies the callback, creates the
// order and returns the signed reply holding the prepay id. The command
// implements it over apiv2 (ParseNativeCallback, NativeCallbackReply) and
// the payments service. When it returns a reply, that reply is sent with
// status 200 whatever the error (the error is logged); with no reply, a
// FAIL document is sent.
type NativeCallback interface {
	Handle(ctx context.Context, body []byte) (reply []byte, err error)
}

// Reconciler reconciles a day's bill (yyyy-mm-dd, China Standard Time)
// against the orders; merchant/recon implements it.
type Reconciler interface {
	Reconcile(ctx context.Context, date string) (*merchant.ReconReport, []*merchant.ReconException, error)
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Service runs the use cases. Required.
	Service *payments.Service

	// AdminToken is the Bearer token of the admin API (config admin_token,
	// env WXPAY_ADMIN_TOKEN), compared in constant time. At least 16
	// characters. Empty: the admin API answers 401 to everyone.
	AdminToken wxpay.Secret

	// Logger receives the request log and the detail of internal errors;
	// never a body, a token or an Authorization header. Nil discards.
	Logger *slog.Logger

	// Metrics are the Prometheus metrics, served at /metrics. Nil: new
	// ones on Registry. Build them with NewMetrics before the service when
	// it should count orders and notifies (payments.Config.Metrics).
	Metrics *Metrics
	// Registry is where Metrics are registered when Metrics is nil; nil: a
	// new registry. When both are set, Registry must be Metrics' registry.
	Registry *prometheus.Registry

	// NativeCallback answers POST /wxpay/native/callback. Nil: that route
	// answers 404.
	NativeCallback NativeCallback

	// Reconciler runs POST /admin/api/v1/reconciliations. Nil: that route
	// answers 501 (stored reports can still be read).
	Reconciler Reconciler

	// LoginPerIP limits POST /api/v1/login per client IP; default 10 at
	// once, then one every 2 s.
	LoginPerIP Limit
	// OrdersPerIP limits POST /api/v1/orders per client IP; default 30 at
	// once, then 2 per second.
	OrdersPerIP Limit
	// OrdersPerUser limits POST /api/v1/orders (and pay-params) per
	// session user; default 5 at once, then one every 2 s.
	OrdersPerUser Limit

	// MaxBodyBytes caps an API request's JSON body; default 64 KiB.
	MaxBodyBytes int64
	// MaxNotifyBytes caps a notify or callback body; default 64 KiB.
	MaxNotifyBytes int64
	// NotifyTimeout bounds the handling of a notify: past it the answer is
	// FAIL (never SUCCESS), well within WeChat's 5 s; default 4 s.
	NotifyTimeout time.Duration

	// ClientIP returns the client's IP address. Default: the host of
	// RemoteAddr. Behind a reverse proxy, supply one that reads the
	// proxy's header, trusting it only from the proxy.
	ClientIP func(r *http.Request) string

	// Now is the clock of the rate limiters; default time.Now.
	Now func() time.Time
}

// Defaults of Config.
var (
	DefaultLoginPerIP    = Limit{Rate: 0.5, Burst: 10}
	DefaultOrdersPerIP   = Limit{Rate: 2, Burst: 30}
	DefaultOrdersPerUser = Limit{Rate: 0.5, Burst: 5}
)

const (
	defaultMaxBody       = 64 << 10
	defaultNotifyTimeout = 4 * time.Second
	// maxMountedBody caps request bodies of mounted handlers (the
	// simulator, the web pages), which apply their own smaller limits.
	maxMountedBody = 1 << 20
)

// Server is the HTTP face of the merchant service: the mini-program API,
// WeChat's notify endpoints, the admin API, probes and metrics, and
// whatever the command mounts beside them. Its Handler is safe for
// concurrent use.
type Server struct {
	cfg      Config
	svc      *payments.Service
	log      *slog.Logger
	metrics  *Metrics
	adminSum [sha256.Size]byte

	loginIP, ordersIP, ordersUser *limiter

	api     *http.ServeMux // the routes of this package
	outer   *http.ServeMux // the mounts
	handler http.Handler
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("httpapi: a payments service is required")
	}
	if t := cfg.AdminToken.Reveal(); t != "" && len(t) < 16 {
		return nil, errors.New("httpapi: the admin token must have at least 16 characters")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(cfg.Registry)
	} else if cfg.Registry != nil && cfg.Registry != cfg.Metrics.Registry() {
		return nil, errors.New("httpapi: Config.Registry differs from the registry of Config.Metrics")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBody
	}
	if cfg.MaxNotifyBytes <= 0 {
		cfg.MaxNotifyBytes = defaultMaxBody
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = defaultNotifyTimeout
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg, svc: cfg.Service, log: cfg.Logger, metrics: cfg.Metrics,
		loginIP:    newLimiter(cfg.LoginPerIP.orDefault(DefaultLoginPerIP), cfg.Now),
		ordersIP:   newLimiter(cfg.OrdersPerIP.orDefault(DefaultOrdersPerIP), cfg.Now),
		ordersUser: newLimiter(cfg.OrdersPerUser.orDefault(DefaultOrdersPerUser), cfg.Now),
		api:        http.NewServeMux(),
		outer:      http.NewServeMux(),
	}
	if t := cfg.AdminToken.Reveal(); t != "" {
		s.adminSum = sha256.Sum256([]byte(t))
	}
	s.routes()
	api, outer := s.jsonFallback(s.api), s.jsonFallback(s.outer)
	s.handler = s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ours(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		outer.ServeHTTP(w, r)
	}))
	return s, nil
}

// ours reports whether a path belongs to this package's routes rather
// than to a mounted handler.
func ours(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	for _, p := range []string{"/api/", "/admin/api/", "/wxpay/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Handler returns the server's handler: every route, behind request IDs,
// the request log, metrics and panic recovery.
func (s *Server) Handler() http.Handler { return s.handler }

// Mount serves pattern (a net/http ServeMux pattern such as "/sim/", "/"
// or "/admin/"; beware that "GET /" clashes with "/sim/" under ServeMux's
// rules) with h, behind the same request IDs, logging,
// metrics and panic recovery, with request bodies capped at 1 MiB. The
// paths of this package (/api/, /admin/api/, /wxpay/, /healthz, /readyz,
// /metrics) stay its own whatever is mounted: mounting "/" or "/admin/"
// serves everything else under them. Mount returns an error for an
// invalid pattern, one inside this package's paths, or one that clashes
// with an earlier mount.
func (s *Server) Mount(pattern string, h http.Handler) (err error) {
	if h == nil {
		return errors.New("httpapi: Mount with a nil handler")
	}
	path := pattern
	if i := strings.IndexAny(path, " \t"); i >= 0 {
		path = strings.TrimLeft(path[i:], " \t")
	}
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[i:]
	}
	if ours(path) || ours(path+"/") {
		return fmt.Errorf("httpapi: %q is inside the routes of httpapi", pattern)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("httpapi: mounting %q: %v", pattern, p)
		}
	}()
	s.outer.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxMountedBody)
		h.ServeHTTP(w, r)
	}))
	return nil
}

// routes registers this package's routes on s.api.
func (s *Server) routes() {
	for _, r := range s.table() {
		s.api.Handle(r.pattern, r.h)
	}
}

type route struct {
	pattern string
	h       http.Handler
}

// table is every route of the package, in one place (docs/openapi.yaml
// describes exactly these; a test checks it).
func (s *Server) table() []route {
	f := func(pattern string, h http.HandlerFunc) route { return route{pattern, h} }
	return []route{
		f("GET /healthz", s.healthz),
		f("GET /readyz", s.readyz),
		{"GET /metrics", s.metrics.Handler()},

		f("POST /api/v1/login", s.login),
		f("GET /api/v1/products", s.products),
		f("POST /api/v1/orders", s.user(s.createOrder)),
		f("GET /api/v1/orders/{out_trade_no}", s.user(s.getOrder)),
		f("POST /api/v1/orders/{out_trade_no}/close", s.user(s.closeOrder)),
		f("POST /api/v1/orders/{out_trade_no}/pay-params", s.user(s.payParams)),

		f("POST /wxpay/notify/pay", s.notify(s.svc.HandlePayNotify)),
		f("POST /wxpay/notify/refund", s.notify(s.svc.HandleRefundNotify)),
		f("POST /wxpay/native/callback", s.nativeCallback),

		f("GET /admin/api/v1/orders", s.admin(s.adminListOrders)),
		f("GET /admin/api/v1/orders/{out_trade_no}", s.admin(s.adminGetOrder)),
		f("POST /admin/api/v1/orders/{out_trade_no}/refunds", s.admin(s.adminRefund)),
		f("POST /admin/api/v1/orders/{out_trade_no}/sync", s.admin(s.adminSync)),
		f("GET /admin/api/v1/anomalies", s.admin(s.adminAnomalies)),
		f("POST /admin/api/v1/reconciliations", s.admin(s.adminReconcile)),
		f("GET /admin/api/v1/reconciliations/{date}", s.admin(s.adminRecon)),
	}
}

// Routes returns the patterns ("METHOD /path/{param}") the server serves
// itself, besides what is mounted.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.table() {
		out = append(out, r.pattern)
	}
	return out
}

// healthz answers 200 "ok" while the process runs.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 "ok" when the store answers a ping within 2 s.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Store().Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready: the store does not answer",
			slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
		s.writeError(w, r, merchant.Errorf(merchant.EUNAVAILABLE, "the database does not answer"))
		return
	}
	s.healthz(w, r)
}

// jsonFallback serves mux, answering its own "not found" and "method not
// allowed" in JSON (405 keeps the Allow header) instead of plain text.
func (s *Server) jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux's own handler decide between 404 and 405 (and set
		// Allow), then answer in JSON.
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.writeError(w, r, merchant.Errorf(EMETHOD, "%s is not allowed here; allowed: %s", r.Method, probe.header.Get("Allow")))
			return
		}
		s.writeError(w, r, merchant.Errorf(merchant.ENOTFOUND, "no such route"))
	})
}

// headerProbe records what a handler would answer, without answering.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *headerProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

// ctxKey keys the request context.
type ctxKey int

const (
	keyRequestID ctxKey = iota
	keySession
)

// requestID returns the request's id ("" outside a request).
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's X-Request-Id: 1 to 64 of
// [0-9A-Za-z._-], so it can be logged and echoed safely.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// middleware gives each request an id (the caller's X-Request-Id when
// sane), recovers panics into a 500 without details, logs one line per
// request and counts it. The line holds the method, the path (no query),
// the route, the status, the duration and the request id: never a body, a
// token or a header.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), keyRequestID, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil {
				if p == http.ErrAbortHandler {
					s.done(r, sw, start)
					panic(p)
				}
				s.panicked(r, sw, p)
			}
			s.done(r, sw, start)
		}()
		next.ServeHTTP(sw, r)
	})
}

// panicked logs a panic (its type, and its text only for runtime errors,
// since a panic value may be a struct holding secrets) and answers 500.
func (s *Server) panicked(r *http.Request, sw *statusWriter, p any) {
	attrs := []any{
		slog.String("request_id", requestID(r.Context())),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("panic_type", fmt.Sprintf("%T", p)),
		slog.String("stack", string(debug.Stack())),
	}
	if re, ok := p.(runtime.Error); ok {
		attrs = append(attrs, slog.String("panic", re.Error()))
	}
	s.log.ErrorContext(r.Context(), "panic while serving a request", attrs...)
	if !sw.wrote {
		writeJSON(sw, http.StatusInternalServerError,
			ErrorBody{Error: ErrorDetail{Code: merchant.EINTERNAL, Message: "internal error"}})
	}
}

// done logs and counts an answered request.
func (s *Server) done(r *http.Request, sw *statusWriter, start time.Time) {
	d := time.Since(start)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observeHTTP(route, status, d)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "http request",
		slog.String("request_id", requestID(r.Context())),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("bytes", sw.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("client_ip", s.cfg.ClientIP(r)),
	)
}

// statusWriter remembers the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status = status
		if status >= 200 {
			w.wrote = true
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes when the underlying writer can.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// remoteIP is the host part of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearer returns the Bearer token of r, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return ""
	}
	return strings.TrimSpace(h[len(p):])
}

// session returns the session the user middleware put in the context.
func session(ctx context.Context) *merchant.Session {
	sess, _ := ctx.Value(keySession).(*merchant.Session)
	return sess
}

// user wraps a handler of the mini-program API: the Bearer token must be
// a live session, which the handler finds in the context. The payer is
// always that session's user.
func (s *Server) user(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" || len(tok) > 256 {
			s.writeError(w, r, merchant.Errorf(merchant.EUNAUTHORIZED, "a Bearer token is required: log in first"))
			return
		}
		sess, err := s.svc.Authenticate(r.Context(), tok)
		if err != nil {
			if merchant.ErrorCode(err) == merchant.EUNAUTHORIZED || merchant.ErrorCode(err) == merchant.ENOTFOUND {
				err = merchant.Errorf(merchant.EUNAUTHORIZED, "the session is invalid or expired: log in again")
			}
			s.writeError(w, r, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keySession, sess)))
	}
}

// admin wraps a handler of the admin API: the Bearer token must be the
// admin token, compared in constant time (over SHA-256 digests, so the
// length does not leak either).
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			s.writeError(w, r, merchant.Errorf(merchant.EUNAUTHORIZED, "the admin API is disabled: no admin token is configured"))
			return
		}
		sum := sha256.Sum256([]byte(bearer(r)))
		if subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) != 1 {
			s.writeError(w, r, merchant.Errorf(merchant.EUNAUTHORIZED, "the admin token is missing or wrong"))
			return
		}
		next(w, r)
	}
}

// limited takes a token from lm for key, answering 429 with Retry-After
// and returning false when there is none.
func (s *Server) limited(w http.ResponseWriter, r *http.Request, lm *limiter, key, what string) bool {
	ok, wait := lm.allow(key)
	if ok {
		return true
	}
	w.Header().Set("Retry-After", fmt.Sprint(retryAfter(wait)))
	s.writeError(w, r, merchant.Errorf(merchant.ERATELIMIT, "too many %s; retry in %d s", what, retryAfter(wait)))
	return false
}

// NewHTTPServer returns an http.Server for h with the timeouts set
// (reliability.md G4): 5 s to read the headers, 30 s for the whole
// request, 60 s to write the answer (an order may wait on WeChat through
// its retries), 2 minutes idle, and 64 KiB of headers.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
