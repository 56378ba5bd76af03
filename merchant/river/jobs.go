package river

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	rq "github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant/recon"
)

// Queue is the River queue the jobs run in.
const Queue = "wxpay"

// Driver says which database River keeps its queue in: the store's own,
// on SQLite or PostgreSQL. Build one with SQLite or Postgres.
type Driver struct {
	sqlitePath  string
	busyTimeout time.Duration
	pool        *pgxpool.Pool
}

// SQLite puts the queue in the SQLite database file at path — the store's
// file. River gets a pool of its own on it with one connection (River's
// SQLite driver needs that), WAL, BEGIN IMMEDIATE and a 10 s busy timeout,
// so that its writes queue behind the store's instead of failing.
func SQLite(path string) Driver { return Driver{sqlitePath: path, busyTimeout: 10 * time.Second} }

// Postgres puts the queue in the database of pool (River's pgx v5
// driver). The pool stays the caller's; it needs at least 2 connections.
func Postgres(pool *pgxpool.Pool) Driver { return Driver{pool: pool} }

// String names the driver for logs.
func (d Driver) String() string {
	switch {
	case d.sqlitePath != "":
		return "sqlite"
	case d.pool != nil:
		return "postgres"
	}
	return "none"
}

// Job arguments. Settle, refunds and outbox jobs are singletons: while
// one is queued or running another is not inserted, so a slow run never
// piles up runs behind it. A failed run is not retried by River: the next
// period's run is the retry.
type (
	settleArgs    struct{}
	refundsArgs   struct{}
	outboxArgs    struct{}
	reconcileArgs struct {
		Date string `json:"date"` // yyyy-mm-dd, China time
	}
)

func (settleArgs) Kind() string    { return KindSettle }
func (refundsArgs) Kind() string   { return KindRefunds }
func (outboxArgs) Kind() string    { return KindOutbox }
func (reconcileArgs) Kind() string { return KindReconcile }

func singleton() rq.InsertOpts {
	return rq.InsertOpts{Queue: Queue, MaxAttempts: 1, UniqueOpts: rq.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

func (settleArgs) InsertOpts() rq.InsertOpts  { return singleton() }
func (refundsArgs) InsertOpts() rq.InsertOpts { return singleton() }
func (outboxArgs) InsertOpts() rq.InsertOpts  { return singleton() }

// InsertOpts makes a day's reconciliation unique while River keeps the
// job (completed ones 24 h): the leader inserts it once per day whoever
// the leader is. A failure is retried with River's backoff; a bill not
// ready yet snoozes the job until it should be.
func (reconcileArgs) InsertOpts() rq.InsertOpts {
	return rq.InsertOpts{Queue: Queue, MaxAttempts: 10, UniqueOpts: rq.UniqueOpts{ByArgs: true}}
}

// worker runs a job through a function.
type worker[T rq.JobArgs] struct {
	rq.WorkerDefaults[T]
	run     func(ctx context.Context, args T) error
	timeout time.Duration
}

func (w *worker[T]) Work(ctx context.Context, job *rq.Job[T]) error { return w.run(ctx, job.Args) }
func (w *worker[T]) Timeout(*rq.Job[T]) time.Duration               { return w.timeout }

// client is what Jobs needs of a River client, whatever its driver.
type client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args rq.JobArgs, opts *rq.InsertOpts) (*rivertype.JobInsertResult, error)
	ID() string
}

// Jobs is the background work of one instance on River: the periodic
// settle, refunds, outbox and reconcile jobs and the workers that run
// them. Every instance works jobs from the shared queue; River's leader
// election makes one of them insert the periodic jobs, so each period's
// work runs once however many instances there are.
type Jobs struct {
	runner *Runner
	client client
	db     *sql.DB // River's own pool on the SQLite file; nil on PostgreSQL

	stopOnce sync.Once
	stopErr  error
}

