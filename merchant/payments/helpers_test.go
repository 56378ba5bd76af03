package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/internal/pgtest"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/postgres"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Canary secrets (reliability.md I9): recognisable values that must never
// show up in a log line, a response body or a dump of the database. The
// session keys the simulator hands out carry canarySessionKey too.
const (
	canaryAPIKey     = "CANARYapikeyCANARYapikey00000001" // 32 characters, as a v2 API key
	canaryAppSecret  = "CANARYappsecret0000000000000001"
	canaryAdminToken = "CANARY-admin-token-0000000000001"
	canarySessionKey = "CANARYsessionKey"                 // + 5 digits + "A==": base64 of 16 bytes
	canaryAPIv3Key   = "CANARYapiv3keyCANARYapiv3key0001" // 32 bytes, as an APIv3 key
	// canaryPEM is the marker of any private key in PEM (PKCS#1 or
	// PKCS#8): the merchant API key of a v3 run, whose base64 lines are
	// canaries too (harness.canaries).
	canaryPEM = "PRIVATE KEY-----"
)

const (
	appID = wxsim.DefaultAppID
	mchID = wxsim.DefaultMchID
)

// start is when every test begins: 2026-11-28 10:00:00 China Standard Time.
var start = time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)

var catalog = merchant.Catalog{
	"COFFEE": {SKU: "COFFEE", Name: "咖啡", Price: 1500},
	"TEA":    {SKU: "TEA", Name: "茶", Price: 990},
	"CAKE":   {SKU: "CAKE", Name: "蛋糕", Price: 2333},
	"GOLD":   {SKU: "GOLD", Name: "金条", Price: 1_000_000},
}

var oneCoffee = []merchant.CartLine{{SKU: "COFFEE", Quantity: 1}}

// ---- stores ----

// storeRef says where a store lives, so that a second instance (or a
// child process) can open the same database.
type storeRef struct {
	kind string // "sqlite" or "postgres"
	path string // the SQLite file
	dsn  string // the PostgreSQL database
}

// storeKind opens a fresh store of one kind for a test.
type storeKind struct {
	name string
	open func(t testing.TB) storeRef
}

var sqliteKind = storeKind{"sqlite", func(t testing.TB) storeRef {
	return storeRef{kind: "sqlite", path: filepath.Join(t.TempDir(), "merchant.db")}
}}

var postgresKind = storeKind{"postgres", func(t testing.TB) storeRef {
	return storeRef{kind: "postgres", dsn: pgtest.New(t)}
}}

// storeKinds are the stores every reliability test runs on. PostgreSQL is
// skipped when it is not installed, and required when CI=true (pgtest).
var storeKinds = []storeKind{sqliteKind, postgresKind}

// openStore opens the store ref names; it is closed when t ends (before
// pgtest drops the database).
func openStore(t testing.TB, ref storeRef, now func() time.Time) merchant.Store {
	t.Helper()
	ctx := context.Background()
	var (
		st  merchant.Store
		err error
	)
	switch ref.kind {
	case "sqlite":
		st, err = sqlite.Open(ctx, ref.path, sqlite.WithNow(now))
	case "postgres":
		st, err = postgres.Open(ctx, ref.dsn, postgres.WithNow(now))
	default:
		err = fmt.Errorf("unknown store kind %q", ref.kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eachStore runs f as a subtest on every store kind. The subtests run in
// parallel with those of other tests (each has its own simulator, clock
// and database): while one waits on PostgreSQL another uses the CPU.
func eachStore(t *testing.T, f func(t *testing.T, sk storeKind)) {
	t.Helper()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			f(t, sk)
		})
	}
}

// dumpDB returns the text of every row of every table of the store's
// database, for the I9 grep.
func dumpDB(t testing.TB, st merchant.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	switch s := st.(type) {
	case *sqlite.Store:
		db := s.DB()
		rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, n)
		}
		rows.Close()
		for _, tbl := range tables {
			rows, err := db.QueryContext(ctx, `SELECT * FROM "`+tbl+`"`)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s: ", tbl)
				for _, v := range vals {
					if bs, ok := v.([]byte); ok {
						v = string(bs)
					}
					fmt.Fprintf(&b, "%v|", v)
				}
				b.WriteByte('\n')
			}
			rows.Close()
		}
	case *postgres.Store:
		pool := s.Pool()
		rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, n)
		}
		rows.Close()
		for _, tbl := range tables {
			rows, err := pool.Query(ctx, `SELECT * FROM "`+tbl+`"`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s: ", tbl)
				for _, v := range vals {
					if bs, ok := v.([]byte); ok {
						v = string(bs)
					}
					fmt.Fprintf(&b, "%v|", v)
				}
				b.WriteByte('\n')
			}
			rows.Close()
		}
	default:
		t.Fatalf("dumpDB: unknown store %T", st)
	}
	return b.String()
}

