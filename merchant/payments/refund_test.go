package payments_test

import (
	"bytes"
	"crypto/aes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

func (h *harness) refund(no string) *merchant.Refund {
	h.t.Helper()
	r, err := h.base.Refund(h.ctx, no)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// TestD1ConcurrentRefunds: 20 refunds of 60 % of a paid order at once:
// exactly one is accepted, the others are refused as more than is left;
// WeChat sees one.
func TestD1ConcurrentRefunds(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		o := h.paidOrder(sess, oneCoffee)
		fee := o.TotalFee * 6 / 10
		var accepted []*merchant.Refund
		results := make([]*merchant.Refund, 20)
		errs := parallel(20, func(i int) error {
			r, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: fee, Reason: "cancel"})
			results[i] = r
			return err
		})
		for i, err := range errs {
			switch {
			case err == nil:
				accepted = append(accepted, results[i])
			case errCode(err) != merchant.EINVALID || !strings.Contains(err.Error(), "refundable"):
				t.Fatalf("refund %d: %v", i, err)
			}
		}
		if len(accepted) != 1 || accepted[0].Status != merchant.RefundProcessing {
			t.Fatalf("%d accepted: %+v", len(accepted), accepted)
		}
		if got := h.order(o.OutTradeNo); got.RefundedFee != fee || got.Status != merchant.OrderRefund {
			t.Fatalf("order %s refunded %d", got.Status, got.RefundedFee)
		}
		if n := len(h.sim.Refunds(mchID)); n != 1 {
			t.Fatalf("WeChat has %d refunds", n)
		}
		// What is left can still be refunded, once.
		if _, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: o.TotalFee - fee}); err != nil {
			t.Fatal(err)
		}
		_, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 1})
		wantCode(t, err, merchant.EINVALID)
		h.finish()
	})
}

// TestD2RefundNumberIdempotent: out_refund_no is stored before the first
// call and every retry reuses it with the same amount; WeChat executes each
// number at most once.
func TestD2RefundNumberIdempotent(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		sess := h.user()
		for _, kind := range []wxsim.FaultKind{wxsim.FaultDropAfterCommit, wxsim.FaultSystemErrorAfterCommit,
			wxsim.FaultDropBeforeCommit, wxsim.FaultSystemError, wxsim.FaultHTTP500} {
			o := h.paidOrder(sess, oneCoffee)
			h.inject(wxsim.Fault{API: "refund", Kind: kind})
			rf, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 1000})
			if err != nil || rf.Status != merchant.RefundReserved {
				t.Fatalf("%s: %+v %v", kind, rf, err)
			}
			// The same number with another amount is refused here.
			_, err = h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 999, OutRefundNo: rf.OutRefundNo})
			wantCode(t, err, merchant.ECONFLICT)
			// The same request again is the same refund.
			again, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 1000, OutRefundNo: rf.OutRefundNo})
			if err != nil || again.OutRefundNo != rf.OutRefundNo {
				t.Fatalf("%s: the same refund again: %+v %v", kind, again, err)
			}
			h.advance(31 * time.Second)
			h.run(river.KindRefunds)
			if r := h.refund(rf.OutRefundNo); r.Status != merchant.RefundProcessing && r.Status != merchant.RefundSuccess {
				t.Fatalf("%s: after the job %s", kind, r.Status)
			}
			wantExecutions(t, h, rf.OutRefundNo, 1)
		}

		// The process dies after the reservation, before the call: the
		// refund job submits the stored number.
		o := h.paidOrder(sess, oneCoffee)
		r, _, err := h.base.ReserveRefund(h.ctx, &merchant.Refund{OutRefundNo: "RFCRASH0000000001", OutTradeNo: o.OutTradeNo,
			RefundFee: 500, Status: merchant.RefundReserved}, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantExecutions(t, h, r.OutRefundNo, 0)
		h.advance(31 * time.Second)
		h.run(river.KindRefunds)
		if r := h.refund(r.OutRefundNo); r.Status != merchant.RefundProcessing {
			t.Fatalf("after the job: %s", r.Status)
		}
		wantExecutions(t, h, r.OutRefundNo, 1)
		h.finish()
		for _, r := range h.sim.Refunds(mchID) {
			if r.Executions != 1 {
				t.Fatalf("refund %s executed %d times (%d requests)", r.OutRefundNo, r.Executions, r.Requests)
			}
		}
	})
}

