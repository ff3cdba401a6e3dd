package sdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

const (
	// namePrefix names every scratch dir and cgroup this package makes, so GC
	// (and a human) can recognise them: gatewayd-sdtest-<test pid>-<random>.
	namePrefix = "gatewayd-sdtest-"
	// scratchBase is fixed rather than $TMPDIR: socket paths under it must fit
	// in sun_path (108 bytes), and GC must find the dirs of every test run.
	scratchBase = "/tmp"
	// stdPath is the PATH of the manager, its services and Exec'd commands.
	stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// startTimeout bounds StartUser's wait for readiness.
	startTimeout = 30 * time.Second
	// userConf is $XDG_CONFIG_HOME/systemd/user.conf. Settings here survive
	// daemon-reload (command-line ones do not). Services inherit the manager's
	// stdout/stderr (the manager is not PID 1), which is the log file: there
	// is no journald. Stop timeouts are short so teardown stays fast; a unit
	// under test can set its own TimeoutStopSec=.
	userConf = `[Manager]
LogTarget=kmsg
LogColor=no
DefaultStandardOutput=inherit
DefaultStandardError=inherit
DefaultTimeoutStartSec=30s
DefaultTimeoutStopSec=10s
`
)

// state is what GC needs to know about a scratch dir, kept in Root/state.json.
type state struct {
	OwnerPID     int    `json:"owner_pid"`
	OwnerStart   uint64 `json:"owner_start"`
	ManagerPID   int    `json:"manager_pid,omitempty"`
	ManagerStart uint64 `json:"manager_start,omitempty"`
	Stopping     bool   `json:"stopping,omitempty"`
}

// skipError is an absent OS feature: the test skips with its reason.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

const skipHint = " (CI runs as root and installs systemd dbus-user-session util-linux)"

var gcOnce sync.Once

// StartUser starts a private systemd user manager for the test and registers
// its teardown with t.Cleanup. It skips the test, loudly, when not root or
// when systemd, dbus-user-session or util-linux is missing. The first call in
// a process also garbage-collects leftovers of killed test runs (see GC).
func StartUser(t testing.TB) *UserManager {
	t.Helper()
	return startT(t, lifecycle[*UserManager]{
		timeout: startTimeout,
		start:   startUser,
		skip:    "private systemd user manager",
		hint:    skipHint,
		fail:    "start systemd --user",
		ready: func(m *UserManager, d time.Duration) string {
			return fmt.Sprintf("systemd --user pid %d in %s ready in %v", m.PID, m.Root, d)
		},
		logName:  func(m *UserManager) string { return fmt.Sprintf("log of systemd --user pid %d", m.PID) },
		stopName: func(m *UserManager) string { return fmt.Sprintf("teardown of systemd --user pid %d", m.PID) },
	})
}

// stopper is a started manager: UserManager or System.
type stopper interface {
	Stop() error
	Log() string
}

// lifecycle is how startT starts and names a manager for a test.
type lifecycle[T stopper] struct {
	timeout          time.Duration                    // bounds start
	start            func(context.Context) (T, error) // a *skipError skips the test
	skip, hint, fail string                           // "SKIPPING, no " + skip + ": reason" + hint; fail + ": err"
	ready            func(T, time.Duration) string    // logged once started
	logName          func(T) string                   // heads the log shown when the test failed
	stopName         func(T) string                   // heads a teardown error
}