// ---- captured text ----

// textBuffer collects logs or response bodies, safely for concurrent
// writers.
type textBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *textBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *textBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// canaryIDs is the simulator's sequential ids, but with session keys that
// carry a canary, so a leak of a session_key can be seen; it remembers
// every one it made.
type canaryIDs struct {
	wxsim.IDSource
	n    atomic.Int64
	mu   sync.Mutex
	keys []string
}

func (c *canaryIDs) NewID(kind wxsim.IDKind, now time.Time) string {
	if kind == wxsim.IDSessionKey {
		k := fmt.Sprintf("%s%05dA==", canarySessionKey, c.n.Add(1))
		c.mu.Lock()
		c.keys = append(c.keys, k)
		c.mu.Unlock()
		return k
	}
	return c.IDSource.NewID(kind, now)
}

func (c *canaryIDs) sessionKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.keys)
}

// countingMetrics counts what the service reports.
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func newMetrics() *countingMetrics { return &countingMetrics{counts: map[string]int{}} }

func (m *countingMetrics) add(k string) {
	m.mu.Lock()
	m.counts[k]++
	m.mu.Unlock()
}
func (m *countingMetrics) OrderCreated(tt string)     { m.add("created/" + tt) }
func (m *countingMetrics) OrderPaid(src string)       { m.add("paid/" + src) }
func (m *countingMetrics) Refund(status string)       { m.add("refund/" + status) }
func (m *countingMetrics) Notify(kind, res, r string) { m.add("notify/" + kind + "/" + res + "/" + r) }

func (m *countingMetrics) get(k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[k]
}

// ---- the merchant's HTTP front ----

// front is the merchant's HTTP server as WeChat and the mini program see
// it: httpapi's handler, behind a tee that keeps every response body (for
// I9) and a switch that can hold notifies — capture the genuine body,
// answer FAIL and process nothing — so that a test can replay them. For a
// v3 merchant (v3key set) it keeps each notify's headers with its body
// (the Wechatpay-* headers are needed to replay it) and decrypts the
// resource with the APIv3 key to know its order.
type front struct {
	h      atomic.Pointer[http.Handler]
	resp   *textBuffer
	mu     sync.Mutex
	hold   map[string]bool     // "pay", "refund"
	holdNo map[string]bool     // out_trade_no whose pay notifies are held
	pay    map[string][]byte   // out_trade_no → the last pay notify body seen
	order  []string            // out_trade_no in arrival order
	rfd    [][]byte            // refund notify bodies, in arrival order
	seen   map[string][][]byte // path → every notify body

	v3key wxpay.Secret        // the APIv3 key; empty for a v2 merchant
	pay3  map[string]v3Notice // out_trade_no → the last pay notify seen, probes excepted
	all3  []v3Notice          // every v3 notify, in arrival order
}

// replayHeader marks a notify a test posts itself (harness.postNotifyV3):
// the front neither holds nor records it, so that holding an order's
// notifies (WeChat's) does not swallow the forms a test replays.
const replayHeader = "X-Test-Replay"

// v3Notice is a v3 notify as it reached the front.
type v3Notice struct {
	kind        string // "pay", "refund"
	header      http.Header
	body        []byte
	outTradeNo  string // from the decrypted resource; empty if it does not decrypt
	outRefundNo string
	probe       bool // a WECHATPAY/SIGNTEST/ signature
}

func newFront() *front {
	return &front{resp: &textBuffer{}, hold: map[string]bool{}, holdNo: map[string]bool{}, pay: map[string][]byte{},
		seen: map[string][][]byte{}, pay3: map[string]v3Notice{}}
}

type teeWriter struct {
	http.ResponseWriter
	buf *bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return w.ResponseWriter.Write(p)
}

