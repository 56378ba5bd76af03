package apiv2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wxpay-go/wxpay"
)

// I9: with a recognisable canary key, nothing the client logs, returns or
// prints contains it: not the debug log, not an error, not a diagnosis, not
// the client itself.
func TestSecretsNeverLeak(t *testing.T) {
	const canary = "CANARY0key0123456789abcdefABCDEF" // 32 characters, as an API key
	canaryPEM := string(readFile(t, keyFile))
	pemBody := strings.Split(canaryPEM, "\n")[1] // a line of the private key

	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	primary, backup := newServer(t), newServer(t)
	primary.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", 502) })
	backup.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
		answerOK(t, w, wxpay.SignTypeMD5, canary, map[string]string{"trade_state": "SUCCESS"})
	})
	primary.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, canary)
		switch f["out_trade_no"] {
		case "T000000000001":
			answerOK(t, w, wxpay.SignTypeMD5, canary, map[string]string{"prepay_id": testPrepayID})
		case "T000000000002":
			answerReturnFail(w, "签名错误")
		case "T000000000003":
			answerCode(t, w, wxpay.SignTypeMD5, canary, ErrSignError, nil)
		case "T000000000004":
			answerOK(t, w, wxpay.SignTypeMD5, otherKey, map[string]string{"prepay_id": testPrepayID}) // does not verify
		default:
			hang(r)
		}
	})
	primary.handle("/secapi/pay/refund", func(w http.ResponseWriter, r *http.Request) {
		answerOK(t, w, wxpay.SignTypeMD5, canary, map[string]string{"out_refund_no": "R2026112900001", "refund_fee": "1"})
	})

	cfg := testConfig()
	cfg.APIKey = canary
	cfg.AppSecret = "CANARYappsecret0123456789abcdef0"
	cfg.CertPEM, cfg.KeyPEM = readFile(t, certFile), wxpay.Secret(readFile(t, keyFile))
	c, err := NewClient(cfg, WithBaseURL(primary.URL), WithFailover(backup.URL), WithLogger(logger), WithNonce(fixedNonce))
	if err != nil {
		t.Fatal(err)
	}

	var outputs []string
	record := func(err error) {
		if err == nil {
			return
		}
		outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		var e *Error
		if errors.As(err, &e) && e.Diagnosis != nil {
			d, _ := json.Marshal(e.Diagnosis)
			outputs = append(outputs, e.Diagnosis.String(), fmt.Sprintf("%+v", *e.Diagnosis), string(d))
		}
		var ne *NotifyError
		if errors.As(err, &ne) && ne.Diagnosis != nil {
			outputs = append(outputs, ne.Diagnosis.String())
		}
	}
	ctx := context.Background()
	for _, no := range []string{"T000000000001", "T000000000002", "T000000000003", "T000000000004"} {
		r := jsapiOrder()
		r.OutTradeNo = no
		_, err := c.UnifiedOrder(ctx, r)
		record(err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 50e6)
	r := jsapiOrder()
	r.OutTradeNo = "T000000000005"
	_, err = c.UnifiedOrder(ctx2, r)
	cancel()
	record(err)
	_, err = c.OrderQuery(ctx, &OrderQueryRequest{OutTradeNo: "T2026112900001"}) // fails over, logged
	record(err)
	r2 := testRefund()
	r2.RefundFee = 1
	_, err = c.Refund(ctx, r2)
	record(err)
	p, err := c.PayParams(testPrepayID)
	record(err)
	p.AppID = ""
	_, d := VerifyPayParams(p, wxpay.Secret(canary))
	outputs = append(outputs, d.String())

	// Notifies: refused ones are logged by the handler.
	h := c.PayNotifyHandler(func(context.Context, *PayNotify) error { return errors.New("boom") },
		NotifyHandlerOptions{Logger: logger})
	for _, body := range [][]byte{
		signedXML(t, wxpay.SignTypeMD5, otherKey, payNotify()),
		signedXML(t, wxpay.SignTypeMD5, canary, payNotify()),
		[]byte("<xml>"),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notify", bytes.NewReader(body)))
		outputs = append(outputs, rec.Body.String())
		_, err := c.ParsePayNotify(body)
		record(err)
	}
	_, err = c.ParseRefundNotify(refundNotify(t, vectorC2, nil))
	record(err)

	// The client and its config, printed whole.
	type holder struct{ Client *Client }
	outputs = append(outputs, fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c),
		fmt.Sprintf("%+v", holder{c}), fmt.Sprintf("%+v", c.cfg.APIKey))
	logger.Debug("client", "c", c)
	mu.Lock()
	outputs = append(outputs, logs.String())
	mu.Unlock()

	if !strings.Contains(logs.String(), `"msg":"wxpay v2 call"`) || !strings.Contains(logs.String(), "trying the backup") ||
		!strings.Contains(logs.String(), "notify refused") {
		t.Errorf("the debug log lacks the expected lines:\n%s", logs.String())
	}
	if want := "apiv2.Client{AppID: wx426b3015555a46be, MchID: 1225312702, SignType: MD5, Host: " + primary.URL + "}"; fmt.Sprint(c) != want {
		t.Errorf("client prints as %s", c)
	}
	keyBytes := strings.Trim(fmt.Sprint([]byte(cfg.KeyPEM.Reveal())[:24]), "[]")
	for _, o := range outputs {
		for _, secret := range []string{canary, string(cfg.AppSecret), pemBody, keyBytes} {
			if strings.Contains(o, secret) {
				t.Fatalf("secret %.12s… leaked in:\n%s", secret, o)
			}
		}
	}
}
