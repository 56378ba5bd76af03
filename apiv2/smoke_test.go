package apiv2

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestSmokeUnifiedOrder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, err := ParseMessage(body)
		if err != nil || r.URL.Path != "/pay/unifiedorder" {
			t.Errorf("server: %v %s", err, r.URL.Path)
		}
		if !wxcrypto.Verify(wxpay.SignTypeMD5, testKey, f, lookup(f, "sign")) {
			t.Errorf("request signature does not verify: %s", body)
		}
		w.Write(signedXML(t, wxpay.SignTypeMD5, testKey, map[string]string{
			"return_code": "SUCCESS", "return_msg": "OK", "appid": lookup(f, "appid"), "mch_id": lookup(f, "mch_id"),
			"nonce_str": "abc", "result_code": "SUCCESS", "trade_type": "JSAPI", "prepay_id": "wx2017033010242291fcfe0db70013231072",
		}))
	}))
	defer srv.Close()
	c, err := NewClient(testConfig(), WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.UnifiedOrder(context.Background(), &UnifiedOrderRequest{
		Body: "shop-cup", OutTradeNo: "T20261129001", TotalFee: 1999, SpbillCreateIP: "127.0.0.1",
		TradeType: wxpay.TradeTypeJSAPI, OpenID: "oUser1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.PrepayID != "wx2017033010242291fcfe0db70013231072" {
		t.Fatalf("prepay id %q", resp.PrepayID)
	}
}

func TestVectorAPayParams(t *testing.T) {
	p, err := SignPayParams("wxd678efh567hg6787", "qazwsxedcrfvtgbyhnujmikolp111111", wxpay.SignTypeMD5,
		"wx2017033010242291fcfe0db70013231072", "1490840662", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
	if err != nil {
		t.Fatal(err)
	}
	if p.PaySign != "22D9B4E54AB1950F51E0649E8810ACD6" {
		t.Fatalf("paySign %s", p.PaySign)
	}
}
