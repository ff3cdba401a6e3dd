package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/client/gatewaytest"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// syncBuffer is a bytes.Buffer safe for the command's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until buf contains want, bounded by 15 s.
func waitFor(t *testing.T, what string, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; it has:\n%s", what, want, buf.String())
		}
		time.Sleep(10 * time.Millisecond) // polling output written by another goroutine
	}
}

// TestLogsFollow runs `gatewayctl logs --follow` in process against the
// real gatewayd: it prints new lines as they are logged, notes the
// gateway's shutdown, reconnects to the restarted gateway, continues, and
// exits 0 when its context ends (what SIGINT does).
func TestLogsFollow(t *testing.T) {
	bin := buildGatewayd(t)
	dir := t.TempDir()
	start := func(port int) *gatewaytest.Gateway {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		g, err := gatewaytest.Start(ctx, bin, gatewaytest.Options{Dir: dir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Stop() })
		return g
	}
	g := start(0)
	for _, kv := range gatewaytest.Env(dir) {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "GATEWAY_") || strings.HasPrefix(k, "XDG_")) {
			t.Setenv(k, v)
		}
	}
	t.Setenv("GATEWAY_URL", g.URL)
	t.Setenv("GATEWAY_TOKEN", g.Token)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- runContext(ctx, []string{"logs", "--follow", "--limit", "50"}, &stdout, &stderr) }()
	waitFor(t, "stdout", &stdout, "gateway ready")

	post := func(text string) {
		c, err := client.Dial(context.Background(), client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Call(context.Background(), "system-event", protocol.SystemEventParams{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	post("first-follow-marker")
	waitFor(t, "stdout", &stdout, "first-follow-marker")

	if err := g.Stop(); err != nil {
		t.Fatalf("gatewayd exit: %v", err)
	}
	waitFor(t, "stderr", &stderr, "gateway is shutting down")
	g = start(g.Port)
	waitFor(t, "stderr", &stderr, "reconnected to ")
	post("second-follow-marker")
	waitFor(t, "stdout", &stdout, "second-follow-marker")

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit status %d after cancel, want 0; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs --follow did not stop within 15s of its context ending")
	}
	if n := strings.Count(stdout.String(), "first-follow-marker"); n != 1 {
		t.Errorf("first marker printed %d times, want once (the cursor must carry over the reconnect)\n%s", n, stdout.String())
	}
}
