//go:build linux

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/platform/sdtest"
)

// wedgeEnv is the variable a -tags faultinject gatewayd reads
// (daemon/gateway/fault_on.go); a default build must not know it.
const wedgeEnv = "GATEWAY_FAULT_WEDGE_FILE"

// TestWatchdogRestartsWedgedGateway is the issue-3 watchdog acceptance test.
// A gatewayd built with -tags faultinject, installed by `gatewayctl install`
// into a real systemd user manager with WatchdogSec=3s (an operator's
// drop-in), stops pinging WATCHDOG=1 while a wedge file exists. systemd
// kills it on the watchdog timeout (Result=watchdog, "Watchdog timeout" in
// the manager's log) and restarts it after RestartSec= (a new MainPID,
// NRestarts up); the wedge file is removed during RestartSec=, so the new
// instance stays up. Meanwhile a bounded client loop of new TCP
// connections, each with GET /healthz, sees no connection refused: requests
// queued in the socket's backlog while no gatewayd runs are answered by the
// new instance.
//
// First, without root: a default build cannot be wedged, because the fault
// injection's variable name is not in its binary at all.
func TestWatchdogRestartsWedgedGateway(t *testing.T) {
	dir := t.TempDir()
	plain := goBuildGatewayd(t, filepath.Join(dir, "plain", "gatewayd"))
	faulty := goBuildGatewayd(t, filepath.Join(dir, "faultinject", "gatewayd"), "-tags", "faultinject")
	for _, b := range []struct {
		path string
		want bool
	}{{plain, false}, {faulty, true}} {
		data, err := os.ReadFile(b.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(data, []byte(wedgeEnv)); got != b.want {
			t.Fatalf("%s contains %s: %v, want %v (fault injection must exist only with -tags faultinject)", b.path, wedgeEnv, got, b.want)
		}
	}

	w := newSvcWorld(t, faulty)
	const watchdogSec = 3
	wedge := filepath.Join(t.TempDir(), "wedge")
	w.ctl(t, "install", "--scope", "user", "--port", strconv.Itoa(w.port), "--gatewayd", faulty)
	// The template's WatchdogSec=30s would make this test minutes long. A
	// drop-in is how an operator changes it (and doctor reports it as an
	// override without touching it).
	w.dropIn(t, "gatewayd.service", "watchdog-test.conf", fmt.Sprintf("[Service]\nWatchdogSec=%ds\nEnvironment=%s=%s\n", watchdogSec, wedgeEnv, wedge))
	if out := w.ctlExit(t, 1, "doctor", "--scope", "user", "--only", "unit-dropins"); !strings.Contains(out, "WatchdogSec= overridden by "+filepath.Join(w.um.UnitDir(), "gatewayd.service.d", "watchdog-test.conf")) {
		t.Errorf("doctor does not report the WatchdogSec= drop-in as an override:\n%s", out)
	}

	healthz := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if err := getHealthz(healthz, w.port); err != nil {
		t.Fatalf("first connect through the socket: %v", err)
	}
	before := w.waitSvc(t, "gatewayd active after the first connect", 20*time.Second, func(s svcState) bool {
		return s.ActiveState == "active" && s.SubState == "running" && s.MainPID > 0
	})
	if want := uint64(watchdogSec * 1_000_000); before.WatchdogUSec != want {
		t.Fatalf("WatchdogUSec = %d, want %d: the drop-in was not applied", before.WatchdogUSec, want)
	}
	t.Logf("gatewayd pid %d up, watchdog %ds, %d restarts so far", before.MainPID, watchdogSec, before.NRestarts)

	load := startHTTPLoad(w.port, 1)
	defer load.stop()
	if err := os.WriteFile(wedge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wedgedAt := time.Now()
	// As soon as systemd has given up on the wedged instance, remove the
	// wedge: the new instance starts only after RestartSec=2s.
	killed := w.waitSvc(t, "systemd to kill the wedged gatewayd", 4*watchdogSec*time.Second, func(s svcState) bool {
		return s.Result == "watchdog" || s.MainPID != before.MainPID
	})
	if err := os.Remove(wedge); err != nil {
		t.Fatal(err)
	}
	t.Logf("wedged for %v: %s/%s result %s, pid %d", time.Since(wedgedAt).Round(time.Millisecond), killed.ActiveState, killed.SubState, killed.Result, killed.MainPID)
	if d := time.Since(wedgedAt); d < watchdogSec*time.Second/2 {
		t.Errorf("the wedged gatewayd was stopped after %v, before the watchdog could have fired", d)
	}
	after := w.waitSvc(t, "a new gatewayd after the watchdog restart", 30*time.Second, func(s svcState) bool {
		return s.ActiveState == "active" && s.SubState == "running" && s.MainPID > 0 && s.MainPID != before.MainPID
	})
	load.markPID(after.MainPID)
	if after.NRestarts <= before.NRestarts {
		t.Errorf("NRestarts %d → %d: want the restart counted", before.NRestarts, after.NRestarts)
	}
	if !processGone(int(before.MainPID)) {
		t.Errorf("the wedged gatewayd pid %d still runs", before.MainPID)
	}
	w.waitLog(t, "gatewayd.service: Watchdog timeout", "gatewayd.service: Failed with result 'watchdog'")

	// The new instance is healthy: it outlives two watchdog periods.
	upSince := time.Now()
	for time.Since(upSince) < 2*watchdogSec*time.Second+time.Second {
		s := w.svc(t)
		if s.MainPID != after.MainPID || s.ActiveState != "active" {
			t.Fatalf("the new gatewayd pid %d did not stay up after the wedge was removed: now %+v", after.MainPID, s)
		}
		time.Sleep(100 * time.Millisecond) // an observation window, not a wait for a condition
	}
	c := load.stop()
	t.Logf("connections during wedge and restart: %s; slowest answered in %v", c, c.slowest)
	if c.n["refused"] > 0 || c.n["other"] > 0 {
		t.Errorf("the socket did not keep accepting: %s", c)
	}
	// With one sequential client, at most the request the wedged
	// gatewayd had accepted when SIGABRT hit it can be lost.
	if c.n["reset"] > 1 {
		t.Errorf("%d connections reset, want at most the one in flight at the kill: %s", c.n["reset"], c)
	}
	if c.slowest < time.Second {
		t.Errorf("no request waited in the socket's backlog across the restart (slowest %v): the loop missed the outage", c.slowest)
	}
	if c.okAfter(after.MainPID) == 0 {
		t.Errorf("no request was answered by the new gatewayd")
	}

	rep := w.status(t)
	if rep.Runtime == nil || rep.Runtime.Runtime == nil || rep.Runtime.State != "running" || rep.Runtime.MainPID != int(after.MainPID) || rep.Runtime.NRestarts < 1 {
		t.Fatalf("gatewayctl status after the watchdog restart: %+v", rep.Runtime)
	}
}

// goBuildGatewayd builds cmd/gatewayd to out with extra go build flags, or
// skips loudly when the go tool cannot.
func goBuildGatewayd(t *testing.T, out string, flags ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(cmp.Or(os.Getenv("GOROOT"), "/usr/local/go"), "bin", "go")
	}
	args := append(append([]string{"build"}, flags...), "-o", out, gatewaydtest.Package)
	if b, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Skipf("SKIPPING: cannot build the real gatewayd (go %s): %v\n%s (CI builds it from this checkout)", strings.Join(args, " "), err, b)
	}
	return out
}

