package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

// catalog is what the load's shop sells (prices in fen). Users buy one
// to three of one product.
var catalog = []struct {
	SKU, Name string
	Price     int64
}{
	{"coffee", "Latte", 2800},
	{"tea", "Matcha", 2200},
	{"cake", "Cheesecake", 3500},
	{"cent", "1-fen test", 1},
}

// prepareDir makes the work directory, the database name and the
// instances' config file.
func (e *engine) prepareDir() error {
	dir := e.cfg.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "wxpay-load-")
		if err != nil {
			return err
		}
		dir, e.rmWorkDir = d, !e.cfg.KeepWorkDir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	e.workDir = dir
	e.db = e.cfg.DB
	if e.db == "" {
		e.db = "sqlite:" + filepath.Join(dir, "load.db")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# wxpay load %s: the instances' configuration (secrets come from WXPAY_… variables)\n", e.runID)
	fmt.Fprintf(&b, "log_level = %q\n\n[shop]\nname = \"load-\"\n", e.cfg.LogLevel)
	for _, p := range catalog {
		fmt.Fprintf(&b, "\n[[shop.products]]\nsku = %q\nname = %q\nprice = %d\n", p.SKU, p.Name, p.Price)
	}
	e.configFile = filepath.Join(dir, "wxpay-load.toml")
	return os.WriteFile(e.configFile, []byte(b.String()), 0o600)
}

// env returns the WXPAY_… settings of an instance listening on addr. Its
// public URL (and so its notify URLs) is its own address when it is the
// only instance, else the balancer's.
func (e *engine) env(addr string) []string {
	public := "http://" + addr
	if e.lb != nil {
		public = e.lb.url
	}
	return append([]string{
		"WXPAY_ADDR=" + addr,
		"WXPAY_PUBLIC_URL=" + public,
		"WXPAY_DB=" + e.db,
		"WXPAY_ADMIN_TOKEN=" + e.adminToken,
		"WXPAY_WECHAT_BASE_URL=" + e.sim.url,
		"WXPAY_WECHAT_LOGIN_BASE_URL=" + e.sim.url,
		"WXPAY_WECHAT_APP_ID=" + wxsim.DefaultAppID,
		"WXPAY_WECHAT_MCH_ID=" + wxsim.DefaultMchID,
		"WXPAY_WECHAT_API_KEY=" + wxsim.DefaultAPIKey,
		"WXPAY_WECHAT_APP_SECRET=" + wxsim.DefaultAppSecret,
	}, e.v3Env...)
}

// freePort returns a loopback port nobody listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (e *engine) startInstances(ctx context.Context) error {
	e.logf("starting %d service instance(s) on %s", e.cfg.Instances, redactDSN(e.db))
	if e.cfg.Instances > 1 {
		lb, err := startBalancer(e)
		if err != nil {
			return err
		}
		e.lb = lb
		e.closers = append(e.closers, lb.close)
		e.logf("the instances' public URL (notifies) is a balancer at %s", lb.url)
	}
	for i := range e.cfg.Instances {
		addr, err := freePort()
		if err != nil {
			return err
		}
		in := &instance{e: e, idx: i, addr: addr, url: "http://" + addr}
		if e.cfg.ProfileDir != "" {
			if in.pprofAddr, err = freePort(); err != nil {
				return err
			}
		}
		e.insts = append(e.insts, in)
		e.closers = append(e.closers, in.stop)
		// The first one alone, so that the migrations run once before the
		// others come up (they take an advisory lock anyway).
		if err := in.start(ctx); err != nil {
			return err
		}
		if i == 0 {
			if err := in.waitReady(ctx, 60*time.Second); err != nil {
				return err
			}
		}
	}
	for _, in := range e.insts {
		if err := in.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// instance is one service process, restarted on the same port.
type instance struct {
	e    *engine
	idx  int
	addr string
	url  string
	// pprofAddr is where the instance serves net/http/pprof (ProfileDir).
	pprofAddr string

	mu      sync.Mutex
	proc    *os.Process
	done    chan struct{} // closed when the current process has exited
	killing bool
	starts  int
	kills   int
	crashes int
	peakKB  int64 // the largest VmHWM of any of its processes
	logs    []string
	lastErr error         // how the last process ended
	cpuDone time.Duration // CPU time of its ended processes (as last sampled)
	cpuCur  time.Duration // CPU time of the current process, last sample
}

func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// start runs a new process of the instance (the previous one must have
// exited).
func (in *instance) start(ctx context.Context) error {
	e := in.e
	in.mu.Lock()
	n := in.starts + 1
	in.mu.Unlock()
	logPath := filepath.Join(e.workDir, fmt.Sprintf("instance-%d.%d.log", in.idx, n))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := e.cfg.Spawn(Instance{Index: in.idx, Addr: in.addr, ConfigFile: e.configFile, Env: e.env(in.addr)})
	cmd.Env = append(childEnv(cmd.Env), e.env(in.addr)...)
	if in.pprofAddr != "" {
		cmd.Env = append(cmd.Env, "WXPAY_LOAD_PPROF="+in.pprofAddr)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Should the harness die, its instances die with it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting instance %d: %w", in.idx, err)
	}
	done := make(chan struct{})
	in.mu.Lock()
	in.proc, in.done, in.killing = cmd.Process, done, false
	in.cpuDone += in.cpuCur
	in.cpuCur = 0
	in.starts = n
	in.logs = append(in.logs, logPath)
	in.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		in.mu.Lock()
		killed := in.killing
		if !killed && err != nil {
			in.crashes++
		}
		in.lastErr = err
		in.mu.Unlock()
		if !killed && err != nil && ctx.Err() == nil {
			e.stats.errorf("instance", "instance %d exited by itself: %v", in.idx, err)
		}
		close(done)
	}()
	return nil
}

