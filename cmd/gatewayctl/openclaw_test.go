package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

// The OpenClaw compatibility tests run OpenClaw's own programs (Node 24 and
// openclaw@2026.9.6, installed by .ci/setup-openclaw into $GATEWAYD_TOOLS)
// against the real gatewayd, and gatewayctl against a real OpenClaw
// gateway. Each OpenClaw process gets its own HOME (its state lives in
// ~/.openclaw) under t.TempDir() and its own process group, killed when the
// test ends. OpenClaw starts slowly on a loaded machine (tens of seconds),
// so the waits are generous but every one is bounded.

// openclawTools locates Node 24 and the openclaw CLI, or skips loudly.
type openclawTools struct{ nodeBin, openclaw string }

func needOpenClaw(t *testing.T) openclawTools {
	t.Helper()
	dir := os.Getenv("GATEWAYD_TOOLS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "gatewayd-tools")
	}
	tl := openclawTools{nodeBin: filepath.Join(dir, "node24", "bin"), openclaw: filepath.Join(dir, "openclaw", "node_modules", ".bin", "openclaw")}
	for _, p := range []string{filepath.Join(tl.nodeBin, "node"), tl.openclaw} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Skipf("SKIPPING: %s is missing: this test runs OpenClaw's own programs; install Node 24 and openclaw@2026.9.6 with .ci/setup-openclaw (GATEWAYD_TOOLS=%s)", p, dir)
		}
	}
	return tl
}

// ocProc is one running OpenClaw program; its output goes to a file.
type ocProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startOpenClaw runs `openclaw ARGS…` with HOME=home, Node 24 first in
// PATH and env added, in its own process group; the group is stopped when
// the test ends (SIGTERM, SIGKILL after 5 s).
func startOpenClaw(t *testing.T, tl openclawTools, home string, env []string, args ...string) *ocProc {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(home, fmt.Sprintf("openclaw-%s-%d.log", args[0], time.Now().UnixNano()))
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tl.openclaw, args...)
	cmd.Dir = home
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + tl.nodeBin + ":/usr/local/bin:/usr/bin:/bin",
		"TMPDIR=" + home, "NO_COLOR=1", "LANG=C.UTF-8"}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start openclaw %s: %v", strings.Join(args, " "), err)
	}
	p := &ocProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (p *ocProc) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers of the group too
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

func (p *ocProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *ocProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// runOpenClaw runs one `openclaw ARGS…` command to completion (at most
// timeout) and returns its stdout.
func runOpenClaw(t *testing.T, tl openclawTools, home string, timeout time.Duration, args ...string) string {
	t.Helper()
	p := startOpenClaw(t, tl, home, nil, args...)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.stop()
		t.Fatalf("openclaw %s did not finish within %s:\n%s", args[0], timeout, testutil.Tail(p.output(), 20))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("openclaw %s exited %d:\n%s", strings.Join(args, " "), code, testutil.Tail(p.output(), 20))
	}
	return p.output()
}

// waitUntil polls cond every 500 ms until it is true, fails the test with
// what when timeout passes or cond errs. p, when not nil, must stay up;
// its output is the state a timeout shows.
func waitUntil(t *testing.T, what string, timeout time.Duration, p *ocProc, cond func() (bool, error)) {
	t.Helper()
	testutil.WaitFor(t, timeout, 500*time.Millisecond, what, func() (bool, string) {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok || p == nil {
			return ok, "not yet"
		}
		if p.exited() {
			t.Fatalf("waiting for %s: openclaw exited:\n%s", what, testutil.Tail(p.output(), 40))
		}
		return false, "openclaw output:\n" + testutil.Tail(p.output(), 40)
	})
}

// ctlAgainst returns a gatewayctl runner for the gateway at url (with
// --url and --token), its own config and state isolated from the host's.
func ctlAgainst(t *testing.T, ctx context.Context, url, token string) func(args ...string) (int, string, string) {
	dir := t.TempDir()
	for _, kv := range [][2]string{{"GATEWAY_CONFIG_PATH", filepath.Join(dir, "ctl.json")}, {"GATEWAY_STATE_DIR", filepath.Join(dir, "ctl")},
		{"GATEWAY_TOKEN", ""}, {"GATEWAY_URL", ""}, {"GATEWAY_PROFILE", ""}} {
		t.Setenv(kv[0], kv[1])
	}
	return func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runContext(ctx, append(args, "--url", url, "--token", token), &out, &errb)
		return code, out.String(), errb.String()
	}
}

