package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxsim"
)

// appOptions say how to assemble the service.
type appOptions struct {
	cfg *config.Config
	// listener is the public listener, opened by the caller so that its
	// address (and the notify URLs built from it) is known.
	listener net.Listener
	// sim embeds the simulator: WeChat's side on an internal loopback
	// listener, its control API and cashier page under /sim/.
	sim bool
	// simConfig adjusts the embedded simulator (demo, load).
	simConfig func(*wxsim.Config)
	// wrapSim wraps the simulator's WeChat-side handler (the demo records
	// the traffic).
	wrapSim func(http.Handler) http.Handler
	// payOptions are extra apiv2 options (demo: a recording transport).
	payOptions []apiv2.Option
	log        *slog.Logger
	// now is the service's clock (the demo runs it on the simulator's).
	now func() time.Time
	// noJobs leaves the background jobs off.
	noJobs bool
	// out receives the startup banner.
	out io.Writer
}

// app is the assembled service.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	store    merchant.Store
	sim      *wxsim.Simulator
	simURL   string
	simSrv   *http.Server
	pay      *apiv2.Client // nil for an APIv3 merchant
	v3       *v3Setup      // nil for a v2 merchant
	gw       merchant.Gateway
	svc      *payments.Service
	recon    *recon.Reconciler
	api      *httpapi.Server
	metrics  *httpapi.Metrics
	handler  http.Handler
	baseURL  string // where the service listens, for people and the simulator
	jobs     interface{ Stop(context.Context) error }
	closeFns []func()
}

