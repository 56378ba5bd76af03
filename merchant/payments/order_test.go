package payments_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxsim"
)

// do sends a request to the merchant's HTTP server (JSON body, Bearer
// token) and returns the status and body.
func (h *harness) do(method, path, token string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(h.ctx, method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// httpLogin logs a new WeChat user in through POST /api/v1/login and
// returns its openid and token.
func (h *harness) httpLogin() (openID, token string) {
	h.t.Helper()
	u, err := h.sim.CreateUser(wxsim.NewUser{AppID: appID, Balance: 1 << 40})
	if err != nil {
		h.t.Fatal(err)
	}
	code, err := h.sim.LoginCode(appID, u.OpenID)
	if err != nil {
		h.t.Fatal(err)
	}
	status, body := h.do("POST", "/api/v1/login", "", map[string]string{"code": code})
	var lr httpapi.LoginResponse
	if status != http.StatusOK || json.Unmarshal(body, &lr) != nil || lr.OpenID != u.OpenID {
		h.t.Fatalf("login: %d %s", status, body)
	}
	return u.OpenID, lr.Token
}

// simOrders counts the simulator's orders of the merchant.
func (h *harness) simOrders() int { return len(h.sim.Orders(mchID)) }

// TestB1PriceFromCatalog: the amount is computed on the server, in int64
// fen, from the catalog: a rapid property over random carts checks
// total_fee = Σ price × quantity here and in the unifiedorder (v3: the
// prepay's amount.total) the simulator received; carts outside the limits
// are refused before WeChat hears of them.
func TestB1PriceFromCatalog(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		skus := []string{"COFFEE", "TEA", "CAKE", "GOLD"}
		// 60 carts over v2, 20 over v3, where each order costs three RSA
		// signatures (the prepay, WeChat's answer, the pay parameters).
		budget := map[apiKind]int{apiV2: 60, apiV3: 20}[api]
		checks := 0
		rapid.Check(t, func(rt *rapid.T) {
			checks++
			if checks > rapidBudget(budget) {
				return
			}
			n := rapid.IntRange(1, 6).Draw(rt, "lines")
			var cart []merchant.CartLine
			var want int64
			for i := range n {
				sku := rapid.SampledFrom(skus).Draw(rt, "sku")
				q := rapid.Int64Range(1, merchant.MaxQuantity).Draw(rt, "quantity")
				cart = append(cart, merchant.CartLine{SKU: sku, Quantity: q})
				want += catalog[sku].Price * q
				_ = i
			}
			before := h.simOrders()
			res, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: cart})
			if want > merchant.MaxOrderTotal {
				if errCode(err) != merchant.EINVALID || h.simOrders() != before {
					rt.Fatalf("a cart of %d fen: %v", want, err)
				}
				return
			}
			if err != nil {
				rt.Fatalf("cart %+v: %v", cart, err)
			}
			if res.Order.TotalFee != want {
				rt.Fatalf("total_fee %d, want %d", res.Order.TotalFee, want)
			}
			if s := h.simOrder(res.Order.OutTradeNo); s.TotalFee != want {
				rt.Fatalf("unifiedorder sent total_fee %d, want %d", s.TotalFee, want)
			}
		})
		bad := map[string][]merchant.CartLine{
			"quantity 0":         {{SKU: "COFFEE", Quantity: 0}},
			"negative quantity":  {{SKU: "COFFEE", Quantity: -1}},
			"quantity above 999": {{SKU: "COFFEE", Quantity: merchant.MaxQuantity + 1}},
			"huge quantity":      {{SKU: "TEA", Quantity: math.MaxInt64}},
			"overflowing cart":   {{SKU: "GOLD", Quantity: 999}, {SKU: "GOLD", Quantity: 999}},
			"unknown sku":        {{SKU: "FREE", Quantity: 1}},
			"empty cart":         {},
			"too many lines":     make([]merchant.CartLine, merchant.MaxLines+1),
		}
		for i := range bad["too many lines"] {
			bad["too many lines"][i] = merchant.CartLine{SKU: "TEA", Quantity: 1}
		}
		before := h.simOrders()
		for name, cart := range bad {
			_, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: cart})
			if errCode(err) != merchant.EINVALID {
				t.Fatalf("%s: %v, want invalid", name, err)
			}
		}
		if h.simOrders() != before {
			t.Fatal("a refused cart reached WeChat")
		}
		// A client-sent price is not even a field: the JSON API refuses it.
		_, token := h.httpLogin()
		status, body := h.do("POST", "/api/v1/orders", token, map[string]any{
			"items": []map[string]any{{"sku": "COFFEE", "quantity": 1, "price": 1}}, "total_fee": 1})
		if status != http.StatusBadRequest {
			t.Fatalf("a client price: %d %s", status, body)
		}
		h.finish()
	})
}

