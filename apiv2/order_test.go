package apiv2

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func TestUnifiedOrder(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{
			"body": "小程序-咖啡", "out_trade_no": "T2026112900001", "total_fee": "1999", "spbill_create_ip": "203.0.113.7",
			"trade_type": "JSAPI", "openid": testOpenID, "notify_url": testNotify, // the Config's default
			"attach": "桌号=7&备注=<少冰>", "time_start": "20261129100000", "time_expire": "20261129120000",
			"goods_tag": "WXG", "limit_pay": "no_credit", "profit_sharing": "N", "device_info": "WEB",
			"x_custom": "extra value",
		}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"trade_type": "JSAPI", "prepay_id": testPrepayID, "device_info": "WEB",
			"new_field": "added by WeChat", // A7: signed over, kept
		})
	})
	req := jsapiOrder()
	req.Attach = "桌号=7&备注=<少冰>"
	// Times are sent in China Standard Time whatever their location.
	req.TimeStart = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	req.TimeExpire = time.Date(2026, 11, 29, 12, 0, 0, 0, wxpay.China)
	req.GoodsTag, req.LimitPay, req.ProfitSharing, req.DeviceInfo = "WXG", "no_credit", "N", "WEB"
	req.Extra = map[string]string{"x_custom": "extra value", "x_empty": ""}
	resp, err := c.UnifiedOrder(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.PrepayID != testPrepayID || resp.TradeType != wxpay.TradeTypeJSAPI || resp.DeviceInfo != "WEB" {
		t.Errorf("%+v", resp)
	}
	if resp.ReturnCode != "SUCCESS" || resp.ResultCode != "SUCCESS" || resp.AppID != testAppID || resp.MchID != testMchID ||
		resp.NonceStr == "" || len(resp.Sign) != 32 {
		t.Errorf("envelope %+v", resp.Envelope)
	}
	if resp.Get("new_field") != "added by WeChat" {
		t.Errorf("unknown field not kept: %v", resp.Fields)
	}
	if resp.Get("no_such_field") != "" {
		t.Error("Get of an absent field")
	}
}

// HMAC-SHA256: the request carries sign_type and a 64-character sign; the
// answer must be signed the same way.
func TestUnifiedOrderHMACSHA256(t *testing.T) {
	cfg := testConfig()
	cfg.SignType = wxpay.SignTypeHMACSHA256
	c, s := setupConfig(t, cfg)
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeHMACSHA256, testKey)
		if len(f["sign"]) != 64 {
			t.Errorf("sign %q", f["sign"])
		}
		answerOK(t, w, wxpay.SignTypeHMACSHA256, testKey, map[string]string{"prepay_id": testPrepayID})
	})
	if _, err := c.UnifiedOrder(context.Background(), jsapiOrder()); err != nil {
		t.Fatal(err)
	}

	// An MD5 answer to an HMAC-SHA256 request does not verify.
	s.reset()
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"prepay_id": testPrepayID})
	})
	_, err := c.UnifiedOrder(context.Background(), jsapiOrder())
	wantIs(t, err, ErrResponseSignature, ErrOutcomeUnknown)
	var e *Error
	if errors.As(err, &e) && (e.Diagnosis == nil || !strings.Contains(strings.Join(e.Diagnosis.Hints, "\n"), "MD5")) {
		t.Errorf("diagnosis does not name the mix-up: %v", e.Diagnosis)
	}
}

func TestUnifiedOrderNative(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		if f["trade_type"] != "NATIVE" || f["product_id"] != "P-42" || f["openid"] != "" {
			t.Errorf("request %v", f)
		}
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"trade_type": "NATIVE", "prepay_id": testPrepayID,
			"code_url": "weixin://wxpay/bizpayurl?pr=abcdefg"})
	})
	resp, err := c.UnifiedOrder(context.Background(), &UnifiedOrderRequest{Body: "扫码-商品", OutTradeNo: "N2026112900001",
		TotalFee: 1, SpbillCreateIP: "203.0.113.7", TradeType: wxpay.TradeTypeNative, ProductID: "P-42", NotifyURL: "https://shop.example/n2"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.CodeURL != "weixin://wxpay/bizpayurl?pr=abcdefg" {
		t.Errorf("code url %q", resp.CodeURL)
	}
}

// A successful answer without prepay_id (or code_url, mweb_url) makes no
// sense: the outcome is unknown.
func TestUnifiedOrderNoPrepayID(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"trade_type": "JSAPI"})
	})
	_, err := c.UnifiedOrder(context.Background(), jsapiOrder())
	wantIs(t, err, ErrOutcomeUnknown)
}

func TestUnifiedOrderInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(*UnifiedOrderRequest)
		want string
	}{
		{"no body", func(r *UnifiedOrderRequest) { r.Body = "" }, "Body"},
		{"zero fee", func(r *UnifiedOrderRequest) { r.TotalFee = 0 }, "TotalFee"},
		{"negative fee", func(r *UnifiedOrderRequest) { r.TotalFee = -1 }, "TotalFee"},
		{"no IP", func(r *UnifiedOrderRequest) { r.SpbillCreateIP = "" }, "SpbillCreateIP"},
		{"no trade type", func(r *UnifiedOrderRequest) { r.TradeType = "" }, "TradeType"},
		{"MICROPAY", func(r *UnifiedOrderRequest) { r.TradeType = wxpay.TradeTypeMicroPay }, "TradeType"},
		{"unknown trade type", func(r *UnifiedOrderRequest) { r.TradeType = "jsapi" }, "TradeType"},
		{"JSAPI without openid", func(r *UnifiedOrderRequest) { r.OpenID = "" }, "OpenID"},
		{"NATIVE without product", func(r *UnifiedOrderRequest) { r.TradeType, r.OpenID = wxpay.TradeTypeNative, "" }, "ProductID"},
		{"notify URL with a query", func(r *UnifiedOrderRequest) { r.NotifyURL = "https://shop.example/n?order=1" }, "query string"},
		{"notify URL not http", func(r *UnifiedOrderRequest) { r.NotifyURL = "ftp://shop.example/n" }, "NotifyURL"},
		{"out_trade_no short", func(r *UnifiedOrderRequest) { r.OutTradeNo = "T1234" }, "6 to 32"},
		{"out_trade_no long", func(r *UnifiedOrderRequest) { r.OutTradeNo = strings.Repeat("9", 33) }, "6 to 32"},
		{"out_trade_no space", func(r *UnifiedOrderRequest) { r.OutTradeNo = "T2026 112900" }, "only digits"},
		{"out_trade_no Chinese", func(r *UnifiedOrderRequest) { r.OutTradeNo = "订单2026112900" }, "only digits"},
		{"extra name", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"a b": "x"} }, "valid element name"},
		{"extra duplicates a field", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"total_fee": "1"} }, "duplicates"},
		{"extra duplicates a base field", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"appid": "wx0"} }, "duplicates"},
		{"extra sign", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"sign": "00"} }, "sign"},
		{"extra sign_type", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"sign_type": "HMAC-SHA256"} }, "sign_type"},
		{"body not UTF-8", func(r *UnifiedOrderRequest) { r.Body = "\xd6\xd0\xce\xc4 coffee" }, "body is not valid UTF-8"},
		{"extra not UTF-8", func(r *UnifiedOrderRequest) { r.Extra = map[string]string{"x_note": "\xff"} }, "x_note"},
	}
	cfg := certConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := setupConfig(t, cfg)
			req := jsapiOrder()
			tt.edit(req)
			_, err := c.UnifiedOrder(context.Background(), req)
			wantIs(t, err, ErrInvalidArgument)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not name %q", err, tt.want)
			}
			if s.hits.Load() != 0 {
				t.Error("sent")
			}
		})
	}
	// No notify URL anywhere.
	cfg.NotifyURL = ""
	c, s := setupConfig(t, cfg)
	_, err := c.UnifiedOrder(context.Background(), jsapiOrder())
	wantIs(t, err, ErrInvalidArgument)
	if s.hits.Load() != 0 {
		t.Error("sent")
	}
}

