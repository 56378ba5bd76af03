package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
)

// WeChat's side: the pay and refund notifies and the Native mode-1
// product callback. These answer as the gateway says (NotifyAck): v2's
// XML document, or v3's status with a JSON {"code","message"} body —
// never the service's own JSON error shape.

// errTooLarge refuses an oversized notify: a refusal (FAIL), not a
// failure of ours.
var errTooLarge = fmt.Errorf("%w: body too large", merchant.ErrBadNotify)

// readNotify reads a notify body of at most limit bytes.
func readNotify(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %w", merchant.ErrBadNotify, err)
	}
	return body, nil
}

// notify serves a notify endpoint with handle (the service's
// HandlePayNotify or HandleRefundNotify). The answer is the gateway's
// NotifyAck: SUCCESS only when handle returned nil, which it does only
// after the commit (reliability.md A4). Handling is bounded by
// NotifyTimeout: past it the answer is FAIL and WeChat retries (A5),
// while the handling, whose context is then cancelled, finishes on its
// own.
func (s *Server) notify(handle func(ctx context.Context, header http.Header, body []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gw := s.svc.Gateway()
		body, err := readNotify(w, r, s.cfg.MaxNotifyBytes)
		if err != nil {
			s.log.WarnContext(r.Context(), "notify refused before parsing",
				slog.String("request_id", requestID(r.Context())), slog.String("path", r.URL.Path),
				slog.String("error", err.Error()))
			status, ct, reply := gw.NotifyAck(err)
			if errors.Is(err, errTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			writeNotifyReply(w, status, ct, reply)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.NotifyTimeout)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Errorf("httpapi: panic while handling a notify: %T", p)
				}
			}()
			done <- handle(ctx, r.Header, body)
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("httpapi: notify not handled within %s: %w", s.cfg.NotifyTimeout, ctx.Err())
		}
		if err != nil && !errors.Is(err, merchant.ErrBadNotify) && !errors.Is(err, payments.ErrNotifyRejected) {
			// Refusals are logged by the service; this is a failure of
			// ours, and WeChat will retry.
			s.log.ErrorContext(r.Context(), "notify not acknowledged",
				slog.String("request_id", requestID(r.Context())), slog.String("path", r.URL.Path),
				slog.String("error", err.Error()))
		}
		status, ct, reply := gw.NotifyAck(err)
		writeNotifyReply(w, status, ct, reply)
	}
}

// nativeCallback serves WeChat's Native mode-1 product callback through
// Config.NativeCallback; without one the route does not exist.
func (s *Server) nativeCallback(w http.ResponseWriter, r *http.Request) {
	nc := s.cfg.NativeCallback
	if nc == nil {
		s.writeError(w, r, merchant.Errorf(merchant.ENOTFOUND, "no such route"))
		return
	}
	gw := s.svc.Gateway()
	body, err := readNotify(w, r, s.cfg.MaxNotifyBytes)
	if err != nil {
		status, ct, reply := gw.NotifyAck(err)
		if errors.Is(err, errTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeNotifyReply(w, status, ct, reply)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.NotifyTimeout)
	defer cancel()
	reply, err := nc.Handle(ctx, body)
	if err != nil {
		s.log.WarnContext(r.Context(), "native callback failed",
			slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
	}
	if reply != nil {
		writeNotifyReply(w, http.StatusOK, "text/xml; charset=utf-8", reply)
		return
	}
	if err == nil {
		err = errors.New("httpapi: native callback gave no reply")
	}
	status, ct, fail := gw.NotifyAck(err)
	writeNotifyReply(w, status, ct, fail)
}

// writeNotifyReply answers a WeChat-side call.
func writeNotifyReply(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	if len(body) > 0 {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
