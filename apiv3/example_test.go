package apiv3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// The merchant of the examples, with the TEST-ONLY keys of testdata/. A
// real one comes from the merchant platform (商户平台): the merchant id,
// the API certificate's serial and private key (apiclient_key.pem), the
// APIv3 key, and the WeChat Pay public key (pub_key.pem) with its id.
const (
	mchID      = "1900009191"
	appID      = "wxd678efh567hg6787"
	certSerial = "3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8"
	apiV3Key   = "WeChatPayApiV3KeyForTestOnly0032"
	pubKeyID   = "PUB_KEY_ID_0114232134912410000000000000"
)

// The fixed clock and nonce of the examples, so that they print the same
// output each run; omit WithClock and WithNonce in production.
var (
	exampleNow   = time.Unix(1764381600, 0) // 2025-11-29 10:00:00 +08:00
	exampleClock = apiv3.WithClock(func() time.Time { return exampleNow })
	exampleNonce = apiv3.WithNonce(func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" })
)

func mustRead(name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// fakeWeChat answers like WeChat Pay, signing with the test "WeChat Pay
// public key"; the simulator (package wxsim) will do this for real.
func fakeWeChat() *httptest.Server {
	key, err := wxcrypto.ParsePrivateKey(mustRead("pubkey_key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	reply := func(w http.ResponseWriter, status int, body string) {
		ts := strconv.FormatInt(exampleNow.Unix(), 10)
		sig, _ := wxcrypto.SignV3Response(key, ts, "c5ac7061fccab6bf3e254dcf98995b8c", []byte(body))
		w.Header().Set("Wechatpay-Timestamp", ts)
		w.Header().Set("Wechatpay-Nonce", "c5ac7061fccab6bf3e254dcf98995b8c")
		w.Header().Set("Wechatpay-Signature", sig)
		w.Header().Set("Wechatpay-Serial", pubKeyID)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/pay/transactions/jsapi", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, `{"prepay_id":"wx201410272009395522657a690389285100"}`)
	})
	mux.HandleFunc("GET /v3/pay/transactions/out-trade-no/{no}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 404, `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`)
	})
	return httptest.NewServer(mux)
}

func newClient(baseURL string) *apiv3.Client {
	verifier, err := apiv3.NewPublicKeyVerifier(pubKeyID, mustRead("pub_key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := apiv3.NewClient(apiv3.Config{
		MchID:      mchID,
		AppID:      appID,
		CertSerial: certSerial,
		PrivateKey: wxpay.Secret(mustRead("merchant_key.pem")), // or PrivateKeyFile
		APIv3Key:   apiV3Key,
		Verifier:   verifier,
		NotifyURL:  "https://shop.example/wxpay/notify",
	}, apiv3.WithBaseURL(baseURL), exampleClock, exampleNonce)
	if err != nil {
		log.Fatal(err)
	}
	return client
}

// The mini-program flow: place a JSAPI order, then sign the parameters the
// mini program passes to wx.requestPayment.
func Example() {
	wx := fakeWeChat()
	defer wx.Close()
	client := newClient(wx.URL)

	order, err := client.PrepayJSAPI(context.Background(), &apiv3.PrepayRequest{
		Description: "小程序-咖啡",
		OutTradeNo:  "T2026112900001",
		Total:       1999, // fen: 19.99 CNY
		OpenID:      "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
	})
	if apiv3.OutcomeUnknown(err) {
		log.Fatal("retry with the same OutTradeNo and parameters, or query: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prepay_id:", order.PrepayID)

	params, err := client.MiniProgramPayParams("", order.PrepayID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(params.SignType, params.Package, params.TimeStamp, params.NonceStr)
	fmt.Println("paySign:", params.PaySign[:24]+"…")
	// Output:
	// prepay_id: wx201410272009395522657a690389285100
	// RSA prepay_id=wx201410272009395522657a690389285100 1764381600 5K8264ILTKCH16CQ2502SI8ZNMTM67VS
	// paySign: gZiHuWP0768EKCWkSuw0HxZA…
}

// Errors carry decisions: errors.Is with a code (either spelling), and
// OutcomeUnknown for "query, never assume".
func ExampleClient_QueryByOutTradeNo() {
	wx := fakeWeChat()
	defer wx.Close()
	client := newClient(wx.URL)

	_, err := client.QueryByOutTradeNo(context.Background(), "T2026112900001")
	switch {
	case apiv3.OutcomeUnknown(err):
		fmt.Println("unknown: query again later")
	case errors.Is(err, apiv3.ErrOrderNotExist):
		fmt.Println("no such order at WeChat Pay")
	case err != nil:
		fmt.Println("failed:", err)
	}
	// Output:
	// no such order at WeChat Pay
}

// A notify handler: read the raw body (capped), let ParseNotify verify and
// decrypt it, answer 204 only after your own state is stored.
func ExampleClient_ParseNotify() {
	client := newClient("http://127.0.0.1:1")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, apiv3.MaxNotifySize))
		if err != nil {
			http.Error(w, `{"code":"FAIL","message":"too large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		n, err := client.ParseNotify(r.Context(), r.Header, body)
		if err != nil {
			// WeChat retries on any 4xx/5xx; never answer 200 here.
			fmt.Println("refused:", err.(*apiv3.NotifyError).Reason)
			http.Error(w, `{"code":"FAIL","message":"refused"}`, http.StatusUnauthorized)
			return
		}
		tx := n.Transaction
		// Compare with your own order (amount, appid) and store the state
		// in one transaction before answering.
		fmt.Println(n.EventType, tx.OutTradeNo, tx.TradeState, tx.Amount.Total, "fen")
		w.WriteHeader(http.StatusNoContent)
	})

	// A notify as WeChat sends it (here forged with the test keys).
	notify := exampleNotify()
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, notify)
	fmt.Println(rec.Code)

	// The same request with its body re-serialised by a framework.
	replay := exampleNotify()
	var m map[string]any
	json.NewDecoder(replay.Body).Decode(&m)
	b, _ := json.MarshalIndent(m, "", "  ")
	replay.Body = io.NopCloser(bytes.NewReader(b))
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, replay)
	fmt.Println(rec.Code)
	// Output:
	// TRANSACTION.SUCCESS T2026112900001 SUCCESS 1999 fen
	// 204
	// refused: signature
	// 401
}

func exampleNotify() *http.Request {
	resource := `{"mchid":"1900009191","appid":"wxd678efh567hg6787","out_trade_no":"T2026112900001","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2025-11-29T09:59:58+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":1999,"payer_total":1999,"currency":"CNY","payer_currency":"CNY"}}`
	ct, err := wxcrypto.EncryptAEAD(apiV3Key, "fdasflkja484", "transaction", []byte(resource))
	if err != nil {
		log.Fatal(err)
	}
	body := `{"id":"EV-2018022511223320873","create_time":"2025-11-29T09:59:59+08:00","event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource","summary":"支付成功","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"` + ct + `","associated_data":"transaction","original_type":"transaction","nonce":"fdasflkja484"}}`
	key, _ := wxcrypto.ParsePrivateKey(mustRead("pubkey_key.pem"))
	ts := strconv.FormatInt(exampleNow.Unix(), 10)
	sig, _ := wxcrypto.SignV3Response(key, ts, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", []byte(body))
	r := httptest.NewRequest("POST", "/wxpay/notify", bytes.NewReader([]byte(body)))
	r.Header.Set("Wechatpay-Timestamp", ts)
	r.Header.Set("Wechatpay-Nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
	r.Header.Set("Wechatpay-Signature", sig)
	r.Header.Set("Wechatpay-Serial", pubKeyID)
	return r
}

// Platform certificates: a client without a Verifier starts the
// CertificateManager, which downloads and checks the certificates; the
// client that calls the APIs is the one that verifies with the manager.
func ExampleNewCertificateManager() {
	wx := fakeCertificates()
	defer wx.Close()

	cfg := apiv3.Config{
		MchID: mchID, CertSerial: certSerial, APIv3Key: apiV3Key,
		PrivateKey: wxpay.Secret(mustRead("merchant_key.pem")),
	}
	boot, err := apiv3.NewClient(cfg, apiv3.WithBaseURL(wx.URL), exampleClock)
	if err != nil {
		log.Fatal(err)
	}
	mgr, err := apiv3.NewCertificateManager(boot, cfg.APIv3Key) // refreshed every 12 h
	if err != nil {
		log.Fatal(err)
	}
	if err := mgr.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer mgr.Stop()
	client, err := boot.WithVerifier(mgr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(mgr.Serials(), client.Verifier() == apiv3.Verifier(mgr))
	// Output:
	// [5157F09EFDC096DE15EBE81A47057A7232F1B8E1] true
}

// fakeCertificates serves GET /v3/certificates with one platform
// certificate made for the test platform key.
func fakeCertificates() *httptest.Server {
	key, err := wxcrypto.ParsePrivateKey(mustRead("platform_key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	serial, _ := new(big.Int).SetString("5157F09EFDC096DE15EBE81A47057A7232F1B8E1", 16)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "test platform certificate"},
		NotBefore: exampleNow.AddDate(-1, 0, 0), NotAfter: exampleNow.AddDate(4, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	ct, _ := wxcrypto.EncryptAEAD(apiV3Key, "43061ef9d07e", apiv3.CertificateAAD, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	body := `{"data":[{"serial_no":"5157F09EFDC096DE15EBE81A47057A7232F1B8E1","effective_time":"2024-11-29T10:00:00+08:00","expire_time":"2029-11-29T10:00:00+08:00","encrypt_certificate":{"algorithm":"AEAD_AES_256_GCM","nonce":"43061ef9d07e","associated_data":"certificate","ciphertext":"` + ct + `"}}]}`
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts := strconv.FormatInt(exampleNow.Unix(), 10)
		sig, _ := wxcrypto.SignV3Response(key, ts, "n0nce", []byte(body))
		w.Header().Set("Wechatpay-Timestamp", ts)
		w.Header().Set("Wechatpay-Nonce", "n0nce")
		w.Header().Set("Wechatpay-Signature", sig)
		w.Header().Set("Wechatpay-Serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
		io.WriteString(w, body)
	}))
}