// TestD3RefundConfirmed: a refund stays PROCESSING until WeChat says how it
// ended — SUCCESS, REFUNDCLOSE (the amount is released) or CHANGE (for a
// person) — through its notify or, when the notify is lost, the refund
// job's query.
func TestD3RefundConfirmed(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api), withSim(func(c *wxsim.Config) { c.RefundDelay = 48 * time.Hour }))
		sess := h.user()
		type tc struct {
			end  wxpay.RefundStatus
			want merchant.RefundStatus
			lost bool // the refund notify is dropped
		}
		cases := []tc{
			{wxpay.RefundStatusSuccess, merchant.RefundSuccess, false},
			{wxpay.RefundStatusClosed, merchant.RefundClosed, false},
			{wxpay.RefundStatusChange, merchant.RefundChange, false},
			{wxpay.RefundStatusSuccess, merchant.RefundSuccess, true},
			{wxpay.RefundStatusClosed, merchant.RefundClosed, true},
			{wxpay.RefundStatusChange, merchant.RefundChange, true},
		}
		var refunds []*merchant.Refund
		for range cases {
			o := h.paidOrder(sess, oneCoffee)
			rf, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 1500})
			if err != nil || rf.Status != merchant.RefundProcessing {
				t.Fatalf("%+v %v", rf, err)
			}
			refunds = append(refunds, rf)
		}
		// A day PROCESSING: the job's queries change nothing.
		h.advance(24 * time.Hour)
		h.run(river.KindRefunds)
		for _, rf := range refunds {
			if r := h.refund(rf.OutRefundNo); r.Status != merchant.RefundProcessing {
				t.Fatalf("after a day: %s", r.Status)
			}
		}
		for i, c := range cases {
			rf := refunds[i]
			if c.lost {
				h.sim.NotifyDrop(1)
			}
			if err := h.sim.CompleteRefund(mchID, rf.OutRefundNo, c.end); err != nil {
				t.Fatal(err)
			}
			h.sim.Flush()
			if c.lost {
				if r := h.refund(rf.OutRefundNo); r.Status != merchant.RefundProcessing {
					t.Fatalf("no notify, yet %s", r.Status)
				}
				h.advance(31 * time.Second)
				h.run(river.KindRefunds)
			}
			r := h.refund(rf.OutRefundNo)
			if r.Status != c.want {
				t.Fatalf("%s (lost notify %v): %s here", c.end, c.lost, r.Status)
			}
			o := h.order(rf.OutTradeNo)
			switch c.want {
			case merchant.RefundClosed:
				if o.RefundedFee != 0 || o.Refundable() != o.TotalFee {
					t.Fatalf("a closed refund still holds %d fen", o.RefundedFee)
				}
			default:
				if o.RefundedFee != rf.RefundFee {
					t.Fatalf("order holds %d fen", o.RefundedFee)
				}
			}
		}
		if !strings.Contains(h.logs.String(), "refund is abnormal (CHANGE)") {
			t.Fatal("no ERROR line for a CHANGE refund")
		}
		h.finish()
	})
}

