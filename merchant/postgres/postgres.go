package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/wxpay-go/wxpay/merchant"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable is the table in which goose records the applied
// migrations of the store (a name of its own, so that other components can
// keep their own migrations in the same database).
const MigrationTable = "merchant_goose_db_version"

// MigrationLock is the key of the session-level advisory lock that Open
// holds while it migrates, so that instances starting together on one
// database migrate one at a time.
const MigrationLock int64 = 0x77787061795f6d31 // "wxpay_m1"

// Store is a merchant.Store on PostgreSQL, safe for many service
// instances on one database.
//
// A change of an order is one conditional statement (UPDATE … WHERE status
// = 'NOTPAY', with its event and outbox rows in data-modifying CTEs) or a
// transaction that locks the order row (SELECT … FOR UPDATE) before it
// checks and changes it, at READ COMMITTED. Transactions that fail with a
// serialization failure or a deadlock (40001, 40P01) are retried.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ merchant.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	now func() time.Time
}

// WithNow sets the clock the store uses when a caller leaves a time unset
// (an order's CreatedAt, a report's RanAt …); time.Now by default.
func WithNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// DefaultMaxConns is the size of the pool when the DSN does not set
// pool_max_conns: at least 8 (pgxpool's own default, the number of CPUs
// and at least 4, leaves a service waiting on the round trips).
func DefaultMaxConns() int32 { return int32(max(8, 2*runtime.NumCPU())) }

// Open connects to the database of dsn (a postgres:// URL or key=value
// string, as pgx takes it, pool settings such as pool_max_conns included),
// and applies the embedded migrations under an advisory lock.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		pcfg.MaxConns = DefaultMaxConns()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, now: cfg.now}
	if err := s.migrate(ctx, pcfg.ConnConfig); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the migrations while holding MigrationLock on a
// connection of the pool; goose runs on a connection of its own.
func (s *Store) migrate(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", MigrationLock); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", MigrationLock); err != nil {
			conn.Conn().Close(context.Background()) // closing the session releases the lock
		}
	}()

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDB(*cc.Copy())
	defer db.Close()
	db.SetMaxOpenConns(1)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(MigrationTable),
	)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Pool returns the connection pool (for River's riverpgxv5 driver, which
// can then insert jobs in the store's database).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// clock returns t, or the store's now when t is zero.
func (s *Store) clock(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return t
}

// maxAttempts bounds the tries of a transaction that keeps failing with a
// serialization failure or a deadlock.
const maxAttempts = 5

// retryable reports whether PostgreSQL aborted the transaction only
// because of a concurrent one, so that running it again may succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// retry runs fn until it succeeds, fails with an error that is not
// retryable, or has failed maxAttempts times, with a short random pause
// between tries.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))):
		}
	}
}

// tx runs fn in a transaction (READ COMMITTED) and commits it, retrying
// it on a serialization failure or a deadlock: fn must have effects only
// through tx.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// isUnique reports whether err is a unique violation of the constraint
// (any one, when constraint is "").
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// queryer is what both the pool and a transaction offer.
type queryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ts returns t as a timestamptz argument: NULL for the zero time, else UTC
// to the microsecond.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return norm(t)
}

// norm returns t as the store keeps it: UTC, to the microsecond.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeCol scans a timestamptz column into *t (the zero time for NULL).
type timeCol struct{ t *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*c.t = time.Time{}
		return nil
	}
	if v.InfinityModifier != pgtype.Finite {
		return fmt.Errorf("postgres: infinite time")
	}
	*c.t = v.Time.UTC()
	return nil
}

func errf(err error, format string, args ...any) error {
	return fmt.Errorf("postgres: "+format+": %w", append(args, err)...)
}

// limitOr returns n, or def when n ≤ 0.
func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
