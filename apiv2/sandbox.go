package apiv2

import (
	"context"
	"errors"

	"github.com/wxpay-go/wxpay"
)

var epGetSignKey = &endpoint{name: "getsignkey", path: "/sandboxnew/pay/getsignkey", sandboxPath: "/sandboxnew/pay/getsignkey",
	safe: safeAlways, noAppID: true, unsigned: true, noResult: true}

// SandboxSignKey asks WeChat's v2 sandbox for its sign key (getsignkey,
// signed with the production API key and MD5; protocol.md §1.1). A client
// made WithSandbox calls it once, by itself, and signs everything with the
// answer; this method is for callers that want to see the key.
func (c *Client) SandboxSignKey(ctx context.Context) (wxpay.Secret, error) {
	e := getEncoder()
	defer putEncoder(e)
	e.str("mch_id", c.cfg.MchID)
	e.str("nonce_str", c.nonce())
	body, err := e.encode(wxpay.SignTypeMD5, c.key)
	if err != nil {
		return "", &Error{API: epGetSignKey.name, Err: err}
	}
	status, data, err := c.send(ctx, epGetSignKey, body, MaxMessageSize)
	if err != nil {
		return "", err
	}
	r, err := c.check(epGetSignKey, wxpay.SignTypeMD5, c.key, status, data, e)
	if err != nil {
		return "", err
	}
	k := r.get("sandbox_signkey")
	if k == "" {
		return "", &Error{API: epGetSignKey.name, HTTPStatus: status, ReturnCode: "SUCCESS", Err: errNoSandboxKey}
	}
	return wxpay.Secret(k), nil
}

var errNoSandboxKey = errors.New("getsignkey answered without sandbox_signkey")

// signKey returns the key requests are signed with: the API key, or in
// sandbox mode the sandbox key, fetched once.
func (c *Client) signKey(ctx context.Context) (string, error) {
	if !c.sandbox {
		return c.key, nil
	}
	c.sandboxMu.Lock()
	defer c.sandboxMu.Unlock()
	if c.sandboxKey != "" {
		return c.sandboxKey, nil
	}
	k, err := c.SandboxSignKey(ctx)
	if err != nil {
		return "", err
	}
	c.sandboxKey = k.Reveal()
	return c.sandboxKey, nil
}