func TestOrderQuery(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"out_trade_no": "T2026112900001"}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"trade_state": "SUCCESS", "trade_state_desc": "支付成功", "device_info": "WEB", "openid": testOpenID,
			"is_subscribe": "N", "trade_type": "JSAPI", "bank_type": "CMC", "total_fee": "1999", "settlement_total_fee": "1899",
			"fee_type": "CNY", "cash_fee": "1799", "cash_fee_type": "CNY", "coupon_fee": "200", "coupon_count": "2",
			"coupon_type_0": "CASH", "coupon_id_0": "10000", "coupon_fee_0": "100",
			"coupon_type_1": "NO_CASH", "coupon_id_1": "10001", "coupon_fee_1": "100",
			"transaction_id": "4200000001202611290000000001", "out_trade_no": "T2026112900001", "attach": "桌号=7",
			"time_end": "20261129101530",
		})
	})
	resp, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T2026112900001"})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Payment
	if resp.TradeState != wxpay.TradeStateSuccess || resp.TradeStateDesc != "支付成功" {
		t.Errorf("state %s %s", resp.TradeState, resp.TradeStateDesc)
	}
	if p.TotalFee != 1999 || p.SettlementTotalFee != 1899 || p.CashFee != 1799 || p.CouponFee != 200 || p.CouponCount != 2 ||
		p.FeeType != "CNY" || p.CashFeeType != "CNY" || p.BankType != "CMC" || p.OpenID != testOpenID || p.IsSubscribe != "N" ||
		p.TradeType != wxpay.TradeTypeJSAPI || p.DeviceInfo != "WEB" || p.Attach != "桌号=7" ||
		p.TransactionID != "4200000001202611290000000001" || p.OutTradeNo != "T2026112900001" {
		t.Errorf("payment %+v", p)
	}
	want := []Coupon{{Type: "CASH", ID: "10000", Fee: 100}, {Type: "NO_CASH", ID: "10001", Fee: 100}}
	if len(p.Coupons) != 2 || p.Coupons[0] != want[0] || p.Coupons[1] != want[1] {
		t.Errorf("coupons %+v", p.Coupons)
	}
	if !p.TimeEnd.Equal(time.Date(2026, 11, 29, 10, 15, 30, 0, wxpay.China)) || p.TimeEnd.Location() != wxpay.China {
		t.Errorf("time_end %v", p.TimeEnd)
	}
}

// transaction_id and out_trade_no are both sent when both are given
// (WeChat prefers transaction_id).
func TestOrderQueryByTransactionID(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"transaction_id": "4200000001202611290000000001"}))
		// An unpaid order: only a few fields (protocol.md §5.2).
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"trade_state": "NOTPAY", "out_trade_no": "T2026112900001",
			"total_fee": "1999", "trade_state_desc": "订单未支付"})
	})
	resp, err := c.OrderQuery(context.Background(), &OrderQueryRequest{TransactionID: "4200000001202611290000000001"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TradeState != wxpay.TradeStateNotPay || !resp.TimeEnd.IsZero() || resp.TransactionID != "" || resp.Coupons != nil {
		t.Errorf("%+v", resp)
	}
}

// A signed, successful answer that does not make sense leaves the outcome
// unknown rather than being read as something it is not.
func TestOrderQueryNonsense(t *testing.T) {
	for name, fields := range map[string]map[string]string{
		"unknown trade_state":   {"trade_state": "PAID"},
		"no trade_state":        {"out_trade_no": "T2026112900001"},
		"amount in yuan":        {"trade_state": "SUCCESS", "total_fee": "19.99"},
		"negative amount":       {"trade_state": "SUCCESS", "total_fee": "-1"},
		"time_end not a time":   {"trade_state": "SUCCESS", "time_end": "2026-11-29 10:15:30"},
		"coupon fee not a fen":  {"trade_state": "SUCCESS", "coupon_fee_0": "1.5"},
		"cash_fee not a number": {"trade_state": "SUCCESS", "cash_fee": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			c, s := setup(t)
			s.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
				answerOK(t, w, wxpay.SignTypeMD5, testKey, fields)
			})
			_, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T2026112900001"})
			wantIs(t, err, ErrOutcomeUnknown)
		})
	}
}

func TestCloseOrder(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/closeorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"out_trade_no": "T2026112900001"}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"result_msg": "OK"})
	})
	resp, err := c.CloseOrder(context.Background(), "T2026112900001")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ResultMsg != "OK" || resp.ResultCode != "SUCCESS" {
		t.Errorf("%+v", resp)
	}
}

// ORDERPAID on close means the user paid after all: the caller must be able
// to tell it apart and it is not unknown.
func TestCloseOrderPaid(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/closeorder", func(w http.ResponseWriter, r *http.Request) {
		answerCode(t, w, wxpay.SignTypeMD5, testKey, ErrOrderPaid, nil)
	})
	_, err := c.CloseOrder(context.Background(), "T2026112900001")
	wantIs(t, err, ErrOrderPaid)
	if OutcomeUnknown(err) || errors.Is(err, ErrOrderClosed) {
		t.Errorf("%v", err)
	}
}
