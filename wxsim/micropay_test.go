package wxsim_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

func mpReq(otn, code string, fee int64) msg {
	return kv("body", "门店-商品", "out_trade_no", otn, "total_fee", strconv.FormatInt(fee, 10),
		"spbill_create_ip", "10.1.2.3", "auth_code", code, "device_info", "POS1")
}

func (e *env) authCode(openID string, outcome wxsim.MicropayOutcome) string {
	e.t.Helper()
	code, err := e.sim.AuthCode(openID, outcome)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(code) != 18 {
		e.t.Fatalf("auth code %q", code)
	}
	return code
}

func TestMicropayOutcomes(t *testing.T) {
	cases := []struct {
		outcome    wxsim.MicropayOutcome
		balance    int64
		errCode    string
		state      wxpay.TradeState // right after the call ("" = no order)
		afterDelay wxpay.TradeState
		debited    bool
	}{
		{wxsim.MicropaySuccess, 1000, "", wxpay.TradeStateSuccess, wxpay.TradeStateSuccess, true},
		{wxsim.MicropaySuccess, 10, "NOTENOUGH", "", "", false},
		{wxsim.MicropayUserPaying, 1000, "USERPAYING", wxpay.TradeStateUserPaying, wxpay.TradeStateSuccess, true},
		{wxsim.MicropayUserPayingFail, 1000, "USERPAYING", wxpay.TradeStateUserPaying, wxpay.TradeStatePayError, false},
		{wxsim.MicropayUserPayingNever, 1000, "USERPAYING", wxpay.TradeStateUserPaying, wxpay.TradeStateUserPaying, false},
		{wxsim.MicropayUserPaying, 10, "USERPAYING", wxpay.TradeStateUserPaying, wxpay.TradeStatePayError, false},
		{wxsim.MicropayAuthCodeExpire, 1000, "AUTHCODEEXPIRE", "", "", false},
		{wxsim.MicropayNotEnough, 1000, "NOTENOUGH", "", "", false},
		{wxsim.MicropaySystemError, 1000, "SYSTEMERROR", wxpay.TradeStateSuccess, wxpay.TradeStateSuccess, true},
		{wxsim.MicropayBankError, 1000, "BANKERROR", wxpay.TradeStateSuccess, wxpay.TradeStateSuccess, true},
	}
	for _, c := range cases {
		e := newEnv(t)
		openID := e.user(c.balance)
		code := e.authCode(openID, c.outcome)
		ans := e.call("/pay/micropay", mpReq("MP100001", code, 100))
		if ans["err_code"] != c.errCode {
			t.Errorf("%s: %v", c.outcome, ans)
			continue
		}
		if c.errCode == "" && (ans["trade_type"] != "MICROPAY" || ans["openid"] != openID || ans["transaction_id"] == "" ||
			ans["total_fee"] != "100" || ans["time_end"] != "20261128100000" || ans["device_info"] != "POS1") {
			t.Errorf("%s: payment fields %v", c.outcome, ans)
		}
		q := e.call("/pay/orderquery", kv("out_trade_no", "MP100001"))
		if c.state == "" {
			if q["err_code"] != "ORDERNOTEXIST" {
				t.Errorf("%s: query %v", c.outcome, q)
			}
			continue
		}
		if q["trade_state"] != string(c.state) {
			t.Errorf("%s: state %v", c.outcome, q)
		}
		e.clock.Advance(10 * time.Second) // UserPayingDelay
		q = e.call("/pay/orderquery", kv("out_trade_no", "MP100001"))
		if q["trade_state"] != string(c.afterDelay) {
			t.Errorf("%s: state after the delay %v", c.outcome, q)
		}
		u, _ := e.sim.User(openID)
		if debited := u.Balance == c.balance-100; debited != c.debited {
			t.Errorf("%s: balance %d", c.outcome, u.Balance)
		}
		// Micropay sends no notify.
		e.sim.Flush()
		if n := len(e.sim.Notifications()); n != 0 {
			t.Errorf("%s: %d notifies", c.outcome, n)
		}
	}
}

