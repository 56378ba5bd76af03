package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/wxpaytest"
)

// TestOperatorTools runs order query/close, refund and bill against the
// simulator, as an operator would with --sim --base-url.
func TestOperatorTools(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)
	srv := wxpaytest.NewServer(t, wxpaytest.WithManualClock(day))
	user := srv.NewUser(t)
	place := func(no string) *apiv2.UnifiedOrderResponse {
		r, err := srv.Pay.UnifiedOrder(ctx, &apiv2.UnifiedOrderRequest{Body: "ops", OutTradeNo: no, TotalFee: 500,
			SpbillCreateIP: "127.0.0.1", TradeType: wxpay.TradeTypeJSAPI, OpenID: user})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	paid := place("OPS0000001")
	p, _ := srv.Pay.PayParams(paid.PrepayID)
	if msg := srv.RequestPayment(user, p); msg != "requestPayment:ok" {
		t.Fatal(msg)
	}
	place("OPS0000002")
	sim := []string{"--sim", "--base-url", srv.URL}
	out := filepath.Join(t.TempDir(), "bill.csv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"order", "query", "OPS0000001"}, sim...), `"trade_state": "SUCCESS"`},
		{append([]string{"order", "query", "OPS0000002"}, sim...), `"trade_state": "NOTPAY"`},
		{append([]string{"order", "close", "OPS0000002"}, sim...), "closed OPS0000002"},
		{append([]string{"refund", "OPS0000001", "--fee", "200", "--out-refund-no", "OPSR001"}, sim...), `"refund_fee": 200`},
	} {
		code, stdout, stderr := runCmd(t, "", c.args...)
		if code != 0 || !strings.Contains(stdout, c.want) {
			t.Fatalf("%v: exit %d\n%s\n%s", c.args, code, stdout, stderr)
		}
	}
	if code, _, stderr := runCmd(t, "", append([]string{"order", "query", "NOSUCH0001"}, sim...)...); code != 1 || !strings.Contains(stderr, "ORDERNOTEXIST") {
		t.Fatalf("unknown order: exit %d %s", code, stderr)
	}
	// The day's bill once the day is over: one payment, one refund.
	srv.Clock.Advance(16 * time.Hour)
	code, _, stderr := runCmd(t, "", append([]string{"bill", "--date", "2026-11-28", "--until", "2026-11-29", "--out", out}, sim...)...)
	if code != 0 || !strings.Contains(stderr, "2 rows, 5.00 yuan paid, 2.00 yuan refunded") {
		t.Fatalf("bill: exit %d\n%s", code, stderr)
	}
	data, _ := os.ReadFile(out)
	if lines := strings.Count(string(data), "\n"); lines != 3 || !strings.Contains(string(data), "OPS0000001") {
		t.Fatalf("bill csv:\n%s", data)
	}
}
