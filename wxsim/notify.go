package wxsim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// NotifyKind is what a notify try delivered.
type NotifyKind string

// Notify kinds.
const (
	NotifyPay            NotifyKind = "pay"             // the payment result notify (protocol.md §6)
	NotifyRefund         NotifyKind = "refund"          // the refund result notify (protocol.md §7)
	NotifyProbe          NotifyKind = "probe"           // a pay notify with a wrong sign, as WeChat's probes
	NotifyNativeCallback NotifyKind = "native_callback" // a Native mode-1 scan callback (protocol.md §9)
	NotifyCustom         NotifyKind = "custom"          // sent by SendPayNotify
)

// Verdicts of a notify try.
const (
	VerdictAcknowledged  = "acknowledged" // HTTP 200 and the exact SUCCESS reply
	VerdictRejected      = "rejected"     // a well-formed FAIL reply, or a non-200 status
	VerdictMalformed     = "malformed"    // HTTP 200 but not a valid reply document
	VerdictUnreachable   = "unreachable"  // connection error or timeout
	VerdictDropped       = "dropped"      // a drop fault: never sent
	VerdictProbeRefused  = "probe_refused"
	VerdictProbeAccepted = "probe_accepted" // the merchant acknowledged a bad signature: a bug
)

// NotifyAttempt is one try of a notify, as the delivery log keeps it.
type NotifyAttempt struct {
	Seq         int64      `json:"seq"`      // position in the log, from 1
	Delivery    int64      `json:"delivery"` // the notify: every try of one notify shares it
	Kind        NotifyKind `json:"kind"`
	MchID       string     `json:"mch_id"`
	OutTradeNo  string     `json:"out_trade_no,omitempty"`
	OutRefundNo string     `json:"out_refund_no,omitempty"`
	URL         string     `json:"url"`
	Attempt     int        `json:"attempt"`             // 1 for the first try, up to 16
	Duplicate   bool       `json:"duplicate,omitempty"` // the extra copy of a duplicate fault
	Time        time.Time  `json:"time"`                // simulator clock
	Elapsed     float64    `json:"elapsed_ms"`          // wall-clock milliseconds the try took
	HTTPStatus  int        `json:"http_status,omitempty"`
	Reply       string     `json:"reply,omitempty"` // the start of the merchant's body
	Error       string     `json:"error,omitempty"` // why the try failed
	Verdict     string     `json:"verdict"`         // one of the Verdict constants
	// Acked reports whether the merchant acknowledged the notify. For a
	// probe it reports whether the merchant correctly refused it.
	Acked  bool      `json:"acked"`
	NextAt time.Time `json:"next_at,omitzero"` // when the next try is due; zero if none
	// Serial is the Wechatpay-Serial a v3 notify was signed under (a
	// platform certificate serial or a PUB_KEY_ID_…); empty for v2.
	Serial string `json:"serial,omitempty"`
}

// NotifyStats counts notify tries.
type NotifyStats struct {
	Tries          int `json:"tries"`
	Acknowledged   int `json:"acknowledged"`    // notifies the merchant acknowledged
	GaveUp         int `json:"gave_up"`         // notifies that ran out of tries
	Malformed      int `json:"malformed"`       // tries answered 200 with an invalid body
	Dropped        int `json:"dropped"`         // notifies dropped by a fault
	ProbesSent     int `json:"probes_sent"`     // bad-signature probes sent
	ProbesAccepted int `json:"probes_accepted"` // probes the merchant acknowledged (should be 0)
}

// delivery is one notify with its retry state.
type delivery struct {
	id          int64
	kind        NotifyKind
	mchID       string
	outTradeNo  string
	outRefundNo string
	url         string
	fields      []wxcrypto.Field // with a "sign" placeholder unless unsigned
	signType    wxpay.SignType
	key         string
	unsigned    bool
	body        []byte
	attempts    int
	duplicate   bool
	firstDelay  time.Duration
	v3          *v3Delivery // an APIv3 notify (v3notify.go); nil for v2
}

// notifier sends notifies and keeps the delivery log.
type notifier struct {
	s *Simulator

	mu      sync.Mutex
	seq     int64
	nextID  int64
	log     []NotifyAttempt
	stats   NotifyStats
	dup     int
	drop    int
	probe   int
	delayN  int
	delayD  time.Duration
	reorder int
	held    []*delivery
}

// maxLog bounds the delivery log; the oldest tries are forgotten first.
const maxLog = 100_000

