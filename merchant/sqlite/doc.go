// Package sqlite is the merchant.Store on SQLite (modernc.org/sqlite, pure
// Go), the service's embedded default.
//
// Open applies the embedded migrations (goose) and configures the file for
// concurrent use: WAL, a busy timeout, foreign keys, synchronous=NORMAL.
// The store writes through one connection whose transactions begin with
// BEGIN IMMEDIATE, so every read-check-write of an order (MarkPaid,
// ReserveRefund, UpdateRefund …) holds the database's write lock from its
// first read: duplicates and races change nothing twice. One goroutine runs
// the write transactions one after the other and commits those that
// arrive together in one SQLite transaction, each in a savepoint of its
// own, answering each caller only after the commit (group commit: a commit
// costs more than most of our transactions). Reads run on a separate pool
// of read-only connections.
//
// Money is INTEGER fen; times are INTEGER microseconds since the Unix epoch
// in UTC (PostgreSQL's precision, so both stores return the same times),
// NULL for the zero time.
//
// River, the job queue, may open its own pool on the same file with DSN and
// SetMaxOpenConns(1): its transactions then wait for the write lock up to
// the busy timeout.
package sqlite
