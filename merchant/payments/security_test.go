package payments_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/invariant"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestG1G2Canaries: a whole run through the HTTP API — login, orders,
// pay parameters, payment, reads, a refund, the admin API, a forged
// notify signed with the AppSecret (the classic mistake, which the SDK
// diagnoses; over v3, WeChat's notify with its resource encrypted with the
// v2 API key instead of the APIv3 key), a replayed login code, a
// reconciliation — with canary secrets: the API key, the AppSecret, the
// admin token and the session_key values the simulator's jscode2session
// hands out (over v3 also the APIv3 key and the merchant's private key,
// harness.canaries). None may appear in the merchant's logs (debug
// level), in any response body, in the replies WeChat logged, or in a dump
// of the database (I9). The checker's own I9 is shown to fire on a planted
// leak.
func TestG1G2Canaries(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		u, err := h.sim.CreateUser(wxsim.NewUser{AppID: appID})
		if err != nil {
			t.Fatal(err)
		}
		code, err := h.sim.LoginCode(appID, u.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		status, body := h.do("POST", "/api/v1/login", "", map[string]string{"code": code})
		var lr httpapi.LoginResponse
		if status != http.StatusOK || json.Unmarshal(body, &lr) != nil {
			t.Fatalf("login: %d %s", status, body)
		}
		if strings.Contains(string(body), canarySessionKey) {
			t.Fatalf("the login answer carries the session_key: %s", body)
		}
		// The code is single use.
		if status, body := h.do("POST", "/api/v1/login", "", map[string]string{"code": code}); status != http.StatusUnauthorized {
			t.Fatalf("a replayed code: %d %s", status, body)
		}
		if status, _ := h.do("GET", "/api/v1/orders/WX1", "forged-token", nil); status != http.StatusUnauthorized {
			t.Fatalf("a forged token: %d", status)
		}
		_, token2 := h.httpLogin()
		if keys := h.ids.sessionKeys(); len(keys) < 2 {
			t.Fatalf("the simulator handed out %d session keys: the canary is not live", len(keys))
		}

		status, body = h.do("POST", "/api/v1/orders", lr.Token, map[string]any{
			"items": []map[string]any{{"sku": "COFFEE", "quantity": 2}}, "trade_type": "JSAPI"})
		var po httpapi.PayableOrder
		if status != http.StatusCreated || json.Unmarshal(body, &po) != nil || po.PayParams == nil {
			t.Fatalf("order: %d %s", status, body)
		}
		p := po.PayParams
		if r := h.sim.RequestPayment(wxsim.PaymentRequest{OpenID: u.OpenID, AppID: p.AppID, TimeStamp: p.TimeStamp,
			NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}); !r.OK() {
			t.Fatal(r.ErrMsg)
		}
		h.sim.Flush()
		h.do("GET", "/api/v1/orders/"+po.OutTradeNo, lr.Token, nil)
		h.do("GET", "/api/v1/orders/"+po.OutTradeNo, token2, nil) // another user's: 404
		h.do("POST", "/api/v1/orders", lr.Token, map[string]any{"items": []map[string]any{{"sku": "NOPE", "quantity": 1}}})
		if status, body := h.do("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", canaryAdminToken,
			map[string]any{"refund_fee": 1000, "reason": "broken cup"}); status/100 != 2 {
			t.Fatalf("refund: %d %s", status, body)
		}
		h.do("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", "wrong-admin-token-000000000", map[string]any{"refund_fee": 1})
		h.do("GET", "/admin/api/v1/orders", canaryAdminToken, nil)
		h.do("GET", "/admin/api/v1/anomalies", canaryAdminToken, nil)

		// A notify made with the wrong secret: it is refused, and the SDK's
		// diagnosis is logged, never the secrets it tried.
		sess := h.user()
		res := h.create(sess, oneCoffee)
		h.front.holdNotifies("pay", true)
		h.payAtSim(sess, res)
		h.front.holdNotifies("pay", false)
		switch api {
		case apiV2: // signed with the AppSecret instead of the API key
			forged := encode(t, sign(t, fields(t, h.front.payBody(t, res.Order.OutTradeNo)), wxpay.SignTypeMD5, canaryAppSecret))
			r, err := http.Post(h.url+"/wxpay/notify/pay", "text/xml", bytes.NewReader(forged))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				t.Fatal("a notify signed with the AppSecret was acknowledged")
			}
		case apiV3:
			// A v3 notify is signed with WeChat's platform key, which no
			// merchant secret can stand in for; the same mistake is made
			// with the resource: WeChat's genuine signature over a
			// resource encrypted with the v2 API key (also 32 bytes)
			// instead of the APIv3 key.
			a, err := h.sim.SendV3Notify(h.ctx, mchID, res.Order.OutTradeNo, "", func(m *wxsim.V3NotifyMessage) {
				plain, err := json.Marshal(m.Resource)
				if err != nil {
					t.Fatal(err)
				}
				if m.Ciphertext, err = wxcrypto.EncryptAEAD(canaryAPIKey, m.Nonce, m.AssociatedData, plain); err != nil {
					t.Fatal(err)
				}
			})
			if err != nil || a.Acked || a.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("a notify encrypted with the API key: %+v %v", a, err)
			}
			if n := h.metrics.get("notify/pay/rejected/decrypt"); n != 1 || h.logLines(`pay notify refused"`, "reason", "decrypt") != 1 {
				t.Fatalf("notify_rejected{decrypt} = %d, want 1, with its log line", n)
			}
		}

		h.advance(11 * time.Second)
		// A session expires (24 h): its token is refused.
		h.advance(25 * time.Hour)
		if status, _ := h.do("GET", "/api/v1/orders/"+po.OutTradeNo, lr.Token, nil); status != http.StatusUnauthorized {
			t.Fatalf("an expired token: %d", status)
		}
		rep := h.finish()
		// The SDK's debug line of the order call (its api attribute).
		call := map[apiKind]string{apiV2: `"api":"unifiedorder"`, apiV3: `"api":"prepay-jsapi"`}[api]
		if !strings.Contains(h.logs.String(), call) {
			t.Fatal("the captured logs are empty: the grep proves nothing")
		}
		for _, res := range rep.Results {
			if res.ID == "I9" && res.Checked < 4*len(h.canaries()) {
				t.Fatalf("I9 checked %d texts × canaries", res.Checked)
			}
		}
		// The checker sees a planted leak.
		leak, err := invariant.Check(h.ctx, invariant.Input{Store: h.base, Ledger: h.sim.Ledger(), MchID: mchID,
			Now: h.clock.Now(), Grace: 2 * time.Minute, Canaries: h.canaries(),
			Texts: append(h.texts(), `{"level":"DEBUG","session_key":"`+h.ids.sessionKeys()[0]+`"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if leak.OK() || strings.Contains(leak.String(), canarySessionKey) {
			t.Fatalf("a planted leak:\n%s", leak)
		}
	})
}

// post sends raw bytes to a path of the merchant's server.
func (h *harness) post(path string, body []byte) (int, []byte) {
	h.t.Helper()
	r, err := http.Post(h.url+path, "text/xml", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// TestG4Limits: bodies are capped (413) and logins and orders are rate
// limited per IP and per user (429), with the service's default limits.
func TestG4Limits(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk, withDefaultLimits())
		sess := h.user()
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo

		huge := append([]byte("<xml><attach><![CDATA["), bytes.Repeat([]byte("A"), 100<<10)...)
		huge = append(huge, "]]></attach></xml>"...)
		if status, body := h.post("/wxpay/notify/pay", huge); status != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("FAIL")) {
			t.Fatalf("a 100 KiB notify: %d %s", status, body)
		}
		if status, _ := h.post("/wxpay/notify/refund", huge); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("a 100 KiB refund notify: %d", status)
		}
		_, token := h.httpLogin()
		if status, body := h.do("POST", "/api/v1/orders", token, map[string]any{"items": []map[string]any{{"sku": string(bytes.Repeat([]byte("X"), 70<<10)), "quantity": 1}}}); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("a 70 KiB order: %d %.100s", status, body)
		}
		h.wantUntouched(no)

		// Logins: 10 at once from one IP, then 429 (the clock stands still).
		limited := 0
		for range 12 {
			if status, _ := h.do("POST", "/api/v1/login", "", map[string]string{"code": "bogus"}); status == http.StatusTooManyRequests {
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("12 logins from one IP were not limited")
		}
		// Orders: 5 at once per user, then 429; another user still orders.
		_, tokenB := h.httpLogin2(t)
		limited = 0
		for range 7 {
			status, _ := h.do("POST", "/api/v1/orders", token, map[string]any{"items": []map[string]any{{"sku": "TEA", "quantity": 1}}})
			if status == http.StatusTooManyRequests {
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("7 orders of one user were not limited")
		}
		if status, body := h.do("POST", "/api/v1/orders", tokenB, map[string]any{"items": []map[string]any{{"sku": "TEA", "quantity": 1}}}); status != http.StatusCreated {
			t.Fatalf("another user: %d %s", status, body)
		}
		h.finish()
	})
}

// httpLogin2 logs a user in without going through the login rate limit
// (the limit is per IP and this test exhausted it on purpose): the
// session is made by the service directly.
func (h *harness) httpLogin2(t *testing.T) (string, string) {
	t.Helper()
	u, err := h.sim.CreateUser(wxsim.NewUser{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	code, err := h.sim.LoginCode(appID, u.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	token, openID, err := h.svc.Login(h.ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	return openID, token
}

// TestG5XMLSurface: the notify parser refuses every XML trick of
// reliability.md X1–X10 — DOCTYPE and entities (no outbound connection is
// ever made), duplicate elements, nested elements, trailing content, deep
// nesting, processing instructions, comments, non-UTF-8 — with FAIL and no
// state change; the genuine notify then pays.
func TestG5XMLSurface(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk)
		var dials atomic.Int64
		ln := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			dials.Add(1)
			w.Write([]byte(`<!ENTITY x "1">`))
		}))
		defer ln.Close()
		sess := h.user()
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo
		h.front.holdNotifies("pay", true)
		h.payAtSim(sess, res)
		h.front.holdNotifies("pay", false)
		genuine := h.front.payBody(t, no)
		inner := bytes.TrimSuffix(bytes.TrimPrefix(genuine, []byte("<xml>")), []byte("</xml>"))
		wrap := func(prefix, mid, suffix string) []byte {
			return []byte(prefix + "<xml>" + mid + string(inner) + "</xml>" + suffix)
		}
		deep := strings.Repeat("<a>", 100_000) + strings.Repeat("</a>", 100_000)
		forms := map[string][]byte{
			"X1 external entity":     wrap(`<!DOCTYPE xml [<!ENTITY xxe SYSTEM "`+ln.URL+`/passwd">]>`, "<attach>&xxe;</attach>", ""),
			"X2 billion laughs":      wrap(`<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>`, "<device_info>&c;</device_info>", ""),
			"X3 external DTD":        wrap(`<!DOCTYPE xml SYSTEM "`+ln.URL+`/dtd">`, "", ""),
			"X3 parameter entity":    wrap(`<!DOCTYPE xml [<!ENTITY % p SYSTEM "`+ln.URL+`/p"> %p;]>`, "", ""),
			"X4 duplicate total":     wrap("", "<total_fee>1</total_fee>", ""),
			"X5 trailing document":   wrap("", "", "<xml><total_fee>1</total_fee></xml>"),
			"X5 trailing text":       wrap("", "", "garbage"),
			"X6 nested element":      wrap("", "<detail><a>1</a></detail>", ""),
			"X6 deep nesting":        wrap("", "<device_info>"+deep+"</device_info>", ""),
			"X9 not UTF-8":           wrap("", "<device_info>\xff\xfe</device_info>", ""),
			"X9 GBK declaration":     wrap(`<?xml version="1.0" encoding="GBK"?>`, "", ""),
			"processing instruction": wrap("", "<?php echo 1; ?>", ""),
			"comment":                wrap("", "<!-- hello -->", ""),
			"attribute":              []byte(strings.Replace(string(genuine), "<xml>", `<xml a="1">`, 1)),
		}
		for name, body := range forms {
			err := h.svc.HandlePayNotify(h.ctx, nil, body)
			if !errors.Is(err, merchant.ErrBadNotify) {
				t.Fatalf("%s: %v", name, err)
			}
			if status, reply := h.post("/wxpay/notify/pay", body); status == http.StatusOK || !bytes.Contains(reply, []byte("FAIL")) {
				t.Fatalf("%s over HTTP: %d %s", name, status, reply)
			}
			h.wantUntouched(no)
		}
		if n := dials.Load(); n != 0 {
			t.Fatalf("the parser made %d outbound connections", n)
		}
		if err := h.svc.HandlePayNotify(h.ctx, nil, genuine); err != nil {
			t.Fatal(err)
		}
		h.wantOnePayment(no)
		h.finish()
	})
}
