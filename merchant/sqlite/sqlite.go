package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"

	"github.com/wxpay-go/wxpay/merchant"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable is the table in which goose records the applied
// migrations of the store (a name of its own, so that other components can
// keep their own migrations in the same database).
const MigrationTable = "merchant_goose_db_version"

// Store is a merchant.Store on one SQLite database file.
//
// Every write transaction runs on a pool of one connection whose
// transactions begin with BEGIN IMMEDIATE, so the writers of this process
// queue in Go instead of spinning on SQLITE_BUSY, and a transaction holds
// the write lock from its first read. One goroutine runs them, committing
// those that arrive together at once (see writer). Reads use a separate
// pool of read-only connections, which WAL mode lets run beside the
// writer. Another pool on the same file (River's) waits for the write lock
// up to the busy timeout.
type Store struct {
	path string
	dsn  string
	w    *pool   // one connection, BEGIN IMMEDIATE
	wr   *writer // runs every write on w
	r    *pool   // read-only connections
	now  func() time.Time
}

var _ merchant.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	busyTimeout time.Duration
	readConns   int
	now         func() time.Time
}

// WithBusyTimeout sets how long a connection waits for a lock another
// connection holds before it fails with SQLITE_BUSY (default 10 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithReadConns sets the size of the read pool (default: the number of
// CPUs, at least 4).
func WithReadConns(n int) Option {
	return func(c *config) { c.readConns = n }
}

// WithNow sets the clock the store uses when a caller leaves a time unset
// (an order's CreatedAt, a report's RanAt …); time.Now by default.
func WithNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Open opens (creating it when missing) the database at path, configures
// it (WAL, busy timeout, foreign keys, synchronous=NORMAL) and applies the
// embedded migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a database file path is required")
	}
	cfg := config{busyTimeout: 10 * time.Second, readConns: max(4, runtime.NumCPU()), now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Store{path: path, now: cfg.now}
	s.dsn = DSN(path, cfg.busyTimeout)

	write, err := sql.Open("sqlite", s.dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	s.w = newPool(write)
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}

	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		s.w.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(cfg.readConns)
	read.SetMaxIdleConns(cfg.readConns)
	s.r = newPool(read)
	if err := read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.wr = newWriter(s.w)
	return s, nil
}

// DSN returns the data source name, for the "sqlite" driver of
// modernc.org/sqlite, that Open uses for its writes: WAL, the busy timeout,
// foreign keys on, synchronous=NORMAL and BEGIN IMMEDIATE for every
// read-write transaction. Another pool on the same file (River's, with
// SetMaxOpenConns(1)) should use it too, so that its transactions take the
// write lock up front and wait for it instead of failing.
func DSN(path string, busyTimeout time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w.db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(MigrationTable),
	)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	return nil
}

// DB returns the write pool: its one connection (BEGIN IMMEDIATE) is the
// one the store's writes run on, so a transaction on it holds them all up;
// keep it short. River should open a pool of its own with DSN.
func (s *Store) DB() *sql.DB { return s.w.db }

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// DSN returns the data source name of the write pool (see the function DSN).
func (s *Store) DSN() string { return s.dsn }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close lets the writes already asked for finish, then closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.wr != nil {
		s.wr.close()
	}
	if s.r != nil {
		errs = append(errs, s.r.close())
	}
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	return errors.Join(errs...)
}

// clock returns t, or the store's now when t is zero.
func (s *Store) clock(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return t
}

// SQLite result codes (https://sqlite.org/rescode.html).
const (
	codeBusy             = 5
	codeLocked           = 6
	codeConstraintUnique = 2067
	codeConstraintPK     = 1555
)

func sqliteCode(err error) int {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == codeConstraintUnique || c == codeConstraintPK
}

func isBusy(err error) bool {
	c := sqliteCode(err) & 0xff
	return c == codeBusy || c == codeLocked
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE on the one write
// connection, possibly with others: see writer) and commits it. fn must
// have effects only through tx.
func (s *Store) writeTx(ctx context.Context, fn func(tx txq) error) error {
	return s.wr.do(ctx, fn)
}

// exec runs one statement in a write transaction.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.writeTx(ctx, func(tx txq) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// queryer is what both a pool and a transaction offer.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Times are INTEGER microseconds since the epoch, NULL for the zero time.

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// tsNotNull is ts for a NOT NULL column.
func tsNotNull(t time.Time) int64 { return t.UnixMicro() }

// timeCol scans a time column into *t.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlite: time column holds %T", v)
	}
	return nil
}

// norm returns t as the store keeps it: UTC, to the microsecond.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func errf(err error, format string, args ...any) error {
	return fmt.Errorf("sqlite: "+format+": %w", append(args, err)...)
}

// limitOr returns n, or def when n ≤ 0.
func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
