package apiv3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestParseNotifyPayment(t *testing.T) {
	c := newTestClient(t, newFake(t))
	body := notifyBody(t, "TRANSACTION.SUCCESS", "transaction", "fdasflkja484", ourTransaction)
	n, err := c.ParseNotify(context.Background(), signedHeader(t, body, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	want := &Notify{
		ID: "EV-2018022511223320873", CreateTime: time.Date(2015, 5, 20, 13, 29, 35, 0, wxpay.China),
		EventType: EventTransactionSuccess, ResourceType: "encrypt-resource", Summary: "支付成功", OriginalType: "transaction",
		Transaction: &Transaction{
			AppID: testAppID, MchID: testMchID, OutTradeNo: testOutTradeNo, TransactionID: testTransactionID,
			TradeType: wxpay.TradeTypeJSAPI, TradeState: wxpay.TradeStateSuccess, TradeStateDesc: "支付成功", BankType: "OTHERS",
			SuccessTime: time.Date(2018, 6, 8, 10, 34, 56, 0, wxpay.China), Payer: Payer{OpenID: testOpenID},
			Amount: TransactionAmount{Total: 100, PayerTotal: 100, Currency: "CNY", PayerCurrency: "CNY"},
		},
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("got  %+v\nwant %+v", n, want)
	}
}

// Vector D2 itself, inside a notify: the resource opens to the 431 bytes
// of protocol.md §14 (for merchant 1230000109, so the client of that
// merchant accepts it and ours refuses it as another merchant's).
func TestParseNotifyVectorD2(t *testing.T) {
	body := []byte(`{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功","resource":{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"` + vecD2CT + `","associated_data":"transaction","nonce":"fdasflkja484"}}`)
	cfg := withVerifier(t, testConfig(t))
	cfg.MchID = "1230000109"
	c, err := NewClient(cfg, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.ParseNotify(context.Background(), signedHeader(t, body, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	if n.Transaction.MchID != "1230000109" || n.Transaction.Amount.Total != 100 || n.Transaction.TradeStateDesc != "支付成功" {
		t.Errorf("%+v", n.Transaction)
	}
	ours := newTestClient(t, newFake(t))
	_, err = ours.ParseNotify(context.Background(), signedHeader(t, body, 0), body)
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Reason != ReasonMerchant || ne.Notify == nil || ne.Notify.Transaction.MchID != "1230000109" {
		t.Errorf("another merchant's notify: %v", err)
	}
}

const vecD2CT = "SfrgsVvyEVJl1/OwG+xLMMAoiAmH4s2aJCV0F/D5XKrg6632Rng8OsJfpUGNkU14eNwHGrWv9T8KWTkggRSwZ1RX8/bp8nfrNYCXoxJovont+m3z14qQQux9TDJfZGFXhd7JzzgDrwapy+sGQaYhv9kvVYN+/W5AC8G++UJ/+TedM/yvVAR+HDwBFqAp6+oypTIAsYtVvsWQ0O4F+ZuuZi0CJYXSGkD1UtDd2DKDaMTfA8Pnel9HJ5PhRiBPbRUHCwvzJjanu5qL3kxOxGvInZpPRGuVqGgO6rh97GLIceEAgJWwlF+MEJp8z/mVXobguV/N8y8q68mjNS5rHcXnXrCvcJLEQSCwaHrRZ+M37jSg2SuLM1ZXJLgtRC7L9X99FMWOnuSj76MXkqrcvqFI9R3HgZYtQoaPE06/1D14PMHvz1CteeQCfm8Qf7lwG5v5RLF4hYb/2YAdcZiYUL+IJFUdJlS/saekTJ6b8k5Oblap19hiM7wr/gds47Fmgl4jVfhmelDcO6yhCLk+77uSg9NPHwcZXkIWp/e4BYOvOzvoHKoiuROL16T6qJyXLzm4dx7K+Tw3Pr6NYGEncnD1"

func TestParseNotifyRefund(t *testing.T) {
	c := newTestClient(t, newFake(t))
	for wire, want := range map[string]wxpay.RefundStatus{"SUCCESS": wxpay.RefundStatusSuccess, "ABNORMAL": wxpay.RefundStatusChange, "CLOSED": wxpay.RefundStatusClosed} {
		res := []byte(`{"mchid":"1900009191","transaction_id":"4200000000000000000000000001","out_trade_no":"1217752501201407033233368018",
"refund_id":"50000000382019052709732678859","out_refund_no":"R1217752501201407033233368018","refund_status":"` + wire + `",
"success_time":"2018-06-08T10:34:56+08:00","user_received_account":"招商银行信用卡0403","amount":{"total":999,"refund":999,"payer_total":999,"payer_refund":999}}`)
		body := notifyBody(t, "REFUND."+wire, "refund", "fdasflkja484", res)
		n, err := c.ParseNotify(context.Background(), signedHeader(t, body, 0), body)
		if err != nil {
			t.Fatal(err)
		}
		r := n.Refund
		if n.Transaction != nil || r == nil || r.Status != want || r.OutRefundNo != testOutRefundNo || r.Amount.Refund != 999 || r.UserReceivedAccount != "招商银行信用卡0403" {
			t.Errorf("%s: %+v", wire, r)
		}
	}
	// Another event keeps its plaintext.
	body := notifyBody(t, "PROFITSHARING.SUCCESS", "profitsharing", "fdasflkja484", []byte(`{"x":1}`))
	n, err := c.ParseNotify(context.Background(), signedHeader(t, body, 0), body)
	if err != nil || string(n.Plaintext) != `{"x":1}` {
		t.Errorf("%+v %v", n, err)
	}
}

// reliability.md A1, N1, N5, N7, N12, F2, X10: every refusal has its reason.
func TestParseNotifyRefusals(t *testing.T) {
	c := newTestClient(t, newFake(t))
	ctx := context.Background()
	good := notifyBody(t, "TRANSACTION.SUCCESS", "transaction", "fdasflkja484", ourTransaction)
	goodH := signedHeader(t, good, 0)
	// signed makes a notify whose resource is res, validly signed.
	signed := func(res []byte, nonce string) (http.Header, []byte) {
		b := notifyBody(t, "TRANSACTION.SUCCESS", "transaction", nonce, res)
		return signedHeader(t, b, 0), b
	}
	tx := func(old, new string) []byte { return bytes.Replace(ourTransaction, []byte(old), []byte(new), 1) }
	type tc struct {
		name   string
		h      http.Header
		body   []byte
		reason NotifyReason
		is     error
	}
	cases := []tc{
		{name: "no headers (N1)", h: http.Header{}, body: good, reason: ReasonHeaders, is: ErrMissingHeader},
		{name: "replayed 6 min later (N5)", h: signedHeader(t, good, -6*time.Minute), body: good, reason: ReasonTimestamp, is: ErrTimestamp},
		{name: "301 s ahead", h: signedHeader(t, good, 301*time.Second), body: good, reason: ReasonTimestamp},
		{name: "probe (N7)", h: func() http.Header {
			h := goodH.Clone()
			h.Set(HeaderSignature, "WECHATPAY/SIGNTEST/"+h.Get(HeaderSignature))
			return h
		}(), body: good, reason: ReasonProbe, is: ErrProbeSignature},
		{name: "re-serialised (N12)", h: goodH, body: reserialise(t, good), reason: ReasonSignature, is: ErrSignature},
		{name: "unknown serial (N11)", h: func() http.Header { h := goodH.Clone(); h.Set(HeaderSerial, "PUB_KEY_ID_0"); return h }(), body: good, reason: ReasonSerial, is: ErrUnknownSerial},
		{name: "too large", h: goodH, body: bytes.Repeat([]byte(" "), MaxNotifySize+1), reason: ReasonMalformed},
	}
	add := func(name string, res []byte, nonce string, reason NotifyReason, is error) {
		h, b := signed(res, nonce)
		cases = append(cases, tc{name, h, b, reason, is})
	}
	// F2: a signed body whose resource is bad reaches the decryptor.
	add("nonce 11", ourTransaction, "fdasflkja48", ReasonDecrypt, wxcrypto.ErrAEADNonce)
	add("nonce 13", ourTransaction, "fdasflkja4844", ReasonDecrypt, wxcrypto.ErrAEADNonce)
	add("nonce 0", ourTransaction, "", ReasonDecrypt, wxcrypto.ErrAEADNonce)
	// X10, validly signed and encrypted.
	add("total 1.5", tx(`"total":100`, `"total":1.5`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("total 1e2", tx(`"total":100`, `"total":1e2`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("total -100", tx(`"total":100`, `"total":-100`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("total as string", tx(`"total":100`, `"total":"100"`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("total huge", tx(`"total":100`, `"total":99999999999999999999`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("total 0 and paid", tx(`"total":100`, `"total":0`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("duplicate total", tx(`"total":100`, `"total":1,"total":100`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("duplicate out_trade_no", tx(`"out_trade_no"`, `"out_trade_no":"X","out_trade_no"`), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("trailing data", append(bytes.Clone(ourTransaction), `{}`...), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("invalid UTF-8", tx(`支付成功`, "\xff\xfe"), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("no trade_state", tx(`"trade_state":"SUCCESS",`, ``), "fdasflkja484", ReasonMalformed, ErrMalformedJSON)
	add("another merchant (N6)", tx(`"mchid":"1900009191"`, `"mchid":"1900000109"`), "fdasflkja484", ReasonMerchant, nil)
	// The envelope.
	env := func(name string, mutate func(m map[string]any), reason NotifyReason) {
		var m map[string]any
		json.Unmarshal(good, &m)
		mutate(m)
		b, _ := json.Marshal(m)
		cases = append(cases, tc{name, signedHeader(t, b, 0), b, reason, nil})
	}
	env("wrong AAD", func(m map[string]any) { m["resource"].(map[string]any)["associated_data"] = "certificate" }, ReasonDecrypt)
	env("truncated tag", func(m map[string]any) {
		r := m["resource"].(map[string]any)
		r["ciphertext"] = r["ciphertext"].(string)[:len(r["ciphertext"].(string))-8]
	}, ReasonDecrypt)
	env("ciphertext not base64", func(m map[string]any) { m["resource"].(map[string]any)["ciphertext"] = "!!!!" }, ReasonDecrypt)
	env("algorithm", func(m map[string]any) { m["resource"].(map[string]any)["algorithm"] = "AEAD_AES_128_GCM" }, ReasonMalformed)
	env("no resource", func(m map[string]any) { delete(m, "resource") }, ReasonMalformed)
	env("no id", func(m map[string]any) { delete(m, "id") }, ReasonMalformed)
	env("resource not an object", func(m map[string]any) { m["resource"] = "x" }, ReasonMalformed)
	for _, raw := range []string{``, `[]`, `{`, `{"id":"a","id":"b"}`, `null`} {
		cases = append(cases, tc{"envelope " + raw, signedHeader(t, []byte(raw), 0), []byte(raw), ReasonMalformed, nil})
	}
	for _, c2 := range cases {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", c2.name, r)
				}
			}()
			n, err := c.ParseNotify(ctx, c2.h, c2.body)
			var ne *NotifyError
			if !errors.As(err, &ne) {
				t.Errorf("%s: %+v, %v", c2.name, n, err)
				return
			}
			if ne.Reason != c2.reason {
				t.Errorf("%s: reason %s, want %s (%v)", c2.name, ne.Reason, c2.reason, err)
			}
			if c2.is != nil && !errors.Is(err, c2.is) {
				t.Errorf("%s: %v, want %v", c2.name, err, c2.is)
			}
			if n != nil {
				t.Errorf("%s: a notify with the error", c2.name)
			}
			if strings.Contains(err.Error(), string(testAPIv3Key)) || strings.Contains(err.Error(), "oUpF8uMuAJO") {
				t.Errorf("%s: the error shows a secret or the content: %v", c2.name, err)
			}
		}()
	}
}

// reserialise decodes and re-encodes a body, as a framework would.
func reserialise(t *testing.T, b []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(m, "", " ")
	return out
}

// FuzzParseNotify: random bodies and headers never panic, and nothing
// random verifies (reliability.md Part 3). The seeds include a valid
// notify, whose mutations exercise the JSON and the decryption after a
// signature check that the fuzzer cannot pass — so a second target,
// FuzzNotifyResource, fuzzes what lies behind the signature.
func FuzzParseNotify(f *testing.F) {
	c := newTestClient(f, newFake(f))
	good := notifyBody(f, "TRANSACTION.SUCCESS", "transaction", "fdasflkja484", ourTransaction)
	h := signedHeader(f, good, 0)
	f.Add(good, h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature), h.Get(HeaderSerial))
	f.Add([]byte(`{}`), "", "", "", "")
	f.Add(good, h.Get(HeaderTimestamp), h.Get(HeaderNonce), "WECHATPAY/SIGNTEST/x", h.Get(HeaderSerial))
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig, serial string) {
		hh := http.Header{HeaderTimestamp: {ts}, HeaderNonce: {nonce}, HeaderSignature: {sig}, HeaderSerial: {serial}}
		n, err := c.ParseNotify(context.Background(), hh, body)
		if err == nil {
			if !bytes.Equal(body, good) || sig != h.Get(HeaderSignature) {
				t.Fatalf("a forged notify verified: %q", body)
			}
			if n.Transaction == nil {
				t.Fatal("no transaction")
			}
		}
	})
}

// FuzzNotifyResource fuzzes the decrypted resource of a validly signed,
// validly encrypted notify — what an attacker cannot produce but WeChat
// (or the simulator) could send: never a panic; what decodes has a
// positive amount and is valid JSON.
func FuzzNotifyResource(f *testing.F) {
	c := newTestClient(f, newFake(f))
	aead, _ := wxcrypto.NewAEAD(testAPIv3Key)
	f.Add(ourTransaction, "TRANSACTION.SUCCESS")
	f.Add([]byte(fullTransaction), "TRANSACTION.SUCCESS")
	f.Add([]byte(`{"mchid":"1900009191","out_refund_no":"R1","refund_id":"5","refund_status":"SUCCESS","amount":{"refund":1}}`), "REFUND.SUCCESS")
	f.Fuzz(func(t *testing.T, res []byte, event string) {
		ct, _ := aead.Seal("fdasflkja484", "transaction", res)
		body := []byte(`{"id":"EV-1","event_type":` + strconvQuote(event) + `,"resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"fdasflkja484","associated_data":"transaction","ciphertext":"` + ct + `"}}`)
		// Signing per input is slow (RSA); verify the path after the
		// signature directly.
		n, err := c.decodeNotify(body)
		if err != nil {
			return
		}
		if n.Transaction != nil {
			if n.Transaction.Amount.Total < 0 || (n.Transaction.Paid() && n.Transaction.Amount.Total <= 0) {
				t.Fatalf("amount %d accepted", n.Transaction.Amount.Total)
			}
			if !json.Valid(res) {
				t.Fatalf("the strict decoder accepted invalid JSON: %q", res)
			}
		}
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
