package httpapi

import (
	"math"
	"sync"
	"time"
)

// Limit is a token bucket: Burst requests at once, then Rate per second.
// The zero Limit takes the default of the field that holds it; a negative
// Rate turns the limit off.
type Limit struct {
	Rate  float64 // tokens added per second
	Burst int     // the bucket's size
}

// orDefault returns l, or d when l is zero.
func (l Limit) orDefault(d Limit) Limit {
	if l.Rate == 0 && l.Burst == 0 {
		return d
	}
	if l.Rate > 0 && l.Burst <= 0 {
		l.Burst = 1
	}
	return l
}

// maxBuckets bounds the memory of a limiter: past it, buckets that have
// refilled (so hold no state worth keeping) are dropped, and if that is not
// enough, arbitrary ones.
const maxBuckets = 10000

// limiter is a set of token buckets, one per key (a client IP, an openid).
// It is safe for concurrent use. golang.org/x/time/rate is not a
// dependency of the module, and this is all that is needed of it.
type limiter struct {
	limit Limit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter, or nil (which allows everything) when the
// limit is off.
func newLimiter(l Limit, now func() time.Time) *limiter {
	if l.Rate < 0 {
		return nil
	}
	return &limiter{limit: l, now: now, buckets: make(map[string]*bucket)}
}

// allow takes a token from key's bucket. When there is none it returns
// false and how long until there is one.
func (lm *limiter) allow(key string) (bool, time.Duration) {
	if lm == nil {
		return true, 0
	}
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b, ok := lm.buckets[key]
	if !ok {
		if len(lm.buckets) >= maxBuckets {
			lm.sweep(now)
		}
		b = &bucket{tokens: float64(lm.limit.Burst), last: now}
		lm.buckets[key] = b
	}
	b.refill(lm.limit, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if lm.limit.Rate == 0 {
		return false, time.Hour
	}
	wait := time.Duration((1 - b.tokens) / lm.limit.Rate * float64(time.Second))
	return false, wait
}

func (b *bucket) refill(l Limit, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(l.Burst), b.tokens+el.Seconds()*l.Rate)
		b.last = now
	}
}

// sweep drops full buckets, then, if still too many remain, half of them.
func (lm *limiter) sweep(now time.Time) {
	for k, b := range lm.buckets {
		b.refill(lm.limit, now)
		if b.tokens >= float64(lm.limit.Burst) {
			delete(lm.buckets, k)
		}
	}
	for k := range lm.buckets {
		if len(lm.buckets) < maxBuckets/2 {
			break
		}
		delete(lm.buckets, k)
	}
}

// retryAfter rounds a wait up to whole seconds for the Retry-After header.
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
