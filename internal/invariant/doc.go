// Package invariant checks the "nothing lost" invariants I1–I9 of
// reliability.md Part 0: it compares the merchant's records (a
// merchant.Store) with the simulator's ledger (the truth about money) and
// with the merchant's own audit tables (order events, outbox, anomalies,
// reconciliation exceptions), and greps captured text for canary secrets.
//
// Check is meant to run after quiescence: the simulator has finished its
// notify retries and refund completions (wxsim.Simulator.Quiesce), the
// settle and refund jobs have run, and the affected days were reconciled.
// The reliability tests of merchant/payments and the `wxpay load` harness
// both end with it:
//
//	_ = sim.Quiesce(ctx) // then: the settle and refund jobs, reconciliation of the days
//	rep, err := invariant.Check(ctx, invariant.Input{
//		Store: store, Ledger: sim.Ledger(), MchID: mchID,
//		Now: clock.Now(), Grace: 2 * time.Minute,
//		Canaries: []string{apiKey, appSecret}, Texts: []string{logs, responses, dump},
//	})
//	if err == nil && !rep.OK() {
//		fmt.Println(rep) // one line per invariant, with examples
//	}
//
// # The invariants, as measured here
//
//   - I1 local state agrees with WeChat. For every out_trade_no of the
//     merchant (local orders and simulator orders): local PAID or REFUND ⇔
//     the simulator took the money (Order.Paid); local CLOSED (or PAYERROR)
//     ⇔ the simulator's order is CLOSED, REVOKED or PAYERROR, or NOTPAY past
//     its time_expire. A local unpaid order WeChat never heard of agrees; a
//     simulator order the merchant has no row for disagrees.
//   - I2 money in. Σ paid fen and the count of paid orders are equal on
//     both sides, for every China day of the payment time (PaidAt, WeChat's
//     time_end) and overall.
//   - I3 money out. Per order, Σ local refunds whose status holds money
//     (RESERVED, PROCESSING, SUCCESS, CHANGE) ≤ TotalFee; the set of local
//     out_refund_no (leaving out FAILED ones the simulator never executed)
//     equals the simulator's, each with the same order, amount and a
//     matching settled status (SUCCESS ⇔ SUCCESS, CLOSED/FAILED ⇔
//     REFUNDCLOSE, CHANGE ⇔ CHANGE, RESERVED/PROCESSING ⇔ PROCESSING); every
//     simulator refund has Executions ≤ 1; per order Σ simulator refunds
//     not REFUNDCLOSE ≤ what the simulator was paid.
//   - I4 states only move forward. Each order's events form a chain
//     NOTPAY → … whose every step is merchant.CanTransition and whose last
//     step ends at the order's current status (no events: NOTPAY).
//   - I5 side effects happen once. A paid order (PAID or REFUND) has
//     exactly one order.paid outbox event; any other order has none.
//   - I6 no PAID order disagrees with WeChat. For every paid local order
//     the simulator has, its appid, mch_id, total_fee and transaction_id
//     are the order's.
//   - I7 every difference is healed or recorded. A difference is an I1
//     disagreement, an I2 per-order difference (paid on one side only, or
//     with another amount or day) or an I3 refund-set difference. Each one
//     that has an anomaly of its order or an open (not healed) recon
//     exception naming its order or refund is recorded: it is counted by
//     I7 as checked, and is NOT counted as a violation of I1, I2 or I3 (and
//     a recorded order is left out of both sides of the I2 sums). Each one
//     without such a record is a violation of its own invariant and of I7.
//     Local bounds (Σ refunds ≤ total, Executions ≤ 1, Σ simulator refunds
//     ≤ paid) are never excused.
//   - I8 the loop is closed. No NOTPAY order whose ExpiresAt+Grace is
//     before Now.
//   - I9 no secret leaks. No canary appears in any of the texts.
//
// Examples name orders, refunds, states and amounts — never a canary or
// any other secret.
package invariant
