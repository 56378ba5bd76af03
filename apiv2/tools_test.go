package apiv2

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

// The long URL is signed raw and sent URL-encoded (protocol.md §5.10).
func TestShortURL(t *testing.T) {
	const long = "weixin://wxpay/bizpayurl?sign=C380BEC2BFD727A4B6845133519F3AD6&appid=wx426b3015555a46be&mch_id=1225312702&product_id=P 1&time_stamp=1490840662&nonce_str=n"
	c, s := setup(t)
	s.handle("/tools/shorturl", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, err := ParseMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		wire := lookup(f, "long_url")
		if wire != url.QueryEscape(long) || strings.Contains(wire, "://") {
			t.Errorf("long_url on the wire %q", wire)
		}
		m := fieldMap(t, f)
		m["long_url"] = long
		if m["sign"] != refSign(wxpay.SignTypeMD5, testKey, m) {
			t.Error("the signature is not over the raw URL")
		}
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"short_url": "weixin://wxpay/s/An4baqw"})
	})
	got, err := c.ShortURL(context.Background(), long)
	if err != nil || got != "weixin://wxpay/s/An4baqw" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := c.ShortURL(context.Background(), strings.Repeat("u", 513)); err == nil {
		t.Error("a 513-character URL accepted")
	}
}

func TestShortURLNoAnswer(t *testing.T) {
	c, s := setup(t)
	s.handle("/tools/shorturl", func(w http.ResponseWriter, r *http.Request) { answerOK(t, w, wxpay.SignTypeMD5, testKey, nil) })
	_, err := c.ShortURL(context.Background(), "weixin://wxpay/bizpayurl?x=1")
	wantIs(t, err, ErrOutcomeUnknown)
}

// Report's answer is not signed; its request is.
func TestReport(t *testing.T) {
	c, s := setup(t)
	s.handle("/payitil/report", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{
			"interface_url": "https://api.mch.weixin.qq.com/pay/unifiedorder", "execute_time_": "123",
			"return_code": "SUCCESS", "return_msg": "OK", "result_code": "FAIL", "err_code": "SYSTEMERROR", "err_code_des": "系统超时",
			"out_trade_no": "T2026112900001", "user_ip": "203.0.113.7", "time": "20261129101530", "device_info": "WEB",
		}))
		writeXML(w, []byte("<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg><result_code><![CDATA[SUCCESS]]></result_code></xml>"))
	})
	r := testReport()
	r.ReturnMsg, r.ResultCode, r.ErrCode, r.ErrCodeDes = "OK", "FAIL", "SYSTEMERROR", "系统超时"
	r.OutTradeNo, r.Time, r.DeviceInfo = "T2026112900001", time.Date(2026, 11, 29, 10, 15, 30, 0, wxpay.China), "WEB"
	if err := c.Report(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// A report WeChat refused (result_code=FAIL) is an error, and one with
// no result_code at all is accepted.
func TestReportResult(t *testing.T) {
	c, s := setup(t)
	s.handle("/payitil/report", func(w http.ResponseWriter, r *http.Request) {
		writeXML(w, unsignedXML(t, map[string]string{"return_code": "SUCCESS", "result_code": "FAIL", "err_code": "PARAM_ERROR", "err_code_des": "interface_url"}))
	})
	err := c.Report(context.Background(), testReport())
	wantIs(t, err, ErrParamError)
	if OutcomeUnknown(err) {
		t.Error("unknown")
	}

	c, s = setup(t)
	s.handle("/payitil/report", func(w http.ResponseWriter, r *http.Request) {
		writeXML(w, []byte("<xml><return_code>SUCCESS</return_code></xml>"))
	})
	if err := c.Report(context.Background(), testReport()); err != nil {
		t.Fatal(err)
	}
}

func TestAuthCodeToOpenID(t *testing.T) {
	c, s := setup(t)
	s.handle("/tools/authcodetoopenid", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"auth_code": "134567890123456789"}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"openid": testOpenID})
	})
	got, err := c.AuthCodeToOpenID(context.Background(), "134567890123456789")
	if err != nil || got != testOpenID {
		t.Fatalf("%q %v", got, err)
	}
}

func TestAuthCodeToOpenIDNoAnswer(t *testing.T) {
	c, s := setup(t)
	s.handle("/tools/authcodetoopenid", func(w http.ResponseWriter, r *http.Request) { answerOK(t, w, wxpay.SignTypeMD5, testKey, nil) })
	_, err := c.AuthCodeToOpenID(context.Background(), "134567890123456789")
	wantIs(t, err, ErrOutcomeUnknown)
}
