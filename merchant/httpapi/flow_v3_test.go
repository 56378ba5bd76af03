package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The mini-program flow for an APIv3 merchant through the HTTP API: RSA
// pay parameters, the JSON notify verified by its Wechatpay-* headers and
// answered 204, a refund and its notify, forged notifies answered with a
// failure status and a JSON {code,message} body.
func TestPayFlowV3(t *testing.T) {
	e := newEnv(t, withV3)
	u := e.login()
	po := e.order(u, "")
	if po.PayParams == nil || po.PayParams.SignType != "RSA" || !strings.HasPrefix(po.PayParams.Package, "prepay_id=") {
		t.Fatalf("pay params of a v3 order: %+v", po.PayParams)
	}

	// Forged notifies: no headers, a v2 document, a body too large.
	for name, q := range map[string]req{
		"no headers": {body: `{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}`},
		"v2 xml":     {body: "<xml><return_code>SUCCESS</return_code></xml>", ctype: "text/xml"},
		"headers but bad signature": {body: `{"id":"EV-1"}`, headers: map[string]string{
			"Wechatpay-Timestamp": "1795000000", "Wechatpay-Nonce": "n", "Wechatpay-Serial": "ABC", "Wechatpay-Signature": "c2ln"}},
	} {
		r := e.do("POST", "/wxpay/notify/pay", q)
		var f struct{ Code, Message string }
		if r.status < 400 || json.Unmarshal(r.body, &f) != nil || f.Code != "FAIL" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: answered %d %q %s", name, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	big := e.do("POST", "/wxpay/notify/pay", req{body: strings.Repeat("x", 200<<10)})
	if big.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(big.body), `"FAIL"`) {
		t.Errorf("oversized notify: %d %s", big.status, big.body)
	}
	if v := e.getOrder(u, po.OutTradeNo); v.Status != "NOTPAY" {
		t.Fatalf("forged notifies changed the order: %+v", v)
	}

	e.payWith(u, po.PayParams)
	v := e.getOrder(u, po.OutTradeNo)
	if v.Status != "PAID" || v.TransactionID == "" || v.TotalFee != 1500 {
		t.Fatalf("after paying: %+v", v)
	}
	var payAck *wxsim.NotifyAttempt
	for _, n := range e.sim.Notifications() {
		if n.Kind == wxsim.NotifyPayV3 && n.OutTradeNo == po.OutTradeNo {
			payAck = &n
		}
	}
	if payAck == nil || !payAck.Acked || payAck.HTTPStatus != http.StatusNoContent || payAck.Serial == "" {
		t.Fatalf("the v3 pay notify: %+v", payAck)
	}

	// A duplicate is harmless and acknowledged again.
	at, err := e.sim.SendV3Notify(t.Context(), mchID, po.OutTradeNo, "", nil)
	if err != nil || !at.Acked || at.HTTPStatus != http.StatusNoContent {
		t.Fatalf("duplicate v3 notify: %+v %v", at, err)
	}
	// A correctly signed notify one fen short: refused (a failure status,
	// so WeChat keeps it unacknowledged), one anomaly.
	at, err = e.sim.SendV3Notify(t.Context(), mchID, po.OutTradeNo, "", func(m *wxsim.V3NotifyMessage) {
		m.Resource["amount"].(map[string]any)["total"] = 1499
	})
	if err != nil || at.Acked || at.HTTPStatus < 400 || !strings.Contains(at.Reply, "FAIL") {
		t.Fatalf("a one-fen-short v3 notify was answered %+v (%v)", at, err)
	}
	var d httpapi.AdminOrderDetail
	e.admin("GET", "/admin/api/v1/orders/"+po.OutTradeNo, nil).want(t, 200).json(t, &d)
	if d.Order.Status != "PAID" || len(d.Events) != 1 || len(d.Anomalies) != 1 || d.Anomalies[0].Kind != "amount_mismatch" {
		t.Fatalf("after the duplicate and the mismatch: order %+v events %+v anomalies %+v", d.Order, d.Events, d.Anomalies)
	}

	// A refund over v3, its notify, SUCCESS.
	var rf httpapi.AdminRefund
	e.admin("POST", "/admin/api/v1/orders/"+po.OutTradeNo+"/refunds",
		map[string]any{"refund_fee": 500, "reason": "少了一杯", "out_refund_no": "RF-V3-1"}).want(t, 200).json(t, &rf)
	if rf.Status != "PROCESSING" || rf.RefundID == "" {
		t.Fatalf("refund: %+v", rf)
	}
	e.clock.Advance(30 * time.Second)
	e.sim.Flush()
	v = e.getOrder(u, po.OutTradeNo)
	if v.Status != "REFUND" || len(v.Refunds) != 1 || v.Refunds[0].Status != "SUCCESS" {
		t.Fatalf("after the refund: %+v", v)
	}
	var refundAck bool
	for _, n := range e.sim.Notifications() {
		refundAck = refundAck || n.Kind == wxsim.NotifyRefundV3 && n.OutRefundNo == "RF-V3-1" && n.Acked && n.HTTPStatus == http.StatusNoContent
	}
	if !refundAck {
		t.Fatalf("the v3 refund notify was not acknowledged: %+v", e.sim.Notifications())
	}

	// Metrics name the refusals by reason.
	m := e.do("GET", "/metrics", req{}).want(t, 200)
	for _, want := range []string{`notify_total{kind="pay",reason="headers",result="rejected"}`,
		`notify_total{kind="pay",reason="mismatch",result="rejected"}`, `api="prepay-jsapi"`, `api="refund"`} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No secret in the logs.
	logs := e.logs.String()
	for _, c := range []string{canaryAppSecret, canaryAdminToken, "PRIVATE KEY"} {
		if strings.Contains(logs, c) {
			t.Errorf("a secret (%.12s…) reached the logs", c)
		}
	}
}
