package river_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/pgtest"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/postgres"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// driverCase is a database for the store and River's queue.
type driverCase struct {
	name string
	open func(t *testing.T, h *harness) // sets h.store and h.driver
}

var sqliteCase = driverCase{"sqlite", func(t *testing.T, h *harness) {
	path := filepath.Join(t.TempDir(), "wxpay.db")
	st, err := sqlite.Open(h.ctx, path, sqlite.WithNow(h.srv.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.store, h.driver = st, river.SQLite(path)
}}

var postgresCase = driverCase{"postgres", func(t *testing.T, h *harness) {
	st, err := postgres.Open(h.ctx, pgtest.New(t), postgres.WithNow(h.srv.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // before pgtest drops the database
	h.store, h.driver = st, river.Postgres(st.Pool())
}}

// drivers are the databases every job test runs on.
func drivers() []driverCase { return []driverCase{sqliteCase, postgresCase} }

// start is the simulator's time when a test begins.
var start = time.Date(2026, 11, 28, 9, 0, 0, 0, wxpay.China)

// harness is the merchant service against the simulator, through the
// real gateway and SDK, on a SQLite store.
type harness struct {
	t      *testing.T
	ctx    context.Context
	srv    *wxpaytest.Server
	gw     merchant.Gateway
	store  merchant.Store
	driver river.Driver // River's queue, in the store's database
	svc    *payments.Service
	rec    *recon.Reconciler
	sess   *merchant.Session
	counts *counter
}

type harnessOption func(*wxsim.Config)

// newHarness builds the service on the database dc names (River's queue
// goes in the same one).
func newHarness(t *testing.T, dc driverCase, opts ...harnessOption) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, ctx: ctx, counts: newCounter()}
	h.srv = wxpaytest.NewServer(t, wxpaytest.WithManualClock(start), wxpaytest.WithConfig(func(c *wxsim.Config) {
		c.RefundDelay = 5 * time.Minute
		for _, o := range opts {
			o(c)
		}
	}))
	h.srv.Sim.NotifyDrop(1 << 20) // no notify ever arrives: only the jobs' queries tell
	gw, err := wxgateway.New(wxgateway.Config{Pay: h.srv.Pay, Login: h.srv.Login, NotifyURL: "http://127.0.0.1:9/wxpay/notify/pay"})
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	dc.open(t, h)
	h.service(h.gw)
	h.sess = &merchant.Session{OpenID: h.srv.NewUser(t), AppID: h.srv.AppID}
	return h
}

// service (re)builds the service over a gateway.
func (h *harness) service(gw merchant.Gateway) {
	h.t.Helper()
	var err error
	h.svc, err = payments.New(h.store, gw, payments.Config{
		Catalog: merchant.Catalog{"latte": {SKU: "latte", Name: "Latte", Price: 2800}},
		Now:     h.srv.Clock.Now,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.rec = recon.New(h.svc, recon.Options{})
}

// config is a fast job configuration on the harness's service.
func (h *harness) config() river.Config {
	return river.Config{
		Payments: h.svc, Reconciler: h.rec, Driver: h.driver,
		SettleEvery: time.Second, RefundsEvery: time.Second, OutboxEvery: time.Second,
		PollInterval: 100 * time.Millisecond,
		NoStagger:    true,
		Logger:       testLogger(),
		Observe:      h.counts.observe,
	}
}

// start starts the jobs and stops them when the test ends.
func (h *harness) start(cfg river.Config) *river.Jobs {
	h.t.Helper()
	j, err := river.Start(h.ctx, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := j.Stop(ctx); err != nil {
			h.t.Errorf("stop: %v", err)
		}
	})
	return j
}

// order places an order (unifiedorder at the simulator).
func (h *harness) order() *merchant.Order {
	h.t.Helper()
	res, err := h.svc.CreateOrder(h.ctx, h.sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: "latte", Quantity: 1}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Order
}

// pay has the user pay an order in the simulator (its notify is dropped).
func (h *harness) pay(o *merchant.Order) {
	h.t.Helper()
	r, err := h.srv.Sim.PayOrder(h.srv.MchID, o.OutTradeNo, "", wxsim.OutcomeSuccess)
	if err != nil || r.TransactionID == "" {
		h.t.Fatalf("pay %s: %+v %v", o.OutTradeNo, r, err)
	}
}

// paidOrder is an order paid at WeChat and known paid here (by a query).
func (h *harness) paidOrder() *merchant.Order {
	h.t.Helper()
	o := h.order()
	h.pay(o)
	o, err := h.svc.Sync(h.ctx, o.OutTradeNo)
	if err != nil || o.Status != merchant.OrderPaid {
		h.t.Fatalf("sync: %+v %v", o, err)
	}
	return o
}

func (h *harness) status(no string) merchant.OrderStatus {
	h.t.Helper()
	o, err := h.store.Order(h.ctx, no)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.Status
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > timeout {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(begin)
}

// counter counts Observe calls.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
	first  map[string]time.Time
}

func newCounter() *counter { return &counter{counts: map[string]int{}, first: map[string]time.Time{}} }

func (c *counter) observe(kind, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := kind + "/" + outcome
	c.counts[k]++
	if _, ok := c.first[k]; !ok {
		c.first[k] = time.Now()
	}
}

func (c *counter) get(kind, outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[kind+"/"+outcome]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.counts)
}

// testLogger shows warnings and errors with -v.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