// pendingFor waits for a pending pairing request of a node named like
// this host (gatewayctl pairing list --json) and returns it.
func pendingFor(t *testing.T, ctl func(...string) (int, string, string), p *ocProc, timeout time.Duration) nodeproto.PairingRequest {
	t.Helper()
	var req nodeproto.PairingRequest
	waitUntil(t, "a pending pairing request in gatewayctl pairing list", timeout, p, func() (bool, error) {
		code, out, errs := ctl("pairing", "list", "--json")
		if code != 0 {
			return false, fmt.Errorf("pairing list --json = %d: %s", code, errs)
		}
		var l nodeproto.PairList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			return false, fmt.Errorf("pairing list --json: %v: %s", err, out)
		}
		for _, r := range l.Pending {
			if r.ClientID == "node-host" {
				req = r
				return true, nil
			}
		}
		return false, nil
	})
	return req
}

// waitConnected waits until gatewayctl nodes list shows the node
// connected, advertising command.
func waitConnected(t *testing.T, ctl func(...string) (int, string, string), p *ocProc, nodeID, command string, timeout time.Duration) {
	t.Helper()
	waitUntil(t, "node "+nodeID[:12]+" connected in gatewayctl nodes list", timeout, p, func() (bool, error) {
		code, out, errs := ctl("nodes", "list", "--json")
		if code != 0 {
			return false, fmt.Errorf("nodes list --json = %d: %s", code, errs)
		}
		var l nodeproto.NodeList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			return false, err
		}
		for _, n := range l.Nodes {
			if n.NodeID == nodeID && n.Connected && strings.Contains(strings.Join(n.Commands, ","), command) {
				return true, nil
			}
		}
		return false, nil
	})
}

// invokeWhichAndRun runs system.which and system.run on the node through
// gatewayctl and checks the node's answers.
func invokeWhichAndRun(t *testing.T, ctl func(...string) (int, string, string), nodeID string) {
	t.Helper()
	code, out, errs := ctl("nodes", "invoke", nodeID[:12], "system.which", "--params", `{"bins":["sh"]}`, "--timeout", "90s")
	var which struct {
		Bins map[string]string `json:"bins"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &which) != nil || !strings.HasSuffix(which.Bins["sh"], "/sh") {
		t.Fatalf("nodes invoke system.which = %d %s %s", code, out, errs)
	}
	marker := fmt.Sprintf("hello-from-node-%d", time.Now().UnixNano())
	code, out, errs = ctl("nodes", "invoke", nodeID[:12], "system.run", "--params", `{"command":["echo","`+marker+`"]}`, "--timeout", "90s")
	var run struct {
		ExitCode int    `json:"exitCode"`
		Success  bool   `json:"success"`
		Stdout   string `json:"stdout"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &run) != nil || !run.Success || run.ExitCode != 0 || run.Stdout != marker+"\n" {
		t.Fatalf("nodes invoke system.run = %d %s %s", code, out, errs)
	}
}

