package apiv2

import (
	"context"
	"net/url"
	"time"
)

var (
	epShortURL = &endpoint{name: "shorturl", path: "/tools/shorturl", safe: safeAlways}
	epReport   = &endpoint{name: "report", path: "/payitil/report", safe: safeAlways, timeout: time.Second, unsigned: true, noResult: true}
	epAuthCode = &endpoint{name: "authcodetoopenid", path: "/tools/authcodetoopenid", safe: safeAlways}
)

// ShortURL converts a Native mode 1 URL (weixin://wxpay/bizpayurl?…) into a
// short weixin://wxpay/s/… one for a smaller QR code (转换短链接, POST
// /tools/shorturl). The long URL is signed raw and URL-encoded on the wire,
// as WeChat requires.
func (c *Client) ShortURL(ctx context.Context, longURL string) (string, error) {
	r, err := c.call(ctx, epShortURL, func(e *encoder) {
		e.require(longURL != "" && len(longURL) <= 512, "shorturl: the long URL must have 1 to 512 characters")
		e.entries = append(e.entries, entry{name: "long_url", s: longURL, wire: url.QueryEscape(longURL)})
	})
	if err != nil {
		return "", err
	}
	s := r.get("short_url")
	if s == "" {
		return "", &Error{API: epShortURL.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: errAnswer("no short_url")}
	}
	return s, nil
}

// ReportRequest is a transaction-assurance report (交易保障, protocol.md
// §5.11): how a call to WeChat went.
type ReportRequest struct {
	InterfaceURL string        // the full URL of the API called; required
	ExecuteTime  time.Duration // how long it took (sent as execute_time_ in ms)
	ReturnCode   string        // required
	ReturnMsg    string
	ResultCode   string // required
	ErrCode      string
	ErrCodeDes   string
	OutTradeNo   string
	UserIP       string // the caller's IP; required
	Time         time.Time
	DeviceInfo   string
}

// Report sends a transaction-assurance report (POST /payitil/report). It
// is best effort: its default timeout is 1 s.
func (c *Client) Report(ctx context.Context, req *ReportRequest) error {
	_, err := c.call(ctx, epReport, func(e *encoder) {
		e.require(req.InterfaceURL != "" && req.ReturnCode != "" && req.ResultCode != "" && req.UserIP != "",
			"report: InterfaceURL, ReturnCode, ResultCode and UserIP are required")
		e.str("interface_url", req.InterfaceURL)
		e.num("execute_time_", req.ExecuteTime.Milliseconds())
		e.str("return_code", req.ReturnCode)
		e.str("return_msg", req.ReturnMsg)
		e.str("result_code", req.ResultCode)
		e.str("err_code", req.ErrCode)
		e.str("err_code_des", req.ErrCodeDes)
		e.str("out_trade_no", req.OutTradeNo)
		e.str("user_ip", req.UserIP)
		e.time("time", req.Time)
		e.str("device_info", req.DeviceInfo)
	})
	return err
}

// AuthCodeToOpenID returns the openid of the user who shows a payment code
// (付款码查询openid, POST /tools/authcodetoopenid). ErrAuthCodeExpire,
// ErrAuthCodeError and ErrAuthCodeInvalid are the usual failures.
func (c *Client) AuthCodeToOpenID(ctx context.Context, authCode string) (string, error) {
	r, err := c.call(ctx, epAuthCode, func(e *encoder) {
		e.require(authCode != "", "authcodetoopenid: the auth code is required")
		e.str("auth_code", authCode)
	})
	if err != nil {
		return "", err
	}
	s := r.get("openid")
	if s == "" {
		return "", &Error{API: epAuthCode.name, HTTPStatus: 200, ReturnCode: "SUCCESS", Unknown: true, Err: errAnswer("no openid")}
	}
	return s, nil
}
