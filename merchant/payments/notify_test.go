package payments_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// wantUntouched fails unless an order is still NOTPAY with no event and no
// outbox event.
func (h *harness) wantUntouched(no string) {
	h.t.Helper()
	if o := h.order(no); o.Status != merchant.OrderNotPay {
		h.t.Fatalf("%s is %s, want NOTPAY", no, o.Status)
	}
	if ev := h.events(no); len(ev) != 0 {
		h.t.Fatalf("%s has events %+v", no, ev)
	}
	if n := h.paidEvents(no); n != 0 {
		h.t.Fatalf("%s has %d order.paid events", no, n)
	}
}

// TestA1ForgedPayNotify: only authentic notifies change state. The same
// genuine notify, broken in every way reliability.md A1 (v2) and N1, N2,
// N4 list, goes through Service.HandlePayNotify for a merchant configured
// for MD5 and one configured for HMAC-SHA256: each is refused (FAIL, never
// SUCCESS), the order keeps its state, no event or outbox row is written,
// one log line and one notify_rejected count give the reason. The
// simulator's SIGNTEST-style probes are refused too. Then the genuine
// notify pays the order once.
func TestA1ForgedPayNotify(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		for _, mt := range []wxpay.SignType{wxpay.SignTypeMD5, wxpay.SignTypeHMACSHA256} {
			t.Run(string(mt), func(t *testing.T) {
				h := newHarness(t, sk, withSignType(mt))
				other := wxpay.SignTypeHMACSHA256
				if mt == wxpay.SignTypeHMACSHA256 {
					other = wxpay.SignTypeMD5
				}
				sess := h.user()
				res := h.create(sess, oneCoffee)
				victim := h.create(sess, []merchant.CartLine{{SKU: "GOLD", Quantity: 5}}) // N4: the expensive order
				no := res.Order.OutTradeNo
				h.front.holdNotifies("pay", true)
				h.payAtSim(sess, res)
				genuine := fields(t, h.front.payBody(t, no))
				if (get(genuine, "sign_type") != "") != (mt == wxpay.SignTypeHMACSHA256) {
					t.Fatalf("the simulator's notify has sign_type %q for a %s merchant", get(genuine, "sign_type"), mt)
				}
				forms := []struct {
					name, reason string
					body         []byte
				}{
					{"sign missing", "signature", encode(t, set(genuine, "sign", ""))},
					{"signed with another key", "signature", encode(t, sign(t, genuine, mt, "ANOTHERkeyANOTHERkeyANOTHERkey01"))},
					{"signed with an empty key", "signature", encode(t, sign(t, genuine, mt, ""))},
					{"signed with the AppSecret", "signature", encode(t, sign(t, genuine, mt, canaryAppSecret))},
					{"lower-case hex sign", "signature", encode(t, set(genuine, "sign", strings.ToLower(get(genuine, "sign"))))},
					{"signed with the other algorithm, sign_type saying so", "signature",
						encode(t, sign(t, set(genuine, "sign_type", string(other)), other, canaryAPIKey))},
					{"signed with the other algorithm, no sign_type", "signature",
						encode(t, sign(t, set(genuine, "sign_type", ""), other, canaryAPIKey))},
					{"sign_type disagreeing with our config", "signature",
						encode(t, sign(t, set(genuine, "sign_type", string(other)), mt, canaryAPIKey))},
					{"total_fee changed after signing", "signature", encode(t, set(genuine, "total_fee", "1"))},
					{"out_trade_no switched to another order", "signature",
						encode(t, set(genuine, "out_trade_no", victim.Order.OutTradeNo))},
					{"empty body", "malformed", nil},
					{"not XML", "malformed", []byte("return_code=SUCCESS&sign=x")},
				}
				refusedBefore := strings.Count(h.logs.String(), "pay notify refused")
				for _, f := range forms {
					err := h.svc.HandlePayNotify(h.ctx, nil, f.body)
					if !errors.Is(err, merchant.ErrBadNotify) {
						t.Fatalf("%s: %v, want a refused notify", f.name, err)
					}
					status, _, reply := h.gw.NotifyAck(err)
					if status == http.StatusOK || bytes.Contains(reply, []byte("SUCCESS")) {
						t.Fatalf("%s: answered %d %s", f.name, status, reply)
					}
					h.wantUntouched(no)
					h.wantUntouched(victim.Order.OutTradeNo)
				}
				if n := strings.Count(h.logs.String(), "pay notify refused") - refusedBefore; n != len(forms) {
					t.Fatalf("%d log lines for %d refused notifies", n, len(forms))
				}
				want := map[string]int{}
				for _, f := range forms {
					want[f.reason]++
				}
				for reason, n := range want {
					if got := h.metrics.get("notify/pay/rejected/" + reason); got != n {
						t.Fatalf("notify_rejected{%s} = %d, want %d", reason, got, n)
					}
				}
				// The simulator's probes (a copy with a wrong sign before the
				// genuine notify) are refused; the genuine ones pay.
				h.front.holdNotifies("pay", false)
				// One form through the HTTP endpoint: FAIL with a 4xx.
				r, err := http.Post(h.url+"/wxpay/notify/pay", "text/xml", bytes.NewReader(forms[1].body))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("FAIL")) {
					t.Fatalf("HTTP answer to a forged notify: %d %s", r.StatusCode, b)
				}
				h.wantUntouched(no)

				h.sim.NotifyBadSignature(3)
				rejected := h.metrics.get("notify/pay/rejected/signature")
				for range 3 {
					h.paidOrder(sess, oneCoffee)
				}
				st := h.sim.NotifyStats()
				if st.ProbesSent != 3 || st.ProbesAccepted != 0 {
					t.Fatalf("probes: %+v", st)
				}
				if got := h.metrics.get("notify/pay/rejected/signature") - rejected; got != 3 {
					t.Fatalf("%d probes counted as rejected, want 3", got)
				}

				// The genuine notify, at last.
				if err := h.svc.HandlePayNotify(h.ctx, nil, encode(t, genuine)); err != nil {
					t.Fatal(err)
				}
				h.wantOnePayment(no)
				h.finish()
			})
		}
	})
}

