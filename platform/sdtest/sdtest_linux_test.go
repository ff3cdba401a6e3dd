package sdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

// gcTestMu keeps the GC tests from collecting each other's victims (and so
// from stealing each other's GC report lines).
var gcTestMu sync.Mutex

// roleEnv makes the test binary act as a socket-activated service.
const roleEnv = "GATEWAYD_SDTEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "echo":
		os.Exit(runEcho())
	case "orphan":
		os.Exit(runOrphan())
	}
	os.Exit(m.Run())
}

// runEcho is a Type=notify service: it takes its listener from socket
// activation (fd 3), reports READY=1, and answers each connection's first line
// with "echo LINE" until SIGTERM.
func runEcho() int {
	lns, err := activation.Listeners()
	if err != nil || len(lns) != 1 || lns[0] == nil {
		fmt.Fprintf(os.Stderr, "sdtest-echo: want one socket-activated listener, got %d (%v)\n", len(lns), err)
		return 1
	}
	ln := lns[0]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); ln.Close() }()
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok {
		fmt.Fprintf(os.Stderr, "sdtest-echo: READY=1 not sent (NOTIFY_SOCKET=%q): %v\n", os.Getenv("NOTIFY_SOCKET"), err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "sdtest-echo: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(os.Stderr, "sdtest-echo: accept: %v\n", err)
			return 1
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo %s", line)
		fmt.Fprintf(os.Stderr, "sdtest-echo: served %q\n", strings.TrimSpace(line))
		c.Close()
	}
}

// runOrphan starts a manager, reports it on stdout and blocks on stdin: a
// test run that its parent then kills.
func runOrphan() int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	m, err := startUser(ctx)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	fmt.Printf("%s %d\n", m.name, m.PID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// devState is what a stray manager could change about the host's device nodes.
type devState struct {
	mode     os.FileMode
	uid, gid uint32
	rdev     uint64
}

func statDevs(t *testing.T) map[string]devState {
	t.Helper()
	out := map[string]devState{}
	for _, p := range []string{"/dev/console", "/dev/null", "/dev/kmsg"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = devState{fi.Mode(), st.Uid, st.Gid, st.Rdev}
	}
	return out
}

func startUnit(ctx context.Context, t *testing.T, c *sddbus.Conn, name string) {
	t.Helper()
	ch := make(chan string, 1)
	if _, err := c.StartUnitContext(ctx, name, "replace", ch); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			t.Fatalf("start %s: job result %q, want done", name, res)
		}
	case <-ctx.Done():
		t.Fatalf("start %s: %v", name, ctx.Err())
	}
}

func unitProp(ctx context.Context, t *testing.T, c *sddbus.Conn, unit, prop string) string {
	t.Helper()
	p, err := c.GetUnitPropertyContext(ctx, unit, prop)
	if err != nil {
		t.Fatalf("get %s of %s: %v", prop, unit, err)
	}
	s, _ := p.Value.Value().(string)
	return s
}

// TestSocketActivation drives the full socket-activation path through the
// real manager: units written to UnitDir, daemon-reload and start over D-Bus,
// a TCP connect that activates a Type=notify service, then a teardown that
// leaves nothing behind.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	before := statDevs(t)
	m := StartUser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	port := freePort(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]string{
		"sdtest-echo.socket": fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", port),
		"sdtest-echo.service": fmt.Sprintf("[Service]\nType=notify\nEnvironment=%s=echo\nExecStart=%s\n",
			roleEnv, exe),
	}
	for name, body := range units {
		if err := os.WriteFile(filepath.Join(m.UnitDir(), name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := m.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ReloadContext(ctx); err != nil {
		t.Fatalf("daemon-reload over D-Bus: %v", err)
	}
	startUnit(ctx, t, c, "sdtest-echo.socket")
	listen, err := c.GetUnitTypePropertyContext(ctx, "sdtest-echo.socket", "Socket", "Listen")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(listen.Value.String(), want) {
		t.Errorf("Listen = %s, want it to contain %s", listen.Value, want)
	}
	if s := unitProp(ctx, t, c, "sdtest-echo.service", "ActiveState"); s != "inactive" {
		t.Errorf("service ActiveState before any connection = %q, want inactive", s)
	}

	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || reply != "echo ping\n" {
		t.Fatalf("reply %q (%v), want %q", reply, err, "echo ping\n")
	}
	// READY=1 reaches the manager over its notify socket, independently of
	// our reply: wait for the state it produces.
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "service active", func() (bool, string) {
		s := unitProp(ctx, t, c, "sdtest-echo.service", "ActiveState")
		return s == "active", s
	})
	p, err := c.GetServicePropertyContext(ctx, "sdtest-echo.service", "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	mainPID, _ := p.Value.Value().(uint32)
	if mainPID == 0 {
		t.Fatalf("MainPID = %v, want > 0", p.Value)
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", mainPID))
	if err != nil {
		t.Fatal(err)
	}
	if want := m.name + "/app.slice/sdtest-echo.service"; !strings.Contains(string(cg), want) {
		t.Errorf("service pid %d cgroups:\n%s\nwant them inside %s", mainPID, cg, want)
	}

	out, err := m.Systemctl(ctx, "is-active", "sdtest-echo.service")
	if err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active = %q, %v; want active", out, err)
	}
	out, err = m.Systemctl(ctx, "is-active", "sdtest-missing.service")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || strings.TrimSpace(out) != "inactive" {
		t.Errorf("systemctl is-active of a missing unit = %q, %v; want inactive and a non-zero exit", out, err)
	}
	out, err = m.Systemctl(ctx, "is-system-running")
	if err != nil || strings.TrimSpace(out) != "running" {
		t.Errorf("systemctl is-system-running = %q, %v; want running", out, err)
	}
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "service output in the manager log", func() (bool, string) {
		return strings.Contains(m.Log(), `sdtest-echo: served "ping"`), tail(m.Log(), 300)
	})

	// Teardown leaves nothing behind.
	managerPID, managerStart := m.PID, mustStart(t, m.PID)
	svcStart := mustStart(t, int(mainPID))
	cgroups, root := m.cgroups, m.Root
	if err := m.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for pid, start := range map[int]uint64{managerPID: managerStart, int(mainPID): svcStart} {
		if s, ok := procStart(pid); ok && s == start {
			t.Errorf("process %d survived teardown", pid)
		}
	}
	for _, d := range cgroups {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind (%v)", d, err)
		}
	}
	hs, err := hostHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if left := findGroups(hs, m.name); len(left) > 0 {
		t.Errorf("cgroups named %s left behind: %v", m.name, left)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir %s left behind (%v)", root, err)
	}
	if !strings.Contains(m.Log(), "exit.target") {
		t.Errorf("log after Stop lacks the clean shutdown (exit.target):\n%s", tail(m.Log(), 2000))
	}
	after := statDevs(t)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("host %s changed: %+v -> %+v", p, b, after[p])
		}
	}
}