// svcWorld is a private systemd user manager (platform/sdtest) with
// gatewayctl's environment pointed at it, set up like TestServiceScripts
// does, for Go tests whose concurrent client loops a script cannot express.
// gatewayd runs as root there, so the manager's environment carries
// GATEWAY_STATE_DIR and GATEWAY_CONFIG_PATH into the test's temp dir:
// nothing is written to the host's /etc, /var/lib or /var/log.
type svcWorld struct {
	um     *sdtest.UserManager
	sd     *sddbus.Conn
	env    []string
	ctlBin string
	state  string
	port   int
}

// newSvcWorld starts the manager; gatewayd is the binary gatewayctl finds
// on $PATH (doctor renders the expected units with it).
func newSvcWorld(t *testing.T, gatewayd string) *svcWorld {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root to run a private systemd user manager (CI runs as root and installs systemd dbus-user-session)")
	}
	// testscript.Main put a copy of this test binary on $PATH as gatewayctl.
	ctl, err := exec.LookPath("gatewayctl")
	if err != nil || !strings.Contains(ctl, "testscript-main") {
		t.Fatalf("gatewayctl on $PATH is %q (%v), want the test binary's copy that testscript.Main installs", ctl, err)
	}
	um := sdtest.StartUser(t)
	port, err := gatewaydtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := &svcWorld{um: um, ctlBin: ctl, state: filepath.Join(dir, "gwstate"), port: port}
	config := filepath.Join(dir, "config.json")
	linger := filepath.Join(dir, "linger")
	if err := os.MkdirAll(linger, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(linger, "root"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.systemctl(t, "set-environment", "GATEWAY_STATE_DIR="+w.state, "GATEWAY_CONFIG_PATH="+config)
	for _, kv := range um.Env() {
		if !strings.HasPrefix(kv, "PATH=") {
			w.env = append(w.env, kv)
		}
	}
	w.env = append(w.env, "PATH="+filepath.Dir(gatewayd)+string(os.PathListSeparator)+os.Getenv("PATH"), "GATEWAY_STATE_DIR="+w.state, "GATEWAY_CONFIG_PATH="+config,
		EnvLingerDir+"="+linger, "TZ=UTC")
	// Bounded by the test (cleanups run after this Close is registered).
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.sd, err = um.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.sd.Close)
	return w
}

