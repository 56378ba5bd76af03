package apiv3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// MaxNotifySize caps the body of a notify: 64 KiB, far above any real one
// (reliability.md G4). Read the request body with http.MaxBytesReader at
// this size.
const MaxNotifySize = 64 << 10

// EventType is the event_type of a notify (protocol.md §13.4).
type EventType string

// The event types of payment and refund notifies.
const (
	EventTransactionSuccess EventType = "TRANSACTION.SUCCESS" // a payment succeeded
	EventRefundSuccess      EventType = "REFUND.SUCCESS"      // a refund reached the payer
	EventRefundAbnormal     EventType = "REFUND.ABNORMAL"     // a refund is stuck: handle it by hand
	EventRefundClosed       EventType = "REFUND.CLOSED"       // a refund was closed
)

// NotifyReason says why a notify was refused, for logs and metrics
// (reliability.md A1: a notify_rejected{reason} counter).
type NotifyReason string

// The reasons a notify is refused.
const (
	ReasonHeaders   NotifyReason = "headers"   // a Wechatpay-* header is missing (N1, N12)
	ReasonTimestamp NotifyReason = "timestamp" // Wechatpay-Timestamp malformed or outside ±5 min (N5, C2, C5)
	ReasonProbe     NotifyReason = "probe"     // a WECHATPAY/SIGNTEST/ probe (N7)
	ReasonSerial    NotifyReason = "serial"    // no key for Wechatpay-Serial (N11)
	ReasonSignature NotifyReason = "signature" // the signature does not verify over the raw body (N4, N12)
	ReasonMalformed NotifyReason = "malformed" // too large, not the strict JSON of a notify, fields missing (X10)
	ReasonDecrypt   NotifyReason = "decrypt"   // the resource does not decrypt with the APIv3 key (F2)
	ReasonMerchant  NotifyReason = "merchant"  // authentic, but for another merchant id (N6)
)

// NotifyError is a notify that must not be acted on. Answer it with a 4xx
// or 5xx status (WeChat judges the reply by its status) so that WeChat sends
// it again; never with 200.
type NotifyError struct {
	Reason NotifyReason
	Err    error
	// Notify is set for ReasonMerchant only: the notify is authentic and
	// decrypted, but its mchid is not the client's. Record it as an
	// anomaly; do not mark anything paid.
	Notify *Notify
}