// setField sets a field of the simulator's notify in place (the simulator
// signs after the mutation).
func setField(fs []wxcrypto.Field, name, value string) []wxcrypto.Field {
	for i := range fs {
		if fs[i].Name == name {
			fs[i].Value = value
			return fs
		}
	}
	return append(fs, wxcrypto.Field{Name: name, Value: value})
}

// TestA2ValidlySignedMismatch: a correctly signed notify whose content
// disagrees with our order (1 fen short, another mch_id, another appid, an
// out_trade_no we never issued, a currency other than CNY) is refused with
// FAIL every time it comes — 16 tries, WeChat's first try and 15 retries —
// never marks the order PAID, and leaves exactly one anomaly row, with an
// ERROR log line (the alert). A notify that reports a failed payment
// (result_code FAIL) changes nothing either and leaves one anomaly row
// (not_paid_notify) and an alert, but it is acknowledged: its content
// will not change on a retry. In the end the settle job's query, which
// reports the truth, pays every order once.
func TestA2ValidlySignedMismatch(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk)
		sess := h.user()
		cases := []struct {
			name    string
			mutate  func(no string, fs []wxcrypto.Field) []wxcrypto.Field
			kind    merchant.AnomalyKind
			unknown bool // the anomaly is under the mutated out_trade_no
			ack     bool // the notify is acknowledged (not refused)
		}{
			{"one fen short", func(_ string, fs []wxcrypto.Field) []wxcrypto.Field {
				return setField(setField(fs, "total_fee", "1499"), "cash_fee", "1499")
			}, merchant.AnomalyAmount, false, false},
			{"another mch_id", func(_ string, fs []wxcrypto.Field) []wxcrypto.Field {
				return setField(fs, "mch_id", "1900000109")
			}, merchant.AnomalyMerchant, false, false},
			{"another appid", func(_ string, fs []wxcrypto.Field) []wxcrypto.Field {
				return setField(fs, "appid", "wx2421b1c4370ec43b")
			}, merchant.AnomalyApp, false, false},
			{"an out_trade_no we never issued", func(no string, fs []wxcrypto.Field) []wxcrypto.Field {
				return setField(fs, "out_trade_no", "NEVER"+no[5:])
			}, merchant.AnomalyUnknownOrder, true, false},
			{"currency USD", func(_ string, fs []wxcrypto.Field) []wxcrypto.Field {
				return setField(fs, "fee_type", "USD")
			}, merchant.AnomalyCurrency, false, false},
			{"result_code FAIL", func(_ string, fs []wxcrypto.Field) []wxcrypto.Field {
				fs = setField(fs, "result_code", "FAIL")
				fs = setField(fs, "err_code", "SYSTEMERROR")
				return setField(fs, "err_code_des", "支付失败")
			}, merchant.AnomalyNotPaid, false, true},
		}
		for _, tc := range cases {
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			h.sim.NotifyDrop(1) // the genuine notify is lost; the mismatching ones come
			h.payAtSim(sess, res)
			under := no
			if tc.unknown {
				under = "NEVER" + no[5:]
			}
			alert := "payment disagrees with the order"
			if tc.ack {
				alert = "a verified pay notify reports no payment"
			}
			errorsBefore := strings.Count(h.logs.String(), alert)
			for try := range 16 {
				a, err := h.sim.SendPayNotify(h.ctx, mchID, no, func(fs []wxcrypto.Field) []wxcrypto.Field { return tc.mutate(no, fs) })
				if err != nil {
					t.Fatal(err)
				}
				acked := a.Verdict == wxsim.VerdictAcknowledged
				if acked != tc.ack || a.Verdict == wxsim.VerdictMalformed {
					t.Fatalf("%s: try %d answered %s (%d %s)", tc.name, try+1, a.Verdict, a.HTTPStatus, a.Reply)
				}
				if st := h.order(no).Status; st != merchant.OrderNotPay {
					t.Fatalf("%s: the order is %s", tc.name, st)
				}
			}
			an := h.anomalies(under)
			if len(an) != 1 || an[0].Kind != tc.kind {
				t.Fatalf("%s: %d anomalies under %s, want one %s: %+v", tc.name, len(an), under, tc.kind, an)
			}
			if tc.unknown {
				if _, err := h.base.Order(h.ctx, under); errCode(err) != merchant.ENOTFOUND {
					t.Fatalf("%s: a notify created order %s (%v)", tc.name, under, err)
				}
			}
			if n := strings.Count(h.logs.String(), alert) - errorsBefore; n == 0 || !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
				t.Fatalf("%s: no ERROR log line (alert) for the disagreement", tc.name)
			}
			h.wantUntouched(no)
		}
		// The settle job's query pays them all, as WeChat says.
		h.advance(2 * time.Minute)
		h.run(river.KindSettle)
		list, _, err := h.base.ListOrders(h.ctx, merchant.OrderFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list {
			h.wantOnePayment(o.OutTradeNo)
		}
		h.finish()
	})
}

