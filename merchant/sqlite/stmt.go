package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// pool is a *sql.DB whose statements are prepared once per connection and
// kept: SQLite spends more time parsing a statement than running most of
// ours. Queries are few and fixed (a filter adds a handful of variants), so
// the cache stays small.
type pool struct {
	db     *sql.DB
	mu     sync.RWMutex
	stmts  map[string]*sql.Stmt
	missed map[string]bool // run in a transaction before they were prepared
}

func newPool(db *sql.DB) *pool {
	return &pool{db: db, stmts: map[string]*sql.Stmt{}, missed: map[string]bool{}}
}

func (p *pool) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	p.mu.RLock()
	st := p.stmts[query]
	p.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	// Prepare without holding mu: preparing waits for a connection, and
	// the write pool's one connection may be in a transaction that needs
	// mu to look its statements up.
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.stmts[query]; old != nil {
		st.Close()
		return old, nil
	}
	p.stmts[query] = st
	return st, nil
}

func (p *pool) close() error {
	p.mu.Lock()
	for q, st := range p.stmts {
		st.Close()
		delete(p.stmts, q)
	}
	p.mu.Unlock()
	return p.db.Close()
}

// stmtCtx returns the context to run a statement with: ctx without its
// cancellation, or ctx's error when it is done already. With a context that
// can be cancelled, modernc.org/sqlite starts a goroutine and installs a
// progress handler for every statement, which more than doubles the cost
// of ours. They take microseconds; what may take long, waiting in the
// writer's queue, still ends with the caller's context.
func stmtCtx(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// ExecContext runs a prepared statement that returns no rows.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs a prepared query.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs a prepared query of one row.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if c, err := stmtCtx(ctx); err == nil {
		ctx = c
	}
	st, err := p.stmt(ctx, query)
	if err != nil {
		return p.db.QueryRowContext(ctx, query, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

// cached returns the statement of query if it was prepared, and otherwise
// notes it for prepareMissed.
func (p *pool) cached(query string) *sql.Stmt {
	p.mu.RLock()
	st := p.stmts[query]
	p.mu.RUnlock()
	if st == nil {
		p.mu.Lock()
		p.missed[query] = true
		p.mu.Unlock()
	}
	return st
}

// prepareMissed prepares the statements that transactions ran unprepared;
// the writer calls it between transactions, when the connection is free.
func (p *pool) prepareMissed(ctx context.Context) {
	p.mu.Lock()
	var qs []string
	for q := range p.missed {
		qs = append(qs, q)
	}
	clear(p.missed)
	p.mu.Unlock()
	for _, q := range qs {
		p.stmt(ctx, q) // on failure, the statement just stays unprepared
	}
}

// txq runs statements in a transaction, prepared ones when the pool has
// them. It never prepares one on the pool: the write pool's one
// connection is the transaction's, and preparing would wait for it
// forever. It notes the statement instead, for the writer to prepare
// after the transaction.
type txq struct {
	tx *sql.Tx
	p  *pool
}

// ExecContext runs a statement that returns no rows.
func (t txq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	if st := t.p.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query.
func (t txq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	if st := t.p.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query of one row.
func (t txq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if c, err := stmtCtx(ctx); err == nil {
		ctx = c
	}
	if st := t.p.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