func mustStart(t *testing.T, pid int) uint64 {
	t.Helper()
	s, ok := procStart(pid)
	if !ok {
		t.Fatalf("process %d is not running", pid)
	}
	return s
}

// TestManagersIsolated runs two managers at once and checks that neither
// sees the other's units, /run, namespaces or cgroups, and that stopping one
// leaves the other running.
func TestManagersIsolated(t *testing.T) {
	t.Parallel()
	a, b := StartUser(t), StartUser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if a.PID == b.PID || a.BusAddress == b.BusAddress || a.Root == b.Root {
		t.Fatalf("managers share identity: %+v %+v", a, b)
	}
	for _, ns := range []string{"mnt", "cgroup"} {
		self, _ := os.Readlink("/proc/self/ns/" + ns)
		na, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a.PID, ns))
		nb, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b.PID, ns))
		if na == "" || na == nb || na == self || nb == self {
			t.Errorf("%s namespaces not private: self %s, a %s, b %s", ns, self, na, nb)
		}
	}
	for _, pid := range groupPIDs(a.cgroups) {
		for _, q := range groupPIDs(b.cgroups) {
			if pid == q {
				t.Errorf("pid %d is in both managers' cgroups", pid)
			}
		}
	}

	unit := "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
	if err := os.WriteFile(filepath.Join(a.UnitDir(), "sdtest-only-a.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := a.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := b.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for _, c := range []*sddbus.Conn{ca, cb} {
		if err := c.ReloadContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	startUnit(ctx, t, ca, "sdtest-only-a.service")
	if s := unitProp(ctx, t, ca, "sdtest-only-a.service", "ActiveState"); s != "active" {
		t.Errorf("a: ActiveState = %q, want active", s)
	}
	if s := unitProp(ctx, t, cb, "sdtest-only-a.service", "LoadState"); s != "not-found" {
		t.Errorf("b sees a's unit: LoadState = %q, want not-found", s)
	}

	// Each has its own /run; the host's is untouched.
	marker := "/run/sdtest-marker-" + a.name
	if out, err := a.Exec(ctx, "sh", "-c", "test -d /run/systemd/system && touch "+marker).CombinedOutput(); err != nil {
		t.Fatalf("exec in a: %v: %s", err, out)
	}
	if err := b.Exec(ctx, "test", "-e", marker).Run(); err == nil {
		t.Errorf("b sees a's %s", marker)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("host sees a's %s", marker)
	}
	// Inside, the console is a scratch file, kmsg a FIFO, and the manager
	// sees its own subtree as the cgroup root.
	if out, err := a.Exec(ctx, "sh", "-c", "test -f /dev/console && test -p /dev/kmsg && cat /proc/"+strconv.Itoa(a.PID)+"/cgroup").CombinedOutput(); err != nil || !strings.Contains(string(out), "0::/init.scope\n") {
		t.Errorf("inside a: console/kmsg not replaced or manager cgroup not /init.scope: %v: %s", err, out)
	}
	if l := a.Log(); !strings.Contains(l, fmt.Sprintf("systemd[%d]: Startup finished", a.PID)) {
		t.Errorf("a's log lacks the manager's kmsg lines:\n%s", tail(l, 2000))
	}
	// Exec honours cmd.Dir.
	dir := t.TempDir()
	cmd := a.Exec(ctx, "pwd")
	cmd.Dir = dir
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != dir {
		t.Errorf("pwd in a with Dir %s = %q, %v", dir, out, err)
	}
	// Exec'd commands get Env().
	if out, err := a.Exec(ctx, "sh", "-c", "echo $XDG_RUNTIME_DIR").Output(); err != nil || strings.TrimSpace(string(out)) != a.RuntimeDir {
		t.Errorf("XDG_RUNTIME_DIR in a = %q, %v; want %s", out, err, a.RuntimeDir)
	}

	if err := a.Stop(); err != nil {
		t.Fatalf("stop a: %v", err)
	}
	if out, err := b.Systemctl(ctx, "is-system-running"); err != nil || strings.TrimSpace(out) != "running" {
		t.Errorf("b after a stopped: is-system-running = %q, %v", out, err)
	}
	v, err := cb.GetManagerProperty("SystemState")
	if err != nil || v != `"running"` {
		t.Errorf("b SystemState over D-Bus = %s, %v", v, err)
	}
}

// TestGCAfterSIGKILL kills a manager the hard way, as a killed test run
// would leave it, and checks that GC removes its processes, cgroups and
// scratch dir while leaving a live manager alone.
func TestGCAfterSIGKILL(t *testing.T) {
	t.Parallel()
	live := StartUser(t) // skips when not root; also a bystander GC must spare
	gcTestMu.Lock()
	defer gcTestMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	victim, err := startUser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Stop() }) // a fallback only: GC should have done it all

	starts := map[int]uint64{}
	for _, pid := range groupPIDs(victim.cgroups) {
		if s, ok := procStart(pid); ok {
			starts[pid] = s
		}
	}
	if len(starts) < 2 {
		t.Fatalf("want the manager and its helpers in its cgroups, got %v", starts)
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.done:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGKILLed manager not reaped within 10s")
	}
	var buf bytes.Buffer
	if err := GC(&buf); err != nil {
		t.Fatalf("GC: %v\n%s", err, buf.String())
	}
	t.Logf("GC said:\n%s", buf.String())
	if !strings.Contains(buf.String(), "removed leftover "+victim.name+" (its manager "+strconv.Itoa(victim.PID)+" is gone)") {
		t.Errorf("GC output does not report %s", victim.name)
	}
	if strings.Contains(buf.String(), live.name) {
		t.Errorf("GC touched the live manager %s", live.name)
	}
	for pid, start := range starts {
		if s, ok := procStart(pid); ok && s == start {
			t.Errorf("process %d of the killed manager survived GC", pid)
		}
	}
	for _, d := range append(victim.cgroups, victim.Root) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind by GC (%v)", d, err)
		}
	}
	if out, err := live.Systemctl(ctx, "is-system-running"); err != nil || strings.TrimSpace(out) != "running" {
		t.Errorf("live manager after GC: %q, %v", out, err)
	}
	if _, err := os.Stat(live.Root); err != nil {
		t.Errorf("live manager's scratch dir: %v", err)
	}
}