// Start migrates River's schema (one instance at a time: an IMMEDIATE
// transaction on SQLite, an advisory lock on PostgreSQL), then starts a
// River client with the periodic jobs: settle every SettleEvery, refunds
// every RefundsEvery, outbox every OutboxEvery (each also at once when
// the instance becomes leader) and, with a Reconciler, yesterday's
// reconciliation daily at ReconcileAt China time (also at leader start
// when that time has passed today). Stop it with Stop.
func Start(ctx context.Context, cfg Config) (*Jobs, error) {
	r, err := NewRunner(cfg)
	if err != nil {
		return nil, err
	}
	cfg = r.cfg
	j := &Jobs{runner: r}
	rcfg := j.riverConfig()
	d := cfg.Driver
	switch {
	case d.sqlitePath != "" && d.pool != nil:
		return nil, errors.New("river: the Driver names both SQLite and PostgreSQL")
	case d.sqlitePath != "":
		if j.db, err = openSQLite(ctx, d.sqlitePath, d.busyTimeout); err != nil {
			return nil, err
		}
		if err := migrateSQLite(ctx, j.db, cfg.Logger); err != nil {
			j.db.Close()
			return nil, err
		}
		c, err := rq.NewClient(riversqlite.New(j.db), rcfg)
		if err != nil {
			j.db.Close()
			return nil, fmt.Errorf("river: %w", err)
		}
		j.client = c
	case d.pool != nil:
		if err := migratePostgres(ctx, d.pool, cfg.Logger); err != nil {
			return nil, err
		}
		c, err := rq.NewClient(riverpgxv5.New(d.pool), rcfg)
		if err != nil {
			return nil, fmt.Errorf("river: %w", err)
		}
		j.client = c
	default:
		return nil, errors.New("river: Config.Driver is required (SQLite(path) or Postgres(pool))")
	}
	if err := j.client.Start(ctx); err != nil {
		if j.db != nil {
			j.db.Close()
		}
		return nil, fmt.Errorf("river: starting the client: %w", err)
	}
	cfg.Logger.InfoContext(ctx, "background jobs started", slog.String("driver", d.String()), slog.String("id", j.client.ID()))
	return j, nil
}

// riverConfig builds River's configuration: the queue, the workers and
// the periodic jobs.
func (j *Jobs) riverConfig() *rq.Config {
	r, cfg := j.runner, j.runner.cfg
	workers := rq.NewWorkers()
	rq.AddWorker(workers, &worker[settleArgs]{timeout: 10 * time.Minute,
		run: func(ctx context.Context, _ settleArgs) error { _, err := r.Settle(ctx); return err }})
	rq.AddWorker(workers, &worker[refundsArgs]{timeout: 10 * time.Minute,
		run: func(ctx context.Context, _ refundsArgs) error { _, err := r.Refunds(ctx); return err }})
	rq.AddWorker(workers, &worker[outboxArgs]{timeout: 10 * time.Minute,
		run: func(ctx context.Context, _ outboxArgs) error { _, err := r.Outbox(ctx); return err }})
	rq.AddWorker(workers, &worker[reconcileArgs]{timeout: 30 * time.Minute, run: j.reconcile})

	every := func(d time.Duration, args rq.JobArgs) *rq.PeriodicJob {
		return rq.NewPeriodicJob(rq.PeriodicInterval(d), func() (rq.JobArgs, *rq.InsertOpts) {
			cfg.Observe(args.Kind(), OutcomeScheduled)
			return args, nil
		}, &rq.PeriodicJobOpts{ID: args.Kind(), RunOnStart: true})
	}
	periodic := []*rq.PeriodicJob{
		every(cfg.SettleEvery, settleArgs{}),
		every(cfg.RefundsEvery, refundsArgs{}),
		every(cfg.OutboxEvery, outboxArgs{}),
	}
	if cfg.Reconciler != nil {
		periodic = append(periodic, rq.NewPeriodicJob(daily{at: cfg.ReconcileAt, loc: wxpay.China}, j.reconcileJob,
			&rq.PeriodicJobOpts{ID: KindReconcile, RunOnStart: true}))
	}
	return &rq.Config{
		ID:                cfg.ID,
		Logger:            cfg.Logger,
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     min(rq.FetchCooldownDefault, cfg.PollInterval),
		Queues:            map[string]rq.QueueConfig{Queue: {MaxWorkers: cfg.MaxWorkers}},
		Workers:           workers,
		PeriodicJobs:      periodic,
		TestOnly:          cfg.NoStagger, // only disables the stagger
	}
}

// reconcileJob makes the day's reconcile job: yesterday's date, once the
// bill is promised (a leader that starts earlier in the day inserts
// nothing; the schedule will).
func (j *Jobs) reconcileJob() (rq.JobArgs, *rq.InsertOpts) {
	now := j.runner.svc.Now().In(wxpay.China)
	y, m, d := now.Date()
	if now.Sub(time.Date(y, m, d, 0, 0, 0, 0, wxpay.China)) < j.runner.cfg.ReconcileAt-time.Minute {
		return nil, nil
	}
	j.runner.cfg.Observe(KindReconcile, OutcomeScheduled)
	return reconcileArgs{Date: recon.Yesterday(now)}, nil
}