func (n *notifier) init(s *Simulator) { n.s = s }

// send signs d and starts its delivery, applying pending notify faults.
func (n *notifier) send(d *delivery, now time.Time) {
	if !d.unsigned {
		for i := range d.fields {
			if d.fields[i].Name == "sign" {
				d.fields[i].Value = signOf(d.signType, d.key, d.fields)
			}
		}
	}
	d.body = appendXML(nil, d.fields)
	n.mu.Lock()
	n.nextID++
	d.id = n.nextID
	if n.drop > 0 {
		n.drop--
		n.stats.Dropped++
		n.recordLocked(NotifyAttempt{Delivery: d.id, Kind: d.kind, MchID: d.mchID, OutTradeNo: d.outTradeNo,
			OutRefundNo: d.outRefundNo, URL: d.url, Time: now, Verdict: VerdictDropped, Error: "dropped by a fault"})
		n.mu.Unlock()
		return
	}
	probe := false
	if n.probe > 0 && (d.kind == NotifyPay || d.kind == NotifyPayV3) {
		n.probe--
		probe = true
	}
	if n.delayN > 0 {
		n.delayN--
		d.firstDelay = n.delayD
	}
	if n.dup > 0 {
		n.dup--
		d.duplicate = true
	}
	if n.reorder > 0 {
		n.held = append(n.held, d)
		if len(n.held) < n.reorder {
			n.mu.Unlock()
			if probe {
				n.sendProbe(d)
			}
			return
		}
		held := n.held
		n.held, n.reorder = nil, 0
		n.mu.Unlock()
		if probe {
			n.sendProbe(d)
		}
		for i := len(held) - 1; i >= 0; i-- {
			n.schedule(held[i], held[i].firstDelay)
		}
		return
	}
	n.mu.Unlock()
	if probe {
		n.sendProbe(d)
	}
	n.schedule(d, d.firstDelay)
}

// schedule queues d's next try after wait (scaled).
func (n *notifier) schedule(d *delivery, wait time.Duration) {
	n.s.sched.after(wait, func() { n.try(d) })
}

// sendProbe queues, before d, a copy of d whose sign is wrong, sent once.
func (n *notifier) sendProbe(d *delivery) {
	p := *d
	p.kind = NotifyProbe
	p.fields = append([]wxcrypto.Field(nil), d.fields...)
	for i := range p.fields {
		if p.fields[i].Name == "sign" {
			p.fields[i].Value = corruptSign(p.fields[i].Value)
		}
	}
	p.body = appendXML(nil, p.fields)
	p.duplicate = false
	n.mu.Lock()
	n.nextID++
	p.id = n.nextID
	n.stats.ProbesSent++
	n.mu.Unlock()
	n.s.sched.after(0, func() { n.try(&p) })
}

// corruptSign returns a signature of the same length that is wrong.
func corruptSign(sig string) string {
	b := []byte(sig)
	if len(b) == 0 {
		return "0"
	}
	for i := range b {
		if b[i] == 'F' {
			b[i] = '0'
		} else {
			b[i] = "0123456789ABCDEF"[(strings.IndexByte("0123456789ABCDEF", b[i])+1)%16]
		}
	}
	return string(b)
}

// try makes one delivery attempt (two at once for a duplicate) and
// schedules the next one when it failed.
func (n *notifier) try(d *delivery) {
	ctx := n.s.sched.ctx
	d.attempts++
	if d.duplicate {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.post(ctx, d, true)
		}()
		_, acked := n.post(ctx, d, false)
		wg.Wait()
		d.duplicate = false
		n.afterTry(d, acked)
		return
	}
	_, acked := n.post(ctx, d, false)
	if d.kind == NotifyProbe {
		return
	}
	n.afterTry(d, acked)
}

func (n *notifier) afterTry(d *delivery, acked bool) {
	if acked || d.kind == NotifyCustom {
		return
	}
	sched := n.s.cfg.NotifySchedule
	if d.attempts-1 >= len(sched) {
		n.mu.Lock()
		n.stats.GaveUp++
		n.mu.Unlock()
		return
	}
	n.schedule(d, sched[d.attempts-1])
}

