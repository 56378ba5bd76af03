package loadtest

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"time"
)

// Histogram records durations in log-linear buckets, as HdrHistogram
// does: below 64 µs every microsecond has its bucket; above, each power of
// two is split into 64 buckets, so a reported value is within 1.6 % of
// the real one. It is safe for concurrent use; its memory is fixed (a few
// KiB) whatever the number of samples.
type Histogram struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	sum    float64 // µs
	min    uint64  // µs
	max    uint64  // µs
}

const (
	subBits    = 6
	subBuckets = 1 << subBits // 64
	maxBucket  = subBuckets + (64-subBits)*subBuckets
)

// bucketOf returns the bucket of a value in microseconds.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [64, 128)
	return subBuckets + e*subBuckets + int(v>>uint(e)) - subBuckets
}

// lowOf returns the smallest value of a bucket; highOf the largest.
func lowOf(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	e := (b - subBuckets) / subBuckets
	m := uint64((b-subBuckets)%subBuckets + subBuckets)
	return m << uint(e)
}

func highOf(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	e := (b - subBuckets) / subBuckets
	return lowOf(b) + (uint64(1) << uint(e)) - 1
}

// Record adds one duration (negative counts as zero).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0) / time.Microsecond)
	b := bucketOf(v)
	h.mu.Lock()
	if h.counts == nil {
		h.counts = make([]uint64, maxBucket)
	}
	h.counts[b]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.mu.Unlock()
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the value below which a fraction q (0…1) of the
// samples fall: the middle of the bucket that holds the q-th sample,
// clamped to the observed min and max. Zero without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.quantileLocked(q)
}

func (h *Histogram) quantileLocked(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	switch {
	case rank <= 1:
		return time.Duration(h.min) * time.Microsecond
	case rank >= h.n:
		return time.Duration(h.max) * time.Microsecond
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			v := (lowOf(b) + highOf(b)) / 2
			v = min(max(v, h.min), h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

// Summary is what a report shows of a histogram. Durations are in
// milliseconds, for people and for JSON.
type Summary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

// Summary returns count, min, mean, percentiles and max.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return Summary{}
	}
	us := func(v uint64) float64 { return ms(time.Duration(v) * time.Microsecond) }
	return Summary{
		Count: h.n, Min: us(h.min), Max: us(h.max),
		Mean: math.Round(h.sum/float64(h.n)) / 1000,
		P50:  ms(h.quantileLocked(0.50)), P90: ms(h.quantileLocked(0.90)), P95: ms(h.quantileLocked(0.95)),
		P99: ms(h.quantileLocked(0.99)), P999: ms(h.quantileLocked(0.999)),
	}
}

// Bucket is one non-empty bucket of a histogram: [Low, High] in
// milliseconds and its count.
type Bucket struct {
	Low   float64 `json:"low_ms"`
	High  float64 `json:"high_ms"`
	Count uint64  `json:"count"`
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Bucket
	for b, c := range h.counts {
		if c == 0 {
			continue
		}
		out = append(out, Bucket{Low: float64(lowOf(b)) / 1000, High: float64(highOf(b)+1) / 1000, Count: c})
	}
	return out
}

// Merge adds the samples of o to h.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts := append([]uint64(nil), o.counts...)
	n, sum, mn, mx := o.n, o.sum, o.min, o.max
	o.mu.Unlock()
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, maxBucket)
	}
	for i, c := range counts {
		h.counts[i] += c
	}
	if h.n == 0 || mn < h.min {
		h.min = mn
	}
	h.max = max(h.max, mx)
	h.n += n
	h.sum += sum
}

// histSet is a set of named histograms (latency by API).
type histSet struct {
	mu sync.Mutex
	m  map[string]*Histogram
}

func (s *histSet) get(name string) *Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Histogram{}
	}
	h := s.m[name]
	if h == nil {
		h = &Histogram{}
		s.m[name] = h
	}
	return h
}

func (s *histSet) summaries() map[string]Summary {
	s.mu.Lock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := make(map[string]Summary, len(names))
	for _, n := range names {
		out[n] = s.get(n).Summary()
	}
	return out
}
