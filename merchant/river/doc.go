// Package river runs the merchant service's background work on River
// (github.com/riverqueue/river), in the database the store already uses —
// SQLite or PostgreSQL — so that several instances share one queue and
// River's leader election runs each periodic job once:
//
//   - settle (every 30 s): unpaid orders older than 60 s are queried and
//     settled, those past time_expire plus a grace are closed through the
//     service, which marks CLOSED only when WeChat confirmed
//     (reliability.md C1, C2, C3, I8);
//   - refunds (every 30 s): refunds RESERVED or PROCESSING for 30 s are
//     resubmitted with the same out_refund_no or settled by a refund
//     query (D2, D3);
//   - outbox (every 5 s): business events are POSTed to the merchant's
//     webhook, signed with HMAC-SHA256 over "timestamp.body" in the
//     Wxpay-Signature header, retried with exponential backoff until
//     delivered (Part 3, Webhooks);
//   - reconcile (daily at 10:00 China time): yesterday's bill (E1, I7).
//
// Every job is idempotent and bounded (Config.Limit items per run). Start
// runs River; NewRunner gives the same work without River, one run at a
// time, for tests, the load harness and the wxpay commands.
//
// Start(ctx, Config{Payments: svc, Reconciler: rec, Driver: river.SQLite(path)})
// opens a pool of River's own on the store's file; river.Postgres(pool)
// shares the store's pgx pool.
package river
