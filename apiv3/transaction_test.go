package apiv3

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func jsapiRequest() *PrepayRequest {
	return &PrepayRequest{
		Description: "Image形象店-深圳腾大-QQ公仔",
		OutTradeNo:  testOutTradeNo,
		Total:       100,
		OpenID:      testOpenID,
		TimeExpire:  time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
		Attach:      "shop=1",
	}
}

// decodeBody decodes a request body into a map, failing on trailing data.
func decodeBody(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPrepayJSAPI(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v3/pay/transactions/jsapi", 200, `{"prepay_id":"`+testPrepayID+`"}`)
	c := newTestClient(t, f)
	r, err := c.PrepayJSAPI(context.Background(), jsapiRequest())
	if err != nil || r.PrepayID != testPrepayID {
		t.Fatalf("%+v %v", r, err)
	}
	req, body := f.lastRequest()
	if req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
	}
	got := decodeBody(t, body)
	want := map[string]any{
		"appid": testAppID, "mchid": testMchID, "description": "Image形象店-深圳腾大-QQ公仔",
		"out_trade_no": testOutTradeNo, "time_expire": "2026-11-29T20:00:00+08:00", "attach": "shop=1",
		"notify_url": testNotifyURL, "amount": map[string]any{"total": json.Number("100"), "currency": "CNY"},
		"payer": map[string]any{"openid": testOpenID},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body\n%v\nwant\n%v", got, want)
	}
}

func TestPrepayOtherKinds(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v3/pay/transactions/native", 200, `{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}`)
	f.handle("POST /v3/pay/transactions/app", 200, `{"prepay_id":"`+testPrepayID+`"}`)
	f.handle("POST /v3/pay/transactions/h5", 200, `{"h5_url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2916263004719461949c84457c735b0000&package=2150917749"}`)
	c := newTestClient(t, f)
	ctx := context.Background()
	base := func() *PrepayRequest {
		return &PrepayRequest{Description: "QR", OutTradeNo: "N20261129001", Total: 1, ProfitSharing: true}
	}
	n, err := c.PrepayNative(ctx, base())
	if err != nil || n.CodeURL != "weixin://wxpay/bizpayurl?pr=p4lpSuKzz" {
		t.Errorf("native: %+v %v", n, err)
	}
	_, body := f.lastRequest()
	if m := decodeBody(t, body); m["payer"] != nil || !reflect.DeepEqual(m["settle_info"], map[string]any{"profit_sharing": true}) {
		t.Errorf("native body %v", m)
	}
	a, err := c.PrepayApp(ctx, base())
	if err != nil || a.PrepayID != testPrepayID {
		t.Errorf("app: %+v %v", a, err)
	}
	h5 := base()
	h5.SceneInfo = &SceneInfo{PayerClientIP: "203.0.113.7", H5Info: &H5Info{Type: "Wap"}}
	h, err := c.PrepayH5(ctx, h5)
	if err != nil || !strings.HasPrefix(h.H5URL, "https://wx.tenpay.com/") {
		t.Errorf("h5: %+v %v", h, err)
	}
	_, body = f.lastRequest()
	if m := decodeBody(t, body); !reflect.DeepEqual(m["scene_info"], map[string]any{"payer_client_ip": "203.0.113.7", "h5_info": map[string]any{"type": "Wap"}}) {
		t.Errorf("h5 body %v", m)
	}
	// An answer without the id is unknown: the order may exist.
	f2 := newFake(t)
	f2.handle("POST /v3/pay/transactions/native", 200, `{}`)
	if _, err := newTestClient(t, f2).PrepayNative(ctx, base()); !OutcomeUnknown(err) {
		t.Errorf("empty answer: %v", err)
	}
}