// TestD4ForgedRefundNotify: a v2 refund notify carries no sign, and ECB
// gives req_info no integrity: random, badly padded, spliced, another
// merchant's or mismatching req_info changes no refund (no panic either);
// one that names a refund of ours changes it only as WeChat's refund query
// says.
func TestD4ForgedRefundNotify(t *testing.T) {
	eachStore(t, func(t *testing.T, sk storeKind) {
		h := newHarness(t, sk)
		sess := h.user()
		h.front.holdNotifies("refund", true)
		var rfs []*merchant.Refund
		for range 3 {
			o := h.paidOrder(sess, oneCoffee)
			rf, err := h.svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: 1200 + int64(len(rfs))})
			if err != nil {
				t.Fatal(err)
			}
			rfs = append(rfs, rf)
		}
		// Two of them end at WeChat (their notifies held: captured, not
		// applied); the third stays PROCESSING.
		for _, rf := range rfs[:2] {
			if err := h.sim.CompleteRefund(mchID, rf.OutRefundNo, wxpay.RefundStatusSuccess); err != nil {
				t.Fatal(err)
			}
		}
		h.sim.Flush()
		captured := h.front.refundBodies()
		if len(captured) < 2 {
			t.Fatalf("%d refund notifies captured", len(captured))
		}
		g1, g2 := fields(t, captured[0]), fields(t, captured[1])
		r1, r2 := get(g1, "req_info"), get(g2, "req_info")
		c1, _ := base64.StdEncoding.DecodeString(r1)
		c2, _ := base64.StdEncoding.DecodeString(r2)

		// req_info as an attacker with our key would write it (for the
		// third refund, claiming SUCCESS): it must be confirmed by a query.
		third := rfs[2]
		plain := "<root><out_refund_no><![CDATA[" + third.OutRefundNo + "]]></out_refund_no><out_trade_no><![CDATA[" +
			third.OutTradeNo + "]]></out_trade_no><refund_fee><![CDATA[1202]]></refund_fee><total_fee><![CDATA[1500]]></total_fee>" +
			"<refund_id><![CDATA[50300000000000000000000000001]]></refund_id><refund_status><![CDATA[SUCCESS]]></refund_status>" +
			"<success_time><![CDATA[2026-11-28 10:00:05]]></success_time><transaction_id><![CDATA[x]]></transaction_id></root>"
		mismatch := strings.Replace(plain, "<![CDATA[1202]]>", "<![CDATA[1]]>", 1)
		unknown := strings.Replace(plain, third.OutRefundNo, "RFNEVERMADE000001", 1)

		spliced := func(a, b []byte) string {
			out := append([]byte(nil), a...)
			n := min(len(a), len(b)) / aes.BlockSize
			for i := 1; i < n; i += 2 { // every other block from b
				copy(out[i*aes.BlockSize:(i+1)*aes.BlockSize], b[i*aes.BlockSize:(i+1)*aes.BlockSize])
			}
			return base64.StdEncoding.EncodeToString(out)
		}
		random := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a, 0x13, 0x77, 0xe1}, 16))
		badPadding := base64.StdEncoding.EncodeToString(ecbEncryptNoPad(canaryAPIKey, bytes.Repeat([]byte("A"), 32)))
		forms := map[string]string{
			"random base64":               random,
			"not base64":                  "%%%not-base64%%%",
			"not a whole block":           base64.StdEncoding.EncodeToString(c1[:len(c1)-3]),
			"bad padding":                 badPadding,
			"blocks swapped":              spliced(c1, c2),
			"blocks swapped, other order": spliced(c2, c1),
			"truncated":                   base64.StdEncoding.EncodeToString(c1[:len(c1)/2/aes.BlockSize*aes.BlockSize]),
			"another merchant's key":      wxcrypto.EncryptReqInfo("ANOTHERmerchantKEY00000000000001", []byte(plain)),
			"our key, wrong amount":       wxcrypto.EncryptReqInfo(canaryAPIKey, []byte(mismatch)),
			"our key, unknown refund":     wxcrypto.EncryptReqInfo(canaryAPIKey, []byte(unknown)),
			"our key, claims SUCCESS":     wxcrypto.EncryptReqInfo(canaryAPIKey, []byte(plain)),
		}
		truth := func(no string) merchant.RefundStatus {
			for _, r := range h.sim.Refunds(mchID) {
				if r.OutRefundNo == no {
					switch r.Status {
					case wxpay.RefundStatusSuccess:
						return merchant.RefundSuccess
					case wxpay.RefundStatusClosed:
						return merchant.RefundClosed
					case wxpay.RefundStatusChange:
						return merchant.RefundChange
					}
					return merchant.RefundProcessing
				}
			}
			return ""
		}
		for name, reqInfo := range forms {
			before := map[string]merchant.RefundStatus{}
			for _, rf := range rfs {
				before[rf.OutRefundNo] = h.refund(rf.OutRefundNo).Status
			}
			body := encode(t, set(g1, "req_info", reqInfo))
			err := h.svc.HandleRefundNotify(h.ctx, nil, body)
			if name != "our key, claims SUCCESS" && err == nil {
				t.Fatalf("%s: accepted", name)
			}
			for _, rf := range rfs {
				got := h.refund(rf.OutRefundNo).Status
				if got != before[rf.OutRefundNo] && got != truth(rf.OutRefundNo) {
					t.Fatalf("%s: refund %s moved %s → %s; WeChat says %s", name, rf.OutRefundNo, before[rf.OutRefundNo], got, truth(rf.OutRefundNo))
				}
			}
			if got := h.refund(third.OutRefundNo).Status; got != merchant.RefundProcessing {
				t.Fatalf("%s: the third refund is %s, WeChat has it PROCESSING", name, got)
			}
			if o := h.order(third.OutTradeNo); o.RefundedFee != third.RefundFee {
				t.Fatalf("%s: the order holds %d fen", name, o.RefundedFee)
			}
		}
		// One refund_mismatch anomaly per refund number the decryptable
		// forgeries named (the wrong amount, the unknown refund).
		if an := h.anomalies(third.OutTradeNo); len(an) != 2 || an[0].Kind != merchant.AnomalyRefundMismatch || an[1].Kind != merchant.AnomalyRefundMismatch {
			t.Fatalf("anomalies %+v", an)
		}
		// A refund notify naming another merchant in the clear is refused.
		err := h.svc.HandleRefundNotify(h.ctx, nil, encode(t, set(g1, "mch_id", "1900000109")))
		if !errors.Is(err, merchant.ErrBadNotify) {
			t.Fatalf("another mch_id: %v", err)
		}
		h.finish()
	})
}

// ecbEncryptNoPad encrypts whole blocks with the req_info key (AES-256-ECB
// under the hex MD5 of the API key) without PKCS#7 padding, so that the
// decrypted text ends in a bad pad.
func ecbEncryptNoPad(apiKey string, plain []byte) []byte {
	sum := md5.Sum([]byte(apiKey))
	key := []byte(hex.EncodeToString(sum[:]))
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(plain))
	for i := 0; i < len(plain); i += aes.BlockSize {
		block.Encrypt(out[i:i+aes.BlockSize], plain[i:i+aes.BlockSize])
	}
	return out
}
