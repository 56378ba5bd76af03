package postgres_test

import (
	"testing"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/storetest"
)

func BenchmarkPaidOrder(b *testing.B) {
	storetest.BenchmarkPaidOrder(b, func(b *testing.B) merchant.Store { return open(b) })
}
