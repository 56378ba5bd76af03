package payments_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The suite's rows that do not depend on the protocol run for a v2 and
// an APIv3 merchant alike (eachStoreAndAPI): the same test body, with the
// few helpers below where the protocols name things differently — the
// simulator's fault API names, the notify kinds, how a captured notify is
// replayed, how an order is closed behind the service's back.

// apiKind is the WeChat Pay API generation of a harness's merchant.
type apiKind string

const (
	apiV2 apiKind = "v2" // wxgateway.New
	apiV3 apiKind = "v3" // wxgateway.NewV3, platform certificates (withV3("certificates"))
)

var apiKinds = []apiKind{apiV2, apiV3}

// withAPI builds the gateway over api: nothing for v2, withV3
// ("certificates") for v3.
func withAPI(api apiKind) option {
	return func(o *options) {
		if api == apiV3 {
			o.v3 = "certificates"
		}
	}
}

// eachStoreAndAPI runs f as a subtest on every store kind for every API
// (sqlite/v2, sqlite/v3, postgres/v2, postgres/v3), all in parallel like
// eachStore.
func eachStoreAndAPI(t *testing.T, f func(t *testing.T, sk storeKind, api apiKind)) {
	t.Helper()
	eachStore(t, func(t *testing.T, sk storeKind) {
		for _, api := range apiKinds {
			t.Run(string(api), func(t *testing.T) {
				t.Parallel()
				f(t, sk, api)
			})
		}
	})
}

// api is the harness's API generation.
func (h *harness) api() apiKind {
	if h.v3 != nil {
		return apiV3
	}
	return apiV2
}

// faultAPI is the fault API name of a v2 endpoint for the harness's API:
// itself for v2, its v3 counterpart for v3.
func (h *harness) faultAPI(v2 string) string {
	h.t.Helper()
	if h.api() == apiV2 {
		return v2
	}
	v3, ok := wxsim.V3FaultAPI(v2)
	if !ok {
		h.t.Fatalf("no v3 counterpart of the fault api %q", v2)
	}
	return v3
}

// inject injects a fault, its API named as in v2 (faultAPI). The faults
// injected earlier must have fired (none is pending), and so must this one
// by h.finish: a fault left pending hit nothing, so the test did not do
// what it says (a wrong v3 name, say).
func (h *harness) inject(f wxsim.Fault) {
	h.t.Helper()
	h.noFaultPending()
	h.injected = true
	f.API = h.faultAPI(f.API)
	if err := h.sim.InjectFault(f); err != nil {
		h.t.Fatal(err)
	}
}

// isNotify reports whether a simulator notify kind is a pay or refund
// ("pay", "refund") notify of either API; probes are neither.
func isNotify(kind string, k wxsim.NotifyKind) bool {
	switch kind {
	case "pay":
		return k == wxsim.NotifyPay || k == wxsim.NotifyPayV3
	case "refund":
		return k == wxsim.NotifyRefund || k == wxsim.NotifyRefundV3
	}
	return false
}

// notifyTries returns the simulator's tries of the pay or refund notifies
// ("pay", "refund") of an order, of either API, in order.
func (h *harness) notifyTries(kind, no string) []wxsim.NotifyAttempt {
	var out []wxsim.NotifyAttempt
	for _, a := range h.sim.Notifications() {
		if isNotify(kind, a.Kind) && a.OutTradeNo == no {
			out = append(out, a)
		}
	}
	return out
}

// lastNotifyTry is the last of notifyTries; the test fails when there is
// none.
func (h *harness) lastNotifyTry(kind, no string) wxsim.NotifyAttempt {
	h.t.Helper()
	tries := h.notifyTries(kind, no)
	if len(tries) == 0 {
		h.t.Fatalf("no %s notify of %s was tried", kind, no)
	}
	return tries[len(tries)-1]
}

