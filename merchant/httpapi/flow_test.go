package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The whole mini-program flow: login, products, order, double tap,
// wx.requestPayment at the simulator, the notify, the order paid.
func TestPayFlow(t *testing.T) {
	e := newEnv(t)
	u := e.login()

	var products map[string][]map[string]any
	e.do("GET", "/api/v1/products", req{}).want(t, 200).json(t, &products)
	if len(products["products"]) != 2 || products["products"][0]["sku"] != "COFFEE" || products["products"][0]["price"] != 1500.0 {
		t.Fatalf("products: %v", products)
	}

	first := e.do("POST", "/api/v1/orders", req{token: u.token, headers: map[string]string{"Idempotency-Key": "tap-1"},
		body: `{"items":[{"sku":"COFFEE","quantity":2},{"sku":"TEA","quantity":1}],"trade_type":"JSAPI"}`}).want(t, 201)
	// The wire shape, read independently of the package's types.
	var raw map[string]json.RawMessage
	first.json(t, &raw)
	for _, k := range []string{"out_trade_no", "total_fee", "status", "pay_params"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("create order answer lacks %q: %s", k, first.body)
		}
	}
	var pp map[string]string
	if err := json.Unmarshal(raw["pay_params"], &pp); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"} {
		if pp[k] == "" {
			t.Errorf("pay_params lacks %q: %s", k, raw["pay_params"])
		}
	}
	var po httpapi.PayableOrder
	first.json(t, &po)
	if po.TotalFee != 2*1500+990 || po.Status != "NOTPAY" || !strings.HasPrefix(po.PayParams.Package, "prepay_id=") {
		t.Fatalf("order: %+v", po)
	}

	// A double tap with the same key: the same order, no second one.
	again := e.do("POST", "/api/v1/orders", req{token: u.token, headers: map[string]string{"Idempotency-Key": "tap-1"},
		body: `{"items":[{"sku":"COFFEE","quantity":2},{"sku":"TEA","quantity":1}],"trade_type":"JSAPI"}`}).want(t, 200)
	var po2 httpapi.PayableOrder
	again.json(t, &po2)
	if po2.OutTradeNo != po.OutTradeNo || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("double tap gave %s (replayed %q), want %s", po2.OutTradeNo, again.header.Get("Idempotent-Replayed"), po.OutTradeNo)
	}
	if n := len(e.sim.Orders(mchID)); n != 1 {
		t.Fatalf("simulator has %d orders, want 1", n)
	}
	// The same key for another cart is a conflict.
	if c := e.do("POST", "/api/v1/orders", req{token: u.token, headers: map[string]string{"Idempotency-Key": "tap-1"},
		body: `{"items":[{"sku":"TEA","quantity":1}]}`}).want(t, 409).errCode(t); c != "conflict" {
		t.Fatalf("code %q", c)
	}

	if v := e.getOrder(u, po.OutTradeNo); v.Status != "NOTPAY" || v.PaidAt != "" || v.TransactionID != "" {
		t.Fatalf("before paying: %+v", v)
	}

	e.payWith(u, po.PayParams)

	v := e.getOrder(u, po.OutTradeNo)
	if v.Status != "PAID" || v.TransactionID == "" || v.PaidAt == "" || v.TotalFee != 3990 || len(v.Items) != 2 || len(v.Refunds) != 0 {
		t.Fatalf("after paying: %+v", v)
	}
	if _, err := time.Parse(time.RFC3339, v.PaidAt); err != nil {
		t.Fatalf("paid_at %q: %v", v.PaidAt, err)
	}
	var acked bool
	for _, n := range e.sim.Notifications() {
		if n.Kind == wxsim.NotifyPay && n.OutTradeNo == po.OutTradeNo {
			acked = acked || n.Acked
		}
	}
	if !acked {
		t.Fatalf("the pay notify was not acknowledged: %+v", e.sim.Notifications())
	}
	so, _ := e.sim.Order(mchID, po.OutTradeNo)
	if so.State != wxpay.TradeStateSuccess || so.OpenID != u.openID || so.TotalFee != 3990 {
		t.Fatalf("simulator order: %+v", so)
	}

	// pay-params on a paid order gives no pay parameters.
	var pp2 httpapi.PayableOrder
	e.do("POST", "/api/v1/orders/"+po.OutTradeNo+"/pay-params", req{token: u.token}).want(t, 200).json(t, &pp2)
	if pp2.Status != "PAID" || pp2.PayParams != nil {
		t.Fatalf("pay-params of a paid order: %+v", pp2)
	}
}

