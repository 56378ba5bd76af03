package wxsim_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// Example runs a mini-program payment against the simulator: a user, an
// order placed with unifiedorder, wx.requestPayment with the paySign the
// merchant computes, and the pay notify the merchant receives.
func Example() {
	// The merchant's notify endpoint: answer SUCCESS to a well-signed notify.
	notified := make(chan map[string]string, 1)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := parseFlat(b)
		if wxcrypto.Verify(wxpay.SignTypeMD5, wxsim.DefaultAPIKey, wxcrypto.FieldsFromMap(n), n["sign"]) {
			notified <- n
		}
		io.WriteString(w, "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>")
	}))
	defer merchant.Close()

	clock := wxsim.NewManualClock(time.Date(2026, 11, 28, 10, 0, 0, 0, wxpay.China))
	sim, _ := wxsim.New(wxsim.Config{Clock: clock, IDs: wxsim.NewSequentialIDs()})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()

	user, _ := sim.CreateUser(wxsim.NewUser{Balance: 10000})

	// unifiedorder, signed with the default merchant's API key.
	req := map[string]string{
		"appid": wxsim.DefaultAppID, "mch_id": wxsim.DefaultMchID, "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
		"body": "示例商店-咖啡", "out_trade_no": "20261128000001", "total_fee": "1800", "spbill_create_ip": "127.0.0.1",
		"notify_url": merchant.URL + "/notify", "trade_type": "JSAPI", "openid": user.OpenID,
	}
	req["sign"], _ = wxcrypto.SignMap(wxpay.SignTypeMD5, wxsim.DefaultAPIKey, req)
	resp, _ := http.Post(srv.URL+"/pay/unifiedorder", "text/xml", bytes.NewReader(flatXML(req)))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ans := parseFlat(b)
	fmt.Println("unifiedorder:", ans["return_code"], ans["result_code"], ans["prepay_id"])

	// The mini program calls wx.requestPayment with the merchant's paySign.
	pay := wxsim.PaymentRequest{OpenID: user.OpenID, AppID: wxsim.DefaultAppID, TimeStamp: "1764295200",
		NonceStr: "abc", Package: "prepay_id=" + ans["prepay_id"], SignType: "MD5"}
	pay.PaySign, _ = wxcrypto.SignMap(wxpay.SignTypeMD5, wxsim.DefaultAPIKey, map[string]string{
		"appId": pay.AppID, "timeStamp": pay.TimeStamp, "nonceStr": pay.NonceStr, "package": pay.Package, "signType": pay.SignType})
	fmt.Println(sim.RequestPayment(pay).ErrMsg)

	n := <-notified
	fmt.Println("notify:", n["out_trade_no"], n["total_fee"], n["transaction_id"])
	sim.Flush()
	fmt.Println("acknowledged:", sim.Notifications()[0].Acked)
	// Output:
	// unifiedorder: SUCCESS SUCCESS wx2026112810000000000000000000000001
	// requestPayment:ok
	// notify: 20261128000001 1800 4200000000202611280000000001
	// acknowledged: true
}

func flatXML(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<%s><![CDATA[%s]]></%s>", k, m[k], k)
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// parseFlat reads <xml><k>v</k>…</xml> (CDATA or plain text) for the
// example; the tests use encoding/xml.
func parseFlat(b []byte) map[string]string {
	out := map[string]string{}
	s := strings.TrimSuffix(strings.TrimPrefix(string(b), "<xml>"), "</xml>")
	for s != "" {
		end := strings.IndexByte(s, '>')
		name := s[1:end]
		close := strings.Index(s, "</"+name+">")
		v := s[end+1 : close]
		v = strings.TrimSuffix(strings.TrimPrefix(v, "<![CDATA["), "]]>")
		out[name] = v
		s = s[close+len(name)+3:]
	}
	return out
}