func TestMicropayAuthCodes(t *testing.T) {
	e := newEnv(t)
	openID := e.user(0)
	cases := []struct {
		name, code, errCode string
	}{
		{"short", "1300", "AUTH_CODE_ERROR"},
		{"letters", "13000000000000000a", "AUTH_CODE_ERROR"},
		{"not WeChat", "280000000000000001", "AUTH_CODE_INVALID"},
		{"never issued", "130000009999999999", "AUTH_CODE_INVALID"},
	}
	for _, c := range cases {
		if a := e.call("/pay/micropay", mpReq("MPA00001", c.code, 100)); a["err_code"] != c.errCode {
			t.Errorf("%s: %v", c.name, a)
		}
	}
	code := e.authCode(openID, "")
	if a := e.call("/pay/micropay", mpReq("MPA00002", code, 100)); a["result_code"] != "SUCCESS" {
		t.Fatalf("pay: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("MPA00003", code, 100)); a["err_code"] != "AUTH_CODE_ERROR" {
		t.Fatalf("used twice: %v", a)
	}
	old := e.authCode(openID, "")
	e.clock.Advance(time.Minute)
	if a := e.call("/pay/micropay", mpReq("MPA00004", old, 100)); a["err_code"] != "AUTHCODEEXPIRE" {
		t.Fatalf("expired: %v", a)
	}
	// Re-submitting a paid out_trade_no.
	if a := e.call("/pay/micropay", mpReq("MPA00002", code, 100)); a["err_code"] != "ORDERPAID" {
		t.Fatalf("re-submitted: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("MPA00002", code, 200)); a["err_code"] != "OUT_TRADE_NO_USED" {
		t.Fatalf("re-submitted with another amount: %v", a)
	}
	// authcodetoopenid does not use the code up.
	c2 := e.authCode(openID, "")
	if a := e.call("/tools/authcodetoopenid", kv("auth_code", c2)); a["openid"] != openID {
		t.Fatalf("authcodetoopenid: %v", a)
	}
	if a := e.call("/tools/authcodetoopenid", kv("auth_code", "130000009999999999")); a["err_code"] != "AUTH_CODE_INVALID" {
		t.Fatalf("authcodetoopenid unknown: %v", a)
	}
	if a := e.call("/tools/authcodetoopenid", kv()); a["return_code"] != "FAIL" {
		t.Fatalf("authcodetoopenid without code: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("MPA00005", c2, 100)); a["result_code"] != "SUCCESS" {
		t.Fatalf("pay after authcodetoopenid: %v", a)
	}
	// A micropay with a unifiedorder's number.
	_, otn := e.order(openID, 100)
	if a := e.call("/pay/micropay", mpReq(otn, e.authCode(openID, ""), 100)); a["err_code"] != "OUT_TRADE_NO_USED" {
		t.Fatalf("unifiedorder number: %v", a)
	}
	// A micropay's number in unifiedorder.
	if a := e.call("/pay/unifiedorder", uoReq("MPA00005", openID)); a["err_code"] != "OUT_TRADE_NO_USED" {
		t.Fatalf("micropay number in unifiedorder: %v", a)
	}
	// closeorder does not close a micropay.
	e.clock.Advance(time.Minute)
	if a := e.call("/pay/closeorder", kv("out_trade_no", "MPA00005")); a["err_code"] != "ORDERPAID" {
		t.Fatalf("closeorder: %v", a)
	}
}

func TestReverse(t *testing.T) {
	e := newEnv(t)
	openID := e.user(1000)
	// USERPAYING for ever: reverse is needed.
	code := e.authCode(openID, wxsim.MicropayUserPayingNever)
	if a := e.call("/pay/micropay", mpReq("RV100001", code, 100)); a["err_code"] != "USERPAYING" {
		t.Fatalf("micropay: %v", a)
	}
	e.clock.Advance(time.Hour)
	if q := e.call("/pay/orderquery", kv("out_trade_no", "RV100001")); q["trade_state"] != "USERPAYING" {
		t.Fatalf("query: %v", q)
	}
	if a := e.call("/pay/micropay", mpReq("RV100001", code, 100)); a["err_code"] != "USERPAYING" {
		t.Fatalf("re-submitted while paying: %v", a)
	}
	a := e.call("/secapi/pay/reverse", kv("out_trade_no", "RV100001"))
	if a["result_code"] != "SUCCESS" || a["recall"] != "N" {
		t.Fatalf("reverse: %v", a)
	}
	if q := e.call("/pay/orderquery", kv("out_trade_no", "RV100001")); q["trade_state"] != "REVOKED" {
		t.Fatalf("after reverse: %v", q)
	}
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", "RV100001")); a["result_code"] != "SUCCESS" {
		t.Fatalf("reverse again: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("RV100001", code, 100)); a["err_code"] != "ORDERREVERSED" {
		t.Fatalf("micropay after reverse: %v", a)
	}
	// A paid micropay reversed: the money goes back.
	code = e.authCode(openID, "")
	e.call("/pay/micropay", mpReq("RV100002", code, 300))
	if u, _ := e.sim.User(openID); u.Balance != 700 {
		t.Fatalf("balance after paying %d", u.Balance)
	}
	o, _ := e.sim.Order(mchID, "RV100002")
	if a := e.call("/secapi/pay/reverse", kv("transaction_id", o.TransactionID)); a["result_code"] != "SUCCESS" {
		t.Fatalf("reverse paid: %v", a)
	}
	if u, _ := e.sim.User(openID); u.Balance != 1000 {
		t.Fatalf("balance after reverse %d", u.Balance)
	}
	// A USERPAYING that would succeed later is cancelled by reverse.
	code = e.authCode(openID, wxsim.MicropayUserPaying)
	e.call("/pay/micropay", mpReq("RV100003", code, 100))
	e.call("/secapi/pay/reverse", kv("out_trade_no", "RV100003"))
	e.clock.Advance(time.Minute)
	if q := e.call("/pay/orderquery", kv("out_trade_no", "RV100003")); q["trade_state"] != "REVOKED" {
		t.Fatalf("cancelled USERPAYING: %v", q)
	}
	// Errors.
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", "NOPE0001")); a["err_code"] != "ORDERNOTEXIST" || a["recall"] != "N" {
		t.Fatalf("unknown: %v", a)
	}
	if a := e.call("/secapi/pay/reverse", kv()); a["return_code"] != "FAIL" {
		t.Fatalf("no number: %v", a)
	}
	if a := e.call("/secapi/pay/reverse", kv("transaction_id", "x")); a["err_code"] != "INVALID_TRANSACTIONID" {
		t.Fatalf("bad transaction_id: %v", a)
	}
	_, otn := e.order(openID, 100)
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", otn)); a["err_code"] != "INVALID_REQUEST" {
		t.Fatalf("not a micropay: %v", a)
	}
	code = e.authCode(openID, "")
	e.call("/pay/micropay", mpReq("RV100004", code, 100))
	e.clock.Advance(8 * 24 * time.Hour)
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", "RV100004")); a["err_code"] != "REVERSE_EXPIRE" {
		t.Fatalf("after 7 days: %v", a)
	}
	// A refunded micropay is not reversed.
	code = e.authCode(openID, "")
	e.call("/pay/micropay", mpReq("RV100005", code, 100))
	e.call("/secapi/pay/refund", refundReq("RV100005", "RRV5", 100, 50))
	if a := e.call("/secapi/pay/reverse", kv("out_trade_no", "RV100005")); a["err_code"] != "INVALID_REQUEST" {
		t.Fatalf("refunded: %v", a)
	}
}

