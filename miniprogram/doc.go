// Package miniprogram is the server side of WeChat mini-program login:
// it exchanges the js_code that the mini program gets from wx.login for the
// user's openid, unionid and session_key by calling jscode2session
// (official doc: developers.weixin.qq.com, "auth.code2Session";
// protocol.md §12).
//
//	c, err := miniprogram.NewClient(appID, appSecret,
//		miniprogram.WithLogger(logger))
//	...
//	sess, err := c.Code2Session(ctx, code)
//	switch {
//	case errors.Is(err, miniprogram.ErrInvalidCode),
//		errors.Is(err, miniprogram.ErrCodeUsed):
//		// ask the mini program to call wx.login again
//	case errors.Is(err, miniprogram.ErrHighRiskUser):
//		// refuse the login
//	case miniprogram.Retryable(err):
//		// back off and try again
//	case err != nil:
//		// fail the login; ErrInvalidSecret means the configuration is wrong
//	}
//
// # Secrets
//
// The AppSecret travels in the request's query string, so the package never
// prints the request URL: transport errors name only scheme, host and path,
// and the *url.Error inside them is rebuilt the same way. The session key is
// a SessionKey, which prints, logs and marshals as REDACTED; call Reveal
// only to decrypt user data on the server. The debug log line per call holds
// the appid, the duration, the HTTP status and the errcode, never the
// secret, the js_code, the openid or the session key.
//
// # Testing
//
// WithBaseURL points the client at the simulator or at an httptest.Server;
// the example shows the latter.
package miniprogram
