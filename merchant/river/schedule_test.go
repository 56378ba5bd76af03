package river

import (
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func TestDailySchedule(t *testing.T) {
	s := daily{at: 10 * time.Hour, loc: wxpay.China}
	cst := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, wxpay.China) }
	for _, tc := range []struct{ now, want time.Time }{
		{cst(28, 9, 59), cst(28, 10, 0)},
		{cst(28, 10, 0), cst(29, 10, 0)},
		{cst(28, 23, 0), cst(29, 10, 0)},
		{time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), cst(28, 10, 0)},  // 09:00 in China
		{time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC), cst(29, 10, 0)}, // 10:30 in China
		{time.Date(2026, 12, 31, 3, 0, 0, 0, wxpay.China), time.Date(2026, 12, 31, 10, 0, 0, 0, wxpay.China)},
	} {
		if got := s.Next(tc.now); !got.Equal(tc.want) {
			t.Errorf("Next(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempts, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second} {
		if got := backoff(10*time.Second, time.Hour, attempts); got != want {
			t.Errorf("backoff(%d) = %s, want %s", attempts, got, want)
		}
	}
	if got := backoff(10*time.Second, time.Hour, 1000); got != time.Hour {
		t.Errorf("backoff(1000) = %s, want the cap", got)
	}
}