// TestPayOrderUserPaying: the cashier page completes or fails a waiting
// micropay.
func TestPayOrderUserPaying(t *testing.T) {
	e := newEnv(t)
	openID := e.user(1000)
	e.call("/pay/micropay", mpReq("UP100001", e.authCode(openID, wxsim.MicropayUserPayingNever), 100))
	e.call("/pay/micropay", mpReq("UP100002", e.authCode(openID, wxsim.MicropayUserPayingNever), 100))
	if r, err := e.sim.PayOrder(mchID, "UP100001", "", wxsim.OutcomeSuccess); err != nil || !r.OK() && r.ErrMsg != "pay:ok" {
		t.Fatalf("pay: %+v %v", r, err)
	}
	if r, err := e.sim.PayOrder(mchID, "UP100002", "", wxsim.OutcomeCancel); err != nil || r.ErrMsg == "pay:ok" {
		t.Fatalf("cancel: %+v %v", r, err)
	}
	o1, _ := e.sim.Order(mchID, "UP100001")
	o2, _ := e.sim.Order(mchID, "UP100002")
	if o1.State != wxpay.TradeStateSuccess || o2.State != wxpay.TradeStatePayError {
		t.Fatalf("states %s %s", o1.State, o2.State)
	}
}

// TestSandboxMicropay checks the sandbox's magic amounts.
func TestSandboxMicropay(t *testing.T) {
	e := newEnv(t)
	m := msg{"mch_id": mchID, "nonce_str": "abc"}
	sig, _ := wxcrypto.SignMap(wxpay.SignTypeMD5, apiKey, m)
	b, _ := e.raw("POST", "/sandboxnew/pay/getsignkey", m.with("sign", sig).xmlBody())
	key := parseXML(t, b)["sandbox_signkey"]
	cases := map[int64]string{101: "", 102: "USERPAYING", 103: "USERPAYING", 104: "AUTHCODEEXPIRE", 105: "NOTENOUGH",
		106: "SYSTEMERROR", 107: "BANKERROR", 999: ""}
	for fee, want := range cases {
		for _, prefix := range []string{"/sandboxnew", "/xdc/apiv2sandbox"} {
			otn := "SB" + strconv.FormatInt(fee, 10) + strconv.Itoa(len(prefix))
			a := e.callKey(prefix+"/pay/micropay", mpReq(otn, "134567890123456789", fee), key)
			if a["err_code"] != want {
				t.Errorf("%s %d: %v", prefix, fee, a)
			}
		}
	}
	// Sandbox orders are not production orders.
	if a := e.call("/pay/orderquery", kv("out_trade_no", "SB10111")); a["err_code"] != "ORDERNOTEXIST" {
		t.Fatalf("production sees a sandbox order: %v", a)
	}
	if a := e.callKey("/sandboxnew/pay/orderquery", kv("out_trade_no", "SB10111"), key); a["trade_state"] != "SUCCESS" {
		t.Fatalf("sandbox query: %v", a)
	}
	if a := e.callKey("/sandboxnew/pay/reverse", kv("out_trade_no", "SB10311"), key); a["result_code"] != "SUCCESS" {
		t.Fatalf("sandbox reverse: %v", a)
	}
	if a := e.callKey("/sandboxnew/pay/refund", refundReq("SB10111", "SBR1", 101, 101), key); a["result_code"] != "SUCCESS" {
		t.Fatalf("sandbox refund: %v", a)
	}
}

