package apiv2

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

// goldenOrder has every kind of value: Chinese, characters XML escapes,
// "]]>", JSON, times, an extra field.
func goldenOrder() *UnifiedOrderRequest {
	return &UnifiedOrderRequest{
		Body: "小程序名-咖啡", OutTradeNo: "T20261129000000000001", TotalFee: 1999, SpbillCreateIP: "203.0.113.7",
		TradeType: wxpay.TradeTypeJSAPI, OpenID: testOpenID, NotifyURL: "https://shop.example/wxpay/notify",
		DeviceInfo: "WEB", Attach: `桌号=7&备注=<少冰> "]]>"`, GoodsTag: "WXG",
		Detail:    `{"cost_price":1999,"goods_detail":[{"goods_id":"SKU-1","quantity":1,"price":1999}]}`,
		TimeStart: time.Date(2026, 11, 29, 10, 0, 0, 0, wxpay.China), TimeExpire: time.Date(2026, 11, 29, 12, 0, 0, 0, wxpay.China),
		Extra: map[string]string{"receipt_note": "Y"},
	}
}

// The exact bytes the client sends, compared with testdata/*.golden.
// Refresh with: go test ./apiv2 -run TestGoldenRequests -update
func TestGoldenRequests(t *testing.T) {
	tests := []struct {
		golden string
		st     wxpay.SignType
		path   string
		ok     map[string]string
		call   func(c *Client) error
	}{
		{"unifiedorder_md5_request.golden", wxpay.SignTypeMD5, "/pay/unifiedorder", map[string]string{"prepay_id": testPrepayID},
			func(c *Client) error { _, err := c.UnifiedOrder(context.Background(), goldenOrder()); return err }},
		{"unifiedorder_hmac_request.golden", wxpay.SignTypeHMACSHA256, "/pay/unifiedorder", map[string]string{"prepay_id": testPrepayID},
			func(c *Client) error { _, err := c.UnifiedOrder(context.Background(), goldenOrder()); return err }},
		{"refund_request.golden", wxpay.SignTypeMD5, "/secapi/pay/refund",
			map[string]string{"out_refund_no": "R20261129000000000001", "refund_fee": "500"},
			func(c *Client) error {
				_, err := c.Refund(context.Background(), &RefundRequest{
					TransactionID: "4200000001202611290000000001", OutRefundNo: "R20261129000000000001",
					TotalFee: 1999, RefundFee: 500, RefundDesc: "退款-缺货", RefundAccount: wxpay.RefundAccountRecharge,
					NotifyURL: "https://shop.example/wxpay/refund",
				})
				return err
			}},
		{"orderquery_request.golden", wxpay.SignTypeMD5, "/pay/orderquery", map[string]string{"trade_state": "NOTPAY"},
			func(c *Client) error {
				_, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T20261129000000000001"})
				return err
			}},
		{"shorturl_request.golden", wxpay.SignTypeMD5, "/tools/shorturl", map[string]string{"short_url": "weixin://wxpay/s/AbCd"},
			func(c *Client) error {
				_, err := c.ShortURL(context.Background(), "weixin://wxpay/bizpayurl?sign=ABC&appid=wx426b3015555a46be&mch_id=1225312702&product_id=P 1&time_stamp=1490840662&nonce_str=n")
				return err
			}},
		{"downloadfundflow_request.golden", wxpay.SignTypeHMACSHA256, "/pay/downloadfundflow", nil,
			func(c *Client) error {
				_, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{Date: billDay, AccountType: wxpay.AccountOperation, Gzip: true})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			cfg := certConfig()
			if tt.golden == "unifiedorder_hmac_request.golden" {
				cfg.SignType = wxpay.SignTypeHMACSHA256
			}
			c, s := setupConfig(t, cfg)
			sent := make(chan []byte, 1)
			s.handle(tt.path, func(w http.ResponseWriter, r *http.Request) {
				got, _ := io.ReadAll(r.Body)
				sent <- got
				r.Body = io.NopCloser(bytes.NewReader(got))
				readRequest(t, r, tt.st, testKey)
				if tt.ok == nil {
					_, _ = w.Write([]byte(testFundFlow))
					return
				}
				answerOK(t, w, tt.st, testKey, tt.ok)
			})
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			compareGolden(t, tt.golden, <-sent)
		})
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("request differs from %s\n got: %s\nwant: %s", path, got, want)
	}
}
