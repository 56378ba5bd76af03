package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// maxBatch is the most write transactions the writer commits at once.
const maxBatch = 128

// errClosed is returned by the writes of a closed store.
var errClosed = errors.New("sqlite: store closed")

// writer runs every write transaction of the store, on the write pool's
// one connection, and commits those that arrive together as one SQLite
// transaction (group commit): each runs in a savepoint of its own, so a
// failure undoes only its writes, and each caller gets its answer only
// once the whole batch is committed. On SQLite a commit costs more than
// the statements of a typical transaction (every page it changed is
// written to the WAL), and the last pages of the tables and indexes are
// the same for consecutive orders, so a batch of n costs far less than n
// commits. The transactions of a batch run one after the other and see
// each other's writes: the order is serial, as with one transaction each.
type writer struct {
	db    *sql.DB
	stmts *pool
	reqs  chan *writeReq

	mu     sync.RWMutex // held to send to reqs; Close takes it to stop sends
	closed bool
	quit   chan struct{}
	done   chan struct{}
}

// Request states.
const (
	reqQueued    int32 = iota
	reqTaken           // the writer runs it: the caller waits for the answer
	reqAbandoned       // the caller's context ended before the writer took it
)

type writeReq struct {
	fn    func(tx txq) error
	state atomic.Int32
	res   chan error // buffered: the writer never waits for the caller
}

func newWriter(p *pool) *writer {
	w := &writer{db: p.db, stmts: p, reqs: make(chan *writeReq, maxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// do runs fn in a write transaction and returns its error, or the
// commit's. fn must have effects only through tx (it may run again, or be
// rolled back with the batch). When ctx ends before the writer takes fn,
// fn never runs and do returns ctx.Err(); once taken, do waits for the
// outcome, which the statements of fn see through ctx.
func (w *writer) do(ctx context.Context, fn func(tx txq) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{fn: fn, res: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	var err error
	select {
	case err = <-r.res:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		err = <-r.res
	}
	if p, ok := err.(*panicked); ok {
		panic(p)
	}
	return err
}

// close runs what was asked before it and stops the writer.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		var r *writeReq
		select {
		case r = <-w.reqs:
		case <-w.quit:
			// No send can start any more: run what is queued, then stop.
			for {
				select {
				case r := <-w.reqs:
					w.run([]*writeReq{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.run(batch)
		clear(batch)
		w.stmts.prepareMissed(context.Background())
	}
}

// run commits a batch, retrying a BEGIN that found the database busy
// (another pool held the write lock past the busy timeout) a few times.
func (w *writer) run(batch []*writeReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	var tx *sql.Tx
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if tx, err = w.db.BeginTx(context.Background(), nil); err == nil || !isBusy(err) {
			break
		}
	}
	if err != nil {
		reply(live, nil, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	q := txq{tx, w.stmts}
	errs := make([]error, len(live))
	if len(live) == 1 {
		// No savepoint needed: a failure rolls the transaction back.
		if errs[0] = call(q, live[0].fn); errs[0] != nil {
			tx.Rollback()
			reply(live, errs, nil)
			return
		}
	} else {
		for i, r := range live {
			if errs[i] = w.savepoint(q, r.fn); isTxBroken(errs[i]) {
				tx.Rollback()
				reply(live, nil, errs[i])
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		reply(live, nil, fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	reply(live, errs, nil)
}

// errTxBroken wraps a failure of the batch's own statements (savepoints):
// the transaction cannot go on.
type errTxBroken struct{ err error }

// Error describes the failure.
func (e errTxBroken) Error() string { return "sqlite: savepoint: " + e.err.Error() }

// Unwrap returns the failure of the statement.
func (e errTxBroken) Unwrap() error { return e.err }

func isTxBroken(err error) bool {
	var b errTxBroken
	return errors.As(err, &b)
}

// Statements of the batches.
const (
	sqlSavepoint        = "SAVEPOINT w"
	sqlRollbackTo       = "ROLLBACK TO w"
	sqlReleaseSavepoint = "RELEASE w"
)

// savepoint runs fn in a savepoint and undoes its writes when it fails.
func (w *writer) savepoint(q txq, fn func(tx txq) error) error {
	ctx := context.Background()
	if _, err := q.ExecContext(ctx, sqlSavepoint); err != nil {
		return errTxBroken{err}
	}
	ferr := call(q, fn)
	if ferr != nil {
		if _, err := q.ExecContext(ctx, sqlRollbackTo); err != nil {
			return errTxBroken{err}
		}
	}
	if _, err := q.ExecContext(ctx, sqlReleaseSavepoint); err != nil {
		return errTxBroken{err}
	}
	return ferr
}

// panicked carries a panic of a transaction's function to its caller.
type panicked struct {
	v     any
	stack []byte
}

// Error describes the panic.
func (p *panicked) Error() string {
	return fmt.Sprintf("sqlite: panic in a write transaction: %v\n%s", p.v, p.stack)
}

// call runs fn, turning a panic into an error that do panics with again
// in the caller's goroutine.
func call(q txq, fn func(tx txq) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{v, debug.Stack()}
		}
	}()
	return fn(q)
}

// reply answers each request: with its own error, or all with err.
func reply(live []*writeReq, errs []error, err error) {
	for i, r := range live {
		if err != nil {
			r.res <- err
		} else {
			r.res <- errs[i]
		}
	}
}