// Identity comes from the session only (B3), and another user's order
// does not exist for you (S3).
func TestIdentityAndIDOR(t *testing.T) {
	e := newEnv(t)
	a, b := e.login(), e.login()

	// a's order, with b's openid slipped into the body: the payer is a.
	var po httpapi.PayableOrder
	e.do("POST", "/api/v1/orders", req{token: a.token,
		body: map[string]any{"openid": b.openID, "items": []map[string]any{{"sku": "TEA", "quantity": 1}}}}).want(t, 201).json(t, &po)
	if so, _ := e.sim.Order(mchID, po.OutTradeNo); so.OpenID != a.openID {
		t.Fatalf("the order names %q, want the session's %q", so.OpenID, a.openID)
	}
	// b cannot pay a's order either: the simulator refuses another payer.
	if res := e.sim.RequestPayment(wxsim.PaymentRequest{OpenID: b.openID, AppID: po.PayParams.AppID, TimeStamp: po.PayParams.TimeStamp,
		NonceStr: po.PayParams.NonceStr, Package: po.PayParams.Package, SignType: po.PayParams.SignType, PaySign: po.PayParams.PaySign}); res.OK() {
		t.Fatalf("b paid a's order: %+v", res)
	}

	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/orders/" + po.OutTradeNo},
		{"POST", "/api/v1/orders/" + po.OutTradeNo + "/close"},
		{"POST", "/api/v1/orders/" + po.OutTradeNo + "/pay-params"},
		{"GET", "/api/v1/orders/WX000000000000NOSUCHORDR"},
	} {
		r := e.do(c.method, c.path, req{token: b.token})
		if r.status != 404 || r.errCode(t) != "not_found" {
			t.Errorf("%s %s as b: %d %s", c.method, c.path, r.status, r.body)
		}
		if strings.Contains(string(r.body), a.openID) {
			t.Errorf("%s %s leaks a's openid", c.method, c.path)
		}
	}
	if v := e.getOrder(a, po.OutTradeNo); v.Status != "NOTPAY" {
		t.Fatalf("a's order after b's attempts: %+v", v)
	}
}

