package river_test

import (
	"encoding/json"

	"github.com/wxpay-go/wxpay/merchant/payments"
)

func paymentsRefund(outTradeNo, outRefundNo string) payments.RefundRequest {
	return payments.RefundRequest{OutTradeNo: outTradeNo, OutRefundNo: outRefundNo, RefundFee: 1000, Reason: "test"}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
