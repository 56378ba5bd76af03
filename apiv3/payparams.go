package apiv3

import (
	"crypto/rsa"
	"strconv"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// PayParams are what wx.requestPayment (mini program) and
// WeixinJSBridge getBrandWCPayRequest (in-WeChat web) need for an APIv3
// JSAPI order, signed with RSA (protocol.md §13.5). The JSON names are the
// ones the WeChat client expects. A mini program passes everything but
// AppID to wx.requestPayment, yet AppID is part of the signature.
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"` // Unix seconds, as a string
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`  // "prepay_id=…"
	SignType  string `json:"signType"` // "RSA"
	PaySign   string `json:"paySign"`
}

// SignPayParams computes the pay parameters for a prepay id with the given
// key, app, timestamp and nonce: a pure function, for tests and tools. Most
// callers want Client.MiniProgramPayParams.
func SignPayParams(key *rsa.PrivateKey, appID, prepayID, timeStamp, nonce string) (*PayParams, error) {
	if appID == "" || prepayID == "" || timeStamp == "" || nonce == "" {
		return nil, invalid("pay params need an app id, a prepay id, a timestamp and a nonce")
	}
	sig, err := wxcrypto.MiniProgramPaySignV3(key, appID, timeStamp, nonce, prepayID)
	if err != nil {
		return nil, err
	}
	return &PayParams{AppID: appID, TimeStamp: timeStamp, NonceStr: nonce, Package: "prepay_id=" + prepayID,
		SignType: string(wxpay.SignTypeRSA), PaySign: sig}, nil
}

// MiniProgramPayParams signs the pay parameters of a JSAPI prepay id for
// wx.requestPayment (protocol.md §13.5): paySign is SHA256withRSA by the
// merchant key over "appId\ntimeStamp\nnonceStr\nprepay_id=…\n", signType
// "RSA", with the client's clock and a fresh nonce. appID defaults to
// Config.AppID and must be the app of the order.
func (c *Client) MiniProgramPayParams(appID, prepayID string) (*PayParams, error) {
	if appID == "" {
		appID = c.cfg.AppID
	}
	return SignPayParams(c.key, appID, prepayID, strconv.FormatInt(c.now().Unix(), 10), c.nonce())
}

// VerifyPayParams checks a paySign the way the WeChat client does, with
// the merchant's public key; the simulator and tests use it.
func VerifyPayParams(p *PayParams, pub *rsa.PublicKey) error {
	if p.SignType != string(wxpay.SignTypeRSA) || len(p.Package) <= len("prepay_id=") || p.Package[:len("prepay_id=")] != "prepay_id=" {
		return invalid("pay params are not signType RSA with a prepay_id package")
	}
	return wxcrypto.VerifyMiniProgramPaySignV3(pub, p.AppID, p.TimeStamp, p.NonceStr, p.Package[len("prepay_id="):], p.PaySign)
}

// SignedString is the string paySign signs, "appId\ntimeStamp\nnonceStr\n
// package\n" (protocol.md §13.5), for diagnostics: it holds no secret.
func (p *PayParams) SignedString() string {
	return p.AppID + "\n" + p.TimeStamp + "\n" + p.NonceStr + "\n" + p.Package + "\n"
}
