package river

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
)

// Webhook delivery headers.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<t>.<body>" with the webhook secret (see Sign and Verify).
	SignatureHeader = "Wxpay-Signature"
	// EventIDHeader carries the event's id: the same on every retry of an
	// event, so that a receiver can drop a repeat.
	EventIDHeader = "Wxpay-Event-Id"
	// EventTypeHeader carries the event's type (order.paid …).
	EventTypeHeader = "Wxpay-Event-Type"
)

// NoWebhookNote is the LastError an outbox event is marked delivered with
// when no webhook URL is configured.
const NoWebhookNote = "no webhook configured"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock (Stripe's and Svix's 5 minutes).
const DefaultTolerance = 5 * time.Minute

// Event is the JSON body of a webhook delivery.
type Event struct {
	ID         string          `json:"id"` // the outbox id, as a string
	Type       string          `json:"type"`
	OutTradeNo string          `json:"out_trade_no"`
	Ref        string          `json:"ref"`
	CreatedAt  time.Time       `json:"created_at"`
	Data       json.RawMessage `json:"data"` // the event's payload, as the store wrote it
}

// Sign returns the SignatureHeader value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("river: webhook signature missing or malformed")
	ErrBadSignature = errors.New("river: webhook signature does not match")
	ErrStale        = errors.New("river: webhook signature timestamp outside the tolerance")
)

// Verify checks a SignatureHeader value against the raw body, as a
// receiver must before trusting a delivery: the timestamp within tolerance
// of now (DefaultTolerance when zero), and a v1 signature matching one of
// the secrets (give the old and the new one while rotating). It compares in
// constant time.
func Verify(header string, body []byte, now time.Time, tolerance time.Duration, secrets ...[]byte) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, s := range sigs {
			if hmac.Equal(s, want) {
				return nil
			}
		}
	}
	return ErrBadSignature
}

// Outbox delivers the outbox events that are due (at most Limit): each is
// POSTed as an Event to the webhook, signed (SignatureHeader), and marked
// delivered on a 2xx answer; otherwise it is tried again after Backoff,
// doubled per failed attempt up to MaxBackoff. After three failures in a
// row the run stops — the webhook is down — and the other events wait for
// the next run rather than a timeout each. With no webhook URL each event
// is marked delivered with NoWebhookNote.
//
// A receiver sees each event once when all goes well, but may see it again
// if this process dies between the answer and the mark: it should drop
// repeats by EventIDHeader.
func (r *Runner) Outbox(ctx context.Context) (*Result, error) {
	res, count := r.result(KindOutbox)
	// A run takes batches of Limit events until the outbox is drained, the
	// webhook fails, or one interval has passed: a fixed batch per interval
	// would let the backlog grow without bound under load.
	deadline := time.Now().Add(r.cfg.OutboxEvery)
	for {
		n, stop, err := r.outboxBatch(ctx, count)
		if err != nil {
			return r.done(ctx, res, err)
		}
		if stop || n < r.cfg.Limit || time.Now().After(deadline) {
			return r.done(ctx, res, nil)
		}
	}
}

// outboxBatch delivers one batch of due events. It returns how many it
// took, and stop when the webhook failed too often to go on.
func (r *Runner) outboxBatch(ctx context.Context, count func(string)) (int, bool, error) {
	now := r.svc.Now()
	events, err := r.store.PendingOutbox(ctx, now, r.cfg.Limit)
	if err != nil {
		return 0, false, fmt.Errorf("river: listing the outbox: %w", err)
	}
	wh := r.cfg.Webhook
	failures := 0 // in a row
	for i, ev := range events {
		if failures == maxFailuresInRow {
			r.log.WarnContext(ctx, "webhook failing; the rest of the outbox waits for the next run", slog.Int("left", len(events)-i))
			return len(events), true, nil
		}
		if ctx.Err() != nil {
			return i, true, ctx.Err()
		}
		if wh.URL == "" {
			if err := r.store.MarkOutbox(ctx, ev.ID, true, time.Time{}, NoWebhookNote, now); err != nil {
				return i, true, fmt.Errorf("river: marking outbox event %d: %w", ev.ID, err)
			}
			count("no_webhook")
			continue
		}
		derr := r.deliver(ctx, ev)
		if derr == nil {
			if err := r.store.MarkOutbox(ctx, ev.ID, true, time.Time{}, "", r.svc.Now()); err != nil {
				return i, true, fmt.Errorf("river: marking outbox event %d delivered: %w", ev.ID, err)
			}
			count("delivered")
			failures = 0
			continue
		}
		failures++
		next := r.svc.Now().Add(backoff(wh.Backoff, wh.MaxBackoff, ev.Attempts))
		r.log.WarnContext(ctx, "webhook delivery failed", slog.Int64("event", ev.ID), slog.String("type", ev.Type),
			slog.Int("attempts", ev.Attempts+1), slog.Time("next", next), slog.String("error", derr.Error()))
		if err := r.store.MarkOutbox(ctx, ev.ID, false, next, derr.Error(), r.svc.Now()); err != nil {
			return i, true, fmt.Errorf("river: marking outbox event %d failed: %w", ev.ID, err)
		}
		count("failed")
	}
	return len(events), failures > 0, nil
}

// maxFailuresInRow is how many deliveries may fail in a row before a run
// gives up on the webhook until the next run.
const maxFailuresInRow = 3

// backoff is base·2^attempts, capped.
func backoff(base, ceiling time.Duration, attempts int) time.Duration {
	d := base
	for range attempts {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

// deliver POSTs one event; nil means the webhook answered 2xx.
func (r *Runner) deliver(ctx context.Context, ev *merchant.OutboxEvent) error {
	data := json.RawMessage(ev.Payload)
	if !json.Valid(data) {
		data, _ = json.Marshal(ev.Payload)
	}
	body, err := json.Marshal(Event{ID: strconv.FormatInt(ev.ID, 10), Type: ev.Type, OutTradeNo: ev.OutTradeNo,
		Ref: ev.Ref, CreatedAt: ev.CreatedAt.UTC(), Data: data})
	if err != nil {
		return err
	}
	wh := r.cfg.Webhook
	ctx, cancel := context.WithTimeout(ctx, wh.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wxpay-webhook/1")
	req.Header.Set(EventIDHeader, strconv.FormatInt(ev.ID, 10))
	req.Header.Set(EventTypeHeader, ev.Type)
	// The signature's time is the wall clock: it is the receiver's clock
	// it is checked against, whatever clock the service runs on.
	req.Header.Set(SignatureHeader, Sign([]byte(wh.Secret.Reveal()), time.Now(), body))
	resp, err := wh.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a token: leave it out of logs
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}