// startT is what StartUser and BootSystem share: the first call in a
// process garbage-collects leftovers of killed test runs (see GC); then it
// starts the manager bounded by l.timeout, skips t loudly when an OS
// feature is missing, fails it when the start fails, and registers the
// teardown (with the manager's log when t failed) with t.Cleanup.
func startT[T stopper](t testing.TB, l lifecycle[T]) T {
	t.Helper()
	gcOnce.Do(func() {
		if err := GC(tLogWriter{t}); err != nil {
			t.Logf("sdtest: garbage collection of earlier runs: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	began := time.Now()
	m, err := l.start(ctx)
	var skip *skipError
	if errors.As(err, &skip) {
		t.Skip("sdtest: SKIPPING, no " + l.skip + ": " + skip.reason + l.hint)
	}
	if err != nil {
		t.Fatalf("sdtest: %s: %v", l.fail, err)
	}
	t.Log("sdtest: " + l.ready(m, time.Since(began).Round(time.Millisecond)))
	t.Cleanup(func() {
		err := m.Stop()
		if t.Failed() {
			t.Logf("sdtest: %s:\n%s", l.logName(m), tail(m.Log(), 16000))
		}
		if err != nil {
			t.Errorf("sdtest: %s: %v", l.stopName(m), err)
		}
	})
	return m
}

// tLogWriter turns GC's log lines into test log lines.
type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// preflight finds the tools the recipe needs or says which package is missing.
func preflight() (systemd, nsenter string, err error) {
	if os.Geteuid() != 0 {
		return "", "", &skipError{"needs root to create cgroups and mount namespaces"}
	}
	systemd = firstExisting("/lib/systemd/systemd", "/usr/lib/systemd/systemd")
	if systemd == "" {
		return "", "", &skipError{"/lib/systemd/systemd not found: install systemd"}
	}
	if firstExisting("/usr/lib/systemd/user/dbus.socket", "/lib/systemd/user/dbus.socket") == "" {
		return "", "", &skipError{"user unit dbus.socket not found: install dbus-user-session"}
	}
	for _, tool := range []string{"unshare", "nsenter", "mount", "umount", "systemctl", "dbus-daemon"} {
		p, err := lookPath(tool)
		if err != nil {
			return "", "", &skipError{fmt.Sprintf("%s not found: install util-linux, systemd and dbus-user-session", tool)}
		}
		if tool == "nsenter" {
			nsenter = p
		}
	}
	return systemd, nsenter, nil
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// lookPath searches $PATH, then the standard directories (go test may run
// with a short PATH).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range filepath.SplitList(stdPath) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or %s", name, stdPath)
}

// startUser does the work of StartUser without a testing.TB.
func startUser(ctx context.Context) (m *UserManager, err error) {
	systemd, nsenter, err := preflight()
	if err != nil {
		return nil, err
	}
	hs, root, err := newScratch()
	if err != nil {
		return nil, err
	}
	m = &UserManager{
		Root:       root,
		Home:       filepath.Join(root, "home"),
		RuntimeDir: filepath.Join(root, "run"),
		ConfigHome: filepath.Join(root, "config"),
		StateHome:  filepath.Join(root, "state"),
		fixture: fixture{
			name:    filepath.Base(root),
			nsenter: nsenter,
			process: process{logPath: filepath.Join(root, "manager.log"), done: make(chan struct{})},
		},
	}
	m.BusAddress = "unix:path=" + filepath.Join(m.RuntimeDir, "bus")
	defer func() {
		if err != nil {
			if serr := m.Stop(); serr != nil {
				err = fmt.Errorf("%w (and teardown: %v)", err, serr)
			}
		}
	}()
	start, _ := procStart(os.Getpid())
	if err := m.writeState(state{OwnerPID: os.Getpid(), OwnerStart: start}); err != nil {
		return m, err
	}
	for _, d := range []string{m.Home, m.ConfigHome, m.StateHome, m.UnitDir(), m.dataHome(), m.cacheHome()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return m, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.Mkdir(m.RuntimeDir, 0o700); err != nil {
		return m, fmt.Errorf("create runtime dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(m.ConfigHome, "systemd", "user.conf"), []byte(userConf), 0o644); err != nil {
		return m, fmt.Errorf("write user.conf: %w", err)
	}
	// The scratch file that stands in for /dev/console: never a host device.
	if err := os.WriteFile(filepath.Join(root, "console"), nil, 0o600); err != nil {
		return m, fmt.Errorf("create console stand-in: %w", err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "kmsg"), 0o600); err != nil {
		return m, fmt.Errorf("create kmsg fifo: %w", err)
	}
	m.PID, err = m.launch(hs, m.name, m.Root, "create manager log", "start "+systemd+" --user", func() string {
		return m.outerScript(hs, systemd)
	})
	if err != nil {
		return m, err
	}
	if err := m.waitReady(ctx); err != nil {
		return m, err
	}
	return m, nil
}

func (m *UserManager) dataHome() string  { return filepath.Join(m.Root, "data") }
func (m *UserManager) cacheHome() string { return filepath.Join(m.Root, "cache") }

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// outerScript moves the shell into the new cgroups, then (same PID through
// every exec) unshares the mount and cgroup namespaces and runs innerScript.
func (m *UserManager) outerScript(hs []hierarchy, systemd string) string {
	return enterScript(m.cgroups, m.innerScript(hs, systemd))
}

// enterScript moves the shell into the cgroups, then (same PID through every
// exec) unshares the mount and cgroup namespaces and runs inner there.
func enterScript(cgroups []string, inner string) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	for _, d := range cgroups {
		fmt.Fprintf(&b, "echo $$ > %s\n", shq(filepath.Join(d, "cgroup.procs")))
	}
	fmt.Fprintf(&b, "exec unshare --mount --propagation private --cgroup -- /bin/sh -c %s\n", shq(inner))
	return b.String()
}

// remountCgroupsScript re-mounts every hierarchy in place; inside the new
// cgroup namespace the new mounts show only our subtree.
func remountCgroupsScript(hs []hierarchy) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "umount -l %s\n", shq(h.MountPoint))
		if h.FSType == "cgroup2" {
			fmt.Fprintf(&b, "mount -t cgroup2 cgroup2 %s\n", shq(h.MountPoint))
		} else {
			fmt.Fprintf(&b, "mount -t cgroup -o %s cgroup %s\n", shq(h.Options), shq(h.MountPoint))
		}
	}
	return b.String()
}

// innerScript runs in the new namespaces: it re-mounts the cgroup hierarchies
// (now rooted at our subtree), gives the manager its own /run, binds the
// scratch console and the kmsg FIFO, starts the drain and execs systemd.
func (m *UserManager) innerScript(hs []hierarchy, systemd string) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	b.WriteString(remountCgroupsScript(hs))
	b.WriteString("mount -t tmpfs -o mode=0755,size=16m sdtest-run /run\n")
	b.WriteString("mkdir -p /run/systemd/system\n")
	// Binding a scratch file, never a host device node, over the console.
	fmt.Fprintf(&b, "if [ -e /dev/console ]; then mount --bind %s /dev/console; fi\n", shq(filepath.Join(m.Root, "console")))
	fmt.Fprintf(&b, "if [ -e /dev/kmsg ]; then mount --bind %s /dev/kmsg; fi\n", shq(filepath.Join(m.Root, "kmsg")))
	// Opened read-write, the FIFO never reports EOF and never blocks the
	// manager's open: the drain lives until teardown kills it.
	fmt.Fprintf(&b, "exec 3<>%s\ncat <&3 >>%s 2>&1 &\nexec 3<&-\n", shq(filepath.Join(m.Root, "kmsg")), shq(m.logPath))
	b.WriteString("exec env -i")
	for _, kv := range m.managerEnv() {
		b.WriteString(" " + shq(kv))
	}
	fmt.Fprintf(&b, " %s --user </dev/null\n", shq(systemd))
	return b.String()
}

// managerEnv is the manager's whole environment (its services inherit it).
func (m *UserManager) managerEnv() []string {
	return []string{
		"HOME=" + m.Home,
		"USER=root",
		"LOGNAME=root",
		"SHELL=/bin/sh",
		"LANG=C.UTF-8",
		"PATH=" + stdPath,
		"XDG_CONFIG_HOME=" + m.ConfigHome,
		"XDG_STATE_HOME=" + m.StateHome,
		"XDG_DATA_HOME=" + m.dataHome(),
		"XDG_CACHE_HOME=" + m.cacheHome(),
		"XDG_RUNTIME_DIR=" + m.RuntimeDir,
		"DBUS_SESSION_BUS_ADDRESS=" + m.BusAddress,
	}
}

// Env is a clean environment for running clients (gatewayctl, systemctl
// --user, busctl --user) against this manager: HOME, USER, PATH, XDG_*,
// DBUS_SESSION_BUS_ADDRESS, and no pager or colours. Append to it freely; it
// is a new slice each call.
func (m *UserManager) Env() []string {
	return append(m.managerEnv(), "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0")
}

// UnitDir is $XDG_CONFIG_HOME/systemd/user, where user units are installed.
func (m *UserManager) UnitDir() string { return filepath.Join(m.ConfigHome, "systemd", "user") }

// Log returns the manager's log so far: its own messages (LogTarget=kmsg,
// drained from the FIFO) and the stdout/stderr of its services, since there
// is no journald. After Stop it returns the final log.
func (m *UserManager) Log() string { return m.readLog() }

// Exec returns a command that runs inside the manager's mount and cgroup
// namespaces (so it sees the same /run, with /run/systemd/system, and the
// same cgroup tree) with Env(). It enters them with nsenter, which execs
// the command in place: cmd.Process is the command itself. cmd.Dir is
// honoured (nsenter --wd=.). The command stays in the test's cgroup, not the
// manager's; stopping it is the caller's job.
func (m *UserManager) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	a := append([]string{"--target", strconv.Itoa(m.PID), "--mount", "--cgroup", "--wd=.", "--", name}, args...)
	cmd := exec.CommandContext(ctx, m.nsenter, a...)
	cmd.Env = m.Env()
	return cmd
}

