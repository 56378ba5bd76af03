package apiv2

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

// appendWireTime's fixed-zone fast path writes what the Asia/Shanghai
// zone writes: around its last daylight-saving transition, and at random
// instants from 1980 to 2100.
func TestAppendWireTimeMatchesTheZone(t *testing.T) {
	check := func(u int64) {
		tm := time.Unix(u, 0)
		want := tm.In(wxpay.China).Format(TimeLayout)
		if got := string(appendWireTime(nil, tm)); got != want {
			t.Fatalf("%d (%s): %s, want %s", u, tm.UTC(), got, want)
		}
	}
	for d := int64(-7200); d <= 7200; d++ {
		check(chinaFixedSince + d)
	}
	for _, tm := range []time.Time{time.Date(2000, 2, 29, 15, 59, 59, 0, time.UTC), time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC),
		time.Date(2100, 2, 28, 16, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 15, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 16, 0, 0, 0, time.UTC)} {
		check(tm.Unix())
	}
	r := rand.New(rand.NewPCG(1, 2))
	lo, hi := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	for range 100000 {
		check(lo + r.Int64N(hi-lo))
	}
}

func TestNameKeyOrders(t *testing.T) {
	names := []string{"", "a", "b", "ab", "aa", "sign", "sign_type", "total_fee", "time_expire", "out_trade_no",
		"out_refund_no", "abcdefgh", "abcdefghi", "abcdefgha", "coupon_fee_0", "coupon_fee_10", "coupon_fee_1"}
	for _, a := range names {
		for _, b := range names {
			ka, kb := nameKey(a), nameKey(b)
			if a < b && ka > kb || a > b && ka < kb {
				t.Errorf("nameKey(%q)=%x, nameKey(%q)=%x disagree with the names' order", a, ka, b, kb)
			}
		}
	}
}
