package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

// waitOutput polls (15 s) until buf, the command's stdout or stderr
// written by another goroutine, contains want at least n times.
func waitOutput(t *testing.T, what string, buf *testutil.SyncBuffer, want string, n int) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, 10*time.Millisecond, fmt.Sprintf("%s to contain %q %d times", what, want, n), func() (bool, string) {
		out := buf.String()
		return strings.Count(out, want) >= n, what + " has:\n" + out
	})
}

// TestLogsFollow runs `gatewayctl logs --follow` in process against the
// real gatewayd: it prints new lines as they are logged, notes the
// gateway's shutdown, reconnects to the restarted gateway, continues, and
// exits 0 when its context ends (what SIGINT does).
func TestLogsFollow(t *testing.T) {
	_, g, start := followGateway(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.SyncBuffer
	code := make(chan int, 1)
	go func() { code <- runContext(ctx, []string{"logs", "--follow", "--limit", "50"}, &stdout, &stderr) }()
	waitOutput(t, "stdout", &stdout, "gateway ready", 1)

	postEvent(t, g, "first-follow-marker")
	waitOutput(t, "stdout", &stdout, "first-follow-marker", 1)

	if err := g.Stop(); err != nil {
		t.Fatalf("gatewayd exit: %v", err)
	}
	waitOutput(t, "stderr", &stderr, "gateway is shutting down", 1)
	g = start(g.Port)
	waitOutput(t, "stderr", &stderr, "reconnected to ", 1)
	postEvent(t, g, "second-follow-marker")
	waitOutput(t, "stdout", &stdout, "second-follow-marker", 1)

	cancel()
	waitExit(t, code, &stderr)
	if n := strings.Count(stdout.String(), "first-follow-marker"); n != 1 {
		t.Errorf("first marker printed %d times, want once (the cursor must carry over the reconnect)\n%s", n, stdout.String())
	}
}

// TestLogsFollowOneCursor is the "logs when the gateway is down"
// acceptance for --follow: across two stops and starts, --follow reads the
// log file directly while the gateway is away (the lines the stopping
// gateway wrote last are printed before it is back) and then continues
// over the protocol from the same byte cursor, so what it printed (--json:
// the raw lines) is exactly the file: no line twice, none missing.
func TestLogsFollowOneCursor(t *testing.T) {
	dir, g, start := followGateway(t)
	logFile := filepath.Join(dir, "state", "logs", "gatewayd.jsonl")
	if _, err := os.Stat(logFile); err != nil {
		t.Fatalf("the gateway's log file: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.SyncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, []string{"logs", "--follow", "--json", "--limit", "5000"}, &stdout, &stderr)
	}()
	waitOutput(t, "stdout", &stdout, "gateway ready", 1)
	for i := 1; i <= 2; i++ {
		postEvent(t, g, fmt.Sprintf("before-stop-%d", i))
		if err := g.Stop(); err != nil {
			t.Fatalf("gatewayd exit: %v", err)
		}
		// The stopping gateway's last line reaches stdout while it is away,
		// read from the file.
		waitOutput(t, "stderr", &stderr, "following the log file "+logFile+" directly while the gateway is away", 1)
		waitOutput(t, "stdout", &stdout, `"msg":"stopped"`, i)
		g = start(g.Port)
		waitOutput(t, "stderr", &stderr, "reconnected to ", i)
	}
	postEvent(t, g, "after-restarts")
	waitOutput(t, "stdout", &stdout, "after-restarts", 1)
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// Stop following before comparing: nothing is printed after this.
	cancel()
	waitExit(t, code, &stderr)
	got := stdout.String()
	// --json prints every line as logs.tail answers it, with OpenClaw's
	// message key beside msg, whether it came over the protocol or from
	// the file.
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		if body, ok := strings.CutSuffix(l, "\n"); ok {
			lines[i] = logs.WithMessage(body) + "\n"
		}
	}
	if want := strings.Join(lines, ""); !strings.HasPrefix(want, got) || strings.Count(got, "\n") < strings.Count(want[:strings.LastIndex(want, "after-restarts")], "\n") {
		t.Fatalf("--follow printed something other than the log file's lines in order (duplicates or gaps)\nprinted:\n%s\nfile:\n%s\nstderr:\n%s", got, want, stderr.String())
	}
}

// followGateway starts the real gatewayd in a temporary directory (again
// on the same port after a stop, with start) and points gatewayctl's
// environment at it.
func followGateway(t *testing.T) (dir string, g *gatewaydtest.Gateway, start func(port int) *gatewaydtest.Gateway) {
	bin := buildGatewayd(t)
	dir = t.TempDir()
	start = func(port int) *gatewaydtest.Gateway {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		g, err := gatewaydtest.Start(ctx, bin, gatewaydtest.Options{Dir: dir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Stop() })
		return g
	}
	g = start(0)
	for _, kv := range gatewaydtest.Env(dir) {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "GATEWAY_") || strings.HasPrefix(k, "XDG_")) {
			t.Setenv(k, v)
		}
	}
	t.Setenv("GATEWAY_URL", g.URL)
	t.Setenv("GATEWAY_TOKEN", g.Token)
	return dir, g, start
}

// postEvent puts text into the gateway's log: a client connects with text
// as its client.version, which the "client connected" line records (the
// system-event method logs only the text's size, so it cannot be used).
func postEvent(t *testing.T, g *gatewaydtest.Gateway, text string) {
	t.Helper()
	c, err := client.Dial(context.Background(), client.Options{URL: g.URL, Token: g.Token, Version: text, Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// waitExit waits (15 s) for the in-process command's exit status after its
// context was cancelled; anything but 0 fails the test.
func waitExit(t *testing.T, code <-chan int, stderr *testutil.SyncBuffer) {
	t.Helper()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit status %d after cancel, want 0; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs --follow did not stop within 15s of its context ending")
	}
}
