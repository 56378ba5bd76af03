package wxsim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxsim"
)

func TestUnifiedOrderErrors(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	other, _ := e.sim.CreateUser(wxsim.NewUser{})
	base := kv("body", "b", "out_trade_no", "T100001", "total_fee", "100", "spbill_create_ip", "127.0.0.1",
		"notify_url", "https://example.com/notify", "trade_type", "JSAPI", "openid", openID)
	cases := []struct {
		name   string
		change []string
		ret    string // return_msg part for return_code=FAIL
		code   string // err_code
	}{
		{"no body", []string{"body", ""}, "缺少参数 body", ""},
		{"no out_trade_no", []string{"out_trade_no", ""}, "缺少参数 out_trade_no", ""},
		{"no total_fee", []string{"total_fee", ""}, "缺少参数 total_fee", ""},
		{"no ip", []string{"spbill_create_ip", ""}, "缺少参数 spbill_create_ip", ""},
		{"no notify_url", []string{"notify_url", ""}, "缺少参数 notify_url", ""},
		{"no trade_type", []string{"trade_type", ""}, "缺少参数 trade_type", ""},
		{"JSAPI without openid", []string{"openid", ""}, "缺少参数 openid", ""},
		{"NATIVE without product_id", []string{"trade_type", "NATIVE", "openid", ""}, "缺少参数 product_id", ""},
		{"MWEB without scene_info", []string{"trade_type", "MWEB", "openid", ""}, "缺少参数 scene_info", ""},
		{"zero fee", []string{"total_fee", "0"}, "", "PARAM_ERROR"},
		{"negative fee", []string{"total_fee", "-1"}, "", "PARAM_ERROR"},
		{"decimal fee", []string{"total_fee", "1.5"}, "", "PARAM_ERROR"},
		{"leading zero", []string{"total_fee", "0100"}, "", "PARAM_ERROR"},
		{"huge fee", []string{"total_fee", "1000000000000"}, "", "PARAM_ERROR"},
		{"fee_type USD", []string{"fee_type", "USD"}, "", "PARAM_ERROR"},
		{"bad ip", []string{"spbill_create_ip", "localhost"}, "", "PARAM_ERROR"},
		{"MICROPAY trade_type", []string{"trade_type", "MICROPAY"}, "", "PARAM_ERROR"},
		{"unknown trade_type", []string{"trade_type", "FOO"}, "", "PARAM_ERROR"},
		{"short out_trade_no", []string{"out_trade_no", "T1"}, "", "PARAM_ERROR"},
		{"bad out_trade_no", []string{"out_trade_no", "T100001#"}, "", "PARAM_ERROR"},
		{"long out_trade_no", []string{"out_trade_no", strings.Repeat("1", 33)}, "", "PARAM_ERROR"},
		{"long body", []string{"body", strings.Repeat("商", 43)}, "", "PARAM_ERROR"},
		{"long attach", []string{"attach", strings.Repeat("a", 128)}, "", "PARAM_ERROR"},
		{"bad detail", []string{"detail", "{not json"}, "", "PARAM_ERROR"},
		{"bad time_expire", []string{"time_expire", "2026-11-28"}, "", "PARAM_ERROR"},
		{"time_expire too soon", []string{"time_expire", "20261128100400"}, "", "PARAM_ERROR"},
		{"time_expire past", []string{"time_expire", "20261128090000"}, "", "PARAM_ERROR"},
		{"time_expire before time_start", []string{"time_start", "20261128120000", "time_expire", "20261128110000"}, "", "PARAM_ERROR"},
		{"notify_url with query", []string{"notify_url", "https://example.com/n?a=1"}, "", "PARAM_ERROR"},
		{"relative notify_url", []string{"notify_url", "/notify"}, "", "PARAM_ERROR"},
		{"ftp notify_url", []string{"notify_url", "ftp://example.com/n"}, "", "PARAM_ERROR"},
		{"unknown openid", []string{"openid", "oUnknown"}, "", "PARAM_ERROR"},
		{"limit_pay", []string{"limit_pay", "credit"}, "", "PARAM_ERROR"},
		{"receipt", []string{"receipt", "N"}, "", "PARAM_ERROR"},
	}
	for _, c := range cases {
		ans := e.call("/pay/unifiedorder", base.with(c.change...))
		if c.ret != "" {
			if ans["return_code"] != "FAIL" || !strings.Contains(ans["return_msg"], c.ret) {
				t.Errorf("%s: %v", c.name, ans)
			}
			continue
		}
		if ans["return_code"] != "SUCCESS" || ans["result_code"] != "FAIL" || ans["err_code"] != c.code || ans["err_code_des"] == "" {
			t.Errorf("%s: %v", c.name, ans)
		}
	}
	// An openid of another app.
	e2 := newEnv(t, func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.Apps = append(m.Apps, wxsim.App{AppID: "wx2222222222222222", AppSecret: "s2"})
		c.Merchants = []wxsim.Merchant{m}
	})
	u, err := e2.sim.CreateUser(wxsim.NewUser{AppID: "wx2222222222222222"})
	if err != nil {
		t.Fatal(err)
	}
	if ans := e2.call("/pay/unifiedorder", base.with("openid", u.OpenID)); ans["err_code"] != "PARAM_ERROR" || ans["err_code_des"] != "appid和openid不匹配" {
		t.Fatalf("openid of another app: %v", ans)
	}
	_ = other
}