// newApp assembles store, gateway, use cases, HTTP API, pages and jobs.
func newApp(ctx context.Context, o appOptions) (a *app, err error) {
	a = &app{cfg: o.cfg, log: o.log}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	c := o.cfg
	a.baseURL = "http://" + loopbackAddr(o.listener.Addr())
	if c.PublicURL == "" {
		c.PublicURL = a.baseURL
	}
	if o.sim {
		if err := a.startSim(o); err != nil {
			return nil, err
		}
	} else if err := c.ValidateWeChat(); err != nil {
		return nil, err
	}
	if len(c.Shop.Products) == 0 {
		if !o.sim {
			return nil, errors.New("config: shop.products is empty: the service has nothing to sell")
		}
		c.Shop.Products = config.DemoCatalog()
	}
	if c.AdminToken == "" && o.sim {
		c.AdminToken = wxpay.Secret(randomHex(16))
		if o.out != nil {
			fmt.Fprintf(o.out, "admin token (generated for this run; set admin_token to choose one): %s\n", c.AdminToken.Reveal())
		}
	}

	if a.store, err = openStore(ctx, c.DB); err != nil {
		return nil, err
	}
	w := &c.WeChat
	publicURL := strings.TrimRight(c.PublicURL, "/")
	loginOpts := []miniprogram.Option{miniprogram.WithLogger(a.log)}
	if w.LoginBaseURL != "" {
		loginOpts = append(loginOpts, miniprogram.WithBaseURL(w.LoginBaseURL))
	}
	login, err := miniprogram.NewClient(w.AppID, w.AppSecret.Reveal(), loginOpts...)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	a.metrics = httpapi.NewMetrics(reg)
	if w.V3() {
		if a.v3, err = newV3(ctx, w, publicURL+"/wxpay/notify/pay", a.log, o.now); err != nil {
			return nil, err
		}
		a.closeFns = append(a.closeFns, a.v3.stop)
		a.gw, err = wxgateway.NewV3(wxgateway.ConfigV3{Pay: a.v3.client, Login: login,
			NotifyURL: publicURL + "/wxpay/notify/pay", RefundNotifyURL: publicURL + "/wxpay/notify/refund",
			Observe: a.metrics.ObserveWeChat})
	} else {
		payOpts := []apiv2.Option{apiv2.WithLogger(a.log)}
		if w.BaseURL != "" {
			payOpts = append(payOpts, apiv2.WithBaseURL(w.BaseURL))
		}
		if w.Failover {
			payOpts = append(payOpts, apiv2.WithFailover(""))
		}
		a.pay, err = apiv2.NewClient(apiv2.Config{
			AppID: w.AppID, MchID: w.MchID, APIKey: w.APIKey, SignType: wxpay.SignType(w.SignType),
			NotifyURL: publicURL + "/wxpay/notify/pay", CertFile: w.CertFile, KeyFile: w.KeyFile, P12File: w.P12File,
			AppSecret: w.AppSecret,
		}, append(payOpts, o.payOptions...)...)
		if err != nil {
			return nil, err
		}
		a.gw, err = wxgateway.New(wxgateway.Config{Pay: a.pay, Login: login,
			NotifyURL: publicURL + "/wxpay/notify/pay", RefundNotifyURL: publicURL + "/wxpay/notify/refund",
			Observe: a.metrics.ObserveWeChat})
	}
	if err != nil {
		return nil, err
	}
	a.svc, err = payments.New(a.store, a.gw, payments.Config{
		Catalog: c.Catalog(), BodyPrefix: c.Shop.Name, OrderTTL: c.Shop.OrderTTL.Duration,
		SessionTTL: c.Shop.SessionTTL.Duration, Logger: a.log, Metrics: a.metrics, Now: o.now,
	})
	if err != nil {
		return nil, err
	}
	a.recon = recon.New(a.svc, recon.Options{})
	hc := httpapi.Config{Service: a.svc, AdminToken: c.AdminToken, Logger: a.log, Metrics: a.metrics, Reconciler: a.recon}
	if a.pay != nil {
		// Native mode 1 (the product callback) exists in v2 only.
		hc.NativeCallback = &nativeCallback{pay: a.pay, svc: a.svc}
	}
	a.api, err = httpapi.New(hc)
	if err != nil {
		return nil, err
	}
	if err := a.mountPages(o.sim); err != nil {
		return nil, err
	}
	a.handler = a.api.Handler()
	if !o.noJobs && !c.Jobs.Disabled {
		if a.jobs, err = startJobs(ctx, a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// startSim runs the simulator: its WeChat side on an internal loopback
// listener, and the config pointed at it with its default merchant.
func (a *app) startSim(o appOptions) error {
	scfg := wxsim.Config{Logger: a.log}
	if o.simConfig != nil {
		o.simConfig(&scfg)
	}
	sim, err := wxsim.New(scfg)
	if err != nil {
		return err
	}
	a.sim = sim
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var h http.Handler = sim
	if o.wrapSim != nil {
		h = o.wrapSim(sim)
	}
	a.simSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.simSrv.Serve(ln) }()
	a.simURL = "http://" + ln.Addr().String()
	w := &a.cfg.WeChat
	w.AppID, w.MchID, w.APIKey, w.AppSecret = wxsim.DefaultAppID, wxsim.DefaultMchID, wxsim.DefaultAPIKey, wxsim.DefaultAppSecret
	w.BaseURL, w.LoginBaseURL = a.simURL, a.simURL
	w.CertFile, w.KeyFile, w.P12File = "", "", ""
	if w.V3() {
		return simV3Credentials(w, sim)
	}
	return nil
}

// mountPages adds the simulator (/sim/), the emulated mini program (/)
// and the admin dashboard (/admin/).
func (a *app) mountPages(sim bool) error {
	if sim {
		if err := a.api.Mount("/sim/", a.sim); err != nil {
			return err
		}
	}
	return mountWebUI(a.api, sim)
}

// Close stops everything, in reverse order.
func (a *app) Close() {
	if a == nil {
		return
	}
	if a.jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.jobs.Stop(ctx)
		cancel()
	}
	if a.simSrv != nil {
		_ = a.simSrv.Close()
	}
	if a.sim != nil {
		_ = a.sim.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	for i := len(a.closeFns) - 1; i >= 0; i-- {
		a.closeFns[i]()
	}
}

// openStore opens "sqlite:PATH" or a postgres:// URL.
func openStore(ctx context.Context, db string) (merchant.Store, error) {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite:"))
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return openPostgres(ctx, db)
	}
	return nil, fmt.Errorf("--db %q: use sqlite:PATH or postgres://…", redactDSN(db))
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			cred := rest[:at]
			if user, _, ok := strings.Cut(cred, ":"); ok {
				return dsn[:i+3] + user + ":REDACTED" + rest[at:]
			}
		}
	}
	return dsn
}

// loopbackAddr turns a listen address into one a local client can dial.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// nativeCallback answers Native mode-1 scans: verify, place a NATIVE
// order for the scanned product, reply with its prepay id. WeChat's
// retries of one scan carry the same nonce, which keys the order.
type nativeCallback struct {
	pay *apiv2.Client
	svc *payments.Service
}

func (n *nativeCallback) Handle(ctx context.Context, body []byte) ([]byte, error) {
	cb, err := n.pay.ParseNativeCallback(body)
	if err != nil {
		return nil, err
	}
	key := "native-" + cb.NonceStr
	if len(key) > 64 {
		key = key[:64]
	}
	res, err := n.svc.CreateOrder(ctx, &merchant.Session{OpenID: cb.OpenID, AppID: cb.AppID}, payments.CreateOrderRequest{
		Items: []merchant.CartLine{{SKU: cb.ProductID, Quantity: 1}}, TradeType: wxpay.TradeTypeNative, IdempotencyKey: key,
	})
	if err != nil {
		return n.pay.NativeCallbackReply("", merchant.ErrorMessage(err))
	}
	return n.pay.NativeCallbackReply(res.Order.PrepayID, "")
}