func TestMicropayMoreErrors(t *testing.T) {
	e := newEnv(t)
	openID := e.user(1000)
	if a := e.call("/pay/micropay", mpReq("ME100001", e.authCode(openID, ""), 0)); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("zero fee: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("ME100001", "", 1)); a["return_code"] != "FAIL" {
		t.Fatalf("no auth_code: %v", a)
	}
	if a := e.call("/pay/micropay", mpReq("ME100001", e.authCode(openID, ""), 1).with("time_expire", "20261128100030")); a["err_code"] != "PARAM_ERROR" {
		t.Fatalf("time_expire under a minute: %v", a)
	}
	// PAYERROR, then the same number again: ORDERCLOSED.
	code := e.authCode(openID, wxsim.MicropayUserPayingFail)
	e.call("/pay/micropay", mpReq("ME100002", code, 100))
	if a := e.call("/pay/closeorder", kv("out_trade_no", "ME100002")); a["err_code"] != "TRADE_STATE_ERROR" {
		t.Fatalf("closing a waiting micropay: %v", a)
	}
	e.clock.Advance(10 * time.Second)
	if a := e.call("/pay/micropay", mpReq("ME100002", code, 100)); a["err_code"] != "ORDERCLOSED" {
		t.Fatalf("after PAYERROR: %v", a)
	}
}

// TestInjectedErrorCodes covers the documented codes that only risk control,
// permissions or WeChat's own trouble produce: the ERR_CODE fault makes each
// answer as documented, signed.
func TestInjectedErrorCodes(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ api, path, code string }{
		{"unifiedorder", "/pay/unifiedorder", "NOAUTH"},
		{"unifiedorder", "/pay/unifiedorder", "NOTENOUGH"},
		{"closeorder", "/pay/closeorder", "SYSTEMERROR"},
		{"refund", "/secapi/pay/refund", "BIZERR_NEED_RETRY"},
		{"refund", "/secapi/pay/refund", "USER_ACCOUNT_ABNORMAL"},
		{"refund", "/secapi/pay/refund", "INVALID_REQ_TOO_MUCH"},
		{"refund", "/secapi/pay/refund", "NOTENOUGH"},
		{"refund", "/secapi/pay/refund", "FREQUENCY_LIMITED"},
		{"micropay", "/pay/micropay", "NOTSUPORTCARD"},
		{"micropay", "/pay/micropay", "BUYER_MISMATCH"},
		{"micropay", "/pay/micropay", "TRADE_ERROR"},
		{"micropay", "/pay/micropay", "NOAUTH"},
		{"reverse", "/secapi/pay/reverse", "TRADE_ERROR"},
		{"authcodetoopenid", "/tools/authcodetoopenid", "SYSTEMERROR"},
		{"shorturl", "/tools/shorturl", "SYSTEMERROR"},
	}
	for _, c := range cases {
		if err := e.sim.InjectFault(wxsim.Fault{API: c.api, Kind: wxsim.FaultErrCode, ErrCode: c.code}); err != nil {
			t.Fatal(err)
		}
		a := e.call(c.path, kv("out_trade_no", "IE000001"))
		if a["return_code"] != "SUCCESS" || a["result_code"] != "FAIL" || a["err_code"] != c.code || a["err_code_des"] == "" {
			t.Errorf("%s %s: %v", c.path, c.code, a)
		}
	}
}