// post sends the notify once and records the try; it reports whether the
// merchant acknowledged it.
func (n *notifier) post(parent context.Context, d *delivery, duplicate bool) (NotifyAttempt, bool) {
	s := n.s
	start := time.Now()
	now := s.clock.Now()
	a := NotifyAttempt{Delivery: d.id, Kind: d.kind, MchID: d.mchID, OutTradeNo: d.outTradeNo, OutRefundNo: d.outRefundNo,
		URL: d.url, Attempt: d.attempts, Duplicate: duplicate, Time: now}
	ctx, cancel := context.WithTimeout(parent, s.cfg.NotifyTimeout)
	defer cancel()
	var status int
	var reply []byte
	var err error
	if d.v3 != nil {
		status, reply, a.Serial, err = s.postNotifyV3(ctx, d)
	} else {
		status, reply, err = postXML(ctx, s.cfg.HTTPClient, d.url, d.body)
	}
	a.Elapsed = float64(time.Since(start).Microseconds()) / 1000
	a.HTTPStatus = status
	a.Reply = snippet(reply)
	verdict, why := judgeReply(status, reply, err)
	if d.v3 != nil {
		verdict, why = judgeReplyV3(status, reply, err)
	}
	a.Verdict = verdict
	a.Error = why
	acked := verdict == VerdictAcknowledged
	if d.kind == NotifyProbe {
		a.Acked = !acked
		if acked {
			a.Verdict = VerdictProbeAccepted
			a.Error = "the merchant acknowledged a notify with a wrong signature"
		} else {
			a.Verdict = VerdictProbeRefused
		}
	} else {
		a.Acked = acked
		if !acked && !duplicate && d.kind != NotifyCustom && d.attempts-1 < len(s.cfg.NotifySchedule) {
			a.NextAt = now.Add(s.sched.scaled(s.cfg.NotifySchedule[d.attempts-1]))
		}
	}
	n.mu.Lock()
	n.stats.Tries++
	switch {
	case d.kind == NotifyProbe && acked:
		n.stats.ProbesAccepted++
	case acked && !duplicate && d.kind != NotifyProbe:
		n.stats.Acknowledged++
	}
	if verdict == VerdictMalformed {
		n.stats.Malformed++
	}
	a = n.recordLocked(a)
	n.mu.Unlock()
	s.log.Info("wxsim: notify", "kind", string(d.kind), "mch_id", d.mchID, "out_trade_no", d.outTradeNo,
		"attempt", d.attempts, "status", status, "verdict", a.Verdict)
	return a, acked && d.kind != NotifyProbe
}

func (n *notifier) recordLocked(a NotifyAttempt) NotifyAttempt {
	n.seq++
	a.Seq = n.seq
	a.Time, a.NextAt = inCST(a.Time), inCST(a.NextAt)
	if len(n.log) >= maxLog {
		n.log = append(n.log[:0], n.log[len(n.log)/2:]...)
	}
	n.log = append(n.log, a)
	return a
}

// postXML POSTs body and returns the status and up to 64 KiB of the reply.
func postXML(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, reply, err
}

// judgeReply decides whether the merchant acknowledged a notify. Accepted,
// and only this: HTTP 200 and a body that is a well-formed flat <xml>
// document (white space, an XML declaration and CDATA allowed) with exactly
// return_code=SUCCESS and optionally return_msg=OK, and no other element.
// A FAIL reply or a non-200 status is a rejection; a 200 with anything else
// is malformed (and also a failure).
func judgeReply(status int, reply []byte, err error) (verdict, why string) {
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return VerdictUnreachable, "no answer within the notify timeout"
		}
		return VerdictUnreachable, err.Error()
	}
	if status != http.StatusOK {
		return VerdictRejected, "HTTP status " + strconv.Itoa(status)
	}
	if len(bytes.TrimSpace(reply)) == 0 {
		return VerdictMalformed, "empty reply"
	}
	msg, derr := decodeXML(reply)
	if derr != nil {
		return VerdictMalformed, "reply is not a flat <xml> document: " + derr.Error()
	}
	code := msg.get("return_code")
	for _, f := range msg {
		if f.Name != "return_code" && f.Name != "return_msg" {
			return VerdictMalformed, "unexpected element <" + f.Name + "> in the reply"
		}
	}
	switch code {
	case wxpay.Success:
		if m := msg.get("return_msg"); m != "" && m != "OK" {
			return VerdictMalformed, "return_msg must be OK or absent, not " + strconv.Quote(m)
		}
		return VerdictAcknowledged, ""
	case wxpay.Fail:
		return VerdictRejected, "return_code FAIL: " + msg.get("return_msg")
	case "":
		return VerdictMalformed, "reply has no return_code"
	}
	return VerdictMalformed, "return_code must be SUCCESS or FAIL, not " + strconv.Quote(code)
}

func snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		b = b[:max]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}

func (n *notifier) clearFaults() {
	n.mu.Lock()
	n.dup, n.drop, n.probe, n.delayN, n.delayD = 0, 0, 0, 0, 0
	held := n.held
	n.held, n.reorder = nil, 0
	n.mu.Unlock()
	for _, d := range held {
		n.schedule(d, d.firstDelay)
	}
}

// Notifications returns the delivery log: every notify try in order.
func (s *Simulator) Notifications() []NotifyAttempt {
	n := &s.notifier
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]NotifyAttempt(nil), n.log...)
}

// NotifyStats returns the notify counters.
func (s *Simulator) NotifyStats() NotifyStats {
	n := &s.notifier
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// NotifyDuplicate makes each of the next n notifies go out twice at the
// same time on its first try; both copies are in the log.
func (s *Simulator) NotifyDuplicate(n int) {
	s.notifier.mu.Lock()
	s.notifier.dup += n
	s.notifier.mu.Unlock()
}

// NotifyDelay delays the first try of each of the next n notifies by d
// (scaled by TimeScale).
func (s *Simulator) NotifyDelay(n int, d time.Duration) {
	s.notifier.mu.Lock()
	s.notifier.delayN, s.notifier.delayD = n, d
	s.notifier.mu.Unlock()
}

// NotifyReorder holds the next n notifies back and, when the nth arrives,
// sends them newest first: for example a refund notify before the pay
// notify of the same order. ReleaseNotifies sends a partial batch.
func (s *Simulator) NotifyReorder(n int) {
	if n < 2 {
		n = 2
	}
	s.notifier.mu.Lock()
	s.notifier.reorder = n
	s.notifier.mu.Unlock()
}

// ReleaseNotifies sends the notifies a NotifyReorder holds back, newest
// first, and cancels the reorder.
func (s *Simulator) ReleaseNotifies() {
	n := &s.notifier
	n.mu.Lock()
	held := n.held
	n.held, n.reorder = nil, 0
	n.mu.Unlock()
	for i := len(held) - 1; i >= 0; i-- {
		n.schedule(held[i], held[i].firstDelay)
	}
}

// NotifyDrop drops the next n notifies: they are never sent (the log has
// one "dropped" line for each). The merchant must find the outcome by
// querying.
func (s *Simulator) NotifyDrop(n int) {
	s.notifier.mu.Lock()
	s.notifier.drop += n
	s.notifier.mu.Unlock()
}

// NotifyBadSignature makes each of the next n pay notifies be preceded by a
// probe: the same notify with a wrong sign, sent once, as WeChat's own
// probes check that merchants verify. A merchant that acknowledges a probe
// is counted in NotifyStats.ProbesAccepted.
func (s *Simulator) NotifyBadSignature(n int) {
	s.notifier.mu.Lock()
	s.notifier.probe += n
	s.notifier.mu.Unlock()
}

// SendPayNotify sends, once and now, the pay notify of a paid order to its
// notify_url after letting mutate change the fields (for example total_fee
// one fen less, another mch_id, an extra field); the result is signed
// correctly with the order's sign type. It returns the logged try. This is
// for testing that a merchant checks the content of a validly signed
// notify (reliability.md A2, A7).
func (s *Simulator) SendPayNotify(ctx context.Context, mchID, outTradeNo string, mutate func(fields []wxcrypto.Field) []wxcrypto.Field) (NotifyAttempt, error) {
	ref, err := s.findOrder(mchID, outTradeNo)
	if err != nil {
		return NotifyAttempt{}, err
	}
	b, o := ref.b, ref.o
	b.mu.Lock()
	if o.paidAt.IsZero() || o.notifyURL == "" {
		b.mu.Unlock()
		return NotifyAttempt{}, errors.New("wxsim: the order is not paid or has no notify_url")
	}
	d := s.payNotify(o)
	b.mu.Unlock()
	d.kind = NotifyCustom
	if mutate != nil {
		d.fields = mutate(d.fields)
	}
	for i := range d.fields {
		if d.fields[i].Name == "sign" {
			d.fields[i].Value = signOf(d.signType, d.key, d.fields)
		}
	}
	d.body = appendXML(nil, d.fields)
	n := &s.notifier
	n.mu.Lock()
	n.nextID++
	d.id = n.nextID
	n.mu.Unlock()
	d.attempts = 1
	a, _ := n.post(ctx, d, false)
	return a, nil
}
