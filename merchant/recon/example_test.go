package recon_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/recon"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/wxsim"
)

// A day on the simulator: two orders paid, the notify of one lost. The
// next morning's reconciliation finds the lost payment in the bill and
// books it through a query.
func ExampleReconciler_Reconcile() {
	ctx := context.Background()
	clock := wxsim.NewManualClock(time.Date(2026, 11, 28, 9, 0, 0, 0, wxpay.China))
	sim, _ := wxsim.New(wxsim.Config{Clock: clock})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.NotifyDrop(10) // notifies are lost

	pay, _ := apiv2.NewClient(apiv2.Config{AppID: wxsim.DefaultAppID, MchID: wxsim.DefaultMchID, APIKey: wxsim.DefaultAPIKey},
		apiv2.WithBaseURL(srv.URL), apiv2.WithClock(clock.Now))
	gw, _ := wxgateway.New(wxgateway.Config{Pay: pay, NotifyURL: "http://127.0.0.1:9/notify"})
	dir, _ := os.MkdirTemp("", "recon-example")
	defer os.RemoveAll(dir)
	store, _ := sqlite.Open(ctx, filepath.Join(dir, "shop.db"), sqlite.WithNow(clock.Now))
	defer store.Close()
	svc, _ := payments.New(store, gw, payments.Config{
		Catalog: merchant.Catalog{"latte": {SKU: "latte", Name: "Latte", Price: 2800}},
		Now:     clock.Now,
	})
	user, _ := sim.CreateUser(wxsim.NewUser{})
	sess := &merchant.Session{OpenID: user.OpenID, AppID: wxsim.DefaultAppID}
	for i := range 2 {
		res, err := svc.CreateOrder(ctx, sess, payments.CreateOrderRequest{Items: []merchant.CartLine{{SKU: "latte", Quantity: 1}}})
		if err != nil {
			fmt.Println(err)
			return
		}
		sim.PayOrder(wxsim.DefaultMchID, res.Order.OutTradeNo, "", wxsim.OutcomeSuccess)
		if i == 0 {
			svc.Sync(ctx, res.Order.OutTradeNo) // this one we learn of by a query
		}
	}

	clock.Advance(25*time.Hour + 30*time.Minute) // 10:30 the next day
	rep, found, err := recon.New(svc, recon.Options{}).Reconcile(ctx, "2026-11-28")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("bill rows %d, matched %d, healed %d, bill %d fen, ours %d fen\n",
		rep.BillRows, rep.Matched, rep.Healed, rep.BillTotal, rep.LocalTotal)
	for _, e := range found {
		fmt.Println(e.Kind, "healed:", e.Healed)
	}
	// Output:
	// bill rows 2, matched 1, healed 1, bill 5600 fen, ours 5600 fen
	// missing_local healed: true
}