// Systemctl runs `systemctl --user --no-pager ARGS...` inside the manager's
// namespaces and returns its combined output. A non-zero exit (is-active of
// an inactive unit, say) is returned as an error wrapping *exec.ExitError,
// with the output still returned.
func (m *UserManager) Systemctl(ctx context.Context, args ...string) (string, error) {
	cmd := m.Exec(ctx, "systemctl", append([]string{"--user", "--no-pager"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("systemctl --user %s in manager %d: %w: %s", strings.Join(args, " "), m.PID, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// DialBus connects to the manager's user bus (BusAddress) with EXTERNAL
// authentication and Hello, for raw calls go-systemd lacks (GetUnit,
// GetUnitFileState, PresetUnitFiles). ctx bounds the connection's life, as
// with godbus.WithContext. Close it when done.
func (m *UserManager) DialBus(ctx context.Context) (*godbus.Conn, error) {
	conn, err := godbus.Dial(m.BusAddress, godbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("dial user bus %s: %w (is dbus-user-session installed?)", m.BusAddress, err)
	}
	if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate on user bus %s: %w", m.BusAddress, err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hello on user bus %s: %w", m.BusAddress, err)
	}
	return conn, nil
}

// Dial returns a go-systemd D-Bus connection to the manager over its user
// bus, from outside its namespaces. ctx bounds the connection's life. Close
// it when done.
func (m *UserManager) Dial(ctx context.Context) (*sddbus.Conn, error) {
	c, err := sddbus.NewConnection(func() (*godbus.Conn, error) { return m.DialBus(ctx) })
	if err != nil {
		return nil, fmt.Errorf("connect go-systemd to manager %d: %w", m.PID, err)
	}
	return c, nil
}

// waitReady waits, by condition and bounded by ctx, for the private socket,
// then for org.freedesktop.systemd1 on the user bus, then for the manager to
// finish starting up (SystemState running or degraded).
func (m *UserManager) waitReady(ctx context.Context) error {
	poll := func(what string, cond func() bool) error {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-m.done:
				return fmt.Errorf("systemd --user exited (%v) while waiting for %s; its log:\n%s", m.waitErr, what, tail(m.Log(), 4000))
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w; manager log:\n%s", what, ctx.Err(), tail(m.Log(), 4000))
			case <-tick.C:
			}
		}
		return nil
	}
	private := filepath.Join(m.RuntimeDir, "systemd", "private")
	if err := poll("its private socket "+private, func() bool {
		fi, err := os.Stat(private)
		return err == nil && fi.Mode()&fs.ModeSocket != 0
	}); err != nil {
		return err
	}
	var conn *godbus.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	if err := poll("the user bus "+m.BusAddress, func() bool {
		c, err := m.DialBus(ctx)
		if err != nil {
			return false
		}
		conn = c
		return true
	}); err != nil {
		return err
	}
	call := func(method string, out any, args ...any) bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return conn.BusObject().CallWithContext(cctx, method, 0, args...).Store(out) == nil
	}
	if err := poll("org.freedesktop.systemd1 on the user bus", func() bool {
		var has bool
		return call("org.freedesktop.DBus.NameHasOwner", &has, "org.freedesktop.systemd1") && has
	}); err != nil {
		return err
	}
	sd := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	return poll("startup to finish (SystemState running or degraded)", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var v godbus.Variant
		err := sd.CallWithContext(cctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", "SystemState").Store(&v)
		if err != nil {
			return false
		}
		s, _ := v.Value().(string)
		return s == "running" || s == "degraded"
	})
}

// Stop tears the manager down: SIGTERM (it stops its units and exits),
// SIGKILL if it does not exit in time, then kills whatever is left in its
// cgroups, removes the cgroups deepest first in every hierarchy, and removes
// Root. It is idempotent; StartUser's cleanup calls it.
func (m *UserManager) Stop() error {
	return m.teardown(m.Root, m.PID, 20*time.Second,
		fmt.Sprintf("systemd --user pid %d ignored SIGTERM for 20s: killed it", m.PID),
		fmt.Sprintf("systemd --user pid %d survived SIGKILL for 5s", m.PID))
}

func (m *UserManager) writeState(st state) error { return writeState(m.Root, st) }

// writeState replaces root/state.json atomically (GC may read it any time).
func writeState(root string, st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode sdtest state: %w", err)
	}
	tmp := filepath.Join(root, ".state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write sdtest state in %s: %w", root, err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "state.json")); err != nil {
		return fmt.Errorf("write sdtest state in %s: %w", root, err)
	}
	return nil
}

func readState(root string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(root, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode %s/state.json: %w", root, err)
	}
	return st, nil
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
