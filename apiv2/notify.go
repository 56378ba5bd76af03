package apiv2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// MaxNotifySize caps the body of a notify the handlers read: 64 KiB, far
// above any real notify.
const MaxNotifySize = 64 << 10

// NotifyReason says why a notify was refused, for logs and metrics.
type NotifyReason string

// The reasons a notify is refused.
const (
	ReasonMalformed NotifyReason = "malformed" // not a strict flat XML message, too large, a required field missing
	ReasonSignature NotifyReason = "signature" // sign missing or wrong, or sign_type other than configured
	ReasonMerchant  NotifyReason = "merchant"  // appid or mch_id is not ours
	ReasonFailure   NotifyReason = "failure"   // return_code FAIL
	ReasonDecrypt   NotifyReason = "decrypt"   // refund notify req_info does not decrypt
	ReasonHandler   NotifyReason = "handler"   // the merchant's function returned an error
	ReasonTimeout   NotifyReason = "timeout"   // the merchant's function did not finish in time
)

// NotifyError is a notify that must not be acted on. The handlers answer it
// with a FAIL reply so that WeChat sends it again.
type NotifyError struct {
	Reason    NotifyReason
	Err       error
	Diagnosis *wxcrypto.Diagnosis // for ReasonSignature
	// Notify is set for ReasonMerchant only: the notify verified with our
	// key but names another appid or mch_id. It is not a payment of this
	// client's; it is given so that the caller can record the anomaly.
	Notify *PayNotify
}

func (e *NotifyError) Error() string {
	return fmt.Sprintf("apiv2: notify refused (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *NotifyError) Unwrap() error { return e.Err }

// PayNotify is a verified payment result notify (protocol.md §6).
type PayNotify struct {
	Envelope
	Payment
	// SignType is the sign_type field of the notify, present for orders
	// placed with HMAC-SHA256. The signature is always checked with the
	// client's configured type, never with this.
	SignType string
}

// Paid reports whether the notify says the payment succeeded. Before
// marking an order paid, also compare TotalFee with the order's amount.
func (n *PayNotify) Paid() bool { return n.ReturnCode == "SUCCESS" && n.ResultCode == "SUCCESS" }

// ParsePayNotify decodes and verifies a payment notify body: the strict
// XML decoder, return_code, the signature with the configured sign type (a
// sign_type field that says otherwise is refused), appid and mch_id equal to
// the client's, the fields a payment must carry. Unknown fields are kept in
// Fields and covered by the signature. The caller must still compare
// TotalFee with its own order before marking it paid.
func (c *Client) ParsePayNotify(body []byte) (*PayNotify, error) {
	if len(body) > MaxNotifySize {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: ErrXMLTooLarge}
	}
	fields, err := parseFlat(string(body), "xml", nil)
	if err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
	}
	d := &decoder{f: fields}
	if rc := d.str("return_code"); rc != "SUCCESS" {
		return nil, &NotifyError{Reason: ReasonFailure, Err: fmt.Errorf("return_code %q: %s", rc, d.str("return_msg"))}
	}
	sign := d.str("sign")
	if st := d.str("sign_type"); st != "" && wxpay.SignType(st) != c.signType {
		return nil, &NotifyError{Reason: ReasonSignature, Err: fmt.Errorf("%w: notify says sign_type=%s, the client is configured for %s", ErrNotifySignature, st, c.signType)}
	}
	if sign == "" || !wxcrypto.Verify(c.signType, c.key, fields, sign) {
		return nil, &NotifyError{Reason: ReasonSignature, Err: ErrNotifySignature,
			Diagnosis: c.diagnose(fields, sign, c.signType, c.key)}
	}
	n := &PayNotify{}
	n.Envelope.Fields = fields
	n.Payment.decodeWith(d, func(f wxcrypto.Field) {
		if !n.Envelope.set(f) && f.Name == "sign_type" {
			n.SignType = f.Value
		}
	})
	if d.err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: d.err}
	}
	if n.AppID != c.cfg.AppID || n.MchID != c.cfg.MchID {
		return nil, &NotifyError{Reason: ReasonMerchant, Err: fmt.Errorf("notify for appid %q mch_id %q", n.AppID, n.MchID), Notify: n}
	}
	if n.OutTradeNo == "" || (n.Paid() && (n.TransactionID == "" || n.TotalFee <= 0)) {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: errors.New("notify lacks out_trade_no, transaction_id or total_fee")}
	}
	return n, nil
}

