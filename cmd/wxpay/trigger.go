package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/wxsim"
)

func init() { extraCommands = append(extraCommands, newTriggerCmd, newLogsCmd) }

// scenario is one `wxpay trigger` scenario: simulator faults to set, then
// the mini-program flow with a payer outcome.
type scenario struct {
	about   string
	faults  []map[string]any
	outcome string // success, cancel, insufficient
	refund  bool
}

var scenarios = map[string]scenario{
	"payment":      {about: "a user pays an order; the notify marks it PAID", outcome: "success"},
	"cancel":       {about: "the user closes the payment sheet (requestPayment:fail cancel); the order stays NOTPAY", outcome: "cancel"},
	"insufficient": {about: "the user's balance is short; the payment fails", outcome: "insufficient"},
	"refund":       {about: "a payment, then a partial refund through the admin API (needs --admin-token)", outcome: "success", refund: true},
	"notify-dup": {about: "the pay notify arrives twice at once; the order is paid exactly once", outcome: "success",
		faults: []map[string]any{{"api": "notify", "kind": "DUPLICATE", "count": 1}}},
	"notify-drop": {about: "the pay notify is lost; reading the order queries WeChat and finds it paid", outcome: "success",
		faults: []map[string]any{{"api": "notify", "kind": "DROP", "count": 1}}},
	"notify-probe": {about: "a notify with a wrong signature (WeChat's probe) comes first; it must be refused", outcome: "success",
		faults: []map[string]any{{"api": "notify", "kind": "BAD_SIGNATURE", "count": 1}}},
	"systemerror": {about: "unifiedorder answers SYSTEMERROR once; the service retries with identical parameters", outcome: "success",
		faults: []map[string]any{{"api": "unifiedorder", "kind": "SYSTEMERROR", "count": 1}}},
	"timeout": {about: "unifiedorder executes but its answer is lost; the retry gets the same prepay_id", outcome: "success",
		faults: []map[string]any{{"api": "unifiedorder", "kind": "DROP_AFTER_COMMIT", "count": 1}}},
}