// TestGCAfterKilledTestRun kills a test process that owns a manager (as a
// go test timeout would): the manager gets SIGTERM through its parent-death
// signal, and GC removes what is left because the owner is gone.
func TestGCAfterKilledTestRun(t *testing.T) {
	t.Parallel()
	_ = StartUser(t) // skips when not root
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gcTestMu.Lock()
	defer gcTestMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), roleEnv+"=orphan")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var name string
	var managerPID int
	if _, serr := fmt.Sscanf(line, "%s %d", &name, &managerPID); err != nil || serr != nil || !strings.HasPrefix(name, namePrefix) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("orphan-making test process said %q (%v)", line, err)
	}
	hs, err := hostHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	cgroups := findGroups(hs, name)[name]
	starts := map[int]uint64{}
	for _, pid := range groupPIDs(cgroups) {
		if s, ok := procStart(pid); ok {
			starts[pid] = s
		}
	}
	if len(cgroups) == 0 || starts[managerPID] == 0 {
		t.Fatalf("manager %d not found in cgroups %v (pids %v)", managerPID, cgroups, starts)
	}
	ownerPID := cmd.Process.Pid
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	testutil.WaitFor(t, 30*time.Second, 10*time.Millisecond, "manager to exit on its parent-death signal", func() (bool, string) {
		s, ok := procStart(managerPID)
		return !ok || s != starts[managerPID], "still running"
	})
	var buf bytes.Buffer
	if err := GC(&buf); err != nil {
		t.Fatalf("GC: %v\n%s", err, buf.String())
	}
	t.Logf("GC said:\n%s", buf.String())
	if want := fmt.Sprintf("removed leftover %s (its test process %d is gone)", name, ownerPID); !strings.Contains(buf.String(), want) {
		t.Errorf("GC output lacks %q", want)
	}
	for pid, start := range starts {
		if s, ok := procStart(pid); ok && s == start {
			t.Errorf("process %d of the orphaned manager survived GC", pid)
		}
	}
	for _, d := range append(cgroups, filepath.Join(scratchBase, name)) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind by GC (%v)", d, err)
		}
	}
}
