package wxpaytest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestSeedFlow walks the seed article's flow through the SDK against the
// simulator: wx.login code → jscode2session → unifiedorder → paySign →
// wx.requestPayment → pay notify → orderquery → refund → refund notify →
// refundquery → the day's bill.
func TestSeedFlow(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)
	var (
		mu       sync.Mutex
		paid     []*apiv2.PayNotify
		refunded []*apiv2.RefundNotify
	)
	mux := http.NewServeMux()
	merchant := httptest.NewServer(mux)
	defer merchant.Close()
	srv := wxpaytest.NewServer(t, wxpaytest.WithManualClock(start),
		wxpaytest.WithNotifyURL(merchant.URL+"/notify/pay"),
		wxpaytest.WithConfig(func(c *wxsim.Config) { c.RefundDelay = time.Minute }))
	mux.Handle("/notify/pay", srv.Pay.PayNotifyHandler(func(_ context.Context, n *apiv2.PayNotify) error {
		mu.Lock()
		defer mu.Unlock()
		paid = append(paid, n)
		return nil
	}, apiv2.NotifyHandlerOptions{}))
	mux.Handle("/notify/refund", srv.Pay.RefundNotifyHandler(func(_ context.Context, n *apiv2.RefundNotify) error {
		mu.Lock()
		defer mu.Unlock()
		refunded = append(refunded, n)
		return nil
	}, apiv2.NotifyHandlerOptions{}))

	// 1. wx.login → code → jscode2session → openid.
	user := srv.NewUser(t)
	sess, err := srv.Login.Code2Session(ctx, srv.LoginCode(t, user))
	if err != nil {
		t.Fatal(err)
	}
	if sess.OpenID != user {
		t.Fatalf("openid %q, want %q", sess.OpenID, user)
	}
	// 2. unifiedorder (JSAPI) → prepay_id.
	order, err := srv.Pay.UnifiedOrder(ctx, &apiv2.UnifiedOrderRequest{
		Body: "wxpay-latte", OutTradeNo: "SEED20261128001", TotalFee: 2800, SpbillCreateIP: "127.0.0.1",
		TradeType: wxpay.TradeTypeJSAPI, OpenID: sess.OpenID,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 3. the five pay parameters and paySign.
	params, err := srv.Pay.PayParams(order.PrepayID)
	if err != nil {
		t.Fatal(err)
	}
	// 4. wx.requestPayment.
	if msg := srv.RequestPayment(user, params); msg != "requestPayment:ok" {
		t.Fatalf("requestPayment: %s", msg)
	}
	// 5. the notify, answered SUCCESS.
	if err := srv.Sim.Advance(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.Sim.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(paid) != 1 || paid[0].OutTradeNo != "SEED20261128001" || paid[0].TotalFee != 2800 || !paid[0].Paid() {
		t.Fatalf("pay notifies: %+v", paid)
	}
	mu.Unlock()
	q, err := srv.Pay.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: "SEED20261128001"})
	if err != nil || q.TradeState != wxpay.TradeStateSuccess || q.TotalFee != 2800 {
		t.Fatalf("orderquery: %+v, %v", q, err)
	}
	// A partial refund, its notify, and the refund query.
	if _, err := srv.Pay.Refund(ctx, &apiv2.RefundRequest{OutTradeNo: "SEED20261128001", OutRefundNo: "SEEDR001",
		TotalFee: 2800, RefundFee: 800, NotifyURL: merchant.URL + "/notify/refund"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Sim.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := srv.Sim.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(refunded) != 1 || refunded[0].OutRefundNo != "SEEDR001" || refunded[0].RefundFee != 800 || refunded[0].Status != wxpay.RefundStatusSuccess {
		t.Fatalf("refund notifies: %+v", refunded)
	}
	mu.Unlock()
	rq, err := srv.Pay.RefundQuery(ctx, &apiv2.RefundQueryRequest{OutRefundNo: "SEEDR001"})
	if err != nil || len(rq.Refunds) != 1 || rq.Refunds[0].Status != wxpay.RefundStatusSuccess {
		t.Fatalf("refundquery: %+v, %v", rq, err)
	}
	// The day's bill, once the day is over: the payment and the refund.
	if err := srv.Sim.Advance(15 * time.Hour); err != nil {
		t.Fatal(err)
	}
	bill, err := srv.Pay.DownloadBill(ctx, &apiv2.DownloadBillRequest{Date: start, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(bill.Rows) != 2 || bill.Summary.Count != 2 {
		t.Fatalf("bill rows: %+v", bill.Rows)
	}
	var got, back int64
	for _, r := range bill.Rows {
		got += r.TotalFee
		back += r.RefundFee
	}
	if bill.Rows[0].OutTradeNo != "SEED20261128001" || back != 800 {
		t.Fatalf("bill: %+v", bill.Rows)
	}
}
