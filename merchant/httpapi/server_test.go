package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
)

// noOrderLimits turns the order rate limits off.
func noOrderLimits(o *envOptions) {
	o.http = func(c *httpapi.Config) {
		c.OrdersPerUser = httpapi.Limit{Rate: -1}
		c.OrdersPerIP = httpapi.Limit{Rate: -1}
	}
}

func TestUserAuth(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")
	for name, hdr := range map[string]string{
		"none":      "",
		"forged":    "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"basic":     "Basic " + u.token,
		"admin":     "Bearer " + canaryAdminToken,
		"too long":  "Bearer " + strings.Repeat("a", 300),
		"no scheme": u.token,
	} {
		q := req{}
		if hdr != "" {
			q.headers = map[string]string{"Authorization": hdr}
		}
		r := e.do("GET", "/api/v1/orders/"+po.OutTradeNo, q).want(t, 401)
		if r.errCode(t) != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %s %v", name, r.body, r.header)
		}
	}
	// Lower-case scheme is fine.
	e.do("GET", "/api/v1/orders/"+po.OutTradeNo, req{headers: map[string]string{"Authorization": "bearer " + u.token}}).want(t, 200)

	// An expired session: 401.
	e.clock.Advance(25 * time.Hour)
	e.do("GET", "/api/v1/orders/"+po.OutTradeNo, req{token: u.token}).want(t, 401)

	// A used login code: 401, and a second login is a new session.
	u2, _ := e.sim.CreateUser(simUser())
	code, _ := e.sim.LoginCode(appID, u2.OpenID)
	e.do("POST", "/api/v1/login", req{body: map[string]string{"code": code}}).want(t, 200)
	if c := e.do("POST", "/api/v1/login", req{body: map[string]string{"code": code}}).want(t, 401).errCode(t); c != "unauthorized" {
		t.Fatal(c)
	}
	e.do("POST", "/api/v1/login", req{body: map[string]string{"code": ""}}).want(t, 400)
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	paths := []struct{ method, path string }{
		{"GET", "/admin/api/v1/orders"},
		{"GET", "/admin/api/v1/orders/X1234567"},
		{"POST", "/admin/api/v1/orders/X1234567/refunds"},
		{"POST", "/admin/api/v1/orders/X1234567/sync"},
		{"GET", "/admin/api/v1/anomalies"},
		{"POST", "/admin/api/v1/reconciliations"},
		{"GET", "/admin/api/v1/reconciliations/2026-11-28"},
	}
	for _, p := range paths {
		for name, tok := range map[string]string{
			"none": "", "user": u.token, "prefix": canaryAdminToken[:len(canaryAdminToken)-1],
			"longer": canaryAdminToken + "x", "case": strings.ToLower(canaryAdminToken),
		} {
			r := e.do(p.method, p.path, req{token: tok, body: map[string]any{}})
			if r.status != 401 || r.errCode(t) != "unauthorized" {
				t.Errorf("%s %s with %s token: %d %s", p.method, p.path, name, r.status, r.body)
			}
		}
	}
	e.admin("GET", "/admin/api/v1/orders", nil).want(t, 200)

	// No admin token configured: the admin API is closed to everyone.
	e2 := newEnv(t, func(o *envOptions) { o.http = func(c *httpapi.Config) { c.AdminToken = "" } })
	e2.do("GET", "/admin/api/v1/orders", req{token: ""}).want(t, 401)
	e2.do("GET", "/admin/api/v1/orders", req{token: canaryAdminToken}).want(t, 401)

	// A short admin token is refused at start.
	if _, err := httpapi.New(httpapi.Config{Service: e.svc, AdminToken: "short"}); err == nil {
		t.Fatal("a 5-character admin token was accepted")
	}
	if _, err := httpapi.New(httpapi.Config{}); err == nil {
		t.Fatal("no service was accepted")
	}
}

