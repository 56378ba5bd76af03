package payments_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// benchEnv is the service against the in-process simulator on the real
// clock, over loopback HTTP, with logs discarded.
type benchEnv struct {
	sim   *wxsim.Simulator
	store merchant.Store
	svc   *payments.Service
	paid  sync.Map // out_trade_no → chan struct{}, closed when its notify was acknowledged
}

func newBenchEnv(b *testing.B, sk storeKind) *benchEnv {
	b.Helper()
	e := &benchEnv{}
	mux := &lateMux{}
	mts := httptest.NewServer(mux)
	b.Cleanup(mts.Close)
	sim, err := wxsim.New(wxsim.Config{
		Merchants:   []wxsim.Merchant{{MchID: mchID, APIKey: canaryAPIKey, Apps: []wxsim.App{{AppID: appID, AppSecret: canaryAppSecret}}}},
		CloseMinAge: -1, DefaultBalance: 1 << 50,
	})
	if err != nil {
		b.Fatal(err)
	}
	e.sim = sim
	sts := httptest.NewServer(sim)
	b.Cleanup(func() {
		sts.Close()
		sim.Close()
	})
	e.store = openStore(b, sk.open(b), time.Now)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	pay, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: canaryAPIKey},
		apiv2.WithBaseURL(sts.URL), apiv2.WithHTTPClient(hc))
	if err != nil {
		b.Fatal(err)
	}
	login, err := miniprogram.NewClient(appID, canaryAppSecret, miniprogram.WithBaseURL(sts.URL))
	if err != nil {
		b.Fatal(err)
	}
	gw, err := wxgateway.New(wxgateway.Config{Pay: pay, Login: login, NotifyURL: mts.URL + "/wxpay/notify/pay"})
	if err != nil {
		b.Fatal(err)
	}
	e.svc, err = payments.New(e.store, gw, payments.Config{Catalog: catalog, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Service: e.svc})
	if err != nil {
		b.Fatal(err)
	}
	inner := srv.Handler()
	mux.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		body := captureBody(r)
		inner.ServeHTTP(rec, r)
		if r.URL.Path == "/wxpay/notify/pay" && rec.status == http.StatusOK {
			if fs, err := apiv2.ParseMessage(body); err == nil {
				if ch, ok := e.paid.Load(get(fs, "out_trade_no")); ok {
					closeOnce(ch.(chan struct{}))
				}
			}
		}
	})
	return e
}

type lateMux struct{ h http.Handler }

func (l *lateMux) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.h.ServeHTTP(w, r) }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func captureBody(r *http.Request) []byte {
	if r.URL.Path != "/wxpay/notify/pay" {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body
}

var closeMu sync.Mutex

func closeOnce(ch chan struct{}) {
	closeMu.Lock()
	defer closeMu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// session is a WeChat user logged in to the service.
func (e *benchEnv) session(b *testing.B) *merchant.Session {
	u, err := e.sim.CreateUser(wxsim.NewUser{AppID: appID})
	if err != nil {
		b.Fatal(err)
	}
	code, err := e.sim.LoginCode(appID, u.OpenID)
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := e.svc.Login(context.Background(), code)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := e.svc.Authenticate(context.Background(), token)
	if err != nil {
		b.Fatal(err)
	}
	return sess
}

// BenchmarkPaidOrderE2E: one paid order end to end — CreateOrder
// (unifiedorder at the simulator over loopback HTTP), the user pays
// (wx.requestPayment at the simulator), the simulator posts the signed pay
// notify to httpapi's endpoint, the service verifies it and commits PAID
// with its event and outbox row — in parallel, on each store. Reports paid
// orders per second. RunParallel runs 4 × GOMAXPROCS goroutines.
func BenchmarkPaidOrderE2E(b *testing.B) {
	for _, sk := range storeKinds {
		b.Run(sk.name, func(b *testing.B) {
			e := newBenchEnv(b, sk)
			ctx := context.Background()
			var failed atomic.Int64
			sessions := make([]*merchant.Session, 64) // RunParallel's goroutines take one each
			for i := range sessions {
				sessions[i] = e.session(b)
			}
			var taken atomic.Int64
			b.SetParallelism(4) // 4 × GOMAXPROCS goroutines: each mostly waits on loopback round trips
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				sess := sessions[(taken.Add(1)-1)%int64(len(sessions))]
				for pb.Next() {
					res, err := e.svc.CreateOrder(ctx, sess, payments.CreateOrderRequest{Items: oneCoffee})
					if err != nil {
						failed.Add(1)
						continue
					}
					ch := make(chan struct{})
					e.paid.Store(res.Order.OutTradeNo, ch)
					p := res.PayParams
					out := e.sim.RequestPayment(wxsim.PaymentRequest{OpenID: sess.OpenID, AppID: p.AppID, TimeStamp: p.TimeStamp,
						NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
					if !out.OK() {
						failed.Add(1)
						continue
					}
					select {
					case <-ch:
					case <-time.After(30 * time.Second):
						failed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d orders failed", n, b.N)
			}
		})
	}
}

// BenchmarkNotify: Service.HandlePayNotify of valid, correctly signed pay
// notifies, each for a distinct NOTPAY order, in parallel: verification,
// the conditional update, the event and the outbox row. The orders are
// stored and the notifies signed (as the simulator writes them) before the
// timer starts. Reports notifies per second (4 × GOMAXPROCS goroutines).
func BenchmarkNotify(b *testing.B) {
	for _, sk := range storeKinds {
		b.Run(sk.name, func(b *testing.B) {
			e := newBenchEnv(b, sk)
			ctx := context.Background()
			now := time.Now()
			bodies := make([][]byte, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += 8 {
						no := fmt.Sprintf("WXBENCH%017d", i)
						if _, _, err := e.store.CreateOrder(ctx, &merchant.Order{OutTradeNo: no, OpenID: "oBench", AppID: appID, MchID: mchID,
							TradeType: wxpay.TradeTypeJSAPI, TotalFee: 1500, Body: "bench", ClientIP: "127.0.0.1",
							ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
							b.Error(err)
							return
						}
						bodies[i] = notifyBody(b, no, fmt.Sprintf("4200%024d", time.Now().UnixNano()%1e12*1e6+int64(i)), now)
					}
				}()
			}
			wg.Wait()
			if b.Failed() {
				return
			}
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					if err := e.svc.HandlePayNotify(ctx, nil, bodies[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifies/s")
		})
	}
}

// notifyBody is a pay notify as the simulator writes it, signed (MD5)
// with the merchant's key.
func notifyBody(b testing.TB, no, txn string, at time.Time) []byte {
	fs := []wxcrypto.Field{
		{Name: "appid", Value: appID}, {Name: "bank_type", Value: "OTHERS"}, {Name: "cash_fee", Value: "1500"},
		{Name: "fee_type", Value: "CNY"}, {Name: "is_subscribe", Value: "N"}, {Name: "mch_id", Value: mchID},
		{Name: "nonce_str", Value: strconv.FormatInt(at.UnixNano(), 36)}, {Name: "openid", Value: "oBench"},
		{Name: "out_trade_no", Value: no}, {Name: "result_code", Value: "SUCCESS"}, {Name: "return_code", Value: "SUCCESS"},
		{Name: "return_msg", Value: "OK"}, {Name: "time_end", Value: at.In(wxpay.China).Format("20060102150405")},
		{Name: "total_fee", Value: "1500"}, {Name: "trade_type", Value: "JSAPI"}, {Name: "transaction_id", Value: txn},
	}
	return encode(b, sign(b, fs, wxpay.SignTypeMD5, canaryAPIKey))
}
