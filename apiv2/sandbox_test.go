package apiv2

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wxpay-go/wxpay"
)

const sandboxKey = "sandboxsignkey0123456789abcdef01"

// serveSignKey answers getsignkey (signed with the production key, MD5, no
// appid) with sandboxKey, and counts the calls.
func serveSignKey(t *testing.T, s *wxServer) *atomic.Int64 {
	var n atomic.Int64
	s.handle("/sandboxnew/pay/getsignkey", func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, map[string]string{"mch_id": testMchID, "nonce_str": testNonce})
		writeXML(w, unsignedXML(t, map[string]string{"return_code": "SUCCESS", "return_msg": "ok", "mch_id": testMchID,
			"sandbox_signkey": sandboxKey}))
	})
	return &n
}

func TestSandboxSignKey(t *testing.T) {
	c, s := setup(t)
	n := serveSignKey(t, s)
	k, err := c.SandboxSignKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if k.Reveal() != sandboxKey || fmt.Sprint(k) != "REDACTED" || n.Load() != 1 {
		t.Fatalf("%q %d", k.Reveal(), n.Load())
	}
}

func TestSandboxSignKeyNoKey(t *testing.T) {
	c, s := setup(t)
	s.handle("/sandboxnew/pay/getsignkey", func(w http.ResponseWriter, r *http.Request) {
		writeXML(w, []byte("<xml><return_code>SUCCESS</return_code></xml>"))
	})
	if _, err := c.SandboxSignKey(context.Background()); err == nil || !strings.Contains(err.Error(), "sandbox_signkey") {
		t.Fatalf("%v", err)
	}
}

// WithSandbox: calls go to /sandboxnew/…, signed with MD5 and the sandbox
// key, which is fetched once; refund needs no certificate there.
func TestSandboxMode(t *testing.T) {
	cfg := testConfig() // no certificate
	cfg.SignType = wxpay.SignTypeHMACSHA256
	c, s := setupConfig(t, cfg, WithSandbox())
	if c.SignType() != wxpay.SignTypeMD5 {
		t.Errorf("sandbox sign type %s", c.SignType())
	}
	n := serveSignKey(t, s)
	s.handle("/sandboxnew/pay/micropay", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, sandboxKey)
		if f["auth_code"] != "134567890123456789" {
			t.Errorf("%v", f)
		}
		answerOK(t, w, wxpay.SignTypeMD5, sandboxKey, map[string]string{"trade_type": "MICROPAY", "out_trade_no": f["out_trade_no"],
			"transaction_id": "4200000001202611290000000001", "total_fee": f["total_fee"], "cash_fee": f["total_fee"]})
	})
	s.handle("/sandboxnew/pay/refund", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, sandboxKey)
		answerOK(t, w, wxpay.SignTypeMD5, sandboxKey, map[string]string{"out_refund_no": f["out_refund_no"], "refund_fee": f["refund_fee"]})
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := c.MicroPay(context.Background(), testMicroPay()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := c.Refund(context.Background(), testRefund()); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Errorf("getsignkey called %d times", n.Load())
	}
	// An answer signed with the production key does not verify in sandbox
	// mode.
	s.reset()
	s.handle("/sandboxnew/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"trade_state": "SUCCESS"})
	})
	_, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "M2026112900001"})
	wantIs(t, err, ErrResponseSignature)
}

// A getsignkey failure fails the call, and the key is fetched again next
// time.
func TestSandboxSignKeyFailure(t *testing.T) {
	c, s := setup(t, WithSandbox())
	s.handle("/sandboxnew/pay/getsignkey", func(w http.ResponseWriter, r *http.Request) {
		answerReturnFail(w, "签名错误")
	})
	_, err := c.MicroPay(context.Background(), testMicroPay())
	wantIs(t, err, ErrSignError)
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("the key is in the error")
	}
	s.reset()
	n := serveSignKey(t, s)
	s.handle("/sandboxnew/pay/micropay", func(w http.ResponseWriter, r *http.Request) {
		readRequest(t, r, wxpay.SignTypeMD5, sandboxKey)
		answerOK(t, w, wxpay.SignTypeMD5, sandboxKey, map[string]string{"total_fee": "1200"})
	})
	if _, err := c.MicroPay(context.Background(), testMicroPay()); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Errorf("%d", n.Load())
	}
}