// TestB2CreateIdempotent: creating an order is idempotent, and an unknown
// unifiedorder outcome is retried with identical parameters: the same
// out_trade_no, exactly one WeChat order.
func TestB2CreateIdempotent(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		for _, kind := range []wxsim.FaultKind{wxsim.FaultDropAfterCommit, wxsim.FaultSystemError,
			wxsim.FaultSystemErrorAfterCommit, wxsim.FaultHTTP500, wxsim.FaultDropBeforeCommit} {
			h.inject(wxsim.Fault{API: "unifiedorder", Kind: kind})
			before := h.simOrders()
			res := h.create(sess, oneCoffee)
			if res.Order.PrepayState != merchant.PrepayOK || res.PayParams == nil {
				t.Fatalf("%s: %+v", kind, res.Order)
			}
			if got := h.simOrders() - before; got != 1 {
				t.Fatalf("%s: %d WeChat orders for one order", kind, got)
			}
			h.simOrder(res.Order.OutTradeNo)
		}

		// Every attempt's outcome unknown: the client is told to retry, and
		// its retry with the same idempotency key finishes the same order.
		h.inject(wxsim.Fault{API: "unifiedorder", Kind: wxsim.FaultDropAfterCommit, Count: 3})
		before := h.simOrders()
		_, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee, IdempotencyKey: "tap-1"})
		wantCode(t, err, merchant.EUNAVAILABLE)
		res, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee, IdempotencyKey: "tap-1"})
		if err != nil || res.Created || res.Order.PrepayState != merchant.PrepayOK {
			t.Fatalf("retry: %+v %v", res, err)
		}
		if got := h.simOrders() - before; got != 1 {
			t.Fatalf("%d WeChat orders", got)
		}
		again, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee, IdempotencyKey: "tap-1"})
		if err != nil || again.Order.OutTradeNo != res.Order.OutTradeNo || again.Created {
			t.Fatalf("double tap: %+v %v", again, err)
		}
		_, err = h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: "TEA", Quantity: 1}}, IdempotencyKey: "tap-1"})
		wantCode(t, err, merchant.ECONFLICT)

		// Ten taps at once: one order, one WeChat order.
		before = h.simOrders()
		nos := make([]string, 10)
		errs := parallel(10, func(i int) error {
			r, err := h.svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee, IdempotencyKey: "tap-2"})
			if err == nil {
				nos[i] = r.Order.OutTradeNo
			}
			return err
		})
		for i, err := range errs {
			if err != nil || nos[i] != nos[0] {
				t.Fatalf("tap %d: %q %v", i, nos[i], err)
			}
		}
		if got := h.simOrders() - before; got != 1 {
			t.Fatalf("%d WeChat orders for ten taps", got)
		}
		h.finish()
	})
}

// TestB3PayerFromSession: an openid in the request body is ignored; the
// payer WeChat is told of is the session's user.
func TestB3PayerFromSession(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		alice, token := h.httpLogin()
		mallory, _ := h.httpLogin()
		status, body := h.do("POST", "/api/v1/orders", token, map[string]any{
			"items": []map[string]any{{"sku": "COFFEE", "quantity": 1}}, "trade_type": "JSAPI", "openid": mallory})
		var po httpapi.PayableOrder
		if status != http.StatusCreated || json.Unmarshal(body, &po) != nil {
			t.Fatalf("%d %s", status, body)
		}
		if s := h.simOrder(po.OutTradeNo); s.OpenID != alice {
			t.Fatalf("unifiedorder named %s, want the session's %s", s.OpenID, alice)
		}
		if o := h.order(po.OutTradeNo); o.OpenID != alice {
			t.Fatalf("order of %s", o.OpenID)
		}
		h.finish()
	})
}

// TestC1NotifiesLost: WeChat never delivers a notify; the settle job
// queries every pending order and marks the paid ones PAID.
func TestC1NotifiesLost(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		h.sim.NotifyDrop(1 << 20)
		sess := h.user()
		var paid, unpaid []string
		for i := range 6 {
			res := h.create(sess, oneCoffee)
			if i%3 == 2 {
				unpaid = append(unpaid, res.Order.OutTradeNo)
				continue
			}
			h.payAtSim(sess, res)
			paid = append(paid, res.Order.OutTradeNo)
		}
		for _, no := range paid {
			h.wantUntouched(no)
		}
		h.advance(61 * time.Second) // SettleAfter
		res := h.run(river.KindSettle)
		if res.Counts["paid"] != len(paid) || res.Counts["notpay"] != len(unpaid) {
			t.Fatalf("settle: %s", res)
		}
		for _, no := range paid {
			h.wantOnePayment(no)
		}
		if st := h.sim.NotifyStats(); st.Dropped != len(paid) || st.Acknowledged != 0 {
			t.Fatalf("notify stats %+v", st)
		}
		h.finish()
	})
}

