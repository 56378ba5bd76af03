package apiv3

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// benchBody is a realistic JSAPI order body (≈330 bytes).
var benchBody = []byte(`{"appid":"wxd678efh567hg6787","mchid":"1900009191","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","time_expire":"2026-11-29T12:00:00+08:00","attach":"shop=1","notify_url":"https://shop.example/wxpay/notify","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`)

const benchURL = "/v3/pay/transactions/jsapi"

// BenchmarkAuthorizationHeader is the whole Authorization header of a
// request: message, SHA-256, RSA, base64, header. Target: ≤ 1.05× the raw
// signature below.
func BenchmarkAuthorizationHeader(b *testing.B) {
	c, err := NewClient(testConfig(b), WithClock(fixedClock), WithNonce(fixedNonce))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.authorization("POST", benchURL, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawRSASign is the standard library alone over the same message:
// SHA-256 and RSASSA-PKCS1-v1_5 with the same key.
func BenchmarkRawRSASign(b *testing.B) {
	key := merchantKey(b)
	msg := []byte(wxcrypto.V3RequestMessage("POST", benchURL, testNow.Unix(), testNonce, benchBody))
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(msg)
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawRSAVerify is the standard library's verification of a notify
// signature: the floor of BenchmarkParseNotify.
func BenchmarkRawRSAVerify(b *testing.B) {
	body, h := benchNotify(b)
	sig, _ := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
	msg := []byte(wxcrypto.V3ResponseMessage(h.Get(HeaderTimestamp), h.Get(HeaderNonce), body))
	pub := &pubKeyKey(b).PublicKey
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// benchNotify is a payment notify of the 431-byte transaction of vector
// D2 (for the test merchant), signed with the WeChat Pay public key.
func benchNotify(b *testing.B) ([]byte, http.Header) {
	body := notifyBody(b, "TRANSACTION.SUCCESS", "transaction", "fdasflkja484", ourTransaction)
	return body, signedHeader(b, body, 0)
}

// BenchmarkParseNotify is a whole notify: headers, window, RSA
// verification, JSON, AES-256-GCM, the transaction decoded. Targets:
// ≤ 40 µs and ≤ 30 allocations (where the raw verification is ~31 µs).
func BenchmarkParseNotify(b *testing.B) {
	c := newTestClient(b, newFake(b))
	body, h := benchNotify(b)
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := c.ParseNotify(ctx, h, body)
		if err != nil || n.Transaction.Amount.Total != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotifyStdlibPlain is the same notify with the standard library
// used plainly (encoding/json into structs, a cipher per call): the
// baseline the issue quotes (~42 µs).
func BenchmarkNotifyStdlibPlain(b *testing.B) {
	body, h := benchNotify(b)
	pub := &pubKeyKey(b).PublicKey
	key := []byte(testAPIv3Key.Reveal())
	b.ReportAllocs()
	for b.Loop() {
		ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)) > 1e9*3600*24*365*10 {
			b.Fatal(err)
		}
		sig, err := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
		if err != nil {
			b.Fatal(err)
		}
		msg := h.Get(HeaderTimestamp) + "\n" + h.Get(HeaderNonce) + "\n" + string(body) + "\n"
		sum := sha256.Sum256([]byte(msg))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		var env struct {
			ID         string    `json:"id"`
			CreateTime time.Time `json:"create_time"`
			EventType  string    `json:"event_type"`
			Resource   struct {
				Algorithm, Ciphertext, Nonce string
				AssociatedData               string `json:"associated_data"`
			} `json:"resource"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			b.Fatal(err)
		}
		ct, err := base64.StdEncoding.DecodeString(env.Resource.Ciphertext)
		if err != nil {
			b.Fatal(err)
		}
		block, _ := aes.NewCipher(key)
		gcm, _ := cipher.NewGCM(block)
		pt, err := gcm.Open(nil, []byte(env.Resource.Nonce), ct, []byte(env.Resource.AssociatedData))
		if err != nil {
			b.Fatal(err)
		}
		var tx struct {
			MchID, AppID, OutTradeNo, TransactionID, TradeType, TradeState, TradeStateDesc, BankType, Attach string
			SuccessTime                                                                                      time.Time `json:"success_time"`
			Payer                                                                                            struct{ OpenID string }
			Amount                                                                                           struct {
				Total, PayerTotal       int64
				Currency, PayerCurrency string
			}
		}
		if err := json.Unmarshal(pt, &tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTransaction is the strict decoder alone.
func BenchmarkDecodeTransaction(b *testing.B) {
	s := string(ourTransaction)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeTransaction(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNotify is everything after the signature.
func BenchmarkDecodeNotify(b *testing.B) {
	c := newTestClient(b, newFake(b))
	body, _ := benchNotify(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.decodeNotify(body); err != nil {
			b.Fatal(err)
		}
	}
}
