package wxpaytest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// TestSeedFlowV3 runs the mini-program flow on APIv3 between the two
// independent v3 implementations: the apiv3 SDK (request signing, the
// certificate manager, response and notify verification, AES-GCM) and the
// simulator. The order it creates is the same order v2 sees.
func TestSeedFlowV3(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var notices []*apiv3.Notify
	var client *apiv3.Client
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		n, err := client.ParseNotify(r.Context(), r.Header, body)
		if err != nil {
			t.Errorf("v3 notify refused: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		notices = append(notices, n)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	srv := wxpaytest.NewServer(t)
	creds, err := srv.Sim.V3Credentials(srv.MchID)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := apiv3.NewClient(apiv3.Config{
		MchID: srv.MchID, AppID: srv.AppID, CertSerial: creds.CertSerial,
		PrivateKey: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key),
		NotifyURL: merchant.URL + "/notify/v3",
	}, apiv3.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := apiv3.NewCertificateManager(boot, wxpay.Secret(creds.APIv3Key))
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer mgr.Stop()
	if client, err = boot.WithVerifier(mgr); err != nil {
		t.Fatal(err)
	}

	user := srv.NewUser(t)
	prepay, err := client.PrepayJSAPI(ctx, &apiv3.PrepayRequest{Description: "wxpay-latte", OutTradeNo: "V3SEED000001",
		Total: 2800, OpenID: user})
	if err != nil {
		t.Fatal(err)
	}
	pp, err := client.MiniProgramPayParams(srv.AppID, prepay.PrepayID)
	if err != nil {
		t.Fatal(err)
	}
	res := srv.Sim.RequestPayment(wxsim.PaymentRequest{OpenID: user, AppID: pp.AppID, TimeStamp: pp.TimeStamp,
		NonceStr: pp.NonceStr, Package: pp.Package, SignType: pp.SignType, PaySign: pp.PaySign})
	if !res.OK() {
		t.Fatalf("requestPayment with signType RSA: %s", res.ErrMsg)
	}
	srv.Sim.Flush()
	if err := srv.Sim.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(notices) != 1 || notices[0].Transaction == nil || notices[0].Transaction.OutTradeNo != "V3SEED000001" ||
		notices[0].Transaction.Amount.Total != 2800 || !notices[0].Transaction.Paid() {
		t.Fatalf("v3 notifies: %+v", notices)
	}
	mu.Unlock()
	tx, err := client.QueryByOutTradeNo(ctx, "V3SEED000001")
	if err != nil || tx.TradeState != wxpay.TradeStateSuccess {
		t.Fatalf("v3 query: %+v, %v", tx, err)
	}
	// The same order, seen through v2.
	q, err := srv.Pay.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: "V3SEED000001"})
	if err != nil || q.TradeState != wxpay.TradeStateSuccess || q.TotalFee != 2800 {
		t.Fatalf("v2 query of the v3 order: %+v, %v", q, err)
	}
}