// TestA3ConcurrentNotifies: exactly one transition under duplicates and
// concurrency (reliability.md A3).
func TestA3ConcurrentNotifies(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		// 50 copies of the same genuine notify, posted at once to the
		// notify endpoint: every answer is the SUCCESS document, the order
		// moves once.
		t.Run("50 identical", func(t *testing.T) {
			// A deadline far above the 4 s default: this is about
			// idempotency under concurrency, not latency (A5), and 50
			// copies queue on one row lock behind a pool of 8 connections.
			h := newHarness(t, sk, withNotifyTimeout(30*time.Second))
			sess := h.user()
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			h.front.holdNotifies("pay", true)
			h.payAtSim(sess, res)
			body := h.front.payBody(t, no)
			h.front.holdNotifies("pay", false)
			replies := make([][]byte, 50)
			errs := parallel(50, func(i int) error {
				r, err := http.Post(h.url+"/wxpay/notify/pay", "text/xml", bytes.NewReader(body))
				if err != nil {
					return err
				}
				defer r.Body.Close()
				replies[i], _ = io.ReadAll(r.Body)
				if r.StatusCode != http.StatusOK {
					return errors.New("status " + strconv.Itoa(r.StatusCode))
				}
				return nil
			})
			for i, err := range errs {
				if err != nil || !bytes.Equal(replies[i], apiv2.NotifySuccess) {
					t.Fatalf("copy %d: %v %s", i, err, replies[i])
				}
			}
			h.wantOnePayment(no)
			if ev := h.events(no); len(ev) != 1 {
				t.Fatalf("%d events", len(ev))
			}
			h.finish()
		})

		// The notify and the query (Service.Sync, what the settle job and
		// a read of the order call) reach the store's write together: a
		// gate pauses both between their read and their write.
		t.Run("racing Sync", func(t *testing.T) {
			ps := &pausingStore{}
			h := newHarness(t, sk, withStore(func(s merchant.Store) merchant.Store { ps.Store = s; return ps }))
			sess := h.user()
			var nos []string
			h.front.holdNotifies("pay", true)
			for range 8 {
				res := h.create(sess, oneCoffee)
				h.payAtSim(sess, res)
				nos = append(nos, res.Order.OutTradeNo)
			}
			for _, no := range nos {
				ps.setGate(no, newGate(2, 10*time.Second))
			}
			errs := parallel(2*len(nos), func(i int) error {
				no := nos[i/2]
				if i%2 == 0 {
					return h.svc.HandlePayNotify(h.ctx, nil, h.front.payBody(t, no))
				}
				o, err := h.svc.Sync(h.ctx, no)
				if err == nil && !o.Status.Paid() {
					err = errors.New("sync left it " + string(o.Status))
				}
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			for _, no := range nos {
				h.wantOnePayment(no)
			}
			if n := h.metrics.get("paid/notify") + h.metrics.get("paid/query"); n != len(nos) {
				t.Fatalf("%d payments applied for %d orders", n, len(nos))
			}
			ps.gates = nil
			h.finish()
		})

		// The user pays in the window between the close's query and its
		// closeorder (the simulator's USER_PAYS_FIRST): closeorder answers
		// ORDERPAID, the close queries again and marks the order paid,
		// while the payment's notify arrives at the same moment (both
		// paused before the write). Never CLOSED, paid once.
		t.Run("racing Close", func(t *testing.T) {
			ps := &pausingStore{}
			h := newHarness(t, sk, withStore(func(s merchant.Store) merchant.Store { ps.Store = s; return ps }))
			sess := h.user()
			for range 4 {
				res := h.create(sess, oneCoffee)
				no := res.Order.OutTradeNo
				ps.setGate(no, newGate(2, 10*time.Second))
				if err := h.sim.InjectFault(wxsim.Fault{API: "closeorder", Kind: wxsim.FaultUserPaysFirst}); err != nil {
					t.Fatal(err)
				}
				o, err := h.svc.Close(h.ctx, no)
				if err != nil || !o.Status.Paid() {
					t.Fatalf("close: %+v %v", o, err)
				}
				h.sim.Flush()
				h.wantOnePayment(no)
				for _, e := range h.events(no) {
					if e.To == merchant.OrderClosed {
						t.Fatalf("%s was closed: %+v", no, e)
					}
				}
			}
			ps.gates = nil
			h.finish()
		})

		// The close job (river settle) runs on orders paid a moment
		// before their time_expire whose notify has not been acknowledged;
		// the notify's retry arrives while the job works on each order.
		t.Run("racing the close job", func(t *testing.T) {
			ps := &pausingStore{}
			h := newHarness(t, sk, withStore(func(s merchant.Store) merchant.Store { ps.Store = s; return ps }))
			sess := h.user()
			var nos []string
			h.front.holdNotifies("pay", true)
			for range 4 {
				res := h.create(sess, oneCoffee)
				nos = append(nos, res.Order.OutTradeNo)
			}
			h.advance(29 * time.Minute) // one minute before time_expire
			var bodies [][]byte
			for _, no := range nos {
				r, err := h.svc.PayParams(h.ctx, sess, no)
				if err != nil {
					t.Fatal(err)
				}
				h.payAtSim(sess, r)
				bodies = append(bodies, h.front.payBody(t, no))
				ps.setGate(no, newGate(2, 10*time.Second))
			}
			h.advance(3 * time.Minute) // past time_expire + CloseGrace: the job closes (after a query)
			errs := parallel(len(nos)+1, func(i int) error {
				if i == len(nos) {
					res, err := h.runner.RunOnce(h.ctx, river.KindSettle)
					if err == nil && res.Counts["paid"] != len(nos) {
						err = errors.New("settle: " + res.String())
					}
					return err
				}
				return h.svc.HandlePayNotify(h.ctx, nil, bodies[i])
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			for _, no := range nos {
				h.wantOnePayment(no)
				for _, e := range h.events(no) {
					if e.To == merchant.OrderClosed {
						t.Fatalf("%s was closed: %+v", no, e)
					}
				}
			}
			ps.gates = nil
			h.finish()
		})
	})
}

// TestA5NotifyReply: the reply is exactly WeChat's SUCCESS document, fast;
// a store slower than the notify deadline gets FAIL, never SUCCESS, and
// the retry then pays the order once.
func TestA5NotifyReply(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		t.Run("exact and fast", func(t *testing.T) {
			h := newHarness(t, sk)
			sess := h.user()
			for range 20 {
				h.paidOrder(sess, oneCoffee)
			}
			var slowest float64
			for _, a := range h.sim.Notifications() {
				if a.Kind != wxsim.NotifyPay {
					continue
				}
				if a.Verdict != wxsim.VerdictAcknowledged || a.HTTPStatus != http.StatusOK || a.Reply != string(apiv2.NotifySuccess) {
					t.Fatalf("try %d: %s %d %q", a.Seq, a.Verdict, a.HTTPStatus, a.Reply)
				}
				slowest = max(slowest, a.Elapsed)
			}
			// reliability.md's target is p99 < 1 s without faults; the test
			// fails only past the handler's own 4 s deadline, since a shared
			// CI machine under -race can be slower than production for
			// reasons that are not the service's, and logs the figure.
			if slowest >= 4000 {
				t.Fatalf("the slowest of 20 notifies took %.0f ms", slowest)
			}
			if slowest >= 1000 {
				t.Logf("WARNING: the slowest of 20 notifies took %.0f ms (target < 1000 ms)", slowest)
			}
			t.Logf("slowest of 20 notifies: %.1f ms", slowest)
			h.finish()
		})
		t.Run("slow store", func(t *testing.T) {
			ps := &pausingStore{}
			h := newHarness(t, sk, withNotifyTimeout(300*time.Millisecond),
				withStore(func(s merchant.Store) merchant.Store { ps.Store = s; return ps }))
			sess := h.user()
			res := h.create(sess, oneCoffee)
			ps.slow.Store(int64(2 * time.Second))
			h.payAtSim(sess, res)
			var first wxsim.NotifyAttempt
			for _, a := range h.sim.Notifications() {
				if a.Kind == wxsim.NotifyPay {
					first = a
				}
			}
			if first.Acked || first.Verdict != wxsim.VerdictRejected || first.Elapsed >= 4000 { // FAIL at the 300 ms deadline, far within WeChat's 5 s
				t.Fatalf("a slow store answered %s %d %q in %.0f ms", first.Verdict, first.HTTPStatus, first.Reply, first.Elapsed)
			}
			ps.slow.Store(0)
			h.advance(15 * time.Second) // WeChat's first retry
			h.wantOnePayment(res.Order.OutTradeNo)
			h.finish()
		})
	})
}

