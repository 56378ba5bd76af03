package recon_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/recon"
)

// TestReconcileI7Property: for random days — orders paid or not on either
// side, listed, missing or misstated in the bill, refunds in every state on
// either side, rows of orders we never issued — reconciliation succeeds,
// every difference left between the bill and our records has an exception
// (reliability.md I7), and running the day again stores nothing new.
func TestReconcileI7Property(t *testing.T) {
	e := newEnv(t)
	iteration := 0
	rapid.Check(t, func(rt *rapid.T) {
		iteration++
		d := day.AddDate(0, 0, iteration) // a fresh day (and numbers) per case
		date := d.Format(recon.DateLayout)
		e.now = d.AddDate(0, 0, 1).Add(11 * time.Hour)
		in := func(sec int64) time.Time { return d.Add(time.Duration(sec) * time.Second) }
		var rows []merchant.BillEntry

		n := rapid.IntRange(0, 6).Draw(rt, "orders")
		for i := range n {
			no := fmt.Sprintf("P%04dO%02d", iteration, i)
			fee := rapid.Int64Range(1, 9).Draw(rt, "fee") * 100
			paidAt := in(rapid.SampledFrom([]int64{0, 1, 43200, 86398, 86399}).Draw(rt, "second"))
			localPaid := rapid.Bool().Draw(rt, "localPaid")
			var o *merchant.Order
			txn := fmt.Sprintf("4200%06d%02d", iteration, i)
			if localPaid {
				o = e.paid(no, fee, paidAt)
				txn = o.TransactionID
			} else {
				o = e.order(no, fee, paidAt.Add(-time.Minute))
				if rapid.Bool().Draw(rt, "wechatPaid") {
					e.gw.paidAtWeChat(o, txn, paidAt, fee)
				}
			}
			switch rapid.SampledFrom([]string{"listed", "missing", "amount"}).Draw(rt, "bill") {
			case "listed":
				rows = append(rows, merchant.BillEntry{Time: paidAt, OutTradeNo: no, TransactionID: txn, State: wxpay.TradeStateSuccess, TotalFee: fee})
			case "amount":
				rows = append(rows, merchant.BillEntry{Time: paidAt, OutTradeNo: no, TransactionID: txn, State: wxpay.TradeStateSuccess, TotalFee: fee + 1})
			}
			if !localPaid || !rapid.Bool().Draw(rt, "refund") {
				continue
			}
			status := rapid.SampledFrom([]merchant.RefundStatus{merchant.RefundReserved, merchant.RefundProcessing,
				merchant.RefundSuccess, merchant.RefundFailed}).Draw(rt, "refundStatus")
			rno := fmt.Sprintf("R%04dO%02d", iteration, i)
			rf := e.refund(o, rno, 100, paidAt, status)
			if status == merchant.RefundReserved && rapid.Bool().Draw(rt, "wechatKnowsRefund") {
				e.gw.refunds[rno] = &merchant.RefundResult{OutRefundNo: rno, OutTradeNo: no, RefundID: "503" + rno,
					RefundFee: 100, Status: merchant.RefundProcessing}
			}
			if rapid.Bool().Draw(rt, "refundInBill") {
				rows = append(rows, refundRow(rf, rapid.SampledFrom([]string{"SUCCESS", "PROCESSING", "REFUNDCLOSE"}).Draw(rt, "billRefundStatus")))
			}
		}
		for i := range rapid.IntRange(0, 2).Draw(rt, "ghosts") {
			rows = append(rows, merchant.BillEntry{Time: in(int64(i)), OutTradeNo: fmt.Sprintf("G%04dO%02d", iteration, i),
				TransactionID: "4299", State: wxpay.TradeStateSuccess, TotalFee: 100})
		}
		slices.SortStableFunc(rows, func(a, b merchant.BillEntry) int { return a.Time.Compare(b.Time) })
		if len(rows) > 0 || rapid.Bool().Draw(rt, "billExists") {
			e.gw.setBill(date, rows...)
		}

		if _, _, err := e.rec.Reconcile(e.ctx, date); err != nil {
			rt.Fatal(err)
		}
		checkI7(rt, e, date)
		first := e.stored(date)
		if _, _, err := e.rec.Reconcile(e.ctx, date); err != nil {
			rt.Fatal(err)
		}
		if again := e.stored(date); !slices.Equal(again, first) {
			rt.Fatalf("a second run changed the exceptions:\n%q\n%q", first, again)
		}
	})
}
