// Package postgres is the merchant.Store on PostgreSQL (pgx), for a service
// run as several instances on one database.
//
// Open applies the embedded migrations (goose) under a session-level
// advisory lock, so that instances starting together migrate one at a
// time. Every change of an order is guarded by its current status: a
// conditional UPDATE … WHERE status = 'NOTPAY' whose order event and
// outbox event are written by the same statement (data-modifying CTEs), or
// a transaction that locks the order (SELECT … FOR UPDATE) before it
// checks and changes it, as ReserveRefund does so that Σ refunds never
// exceeds the payment. Transactions that PostgreSQL aborts for a
// serialization failure or a deadlock are run again.
//
// Money is bigint fen; times are timestamptz (UTC, to the microsecond),
// NULL for the zero time.
package postgres
