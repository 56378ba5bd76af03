package miniprogram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Code: 40029, Msg: "invalid code"}, "miniprogram: jscode2session errcode 40029: invalid code"},
		{&Error{Code: -1}, "miniprogram: jscode2session errcode -1"},
		{ErrInvalidSecret, "miniprogram: jscode2session errcode 40125: invalid appsecret"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorIsThroughWrapping(t *testing.T) {
	err := fmt.Errorf("login: %w", &Error{Code: 45011, Msg: "slow down"})
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrBusy) {
		t.Errorf("errors.Is through wrapping failed for %v", err)
	}
	if !Retryable(err) {
		t.Error("Retryable(wrapped 45011) = false")
	}
	var nilErr *Error
	if nilErr.Is(ErrBusy) || nilErr.Temporary() || (&Error{Code: -1}).Is(nil) {
		t.Error("nil handling")
	}
	if errors.Is(ErrBusy, errors.New("other")) {
		t.Error("matches a foreign error")
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"busy", ErrBusy, true},
		{"rate limited", ErrRateLimited, true},
		{"invalid code", ErrInvalidCode, false},
		{"high risk", ErrHighRiskUser, false},
		{"code used", ErrCodeUsed, false},
		{"invalid secret", ErrInvalidSecret, false},
		{"empty code", ErrEmptyCode, false},
		{"bad response", &badResponseError{reason: "x"}, false},
		{"status 500", &StatusError{StatusCode: http.StatusInternalServerError}, true},
		{"status 400", &StatusError{StatusCode: http.StatusBadRequest}, false},
		{"transport", &transportError{msg: "x", err: errors.New("reset")}, true},
		{"transport, caller done", &transportError{msg: "x", err: context.Canceled, callerDone: true}, false},
		{"bare context error", context.DeadlineExceeded, false},
		{"foreign", errors.New("x"), false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("%s: Retryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCategoriesAreDisjoint(t *testing.T) {
	errs := map[string]error{
		"empty":     ErrEmptyCode,
		"transport": &transportError{msg: "x", err: errors.New("y")},
		"bad":       &badResponseError{reason: "x"},
		"status":    &StatusError{StatusCode: 502},
	}
	for name, err := range errs {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			t.Errorf("%s is an *Error", name)
		}
		n := 0
		for _, s := range []error{ErrEmptyCode, ErrTransport, ErrBadResponse} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d categories, want 1", name, n)
		}
	}
}
