package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
	"github.com/wxpay-go/wxpay/miniprogram"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The service wired the way cmd/wxpay does, against the simulator, and a
// mini program logging in and reading the catalog.
func Example() {
	ctx := context.Background()
	sim, _ := wxsim.New(wxsim.Config{})
	defer sim.Close()
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()

	metrics := httpapi.NewMetrics(nil)
	pay, _ := apiv2.NewClient(apiv2.Config{AppID: wxsim.DefaultAppID, MchID: wxsim.DefaultMchID, APIKey: wxsim.DefaultAPIKey},
		apiv2.WithBaseURL(simSrv.URL))
	login, _ := miniprogram.NewClient(wxsim.DefaultAppID, wxsim.DefaultAppSecret, miniprogram.WithBaseURL(simSrv.URL))
	gw, _ := wxgateway.New(wxgateway.Config{Pay: pay, Login: login, NotifyURL: "http://127.0.0.1:8080/wxpay/notify/pay",
		Observe: metrics.ObserveWeChat})
	dir, _ := os.MkdirTemp("", "httpapi-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "merchant.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	svc, _ := payments.New(store, gw, payments.Config{
		Catalog: merchant.Catalog{"COFFEE": {SKU: "COFFEE", Name: "Coffee", Price: 1500}},
		Metrics: metrics,
	})
	srv, err := httpapi.New(httpapi.Config{Service: svc, AdminToken: "an-admin-token-of-32-characters!", Metrics: metrics})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = srv.Mount("/sim/", sim) // as `wxpay serve --sim` does
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	user, _ := sim.CreateUser(wxsim.NewUser{})
	code, _ := sim.LoginCode(wxsim.DefaultAppID, user.OpenID)
	res, _ := ts.Client().Post(ts.URL+"/api/v1/login", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	fmt.Println("login:", res.StatusCode)
	res.Body.Close()

	res, _ = ts.Client().Get(ts.URL + "/api/v1/products")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(string(body))
	// Output:
	// login: 200
	// {"products":[{"sku":"COFFEE","name":"Coffee","price":1500}]}
}