func TestAdminList(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	var nos []string
	for i := 0; i < 5; i++ {
		po := e.order(u, "")
		nos = append(nos, po.OutTradeNo)
		if i == 2 {
			e.payWith(u, po.PayParams)
		}
		e.clock.Advance(time.Minute)
	}

	var page httpapi.AdminOrderList
	e.admin("GET", "/admin/api/v1/orders?status=PAID", nil).want(t, 200).json(t, &page)
	if len(page.Orders) != 1 || page.Orders[0].OutTradeNo != nos[2] || page.Orders[0].OpenID != u.openID {
		t.Fatalf("PAID: %+v", page)
	}
	e.admin("GET", "/admin/api/v1/orders?status=NOTPAY", nil).want(t, 200).json(t, &page)
	if len(page.Orders) != 4 {
		t.Fatalf("NOTPAY: %d orders", len(page.Orders))
	}

	// Pages of two, newest first, each order once.
	var seen []string
	cursor := ""
	for range 10 {
		e.admin("GET", "/admin/api/v1/orders?limit=2&cursor="+cursor, nil).want(t, 200).json(t, &page)
		if len(page.Orders) > 2 {
			t.Fatalf("page of %d", len(page.Orders))
		}
		for _, o := range page.Orders {
			seen = append(seen, o.OutTradeNo)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if fmt.Sprint(seen) != fmt.Sprint([]string{nos[4], nos[3], nos[2], nos[1], nos[0]}) {
		t.Fatalf("paged: %v, want newest first of %v", seen, nos)
	}

	// since/until: the orders of the 2nd and 3rd minute.
	since := start.Add(time.Minute).Format(time.RFC3339)
	until := start.Add(3 * time.Minute).In(time.UTC).Format(time.RFC3339)
	e.admin("GET", "/admin/api/v1/orders?since="+url.QueryEscape(since)+"&until="+url.QueryEscape(until), nil).want(t, 200).json(t, &page)
	if len(page.Orders) != 2 || page.Orders[0].OutTradeNo != nos[2] || page.Orders[1].OutTradeNo != nos[1] {
		t.Fatalf("since %s until %s: %+v", since, until, page.Orders)
	}

	for _, q := range []string{"status=paid", "status=X", "since=yesterday", "until=2026-11-28", "limit=0", "limit=201", "limit=x"} {
		if c := e.admin("GET", "/admin/api/v1/orders?"+q, nil).want(t, 400).errCode(t); c != "invalid" {
			t.Errorf("%s: %s", q, c)
		}
	}
}

// reconciler stands in for merchant/recon: it stores a report the way
// recon does, so that the GET route can read it back.
type reconciler struct{ store merchant.Store }

func (r reconciler) Reconcile(ctx context.Context, date string) (*merchant.ReconReport, []*merchant.ReconException, error) {
	if date == "2026-11-27" {
		return nil, nil, merchant.Errorf(merchant.EUNAVAILABLE, "the bill for %s is not ready", date)
	}
	rep := &merchant.ReconReport{Date: date, BillRows: 2, Matched: 1, Exceptions: 1, BillTotal: 3000, LocalTotal: 1500, RanAt: start}
	if err := r.store.SaveRecon(ctx, rep); err != nil {
		return nil, nil, err
	}
	ex := &merchant.ReconException{Date: date, Kind: merchant.ReconMissingLocal, OutTradeNo: "WXLONG0001", Detail: "in the bill only", CreatedAt: start}
	if _, err := r.store.AddReconException(ctx, ex); err != nil {
		return nil, nil, err
	}
	return rep, []*merchant.ReconException{ex}, nil
}

func TestReconciliation(t *testing.T) {
	e := newEnv(t)
	if c := e.admin("POST", "/admin/api/v1/reconciliations", map[string]string{"date": "2026-11-28"}).want(t, 501).errCode(t); c != "not_implemented" {
		t.Fatal(c)
	}
	e.admin("GET", "/admin/api/v1/reconciliations/2026-11-28", nil).want(t, 404)
	e.admin("GET", "/admin/api/v1/reconciliations/28-11-2026", nil).want(t, 400)

	e = newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) { c.Reconciler = reconciler{store: c.Service.Store()} }
	})
	var res httpapi.ReconResult
	e.admin("POST", "/admin/api/v1/reconciliations", map[string]string{"date": "2026-11-28"}).want(t, 200).json(t, &res)
	if res.Report.Date != "2026-11-28" || res.Report.BillTotal != 3000 || len(res.Exceptions) != 1 || res.Exceptions[0].Kind != "missing_local" {
		t.Fatalf("reconcile: %+v", res)
	}
	var got httpapi.ReconResult
	e.admin("GET", "/admin/api/v1/reconciliations/2026-11-28", nil).want(t, 200).json(t, &got)
	if got.Report.Matched != 1 || len(got.Exceptions) != 1 || got.Exceptions[0].OutTradeNo != "WXLONG0001" {
		t.Fatalf("stored: %+v", got)
	}
	e.admin("POST", "/admin/api/v1/reconciliations", map[string]string{"date": "2026-11-27"}).want(t, 503)
	for _, body := range []any{map[string]string{"date": "2026/11/28"}, map[string]string{}, map[string]string{"date": "2026-02-30"}} {
		e.admin("POST", "/admin/api/v1/reconciliations", body).want(t, 400)
	}
}