// closeLies is a gateway whose closeorder "succeeds" without reaching
// WeChat: the order is CLOSED here while WeChat still lets the user pay.
// The simulator cannot produce this (a closed order cannot be paid there,
// and a payment before the close makes closeorder answer ORDERPAID), but
// WeChat can: a payment already in flight when the close lands. It is the
// only way to reach a payment of an order closed locally (A6).
type closeLiesGW struct{ merchant.Gateway }

func (closeLiesGW) Close(context.Context, string) error { return nil }

// TestA6LateAndReordered: out-of-order and late v2 notifies converge
// (the rows shared with APIv3 are in TestA6OutOfOrder).
func TestA6LateAndReordered(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		// The race of TestA6OutOfOrder's locally closed order with the
		// real simulator: the user pays between
		// the close's query and closeorder, which answers ORDERPAID — the
		// order is never closed (C2 too).
		t.Run("user pays first", func(t *testing.T) {
			h := newHarness(t, sk)
			sess := h.user()
			res := h.create(sess, oneCoffee)
			if err := h.sim.InjectFault(wxsim.Fault{API: "closeorder", Kind: wxsim.FaultUserPaysFirst}); err != nil {
				t.Fatal(err)
			}
			o, err := h.svc.CloseOrder(h.ctx, sess, res.Order.OutTradeNo)
			if err != nil || o.Status != merchant.OrderPaid {
				t.Fatalf("close: %+v %v", o, err)
			}
			h.sim.Flush()
			h.wantOnePayment(o.OutTradeNo)
			h.finish()
		})

		// The notify arrives 24 hours late (its first try delayed on the
		// manual clock). Without a query in between it pays the order;
		// with one (the settle job, after expiry) it finds it paid and is
		// acknowledged.
		t.Run("24 hours late", func(t *testing.T) {
			h := newHarness(t, sk)
			sess := h.user()
			a := h.create(sess, oneCoffee)
			b := h.create(sess, oneCoffee)
			h.sim.NotifyDelay(2, 24*time.Hour)
			h.payAtSim(sess, a)
			h.payAtSim(sess, b)
			h.advance(2 * time.Hour)
			h.run(river.KindSettle) // b … and a: both are queried
			h.wantOnePayment(b.Order.OutTradeNo)
			h.advance(22*time.Hour + time.Minute)
			h.wantOnePayment(a.Order.OutTradeNo)
			for _, at := range h.sim.Notifications() {
				if at.Kind == wxsim.NotifyPay && !at.Acked {
					t.Fatalf("late notify not acknowledged: %+v", at)
				}
			}
			h.finish()
		})
		t.Run("24 hours late, nothing queried", func(t *testing.T) {
			h := newHarness(t, sk)
			sess := h.user()
			a := h.create(sess, oneCoffee)
			h.sim.NotifyDelay(1, 24*time.Hour)
			h.payAtSim(sess, a)
			h.advance(24*time.Hour - time.Minute)
			h.wantUntouched(a.Order.OutTradeNo)
			h.advance(2 * time.Minute)
			h.wantOnePayment(a.Order.OutTradeNo)
			if h.metrics.get("paid/notify") != 1 {
				t.Fatalf("metrics %v", sortedStrings(h.metrics.counts))
			}
			h.finish()
		})
	})
}