// TestC2CloseAfterQuery: an order is closed only after a query, and CLOSED
// only once WeChat confirmed the close.
func TestC2CloseAfterQuery(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		closeWith := func(kind wxsim.FaultKind) (*merchant.Order, error, string) {
			res := h.create(sess, oneCoffee)
			if kind != "" {
				h.inject(wxsim.Fault{API: "closeorder", Kind: kind})
			}
			o, err := h.svc.Close(h.ctx, res.Order.OutTradeNo)
			h.sim.Flush()
			return o, err, res.Order.OutTradeNo
		}
		// The user pays between our query and our closeorder: ORDERPAID,
		// a query, PAID.
		o, err, no := closeWith(wxsim.FaultUserPaysFirst)
		if err != nil || o.Status != merchant.OrderPaid {
			t.Fatalf("user pays first: %+v %v", o, err)
		}
		h.wantOnePayment(no)

		// Paid before the close: the query first finds it.
		res := h.create(sess, oneCoffee)
		h.front.holdNotifies("pay", true)
		h.payAtSim(sess, res)
		h.front.holdNotifies("pay", false)
		if o, err := h.svc.Close(h.ctx, res.Order.OutTradeNo); err != nil || o.Status != merchant.OrderPaid {
			t.Fatalf("paid before the close: %+v %v", o, err)
		}

		// SYSTEMERROR (not executed) and the outcome-unknown kinds leave
		// the order NOTPAY; the next close (or the settle job) finishes.
		for _, kind := range []wxsim.FaultKind{wxsim.FaultSystemError, wxsim.FaultHTTP500, wxsim.FaultDropBeforeCommit,
			wxsim.FaultSystemErrorAfterCommit, wxsim.FaultDropAfterCommit} {
			_, err, no := closeWith(kind)
			wantCode(t, err, merchant.EUNAVAILABLE)
			h.wantUntouched(no)
			o, err := h.svc.Close(h.ctx, no)
			if err != nil || o.Status != merchant.OrderClosed {
				t.Fatalf("%s, closed again: %+v %v", kind, o, err)
			}
			if s := h.simOrder(no); s.State != wxpay.TradeStateClosed {
				t.Fatalf("%s: closed here, %s at WeChat", kind, s.State)
			}
		}

		// Closed at WeChat by someone else (ORDERCLOSED): the query says
		// CLOSED and the order follows.
		res = h.create(sess, oneCoffee)
		h.closeAtWeChat(res.Order.OutTradeNo)
		if o, err := h.svc.Close(h.ctx, res.Order.OutTradeNo); err != nil || o.Status != merchant.OrderClosed {
			t.Fatalf("closed elsewhere: %+v %v", o, err)
		}
		h.finish()
	})
}

// TestC2CloseTooEarly: WeChat refuses to close an order younger than 5
// minutes (the simulator's strict rule on); the order stays NOTPAY and is
// closed later.
func TestC2CloseTooEarly(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api), withSim(func(c *wxsim.Config) { c.CloseMinAge = 5 * time.Minute }))
		sess := h.user()
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo
		h.advance(time.Minute)
		_, err := h.svc.CloseOrder(h.ctx, sess, no)
		wantCode(t, err, merchant.ECONFLICT)
		h.wantUntouched(no)
		h.advance(5 * time.Minute)
		if o, err := h.svc.CloseOrder(h.ctx, sess, no); err != nil || o.Status != merchant.OrderClosed {
			t.Fatalf("%+v %v", o, err)
		}
		h.finish()
	})
}

