package wxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// Notify kinds of APIv3 (protocol.md §13.4): the notifies of orders placed
// and refunds requested through APIv3.
const (
	NotifyPayV3    NotifyKind = "pay_v3"    // TRANSACTION.SUCCESS
	NotifyRefundV3 NotifyKind = "refund_v3" // REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED
)

// v3Delivery is the APIv3 part of a notify: the body, fixed for every
// try, and the merchant whose current key signs each try afresh.
type v3Delivery struct {
	vm   *v3Merchant
	body []byte
}

// v3NotifyBody is a v3 notify (protocol.md §13.4).
type v3NotifyBody struct {
	ID           string           `json:"id"`
	CreateTime   string           `json:"create_time"`
	EventType    string           `json:"event_type"`
	ResourceType string           `json:"resource_type"`
	Summary      string           `json:"summary"`
	Resource     v3NotifyResource `json:"resource"`
}

type v3NotifyResource struct {
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	OriginalType   string `json:"original_type"`
	Nonce          string `json:"nonce"`
}

// v3RefundResource is the decrypted resource of a refund notify.
type v3RefundResource struct {
	MchID               string            `json:"mchid"`
	OutTradeNo          string            `json:"out_trade_no"`
	TransactionID       string            `json:"transaction_id"`
	OutRefundNo         string            `json:"out_refund_no"`
	RefundID            string            `json:"refund_id"`
	RefundStatus        string            `json:"refund_status"`
	SuccessTime         string            `json:"success_time,omitempty"`
	UserReceivedAccount string            `json:"user_received_account"`
	Amount              v3RefundResAmount `json:"amount"`
}

type v3RefundResAmount struct {
	Total       int64 `json:"total"`
	Refund      int64 `json:"refund"`
	PayerTotal  int64 `json:"payer_total"`
	PayerRefund int64 `json:"payer_refund"`
}

var v3EventSeq atomic.Int64

// v3EventID makes a notify id like WeChat's EV-2018022511223320873.
func v3EventID(t time.Time) string {
	return fmt.Sprintf("EV-%s%07d", t.In(wxpay.China).Format(layoutCompact), v3EventSeq.Add(1)%10_000_000)
}

// v3Envelope encrypts plaintext with the merchant's APIv3 key under aad
// and wraps it in a notify body carrying wireNonce; a wireNonce that is
// not 12 bytes is sent as it is while a random one encrypts. A ciphertext
// given replaces the encryption.
func (vm *v3Merchant) v3Envelope(eventType, summary, aad, originalType string, plaintext []byte, at time.Time, wireNonce, ciphertext string) []byte {
	nonce := wireNonce
	if len(nonce) != wxcrypto.AEADNonceSize {
		nonce = randomString(alnum, wxcrypto.AEADNonceSize)
	}
	if ciphertext == "" {
		ct, err := vm.aead.Seal(nonce, aad, plaintext)
		if err != nil {
			panic(err) // the nonce is 12 bytes and the key was checked in New
		}
		ciphertext = ct
	}
	return v3JSON(v3NotifyBody{
		ID: v3EventID(at), CreateTime: v3Time(at), EventType: eventType, ResourceType: "encrypt-resource", Summary: summary,
		Resource: v3NotifyResource{Algorithm: wxcrypto.AEADAlgorithm, Ciphertext: ciphertext, AssociatedData: aad,
			OriginalType: originalType, Nonce: wireNonce},
	})
}

// payNotifyV3 builds the TRANSACTION.SUCCESS notify of a paid v3 order.
// b.mu must be held.
func (s *Simulator) payNotifyV3(o *order) *delivery {
	mchID := o.b.m.cfg.MchID
	vm := s.v3Merchant(mchID)
	body := vm.v3Envelope("TRANSACTION.SUCCESS", "支付成功", "transaction", "transaction", v3JSON(v3Transaction(o)), o.paidAt, randomString(alnum, 12), "")
	d := &delivery{kind: NotifyPayV3, mchID: mchID, outTradeNo: o.outTradeNo, url: o.notifyURL, unsigned: true,
		v3: &v3Delivery{vm: vm, body: body}}
	s.v3MaybeProbe(d)
	return d
}