// TestOpenClawNodeHost: OpenClaw's own node host (`openclaw node run`)
// against the real gatewayd: it asks to pair, gatewayctl approves, it comes
// back by itself and runs system.which and system.run for gatewayctl, and
// after pairing its log has no scope, role or unknown-method errors.
func TestOpenClawNodeHost(t *testing.T) {
	tl := needOpenClaw(t)
	g, dir := startGatewayd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ctl := ctlAgainst(t, ctx, g.URL, g.Token)

	host := startOpenClaw(t, tl, filepath.Join(dir, "nodehome"), []string{"OPENCLAW_GATEWAY_TOKEN=" + g.Token},
		"node", "run", "--host", "127.0.0.1", "--port", fmt.Sprint(g.Port))
	req := pendingFor(t, ctl, host, 4*time.Minute)
	if req.Platform != "linux" || !strings.Contains(strings.Join(req.Commands, ","), "system.run") {
		t.Errorf("pending request = %+v", req)
	}
	code, out, errs := ctl("pairing", "approve", req.RequestID)
	if code != 0 || !strings.Contains(out, "approved pairing request "+req.RequestID) {
		t.Fatalf("pairing approve = %d %s %s", code, out, errs)
	}
	// The refusal told the node host to keep retrying: it reconnects on
	// its own (backoff at most 30 s).
	waitConnected(t, ctl, host, req.NodeID, "system.which", 2*time.Minute)
	connectedAt := len(host.output())
	invokeWhichAndRun(t, ctl, req.NodeID)

	// The node host publishes its stats with node.event right after it
	// connects: they reach node.describe.
	waitUntil(t, "the node's node.host.stats in gatewayctl nodes describe", time.Minute, host, func() (bool, error) {
		code, out, _ := ctl("nodes", "describe", req.NodeID[:12], "--json")
		var info nodeproto.NodeInfo
		return code == 0 && json.Unmarshal([]byte(out), &info) == nil && len(info.HostStats) > 0, nil
	})

	// OpenClaw's CLI sees the same pairing store through device.pair.list.
	out = runOpenClaw(t, tl, filepath.Join(dir, "clihome"), 3*time.Minute,
		"devices", "list", "--json", "--url", g.URL, "--token", g.Token)
	var dl nodeproto.DevicePairList
	// Its output may carry OpenClaw's own warnings around the JSON.
	if i := strings.Index(out, "{\n"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&dl) != nil ||
		len(dl.Paired) != 1 || dl.Paired[0].DeviceID != req.NodeID || !dl.Paired[0].Connected || dl.Paired[0].Roles[0] != "node" {
		t.Errorf("openclaw devices list --json = %s", out)
	}

	// openclaw devices approve pairs a node through device.pair.approve
	// (retrying with operator.admin after gatewayd's "device pairing
	// approval denied", as against OpenClaw).
	key, _ := client.NewDeviceKey()
	_, err := client.DialNode(ctx, client.Options{URL: g.URL, Token: g.Token, Device: key, DisplayName: "go-node", Commands: []string{"system.run"}})
	rid, ok := client.PairingRequired(err)
	if !ok {
		t.Fatalf("unpaired Go node: %v", err)
	}
	out = runOpenClaw(t, tl, filepath.Join(dir, "clihome"), 3*time.Minute, "devices", "approve", rid, "--url", g.URL, "--token", g.Token)
	if !strings.Contains(out, "Approved "+client.DeviceID(key)) {
		t.Errorf("openclaw devices approve = %s", testutil.Tail(out, 10))
	}
	code, out, errs = ctl("pairing", "list", "--json")
	var pl nodeproto.PairList
	if code != 0 || json.Unmarshal([]byte(out), &pl) != nil || len(pl.Paired) != 2 {
		t.Errorf("pairing list after openclaw devices approve = %d %s %s", code, out, errs)
	}

	after := host.output()[connectedAt:]
	for _, bad := range []string{"missing scope", "unknown method", "unauthorized role", "publish failed", "FORBIDDEN", "not implemented"} {
		if strings.Contains(after, bad) {
			t.Errorf("node host log after pairing has %q:\n%s", bad, testutil.Tail(after, 40))
		}
	}
	if !strings.Contains(host.output(), "node host gateway connected") {
		t.Errorf("node host never said it connected:\n%s", testutil.Tail(host.output(), 40))
	}
}

