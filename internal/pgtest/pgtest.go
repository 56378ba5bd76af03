// Package pgtest gives tests a fresh PostgreSQL database each.
//
// With WXPAY_TEST_POSTGRES set to a DSN (postgres://user@host/db or
// key=value), New creates its databases on that server. Otherwise the
// first call to New in a test binary starts a throwaway server: initdb and
// pg_ctl (from PATH or /usr/lib/postgresql/*/bin) on a temporary
// directory, listening only on a unix socket in that directory, with
// fsync off. PostgreSQL refuses to run as root; as root both run as the
// postgres user (runuser), on a directory that user owns.
//
// A package that uses New calls Main from its TestMain, which stops the
// server and removes its directory once the tests are done:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Should the test binary die first (a timeout, a kill), a watchdog process
// started with the server does the same a second later.
//
// When PostgreSQL is not available, New skips the test, or fails it when
// the environment variable CI is "true".
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that names an existing server to use.
const EnvDSN = "WXPAY_TEST_POSTGRES"

// The server of this test binary, started by the first New. A test binary
// is one process with one set of tests: the state is per process by
// nature.
var (
	startOnce sync.Once
	srv       *server
	startErr  error
)

// New returns the DSN of a new, empty database for t, dropped when t ends
// (close what uses it in an earlier cleanup: t.Cleanup runs them last
// registered first).
func New(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		startOnce.Do(func() {
			start := time.Now()
			srv, startErr = startServer()
			if startErr == nil {
				t.Logf("pgtest: started PostgreSQL in %v (%s)", time.Since(start).Round(time.Millisecond), srv.dir)
			}
		})
		if startErr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("pgtest: PostgreSQL is required in CI: %v", startErr)
			}
			t.Skipf("pgtest: PostgreSQL not available (install it, or set %s): %v", EnvDSN, startErr)
		}
		admin = srv.dsn("postgres")
	}

	name := "test_" + randomHex(8)
	if err := execAdmin(admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := execAdmin(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	return dsn
}

// Main runs the tests and then stops the server New started, if any, and
// exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	os.Exit(code)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// execAdmin runs one statement on the server's maintenance database.
func execAdmin(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// withDatabase returns dsn with its database set to name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // a later key wins
}

// server is a throwaway PostgreSQL server.
type server struct {
	dir      string // socket directory; the data directory is dir/data
	pgCtl    string
	asUser   string // run the binaries as this user ("" for ourselves)
	watchdog *exec.Cmd
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", s.dir, db)
}

func startServer() (*server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	// A unix socket path is limited to about 100 bytes: keep the directory
	// short whatever TMPDIR is.
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		if err := s.runAsPostgres(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir)
	if out, err := s.command(s.pgCtl, "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v: %s%s", err, lastLines(out), lastLines(log))
	}
	s.startWatchdog()
	return s, nil
}

// runAsPostgres arranges for the binaries to run as the postgres user,
// who must own the directory.
func (s *server) runAsPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root and no postgres user: %w", err)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return fmt.Errorf("running as root and no runuser: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(s.dir, uid, gid); err != nil {
		return err
	}
	s.asUser = "postgres"
	return nil
}

// command runs name as the server's user, in the server's directory.
func (s *server) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = s.dir
	return cmd
}

// startWatchdog starts a process that stops the server and removes its
// directory once this process is gone, should Main not get to do it. It
// runs in a process group of its own, so that an interrupt of the tests
// does not end it first.
func (s *server) startWatchdog() {
	stop := s.command(s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "stop")
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), shellJoin(stop.Args), shellQuote(s.dir))
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Start() == nil {
		s.watchdog = cmd
	}
}

// stop stops the server at once, removes its directory and ends the
// watchdog.
func (s *server) stop() error {
	out, err := s.command(s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out))
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	if s.watchdog != nil {
		s.watchdog.Process.Kill()
		s.watchdog.Wait()
	}
	return err
}

// findBinaries returns the directory of initdb and pg_ctl: PATH first, then
// the newest /usr/lib/postgresql/*/bin.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

// version is the major version in /usr/lib/postgresql/VERSION/bin.
func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
