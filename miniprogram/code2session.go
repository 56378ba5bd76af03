package miniprogram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxBodyBytes bounds a jscode2session response; a real one is ~200 bytes.
	maxBodyBytes = 64 << 10
	// maxMsgBytes bounds the errmsg kept in an *Error.
	maxMsgBytes = 256
	// minScrubLen is the shortest js_code that is scrubbed from error text;
	// shorter ones are not secrets worth mangling messages for.
	minScrubLen = 8
)

// Code2Session exchanges the js_code that the mini program got from
// wx.login for the user's session (official doc: developers.weixin.qq.com,
// "auth.code2Session", GET /sns/jscode2session; protocol.md §12).
//
// A js_code is single use and valid about five minutes. An empty code
// returns ErrEmptyCode without a request. Failures are ErrTransport,
// ErrBadResponse (*StatusError for a non-200 status) or an *Error carrying
// WeChat's errcode; see the sentinels for what to do with each, and
// Retryable. No error text contains the AppSecret, the js_code, the
// request's query or the session_key.
//
// The call is bounded by ctx and by the client's timeout (WithTimeout).
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	start := time.Now()
	status, sess, err := c.code2Session(ctx, code)
	c.logCall(ctx, time.Since(start), status, err)
	return sess, err
}

func (c *Client) code2Session(ctx context.Context, code string) (status int, _ *Session, _ error) {
	if code == "" {
		return 0, nil, ErrEmptyCode
	}
	callerCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}

	endpoint := c.base.JoinPath("sns", "jscode2session")
	shown := endpoint.String() // no query: safe to print
	reqURL := *endpoint
	reqURL.RawQuery = url.Values{
		"appid":      {c.appID},
		"secret":     {string(*c.secret)},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL.String(), nil)
	if err != nil {
		return 0, nil, c.transportErr(callerCtx, code, shown, "building request for "+shown, err)
	}
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.transportErr(callerCtx, code, shown, "request failed", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		// Drain a bounded amount so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
		return resp.StatusCode, nil, &StatusError{StatusCode: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return resp.StatusCode, nil, c.transportErr(callerCtx, code, shown, "reading response from "+shown, err)
	}
	if len(body) > maxBodyBytes {
		return resp.StatusCode, nil, &badResponseError{reason: fmt.Sprintf("body exceeds %d bytes", maxBodyBytes)}
	}
	sess, err := decodeResponse(body)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			apiErr.Msg = c.scrub(apiErr.Msg, code)
		}
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, sess, nil
}

// transportErr wraps a failure to get a response. net/http's *url.Error
// prints the whole request URL, secret and js_code included, so it is
// rebuilt with the query-less endpoint; the text is scrubbed as well, in
// case a custom RoundTripper quoted the URL deeper down.
func (c *Client) transportErr(callerCtx context.Context, code, shown, what string, err error) error {
	if ue, ok := err.(*url.Error); ok {
		err = &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	return &transportError{
		msg:        "miniprogram: jscode2session: " + what + ": " + c.scrub(err.Error(), code),
		err:        err,
		callerDone: callerCtx.Err() != nil,
	}
}

// scrub replaces the AppSecret and the js_code, raw or query-escaped, with
// REDACTED.
func (c *Client) scrub(s, code string) string {
	secrets := []string{string(*c.secret)}
	if len(code) >= minScrubLen {
		secrets = append(secrets, code)
	}
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, redacted)
		if esc := url.QueryEscape(v); esc != v {
			s = strings.ReplaceAll(s, esc, redacted)
		}
	}
	return s
}

// logCall writes the one debug line per call: appid, duration, HTTP status,
// errcode when WeChat gave one, and the (already scrubbed) error.
func (c *Client) logCall(ctx context.Context, d time.Duration, status int, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 5)
	attrs = append(attrs, slog.String("appid", c.appID), slog.Duration("duration", d))
	if status != 0 {
		attrs = append(attrs, slog.Int("status", status))
	}
	var apiErr *Error
	switch {
	case err == nil:
		attrs = append(attrs, slog.Int("errcode", 0))
	case errors.As(err, &apiErr):
		attrs = append(attrs, slog.Int("errcode", apiErr.Code), slog.String("err", err.Error()))
	default:
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "miniprogram: jscode2session", attrs...)
}

// wireResponse is the jscode2session response body.
type wireResponse struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

// decodeResponse turns a 200 response body into a Session, an *Error for a
// non-zero errcode, or an ErrBadResponse. Error texts never quote the body.
func decodeResponse(body []byte) (*Session, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, &badResponseError{reason: jsonReason(body, err), err: err}
	}
	if w.ErrCode != 0 {
		return nil, &Error{Code: w.ErrCode, Msg: truncate(w.ErrMsg, maxMsgBytes)}
	}
	if w.OpenID == "" {
		return nil, &badResponseError{reason: "success without openid"}
	}
	if w.SessionKey == "" {
		return nil, &badResponseError{reason: "success without session_key"}
	}
	return &Session{OpenID: w.OpenID, UnionID: w.UnionID, SessionKey: SessionKey(w.SessionKey)}, nil
}

// jsonReason describes a decoding failure by position or field name only.
func jsonReason(body []byte, err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
		return "empty body"
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		for _, f := range []string{"openid", "session_key", "unionid", "errcode", "errmsg"} {
			if strings.EqualFold(typeErr.Field, f) {
				return "wrong JSON type for " + f
			}
		}
		return "not a JSON object of the expected shape"
	default:
		return "malformed JSON"
	}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