// Bad bodies are answered with the status and message that say what is
// wrong.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, noOrderLimits)
	u := e.login()
	cases := []struct {
		name   string
		q      req
		status int
		code   string
		msg    string
	}{
		{"wrong content type", req{body: `{"items":[{"sku":"TEA","quantity":1}]}`, ctype: "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"form", req{body: "items=TEA", ctype: "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
		{"no body", req{}, 415, "unsupported_media_type", ""},
		{"empty", req{body: ""}, 400, "invalid", "empty"},
		{"syntax", req{body: `{"items":[`}, 400, "invalid", "truncated"},
		{"garbage", req{body: `{"items" 1}`}, 400, "invalid", "not valid JSON"},
		{"unknown field", req{body: `{"items":[{"sku":"TEA","quantity":1}],"total_fee":1}`}, 400, "invalid", `unknown field "total_fee"`},
		{"long unknown field", req{body: `{"` + strings.Repeat("q", 1000) + `":1}`}, 400, "invalid", `unknown field "qqq`},
		{"price in line", req{body: `{"items":[{"sku":"TEA","quantity":1,"price":1}]}`}, 400, "invalid", `"price"`},
		{"two values", req{body: `{"items":[{"sku":"TEA","quantity":1}]}{}`}, 400, "invalid", "single"},
		{"array", req{body: `[1]`}, 400, "invalid", "object"},
		{"float quantity", req{body: `{"items":[{"sku":"TEA","quantity":1.5}]}`}, 400, "invalid", "integer"},
		{"huge quantity", req{body: `{"items":[{"sku":"TEA","quantity":1e30}]}`}, 400, "invalid", "integer"},
		{"string quantity", req{body: `{"items":[{"sku":"TEA","quantity":"1"}]}`}, 400, "invalid", "integer"},
		{"zero quantity", req{body: `{"items":[{"sku":"TEA","quantity":0}]}`}, 400, "invalid", "quantity"},
		{"negative quantity", req{body: `{"items":[{"sku":"TEA","quantity":-1}]}`}, 400, "invalid", "quantity"},
		{"unknown sku", req{body: `{"items":[{"sku":"GOLD","quantity":1}]}`}, 400, "invalid", "sku"},
		{"empty cart", req{body: `{"items":[]}`}, 400, "invalid", "empty"},
		{"trade type", req{body: `{"items":[{"sku":"TEA","quantity":1}],"trade_type":"APP"}`}, 400, "invalid", "trade_type"},
		{"long key", req{body: `{"items":[{"sku":"TEA","quantity":1}]}`, headers: map[string]string{"Idempotency-Key": strings.Repeat("k", 65)}}, 400, "invalid", "idempotency"},
	}
	for _, c := range cases {
		c.q.token = u.token
		r := e.do("POST", "/api/v1/orders", c.q)
		var eb httpapi.ErrorBody
		r.json(t, &eb)
		if r.status != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	if n := len(e.sim.Orders(mchID)); n != 0 {
		t.Fatalf("bad requests made %d orders", n)
	}
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	big := `{"items":[{"sku":"TEA","quantity":1}],"x":"` + strings.Repeat("a", 70<<10) + `"}`
	if c := e.do("POST", "/api/v1/orders", req{token: u.token, body: big}).want(t, 413).errCode(t); c != "too_large" {
		t.Fatal(c)
	}
	e.do("POST", "/api/v1/login", req{body: `{"code":"` + strings.Repeat("a", 70<<10) + `"}`}).want(t, 413)
	e.admin("POST", "/admin/api/v1/orders/X1234567/refunds", `{"reason":"`+strings.Repeat("a", 70<<10)+`"}`).want(t, 413)

	bigXML := "<xml><a>" + strings.Repeat("a", 70<<10) + "</a></xml>"
	for _, p := range []string{"/wxpay/notify/pay", "/wxpay/notify/refund"} {
		r := e.do("POST", p, req{body: bigXML, ctype: "text/xml"}).want(t, 413)
		if !strings.Contains(string(r.body), "FAIL") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/xml") {
			t.Fatalf("%s: %s %v", p, r.body, r.header)
		}
	}
	// A smaller configured limit applies.
	e2 := newEnv(t, func(o *envOptions) { o.http = func(c *httpapi.Config) { c.MaxBodyBytes = 64 } })
	e2.do("POST", "/api/v1/login", req{body: `{"code":"` + strings.Repeat("a", 100) + `"}`}).want(t, 413)
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) { c.LoginPerIP = httpapi.Limit{Rate: 0.001, Burst: 3} }
	})
	for i := 0; i < 3; i++ {
		e.do("POST", "/api/v1/login", req{body: `{"code":"nope"}`}).want(t, 401)
	}
	r := e.do("POST", "/api/v1/login", req{body: `{"code":"nope"}`}).want(t, 429)
	if r.errCode(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("429: %s %v", r.body, r.header)
	}
	// Another client IP is not affected.
	e2 := newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) {
			c.LoginPerIP = httpapi.Limit{Rate: 0.001, Burst: 1}
			c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-IP") }
		}
	})
	e2.do("POST", "/api/v1/login", req{body: `{"code":"nope"}`, headers: map[string]string{"X-Test-IP": "10.0.0.1"}}).want(t, 401)
	e2.do("POST", "/api/v1/login", req{body: `{"code":"nope"}`, headers: map[string]string{"X-Test-IP": "10.0.0.1"}}).want(t, 429)
	e2.do("POST", "/api/v1/login", req{body: `{"code":"nope"}`, headers: map[string]string{"X-Test-IP": "10.0.0.2"}}).want(t, 401)
}