// ctl runs gatewayctl with args against the world and returns its stdout;
// a non-zero exit fails the test.
func (w *svcWorld) ctl(t *testing.T, args ...string) string {
	t.Helper()
	return w.ctlExit(t, 0, args...)
}

// ctlExit runs gatewayctl with args and returns its stdout; an exit status
// other than want fails the test.
func (w *svcWorld) ctlExit(t *testing.T, want int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.ctlBin, args...)
	cmd.Env = w.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	got := 0
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gatewayctl %s: %v", strings.Join(args, " "), err)
	}
	if got != want {
		t.Fatalf("gatewayctl %s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, want, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// status runs `gatewayctl status --scope user --json --no-probe`.
func (w *svcWorld) status(t *testing.T) statusReport {
	t.Helper()
	var rep statusReport
	out := w.ctl(t, "status", "--scope", "user", "--json", "--no-probe")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gatewayctl status --json: %v\n%s", err, out)
	}
	return rep
}

func (w *svcWorld) systemctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.um.Systemctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dropIn writes an operator drop-in for unit and reloads the manager.
func (w *svcWorld) dropIn(t *testing.T, unit, name, content string) {
	t.Helper()
	d := filepath.Join(w.um.UnitDir(), unit+".d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	w.systemctl(t, "daemon-reload")
}

// svcState is what the manager says about gatewayd.service over D-Bus.
type svcState struct {
	ActiveState, SubState, Result string
	MainPID, NRestarts            uint32
	WatchdogUSec                  uint64
}

// svc reads gatewayd.service's state over D-Bus.
func (w *svcWorld) svc(t *testing.T) svcState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := w.sd.GetUnitPropertiesContext(ctx, "gatewayd.service")
	if err != nil {
		t.Fatalf("read gatewayd.service over D-Bus: %v", err)
	}
	s, err := w.sd.GetUnitTypePropertiesContext(ctx, "gatewayd.service", "Service")
	if err != nil {
		t.Fatalf("read gatewayd.service's Service properties over D-Bus: %v", err)
	}
	var st svcState
	st.ActiveState, _ = u["ActiveState"].(string)
	st.SubState, _ = u["SubState"].(string)
	st.Result, _ = s["Result"].(string)
	st.MainPID, _ = s["MainPID"].(uint32)
	st.NRestarts, _ = s["NRestarts"].(uint32)
	st.WatchdogUSec, _ = s["WatchdogUSec"].(uint64)
	return st
}

// waitSvc polls svc every 20 ms until cond holds, for at most timeout.
func (w *svcWorld) waitSvc(t *testing.T, what string, timeout time.Duration, cond func(svcState) bool) svcState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := w.svc(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state %+v", timeout, what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits (10 s at most) until the manager's log holds every line.
func (w *svcWorld) waitLog(t *testing.T, lines ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, missing := w.um.Log(), ""
		for _, l := range lines {
			if !strings.Contains(log, l) {
				missing = l
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the manager's log never said %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// getHealthz opens a new connection (client has keep-alives off) and
// expects 200 from GET /healthz.
func getHealthz(c *http.Client, port int) error {
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// classify sorts a failed connection: refused (nothing listening: the
// socket closed), reset (a gatewayd dropped a connection it had accepted),
// retry-later (a stopping gatewayd answered a WebSocket connect it had
// accepted with HTTP 503 or close 1012 before hello-ok: the protocol's
// "restarting, try again"), or other.
func classify(err error) string {
	var de *client.DialError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// net/http's wording for a connection that was closed (EOF) before
		// any response byte, even on a fresh connection: dropped, like a reset.
		strings.Contains(err.Error(), "server closed idle connection"):
		return "reset"
	case errors.As(err, &de) && (de.CloseCode == protocol.CloseServiceRestart || de.HTTPStatus == http.StatusServiceUnavailable):
		return "retry-later"
	}
	return "other"
}

// counts tallies connection attempts by class, keeping the first error of
// each failure class.
type counts struct {
	attempted int
	n         map[string]int
	first     map[string]string
	slowest   time.Duration
	// okAt is when each answered request finished, with the MainPID of
	// the last restart seen before it (see okAfter).
	okAt []time.Time
	mark []markAt
}

type markAt struct {
	at  time.Time
	pid uint32
}

func (c counts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d attempted, %d ok, %d refused, %d reset", c.attempted, c.n["ok"], c.n["refused"], c.n["reset"])
	if n := c.n["retry-later"]; n > 0 {
		fmt.Fprintf(&b, ", %d told to retry (503 or 1012 before hello-ok)", n)
	}
	if n := c.n["other"]; n > 0 {
		fmt.Fprintf(&b, ", %d other", n)
	}
	for _, k := range []string{"refused", "reset", "retry-later", "other"} {
		if e := c.first[k]; e != "" {
			fmt.Fprintf(&b, "; first %s: %s", k, e)
		}
	}
	return b.String()
}

// okAfter counts the requests answered after the first mark of pid.
func (c counts) okAfter(pid uint32) int {
	var since time.Time
	for _, m := range c.mark {
		if m.pid == pid {
			since = m.at
			break
		}
	}
	if since.IsZero() {
		return 0
	}
	n := 0
	for _, at := range c.okAt {
		if at.After(since) {
			n++
		}
	}
	return n
}

// load is a set of bounded client loops, each opening new connections
// every 10 ms until stopped (at most maxAttempts each, and 3 minutes).
type load struct {
	mu      sync.Mutex
	c       counts
	done    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once
}

const maxAttempts = 20000

func newLoad() *load {
	return &load{c: counts{n: map[string]int{}, first: map[string]string{}}, done: make(chan struct{})}
}

// loop runs attempt until stopped, recording each result.
func (l *load) loop(attempt func() error) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(3 * time.Minute)
		for i := 0; i < maxAttempts && time.Now().Before(deadline); i++ {
			select {
			case <-l.done:
				return
			case <-tick.C:
			}
			began := time.Now()
			err := attempt()
			took := time.Since(began)
			k := classify(err)
			l.mu.Lock()
			l.c.attempted++
			l.c.n[k]++
			if err != nil && l.c.first[k] == "" {
				l.c.first[k] = err.Error()
			}
			if err == nil {
				l.c.okAt = append(l.c.okAt, time.Now())
				l.c.slowest = max(l.c.slowest, took)
			}
			l.mu.Unlock()
		}
	}()
}

// healthzAttempt returns an attempt for load.loop: a new connection with
// GET /healthz.
func healthzAttempt(port int) func() error {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return func() error { return getHealthz(c, port) }
}

// startHTTPLoad starts n loops of new connections with GET /healthz.
func startHTTPLoad(port, n int) *load {
	l := newLoad()
	for range n {
		l.loop(healthzAttempt(port))
	}
	return l
}

// markPID records that gatewayd pid was seen running from now on.
func (l *load) markPID(pid uint32) {
	l.mu.Lock()
	l.c.mark = append(l.c.mark, markAt{time.Now(), pid})
	l.mu.Unlock()
}

// stop ends the loops, waits for them and returns the tally.
func (l *load) stop() counts {
	l.stopped.Do(func() { close(l.done) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}
