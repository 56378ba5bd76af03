package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/wxpay-go/wxpay/merchant"
)

// Codes of failures that belong to HTTP itself rather than to the service;
// they complete merchant's codes in the one status table below.
const (
	ETOOLARGE       = "too_large"              // the body is over the limit (413)
	EMEDIATYPE      = "unsupported_media_type" // the body is not application/json (415)
	EMETHOD         = "method_not_allowed"     // the route exists for other methods (405)
	ENOTIMPLEMENTED = "not_implemented"        // the feature is not configured (501)
)

// statuses is the one table from error codes to HTTP statuses.
var statuses = map[string]int{
	merchant.EINVALID:      http.StatusBadRequest,
	merchant.EUNAUTHORIZED: http.StatusUnauthorized,
	merchant.ENOTFOUND:     http.StatusNotFound,
	merchant.ECONFLICT:     http.StatusConflict,
	merchant.ERATELIMIT:    http.StatusTooManyRequests,
	merchant.EUNAVAILABLE:  http.StatusServiceUnavailable,
	merchant.EUPSTREAM:     http.StatusBadGateway,
	merchant.EINTERNAL:     http.StatusInternalServerError,
	ETOOLARGE:              http.StatusRequestEntityTooLarge,
	EMEDIATYPE:             http.StatusUnsupportedMediaType,
	EMETHOD:                http.StatusMethodNotAllowed,
	ENOTIMPLEMENTED:        http.StatusNotImplemented,
}

// ErrorStatus returns the HTTP status of an error code: the table above,
// and 500 for a code it does not know.
func ErrorStatus(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error answer:
// {"error":{"code":"not_found","message":"…"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and the message of an error answer. The message
// is meant for people and never holds a secret or an internal detail.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify returns the code and the safe message of err. A *merchant.Error
// speaks for itself; the Gateway sentinels that reach here (from a sync
// asked by an admin) are given their meaning; anything else is internal.
func classify(err error) (code, msg string) {
	var me *merchant.Error
	switch {
	case errors.As(err, &me):
		return me.Code, me.Message
	case errors.Is(err, merchant.ErrUnknownOutcome):
		return merchant.EUNAVAILABLE, "WeChat did not answer in time; retry later"
	case errors.Is(err, merchant.ErrOrderNotExist), errors.Is(err, merchant.ErrRefundNotExist):
		return merchant.ENOTFOUND, "WeChat has no such order or refund"
	case errors.Is(err, merchant.ErrRejected):
		return merchant.EUPSTREAM, "WeChat refused the call"
	case errors.Is(err, context.DeadlineExceeded):
		return merchant.EUNAVAILABLE, "the request timed out; retry later"
	}
	return merchant.EINTERNAL, "internal error"
}

// writeError answers err as JSON with its status. Internal errors are
// logged with their detail and answered with a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := classify(err)
	status := ErrorStatus(code)
	switch {
	case code == merchant.EUNAVAILABLE || code == merchant.EUPSTREAM:
		// WeChat or the database is in trouble: worth a line, and the
		// message (the service's own) is safe to show.
		s.log.WarnContext(r.Context(), "request failed",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("code", code), slog.String("error", err.Error()))
	case status >= 500 && code != ENOTIMPLEMENTED:
		s.log.ErrorContext(r.Context(), "request failed",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("error", err.Error()))
		code, msg = merchant.EINTERNAL, "internal error"
	}
	switch status {
	case http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxpay"`)
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// writeJSON answers v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types get here; they always marshal.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
