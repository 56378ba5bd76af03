package wxgateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

func TestV2ErrorsMapToSentinels(t *testing.T) {
	srv := wxpaytest.NewServer(t)
	gw, err := wxgateway.New(wxgateway.Config{Pay: srv.Pay, Login: srv.Login, NotifyURL: "http://127.0.0.1:1/notify"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := &merchant.Order{OutTradeNo: "V2GWFAULT001", OpenID: srv.NewUser(t), Body: "latte", TotalFee: 2800,
		TradeType: wxpay.TradeTypeJSAPI, ClientIP: "203.0.113.7", ExpiresAt: time.Now().Add(30 * time.Minute)}
	bad := *o
	bad.TotalFee = 0
	if _, err := gw.Prepay(ctx, &bad); !errors.Is(err, merchant.ErrRejected) {
		t.Fatalf("an invalid order (never sent): %v", err)
	}
	if err := srv.Sim.InjectFault(wxsim.Fault{API: "unifiedorder", Kind: wxsim.FaultSystemError}); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Prepay(ctx, o); !errors.Is(err, merchant.ErrUnknownOutcome) {
		t.Fatalf("SYSTEMERROR: %v", err)
	}
	if _, err := gw.Query(ctx, "V2GWNOSUCH01"); !errors.Is(err, merchant.ErrOrderNotExist) {
		t.Fatalf("unknown order: %v", err)
	}
	if status, ct, body := gw.NotifyAck(nil); status != http.StatusOK || !strings.HasPrefix(ct, "text/xml") || !strings.Contains(string(body), "SUCCESS") {
		t.Errorf("v2 success reply: %d %s %s", status, ct, body)
	}
	if status, _, body := gw.NotifyAck(merchant.ErrBadNotify); status != http.StatusBadRequest || !strings.Contains(string(body), "FAIL") {
		t.Errorf("v2 refusal reply: %d %s", status, body)
	}
	if status, _, body := gw.NotifyAck(errors.New("db down")); status != http.StatusInternalServerError || !strings.Contains(string(body), "FAIL") {
		t.Errorf("v2 failure reply: %d %s", status, body)
	}
}
