package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stats are the run's counters and histograms, shared by the users.
type stats struct {
	started, done, created, paid, refunded, closed, abandoned, failed atomic.Int64
	errs                                                              atomic.Int64
	extraNotifies                                                     atomic.Int64
	probeAnswers                                                      atomic.Int64 // v3 answers with a probe signature

	create, login, pay, paidWait, e2e, refund, closing Histogram
	wechat                                             histSet

	mu        sync.Mutex
	errKinds  map[string]int
	errSample map[string]string // one message per kind
	paidNos   []string
	timeline  []Tick
}

func newStats() *stats {
	return &stats{errKinds: map[string]int{}, errSample: map[string]string{}}
}

// Tick is one second of the run: what happened in it.
type Tick struct {
	T        float64 `json:"t"` // seconds since the users started
	Created  int64   `json:"created"`
	Paid     int64   `json:"paid"`
	Errors   int64   `json:"errors"`
	Notifies int64   `json:"notifies_acked"`
}

// errorf counts an error of a stage; the kind is the stage and the class
// of the message (a connection refused, HTTP 503 UNAVAILABLE …).
func (s *stats) errorf(stage, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.count(stage+": "+classify(msg), msg)
}

func (s *stats) err(stage string, err error) {
	s.count(stage+": "+classifyErr(err), err.Error())
}

func (s *stats) count(kind, msg string) {
	s.errs.Add(1)
	s.mu.Lock()
	s.errKinds[kind]++
	if _, ok := s.errSample[kind]; !ok {
		s.errSample[kind] = clip(msg, 300)
	}
	s.mu.Unlock()
}

// classifyErr names the class of a transport or API error.
func classifyErr(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.code != "" {
			return fmt.Sprintf("HTTP %d %s", ae.status, ae.code)
		}
		return fmt.Sprintf("HTTP %d", ae.status)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "EOF") {
		return "connection closed (EOF)"
	}
	return classify(err.Error())
}

func classify(msg string) string {
	for _, c := range []string{"connection refused", "connection reset", "EOF", "timeout", "deadline exceeded"} {
		if strings.Contains(msg, c) {
			return c
		}
	}
	if i := strings.IndexAny(msg, ":("); i > 0 && i < 60 {
		return strings.TrimSpace(msg[:i])
	}
	return clip(msg, 60)
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ErrorKind is one kind of error and how often it happened.
type ErrorKind struct {
	Kind    string `json:"kind"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

func (s *stats) errorKinds() []ErrorKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ErrorKind, 0, len(s.errKinds))
	for k, n := range s.errKinds {
		out = append(out, ErrorKind{Kind: k, Count: n, Example: s.errSample[k]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

func (s *stats) addPaid(no string) {
	s.mu.Lock()
	s.paidNos = append(s.paidNos, no)
	s.mu.Unlock()
}

// textLog keeps the API's answers for the secret check (I9): all of them
// up to a cap, and past it those that hold a canary.
type textLog struct {
	canaries []string

	mu    sync.Mutex
	buf   strings.Builder
	extra []string
	kept  int
	seen  int
}

const textCap = 32 << 20

func newTextLog(canaries []string) *textLog { return &textLog{canaries: canaries} }

func (t *textLog) add(body []byte) {
	if len(body) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen++
	if t.buf.Len()+len(body) <= textCap {
		t.buf.Write(body)
		t.buf.WriteByte('\n')
		t.kept++
		return
	}
	s := string(body)
	for _, c := range t.canaries {
		if strings.Contains(s, c) {
			t.extra = append(t.extra, s)
			t.kept++
			return
		}
	}
}

// texts returns what was kept, and how many answers were seen and kept.
func (t *textLog) texts() (out []string, seen, kept int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string{t.buf.String()}, t.extra...), t.seen, t.kept
}

// since returns seconds since t as a float.
func since(t time.Time) float64 { return time.Since(t).Seconds() }