// decryptV3 returns the out_trade_no and out_refund_no of a v3 notify
// body, decrypting its resource with the APIv3 key ("" when it does not).
func decryptV3(key wxpay.Secret, body []byte) (outTradeNo, outRefundNo string) {
	var env struct {
		Resource struct {
			Ciphertext     string `json:"ciphertext"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
		} `json:"resource"`
	}
	if json.Unmarshal(body, &env) != nil {
		return "", ""
	}
	plain, err := wxcrypto.DecryptAEAD(key, env.Resource.Nonce, env.Resource.AssociatedData, env.Resource.Ciphertext)
	if err != nil {
		return "", ""
	}
	var res struct {
		OutTradeNo  string `json:"out_trade_no"`
		OutRefundNo string `json:"out_refund_no"`
	}
	if json.Unmarshal(plain, &res) != nil {
		return "", ""
	}
	return res.OutTradeNo, res.OutRefundNo
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := ""
	switch r.URL.Path {
	case "/wxpay/notify/pay":
		kind = "pay"
	case "/wxpay/notify/refund":
		kind = "refund"
	}
	if kind != "" && r.Header.Get(replayHeader) == "" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		v3 := f.v3key != ""
		f.seen[kind] = append(f.seen[kind], body)
		no := ""
		switch {
		case v3:
			n := v3Notice{kind: kind, header: r.Header.Clone(), body: body,
				probe: strings.HasPrefix(r.Header.Get(apiv3.HeaderSignature), apiv3.ProbePrefix)}
			n.outTradeNo, n.outRefundNo = decryptV3(f.v3key, body)
			no = n.outTradeNo
			f.all3 = append(f.all3, n)
			if kind == "pay" && no != "" && !n.probe {
				if _, ok := f.pay3[no]; !ok {
					f.order = append(f.order, no)
				}
				f.pay3[no] = n
			}
		case kind == "pay":
			if fields, err := apiv2.ParseMessage(body); err == nil {
				for _, fl := range fields {
					if fl.Name == "out_trade_no" {
						no = fl.Value
						if _, ok := f.pay[fl.Value]; !ok {
							f.order = append(f.order, fl.Value)
						}
						f.pay[fl.Value] = body
					}
				}
			}
		default:
			f.rfd = append(f.rfd, body)
		}
		hold := f.hold[kind] || kind == "pay" && no != "" && f.holdNo[no]
		f.mu.Unlock()
		if hold {
			if v3 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"code":"FAIL","message":"held by the test"}`))
				return
			}
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(apiv2.NotifyFail("held by the test"))
			return
		}
	}
	var buf bytes.Buffer
	(*f.h.Load()).ServeHTTP(&teeWriter{ResponseWriter: w, buf: &buf}, r)
	f.resp.Write(buf.Bytes())
	f.resp.Write([]byte("\n"))
}

// holdNotifies makes the front capture and refuse the notifies of a kind
// ("pay", "refund") until released.
func (f *front) holdNotifies(kind string, on bool) {
	f.mu.Lock()
	f.hold[kind] = on
	f.mu.Unlock()
}

// holdOrder makes the front capture and refuse the pay notifies of one
// order until released.
func (f *front) holdOrder(no string, on bool) {
	f.mu.Lock()
	if on {
		f.holdNo[no] = true
	} else {
		delete(f.holdNo, no)
	}
	f.mu.Unlock()
}

// releaseAll releases every hold.
func (f *front) releaseAll() {
	f.mu.Lock()
	clear(f.hold)
	clear(f.holdNo)
	f.mu.Unlock()
}

// payBody returns the last genuine pay notify of an order.
func (f *front) payBody(t testing.TB, outTradeNo string) []byte {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.pay[outTradeNo]
	if !ok {
		t.Fatalf("no pay notify of %s arrived", outTradeNo)
	}
	return b
}

// payV3 returns the last v3 pay notify of an order (not a probe), headers
// and body.
func (f *front) payV3(t testing.TB, outTradeNo string) v3Notice {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.pay3[outTradeNo]
	if !ok {
		t.Fatalf("no v3 pay notify of %s arrived", outTradeNo)
	}
	n.header = n.header.Clone()
	n.body = slices.Clone(n.body)
	return n
}

// v3Notices returns every v3 notify that arrived, in order.
func (f *front) v3Notices() []v3Notice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.all3)
}

func (f *front) refundBodies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rfd)
}

// simFront is a fault layer in front of the simulator (for the merchant's
// SDK calls): it can cut a response short, which the simulator itself
// cannot do (reliability.md E2's truncated download), and it counts the
// requests by path with the simulated time of each (the certificate
// downloads of F3).
type simFront struct {
	sim      http.Handler
	now      func() time.Time
	truncate atomic.Pointer[func(path string, body []byte) []byte]
	mu       sync.Mutex
	hits     map[string][]time.Time // path → when (simulated) each request came
}