// v3RefundResourceOf is the decrypted resource of rf's refund notify.
func v3RefundResourceOf(rf *refund) v3RefundResource {
	o := rf.o
	r := v3RefundResource{
		MchID: o.b.m.cfg.MchID, OutTradeNo: o.outTradeNo, TransactionID: o.transactionID, OutRefundNo: rf.outRefundNo,
		RefundID: rf.refundID, RefundStatus: v3RefundStatus(rf.status), UserReceivedAccount: recvAccount(rf),
		Amount: v3RefundResAmount{Total: o.totalFee, Refund: rf.refundFee, PayerTotal: o.totalFee, PayerRefund: rf.refundFee},
	}
	if !rf.successAt.IsZero() {
		r.SuccessTime = v3Time(rf.successAt)
	}
	return r
}

// v3RefundEvent is the event type and summary of a final refund status.
func v3RefundEvent(st wxpay.RefundStatus) (event, summary string) {
	switch st {
	case wxpay.RefundStatusChange:
		return "REFUND.ABNORMAL", "退款异常"
	case wxpay.RefundStatusClosed:
		return "REFUND.CLOSED", "退款关闭"
	}
	return "REFUND.SUCCESS", "退款成功"
}

// refundNotifyV3 builds the REFUND.* notify of a refund requested through
// APIv3. b.mu must be held.
func (s *Simulator) refundNotifyV3(rf *refund) *delivery {
	o := rf.o
	mchID := o.b.m.cfg.MchID
	vm := s.v3Merchant(mchID)
	event, summary := v3RefundEvent(rf.status)
	body := vm.v3Envelope(event, summary, "refund", "refund", v3JSON(v3RefundResourceOf(rf)), s.clock.Now(), randomString(alnum, 12), "")
	d := &delivery{kind: NotifyRefundV3, mchID: mchID, outTradeNo: o.outTradeNo, outRefundNo: rf.outRefundNo,
		url: rf.notifyURL, unsigned: true, v3: &v3Delivery{vm: vm, body: body}}
	s.v3MaybeProbe(d)
	return d
}

// v3MaybeProbe sends, with the probability SetV3ProbeRate set, a probe
// copy of d ahead of it.
func (s *Simulator) v3MaybeProbe(d *delivery) {
	if _, rate := s.v3.probeRates(); s.v3.chance(rate) {
		s.notifier.sendProbe(d)
	}
}

// postNotifyV3 POSTs a v3 notify once, signed now by the merchant's
// current key (a WECHATPAY/SIGNTEST/ probe signature for a probe), and
// returns the status, up to 64 KiB of the reply and the Wechatpay-Serial.
func (s *Simulator) postNotifyV3(ctx context.Context, d *delivery) (int, []byte, string, error) {
	signer, err := d.v3.vm.signer(false)
	if err != nil {
		return 0, nil, "", err
	}
	sig := s.v3.sign(signer, d.v3.body, d.kind == NotifyProbe)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.v3.body))
	if err != nil {
		return 0, nil, sig.serial, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Mozilla/4.0")
	h.Set("Wechatpay-Nonce", sig.nonce)
	h.Set("Wechatpay-Signature", sig.signature)
	h.Set("Wechatpay-Timestamp", sig.timestamp)
	h.Set("Wechatpay-Serial", sig.serial)
	h.Set("Wechatpay-Signature-Type", wxcrypto.AuthSchemeV3)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, sig.serial, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, reply, sig.serial, err
}

// judgeReplyV3 decides whether the merchant acknowledged a v3 notify:
// WeChat looks at the status only. 200 or 204 with any body is success (a
// 200 whose body says FAIL too, noted in the log); anything else, and no
// answer, is failure.
func judgeReplyV3(status int, reply []byte, err error) (verdict, why string) {
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return VerdictUnreachable, "no answer within the notify timeout"
		}
		return VerdictUnreachable, err.Error()
	}
	switch status {
	case http.StatusOK, http.StatusNoContent:
		var body struct {
			Code string `json:"code"`
		}
		if status == http.StatusOK && json.Unmarshal(reply, &body) == nil && body.Code != "" && body.Code != wxpay.Success {
			return VerdictAcknowledged, "HTTP 200 with code " + strconv.Quote(body.Code) + " in the body: WeChat judges v3 replies by the status alone, so this acknowledges the notify"
		}
		return VerdictAcknowledged, ""
	}
	return VerdictRejected, "HTTP status " + strconv.Itoa(status) + " (a v3 notify is acknowledged by 200 or 204 only)"
}