// TestA7UnknownFieldSigned: a notify with fields we do not know, signed
// over, verifies and pays.
func TestA7UnknownFieldSigned(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk)
		sess := h.user()
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo
		h.sim.NotifyDrop(1)
		h.payAtSim(sess, res)
		a, err := h.sim.SendPayNotify(h.ctx, mchID, no, func(fs []wxcrypto.Field) []wxcrypto.Field {
			fs = append(fs, wxcrypto.Field{Name: "new_field", Value: "x"}, wxcrypto.Field{Name: "coupon_count", Value: "0"},
				wxcrypto.Field{Name: "promotion_detail", Value: `{"promotion_detail":[]}`})
			return fs
		})
		if err != nil || !a.Acked {
			t.Fatalf("%+v %v", a, err)
		}
		h.wantOnePayment(no)
		h.finish()
	})
}

// TestA8ClientSaysPaid: the mini program reads the order after
// wx.requestPayment reports success (or after the user cancelled), while
// WeChat has no payment: reading queries WeChat and nothing else — the
// order stays unpaid.
func TestA8ClientSaysPaid(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		res := h.create(sess, oneCoffee)
		no := res.Order.OutTradeNo
		p := res.PayParams
		out := h.sim.RequestPayment(wxsim.PaymentRequest{OpenID: sess.OpenID, AppID: p.AppID, TimeStamp: p.TimeStamp,
			NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign, Outcome: wxsim.OutcomeCancel})
		if out.OK() {
			t.Fatal("a cancelled payment reported ok")
		}
		for range 3 {
			h.advance(6 * time.Second) // past QueryAfter: each read asks WeChat
			o, _, err := h.svc.GetOrder(h.ctx, sess, no)
			if err != nil || o.Status != merchant.OrderNotPay {
				t.Fatalf("read: %+v %v", o, err)
			}
			if _, err := h.svc.PayParams(h.ctx, sess, no); err != nil {
				t.Fatal(err)
			}
		}
		if o := h.order(no); o.LastQueriedAt.IsZero() {
			t.Fatal("reading did not query WeChat")
		}
		if s := h.simOrder(no); s.Paid {
			t.Fatal("paid at the simulator")
		}
		h.wantUntouched(no)
		h.finish()
	})
}