// reconcile works a reconcile job; a bill not ready yet snoozes it until
// WeChat promises it (between 1 minute and 6 hours).
func (j *Jobs) reconcile(ctx context.Context, args reconcileArgs) error {
	_, err := j.runner.Reconcile(ctx, args.Date)
	var nr *recon.NotReadyError
	if errors.As(err, &nr) {
		wait := nr.RetryAt.Sub(j.runner.svc.Now())
		return rq.JobSnooze(min(max(wait, time.Minute), 6*time.Hour))
	}
	return err
}

// Stop stops the River client: it takes no more jobs and waits for the
// running ones to finish; when ctx ends first, it cancels them (their
// items are left for the next run) and waits up to 5 s more. Then it
// closes River's SQLite pool. Calling it again does nothing.
func (j *Jobs) Stop(ctx context.Context) error {
	j.stopOnce.Do(func() {
		j.stopErr = j.client.Stop(ctx)
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			j.stopErr = j.client.StopAndCancel(cctx)
			cancel()
		}
		if j.db != nil {
			j.stopErr = errors.Join(j.stopErr, j.db.Close())
		}
		j.runner.log.InfoContext(ctx, "background jobs stopped")
	})
	return j.stopErr
}

// Runner returns the instance's Runner, to run a job directly.
func (j *Jobs) Runner() *Runner { return j.runner }

// RunOnce runs one job of the kind now, in this goroutine, without the
// queue (see Runner.RunOnce).
func (j *Jobs) RunOnce(ctx context.Context, kind string) (*Result, error) {
	return j.runner.RunOnce(ctx, kind)
}

// Enqueue asks River to run a job of the kind soon, on whichever instance
// takes it. It reports false when an identical job is already queued or
// running (for reconcile: yesterday's already ran).
func (j *Jobs) Enqueue(ctx context.Context, kind string) (bool, error) {
	var args rq.JobArgs
	switch kind {
	case KindSettle:
		args = settleArgs{}
	case KindRefunds:
		args = refundsArgs{}
	case KindOutbox:
		args = outboxArgs{}
	case KindReconcile:
		if j.runner.cfg.Reconciler == nil {
			return false, errors.New("river: no reconciler configured")
		}
		args = reconcileArgs{Date: recon.Yesterday(j.runner.svc.Now())}
	default:
		return false, fmt.Errorf("river: no job kind %q", kind)
	}
	res, err := j.client.Insert(ctx, args, nil)
	if err != nil {
		return false, fmt.Errorf("river: inserting a %s job: %w", kind, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// daily is a River schedule: every day at a time into the day of loc.
type daily struct {
	at  time.Duration
	loc *time.Location
}

// Next returns the first time after t that is at into a day of loc.
func (s daily) Next(t time.Time) time.Time {
	y, m, d := t.In(s.loc).Date()
	for i := 0; ; i++ {
		n := time.Date(y, m, d+i, 0, 0, 0, 0, s.loc).Add(s.at)
		if n.After(t) {
			return n
		}
	}
}

// openSQLite opens River's pool on the store's file: one connection, WAL,
// synchronous=NORMAL, BEGIN IMMEDIATE and the busy timeout (the store's
// own settings, so both pools queue for the write lock instead of failing).
func openSQLite(ctx context.Context, path string, busy time.Duration) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("river: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("river: opening %s: %w", path, err)
	}
	return db, nil
}

// migrateSQLite applies River's migrations in one BEGIN IMMEDIATE
// transaction: a second instance starting at the same time waits for the
// write lock, then finds them applied. (MigrateTx is deprecated because
// some PostgreSQL migrations cannot share a transaction; SQLite's can, and
// it is the only way to hold the lock across the check and the change.)
func migrateSQLite(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	m, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("river: migrations: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("river: migrations: %w", err)
	}
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil { //nolint:staticcheck // see above
		tx.Rollback()
		return fmt.Errorf("river: migrating: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("river: migrating: %w", err)
	}
	return nil
}

// migrateLock is the PostgreSQL advisory lock key held while River's
// migrations run ("wxpayriv").
const migrateLock int64 = 0x7778706179726976

// migratePostgres applies River's migrations while holding an advisory
// lock, so that instances starting together migrate one after the other.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("river: migrations: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		conn.Release()
		return fmt.Errorf("river: migration lock: %w", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock); uerr != nil {
		// Never hand a connection that may still hold the lock back to
		// the pool.
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
	} else {
		conn.Release()
	}
	if err != nil {
		return fmt.Errorf("river: migrating: %w", err)
	}
	return nil
}