// startOpenClawGateway runs `openclaw gateway run` on port (loopback)
// with a token and waits until gatewayctl health answers ok. OpenClaw's
// startup has a fixed 5 s budget for its state lease that a loaded machine
// can miss ("Gateway failed to start"); such a start is retried on the same
// port, at most three times.
func startOpenClawGateway(t *testing.T, tl openclawTools, home, token string, port int) *ocProc {
	t.Helper()
	url := fmt.Sprintf("ws://127.0.0.1:%d", port)
	for attempt := 1; ; attempt++ {
		p := startOpenClaw(t, tl, home, nil, "gateway", "run", "--allow-unconfigured", "--bind", "loopback",
			"--port", fmt.Sprint(port), "--auth", "token", "--token", token)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		ctl := ctlAgainst(t, ctx, url, token)
		var failed bool
		deadline := time.Now().Add(4 * time.Minute)
		for i := 0; i < 480 && time.Now().Before(deadline); i++ {
			if p.exited() {
				failed = true
				break
			}
			if code, _, _ := ctl("health", "--timeout", "20s"); code == 0 {
				cancel()
				return p
			}
			time.Sleep(500 * time.Millisecond)
		}
		cancel()
		p.stop()
		if !failed || attempt == 3 || !strings.Contains(p.output(), "Gateway failed to start") {
			t.Fatalf("openclaw gateway on %s did not become healthy (attempt %d):\n%s", url, attempt, testutil.Tail(p.output(), 40))
		}
		t.Logf("openclaw gateway start %d failed, retrying: %s", attempt, testutil.Tail(p.output(), 2))
	}
}

// logLineRE is a rendered log line: time, level, message.
var logLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* (DEBUG|INFO|WARN|ERROR|TRACE|FATAL) +\S`)

// TestGatewayctlAgainstOpenClawGateway: gatewayctl is a client of a real
// OpenClaw gateway: health, status, pairing approve of a real node host
// (which needs operator.pairing + operator.admin there), nodes invoke
// without --idempotency-key (OpenClaw requires one) and logs (OpenClaw's
// tslog records rendered with time, level and message).
func TestGatewayctlAgainstOpenClawGateway(t *testing.T) {
	tl := needOpenClaw(t)
	dir := t.TempDir()
	token := "octest-" + fmt.Sprint(time.Now().UnixNano())
	port, err := gatewaydtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d", port)
	// The node host boots while the gateway does (both take tens of
	// seconds); it retries until the gateway listens.
	host := startOpenClaw(t, tl, filepath.Join(dir, "nodehome"), []string{"OPENCLAW_GATEWAY_TOKEN=" + token},
		"node", "run", "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	gw := startOpenClawGateway(t, tl, filepath.Join(dir, "gwhome"), token, port)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ctl := ctlAgainst(t, ctx, url, token)

	code, out, errs := ctl("health", "--json")
	var h struct {
		OK bool `json:"ok"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || !h.OK {
		t.Fatalf("health --json = %d %s %s", code, out, errs)
	}
	code, out, errs = ctl("status")
	if code != 0 || !regexp.MustCompile(`(?m)^gateway +version \S+, protocol \d`).MatchString(out) {
		t.Fatalf("status = %d\n%s\n%s", code, out, errs)
	}

	req := pendingFor(t, ctl, host, 4*time.Minute)
	code, out, errs = ctl("pairing", "approve", req.RequestID)
	if code != 0 || !strings.Contains(out, "approved pairing request") {
		t.Fatalf("pairing approve against OpenClaw = %d %s %s", code, out, errs)
	}
	waitConnected(t, ctl, host, req.NodeID, "system.which", 2*time.Minute)
	invokeWhichAndRun(t, ctl, req.NodeID)

	code, out, errs = ctl("logs", "--limit", "200")
	if code != 0 {
		t.Fatalf("logs = %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	rendered := 0
	for _, l := range lines {
		if strings.Contains(l, `0="`) || strings.HasPrefix(l, "{") {
			t.Errorf("log line not rendered: %s", l)
		}
		if logLineRE.MatchString(l) {
			rendered++
		}
	}
	if rendered == 0 || rendered < len(lines)/2 {
		t.Errorf("logs: %d of %d lines rendered as TIME LEVEL message:\n%s", rendered, len(lines), testutil.Tail(out, 20))
	}
	if !strings.Contains(out, "node.invoke") {
		t.Errorf("logs do not show the node.invoke just made:\n%s", testutil.Tail(out, 20))
	}
	if gw.exited() {
		t.Errorf("openclaw gateway exited:\n%s", testutil.Tail(gw.output(), 20))
	}
}
