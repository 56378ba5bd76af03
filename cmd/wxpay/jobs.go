package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/postgres"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/merchant/sqlite"
)

// openPostgres opens the PostgreSQL store (migrations run under an
// advisory lock, so several instances may start at once).
func openPostgres(ctx context.Context, dsn string) (merchant.Store, error) {
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redactDSN(dsn), err)
	}
	return s, nil
}

// startJobs runs the background jobs on River in the store's database.
func startJobs(ctx context.Context, a *app) (interface{ Stop(context.Context) error }, error) {
	var d river.Driver
	switch s := a.store.(type) {
	case *sqlite.Store:
		d = river.SQLite(s.Path())
	case *postgres.Store:
		d = river.Postgres(s.Pool())
	default:
		return nil, fmt.Errorf("jobs: no River driver for %T", a.store)
	}
	at, err := parseClock(a.cfg.Jobs.ReconcileAt)
	if err != nil {
		return nil, err
	}
	w := a.cfg.Webhook
	if w.URL != "" && w.Secret == "" {
		return nil, errors.New("config: webhook.url needs webhook.secret (or secret_file) to sign deliveries")
	}
	return river.Start(ctx, river.Config{
		Payments: a.svc, Reconciler: a.recon, Driver: d, ReconcileAt: at,
		Webhook: river.Webhook{URL: w.URL, Secret: w.Secret},
		Logger:  a.log, Observe: a.metrics.JobDone,
	})
}

// parseClock reads "HH:MM" as a duration into the day.
func parseClock(s string) (time.Duration, error) {
	if s == "" {
		return 10 * time.Hour, nil
	}
	h, m, ok := strings.Cut(s, ":")
	t, err := time.Parse("15:04", s)
	if !ok || h == "" || m == "" || err != nil {
		return 0, fmt.Errorf("config: jobs.reconcile_at %q is not HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}
