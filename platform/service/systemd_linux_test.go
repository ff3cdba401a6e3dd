//go:build linux

package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/platform/sdtest"
	"github.com/gatewayd/gatewayd/units"
)

const testVersion = "1.2.3-test"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gatewaydBin builds the real gatewayd once per test process.
func gatewaydBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gatewayd-service-test-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "gatewayd"), "github.com/gatewayd/gatewayd/cmd/gatewayd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/gatewayd: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "gatewayd")
}

type fixture struct {
	um        *sdtest.UserManager
	mgr       Manager
	tg        Target
	otherDir  string
	lingerDir string
	// stateDir is GATEWAY_STATE_DIR of the gatewayd the manager starts:
	// its token, state store and logs stay in the test's temp dir.
	stateDir string
}

const testUser = "gwtest"

// freePort returns a port free on both 127.0.0.1 and [::1].
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			l6.Close()
			return port
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and [::1] after 20 tries")
	return 0
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root to run a private systemd user manager (CI runs as root and installs systemd dbus-user-session)")
	}
	bin := gatewaydBin(t)
	um := sdtest.StartUser(t)
	f := &fixture{um: um, otherDir: t.TempDir(), lingerDir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.lingerDir, testUser), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	mgr, err := NewSystemdWithOptions(ctx, SystemdOptions{
		Scope:          ScopeUser,
		BusAddress:     um.BusAddress,
		OtherScopeDirs: []string{f.otherDir},
		LingerDir:      f.lingerDir,
		User:           testUser,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mgr = mgr
	// gatewayd runs as root under this user manager, so without these it
	// would pick system-scope paths (config.DefaultScope) and write into the
	// host's /etc, /var/lib and /var/log. The manager's environment reaches
	// every service it starts, and survives daemon-reload.
	f.stateDir = filepath.Join(t.TempDir(), "gwstate")
	configPath := filepath.Join(t.TempDir(), "config.json")
	f.systemctl(t, "set-environment", "GATEWAY_STATE_DIR="+f.stateDir, "GATEWAY_CONFIG_PATH="+configPath)
	f.tg = Target{
		Scope:      ScopeUser,
		Port:       freePort(t),
		ExecPath:   bin,
		Version:    testVersion,
		ConfigPath: configPath,
		LogFile:    filepath.Join(f.stateDir, "logs", "gatewayd.jsonl"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", tailStr(um.Log(), 6000))
		}
	})
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) unitPath(name string) string { return filepath.Join(f.um.UnitDir(), name) }

func (f *fixture) install(t *testing.T, o InstallOptions) *InstallResult {
	t.Helper()
	res, err := f.mgr.Install(testCtx(t), f.tg, o)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	return res
}

func (f *fixture) status(t *testing.T) *Runtime {
	t.Helper()
	rt, err := f.mgr.Status(testCtx(t), f.tg)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return rt
}

func (f *fixture) doctor(t *testing.T, o DoctorOptions) *Report {
	t.Helper()
	rep, err := f.mgr.Doctor(testCtx(t), f.tg, o)
	if err != nil {
		t.Fatalf("Doctor: %v\n%s", err, dump(rep))
	}
	return rep
}

func (f *fixture) systemctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := f.um.Systemctl(testCtx(t), args...)
	if err != nil {
		t.Fatalf("systemctl --user %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// activate connects to the socket and waits for gatewayd's /readyz.
func (f *fixture) activate(t *testing.T) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", f.tg.Port))
	if err != nil {
		t.Fatalf("GET /readyz through the socket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz: %s", resp.Status)
	}
}

// waitStatus polls Status until cond holds (bounded).
func (f *fixture) waitStatus(t *testing.T, what string, cond func(*Runtime) bool) *Runtime {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rt := f.status(t)
		if cond(rt) {
			return rt
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last status: %+v", what, rt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// assertIsolated checks that the gatewayd with pid got the fixture's paths
// and keeps its token and log in the test's temp dir, not in the host's
// /var/lib/gatewayd and /var/log/gatewayd.
func (f *fixture) assertIsolated(t *testing.T, pid int) {
	t.Helper()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatalf("read environment of gatewayd pid %d: %v", pid, err)
	}
	for _, kv := range []string{"GATEWAY_STATE_DIR=" + f.stateDir, "GATEWAY_CONFIG_PATH=" + f.tg.ConfigPath} {
		if !slices.Contains(strings.Split(string(env), "\x00"), kv) {
			t.Errorf("gatewayd pid %d lacks %s in its environment: it would use the host's system paths", pid, kv)
		}
	}
	for _, p := range []string{filepath.Join(f.stateDir, "gateway.token"), f.tg.LogFile} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("gatewayd pid %d did not write %s: %v", pid, p, err)
		}
	}
}

