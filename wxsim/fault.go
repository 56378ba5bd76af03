package wxsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// FaultKind is how an injected fault makes a WeChat Pay call fail.
type FaultKind string

// Fault kinds for WeChat Pay calls.
const (
	// FaultSystemError answers result_code=FAIL, err_code=SYSTEMERROR
	// (for reverse also recall=Y; for the bill endpoints return_msg
	// SYSTEMERROR; for jscode2session errcode -1) without executing the
	// call.
	FaultSystemError FaultKind = "SYSTEMERROR"
	// FaultSystemErrorAfterCommit executes the call, then answers
	// SYSTEMERROR: the outcome is unknown to the merchant although the
	// state changed.
	FaultSystemErrorAfterCommit FaultKind = "SYSTEMERROR_AFTER_COMMIT"
	// FaultErrCode answers result_code=FAIL with Fault.ErrCode (for
	// example BIZERR_NEED_RETRY or FREQUENCY_LIMITED) without executing.
	FaultErrCode FaultKind = "ERR_CODE"
	// FaultHTTP500 answers HTTP 500 without executing.
	FaultHTTP500 FaultKind = "HTTP_500"
	// FaultDelay waits Fault.Delay (real time, not scaled) before serving
	// the call normally: a slow answer.
	FaultDelay FaultKind = "DELAY"
	// FaultDropBeforeCommit closes the connection without executing the
	// call or answering.
	FaultDropBeforeCommit FaultKind = "DROP_BEFORE_COMMIT"
	// FaultDropAfterCommit executes the call, then closes the connection
	// without answering: the state changed and the merchant cannot know.
	FaultDropAfterCommit FaultKind = "DROP_AFTER_COMMIT"
	// FaultUserPaysFirst (closeorder only) has the user pay the order just
	// before the close is served, which then answers ORDERPAID: the
	// payment that lands between the merchant's last query and its close
	// (reliability.md C2). The payer is the order's openid, or else the
	// first user whose balance covers it.
	FaultUserPaysFirst FaultKind = "USER_PAYS_FIRST"
)

// Notify fault kinds, for Fault.API "notify" (see also the Notify* methods).
const (
	FaultNotifyDuplicate    FaultKind = "DUPLICATE"     // each notify is sent twice at once
	FaultNotifyDelay        FaultKind = "NOTIFY_DELAY"  // the first try waits Fault.Delay (scaled)
	FaultNotifyReorder      FaultKind = "REORDER"       // Count notifies are held, then sent last first
	FaultNotifyDrop         FaultKind = "DROP"          // the notify is never sent
	FaultNotifyBadSignature FaultKind = "BAD_SIGNATURE" // a probe with a wrong sign goes first
)

// FaultAPIs are the names Fault.API accepts: the WeChat Pay endpoints,
// "jscode2session", "notify" for notify faults, and "*" for every WeChat
// Pay endpoint.
var FaultAPIs = []string{
	"unifiedorder", "orderquery", "closeorder", "refund", "refundquery",
	"downloadbill", "downloadfundflow", "micropay", "reverse", "shorturl",
	"report", "authcodetoopenid", "getsignkey", "jscode2session", "notify", "*",
	// APIv3 (v3http.go): v3_prepay is all four trade types.
	"v3_prepay", "v3_query", "v3_close", "v3_refund", "v3_refundquery",
	"v3_bill", "v3_billdownload", "v3_certificates",
}

// v3FaultAPIs maps the fault API name of a v2 endpoint to the one of the
// APIv3 endpoint that does the same.
var v3FaultAPIs = map[string]string{
	"unifiedorder": "v3_prepay", "orderquery": "v3_query", "closeorder": "v3_close",
	"refund": "v3_refund", "refundquery": "v3_refundquery",
	"downloadbill": "v3_bill", "downloadfundflow": "v3_bill",
}

// V3FaultAPI returns the fault API name (FaultAPIs) of the APIv3 endpoint
// that does what the v2 endpoint api does — "unifiedorder" → "v3_prepay"
// — so that a scenario written for v2 can hit a v3 merchant; false when
// there is none.
func V3FaultAPI(api string) (string, bool) {
	v3, ok := v3FaultAPIs[api]
	return v3, ok
}

// Fault is a failure to inject into the next calls of an API.
type Fault struct {
	API     string        // see FaultAPIs
	Kind    FaultKind     // what happens
	Count   int           // how many calls (or notifies) it hits; zero means 1
	Delay   time.Duration // FaultDelay and FaultNotifyDelay
	ErrCode string        // FaultErrCode: the err_code to answer
	// Rate, when between 0 and 1 (exclusive), makes each call hit with
	// that probability (seeded by Config.Seed) until Count calls were hit.
	Rate float64
}

