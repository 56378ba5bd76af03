package apiv3

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func refundAnswer(status string) string {
	return `{"refund_id":"50000000382019052709732678859","out_refund_no":"R1217752501201407033233368018",
"transaction_id":"4200000000000000000000000001","out_trade_no":"1217752501201407033233368018","channel":"ORIGINAL",
"user_received_account":"招商银行信用卡0403","success_time":"2020-12-01T16:18:12+08:00","create_time":"2020-12-01T16:18:12+08:00",
"status":"` + status + `","funds_account":"UNSETTLED","amount":{"total":100,"refund":100,"from":[{"account":"AVAILABLE","amount":100}],
"payer_total":90,"payer_refund":90,"settlement_refund":100,"settlement_total":100,"discount_refund":10,"currency":"CNY","refund_fee":0},
"promotion_detail":[{"promotion_id":"109519","scope":"SINGLE","type":"DISCOUNT","amount":5,"refund_amount":100,
"goods_detail":[{"merchant_goods_id":"1217752501201407033233368018","refund_amount":528800,"refund_quantity":1}]}]}`
}

func TestCreateRefund(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v3/refund/domestic/refunds", 200, refundAnswer("PROCESSING"))
	c := newTestClient(t, f)
	r, err := c.CreateRefund(context.Background(), &RefundRequest{
		OutTradeNo: testOutTradeNo, OutRefundNo: testOutRefundNo, Reason: "商品已售完", Refund: 100, Total: 100,
		NotifyURL: "https://shop.example/wxpay/refund", From: []RefundFrom{{Account: "AVAILABLE", Amount: 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Refund{
		RefundID: testRefundID, OutRefundNo: testOutRefundNo, TransactionID: testTransactionID, OutTradeNo: testOutTradeNo,
		Channel: wxpay.RefundChannelOriginal, UserReceivedAccount: "招商银行信用卡0403",
		SuccessTime: time.Date(2020, 12, 1, 16, 18, 12, 0, wxpay.China), CreateTime: time.Date(2020, 12, 1, 16, 18, 12, 0, wxpay.China),
		Status: wxpay.RefundStatusProcessing, FundsAccount: "UNSETTLED",
		Amount: RefundAmount{Total: 100, Refund: 100, PayerTotal: 90, PayerRefund: 90, SettlementRefund: 100, SettlementTotal: 100,
			DiscountRefund: 10, Currency: "CNY", From: []RefundFrom{{Account: "AVAILABLE", Amount: 100}}},
		Promotions: []RefundPromotion{{PromotionID: "109519", Scope: "SINGLE", Type: "DISCOUNT", Amount: 5, RefundAmount: 100}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	_, body := f.lastRequest()
	got := decodeBody(t, body)
	wantBody := map[string]any{"out_trade_no": testOutTradeNo, "out_refund_no": testOutRefundNo, "reason": "商品已售完",
		"notify_url": "https://shop.example/wxpay/refund",
		"amount": map[string]any{"refund": json.Number("100"), "total": json.Number("100"), "currency": "CNY",
			"from": []any{map[string]any{"account": "AVAILABLE", "amount": json.Number("100")}}}}
	if !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body %v\nwant %v", got, wantBody)
	}
}

// protocol.md §13.6: v3 statuses map onto wxpay's, ABNORMAL ≈ CHANGE.
func TestRefundStatusMapping(t *testing.T) {
	for wire, want := range map[string]wxpay.RefundStatus{
		"SUCCESS": wxpay.RefundStatusSuccess, "CLOSED": wxpay.RefundStatusClosed,
		"PROCESSING": wxpay.RefundStatusProcessing, "ABNORMAL": wxpay.RefundStatusChange,
	} {
		f := newFake(t)
		f.handle("GET /v3/refund/domestic/refunds/{no}", 200, refundAnswer(wire))
		r, err := newTestClient(t, f).QueryRefund(context.Background(), testOutRefundNo)
		if err != nil || r.Status != want || !r.Status.Valid() {
			t.Errorf("%s: %v %v", wire, r.Status, err)
		}
	}
	if s := refundStatus("NEW"); s.Valid() {
		t.Error("an unknown status is Valid")
	}
}

func TestRefundRefusals(t *testing.T) {
	f := newFake(t)
	c := newTestClient(t, f)
	base := func() *RefundRequest {
		return &RefundRequest{TransactionID: testTransactionID, OutRefundNo: testOutRefundNo, Refund: 1, Total: 100}
	}
	for name, mod := range map[string]func(*RefundRequest){
		"no order":        func(r *RefundRequest) { r.TransactionID = "" },
		"no refund no":    func(r *RefundRequest) { r.OutRefundNo = "" },
		"long refund no":  func(r *RefundRequest) { r.OutRefundNo = strings.Repeat("1", 65) },
		"zero refund":     func(r *RefundRequest) { r.Refund = 0 },
		"refund > total":  func(r *RefundRequest) { r.Refund = 101 },
		"zero total":      func(r *RefundRequest) { r.Total = 0 },
		"long reason":     func(r *RefundRequest) { r.Reason = strings.Repeat("因", 81) },
		"bad from":        func(r *RefundRequest) { r.From = []RefundFrom{{Account: "AVAILABLE"}} },
		"notify relative": func(r *RefundRequest) { r.NotifyURL = "/refund" },
	} {
		r := base()
		mod(r)
		if _, err := c.CreateRefund(context.Background(), r); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.QueryRefund(context.Background(), ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("query empty: %v", err)
	}
	if f.requests.Load() != 0 {
		t.Error("requests were sent")
	}
	// A refund answer with a negative or fractional amount is not trusted.
	for _, bad := range []string{`"refund":-100`, `"refund":100.5`, `"refund":1e2`} {
		f := newFake(t)
		f.handle("POST /v3/refund/domestic/refunds", 200, strings.Replace(refundAnswer("SUCCESS"), `"refund":100`, bad, 1))
		if _, err := newTestClient(t, f).CreateRefund(context.Background(), base()); !OutcomeUnknown(err) || !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// Errors keep their codes.
	f2 := newFake(t)
	f2.handle("POST /v3/refund/domestic/refunds", 403, `{"code":"NOT_ENOUGH","message":"基本账户余额不足"}`)
	if _, err := newTestClient(t, f2).CreateRefund(context.Background(), base()); !errors.Is(err, ErrNotEnough) || OutcomeUnknown(err) {
		t.Errorf("not enough: %v", err)
	}
}