func TestUnifiedOrderTradeTypes(t *testing.T) {
	e := newEnv(t)
	base := kv("body", "b", "total_fee", "100", "spbill_create_ip", "::1", "notify_url", "http://127.0.0.1/n")
	nat := e.call("/pay/unifiedorder", base.with("out_trade_no", "N100001", "trade_type", "NATIVE", "product_id", "P1"))
	if nat["trade_type"] != "NATIVE" || !strings.HasPrefix(nat["code_url"], "weixin://wxpay/bizpayurl?pr=") || nat["prepay_id"] == "" {
		t.Fatalf("NATIVE: %v", nat)
	}
	app := e.call("/pay/unifiedorder", base.with("out_trade_no", "A100001", "trade_type", "APP"))
	if app["trade_type"] != "APP" || app["prepay_id"] == "" || app["code_url"] != "" {
		t.Fatalf("APP: %v", app)
	}
	mweb := e.call("/pay/unifiedorder", base.with("out_trade_no", "M100001", "trade_type", "MWEB", "scene_info", `{"h5_info":{"type":"Wap"}}`))
	if !strings.Contains(mweb["mweb_url"], mweb["prepay_id"]) {
		t.Fatalf("MWEB: %v", mweb)
	}
}

// TestUnifiedOrderIdempotency checks WeChat's re-entry rule (protocol.md
// §5.1): same parameters, same prepay_id; different, INVALID_REQUEST;
// paid ORDERPAID; closed ORDERCLOSED; after 2 hours a new prepay_id.
func TestUnifiedOrderIdempotency(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	ans, otn := e.order(openID, 100)
	again := e.call("/pay/unifiedorder", kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", "100",
		"spbill_create_ip", "10.0.0.9", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if again["prepay_id"] != ans["prepay_id"] {
		t.Fatalf("re-entry with the same parameters: %v vs %v", again, ans)
	}
	diff := e.call("/pay/unifiedorder", kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", "101",
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if diff["err_code"] != "INVALID_REQUEST" || diff["err_code_des"] != "201 商户订单号重复" {
		t.Fatalf("re-entry with another amount: %v", diff)
	}
	e.clock.Advance(2 * time.Hour)
	fresh := e.call("/pay/unifiedorder", kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", "100",
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if fresh["prepay_id"] == "" || fresh["prepay_id"] == ans["prepay_id"] {
		t.Fatalf("after 2 h: %v", fresh)
	}
	// The old prepay_id no longer pays.
	req := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeMD5)
	req.OpenID = openID
	if res := e.sim.RequestPayment(req); res.OK() || !strings.Contains(res.ErrMsg, "失效") {
		t.Fatalf("old prepay_id: %s", res.ErrMsg)
	}
	e.pay(openID, fresh)
	paid := e.call("/pay/unifiedorder", kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", "100",
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if paid["err_code"] != "ORDERPAID" {
		t.Fatalf("after payment: %v", paid)
	}
	// Closed.
	_, otn2 := e.order(openID, 100)
	if c := e.call("/pay/closeorder", kv("out_trade_no", otn2)); c["result_code"] != "SUCCESS" || c["result_msg"] != "OK" {
		t.Fatalf("close: %v", c)
	}
	closed := e.call("/pay/unifiedorder", kv("body", "测试商店-商品", "out_trade_no", otn2, "total_fee", "100",
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if closed["err_code"] != "ORDERCLOSED" {
		t.Fatalf("after close: %v", closed)
	}
	if n := len(e.sim.Orders("")); n != 2 {
		t.Fatalf("orders = %d", n)
	}
}

func TestReentryErrCodeConfig(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.ReentryErrCode = "OUT_TRADE_NO_USED" })
	openID := e.user(0)
	_, otn := e.order(openID, 100)
	ans := e.call("/pay/unifiedorder", kv("body", "other", "out_trade_no", otn, "total_fee", "100",
		"spbill_create_ip", "127.0.0.1", "notify_url", e.merchant.url("/notify/pay"), "trade_type", "JSAPI", "openid", openID))
	if ans["err_code"] != "OUT_TRADE_NO_USED" {
		t.Fatalf("answer = %v", ans)
	}
}

func TestOrderQuery(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	if a := e.call("/pay/orderquery", kv()); a["return_code"] != "FAIL" || !strings.Contains(a["return_msg"], "缺少参数") {
		t.Fatalf("no number: %v", a)
	}
	if a := e.call("/pay/orderquery", kv("out_trade_no", "NOPE000")); a["err_code"] != "ORDERNOTEXIST" {
		t.Fatalf("unknown: %v", a)
	}
	ans, otn := e.order(openID, 250, "attach", "att", "device_info", "WEB")
	q := e.call("/pay/orderquery", kv("out_trade_no", otn))
	if q["trade_state"] != "NOTPAY" || q["total_fee"] != "250" || q["trade_state_desc"] != "订单未支付" || q["transaction_id"] != "" ||
		q["attach"] != "att" || q["device_info"] != "WEB" || q["time_end"] != "" {
		t.Fatalf("NOTPAY: %v", q)
	}
	e.pay(openID, ans)
	q = e.call("/pay/orderquery", kv("out_trade_no", otn))
	if q["trade_state"] != "SUCCESS" || q["openid"] != openID || q["time_end"] != "20261128100000" || q["bank_type"] == "" {
		t.Fatalf("SUCCESS: %v", q)
	}
	// transaction_id wins over out_trade_no.
	q2 := e.call("/pay/orderquery", kv("transaction_id", q["transaction_id"], "out_trade_no", "ignored0"))
	if q2["out_trade_no"] != otn {
		t.Fatalf("by transaction_id: %v", q2)
	}
}

func TestCloseOrder(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) { c.CloseMinAge = 0 }) // the 5-minute default
	openID := e.user(0)
	if a := e.call("/pay/closeorder", kv("out_trade_no", "NOPE000")); a["err_code"] != "ORDERNOTEXIST" {
		t.Fatalf("unknown: %v", a)
	}
	if a := e.call("/pay/closeorder", kv()); a["return_code"] != "FAIL" {
		t.Fatalf("no number: %v", a)
	}
	_, otn := e.order(openID, 100)
	if a := e.call("/pay/closeorder", kv("out_trade_no", otn)); a["err_code"] != "INVALID_REQUEST" || !strings.Contains(a["err_code_des"], "5分钟") {
		t.Fatalf("too early: %v", a)
	}
	e.clock.Advance(5 * time.Minute)
	if a := e.call("/pay/closeorder", kv("out_trade_no", otn)); a["result_code"] != "SUCCESS" {
		t.Fatalf("after 5 min: %v", a)
	}
	if a := e.call("/pay/closeorder", kv("out_trade_no", otn)); a["err_code"] != "ORDERCLOSED" {
		t.Fatalf("again: %v", a)
	}
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "CLOSED" {
		t.Fatalf("query: %v", q)
	}
	ans, otn2 := e.order(openID, 100)
	e.pay(openID, ans)
	e.clock.Advance(5 * time.Minute)
	if a := e.call("/pay/closeorder", kv("out_trade_no", otn2)); a["err_code"] != "ORDERPAID" {
		t.Fatalf("paid: %v", a)
	}
	// A closed order cannot be paid.
	ans3, otn3 := e.order(openID, 100)
	e.clock.Advance(5 * time.Minute)
	e.call("/pay/closeorder", kv("out_trade_no", otn3))
	req := paySign(apiKey, appID, ans3["prepay_id"], wxpay.SignTypeMD5)
	req.OpenID = openID
	if res := e.sim.RequestPayment(req); res.OK() || !strings.Contains(res.ErrMsg, "关闭") {
		t.Fatalf("pay after close: %s", res.ErrMsg)
	}
}

func TestOrderExpiry(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	ans, otn := e.order(openID, 100, "time_expire", "20261128101000") // 10 minutes
	e.clock.Advance(9 * time.Minute)
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "NOTPAY" {
		t.Fatalf("before expiry: %v", q)
	}
	e.clock.Advance(time.Minute)
	if q := e.call("/pay/orderquery", kv("out_trade_no", otn)); q["trade_state"] != "CLOSED" {
		t.Fatalf("after expiry: %v", q)
	}
	req := paySign(apiKey, appID, ans["prepay_id"], wxpay.SignTypeMD5)
	req.OpenID = openID
	if res := e.sim.RequestPayment(req); res.OK() {
		t.Fatal("paid an expired order")
	}
	o, _ := e.sim.Order(mchID, otn)
	if o.State != wxpay.TradeStateClosed || !o.ClosedAt.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("ledger: %+v", o)
	}
}