// V3NotifyMessage is a v3 notify before it is encrypted and signed; the
// mutate function of SendV3Notify changes it to send a validly signed
// malicious or odd notify (reliability.md A2, F2, N6, N9).
type V3NotifyMessage struct {
	EventType string // TRANSACTION.SUCCESS, REFUND.SUCCESS …
	Summary   string
	// Resource is the plaintext resource (a transaction, or a refund) as
	// a JSON object: change an amount, the mchid, the trade_state …
	Resource map[string]any
	// AssociatedData is the AAD the resource is encrypted under and that
	// the body names.
	AssociatedData string
	// Nonce is the nonce the body carries, a fresh one to start with.
	// One that is not 12 bytes long (empty included) is sent as it is
	// while the resource is encrypted under a random 12-byte one: a bad
	// GCM nonce inside a validly signed body.
	Nonce string
	// Ciphertext, when not empty, is sent instead of the encrypted
	// resource (for example a truncated tag, or text that is not base64).
	Ciphertext string
	// Body, when not nil, is sent as the whole body instead of all of the
	// above, still with a valid signature.
	Body []byte
}

// SendV3Notify sends, once and now, a v3 notify for an order (outRefundNo
// empty: TRANSACTION.SUCCESS with the order as it is now, paid or not) or
// for one of its refunds (REFUND.* of its current status) to the notify
// URL, after letting mutate change it; the result is encrypted with the
// merchant's APIv3 key and signed with its current key. It returns the
// logged try (kind "custom").
func (s *Simulator) SendV3Notify(ctx context.Context, mchID, outTradeNo, outRefundNo string, mutate func(*V3NotifyMessage)) (NotifyAttempt, error) {
	ref, err := s.findOrder(mchID, outTradeNo)
	if err != nil {
		return NotifyAttempt{}, err
	}
	b, o := ref.b, ref.o
	vm := s.v3Merchant(b.m.cfg.MchID)
	msg := &V3NotifyMessage{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", AssociatedData: "transaction",
		Nonce: randomString(alnum, wxcrypto.AEADNonceSize)}
	b.mu.Lock()
	url := o.notifyURL
	var plain []byte
	if outRefundNo != "" {
		rf := b.refunds[outRefundNo]
		if rf == nil || rf.o != o {
			b.mu.Unlock()
			return NotifyAttempt{}, ErrUnknownRefund
		}
		msg.EventType, msg.Summary = v3RefundEvent(rf.status)
		msg.AssociatedData = "refund"
		url = rf.notifyURL
		plain = v3JSON(v3RefundResourceOf(rf))
	} else {
		o.refreshLocked(s.clock.Now())
		plain = v3JSON(v3Transaction(o))
	}
	b.mu.Unlock()
	if url == "" {
		return NotifyAttempt{}, errors.New("wxsim: no notify URL for that order or refund")
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.UseNumber()
	if err := dec.Decode(&msg.Resource); err != nil {
		return NotifyAttempt{}, err
	}
	original := msg.AssociatedData
	if mutate != nil {
		mutate(msg)
	}
	body := msg.Body
	if body == nil {
		body = vm.v3Envelope(msg.EventType, msg.Summary, msg.AssociatedData, original, v3JSON(msg.Resource), s.clock.Now(), msg.Nonce, msg.Ciphertext)
	}
	d := &delivery{kind: NotifyCustom, mchID: b.m.cfg.MchID, outTradeNo: outTradeNo, outRefundNo: outRefundNo, url: url,
		unsigned: true, v3: &v3Delivery{vm: vm, body: body}}
	n := &s.notifier
	n.mu.Lock()
	n.nextID++
	d.id = n.nextID
	n.mu.Unlock()
	d.attempts = 1
	a, _ := n.post(ctx, d, false)
	return a, nil
}