func TestOrderRateLimit(t *testing.T) {
	e := newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) { c.OrdersPerUser = httpapi.Limit{Rate: 0.001, Burst: 2} }
	})
	a, b := e.login(), e.login()
	e.order(a, "")
	e.order(a, "")
	body := `{"items":[{"sku":"TEA","quantity":1}]}`
	e.do("POST", "/api/v1/orders", req{token: a.token, body: body}).want(t, 429)
	e.do("POST", "/api/v1/orders", req{token: b.token, body: body}).want(t, 201)

	e2 := newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) { c.OrdersPerIP = httpapi.Limit{Rate: 0.001, Burst: 1} }
	})
	c, d := e2.login(), e2.login()
	e2.order(c, "")
	e2.do("POST", "/api/v1/orders", req{token: d.token, body: body}).want(t, 429)
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nope", 404, ""},
		{"GET", "/nope", 404, ""},
		{"GET", "/admin/api/v1/nope", 404, ""},
		{"GET", "/wxpay/notify/nope", 404, ""},
		{"GET", "/api/v1/login", 405, "POST"},
		{"DELETE", "/api/v1/orders/X1234567", 405, "GET, HEAD"},
		{"GET", "/wxpay/notify/pay", 405, "POST"},
		{"PUT", "/healthz", 405, "GET, HEAD"},
	} {
		r := e.do(c.method, c.path, req{})
		if r.status != c.status || r.header.Get("Allow") != c.allow || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d allow %q %s", c.method, c.path, r.status, r.header.Get("Allow"), r.body)
			continue
		}
		want := map[int]string{404: "not_found", 405: "method_not_allowed"}[c.status]
		if code := r.errCode(t); code != want {
			t.Errorf("%s %s: code %s", c.method, c.path, code)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no request id", c.method, c.path)
		}
	}
}