func scenarioNames() string {
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func newTriggerCmd(s streams) *cobra.Command {
	var url, admin, sku string
	cmd := &cobra.Command{
		Use:   "trigger SCENARIO [--url http://127.0.0.1:8080] [--admin-token T]",
		Short: "Fire a payment scenario at a running `wxpay serve --sim`",
		Long: `trigger plays a mini-program user against a running service with its embedded
simulator (wxpay serve --sim): it logs in through the simulator's wx.login,
orders, pays with wx.requestPayment, and prints what happened — after setting
the simulator's faults the scenario needs. Watch the notifies with
'wxpay logs -f' in another terminal.

Scenarios:
` + scenarioHelp(),
		Example: `  wxpay trigger payment
  wxpay trigger notify-dup --url http://127.0.0.1:8080
  WXPAY_ADMIN_TOKEN=… wxpay trigger refund`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, ok := scenarios[args[0]]
			if !ok {
				return usageError{fmt.Errorf("unknown scenario %q; one of: %s", args[0], scenarioNames())}
			}
			if admin == "" {
				admin = os.Getenv("WXPAY_ADMIN_TOKEN")
			}
			if sc.refund && admin == "" {
				return usageError{errors.New("the refund scenario needs --admin-token (or WXPAY_ADMIN_TOKEN)")}
			}
			return runScenario(cmd.Context(), s.out, strings.TrimRight(url, "/"), admin, sku, sc)
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080", "the service started with `wxpay serve --sim`")
	cmd.Flags().StringVar(&admin, "admin-token", "", "the admin token (refund scenario)")
	cmd.Flags().StringVar(&sku, "sku", "coffee", "the product to order")
	return cmd
}

func scenarioHelp() string {
	var b strings.Builder
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-13s %s\n", n, scenarios[n].about)
	}
	return b.String()
}

func runScenario(ctx context.Context, out io.Writer, base, admin, sku string, sc scenario) error {
	hc := &http.Client{Timeout: 15 * time.Second}
	call := func(method, path, token string, body, v any) error {
		return jsonCall(ctx, hc, base, method, path, token, body, v)
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	for _, f := range sc.faults {
		if err := call("POST", "/sim/v1/faults", "", f, nil); err != nil {
			return fmt.Errorf("setting the simulator's fault (is %s a `wxpay serve --sim`?): %w", base, err)
		}
		say("fault set: %v %v ×%v", f["api"], f["kind"], f["count"])
	}
	var user struct{ OpenID string }
	if err := call("POST", "/sim/v1/users", "", map[string]any{}, &user); err != nil {
		return fmt.Errorf("creating a simulated user (is %s a `wxpay serve --sim`?): %w", base, err)
	}
	var code struct{ Code string }
	if err := call("POST", "/sim/v1/login-codes", "", map[string]string{"appid": wxsim.DefaultAppID, "openid": user.OpenID}, &code); err != nil {
		return err
	}
	var login struct{ Token, OpenID string }
	if err := call("POST", "/api/v1/login", "", map[string]string{"code": code.Code}, &login); err != nil {
		return err
	}
	say("logged in as %s", login.OpenID)
	var order struct {
		OutTradeNo string          `json:"out_trade_no"`
		TotalFee   int64           `json:"total_fee"`
		PayParams  apiv2.PayParams `json:"pay_params"`
	}
	err := call("POST", "/api/v1/orders", login.Token, map[string]any{"items": []map[string]any{{"sku": sku, "quantity": 1}}}, &order)
	if err != nil {
		return err
	}
	say("order %s: %s yuan, %s", order.OutTradeNo, apiv2.FormatYuan(order.TotalFee), order.PayParams.Package)
	p := order.PayParams
	var pay struct {
		ErrMsg string `json:"errMsg"`
	}
	if err := call("POST", "/sim/v1/request-payment", "", map[string]string{"openid": user.OpenID, "appId": p.AppID,
		"timeStamp": p.TimeStamp, "nonceStr": p.NonceStr, "package": p.Package, "signType": p.SignType, "paySign": p.PaySign,
		"outcome": sc.outcome}, &pay); err != nil {
		return err
	}
	say("wx.requestPayment → %s", pay.ErrMsg)
	var view struct {
		Status  string `json:"status"`
		Refunds []struct {
			OutRefundNo string `json:"out_refund_no"`
			Status      string `json:"status"`
		} `json:"refunds"`
	}
	want := "PAID"
	if sc.outcome != "success" {
		want = "NOTPAY"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := call("GET", "/api/v1/orders/"+order.OutTradeNo, login.Token, nil, &view); err != nil {
			return err
		}
		if view.Status == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	say("order %s is %s", order.OutTradeNo, view.Status)
	if view.Status != want {
		return fmt.Errorf("order is %s, expected %s", view.Status, want)
	}
	if sc.refund {
		var r struct {
			OutRefundNo string `json:"out_refund_no"`
			Status      string `json:"status"`
		}
		if err := call("POST", "/admin/api/v1/orders/"+order.OutTradeNo+"/refunds", admin,
			map[string]any{"refund_fee": max(order.TotalFee/2, 1), "reason": "wxpay trigger refund"}, &r); err != nil {
			return err
		}
		say("refund %s: %s (the simulator completes it after its refund delay; see `wxpay logs`)", r.OutRefundNo, r.Status)
	}
	say("see the notifies: wxpay logs --url %s", base)
	return nil
}

func newLogsCmd(s streams) *cobra.Command {
	var url string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [--url http://127.0.0.1:8080] [-f]",
		Short: "Show the simulator's notify delivery log (each try and the merchant's answer)",
		Example: `  wxpay logs
  wxpay logs -f --url http://127.0.0.1:8090   # a standalone wxpay sim`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hc := &http.Client{Timeout: 10 * time.Second}
			base := strings.TrimRight(url, "/")
			var since int64
			for {
				var log struct {
					Notifications []wxsim.NotifyAttempt `json:"notifications"`
				}
				if err := jsonCall(ctx, hc, base, "GET", fmt.Sprintf("/sim/v1/notifications?since=%d", since), "", nil, &log); err != nil {
					return fmt.Errorf("reading the notify log (is a simulator at %s?): %w", base, err)
				}
				for _, a := range log.Notifications {
					since = max(since, a.Seq)
					ref := a.OutTradeNo
					if a.OutRefundNo != "" {
						ref += " refund " + a.OutRefundNo
					}
					fmt.Fprintf(s.out, "%s #%d %-6s %s try %d → HTTP %d %s (%s)\n", a.Time.Format("15:04:05"), a.Seq, a.Kind, ref,
						a.Attempt, a.HTTPStatus, a.Verdict, clip(strings.ReplaceAll(a.Reply, "\n", ""), 80))
				}
				if !follow {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080", "the service (serve --sim) or simulator (sim) URL")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new tries")
	return cmd
}