// TestA6OutOfOrder: the rows of reliability.md A6 that read the same on
// v2 and APIv3 — a refund notify before the pay notify, a refund notify
// for an order unpaid here, a payment of an order closed here — for both
// API generations (TestA6LateAndReordered and TestA6V3LateAndReordered
// have the rest).
func TestA6OutOfOrder(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		// The refund notify reaches us before the pay notify (the
		// simulator holds both and sends them newest first); the order is
		// paid here by a query, so the refund notify applies.
		t.Run("refund notify before pay notify", func(t *testing.T) {
			h := newHarness(t, sk, withAPI(api))
			sess := h.user()
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			h.sim.NotifyReorder(2)
			h.payAtSim(sess, res)
			if o, err := h.svc.Sync(h.ctx, no); err != nil || o.Status != merchant.OrderPaid {
				t.Fatalf("sync: %+v %v", o, err)
			}
			rf, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: no, RefundFee: 1500})
			if err != nil || rf.Status != merchant.RefundProcessing {
				t.Fatalf("refund: %+v %v", rf, err)
			}
			if err := h.sim.CompleteRefund(mchID, rf.OutRefundNo, wxpay.RefundStatusSuccess); err != nil {
				t.Fatal(err)
			}
			h.sim.Flush()
			var kinds []wxsim.NotifyKind
			for _, a := range h.sim.Notifications() {
				kinds = append(kinds, a.Kind)
			}
			if len(kinds) < 2 || !isNotify("refund", kinds[0]) || !isNotify("pay", kinds[1]) {
				t.Fatalf("deliveries %v, want the refund notify first", kinds)
			}
			if r, _ := h.base.Refund(h.ctx, rf.OutRefundNo); r.Status != merchant.RefundSuccess {
				t.Fatalf("refund %s", r.Status)
			}
			h.wantOnePayment(no)
			h.finish()
		})

		// A refund notify for a refund we never made (one made on the
		// merchant platform) arrives while the order is unpaid here (its
		// pay notify is late): it is refused and recorded, never applied;
		// the order is paid when its notify comes.
		t.Run("refund notify for an unpaid order", func(t *testing.T) {
			h := newHarness(t, sk, withAPI(api))
			sess := h.user()
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			h.front.holdOrder(no, true)
			h.payAtSim(sess, res)
			h.platformRefund(no, "PLATFORM0001", 1500, 500)
			if err := h.sim.CompleteRefund(mchID, "PLATFORM0001", wxpay.RefundStatusSuccess); err != nil {
				t.Fatal(err)
			}
			h.sim.Flush()
			h.advance(20 * time.Minute) // a few refund notify retries
			h.wantUntouched(no)
			if an := h.anomalies(no); len(an) != 1 || an[0].Kind != merchant.AnomalyRefundMismatch {
				t.Fatalf("anomalies %+v", an)
			}
			if _, err := h.base.Refund(h.ctx, "PLATFORM0001"); errCode(err) != merchant.ENOTFOUND {
				t.Fatalf("the refund notify created a refund: %v", err)
			}
			if api == apiV3 {
				// Each try is refused with a failure status and the JSON body.
				refundTries := 0
				for _, a := range h.sim.Notifications() {
					if a.Kind == wxsim.NotifyRefundV3 {
						refundTries++
						if a.Acked || v3FailureReply(a.HTTPStatus, []byte(a.Reply)) != "" {
							t.Fatalf("refund notify answered %s %d %q", a.Verdict, a.HTTPStatus, a.Reply)
						}
					}
				}
				if refundTries < 2 {
					t.Fatalf("%d refund notify tries", refundTries)
				}
			}
			h.front.holdOrder(no, false)
			h.advance(15 * time.Minute) // the pay notify's retry (34 minutes after the payment)
			h.wantOnePayment(no)
			h.finish() // the refund WeChat made and we did not is recorded (anomaly, recon exception)
		})

		// A payment lands on an order already CLOSED here: PAID, with a
		// late_payment anomaly for a person to refund or ship.
		t.Run("payment of a locally closed order", func(t *testing.T) {
			h := newHarness(t, sk, withAPI(api), withGateway(func(g merchant.Gateway) merchant.Gateway { return closeLiesGW{g} }))
			sess := h.user()
			res := h.create(sess, oneCoffee)
			no := res.Order.OutTradeNo
			if o, err := h.svc.Close(h.ctx, no); err != nil || o.Status != merchant.OrderClosed {
				t.Fatalf("close: %+v %v", o, err)
			}
			h.payAtSim(sess, res) // the payment in flight when the close landed
			if at := h.notifyTries("pay", no); api == apiV3 && (len(at) != 1 || !at[0].Acked) {
				t.Fatalf("tries %+v", at)
			}
			o := h.order(no)
			if o.Status != merchant.OrderPaid {
				t.Fatalf("a payment of a closed order left it %s", o.Status)
			}
			if an := h.anomalies(no); len(an) != 1 || an[0].Kind != merchant.AnomalyLatePayment {
				t.Fatalf("anomalies %+v", an)
			}
			ev := h.events(no)
			if len(ev) != 2 || ev[0].To != merchant.OrderClosed || ev[1].From != merchant.OrderClosed || ev[1].To != merchant.OrderPaid {
				t.Fatalf("events %+v", ev)
			}
			if n := h.paidEvents(no); n != 1 {
				t.Fatalf("%d order.paid events", n)
			}
			h.finish()
		})
	})
}