func (s *simFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.hits == nil {
		s.hits = map[string][]time.Time{}
	}
	s.hits[r.URL.Path] = append(s.hits[r.URL.Path], s.now())
	s.mu.Unlock()
	fn := s.truncate.Load()
	if fn == nil {
		s.sim.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.sim.ServeHTTP(rec, r)
	body := (*fn)(r.URL.Path, rec.Body.Bytes())
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// requests returns the simulated times of the requests to a path.
func (s *simFront) requests(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits[path])
}

// ---- the harness ----

// harness is the merchant service against the simulator on a manual
// clock: a real store (SQLite or PostgreSQL), the real gateway (apiv2 and
// miniprogram clients over loopback HTTP), the real httpapi notify
// endpoints, the River jobs run once by hand, the reconciler, and every
// log line and response body captured.
type harness struct {
	t       *testing.T
	ctx     context.Context
	sk      storeKind
	ref     storeRef
	clock   *wxsim.ManualClock
	sim     *wxsim.Simulator
	simURL  string
	simFr   *simFront
	ids     *canaryIDs
	store   merchant.Store // as the service sees it (maybe wrapped)
	base    merchant.Store // the real store
	pay     *apiv2.Client  // nil for a v3 merchant (withV3)
	v3      *v3Keys        // nil for a v2 merchant
	gw      merchant.Gateway
	svc     *payments.Service
	runner  *river.Runner
	rec     *recon.Reconciler
	metrics *countingMetrics
	logs    *textBuffer
	logger  *slog.Logger
	front   *front
	url     string // the merchant's base URL
	extra   []string

	reconciled map[string]bool
	injected   bool // faults were injected with h.inject: all must fire
}

type options struct {
	signType      wxpay.SignType
	sim           func(*wxsim.Config)
	wrapStore     func(merchant.Store) merchant.Store
	wrapGateway   func(merchant.Gateway) merchant.Gateway
	notifyTimeout time.Duration
	notifyURL     string // the pay notify URL sent with unifiedorder (default: the front)
	limits        bool   // httpapi's default rate limits (default: none to speak of)
	v3            string // "": v2; else the APIv3 verifier mode (withV3)
}

type option func(*options)

func withSignType(st wxpay.SignType) option { return func(o *options) { o.signType = st } }
func withSim(f func(*wxsim.Config)) option  { return func(o *options) { o.sim = f } }
func withStore(f func(merchant.Store) merchant.Store) option {
	return func(o *options) { o.wrapStore = f }
}
func withGateway(f func(merchant.Gateway) merchant.Gateway) option {
	return func(o *options) { o.wrapGateway = f }
}
func withNotifyTimeout(d time.Duration) option { return func(o *options) { o.notifyTimeout = d } }
func withNotifyURL(u string) option            { return func(o *options) { o.notifyURL = u } }
func withDefaultLimits() option                { return func(o *options) { o.limits = true } }

// withV3 builds the gateway over APIv3 (wxgateway.NewV3) instead of v2,
// verifying WeChat's answers and notifies in one of the modes of
// cmd/wxpay: "certificates" (a CertificateManager, started now),
// "public_key" (the simulator switched to the WeChat Pay public key, a
// PublicKeyVerifier) or "both" (the switch-over half done, as the command
// does it: a MultiVerifier over both).
func withV3(mode string) option { return func(o *options) { o.v3 = mode } }

// v3Keys is what the harness holds of a v3 merchant: its credentials
// (secrets: for the canaries and for decrypting notifies in tests), the
// client, and the verifiers, so that tests can look at them.
type v3Keys struct {
	mode   string
	creds  wxsim.V3Credentials
	key    wxpay.Secret // the APIv3 key
	client *apiv3.Client
	mgr    *apiv3.CertificateManager // "certificates", "both"
	pk     *apiv3.PublicKeyVerifier  // "public_key", "both"
	multi  *apiv3.MultiVerifier      // "both"
}

// newV3Gateway builds the v3 client and gateway against the simulator,
// as cmd/wxpay's newV3 does from the simulator's V3Credentials.
func (h *harness) newV3Gateway(mode, simURL, notifyURL string, login *miniprogram.Client) merchant.Gateway {
	t := h.t
	t.Helper()
	switch mode {
	case "certificates":
	case "public_key", "both":
		share := 1.0
		if mode == "both" {
			share = 0.5
		}
		if _, err := h.sim.SwitchToPublicKey(mchID, share); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("withV3: unknown mode %q", mode)
	}
	k, gw := h.v3Client(mode, simURL, notifyURL, login)
	h.v3 = k
	h.front.mu.Lock()
	h.front.v3key = k.key
	h.front.mu.Unlock()
	return gw
}

// v3Client builds a v3 client with its own verifiers (a certificate
// manager downloads the platform certificates) and a gateway over it, for
// the simulator as it is (newV3Gateway switched it to the public key).
func (h *harness) v3Client(mode, simURL, notifyURL string, login *miniprogram.Client) (*v3Keys, merchant.Gateway) {
	t := h.t
	t.Helper()
	creds, err := h.sim.V3Credentials(mchID)
	if err != nil {
		t.Fatal(err)
	}
	if creds.APIv3Key != canaryAPIv3Key || creds.PrivateKeyPEM == "" {
		t.Fatalf("the simulator's v3 credentials are not the canaries")
	}
	k := &v3Keys{mode: mode, creds: creds, key: wxpay.Secret(creds.APIv3Key)}
	boot, err := apiv3.NewClient(apiv3.Config{MchID: mchID, AppID: appID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: k.key, NotifyURL: notifyURL},
		apiv3.WithBaseURL(simURL), apiv3.WithClock(h.clock.Now), apiv3.WithLogger(h.logger))
	if err != nil {
		t.Fatal(err)
	}
	var verifier apiv3.Verifier
	if mode != "certificates" {
		if k.pk, err = apiv3.NewPublicKeyVerifier(creds.PublicKeyID, []byte(creds.PublicKeyPEM)); err != nil {
			t.Fatal(err)
		}
		verifier = k.pk
	}
	if mode != "public_key" {
		if k.mgr, err = apiv3.NewCertificateManager(boot, k.key); err != nil {
			t.Fatal(err)
		}
		if err := k.mgr.Start(h.ctx); err != nil {
			t.Fatalf("downloading the platform certificates: %v", err)
		}
		t.Cleanup(k.mgr.Stop)
		verifier = k.mgr
		if k.pk != nil {
			k.multi = &apiv3.MultiVerifier{PublicKey: k.pk, Certificates: k.mgr}
			verifier = k.multi
		}
	}
	if k.client, err = boot.WithVerifier(verifier); err != nil {
		t.Fatal(err)
	}
	gw, err := wxgateway.NewV3(wxgateway.ConfigV3{Pay: k.client, Login: login,
		NotifyURL: notifyURL, RefundNotifyURL: h.url + "/wxpay/notify/refund"})
	if err != nil {
		t.Fatal(err)
	}
	return k, gw
}

// certDownloads returns the simulated times of the platform certificate
// downloads (GET /v3/certificates) so far.
func (h *harness) certDownloads() []time.Time { return h.simFr.requests("/v3/certificates") }

// newHarness builds the service on a fresh store of kind sk.
func newHarness(t *testing.T, sk storeKind, opts ...option) *harness {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	h := &harness{t: t, ctx: context.Background(), sk: sk, clock: wxsim.NewManualClock(start),
		ids: &canaryIDs{IDSource: wxsim.NewSequentialIDs()}, metrics: newMetrics(), logs: &textBuffer{},
		front: newFront(), reconciled: map[string]bool{}}
	h.logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mts := httptest.NewServer(h.front)
	t.Cleanup(mts.Close)
	h.url = mts.URL

	simCfg := wxsim.Config{
		Merchants: []wxsim.Merchant{{MchID: mchID, APIKey: canaryAPIKey,
			Apps: []wxsim.App{{AppID: appID, AppSecret: canaryAppSecret}}, V3: wxsim.MerchantV3{APIv3Key: canaryAPIv3Key}}},
		Clock: h.clock, IDs: h.ids, CloseMinAge: -1,
	}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim, err := wxsim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	h.sim = sim
	h.simFr = &simFront{sim: sim, now: h.clock.Now}
	sts := httptest.NewServer(h.simFr)
	h.simURL = sts.URL
	t.Cleanup(func() {
		sts.Close()
		sim.Close()
	})

	h.ref = sk.open(t)
	h.base = openStore(t, h.ref, h.clock.Now)
	h.store = h.base
	if o.wrapStore != nil {
		h.store = o.wrapStore(h.base)
	}

	login, err := miniprogram.NewClient(appID, canaryAppSecret, miniprogram.WithBaseURL(sts.URL), miniprogram.WithLogger(h.logger))
	if err != nil {
		t.Fatal(err)
	}
	notifyURL := h.url + "/wxpay/notify/pay"
	if o.notifyURL != "" {
		notifyURL = o.notifyURL
	}
	var gw merchant.Gateway
	if o.v3 != "" {
		gw = h.newV3Gateway(o.v3, sts.URL, notifyURL, login)
	} else {
		h.pay, err = apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: canaryAPIKey, SignType: o.signType},
			apiv2.WithBaseURL(sts.URL), apiv2.WithClock(h.clock.Now), apiv2.WithLogger(h.logger))
		if err != nil {
			t.Fatal(err)
		}
		if gw, err = wxgateway.New(wxgateway.Config{Pay: h.pay, Login: login,
			NotifyURL: notifyURL, RefundNotifyURL: h.url + "/wxpay/notify/refund"}); err != nil {
			t.Fatal(err)
		}
	}
	h.gw = gw
	if o.wrapGateway != nil {
		h.gw = o.wrapGateway(gw)
	}
	h.svc, err = payments.New(h.store, h.gw, payments.Config{Catalog: catalog, Now: h.clock.Now, Logger: h.logger, Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	h.rec = recon.New(h.svc, recon.Options{Logger: h.logger})
	h.runner, err = river.NewRunner(river.Config{Payments: h.svc, Reconciler: h.rec, Logger: h.logger})
	if err != nil {
		t.Fatal(err)
	}
	nt := o.notifyTimeout
	if nt == 0 {
		nt = 4 * time.Second
	}
	hc := httpapi.Config{Service: h.svc, AdminToken: canaryAdminToken, Logger: h.logger,
		Reconciler: h.rec, NotifyTimeout: nt, Now: h.clock.Now}
	if !o.limits {
		many := httpapi.Limit{Rate: 1000, Burst: 1000}
		hc.LoginPerIP, hc.OrdersPerIP, hc.OrdersPerUser = many, many, many
	}
	srv, err := httpapi.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	hd := srv.Handler()
	h.front.h.Store(&hd)
	return h
}

// user creates a WeChat user, has it log in to the service (jscode2session
// at the simulator) and returns its session.
func (h *harness) user() *merchant.Session {
	h.t.Helper()
	u, err := h.sim.CreateUser(wxsim.NewUser{AppID: appID, Balance: 1 << 40})
	if err != nil {
		h.t.Fatal(err)
	}
	code, err := h.sim.LoginCode(appID, u.OpenID)
	if err != nil {
		h.t.Fatal(err)
	}
	token, openID, err := h.svc.Login(h.ctx, code)
	if err != nil || openID != u.OpenID {
		h.t.Fatalf("login: %q %v", openID, err)
	}
	sess, err := h.svc.Authenticate(h.ctx, token)
	if err != nil {
		h.t.Fatal(err)
	}
	return sess
}

// create places an order of the cart for sess.
func (h *harness) create(sess *merchant.Session, cart []merchant.CartLine) *payments.OrderResult {
	h.t.Helper()
	res, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: cart})
	if err != nil {
		h.t.Fatalf("create order: %v", err)
	}
	return res
}