// TestC3UnknownOutcomes: the connection drops after WeChat executed a
// query, close, refund or refund query; nothing is assumed, and later runs
// settle the state. A read fails on every try of the SDK's HTTP client
// (failingRead: over v3, net/http tries a dropped GET twice).
func TestC3UnknownOutcomes(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()

		// orderquery: the read fails, nothing changes; the next read pays.
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo
		h.sim.NotifyDrop(1)
		h.payAtSim(sess, res)
		for _, kind := range []wxsim.FaultKind{wxsim.FaultDropAfterCommit, wxsim.FaultSystemError, wxsim.FaultHTTP500} {
			h.failingRead("orderquery", kind, func() {
				if _, err := h.svc.Sync(h.ctx, no); err == nil {
					t.Fatalf("%s: a failed query reported no error", kind)
				}
			})
			h.wantUntouched(no)
		}
		if o, err := h.svc.Sync(h.ctx, no); err != nil || o.Status != merchant.OrderPaid {
			t.Fatalf("%+v %v", o, err)
		}

		// closeorder: closed at WeChat, the answer lost; the settle job's
		// query closes it here after expiry.
		res = h.create(sess, oneCoffee)
		h.inject(wxsim.Fault{API: "closeorder", Kind: wxsim.FaultDropAfterCommit})
		_, err := h.svc.Close(h.ctx, res.Order.OutTradeNo)
		wantCode(t, err, merchant.EUNAVAILABLE)
		h.wantUntouched(res.Order.OutTradeNo)
		h.advance(32 * time.Minute)
		h.run(river.KindSettle)
		if o := h.order(res.Order.OutTradeNo); o.Status != merchant.OrderClosed {
			t.Fatalf("after the job: %s", o.Status)
		}

		// refund: executed, the answer lost: RESERVED, then the refund job
		// finds it at WeChat (same number, executed once).
		paid := h.paidOrder(sess, oneCoffee)
		h.inject(wxsim.Fault{API: "refund", Kind: wxsim.FaultDropAfterCommit})
		rf, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: paid.OutTradeNo, RefundFee: 700})
		if err != nil || rf.Status != merchant.RefundReserved {
			t.Fatalf("refund: %+v %v", rf, err)
		}

		// refundquery: the read fails, nothing changes.
		h.failingRead("refundquery", wxsim.FaultDropAfterCommit, func() {
			if _, err := h.svc.SyncRefund(h.ctx, rf.OutRefundNo); err == nil {
				t.Fatal("a failed refund query reported no error")
			}
		})
		if r, _ := h.base.Refund(h.ctx, rf.OutRefundNo); r.Status != merchant.RefundReserved {
			t.Fatalf("refund %s", r.Status)
		}
		h.advance(31 * time.Second)
		h.run(river.KindRefunds)
		r, _ := h.base.Refund(h.ctx, rf.OutRefundNo)
		if r.Status != merchant.RefundSuccess { // accepted 31 s ago; WeChat finished it after 10 s
			t.Fatalf("after the job: refund %s", r.Status)
		}
		wantExecutions(t, h, rf.OutRefundNo, 1)
		h.finish()
	})
}

// wantExecutions checks the simulator executed a refund n times.
func wantExecutions(t *testing.T, h *harness, outRefundNo string, n int) {
	t.Helper()
	for _, r := range h.sim.Refunds(mchID) {
		if r.OutRefundNo == outRefundNo {
			if r.Executions != n {
				t.Fatalf("refund %s executed %d times, want %d", outRefundNo, r.Executions, n)
			}
			return
		}
	}
	if n != 0 {
		t.Fatalf("WeChat has no refund %s", outRefundNo)
	}
}

// TestG3OtherUsersOrder: user B can neither read, nor pay, nor close user
// A's order: "not found", through the service and the HTTP API.
func TestG3OtherUsersOrder(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		alice := h.user()
		bob := h.user()
		res := h.create(alice, oneCoffee)
		no := res.Order.OutTradeNo
		_, _, err := h.svc.GetOrder(h.ctx, bob, no)
		wantCode(t, err, merchant.ENOTFOUND)
		_, err = h.svc.CloseOrder(h.ctx, bob, no)
		wantCode(t, err, merchant.ENOTFOUND)
		_, err = h.svc.PayParams(h.ctx, bob, no)
		wantCode(t, err, merchant.ENOTFOUND)
		_, _, err = h.svc.GetOrder(h.ctx, bob, "WX261128100000NOSUCHONE")
		wantCode(t, err, merchant.ENOTFOUND)

		_, token := h.httpLogin()
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/orders/" + no}, {"POST", "/api/v1/orders/" + no + "/close"}, {"POST", "/api/v1/orders/" + no + "/pay-params"},
		} {
			if status, body := h.do(c.method, c.path, token, nil); status != http.StatusNotFound {
				t.Fatalf("%s %s: %d %s", c.method, c.path, status, body)
			}
		}
		h.wantUntouched(no)
		if s := h.simOrder(no); s.State != wxpay.TradeStateNotPay {
			t.Fatalf("at WeChat: %s", s.State)
		}
		h.payAtSim(alice, res)
		h.wantOnePayment(no)
		h.finish()
	})
}