// The replies WeChat expects from a notify handler (protocol.md §6). Any
// answer other than NotifySuccess makes WeChat send the notify again.
var (
	NotifySuccess = []byte("<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>")
)

// NotifyFail returns the FAIL reply with a message (kept short; it is for
// WeChat's logs, not for a user).
func NotifyFail(msg string) []byte {
	out := append([]byte("<xml>"), "<return_code><![CDATA[FAIL]]></return_code>"...)
	out = appendElement(out, "return_msg", msg)
	return append(out, "</xml>"...)
}

// NotifyHandlerOptions tune the notify handlers.
type NotifyHandlerOptions struct {
	// Timeout bounds the merchant's function; WeChat waits about 5 s, so the
	// default is 4 s. When it passes, the handler answers FAIL, never SUCCESS.
	Timeout time.Duration
	// Logger gets one line per refused notify, with the reason (never the
	// body or a key).
	Logger *slog.Logger
	// OnReject is called for every refused notify (e.g. to count
	// notify_rejected{reason}).
	OnReject func(reason NotifyReason, err error)
}

// PayNotifyHandler returns an http.Handler for the notify_url: it accepts
// POST only, limits the body to MaxNotifySize, parses and verifies it with
// ParsePayNotify, calls fn, and answers SUCCESS only when fn returned nil —
// so fn must have stored the result durably before it returns. A refused
// notify or an fn error is answered FAIL (HTTP 400 or 500), and WeChat will
// send it again.
func (c *Client) PayNotifyHandler(fn func(ctx context.Context, n *PayNotify) error, o NotifyHandlerOptions) http.Handler {
	return notifyHandler(o, func(ctx context.Context, body []byte) error {
		n, err := c.ParsePayNotify(body)
		if err != nil {
			return err
		}
		return fn(ctx, n)
	})
}

func notifyHandler(o NotifyHandlerOptions, process func(ctx context.Context, body []byte) error) http.Handler {
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			reply(w, http.StatusMethodNotAllowed, NotifyFail("POST only"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxNotifySize))
		if err != nil {
			reject(w, o, &NotifyError{Reason: ReasonMalformed, Err: err}, http.StatusRequestEntityTooLarge)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- process(ctx, body) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = &NotifyError{Reason: ReasonTimeout, Err: ctx.Err()}
		}
		if err == nil {
			reply(w, http.StatusOK, NotifySuccess)
			return
		}
		var ne *NotifyError
		if !errors.As(err, &ne) {
			ne = &NotifyError{Reason: ReasonHandler, Err: err}
		}
		status := http.StatusBadRequest
		if ne.Reason == ReasonHandler || ne.Reason == ReasonTimeout {
			status = http.StatusInternalServerError
		}
		reject(w, o, ne, status)
	})
}

func reject(w http.ResponseWriter, o NotifyHandlerOptions, ne *NotifyError, status int) {
	o.Logger.Warn("wxpay: notify refused", slog.String("reason", string(ne.Reason)), slog.String("error", ne.Err.Error()))
	if o.OnReject != nil {
		o.OnReject(ne.Reason, ne)
	}
	msg := "FAIL"
	switch ne.Reason {
	case ReasonSignature:
		msg = "invalid signature"
	case ReasonMalformed:
		msg = "malformed"
	}
	reply(w, status, NotifyFail(msg))
}

func reply(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