// Invalid requests are refused before anything is sent: a known outcome.
func TestPrepayRefusals(t *testing.T) {
	f := newFake(t)
	c := newTestClient(t, f)
	ctx := context.Background()
	mods := map[string]func(*PrepayRequest){
		"no description":     func(r *PrepayRequest) { r.Description = "" },
		"long description":   func(r *PrepayRequest) { r.Description = strings.Repeat("字", 128) },
		"zero total":         func(r *PrepayRequest) { r.Total = 0 },
		"negative total":     func(r *PrepayRequest) { r.Total = -1 },
		"short out_trade_no": func(r *PrepayRequest) { r.OutTradeNo = "12345" },
		"long out_trade_no":  func(r *PrepayRequest) { r.OutTradeNo = strings.Repeat("1", 33) },
		"bad character":      func(r *PrepayRequest) { r.OutTradeNo = "T2026/11/29" },
		"no openid":          func(r *PrepayRequest) { r.OpenID = "" },
		"notify with query":  func(r *PrepayRequest) { r.NotifyURL = "https://x.example/n?a=1" },
		"long attach":        func(r *PrepayRequest) { r.Attach = strings.Repeat("a", 129) },
	}
	for name, mod := range mods {
		r := jsapiRequest()
		mod(r)
		_, err := c.PrepayJSAPI(ctx, r)
		if !errors.Is(err, ErrInvalidArgument) || OutcomeUnknown(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.PrepayNative(ctx, jsapiRequest()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("openid on native: %v", err)
	}
	if _, err := c.PrepayH5(ctx, &PrepayRequest{Description: "x", OutTradeNo: "H20261129001", Total: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("h5 without scene: %v", err)
	}
	if _, err := c.PrepayJSAPI(ctx, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil: %v", err)
	}
	if f.requests.Load() != 0 {
		t.Errorf("%d requests sent", f.requests.Load())
	}
}

const fullTransaction = `{"appid":"wxd678efh567hg6787","mchid":"1900009191","out_trade_no":"1217752501201407033233368018",
 "transaction_id":"1217752501201407033233368018","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功",
 "bank_type":"CMC","attach":"自定义数据","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
 "amount":{"total":100,"payer_total":90,"currency":"CNY","payer_currency":"CNY"},"scene_info":{"device_id":"013467007045764"},
 "promotion_detail":[{"coupon_id":"109519","name":"单品惠-6","scope":"SINGLE","type":"CASH","amount":10,"stock_id":"931386",
 "wechatpay_contribute":0,"merchant_contribute":10,"other_contribute":0,"currency":"CNY",
 "goods_detail":[{"goods_id":"M1006","quantity":1,"unit_price":100,"discount_amount":10,"goods_remark":"商品备注信息"}]}],
 "new_field_from_wechat":{"nested":[1,2.5,"x",null,true]}}`

func TestQuery(t *testing.T) {
	f := newFake(t)
	f.mux.HandleFunc("GET /v3/pay/transactions/id/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testTransactionID || r.URL.Query().Get("mchid") != testMchID {
			t.Errorf("query %s", r.URL)
		}
		f.reply(w, 200, fullTransaction)
	})
	f.handle("GET /v3/pay/transactions/out-trade-no/{no}", 200, `{"appid":"wxd678efh567hg6787","mchid":"1900009191","out_trade_no":"1217752501201407033233368018","trade_state":"NOTPAY","trade_state_desc":"订单未支付","amount":{"total":100,"currency":"CNY"}}`)
	c := newTestClient(t, f)
	tx, err := c.QueryByTransactionID(context.Background(), testTransactionID)
	if err != nil {
		t.Fatal(err)
	}
	want := &Transaction{
		AppID: testAppID, MchID: testMchID, OutTradeNo: testOutTradeNo, TransactionID: "1217752501201407033233368018",
		TradeType: wxpay.TradeTypeJSAPI, TradeState: wxpay.TradeStateSuccess, TradeStateDesc: "支付成功", BankType: "CMC",
		Attach: "自定义数据", SuccessTime: time.Date(2018, 6, 8, 10, 34, 56, 0, wxpay.China),
		Payer:     Payer{OpenID: testOpenID},
		Amount:    TransactionAmount{Total: 100, PayerTotal: 90, Currency: "CNY", PayerCurrency: "CNY"},
		SceneInfo: &TransactionScene{DeviceID: "013467007045764"},
		Promotions: []Promotion{{CouponID: "109519", Name: "单品惠-6", Scope: "SINGLE", Type: "CASH", Amount: 10, StockID: "931386",
			MerchantContribute: 10, Currency: "CNY",
			GoodsDetail: []PromotionGoods{{GoodsID: "M1006", Quantity: 1, UnitPrice: 100, DiscountAmount: 10, GoodsRemark: "商品备注信息"}}}},
	}
	if !reflect.DeepEqual(tx, want) {
		t.Errorf("got  %+v\nwant %+v", tx, want)
	}
	if !tx.Paid() || !tx.SuccessTime.Equal(time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC)) {
		t.Error("Paid / SuccessTime")
	}
	tx, err = c.QueryByOutTradeNo(context.Background(), testOutTradeNo)
	if err != nil || tx.TradeState != wxpay.TradeStateNotPay || tx.Paid() || !tx.SuccessTime.IsZero() || tx.Amount.Total != 100 {
		t.Errorf("%+v %v", tx, err)
	}
	for _, bad := range []string{"", strings.Repeat("1", 65)} {
		if _, err := c.QueryByTransactionID(context.Background(), bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := c.QueryByOutTradeNo(context.Background(), "a/b"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("slash: %v", err)
	}
}

func TestCloseOrder(t *testing.T) {
	f := newFake(t)
	f.mux.HandleFunc("POST /v3/pay/transactions/out-trade-no/{no}/close", func(w http.ResponseWriter, r *http.Request) {
		_, body := f.lastRequest()
		if r.PathValue("no") != testOutTradeNo || string(body) != `{"mchid":"1900009191"}` {
			t.Errorf("close %s %s", r.URL, body)
		}
		f.reply(w, 204, "")
	})
	c := newTestClient(t, f)
	if err := c.CloseOrder(context.Background(), testOutTradeNo); err != nil {
		t.Fatal(err)
	}
	// An unsigned 204 is not proof the order is closed.
	f2 := newFake(t)
	f2.mux.HandleFunc("POST /v3/pay/transactions/out-trade-no/{no}/close", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	if err := newTestClient(t, f2).CloseOrder(context.Background(), testOutTradeNo); !OutcomeUnknown(err) || !errors.Is(err, ErrResponseSignature) {
		t.Errorf("unsigned 204: %v", err)
	}
	f3 := newFake(t)
	f3.handle("POST /v3/pay/transactions/out-trade-no/{no}/close", 400, `{"code":"ORDER_CLOSED","message":"订单已关闭"}`)
	if err := newTestClient(t, f3).CloseOrder(context.Background(), testOutTradeNo); !errors.Is(err, ErrOrderClosed) || OutcomeUnknown(err) {
		t.Errorf("closed: %v", err)
	}
}