// A forged notify is answered FAIL and changes nothing (A1); a validly
// signed notify that disagrees with the order is answered FAIL and
// recorded as an anomaly (A2).
func TestForgedNotify(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")

	forged := msg{"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": appID, "mch_id": mchID,
		"nonce_str": "abc", "openid": u.openID, "trade_type": "JSAPI", "bank_type": "CMC", "total_fee": "1500",
		"cash_fee": "1500", "fee_type": "CNY", "transaction_id": "4200000000202611280000000001",
		"out_trade_no": po.OutTradeNo, "time_end": "20261128100500"}
	for name, body := range map[string][]byte{
		"wrong key": forged.signed("0123456789abcdef0123456789abcdef").xml(),
		"no sign":   forged.xml(),
		"lowercase": forged.signed(canaryAPIKey).lowerSign().xml(),
		"doctype":   append([]byte(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`), forged.signed(canaryAPIKey).xml()...),
	} {
		r := e.do("POST", "/wxpay/notify/pay", req{body: body, ctype: "text/xml"})
		if r.status == 200 || !strings.Contains(string(r.body), "FAIL") || strings.Contains(string(r.body), "SUCCESS") {
			t.Errorf("%s: answered %d %s", name, r.status, r.body)
		}
	}
	if v := e.getOrder(u, po.OutTradeNo); v.Status != "NOTPAY" {
		t.Fatalf("forged notifies changed the order: %+v", v)
	}
	var d httpapi.AdminOrderDetail
	e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil).want(t, 200).json(t, &d)
	if len(d.Events) != 0 || len(d.Outbox) != 0 {
		t.Fatalf("forged notifies left events %v, outbox %v", d.Events, d.Outbox)
	}

	// Pay for real, then a correctly signed notify one fen short.
	e.payWith(u, po.PayParams)
	at, err := e.sim.SendPayNotify(t.Context(), mchID, po.OutTradeNo, func(f []wxcrypto.Field) []wxcrypto.Field {
		return setField(f, "total_fee", "1499")
	})
	if err != nil {
		t.Fatal(err)
	}
	if at.Acked || !strings.Contains(at.Reply, "FAIL") {
		t.Fatalf("a one-fen-short notify was answered %+v", at)
	}
	e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil).want(t, 200).json(t, &d)
	if d.Order.Status != "PAID" || d.Order.TotalFee != 1500 || len(d.Anomalies) != 1 || d.Anomalies[0].Kind != "amount_mismatch" {
		t.Fatalf("after a mismatching notify: order %+v anomalies %+v", d.Order, d.Anomalies)
	}
	if len(d.Events) != 1 || d.Events[0].To != "PAID" || len(d.Outbox) != 1 {
		t.Fatalf("events %+v outbox %+v", d.Events, d.Outbox)
	}
	var al httpapi.AdminAnomalyList
	e.admin("GET", "/admin/api/v1/anomalies?limit=10", nil).want(t, 200).json(t, &al)
	if len(al.Anomalies) != 1 || al.Anomalies[0].OutTradeNo != po.OutTradeNo {
		t.Fatalf("anomalies: %+v", al)
	}
}

// A partial refund by the admin: PROCESSING, then SUCCESS once the
// simulator completes it and its notify is handled; the order is REFUND.
func TestAdminRefund(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")

	// Not paid yet: refused before WeChat hears of it.
	if r := e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", map[string]any{"refund_fee": 500, "reason": "x"}); r.status < 400 || r.status >= 500 {
		t.Fatalf("refund of an unpaid order: %d %s", r.status, r.body)
	}
	e.payWith(u, po.PayParams)

	var rf httpapi.AdminRefund
	e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds",
		map[string]any{"refund_fee": 500, "reason": "少了一杯", "out_refund_no": "RF-TEST-1"}).want(t, 200).json(t, &rf)
	if rf.Status != "PROCESSING" || rf.OutRefundNo != "RF-TEST-1" || rf.RefundFee != 500 || rf.RefundID == "" {
		t.Fatalf("refund: %+v", rf)
	}
	// The same number again: the same refund, not a second one.
	var rf2 httpapi.AdminRefund
	e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds",
		map[string]any{"refund_fee": 500, "reason": "少了一杯", "out_refund_no": "RF-TEST-1"}).want(t, 200).json(t, &rf2)
	if rf2.OutRefundNo != rf.OutRefundNo || len(e.sim.Refunds(mchID)) != 1 {
		t.Fatalf("retry: %+v, simulator refunds %d", rf2, len(e.sim.Refunds(mchID)))
	}
	// More than is left: refused.
	if r := e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds", map[string]any{"refund_fee": 1001}); r.status < 400 || r.status >= 500 {
		t.Fatalf("over-refund: %d %s", r.status, r.body)
	}

	v := e.getOrder(u, po.OutTradeNo)
	if v.Status != "REFUND" || len(v.Refunds) != 1 || v.Refunds[0].Status != "PROCESSING" || v.Refunds[0].RefundFee != 500 {
		t.Fatalf("while processing: %+v", v)
	}

	e.clock.Advance(30 * time.Second) // the simulator completes the refund and notifies
	e.sim.Flush()

	v = e.getOrder(u, po.OutTradeNo)
	if v.Status != "REFUND" || v.Refunds[0].Status != "SUCCESS" {
		t.Fatalf("after completion: %+v", v)
	}
	var refundAcked bool
	for _, n := range e.sim.Notifications() {
		refundAcked = refundAcked || n.Kind == wxsim.NotifyRefund && n.OutRefundNo == "RF-TEST-1" && n.Acked
	}
	if !refundAcked {
		t.Fatalf("the refund notify was not acknowledged: %+v", e.sim.Notifications())
	}
	if sr := e.sim.Refunds(mchID); len(sr) != 1 || sr[0].Executions != 1 {
		t.Fatalf("simulator refunds: %+v", sr)
	}
}

// An admin sync settles an order whose notify was lost (C1).
func TestAdminSync(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")
	e.sim.NotifyDrop(1)
	e.payWith(u, po.PayParams)

	var d httpapi.AdminOrderDetail
	e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil).want(t, 200).json(t, &d)
	if d.Order.Status != "NOTPAY" {
		t.Fatalf("status %s before the sync", d.Order.Status)
	}
	e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/sync", nil).want(t, 200).json(t, &d)
	if d.Order.Status != "PAID" || d.Order.OpenID != u.openID || len(d.Events) != 1 || d.Events[0].Source != "query" {
		t.Fatalf("after the sync: %+v events %+v", d.Order, d.Events)
	}
	if len(d.Outbox) != 1 || d.Outbox[0].Type != "order.paid" {
		t.Fatalf("outbox: %+v", d.Outbox)
	}
	if r := e.admin("POST", "/admin/api/v1/orders/NOSUCHORDER1/sync", nil); r.status != 404 {
		t.Fatalf("sync of an unknown order: %d %s", r.status, r.body)
	}
}

// The user closes an unpaid order; pay-params re-issues valid parameters.
func TestCloseAndPayParams(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")

	var again httpapi.PayableOrder
	e.do("POST", "/api/v1/orders/"+po.OutTradeNo+"/pay-params", req{token: u.token}).want(t, 200).json(t, &again)
	if again.PayParams == nil || again.PayParams.Package != po.PayParams.Package {
		t.Fatalf("pay-params: %+v", again)
	}

	other := e.order(u, "")
	var v httpapi.OrderView
	e.do("POST", "/api/v1/orders/"+other.OutTradeNo+"/close", req{token: u.token}).want(t, 200).json(t, &v)
	if v.Status != "CLOSED" {
		t.Fatalf("closed: %+v", v)
	}
	if so, _ := e.sim.Order(mchID, other.OutTradeNo); so.State != wxpay.TradeStateClosed {
		t.Fatalf("simulator: %s", so.State)
	}
	if r := e.do("POST", "/api/v1/orders/"+other.OutTradeNo+"/pay-params", req{token: u.token}); r.status != 200 {
		t.Fatalf("pay-params of a closed order: %d %s", r.status, r.body)
	}

	// The re-issued parameters pay the first order.
	e.payWith(u, again.PayParams)
	if v := e.getOrder(u, po.OutTradeNo); v.Status != "PAID" {
		t.Fatalf("paid with re-issued params: %+v", v)
	}
}

// A NATIVE order gives a code_url that a scan pays; a mode-1 product QR
// code goes through the NativeCallback hook.
func TestNative(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.native = true })
	u := e.login()
	var po httpapi.PayableOrder
	e.do("POST", "/api/v1/orders", req{token: u.token,
		body: `{"items":[{"sku":"TEA","quantity":3}],"trade_type":"NATIVE"}`}).want(t, 201).json(t, &po)
	if po.CodeURL == "" || po.PayParams != nil || po.TotalFee != 2970 {
		t.Fatalf("native order: %+v", po)
	}
	res, err := e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: u.openID, URL: po.CodeURL})
	if err != nil || res.ErrMsg != "scan:ok" {
		t.Fatalf("scan: %+v %v", res, err)
	}
	e.sim.Flush()
	if v := e.getOrder(u, po.OutTradeNo); v.Status != "PAID" {
		t.Fatalf("after the scan: %+v", v)
	}

	// Mode 1: the simulator calls /wxpay/native/callback.
	url, err := e.pay.NativeURL("COFFEE")
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.sim.Scan(t.Context(), wxsim.ScanRequest{OpenID: u.openID, URL: url})
	if err != nil || res.ErrMsg != "scan:ok" || res.Mode != 1 || res.TotalFee != 1500 {
		t.Fatalf("mode-1 scan: %+v %v", res, err)
	}
	e.sim.Flush()
	var d httpapi.AdminOrderDetail
	e.admin("GET", "/admin/api/v1/orders/"+res.OutTradeNo, nil).want(t, 200).json(t, &d)
	if d.Order.Status != "PAID" || d.Order.TradeType != wxpay.TradeTypeNative {
		t.Fatalf("mode-1 order: %+v", d.Order)
	}
	// A forged callback is refused.
	r := e.do("POST", "/wxpay/native/callback", req{body: msg{"appid": appID, "mch_id": mchID, "openid": u.openID,
		"product_id": "COFFEE", "nonce_str": "x", "is_subscribe": "N"}.signed("0123456789abcdef0123456789abcdef").xml(), ctype: "text/xml"})
	if r.status == 200 || !strings.Contains(string(r.body), "FAIL") {
		t.Fatalf("forged callback: %d %s", r.status, r.body)
	}
}

// Without a NativeCallback the callback route does not exist.
func TestNativeCallbackOff(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/wxpay/native/callback", req{body: "<xml></xml>", ctype: "text/xml"}).want(t, 404)
	if r.errCode(t) != "not_found" {
		t.Fatal(string(r.body))
	}
}

// A notify is bounded by NotifyTimeout: past it the answer is FAIL. With a
// deadline that has always passed, no notify may be acknowledged unless
// the payment was committed (A4, A5), and every answer is well formed.
func TestNotifyDeadline(t *testing.T) {
	e := newEnv(t, func(o *envOptions) {
		o.http = func(c *httpapi.Config) { c.NotifyTimeout = time.Nanosecond }
	})
	u := e.login()
	po := e.order(u, "")
	e.payWith(u, po.PayParams)
	var tries int
	for _, n := range e.sim.Notifications() {
		if n.Kind != wxsim.NotifyPay {
			continue
		}
		tries++
		if n.Verdict == wxsim.VerdictMalformed {
			t.Fatalf("malformed answer: %+v", n)
		}
		if n.Acked {
			if v := e.getOrder(u, po.OutTradeNo); v.Status != "PAID" {
				t.Fatalf("acknowledged without the payment committed: %+v", v)
			}
		}
	}
	if tries == 0 {
		t.Fatal("no notify was tried")
	}
}

// Reading an unpaid order asks WeChat once it is stale: a client that says
// it paid changes nothing by itself (A8), a payment whose notify was lost
// is found (C1).
func TestQueryOnRead(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	unpaid := e.order(u, "")
	paid := e.order(u, "")
	e.sim.NotifyDrop(1)
	e.payWith(u, paid.PayParams)

	if v := e.getOrder(u, paid.OutTradeNo); v.Status != "NOTPAY" {
		t.Fatalf("fresh order read as %s", v.Status)
	}
	e.clock.Advance(10 * time.Second)
	if v := e.getOrder(u, unpaid.OutTradeNo); v.Status != "NOTPAY" {
		t.Fatalf("unpaid order read as %s", v.Status)
	}
	if v := e.getOrder(u, paid.OutTradeNo); v.Status != "PAID" || v.TransactionID == "" {
		t.Fatalf("paid order with a lost notify read as %+v", v)
	}
}

// Duplicate notifies (at once and later) are acknowledged and change the
// order once (A3).
func TestDuplicateNotify(t *testing.T) {
	e := newEnv(t)
	u := e.login()
	po := e.order(u, "")
	e.sim.NotifyDuplicate(1)
	e.payWith(u, po.PayParams)
	if _, err := e.sim.SendPayNotify(t.Context(), mchID, po.OutTradeNo, nil); err != nil {
		t.Fatal(err)
	}
	var tries, acked int
	for _, n := range e.sim.Notifications() {
		if n.OutTradeNo == po.OutTradeNo {
			tries++
			if n.Acked {
				acked++
			}
		}
	}
	if tries < 3 || acked != tries {
		t.Fatalf("%d tries, %d acknowledged: %+v", tries, acked, e.sim.Notifications())
	}
	var d httpapi.AdminOrderDetail
	e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil).want(t, 200).json(t, &d)
	if d.Order.Status != "PAID" || len(d.Events) != 1 || len(d.Outbox) != 1 || len(d.Anomalies) != 0 {
		t.Fatalf("order %+v events %+v outbox %+v anomalies %+v", d.Order, d.Events, d.Outbox, d.Anomalies)
	}
}