func TestMount(t *testing.T) {
	e := newEnv(t)
	if err := e.server.Mount("/sim/", e.sim); err != nil {
		t.Fatal(err)
	}
	// "GET /" would clash with "/sim/" in net/http's rules: "/" it is.
	if err := e.server.Mount("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "page "+r.URL.Path)
	})); err != nil {
		t.Fatal(err)
	}
	if err := e.server.Mount("/sim/", e.sim); err == nil {
		t.Fatal("mounting /sim/ twice was accepted")
	}
	if err := e.server.Mount("/api/", e.sim); err == nil {
		t.Fatal("mounting over /api/ was accepted")
	}
	if err := e.server.Mount("BAD PATTERN x", e.sim); err == nil {
		t.Fatal("a bad pattern was accepted")
	}

	// The simulator's control API through the service's listener.
	r := e.do("POST", "/sim/v1/users", req{body: `{"balance":100}`}).want(t, 201)
	if !strings.Contains(string(r.body), `"openid"`) {
		t.Fatalf("sim: %s", r.body)
	}
	if r := e.do("GET", "/admin/", req{}).want(t, 200); string(r.body) != "page /admin/" {
		t.Fatalf("page: %s", r.body)
	}
	// The API keeps its JSON 404 and 405 under a catch-all page.
	e.do("GET", "/api/v1/nope", req{}).want(t, 404).errCode(t)
	e.do("GET", "/api/v1/login", req{}).want(t, 405).errCode(t)
	e.do("GET", "/admin/api/v1/nope", req{token: canaryAdminToken}).want(t, 404).errCode(t)
}

// secretConfig is what a careless panic might carry.
type secretConfig struct {
	APIKey string
}

