package merchant

import (
	"errors"
	"fmt"
)

// Error codes of the service; httpapi maps each to one HTTP status.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule (400)
	EUNAUTHORIZED = "unauthorized" // no or bad credentials (401)
	ENOTFOUND     = "not_found"    // no such thing, or not yours (404)
	ECONFLICT     = "conflict"     // the state does not allow it, or a key was reused differently (409)
	ERATELIMIT    = "rate_limited" // too many requests (429)
	EUNAVAILABLE  = "unavailable"  // WeChat's answer is unknown or WeChat is down; retry later (503)
	EINTERNAL     = "internal"     // a bug or a database failure (500)
	EUPSTREAM     = "upstream"     // WeChat refused the call with a definite answer (502)
)

// Error is a failure the service reports to its callers: a code from the
// list above and a message safe to show (never a secret).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("merchant: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its *Error's code, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the message of err that is safe to show: its
// *Error's message, or a generic one for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
