package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/wxpaytest"
)

// opsOrders places two orders of 5.00 yuan at the simulator, prefix+"1"
// paid and prefix+"2" not.
func opsOrders(t *testing.T, srv *wxpaytest.Server, prefix string) {
	t.Helper()
	user := srv.NewUser(t)
	for i, pay := range []bool{true, false} {
		r, err := srv.Pay.UnifiedOrder(context.Background(), &apiv2.UnifiedOrderRequest{Body: "ops", OutTradeNo: prefix + strconv.Itoa(i+1),
			TotalFee: 500, SpbillCreateIP: "127.0.0.1", TradeType: wxpay.TradeTypeJSAPI, OpenID: user})
		if err != nil {
			t.Fatal(err)
		}
		if pay {
			p, _ := srv.Pay.PayParams(r.PrepayID)
			if msg := srv.RequestPayment(user, p); msg != "requestPayment:ok" {
				t.Fatal(msg)
			}
		}
	}
}

// TestOperatorTools runs order query/close, refund and bill against the
// simulator, as an operator would with --sim --base-url.
func TestOperatorTools(t *testing.T) {
	day := time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China)
	srv := wxpaytest.NewServer(t, wxpaytest.WithManualClock(day))
	opsOrders(t, srv, "OPS000000")
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

// TestOperatorToolsV3 runs the same tools for an APIv3 merchant (--sim
// --v3: the simulator's credentials, platform certificates downloaded):
// the orders are the same orders, seen through APIv3.
func TestOperatorToolsV3(t *testing.T) {
	ctx := context.Background()
	// APIv3 signatures carry the real time: the simulator's clock starts now.
	now := time.Now().In(wxpay.China)
	srv := wxpaytest.NewServer(t, wxpaytest.WithManualClock(now))
	opsOrders(t, srv, "OPSV30000")
	sim := []string{"--sim", "--v3", "--base-url", srv.URL}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"order", "query", "OPSV300001"}, sim...), `"trade_state": "SUCCESS"`},
		{append([]string{"order", "query", "OPSV300002"}, sim...), `"trade_state": "NOTPAY"`},
		{append([]string{"order", "close", "OPSV300002"}, sim...), "closed OPSV300002"},
		{append([]string{"refund", "OPSV300001", "--fee", "200", "--out-refund-no", "OPSV3R001"}, sim...), `"refund_fee": 200`},
	} {
		code, stdout, stderr := runCmd(t, "", c.args...)
		if code != 0 || !strings.Contains(stdout, c.want) {
			t.Fatalf("%v: exit %d\n%s\n%s", c.args, code, stdout, stderr)
		}
	}
	if q, err := srv.Pay.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: "OPSV300002"}); err != nil || q.TradeState != wxpay.TradeStateClosed {
		t.Fatalf("closed over v3, seen over v2: %+v %v", q, err)
	}
	if code, _, stderr := runCmd(t, "", append([]string{"order", "query", "NOSUCH0001"}, sim...)...); code != 1 || !strings.Contains(stderr, "ORDER_NOT_EXIST") {
		t.Fatalf("unknown order: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "", "order", "query", "OPSV300001", "--v3"); code != 2 || !strings.Contains(stderr, "--sim") {
		t.Fatalf("--v3 without --sim: exit %d %s", code, stderr)
	}
	// The day's bill once it is ready, the next day after 10:00. The
	// command signs with the real clock, so only the simulator's moves;
	// its timestamp window follows.
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 10, 0, 1, 0, wxpay.China)
	srv.Clock.Advance(next.Sub(now))
	srv.Sim.SetV3ClockSkew(-next.Sub(now))
	out := filepath.Join(t.TempDir(), "bill.csv")
	code, _, stderr := runCmd(t, "", append([]string{"bill", "--date", now.Format(time.DateOnly), "--out", out}, sim...)...)
	if code != 0 || !strings.Contains(stderr, "2 rows, 5.00 yuan paid, 2.00 yuan refunded") {
		t.Fatalf("v3 bill: exit %d\n%s", code, stderr)
	}
	for _, secret := range []string{"PRIVATE KEY"} {
		if data, _ := os.ReadFile(out); strings.Contains(string(data), secret) {
			t.Fatal("a secret in the bill output")
		}
	}
}