// payAtSim has the user pay with the order's pay parameters, as
// wx.requestPayment, and lets the first notify try run.
func (h *harness) payAtSim(sess *merchant.Session, res *payments.OrderResult) string {
	h.t.Helper()
	p := res.PayParams
	if p == nil {
		var err error
		r, err := h.svc.PayParams(h.ctx, sess, res.Order.OutTradeNo)
		if err != nil {
			h.t.Fatalf("pay params: %v", err)
		}
		p = r.PayParams
	}
	out := h.sim.RequestPayment(wxsim.PaymentRequest{OpenID: sess.OpenID, AppID: p.AppID, TimeStamp: p.TimeStamp,
		NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
	if !out.OK() {
		h.t.Fatalf("requestPayment: %s", out.ErrMsg)
	}
	h.sim.Flush()
	return out.TransactionID
}

// paidOrder is an order created, paid at the simulator and marked paid by
// its notify.
func (h *harness) paidOrder(sess *merchant.Session, cart []merchant.CartLine) *merchant.Order {
	h.t.Helper()
	res := h.create(sess, cart)
	h.payAtSim(sess, res)
	o := h.order(res.Order.OutTradeNo)
	if o.Status != merchant.OrderPaid {
		h.t.Fatalf("order %s is %s after its notify", o.OutTradeNo, o.Status)
	}
	return o
}

func (h *harness) order(no string) *merchant.Order {
	h.t.Helper()
	o, err := h.base.Order(h.ctx, no)
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

func (h *harness) simOrder(no string) wxsim.Order {
	h.t.Helper()
	o, ok := h.sim.Order(mchID, no)
	if !ok {
		h.t.Fatalf("the simulator has no order %s", no)
	}
	return o
}

func (h *harness) events(no string) []*merchant.OrderEvent {
	h.t.Helper()
	ev, err := h.base.Events(h.ctx, no)
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

func (h *harness) paidEvents(no string) int {
	h.t.Helper()
	ob, err := h.base.OutboxFor(h.ctx, no)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, e := range ob {
		if e.Type == merchant.EventOrderPaid {
			n++
		}
	}
	return n
}

func (h *harness) anomalies(no string) []*merchant.Anomaly {
	h.t.Helper()
	a, err := h.base.Anomalies(h.ctx, no, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// wantOnePayment checks an order was paid exactly once: PAID (or REFUND),
// one NOTPAY→PAID event, one order.paid outbox event.
func (h *harness) wantOnePayment(no string) {
	h.t.Helper()
	o := h.order(no)
	if !o.Status.Paid() {
		h.t.Fatalf("%s is %s, want paid", no, o.Status)
	}
	paid := 0
	for _, e := range h.events(no) {
		if e.To == merchant.OrderPaid {
			paid++
		}
	}
	if paid != 1 {
		h.t.Fatalf("%s has %d transitions to PAID: %+v", no, paid, h.events(no))
	}
	if n := h.paidEvents(no); n != 1 {
		h.t.Fatalf("%s has %d order.paid outbox events", no, n)
	}
}

// advance moves the clock (and runs what falls due at the simulator).
func (h *harness) advance(d time.Duration) { h.clock.Advance(d) }

// run runs one job once.
func (h *harness) run(kind string) *river.Result {
	h.t.Helper()
	res, err := h.runner.RunOnce(h.ctx, kind)
	if err != nil {
		h.t.Fatalf("%s: %v", kind, err)
	}
	return res
}

// quiesce brings everything to rest (reliability.md Part 0): faults and
// held notifies are released, the simulator finishes every notify retry
// and refund completion, the clock moves to 10:30 of the next China day,
// the settle and refund jobs run until nothing changes, and every day
// since the start is reconciled.
func (h *harness) quiesce() {
	h.t.Helper()
	h.sim.ClearFaults()
	h.simFr.truncate.Store(nil)
	h.front.releaseAll()
	if err := h.sim.Quiesce(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	now := h.clock.Now().In(wxpay.China)
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, wxpay.China)
	next := today.AddDate(0, 0, 1).Add(10*time.Hour + 30*time.Minute)
	h.advance(next.Sub(now))
	h.jobs()
	sy, sm, sd := start.Date()
	for day := time.Date(sy, sm, sd, 0, 0, 0, 0, wxpay.China); !day.After(today); day = day.AddDate(0, 0, 1) {
		date := day.Format(recon.DateLayout)
		if h.reconciled[date] {
			continue
		}
		if _, err := h.runner.Reconcile(h.ctx, date); err != nil {
			h.t.Fatalf("reconcile %s: %v", date, err)
		}
		h.reconciled[date] = true
	}
	h.jobs()
}

// jobs runs the settle and refund jobs until a run changes nothing.
func (h *harness) jobs() {
	h.t.Helper()
	for range 5 {
		s := h.run(river.KindSettle)
		r := h.run(river.KindRefunds)
		if err := h.sim.Quiesce(h.ctx); err != nil {
			h.t.Fatal(err)
		}
		if len(s.Counts) == 0 && len(r.Counts) == 0 {
			return
		}
	}
}

// canaries are the secrets of the run: with v3, the APIv3 key, the PEM
// marker and the lines of the merchant's private key too.
func (h *harness) canaries() []string {
	c := append([]string{canaryAPIKey, canaryAppSecret, canaryAdminToken, canaryAPIv3Key}, h.ids.sessionKeys()...)
	if h.v3 != nil {
		c = append(c, canaryPEM)
		for line := range strings.Lines(h.v3.creds.PrivateKeyPEM) {
			if line = strings.TrimSpace(line); len(line) >= 32 && !strings.HasPrefix(line, "-----") {
				c = append(c, line)
			}
		}
	}
	return c
}

// texts are everything captured: the merchant's logs, every response its
// HTTP server gave (notify replies included), the replies the simulator
// logged, and a dump of the database.
func (h *harness) texts() []string {
	var replies strings.Builder
	for _, a := range h.sim.Notifications() {
		replies.WriteString(a.Reply)
		replies.WriteByte('\n')
	}
	return append([]string{h.logs.String(), h.front.resp.String(), replies.String(), dumpDB(h.t, h.base)}, h.extra...)
}

// check runs the invariant checker against the simulator's ledger and
// fails the test on any violation. The simulator must also have judged
// every reply well-formed and seen no probe acknowledged (A1, A5).
func (h *harness) check() *invariant.Report {
	h.t.Helper()
	rep, err := invariant.Check(h.ctx, invariant.Input{
		Store: h.base, Ledger: h.sim.Ledger(), MchID: mchID, Now: h.clock.Now(), Grace: 2 * time.Minute,
		Canaries: h.canaries(), Texts: h.texts(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if !rep.OK() {
		h.t.Fatalf("invariants violated:\n%s", rep)
	}
	st := h.sim.NotifyStats()
	if st.Malformed != 0 || st.ProbesAccepted != 0 {
		h.t.Fatalf("notify stats: %+v", st)
	}
	return rep
}

// finish quiesces and checks the invariants: how every test ends.
func (h *harness) finish() *invariant.Report {
	h.t.Helper()
	if h.injected {
		h.noFaultPending()
	}
	h.quiesce()
	return h.check()
}

// ---- notify bodies ----

// fields parses a v2 message.
func fields(t testing.TB, body []byte) []wxcrypto.Field {
	t.Helper()
	f, err := apiv2.ParseMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(f)
}

func get(fs []wxcrypto.Field, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// set sets (or adds, or with "" removes) a field, keeping them sorted.
func set(fs []wxcrypto.Field, name, value string) []wxcrypto.Field {
	out := slices.Clone(fs)
	for i := range out {
		if out[i].Name == name {
			if value == "" {
				return slices.Delete(out, i, i+1)
			}
			out[i].Value = value
			return out
		}
	}
	if value == "" {
		return out
	}
	out = append(out, wxcrypto.Field{Name: name, Value: value})
	wxcrypto.SortFields(out)
	return out
}

// sign re-signs fields with a key and algorithm.
func sign(t testing.TB, fs []wxcrypto.Field, st wxpay.SignType, key string) []wxcrypto.Field {
	t.Helper()
	fs = slices.Clone(fs)
	wxcrypto.SortFields(fs)
	s, err := wxcrypto.Sign(st, key, fs)
	if err != nil {
		t.Fatal(err)
	}
	return set(fs, "sign", s)
}

func encode(t testing.TB, fs []wxcrypto.Field) []byte {
	t.Helper()
	b, err := apiv2.EncodeMessage(fs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- fakes where the simulator cannot produce the situation ----

// gate is a rendezvous: the first n callers of wait block until n have
// arrived (or the timeout passes), so that racers reach the store's write
// together — the "pause between read and write" failpoint of A3.
type gate struct {
	mu      sync.Mutex
	n       int
	arrived int
	open    chan struct{}
	timeout time.Duration
}

func newGate(n int, timeout time.Duration) *gate {
	return &gate{n: n, open: make(chan struct{}), timeout: timeout}
}

func (g *gate) wait() {
	g.mu.Lock()
	g.arrived++
	if g.arrived == g.n {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(g.timeout):
	}
}

// pausingStore pauses MarkPaid and MarkClosed of chosen orders at a gate
// before the store's transaction (after the service read the order and
// asked WeChat), and can slow MarkPaid down.
type pausingStore struct {
	merchant.Store
	mu    sync.Mutex
	gates map[string]*gate
	slow  atomic.Int64 // nanoseconds MarkPaid sleeps (honouring ctx)
}

func (p *pausingStore) gateFor(no string) *gate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gates[no]
}

func (p *pausingStore) setGate(no string, g *gate) {
	p.mu.Lock()
	if p.gates == nil {
		p.gates = map[string]*gate{}
	}
	p.gates[no] = g
	p.mu.Unlock()
}

func (p *pausingStore) MarkPaid(ctx context.Context, pm *merchant.Payment, now time.Time) (merchant.PayOutcome, *merchant.Order, error) {
	if g := p.gateFor(pm.OutTradeNo); g != nil {
		g.wait()
	}
	if d := time.Duration(p.slow.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
	return p.Store.MarkPaid(ctx, pm, now)
}

func (p *pausingStore) MarkClosed(ctx context.Context, no string, to merchant.OrderStatus, source string, now time.Time) (bool, error) {
	if g := p.gateFor(no); g != nil {
		g.wait()
	}
	return p.Store.MarkClosed(ctx, no, to, source, now)
}

// errCode is the merchant error code of err.
func errCode(err error) string { return merchant.ErrorCode(err) }

// wantCode fails unless err has the code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := errCode(err); got != code {
		t.Fatalf("error %v (code %q), want code %q", err, got, code)
	}
}

// parallel runs f n times at once and returns the errors.
func parallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	startCh := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startCh
			errs[i] = f(i)
		}()
	}
	close(startCh)
	wg.Wait()
	return errs
}

// sortedStrings is for stable messages.
func sortedStrings(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}

// rapidBudget is how many rapid checks a property really runs: n, or the
// -rapid.checks given on the command line. The checks rapid makes beyond
// it return at once (rapid has no per-test setting), which keeps these
// database-backed properties within CI's time.
func rapidBudget(n int) int {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		return n
	}
	v, err := strconv.Atoi(flag.Lookup("rapid.checks").Value.String())
	if err != nil {
		return n
	}
	return v
}
