package pgtest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wxpay-go/wxpay/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNew(t *testing.T) {
	var names []string
	for range 2 {
		dsn := pgtest.New(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("a new database: %v", err)
		}
		conn.Close(t.Context())
		names = append(names, name)
	}
	if names[0] == names[1] {
		t.Fatalf("two calls gave one database %s", names[0])
	}
}

func TestDropped(t *testing.T) {
	var dsn string
	t.Run("use", func(t *testing.T) { dsn = pgtest.New(t) })
	if _, err := pgx.Connect(t.Context(), dsn); err == nil {
		t.Fatal("the database of a finished test still exists")
	}
}

// TestExternal: with WXPAY_TEST_POSTGRES set, New makes its databases on
// that server, whether the DSN is a URL or key=value.
func TestExternal(t *testing.T) {
	own := pgtest.New(t) // a server to point at: this binary's own
	cfg, err := pgx.ParseConfig(own)
	if err != nil {
		t.Fatal(err)
	}
	for _, admin := range []string{
		own + " dbname=postgres",
		"postgres://postgres@/postgres?sslmode=disable&host=" + url.QueryEscape(cfg.Host),
	} {
		t.Run("", func(t *testing.T) {
			t.Setenv(pgtest.EnvDSN, admin)
			dsn := pgtest.New(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatalf("%s: %v", dsn, err)
			}
			defer conn.Close(t.Context())
			var name string
			if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil || !strings.HasPrefix(name, "test_") {
				t.Fatalf("database %q, %v", name, err)
			}
		})
	}
}