func TestPanicRecovery(t *testing.T) {
	e := newEnv(t)
	_ = e.server.Mount("/boom", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(secretConfig{APIKey: canaryAPIKey})
	}))
	_ = e.server.Mount("/index", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a []int
		_ = a[len(r.URL.Path)]
	}))
	for _, p := range []string{"/boom", "/index"} {
		r := e.do("GET", p, req{}).want(t, 500)
		if r.errCode(t) != "internal" || strings.Contains(string(r.body), "CANARY") || strings.Contains(string(r.body), "index") {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
	logs := e.logs.String()
	if strings.Contains(logs, canaryAPIKey) {
		t.Fatal("the panic value reached the log")
	}
	if !strings.Contains(logs, "index out of range") || !strings.Contains(logs, "httpapi_test.secretConfig") {
		t.Fatalf("the panics were not logged usefully:\n%s", logs)
	}
	e.do("GET", "/healthz", req{}).want(t, 200)
}

func TestProbes(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", req{}).want(t, 200); string(r.body) != "ok\n" {
		t.Fatal(string(r.body))
	}
	e.do("GET", "/readyz", req{}).want(t, 200)
	e.store.Close()
	if c := e.do("GET", "/readyz", req{}).want(t, 503).errCode(t); c != "unavailable" {
		t.Fatal(c)
	}
	e.do("GET", "/healthz", req{}).want(t, 200)
	// A store failure elsewhere is a generic 500.
	e.do("GET", "/api/v1/products", req{}).want(t, 200)
	u := e.do("GET", "/admin/api/v1/orders", req{token: canaryAdminToken}).want(t, 500)
	if u.errCode(t) != "internal" || !strings.Contains(string(u.body), `"internal error"`) {
		t.Fatalf("%s", u.body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")
	e.payWith(u, po.PayParams)
	e.getOrder(u, po.OutTradeNo)
	e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", map[string]any{"refund_fee": 100}).want(t, 200)
	e.do("POST", "/wxpay/notify/pay", req{body: "<xml><a>1</a></xml>", ctype: "text/xml"})
	e.metrics.JobDone("close_expired", "ok")

	body := string(e.do("GET", "/metrics", req{}).want(t, 200).body)
	for _, want := range []string{
		`wxpay_orders_created_total{trade_type="JSAPI"} 1`,
		`wxpay_orders_paid_total{source="notify"} 1`,
		`wxpay_notify_total{kind="pay",reason="applied",result="ok"} 1`,
		`wxpay_notify_total{kind="pay",reason=`,
		`result="rejected"`,
		`wxpay_refunds_total{status="PROCESSING"} 1`,
		`wxpay_jobs_total{kind="close_expired",result="ok"} 1`,
		`wxpay_wechat_call_duration_seconds_count{api="unifiedorder",outcome="ok"} 1`,
		`wxpay_wechat_call_duration_seconds_count{api="jscode2session",outcome="ok"} 1`,
		`wxpay_http_requests_total{route="POST /api/v1/orders",status="201"} 1`,
		`wxpay_http_requests_total{route="POST /wxpay/notify/pay",status="200"} 1`,
		`wxpay_http_request_duration_seconds_count{route="GET /api/v1/orders/{out_trade_no}"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// Canary secrets never reach a log line or a response (I9, G1, G2).
func TestNoSecretsLeak(t *testing.T) {
	e := newEnv(t)
	var responses bytes.Buffer
	u := e.login()
	po := e.order(u, "k1")
	e.payWith(u, po.PayParams)
	for _, r := range []resp{
		e.do("GET", "/api/v1/orders/"+po.OutTradeNo, req{token: u.token}),
		e.do("POST", "/api/v1/orders/"+po.OutTradeNo+"/pay-params", req{token: u.token}),
		e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil),
		e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", map[string]any{"refund_fee": 100}),
		e.admin("GET", "/admin/api/v1/orders", nil),
		e.do("GET", "/admin/api/v1/orders", req{token: u.token}),
		e.do("GET", "/api/v1/orders/x", req{token: canaryAdminToken}),
		e.do("POST", "/wxpay/notify/pay", req{body: "<xml></xml>", ctype: "text/xml"}),
		e.do("GET", "/metrics", req{}),
	} {
		responses.Write(r.body)
		fmt.Fprint(&responses, r.header)
	}
	e.clock.Advance(time.Minute)
	e.sim.Flush()

	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"route":"POST /api/v1/orders"`) {
		t.Fatalf("no request log:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"API key": canaryAPIKey, "AppSecret": canaryAppSecret, "admin token": canaryAdminToken,
		"session token": u.token, "session_key": canarySessionKey, "Authorization": "Bearer ",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s is in the logs", name)
		}
		if name != "Authorization" && strings.Contains(responses.String(), secret) {
			t.Errorf("the %s is in a response", name)
		}
	}
	if t.Failed() {
		t.Log(logs)
	}
}

// The answer to a duplicate, a replay or a race is the same order and one
// WeChat order (B2), through HTTP.
func TestConcurrentDoubleTap(t *testing.T) {
	e := newEnv(t, noOrderLimits)
	u := e.login()
	const n = 8
	results := make(chan resp, n)
	for range n {
		go func() {
			results <- e.do("POST", "/api/v1/orders", req{token: u.token, headers: map[string]string{"Idempotency-Key": "race"},
				body: `{"items":[{"sku":"TEA","quantity":1}]}`})
		}()
	}
	nos := map[string]bool{}
	for range n {
		r := <-results
		switch r.status {
		case 200, 201:
			var po httpapi.PayableOrder
			r.json(t, &po)
			nos[po.OutTradeNo] = true
		case 409, 503:
			// A concurrent request with the same key may be told so.
		default:
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}
	if len(nos) != 1 || len(e.sim.Orders(mchID)) != 1 {
		t.Fatalf("orders %v, simulator %d", nos, len(e.sim.Orders(mchID)))
	}
}

func TestNewHTTPServer(t *testing.T) {
	s := httpapi.NewHTTPServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("%+v", s)
	}
}
