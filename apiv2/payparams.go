package apiv2

import (
	"errors"
	"net/url"
	"strconv"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// PayParams are what wx.requestPayment (mini program) and
// getBrandWCPayRequest (in-WeChat web) need, signed (protocol.md §8). The
// JSON names are the ones the WeChat client expects. A mini program passes
// everything but AppID to wx.requestPayment, yet AppID is part of the
// signature.
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"` // Unix seconds, as a string
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"` // "prepay_id=…"
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// SignPayParams computes the pay parameters for a prepay id with the given
// app, key, sign type, timestamp and nonce: a pure function, for tests and
// for the `wxpay paysign` tool. Most callers want Client.PayParams.
func SignPayParams(appID string, key wxpay.Secret, st wxpay.SignType, prepayID, timeStamp, nonce string) (*PayParams, error) {
	if st == "" {
		st = wxpay.SignTypeMD5
	}
	if appID == "" || prepayID == "" || timeStamp == "" || nonce == "" {
		return nil, invalid("pay params need an app id, a prepay id, a timestamp and a nonce")
	}
	p := &PayParams{AppID: appID, TimeStamp: timeStamp, NonceStr: nonce, Package: "prepay_id=" + prepayID, SignType: string(st)}
	var err error
	p.PaySign, err = wxcrypto.Sign(st, key.Reveal(), p.fields())
	if err != nil {
		return nil, err
	}
	return p, nil
}

// fields returns the five signed fields, sorted.
func (p *PayParams) fields() []wxcrypto.Field {
	return []wxcrypto.Field{
		{Name: "appId", Value: p.AppID},
		{Name: "nonceStr", Value: p.NonceStr},
		{Name: "package", Value: p.Package},
		{Name: "signType", Value: p.SignType},
		{Name: "timeStamp", Value: p.TimeStamp},
	}
}

// CanonicalString returns the string that paySign signs, key redacted.
func (p *PayParams) CanonicalString() string { return wxcrypto.CanonicalString(p.fields()) }

// PayParams signs the pay parameters of a prepay id for the mini program
// (or in-WeChat web JSAPI), with the client's app, key and sign type, the
// current time and a fresh nonce. The sign type must match the one of the
// unifiedorder call, which it does when both come from this client.
func (c *Client) PayParams(prepayID string) (*PayParams, error) {
	return SignPayParams(c.cfg.AppID, c.cfg.APIKey, c.signType, prepayID,
		strconv.FormatInt(c.now().Unix(), 10), c.nonce())
}

// VerifyPayParams checks a paySign the way the WeChat client does; the
// simulator and tests use it. It returns a diagnosis when it fails.
func VerifyPayParams(p *PayParams, key wxpay.Secret) (bool, *wxcrypto.Diagnosis) {
	st := wxpay.SignType(p.SignType)
	f := p.fields()
	if st.Valid() && wxcrypto.Verify(st, key.Reveal(), f, p.PaySign) {
		return true, nil
	}
	return false, wxcrypto.Diagnose(f, p.PaySign, wxcrypto.DiagnoseOptions{Key: key.Reveal(), SignType: st})
}

// NativeURL returns the signed Native pay mode 1 URL for a product
// (protocol.md §9): weixin://wxpay/bizpayurl?sign=…&appid=…&mch_id=…&
// product_id=…&time_stamp=…&nonce_str=…, to show as a QR code (shorten it
// with ShortURL). When a user scans it, WeChat calls the product callback
// URL configured in the merchant platform: see ParseNativeCallback.
func (c *Client) NativeURL(productID string) (string, error) {
	if productID == "" || len(productID) > 32 {
		return "", invalid("native: product id must have 1 to 32 characters")
	}
	f := []wxcrypto.Field{
		{Name: "appid", Value: c.cfg.AppID},
		{Name: "mch_id", Value: c.cfg.MchID},
		{Name: "nonce_str", Value: c.nonce()},
		{Name: "product_id", Value: productID},
		{Name: "time_stamp", Value: strconv.FormatInt(c.now().Unix(), 10)},
	}
	sign, err := wxcrypto.Sign(wxpay.SignTypeMD5, c.key, f)
	if err != nil {
		return "", err
	}
	v := url.Values{}
	for _, x := range f {
		v.Set(x.Name, x.Value)
	}
	v.Set("sign", sign)
	return "weixin://wxpay/bizpayurl?" + v.Encode(), nil
}

// NativeCallback is WeChat's request to the product callback URL when a
// user scans a mode 1 QR code.
type NativeCallback struct {
	AppID       string
	MchID       string
	OpenID      string
	IsSubscribe string
	NonceStr    string
	ProductID   string
	Fields      []wxcrypto.Field // every field, sorted
}

// ErrNotifySignature is returned when a notify or callback from WeChat has a
// missing or wrong signature. Answer it with a FAIL reply; never act on it.
var ErrNotifySignature = errors.New("apiv2: notify signature missing or invalid")

// ParseNativeCallback decodes and verifies the mode 1 product callback: the
// signature, and that appid and mch_id are this client's.
func (c *Client) ParseNativeCallback(body []byte) (*NativeCallback, error) {
	fields, err := ParseMessage(body)
	if err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
	}
	if !wxcrypto.Verify(wxpay.SignTypeMD5, c.key, fields, lookup(fields, "sign")) {
		return nil, &NotifyError{Reason: ReasonSignature, Err: ErrNotifySignature,
			Diagnosis: c.diagnose(fields, lookup(fields, "sign"), wxpay.SignTypeMD5, c.key)}
	}
	cb := &NativeCallback{
		AppID: lookup(fields, "appid"), MchID: lookup(fields, "mch_id"), OpenID: lookup(fields, "openid"),
		IsSubscribe: lookup(fields, "is_subscribe"), NonceStr: lookup(fields, "nonce_str"),
		ProductID: lookup(fields, "product_id"), Fields: fields,
	}
	if cb.AppID != c.cfg.AppID || cb.MchID != c.cfg.MchID {
		return nil, &NotifyError{Reason: ReasonMerchant, Err: errMismatch("native callback for another app or merchant")}
	}
	if cb.ProductID == "" {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: errMismatch("native callback without product_id")}
	}
	return cb, nil
}

// NativeCallbackReply builds the signed answer to a mode 1 callback: with a
// prepay id (from UnifiedOrder with TradeType NATIVE and the callback's
// ProductID) the user is shown the payment; with errDesc instead, the
// scan fails with that message.
func (c *Client) NativeCallbackReply(prepayID, errDesc string) ([]byte, error) {
	e := getEncoder()
	defer putEncoder(e)
	e.str("return_code", "SUCCESS")
	e.str("appid", c.cfg.AppID)
	e.str("mch_id", c.cfg.MchID)
	e.str("nonce_str", c.nonce())
	if prepayID != "" {
		e.str("prepay_id", prepayID)
		e.str("result_code", "SUCCESS")
	} else {
		e.str("result_code", "FAIL")
		if errDesc == "" {
			errDesc = "下单失败"
		}
		e.str("err_code_des", errDesc)
	}
	return e.encode(wxpay.SignTypeMD5, c.key)
}

type errMismatch string

func (e errMismatch) Error() string { return string(e) }