// Error gives the reason and the cause.
func (e *NotifyError) Error() string {
	return fmt.Sprintf("apiv3: notify refused (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the cause: errors.Is(err, ErrProbeSignature) and the
// like work through it.
func (e *NotifyError) Unwrap() error { return e.Err }

// Notify is a verified and decrypted notify (protocol.md §13.4). Exactly one
// of Transaction (TRANSACTION.* events), Refund (REFUND.* events) and
// Plaintext (any other event) is set.
type Notify struct {
	ID           string    // the notify id; the same across WeChat's retries
	CreateTime   time.Time // when WeChat made it
	EventType    EventType
	ResourceType string // encrypt-resource
	Summary      string
	OriginalType string // the resource's original_type: transaction, refund …
	// Transaction is the payment of a TRANSACTION.* event. Before marking
	// an order paid, compare OutTradeNo, AppID and Amount.Total with your
	// own order and check TradeState (reliability.md A2).
	Transaction *Transaction
	// Refund is the refund of a REFUND.* event.
	Refund *RefundNotify
	// Plaintext is the decrypted resource of any other event.
	Plaintext []byte
}

// RefundNotify is the resource of a refund notify (protocol.md §13.4).
// Status is mapped like Refund.Status: CLOSED reads as RefundStatusClosed,
// ABNORMAL as RefundStatusChange.
type RefundNotify struct {
	MchID               string             `json:"mchid"`
	OutTradeNo          string             `json:"out_trade_no"`
	TransactionID       string             `json:"transaction_id"`
	OutRefundNo         string             `json:"out_refund_no"`
	RefundID            string             `json:"refund_id"`
	Status              wxpay.RefundStatus `json:"refund_status"`
	SuccessTime         time.Time          `json:"success_time"` // zero unless SUCCESS
	UserReceivedAccount string             `json:"user_received_account"`
	Amount              RefundNotifyAmount `json:"amount"`
}

// RefundNotifyAmount is the amount of a refund notify, in fen.
type RefundNotifyAmount struct {
	Total       int64 `json:"total"`
	Refund      int64 `json:"refund"`
	PayerTotal  int64 `json:"payer_total"`
	PayerRefund int64 `json:"payer_refund"`
}

func (r *RefundNotify) field(d *jdec, key string) (err error) {
	switch key {
	case "mchid":
		r.MchID, err = d.str()
	case "out_trade_no":
		r.OutTradeNo, err = d.str()
	case "transaction_id":
		r.TransactionID, err = d.str()
	case "out_refund_no":
		r.OutRefundNo, err = d.str()
	case "refund_id":
		r.RefundID, err = d.str()
	case "refund_status":
		var s string
		s, err = d.str()
		r.Status = refundStatus(s)
	case "success_time":
		r.SuccessTime, err = d.timeValue()
	case "user_received_account":
		r.UserReceivedAccount, err = d.str()
	case "amount":
		err = d.object(func(d *jdec, key string) error {
			switch key {
			case "total":
				return nonNegative(d, &r.Amount.Total)
			case "refund":
				return nonNegative(d, &r.Amount.Refund)
			case "payer_total":
				return nonNegative(d, &r.Amount.PayerTotal)
			case "payer_refund":
				return nonNegative(d, &r.Amount.PayerRefund)
			}
			return d.skip()
		})
	default:
		err = d.skip()
	}
	return err
}

func decodeRefundNotify(s string) (*RefundNotify, error) {
	r := new(RefundNotify)
	if err := decodeObject(s, r.field); err != nil {
		return nil, err
	}
	if r.MchID == "" || r.OutRefundNo == "" || r.Status == "" || r.Amount.Refund <= 0 {
		return nil, &jsonError{msg: "refund without mchid, out_refund_no, refund_status or a positive amount.refund"}
	}
	return r, nil
}

func reasonOf(err error) NotifyReason {
	switch {
	case errors.Is(err, ErrMissingHeader):
		return ReasonHeaders
	case errors.Is(err, ErrTimestamp):
		return ReasonTimestamp
	case errors.Is(err, ErrProbeSignature):
		return ReasonProbe
	case errors.Is(err, ErrUnknownSerial):
		return ReasonSerial
	}
	return ReasonSignature
}

// notifyResource is the encrypted resource of a notify.
type notifyResource struct {
	algorithm, nonce, associatedData string
	ciphertext                       []byte
}

// ParseNotify checks and decodes a payment or refund notify (protocol.md
// §13.2, §13.4): the Wechatpay-* headers present, not a probe, the
// timestamp within ±5 minutes of the client's clock, the signature verified
// over body — the raw bytes as received: never decode and re-encode the
// body before this, and make sure a reverse proxy passes the Wechatpay-*
// headers through (reliability.md N12) —, then the strict JSON of the
// notify, the resource decrypted with the APIv3 key (AEAD_AES_256_GCM) and
// decoded into a Transaction or a RefundNotify, whose mchid must be the
// client's. Every refusal is a *NotifyError with a Reason.
//
// A notify can arrive many times and out of order: make the handling
// idempotent, and compare the content with your own order before acting
// (reliability.md A2, A3).
func (c *Client) ParseNotify(ctx context.Context, header http.Header, body []byte) (*Notify, error) {
	if len(body) > MaxNotifySize {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: fmt.Errorf("body larger than %d bytes", MaxNotifySize)}
	}
	if c.verifier == nil {
		return nil, &NotifyError{Reason: ReasonSignature, Err: ErrNoVerifier}
	}
	if err := checkSigned(ctx, c.verifier, c.now(), header, body); err != nil {
		return nil, &NotifyError{Reason: reasonOf(err), Err: err}
	}
	return c.decodeNotify(body)
}

// decodeNotify decodes a notify whose signature was checked.
func (c *Client) decodeNotify(body []byte) (*Notify, error) {
	n := new(Notify)
	var res notifyResource
	var haveResource bool
	d := jdec{s: string(body), b: body}
	err := d.object(func(d *jdec, key string) (err error) {
		switch key {
		case "id":
			n.ID, err = d.str()
		case "create_time":
			n.CreateTime, err = d.timeValue()
		case "event_type":
			var s string
			s, err = d.str()
			n.EventType = EventType(s)
		case "resource_type":
			n.ResourceType, err = d.str()
		case "summary":
			n.Summary, err = d.str()
		case "resource":
			haveResource = true
			err = d.object(func(d *jdec, key string) (err error) {
				switch key {
				case "algorithm":
					res.algorithm, err = d.str()
				case "ciphertext":
					res.ciphertext, err = d.strBytes()
				case "associated_data":
					res.associatedData, err = d.str()
				case "nonce":
					res.nonce, err = d.str()
				case "original_type":
					n.OriginalType, err = d.str()
				default:
					err = d.skip()
				}
				return err
			})
		default:
			err = d.skip()
		}
		return err
	})
	if err == nil {
		err = d.end()
	}
	if err == nil && (n.ID == "" || n.EventType == "" || !haveResource) {
		err = &jsonError{msg: "notify without id, event_type or resource"}
	}
	if err == nil && res.algorithm != wxcrypto.AEADAlgorithm {
		err = &jsonError{msg: "resource algorithm is not " + wxcrypto.AEADAlgorithm}
	}
	if err != nil {
		return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
	}
	pt, err := c.aead.OpenBytes(res.nonce, res.associatedData, res.ciphertext)
	if err != nil {
		return nil, &NotifyError{Reason: ReasonDecrypt, Err: err}
	}
	var mchID string
	switch {
	case strings.HasPrefix(string(n.EventType), "TRANSACTION."):
		if n.Transaction, err = decodeTransaction(string(pt)); err != nil {
			return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
		}
		mchID = n.Transaction.MchID
	case strings.HasPrefix(string(n.EventType), "REFUND."):
		if n.Refund, err = decodeRefundNotify(string(pt)); err != nil {
			return nil, &NotifyError{Reason: ReasonMalformed, Err: err}
		}
		mchID = n.Refund.MchID
	default:
		n.Plaintext = pt
		return n, nil
	}
	if mchID != c.cfg.MchID {
		return nil, &NotifyError{Reason: ReasonMerchant, Notify: n,
			Err: fmt.Errorf("mchid %q is not the client's %q", mchID, c.cfg.MchID)}
	}
	return n, nil
}
