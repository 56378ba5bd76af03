package wxsim

import (
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// TestV3VectorD: a paid order is written exactly as vector D2's plaintext
// (protocol.md §14), and the notify cipher gives D2's ciphertext.
func TestV3VectorD(t *testing.T) {
	const plain = `{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`
	const cipher = "SfrgsVvyEVJl1/OwG+xLMMAoiAmH4s2aJCV0F/D5XKrg6632Rng8OsJfpUGNkU14eNwHGrWv9T8KWTkggRSwZ1RX8/bp8nfrNYCXoxJovont+m3z14qQQux9TDJfZGFXhd7JzzgDrwapy+sGQaYhv9kvVYN+/W5AC8G++UJ/+TedM/yvVAR+HDwBFqAp6+oypTIAsYtVvsWQ0O4F+ZuuZi0CJYXSGkD1UtDd2DKDaMTfA8Pnel9HJ5PhRiBPbRUHCwvzJjanu5qL3kxOxGvInZpPRGuVqGgO6rh97GLIceEAgJWwlF+MEJp8z/mVXobguV/N8y8q68mjNS5rHcXnXrCvcJLEQSCwaHrRZ+M37jSg2SuLM1ZXJLgtRC7L9X99FMWOnuSj76MXkqrcvqFI9R3HgZYtQoaPE06/1D14PMHvz1CteeQCfm8Qf7lwG5v5RLF4hYb/2YAdcZiYUL+IJFUdJlS/saekTJ6b8k5Oblap19hiM7wr/gds47Fmgl4jVfhmelDcO6yhCLk+77uSg9NPHwcZXkIWp/e4BYOvOzvoHKoiuROL16T6qJyXLzm4dx7K+Tw3Pr6NYGEncnD1"
	m := &merchant{cfg: Merchant{MchID: "1230000109"}}
	o := &order{
		b: &book{m: m}, appID: "wxd678efh567hg6787", outTradeNo: "1217752501201407033233368018", tradeType: wxpay.TradeTypeJSAPI,
		state: wxpay.TradeStateSuccess, totalFee: 100, transactionID: "4200000000000000000000000001", payerOpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		bankType: "OTHERS", paidAt: time.Date(2018, 6, 8, 10, 34, 56, 0, wxpay.China),
	}
	got := v3JSON(v3Transaction(o))
	if string(got) != plain {
		t.Fatalf("transaction JSON\n got %s\nwant %s", got, plain)
	}
	aead, err := wxcrypto.NewAEAD("WeChatPayApiV3KeyForTestOnly0032")
	if err != nil {
		t.Fatal(err)
	}
	vm := &v3Merchant{aead: aead}
	body := vm.v3Envelope("TRANSACTION.SUCCESS", "支付成功", "transaction", "transaction", got, o.paidAt, "fdasflkja484", "")
	want := `"resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"` + cipher + `","associated_data":"transaction","original_type":"transaction","nonce":"fdasflkja484"}}`
	if len(body) < len(want) || string(body[len(body)-len(want):]) != want {
		t.Fatalf("notify body %s", body)
	}
}