// waitReady polls /readyz until it answers 200, the process exits or the
// time is up.
func (in *instance) waitReady(ctx context.Context, limit time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		in.mu.Lock()
		done := in.done
		in.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("instance %d exited while starting; its log:\n%s", in.idx, in.tail(20))
		default:
		}
		resp, err := hc.Get(in.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %d not ready after %s; its log:\n%s", in.idx, limit, in.tail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process to go.
func (in *instance) kill() {
	in.mu.Lock()
	p, done := in.proc, in.done
	if p == nil {
		in.mu.Unlock()
		return
	}
	in.killing = true
	in.kills++
	in.mu.Unlock()
	_ = p.Signal(syscall.SIGKILL)
	<-done
}

// stop asks the process to end (SIGTERM), and kills it after 15 s.
func (in *instance) stop() {
	in.mu.Lock()
	p, done := in.proc, in.done
	in.killing = true
	in.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.Signal(syscall.SIGKILL)
		<-done
		in.e.note(fmt.Sprintf("instance %d did not stop within 15 s of SIGTERM and was killed", in.idx))
	}
}

// stopError returns how the last process ended when it did not exit 0
// (nil for a process that was still running or ended well).
func (in *instance) stopError() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastErr
}

// tail returns the last lines of the current log.
func (in *instance) tail(n int) string {
	in.mu.Lock()
	var path string
	if len(in.logs) > 0 {
		path = in.logs[len(in.logs)-1]
	}
	in.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// sampleRSS reads the peak resident set (VmHWM) of the current process.
func (in *instance) sampleRSS() {
	in.mu.Lock()
	p := in.proc
	in.mu.Unlock()
	if p == nil {
		return
	}
	kb, err := vmHWM(p.Pid)
	cpu, cerr := procCPU(p.Pid)
	in.mu.Lock()
	if in.proc == p {
		if err == nil {
			in.peakKB = max(in.peakKB, kb)
		}
		if cerr == nil {
			in.cpuCur = max(in.cpuCur, cpu)
		}
	}
	in.mu.Unlock()
}

// cpu returns the CPU time of all its processes so far.
func (in *instance) cpu() time.Duration {
	in.sampleRSS()
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cpuDone + in.cpuCur
}

// procCPU returns the user and system CPU time of a process (Linux,
// /proc/PID/stat in clock ticks of 1/100 s).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("no comm in stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad stat")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// selfCPU returns this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuNow returns the instances' CPU time and this process's.
func (e *engine) cpuNow() (service, load time.Duration) {
	for _, in := range e.insts {
		service += in.cpu()
	}
	return service, selfCPU()
}

// vmHWM returns the VmHWM of a process in KiB (Linux).
func vmHWM(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}

// childEnv is this process's environment without any WXPAY_ setting (the
// run's own come after), plus the extra variables of the spawned command.
func childEnv(extra []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXPAY_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// readLogs returns the instances' logs, every process of each.
func (e *engine) readLogs() []string {
	var out []string
	for _, in := range e.insts {
		in.mu.Lock()
		paths := append([]string(nil), in.logs...)
		in.mu.Unlock()
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				out = append(out, string(b))
			}
		}
	}
	return out
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				return dsn[:i+3] + user + ":REDACTED" + rest[at:]
			}
		}
	}
	return dsn
}

// machineBusy returns the time all CPUs of the machine spent on anything
// but idling or waiting for I/O, from /proc/stat (0 elsewhere).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
