package apiv2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// The merchant of the examples. A real one comes from the merchant
// platform (商户平台): the mini program's AppID, the merchant id, and the
// 32-character API key (API密钥).
const (
	appID  = "wx426b3015555a46be"
	mchID  = "1225312702"
	apiKey = "e10adc3949ba59abbe56e057f20f883e"
)

// The mini-program flow: place the order, then sign the parameters the
// mini program passes to wx.requestPayment.
func Example() {
	wx := fakeWeChat()
	defer wx.Close()

	client, err := apiv2.NewClient(apiv2.Config{
		AppID:     appID,
		MchID:     mchID,
		APIKey:    apiKey,
		NotifyURL: "https://shop.example/wxpay/notify",
	},
		apiv2.WithBaseURL(wx.URL), // omit in production
		// Fixed only so that this example prints the same output each run.
		apiv2.WithClock(func() time.Time { return time.Unix(1490840662, 0) }),
		apiv2.WithNonce(func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" }),
	)
	if err != nil {
		log.Fatal(err)
	}

	order, err := client.UnifiedOrder(context.Background(), &apiv2.UnifiedOrderRequest{
		Body:           "小程序-咖啡",
		OutTradeNo:     "T2026112900001",
		TotalFee:       1999, // fen: 19.99 CNY
		SpbillCreateIP: "203.0.113.7",
		TradeType:      wxpay.TradeTypeJSAPI,
		OpenID:         "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", // from jscode2session
	})
	if apiv2.OutcomeUnknown(err) {
		log.Fatal("retry with the same OutTradeNo and parameters, or query: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prepay_id:", order.PrepayID)

	params, err := client.PayParams(order.PrepayID)
	if err != nil {
		log.Fatal(err)
	}
	js, _ := json.MarshalIndent(params, "", "  ")
	fmt.Println(string(js))
	// Output:
	// prepay_id: wx2017033010242291fcfe0db70013231072
	// {
	//   "appId": "wx426b3015555a46be",
	//   "timeStamp": "1490840662",
	//   "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
	//   "package": "prepay_id=wx2017033010242291fcfe0db70013231072",
	//   "signType": "MD5",
	//   "paySign": "936AE83C626BC2CF8656E2091DEB5533"
	// }
}

// SignPayParams is the pure function behind Client.PayParams; here with
// vector A of protocol.md §14.
func ExampleSignPayParams() {
	p, err := apiv2.SignPayParams("wxd678efh567hg6787", "qazwsxedcrfvtgbyhnujmikolp111111", wxpay.SignTypeMD5,
		"wx2017033010242291fcfe0db70013231072", "1490840662", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.CanonicalString())
	fmt.Println(p.PaySign)
	// Output:
	// appId=wxd678efh567hg6787&nonceStr=5K8264ILTKCH16CQ2502SI8ZNMTM67VS&package=prepay_id=wx2017033010242291fcfe0db70013231072&signType=MD5&timeStamp=1490840662&key=REDACTED
	// 22D9B4E54AB1950F51E0649E8810ACD6
}

// PayNotifyHandler serves the notify_url: it verifies the notify, calls the
// function, and answers SUCCESS only when the function returned nil.
func ExampleClient_PayNotifyHandler() {
	client, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: apiKey})
	if err != nil {
		log.Fatal(err)
	}
	handler := client.PayNotifyHandler(func(ctx context.Context, n *apiv2.PayNotify) error {
		// Look the order up by n.OutTradeNo, compare n.TotalFee with its
		// amount, and store the payment durably (idempotently: the same
		// notify may come again) before returning nil.
		fmt.Println("paid:", n.Paid(), n.OutTradeNo, n.TotalFee, n.TransactionID)
		return nil
	}, apiv2.NotifyHandlerOptions{})
	// http.Handle("/wxpay/notify", handler)

	// What WeChat Pay sends, and what it gets back:
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("POST", "/wxpay/notify", bytes.NewReader(payNotifyFromWeChat())))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// paid: true T2026112900001 1999 4200000001202611290000000001
	// 200 <xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>
}

// ParsePayNotify is the verification step of PayNotifyHandler, for callers
// that serve the notify URL themselves.
func ExampleClient_ParsePayNotify() {
	client, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: apiKey})
	if err != nil {
		log.Fatal(err)
	}
	n, err := client.ParsePayNotify(payNotifyFromWeChat())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n.OutTradeNo, n.Paid(), n.TotalFee, n.TimeEnd.Format(time.DateTime))

	// A forged notify, here with the amount edited, is refused.
	forged := bytes.Replace(payNotifyFromWeChat(), []byte("<total_fee>1999<"), []byte("<total_fee>1<"), 1)
	_, err = client.ParsePayNotify(forged)
	var ne *apiv2.NotifyError
	fmt.Println(errors.As(err, &ne), ne.Reason)
	// Output:
	// T2026112900001 true 1999 2026-11-29 10:15:30
	// true signature
}