func (f Fault) validate() error {
	if !validFaultAPI(f.API) {
		return fmt.Errorf("wxsim: unknown fault api %q", f.API)
	}
	notify := f.API == "notify"
	switch f.Kind {
	case FaultSystemError, FaultSystemErrorAfterCommit, FaultHTTP500, FaultDropBeforeCommit, FaultDropAfterCommit:
		if notify {
			return fmt.Errorf("wxsim: fault kind %s does not apply to notifies", f.Kind)
		}
	case FaultUserPaysFirst:
		if f.API != "closeorder" && f.API != "v3_close" {
			return errors.New("wxsim: USER_PAYS_FIRST applies to closeorder and v3_close only")
		}
	case FaultV3Probe:
		if !strings.HasPrefix(f.API, "v3_") {
			return errors.New("wxsim: V3_PROBE applies to the v3_* apis only")
		}
	case FaultErrCode:
		if notify || f.ErrCode == "" || len(f.ErrCode) > 32 {
			return errors.New("wxsim: an ERR_CODE fault needs err_code (and not the notify api)")
		}
	case FaultDelay:
		if f.Delay <= 0 {
			return errors.New("wxsim: a delay fault needs a positive delay")
		}
	case FaultNotifyDelay:
		if !notify || f.Delay <= 0 {
			return errors.New("wxsim: NOTIFY_DELAY applies to the notify api and needs a positive delay")
		}
	case FaultNotifyDuplicate, FaultNotifyReorder, FaultNotifyDrop, FaultNotifyBadSignature:
		if !notify {
			return fmt.Errorf("wxsim: fault kind %s applies to the notify api only", f.Kind)
		}
	default:
		return fmt.Errorf("wxsim: unknown fault kind %q", f.Kind)
	}
	if f.Count < 0 || f.Rate < 0 || f.Rate >= 1 && f.Rate != 0 {
		return errors.New("wxsim: count must be ≥ 0 and rate in [0, 1)")
	}
	return nil
}

func validFaultAPI(api string) bool {
	for _, a := range FaultAPIs {
		if a == api {
			return true
		}
	}
	return false
}

// faultBox holds the pending faults of WeChat Pay calls.
type faultBox struct {
	mu     sync.Mutex
	queue  []*pendingFault
	rng    *rand.Rand
	counts map[string]int // faults fired, by "api/kind"
}

type pendingFault struct {
	Fault
	left int
}

func (b *faultBox) init(seed uint64) {
	b.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b.counts = make(map[string]int)
}

func (b *faultBox) add(f Fault) {
	if f.Count == 0 {
		f.Count = 1
	}
	b.mu.Lock()
	b.queue = append(b.queue, &pendingFault{Fault: f, left: f.Count})
	b.mu.Unlock()
}

// take returns the fault the next call of api should suffer, or nil. The
// first pending fault for the api (or "*") in injection order applies.
func (b *faultBox) take(api string) *Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range b.queue {
		if p.API != api && !(p.API == "*" && api != "jscode2session" && api != "notify") {
			continue
		}
		if p.Rate > 0 && b.rng.Float64() >= p.Rate {
			return nil
		}
		p.left--
		if p.left <= 0 {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
		}
		b.counts[api+"/"+string(p.Kind)]++
		f := p.Fault
		return &f
	}
	return nil
}

func (b *faultBox) pending() []Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Fault, 0, len(b.queue))
	for _, p := range b.queue {
		f := p.Fault
		f.Count = p.left
		out = append(out, f)
	}
	return out
}

func (b *faultBox) clear() {
	b.mu.Lock()
	b.queue = nil
	b.mu.Unlock()
}

// InjectFault makes the next f.Count calls of f.API fail as f.Kind says.
// Faults for the same API apply in the order they were injected. Notify
// faults (API "notify") are the same as the Notify* methods.
func (s *Simulator) InjectFault(f Fault) error {
	f.API = strings.ToLower(strings.TrimSpace(f.API))
	if f.API == "notify" && f.Kind == FaultDelay {
		f.Kind = FaultNotifyDelay
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.API == "notify" {
		n := f.Count
		if n == 0 {
			n = 1
		}
		switch f.Kind {
		case FaultNotifyDuplicate:
			s.NotifyDuplicate(n)
		case FaultNotifyDelay:
			s.NotifyDelay(n, f.Delay)
		case FaultNotifyReorder:
			s.NotifyReorder(n)
		case FaultNotifyDrop:
			s.NotifyDrop(n)
		case FaultNotifyBadSignature:
			s.NotifyBadSignature(n)
		}
		return nil
	}
	s.faults.add(f)
	return nil
}

// Faults returns the faults still pending, with the count left.
func (s *Simulator) Faults() []Fault { return s.faults.pending() }

// ClearFaults removes every pending fault of WeChat Pay calls and notifies.
func (s *Simulator) ClearFaults() {
	s.faults.clear()
	s.notifier.clearFaults()
}

// parseFaultKind accepts the kind names in any case, with "-" or "_", and
// a few aliases ("500", "system_error", "drop", "bad_sign").
func parseFaultKind(api, k string) FaultKind {
	k = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(k), "-", "_"))
	switch k {
	case "500", "HTTP500":
		return FaultHTTP500
	case "SYSTEM_ERROR":
		return FaultSystemError
	case "SLOW":
		k = "DELAY"
	case "BAD_SIGN", "PROBE", "SIGNTEST":
		return FaultNotifyBadSignature
	case "DUPLICATED", "DUP":
		return FaultNotifyDuplicate
	case "DROPPED", "NEVER":
		if api == "notify" {
			return FaultNotifyDrop
		}
	case "DELAYED":
		k = "DELAY"
	case "REORDERED":
		return FaultNotifyReorder
	}
	if api == "notify" && k == "DELAY" {
		return FaultNotifyDelay
	}
	if api != "notify" && k == "DROP" {
		return FaultDropAfterCommit
	}
	return FaultKind(k)
}