// enableLinks finds symlinks to unit names anywhere under dir.
func enableLinks(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			for _, n := range names {
				if filepath.Base(p) == n {
					out = append(out, p)
				}
			}
		}
		return nil
	})
	return out
}

// TestInstallActivateStatusDoctorUninstall is acceptance test (1).
func TestInstallActivateStatusDoctorUninstall(t *testing.T) {
	f := newFixture(t)
	res := f.install(t, InstallOptions{})
	if res.AlreadyInstalled || len(res.Files) != 2 || res.Files[0].Action != ActionCreate {
		t.Fatalf("first install: %+v", res)
	}
	if res.Linger == nil || !*res.Linger {
		t.Errorf("linger: want reported on, got %v", res.Linger)
	}
	for _, n := range []string{"gatewayd.socket", "gatewayd.service"} {
		if _, err := os.Stat(f.unitPath(n)); err != nil {
			t.Fatalf("unit not written: %v", err)
		}
	}
	rt := f.status(t)
	if !rt.SocketListening || rt.UnitFileState != "enabled" || rt.MainPID != 0 {
		t.Fatalf("after install want a listening, enabled socket and no process yet: %+v", rt)
	}
	if !sameAddrs(rt.SocketListen, units.DefaultListenAddrs(f.tg.Port)) {
		t.Fatalf("SocketListen = %v", rt.SocketListen)
	}

	f.activate(t)
	rt = f.waitStatus(t, "active with STATUS=", func(rt *Runtime) bool {
		return rt.ActiveState == "active" && rt.MainPID > 0 && rt.StatusText != ""
	})
	t.Logf("status: pid %d, %q, watchdog %dus", rt.MainPID, rt.StatusText, rt.WatchdogUSec)
	if rt.WatchdogUSec == 0 || rt.Environment[units.EnvVersion] != testVersion || rt.FragmentPath != f.unitPath("gatewayd.service") {
		t.Fatalf("status: %+v", rt)
	}
	pid := rt.MainPID
	f.assertIsolated(t, pid)

	rep := f.doctor(t, DoctorOptions{})
	assertClean(t, rep)
	if len(rep.Checks) != len(f.mgr.Checks()) {
		t.Fatalf("ran %d checks, Checks() lists %d", len(rep.Checks), len(f.mgr.Checks()))
	}

	if err := f.mgr.Uninstall(testCtx(t), f.tg); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	for _, n := range []string{"gatewayd.socket", "gatewayd.service"} {
		if _, err := os.Lstat(f.unitPath(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after uninstall (%v)", n, err)
		}
	}
	if links := enableLinks(t, f.um.ConfigHome, "gatewayd.socket", "gatewayd.service"); len(links) > 0 {
		t.Errorf("enable symlinks left behind: %v", links)
	}
	if !processGone(pid) {
		t.Errorf("gatewayd pid %d still runs after uninstall", pid)
	}
	rt = f.status(t)
	if rt.LoadState != "not-found" || rt.MainPID != 0 || rt.SocketListening {
		t.Errorf("after uninstall: %+v", rt)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.tg.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts after uninstall", f.tg.Port)
	}
}

// TestIdempotentInstallAndScopes is acceptance test (3).
func TestIdempotentInstallAndScopes(t *testing.T) {
	f := newFixture(t)
	dry := f.install(t, InstallOptions{DryRun: true})
	if !dry.DryRun || dry.Files[0].Action != ActionCreate || len(dry.Files[0].Data) == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := os.Stat(f.unitPath("gatewayd.socket")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run wrote %s", f.unitPath("gatewayd.socket"))
	}

	f.install(t, InstallOptions{})
	f.activate(t)
	before := f.waitStatus(t, "active", func(rt *Runtime) bool { return rt.ActiveState == "active" && rt.MainPID > 0 })
	fi1, _ := os.Stat(f.unitPath("gatewayd.service"))

	again := f.install(t, InstallOptions{})
	if !again.AlreadyInstalled || again.Files[0].Action != ActionUnchanged || again.Files[1].Action != ActionUnchanged {
		t.Fatalf("second install is not a no-op: %+v", again)
	}
	fi2, _ := os.Stat(f.unitPath("gatewayd.service"))
	if !os.SameFile(fi1, fi2) || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Fatalf("second install rewrote the service file")
	}
	if after := f.status(t); after.MainPID != before.MainPID || after.NRestarts != before.NRestarts {
		t.Fatalf("second install restarted the service: pid %d→%d", before.MainPID, after.MainPID)
	}

	forced := f.install(t, InstallOptions{Force: true})
	if forced.AlreadyInstalled || forced.Files[1].Action != ActionRewrite {
		t.Fatalf("--force did not rewrite: %+v", forced)
	}
	fi3, _ := os.Stat(f.unitPath("gatewayd.service"))
	if os.SameFile(fi1, fi3) {
		t.Fatalf("--force did not replace the file")
	}
	assertClean(t, f.doctor(t, DoctorOptions{}))

	// A hand-edited unit is not overwritten without --force.
	editUnit(t, f.unitPath("gatewayd.service"), "RestartSec=2s", "RestartSec=7s")
	if _, err := f.mgr.Install(testCtx(t), f.tg, InstallOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install over an edited unit: err = %v, want a refusal naming --force", err)
	}
	f.install(t, InstallOptions{Force: true})

	// Another profile's socket on the same port, in the other scope.
	clash := filepath.Join(f.otherDir, "gatewayd-work.socket")
	if err := os.WriteFile(clash, []byte(fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", f.tg.Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := assertCheck(t, f.doctor(t, DoctorOptions{Only: []string{"profiles-share-port"}}), "profiles-share-port", SeverityError)
	if !strings.Contains(c.Message, clash) {
		t.Fatalf("profiles-share-port: %q", c.Message)
	}
	os.Remove(clash)

	// The port held by a process that is not our socket.
	if err := f.mgr.Stop(testCtx(t), f.tg); err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", f.tg.Port))
	if err != nil {
		t.Fatal(err)
	}
	c = assertCheck(t, f.doctor(t, DoctorOptions{Only: []string{"port-taken"}}), "port-taken", SeverityError)
	if !strings.Contains(c.Message, "another process") || !strings.HasPrefix(c.Fix, manualPrefix) {
		t.Fatalf("port-taken: %+v", c)
	}
	squatter.Close()
	if err := f.mgr.Start(testCtx(t), f.tg); err != nil {
		t.Fatal(err)
	}
	assertClean(t, f.doctor(t, DoctorOptions{}))

	// The same profile in the other scope is refused, naming the path.
	if err := f.mgr.Uninstall(testCtx(t), f.tg); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(f.otherDir, "gatewayd.socket")
	if err := os.WriteFile(fake, []byte("[Socket]\nListenStream=127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = f.mgr.Install(testCtx(t), f.tg, InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), fake) || !strings.Contains(err.Error(), "uninstall") {
		t.Fatalf("install with the unit in the other scope: err = %v, want a refusal naming %s", err, fake)
	}
	if _, err := os.Stat(f.unitPath("gatewayd.socket")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused install still wrote a unit")
	}
}

func editUnit(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeDropin(t *testing.T, f *fixture, unit, content string) string {
	t.Helper()
	p := filepath.Join(f.um.UnitDir(), unit+".d", "override.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDoctorDrift is acceptance test (2): each drift an operator can cause
// is named with the right check and severity, and --fix repairs what is
// safe to repair.
func TestDoctorDrift(t *testing.T) {
	f := newFixture(t)
	f.install(t, InstallOptions{})
	f.activate(t)
	f.waitStatus(t, "active", func(rt *Runtime) bool { return rt.ActiveState == "active" })
	assertClean(t, f.doctor(t, DoctorOptions{}))

	fixAndVerify := func(t *testing.T, fixed ...string) {
		t.Helper()
		rep := f.doctor(t, DoctorOptions{Fix: true})
		for _, name := range fixed {
			if c, _ := rep.Result(name); !c.Fixed {
				t.Errorf("%s not marked fixed\n%s", name, dump(rep))
			}
		}
		if rep.Remaining != 0 || rep.Fixed < len(fixed) {
			t.Fatalf("after --fix: fixed=%d remaining=%d\n%s", rep.Fixed, rep.Remaining, dump(rep))
		}
		assertClean(t, f.doctor(t, DoctorOptions{}))
		if rt := f.status(t); rt.NeedDaemonReload {
			t.Fatalf("NeedDaemonReload after --fix")
		}
		f.activate(t)
	}
	removeAndReload := func(t *testing.T, p string) {
		t.Helper()
		if err := os.RemoveAll(filepath.Dir(p)); err != nil {
			t.Fatal(err)
		}
		f.systemctl(t, "daemon-reload")
	}
	// dropinFix adds a drop-in to unit, reloads, runs doctor --fix and
	// checks that --fix left the drop-in alone (doctor never edits one).
	dropinFix := func(t *testing.T, unit, content string) (string, *Report) {
		t.Helper()
		p := writeDropin(t, f, unit, content)
		f.systemctl(t, "daemon-reload")
		rep := f.doctor(t, DoctorOptions{Fix: true})
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("--fix touched the drop-in: %v", err)
		}
		return p, rep
	}

	t.Run("hand-edited unit", func(t *testing.T) {
		editUnit(t, f.unitPath("gatewayd.service"), "RestartSec=2s", "RestartSec=9s")
		rep := f.doctor(t, DoctorOptions{})
		c := assertCheck(t, rep, "unit-drift", SeverityWarning)
		if len(c.Findings) != 1 || c.Findings[0].Kind != units.KindChanged || c.Findings[0].Key != "RestartSec" {
			t.Fatalf("findings: %v", c.Findings)
		}
		assertCheck(t, rep, "daemon-reload-needed", SeverityWarning)
		dry := f.doctor(t, DoctorOptions{Fix: true, DryRun: true})
		if c, _ := dry.Result("unit-drift"); c.Fixed || !strings.HasPrefix(c.Fix, "would ") {
			t.Fatalf("dry-run fix: %+v", c)
		}
		if data, _ := os.ReadFile(f.unitPath("gatewayd.service")); !strings.Contains(string(data), "RestartSec=9s") {
			t.Fatal("dry-run --fix rewrote the unit")
		}
		fixAndVerify(t, "unit-drift", "daemon-reload-needed")
	})

	t.Run("drop-in extends", func(t *testing.T) {
		p, rep := dropinFix(t, "gatewayd.service", "[Service]\nNice=5\n")
		c := assertCheck(t, rep, "unit-dropins", SeverityInfo)
		if !strings.Contains(c.Message, p) || c.Findings[0].Kind != units.KindExtended {
			t.Fatalf("unit-dropins: %+v", c)
		}
		removeAndReload(t, p)
	})

	t.Run("drop-in overrides", func(t *testing.T) {
		p, rep := dropinFix(t, "gatewayd.service", "[Service]\nRestartSec=5s\n")
		c := assertCheck(t, rep, "unit-dropins", SeverityWarning)
		if c.Fixed || !strings.HasPrefix(c.Fix, manualPrefix) {
			t.Fatalf("drop-in must be a manual fix: %+v", c)
		}
		if rt := f.status(t); !strings.Contains(strings.Join(rt.DropInPaths, " "), p) {
			t.Fatalf("DropInPaths %v lacks %s", rt.DropInPaths, p)
		}
		removeAndReload(t, p)
		assertClean(t, f.doctor(t, DoctorOptions{}))
	})

	t.Run("ListenStream drop-in without reset", func(t *testing.T) {
		extra := freePort(t)
		p := writeDropin(t, f, "gatewayd.socket", fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", extra))
		f.systemctl(t, "daemon-reload")
		f.systemctl(t, "stop", "gatewayd.service")
		f.systemctl(t, "restart", "gatewayd.socket")
		rep := f.doctor(t, DoctorOptions{Fix: true})
		c := assertCheck(t, rep, "unit-dropins", SeverityError)
		if !strings.Contains(c.Fix, "ListenStream=") || !strings.HasPrefix(c.Fix, manualPrefix) {
			t.Fatalf("unit-dropins fix: %q", c.Fix)
		}
		sa := assertCheck(t, rep, "socket-address", SeverityError)
		if !strings.Contains(sa.Message, strconv.Itoa(extra)) || !strings.HasPrefix(sa.Fix, manualPrefix) {
			t.Fatalf("socket-address: %+v", sa)
		}
		// The manual fix: drop the extra address, reload, restart the socket.
		removeAndReload(t, p)
		f.systemctl(t, "restart", "gatewayd.socket")
		assertClean(t, f.doctor(t, DoctorOptions{}))
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", extra), time.Second); err == nil {
			c.Close()
			t.Fatalf("extra port %d still accepts after the restart", extra)
		}
		if rt := f.status(t); !sameAddrs(rt.SocketListen, units.DefaultListenAddrs(f.tg.Port)) {
			t.Fatalf("SocketListen %v", rt.SocketListen)
		}
		f.activate(t)
	})

	t.Run("disabled", func(t *testing.T) {
		f.systemctl(t, "disable", "gatewayd.socket")
		assertCheck(t, f.doctor(t, DoctorOptions{}), "unit-not-enabled", SeverityWarning)
		fixAndVerify(t, "unit-not-enabled")
		if rt := f.status(t); rt.UnitFileState != "enabled" {
			t.Fatalf("UnitFileState %q after --fix", rt.UnitFileState)
		}
	})

	t.Run("masked", func(t *testing.T) {
		// systemctl mask refuses while the unit file is in the same
		// directory: an operator removes it first, as we do.
		if err := os.Remove(f.unitPath("gatewayd.service")); err != nil {
			t.Fatal(err)
		}
		f.systemctl(t, "mask", "gatewayd.service")
		rep := f.doctor(t, DoctorOptions{Fix: true})
		c := assertCheck(t, rep, "unit-masked", SeverityError)
		if c.Fixed || c.Fix != manualPrefix+"systemctl --user unmask gatewayd.service" {
			t.Fatalf("unit-masked: %+v", c)
		}
		if fi, err := os.Lstat(f.unitPath("gatewayd.service")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("--fix touched the mask symlink (%v)", err)
		}
		f.systemctl(t, "unmask", "gatewayd.service")
		rep = f.doctor(t, DoctorOptions{Fix: true})
		if c, _ := rep.Result("unit-missing"); !c.Fixed || rep.Remaining != 0 {
			t.Fatalf("after unmask:\n%s", dump(rep))
		}
		f.activate(t)
	})

	t.Run("token in Environment=", func(t *testing.T) {
		editUnit(t, f.unitPath("gatewayd.service"), "Environment="+units.EnvMarker, "Environment=GATEWAY_TOKEN=s3cr3t\nEnvironment="+units.EnvMarker)
		f.systemctl(t, "daemon-reload")
		rep := f.doctor(t, DoctorOptions{})
		c := assertCheck(t, rep, "secret-in-unit", SeverityError)
		if !strings.Contains(c.Message, "GATEWAY_TOKEN") || strings.Contains(c.Message, "s3cr3t") {
			t.Fatalf("secret-in-unit message: %q", c.Message)
		}
		fixAndVerify(t, "secret-in-unit", "unit-drift")
	})

	t.Run("token in a drop-in", func(t *testing.T) {
		p, rep := dropinFix(t, "gatewayd.service", "[Service]\nEnvironment=GATEWAY_PASSWORD=hunter2\n")
		c := assertCheck(t, rep, "secret-in-unit", SeverityError)
		if c.Fixed || !strings.Contains(c.Fix, p) {
			t.Fatalf("secret in drop-in must be a manual fix naming %s: %+v", p, c)
		}
		removeAndReload(t, p)
	})

	t.Run("token on ExecStart=", func(t *testing.T) {
		editUnit(t, f.unitPath("gatewayd.service"), "ExecStart="+f.tg.ExecPath, "ExecStart="+f.tg.ExecPath+" --token s3cr3t-flag")
		f.systemctl(t, "daemon-reload")
		c := assertCheck(t, f.doctor(t, DoctorOptions{}), "secret-in-unit", SeverityError)
		if !strings.Contains(c.Message, "ExecStart= --token") || strings.Contains(c.Message, "s3cr3t-flag") {
			t.Fatalf("secret-in-unit message: %q", c.Message)
		}
		fixAndVerify(t, "secret-in-unit", "unit-drift")
	})

	t.Run("password on ExecStart= of a drop-in", func(t *testing.T) {
		p, rep := dropinFix(t, "gatewayd.service", "[Service]\nExecStart=\nExecStart="+f.tg.ExecPath+" --password=hunter2\n")
		c := assertCheck(t, rep, "secret-in-unit", SeverityError)
		if c.Fixed || !strings.Contains(c.Fix, p) || !strings.Contains(c.Message, "ExecStart= --password") || strings.Contains(c.Message, "hunter2") {
			t.Fatalf("secret on a drop-in's ExecStart= must be a manual fix naming %s, without the value: %+v", p, c)
		}
		removeAndReload(t, p)
	})

	t.Run("marker version", func(t *testing.T) {
		editUnit(t, f.unitPath("gatewayd.service"), units.EnvVersion+"="+testVersion, units.EnvVersion+"=0.9.0")
		f.systemctl(t, "daemon-reload")
		rep := f.doctor(t, DoctorOptions{})
		c := assertCheck(t, rep, "marker-mismatch", SeverityWarning)
		if !strings.Contains(c.Message, "0.9.0") {
			t.Fatalf("marker-mismatch: %q", c.Message)
		}
		fixAndVerify(t, "marker-mismatch", "unit-drift")
	})

	t.Run("deleted unit", func(t *testing.T) {
		if err := os.Remove(f.unitPath("gatewayd.socket")); err != nil {
			t.Fatal(err)
		}
		assertCheck(t, f.doctor(t, DoctorOptions{}), "unit-missing", SeverityError)
		fixAndVerify(t, "unit-missing")
	})

	t.Run("linger off", func(t *testing.T) {
		if err := os.Remove(filepath.Join(f.lingerDir, testUser)); err != nil {
			t.Fatal(err)
		}
		rep := f.doctor(t, DoctorOptions{Fix: true, Only: []string{"linger-off"}})
		c := assertCheck(t, rep, "linger-off", SeverityWarning)
		if c.Fix != manualPrefix+"loginctl enable-linger "+testUser || len(rep.Checks) != 1 {
			t.Fatalf("linger-off: %+v (%d checks)", c, len(rep.Checks))
		}
		os.WriteFile(filepath.Join(f.lingerDir, testUser), nil, 0o644)
	})

	t.Run("config invalid", func(t *testing.T) {
		os.MkdirAll(filepath.Dir(f.tg.ConfigPath), 0o700)
		if err := os.WriteFile(f.tg.ConfigPath, []byte(`{"gateway": {"port": "x"}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		c := assertCheck(t, f.doctor(t, DoctorOptions{Only: []string{"config-invalid"}}), "config-invalid", SeverityError)
		if !strings.Contains(c.Message, f.tg.ConfigPath) || !strings.HasPrefix(c.Fix, manualPrefix) {
			t.Fatalf("config-invalid: %+v", c)
		}
		os.Remove(f.tg.ConfigPath)
	})
}

// TestRestartKeepsSocket is test (5): ten Restarts while a client loop opens
// new TCP connections and sends a request on each: none is refused or reset,
// because the socket unit keeps listening while the service restarts.
func TestRestartKeepsSocket(t *testing.T) {
	f := newFixture(t)
	f.install(t, InstallOptions{})
	f.activate(t)
	f.waitStatus(t, "active", func(rt *Runtime) bool { return rt.ActiveState == "active" })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok int
	var failures []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for i := 0; i < 5000; i++ { // bounded in count; stop ends it early
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", f.tg.Port))
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				resp.Body.Close()
				ok++
			}
			mu.Unlock()
		}
	}()
	first := f.status(t).MainPID
	for i := range 10 {
		if err := f.mgr.Restart(testCtx(t), f.tg); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	rt := f.status(t)
	t.Logf("%d requests answered across 10 restarts; pid %d → %d", ok, first, rt.MainPID)
	if len(failures) > 0 {
		// "connection refused" would mean the socket closed; "reset" or EOF
		// means gatewayd dropped a connection it had accepted while stopping
		// (docs/development.md, "Graceful stop under socket activation": stop
		// accepting, drain, then Shutdown).
		t.Fatalf("%d of %d requests failed during restarts (0 refused, 0 reset wanted), first: %s", len(failures), ok+len(failures), failures[0])
	}
	if ok == 0 || !rt.SocketListening {
		t.Fatalf("no requests answered, or socket not listening: %+v", rt)
	}
	if rt.MainPID == first && rt.MainPID != 0 {
		t.Fatalf("MainPID unchanged (%d): the service did not restart", first)
	}
}
