package miniprogram

import (
	"errors"
	"fmt"
	"net/http"
)

// Every error Code2Session returns is one of:
//
//   - ErrEmptyCode: nothing was sent;
//   - ErrTransport (also matching ctx.Err() when the context ended): no
//     usable HTTP response arrived; WeChat may or may not have consumed the
//     js_code;
//   - ErrBadResponse (a *StatusError for a non-200 status): WeChat answered
//     with something this package cannot use;
//   - *Error: WeChat answered with a non-zero errcode; match it with the
//     sentinels below.
//
// Retryable tells which of them are worth another attempt.

// Error is a non-zero errcode from jscode2session (protocol.md §12). Match
// it with errors.Is against the sentinels (ErrInvalidCode, ...) or take it
// apart with errors.As.
type Error struct {
	// Code is the errcode WeChat returned.
	Code int
	// Msg is WeChat's errmsg, cut to a few hundred bytes.
	Msg string
}

// Error returns "miniprogram: jscode2session errcode CODE: MSG".
func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("miniprogram: jscode2session errcode %d", e.Code)
	}
	return fmt.Sprintf("miniprogram: jscode2session errcode %d: %s", e.Code, e.Msg)
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, ErrInvalidCode) holds whatever the errmsg.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e != nil && t != nil && t.Code == e.Code
}

// Temporary reports whether the same call may succeed later without the user
// doing anything: true for system busy (-1) and the rate limit (45011).
func (e *Error) Temporary() bool {
	return e != nil && (e.Code == ErrBusy.Code || e.Code == ErrRateLimited.Code)
}

// Sentinels for the documented errcodes (protocol.md §12). Each doc says
// what the caller should do. They are matched by Code, so compare with
// errors.Is, never with ==.
var (
	// ErrBusy (-1): WeChat is busy. Retry later with the same js_code
	// (it stays valid about five minutes), with back-off.
	ErrBusy = &Error{Code: -1, Msg: "system busy"}

	// ErrInvalidCode (40029): the js_code is wrong, expired, already used or
	// from another AppID. Do not retry: have the mini program call
	// wx.login again and send the new code.
	ErrInvalidCode = &Error{Code: 40029, Msg: "invalid code"}

	// ErrRateLimited (45011): too many calls for this user (about 100 a
	// minute). Back off before retrying; Temporary reports true.
	ErrRateLimited = &Error{Code: 45011, Msg: "api minute-quota reach limit"}

	// ErrHighRiskUser (40226): WeChat blocked the login of a high-risk user.
	// Refuse the login; do not retry.
	ErrHighRiskUser = &Error{Code: 40226, Msg: "high risk user"}

	// ErrCodeUsed (40163): the js_code was already used. Do not retry: have
	// the mini program call wx.login again. (The code number is UNCONFIRMED
	// in protocol.md §16; WeChat may report this case as 40029 instead.)
	ErrCodeUsed = &Error{Code: 40163, Msg: "code been used"}

	// ErrInvalidSecret (40125): the AppSecret is wrong (or was reset in the
	// admin console). Fix the configuration; every call will fail until then.
	ErrInvalidSecret = &Error{Code: 40125, Msg: "invalid appsecret"}
)

var (
	// ErrEmptyCode is returned, without any request, when Code2Session is
	// given an empty js_code. The mini program did not send its wx.login code.
	ErrEmptyCode = errors.New("miniprogram: jscode2session: empty js_code")

	// ErrTransport matches errors where no usable HTTP response arrived
	// (connection failure, timeout, cancelled context, broken body). The
	// js_code may or may not have been consumed: retrying with it is harmless
	// but may then fail with ErrInvalidCode or ErrCodeUsed. The cause stays
	// reachable, so errors.Is(err, context.DeadlineExceeded) works.
	ErrTransport = errors.New("miniprogram: jscode2session: transport failure")

	// ErrBadResponse matches errors where WeChat (or whatever answered)
	// replied with something unusable: a non-200 status (*StatusError),
	// malformed JSON, a body over the size limit, or a success without
	// openid or session_key. Usually a wrong base URL or a proxy in the way.
	ErrBadResponse = errors.New("miniprogram: jscode2session: bad response")
)

// StatusError reports a non-200 HTTP status. It matches ErrBadResponse.
type StatusError struct {
	// StatusCode is the HTTP status code received.
	StatusCode int
}

// Error returns "miniprogram: jscode2session: unexpected HTTP status N TEXT".
func (e *StatusError) Error() string {
	return fmt.Sprintf("miniprogram: jscode2session: unexpected HTTP status %d %s",
		e.StatusCode, http.StatusText(e.StatusCode))
}

// Is makes a StatusError match ErrBadResponse.
func (e *StatusError) Is(target error) bool { return target == ErrBadResponse }

// Temporary reports whether the status suggests a later retry may succeed
// (429 or 5xx).
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Retryable reports whether calling Code2Session again, after a back-off,
// may succeed without the user doing anything: a temporary *Error (-1,
// 45011), a temporary *StatusError (429, 5xx), or a transport failure
// (including the client's own WithTimeout running out) while the caller's
// context was still live. It is false for nil, when the caller's context was
// cancelled or ran out, and for everything else.
func Retryable(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var statusErr *StatusError
	if errors.As(err, &statusErr) {
		return statusErr.Temporary()
	}
	var te *transportError
	if errors.As(err, &te) {
		return !te.callerDone
	}
	return false
}

// badResponseError is an ErrBadResponse with a reason that never quotes the
// body; the underlying decode error, if any, stays reachable through Unwrap.
type badResponseError struct {
	reason string
	err    error
}

func (e *badResponseError) Error() string {
	return "miniprogram: jscode2session: bad response: " + e.reason
}

func (e *badResponseError) Is(target error) bool { return target == ErrBadResponse }

func (e *badResponseError) Unwrap() error { return e.err }

// transportError is an ErrTransport whose text names only the endpoint
// (scheme, host and path, never the query with the secret and the js_code).
type transportError struct {
	msg        string
	err        error
	callerDone bool // the caller's context had ended when the call failed
}

func (e *transportError) Error() string { return e.msg }

func (e *transportError) Is(target error) bool { return target == ErrTransport }

func (e *transportError) Unwrap() error { return e.err }