// OrderQuery settles an order whose notify did not come, or whose call
// ended in an unknown outcome.
func ExampleClient_OrderQuery() {
	wx := fakeWeChat()
	defer wx.Close()
	client, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: apiKey}, apiv2.WithBaseURL(wx.URL))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	q, err := client.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: "T2026112900001"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.TradeState, q.TradeState.Paid(), q.TotalFee, q.TransactionID)

	_, err = client.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: "T404"})
	fmt.Println(errors.Is(err, apiv2.ErrOrderNotExist), apiv2.OutcomeUnknown(err))
	// Output:
	// SUCCESS true 1999 4200000001202611290000000001
	// true false
}

// Refund needs the merchant's client certificate (apiclient_cert.pem and
// apiclient_key.pem, or apiclient_cert.p12). A nil error means WeChat
// accepted the refund; the refund notify or RefundQuery says when it is
// done.
func ExampleClient_Refund() {
	wx := fakeWeChat()
	defer wx.Close()
	client, err := apiv2.NewClient(apiv2.Config{
		AppID: appID, MchID: mchID, APIKey: apiKey,
		CertFile: "testdata/certs/apiclient_cert.pem", // test-only certificate
		KeyFile:  "testdata/certs/apiclient_key.pem",
	}, apiv2.WithBaseURL(wx.URL))
	if err != nil {
		log.Fatal(err)
	}
	r, err := client.Refund(context.Background(), &apiv2.RefundRequest{
		OutTradeNo:  "T2026112900001",
		OutRefundNo: "R2026112900001", // store it first: a retry must reuse it
		TotalFee:    1999,
		RefundFee:   999,
		RefundDesc:  "缺货",
	})
	switch {
	case apiv2.OutcomeUnknown(err), errors.Is(err, apiv2.ErrBizNeedRetry):
		log.Fatal("call again with the same OutRefundNo and amount: ", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(r.OutRefundNo, r.RefundID, r.RefundFee)
	// Output:
	// R2026112900001 50000000382026112900001 999
}

// fakeWeChat is a small stand-in for api.mch.weixin.qq.com, enough for the
// examples: it verifies each request's signature and answers as WeChat Pay
// does. Package wxsim is the full simulator.
func fakeWeChat() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fields, err := apiv2.ParseMessage(body)
		req := map[string]string{}
		for _, f := range fields {
			req[f.Name] = f.Value
		}
		if err != nil || !wxcrypto.Verify(wxpay.SignTypeMD5, apiKey, fields, req["sign"]) {
			w.Write([]byte("<xml><return_code>FAIL</return_code><return_msg>签名错误</return_msg></xml>"))
			return
		}
		answer := map[string]string{"return_code": "SUCCESS", "result_code": "SUCCESS",
			"appid": appID, "mch_id": mchID, "nonce_str": "wxnonce"}
		switch r.URL.Path {
		case "/pay/unifiedorder":
			answer["trade_type"] = req["trade_type"]
			answer["prepay_id"] = "wx2017033010242291fcfe0db70013231072"
		case "/pay/orderquery":
			if req["out_trade_no"] != "T2026112900001" {
				answer["result_code"], answer["err_code"] = "FAIL", "ORDERNOTEXIST"
				break
			}
			answer["trade_state"], answer["out_trade_no"], answer["trade_type"] = "SUCCESS", req["out_trade_no"], "JSAPI"
			answer["transaction_id"], answer["total_fee"], answer["cash_fee"] = "4200000001202611290000000001", "1999", "1999"
			answer["time_end"] = "20261129101530"
		case "/secapi/pay/refund":
			for _, k := range []string{"out_trade_no", "out_refund_no", "total_fee", "refund_fee"} {
				answer[k] = req[k]
			}
			answer["refund_id"] = "50000000382026112900001"
		default:
			http.NotFound(w, r)
			return
		}
		w.Write(signed(answer))
	}))
}

// payNotifyFromWeChat is a payment notify as WeChat Pay posts it.
func payNotifyFromWeChat() []byte {
	return signed(map[string]string{
		"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": appID, "mch_id": mchID,
		"nonce_str": "5d2b6c2a8db53831f7eda20af46e531c", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		"trade_type": "JSAPI", "bank_type": "CFT", "total_fee": "1999", "cash_fee": "1999",
		"transaction_id": "4200000001202611290000000001", "out_trade_no": "T2026112900001",
		"time_end": "20261129101530", "is_subscribe": "N",
	})
}

// signed encodes fields as a v2 message signed with the API key.
func signed(m map[string]string) []byte {
	fields := wxcrypto.FieldsFromMap(m)
	sign, _ := wxcrypto.Sign(wxpay.SignTypeMD5, apiKey, fields)
	b, _ := apiv2.EncodeMessage(append(fields, wxcrypto.Field{Name: "sign", Value: sign}))
	return b
}
