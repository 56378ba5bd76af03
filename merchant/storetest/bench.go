package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
)

// BenchmarkPaidOrder measures the store's part of one paid order:
// CreateOrder, SetPrepay and MarkPaid, one order after the other
// ("Sequential") and from many goroutines at once, 16 per CPU, as a busy
// service calls them ("Parallel"). It reports paid orders per second, and
// the CPU time of the process per order (on a busy machine the second
// says more; it includes the database server's only when that runs in the
// process, as SQLite does).
func BenchmarkPaidOrder(b *testing.B, open func(b *testing.B) merchant.Store) {
	b.Run("Sequential", func(b *testing.B) {
		s := open(b)
		var n atomic.Int64
		cpu := cpuTime()
		for b.Loop() {
			paidOrder(b, s, fmt.Sprintf("B%d", n.Add(1)))
		}
		report(b, cpu)
	})
	b.Run("Parallel", func(b *testing.B) {
		s := open(b)
		var n atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		cpu := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				paidOrder(b, s, fmt.Sprintf("B%d", n.Add(1)))
			}
		})
		report(b, cpu)
	})
}

func report(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	if cpu := cpuTime(); cpu > 0 {
		b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "cpu-µs/order")
	}
}

func paidOrder(b *testing.B, s merchant.Store, no string) {
	ctx := b.Context()
	now := time.Now()
	o := &merchant.Order{OutTradeNo: no, OpenID: "oBench", AppID: appID, MchID: mchID, TradeType: wxpay.TradeTypeJSAPI,
		Items: []merchant.Item{{SKU: "tea", Name: "Tea", Quantity: 1, UnitPrice: 100}}, TotalFee: 100, Body: "Shop - tea",
		ClientIP: "127.0.0.1", IdempotencyKey: "k" + no, ExpiresAt: now.Add(2 * time.Hour), CreatedAt: now}
	if _, _, err := s.CreateOrder(ctx, o); err != nil {
		b.Fatal(err)
	}
	if err := s.SetPrepay(ctx, no, merchant.PrepayOK, "wx"+no, "", now.Add(2*time.Hour)); err != nil {
		b.Fatal(err)
	}
	out, _, err := s.MarkPaid(ctx, &merchant.Payment{OutTradeNo: no, TransactionID: "42" + no, AppID: appID, MchID: mchID,
		TotalFee: 100, CashFee: 100, FeeType: "CNY", OpenID: o.OpenID, TradeType: o.TradeType, PaidAt: now,
		Source: merchant.SourceNotify}, now)
	if err != nil || out != merchant.PayApplied {
		b.Fatalf("MarkPaid = %v, %v", out, err)
	}
}