// capturedPay returns the last genuine pay notify of an order that
// reached the front, as Service.HandlePayNotify takes it: for v2 the XML
// body (no header), for v3 the body with its Wechatpay-* headers, and
// when it was signed (v3; zero for v2). ok is false when none arrived.
func (h *harness) capturedPay(no string) (header http.Header, body []byte, signed time.Time, ok bool) {
	f := h.front
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.api() == apiV2 {
		body, ok = f.pay[no]
		return nil, body, time.Time{}, ok
	}
	n, ok := f.pay3[no]
	if !ok {
		return nil, nil, time.Time{}, false
	}
	if ts, err := strconv.ParseInt(n.header.Get(apiv3.HeaderTimestamp), 10, 64); err == nil {
		signed = time.Unix(ts, 0)
	}
	return n.header.Clone(), n.body, signed, true
}

// payNotify is capturedPay for a notify that must have arrived.
func (h *harness) payNotify(no string) (http.Header, []byte) {
	h.t.Helper()
	header, body, _, ok := h.capturedPay(no)
	if !ok {
		h.t.Fatalf("no %s pay notify of %s arrived", h.api(), no)
	}
	return header, body
}

// replayable reports whether a captured notify signed at signed can still
// be replayed: always for v2 (a v2 notify carries no time), within the
// ±5-minute signature window for v3 (apiv3.SignatureWindow; older ones
// are refused by design, reliability.md N5).
func (h *harness) replayable(signed time.Time) bool {
	if h.api() == apiV2 {
		return true
	}
	d := h.clock.Now().Sub(signed)
	return d > -apiv3.SignatureWindow && d < apiv3.SignatureWindow
}

// closeAtWeChat closes an order at WeChat without the service (the
// merchant platform, another system): closeorder, or the v3 close.
func (h *harness) closeAtWeChat(no string) {
	h.t.Helper()
	var err error
	if h.api() == apiV2 {
		_, err = h.pay.CloseOrder(h.ctx, no)
	} else {
		err = h.v3.client.CloseOrder(h.ctx, no)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// failingRead runs read (a query or a refund query) with a fault on every
// try it makes, its API named as in v2, and clears what is left of the
// fault after. One try is not enough over v3: every v3 read is a GET,
// and net/http's Transport sends an idempotent request again, by itself,
// when a reused connection closed without an answer — so a single
// DROP_AFTER_COMMIT never reaches the service (the second try succeeds).
// A v2 read is a POST, tried once.
func (h *harness) failingRead(api string, kind wxsim.FaultKind, read func()) {
	h.t.Helper()
	const tries = 10
	h.inject(wxsim.Fault{API: api, Kind: kind, Count: tries})
	read()
	if p := h.sim.Faults(); len(p) == 1 && p[0].Count == tries {
		h.t.Fatalf("the %s fault never fired", p[0].API)
	}
	h.sim.ClearFaults()
}

// noFaultPending fails the test when an injected fault has not fired.
func (h *harness) noFaultPending() {
	h.t.Helper()
	if f := h.sim.Faults(); len(f) != 0 {
		h.t.Fatalf("injected faults never fired: %+v", f)
	}
}

// platformRefund makes a refund at WeChat outside the service, as the
// merchant platform does, its notify sent to the service.
func (h *harness) platformRefund(no, outRefundNo string, total, fee int64) {
	h.t.Helper()
	var err error
	if h.api() == apiV2 {
		_, err = h.pay.Refund(h.ctx, &apiv2.RefundRequest{OutTradeNo: no, OutRefundNo: outRefundNo, TotalFee: total,
			RefundFee: fee, NotifyURL: h.url + "/wxpay/notify/refund"})
	} else {
		_, err = h.v3.client.CreateRefund(h.ctx, &apiv3.RefundRequest{OutTradeNo: no, OutRefundNo: outRefundNo,
			Total: total, Refund: fee, NotifyURL: h.url + "/wxpay/notify/refund"})
	}
	if err != nil {
		h.t.Fatal(err)
	}
}
