package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// secretRecorder stands in for a gateway on another host: gatewayctl
// reaches it through HTTP_PROXY (an HTTP proxy on loopback), so the URL
// names a host that is not loopback while no packet leaves this machine.
// It answers the WebSocket upgrade, sends connect.challenge and records
// the auth of the connect request.
type secretRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	auths []string
}

func newSecretRecorder(t *testing.T) *secretRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &secretRecorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *secretRecorder) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	if _, err := ws.Upgrade(c); err != nil { // the proxy request's absolute URI is fine here
		return
	}
	if err := wsutil.WriteServerText(c, []byte(`{"type":"event","event":"connect.challenge","payload":{"nonce":"n","ts":1}}`)); err != nil {
		return
	}
	msg, err := wsutil.ReadClientText(struct {
		io.Reader
		io.Writer
	}{bufio.NewReader(c), c})
	if err != nil {
		return
	}
	var f protocol.RequestFrame
	var p struct {
		Auth json.RawMessage `json:"auth"`
	}
	if json.Unmarshal(msg, &f) != nil || json.Unmarshal(f.Params, &p) != nil {
		return
	}
	r.mu.Lock()
	r.auths = append(r.auths, string(p.Auth))
	r.mu.Unlock()
	_ = wsutil.WriteServerText(c, []byte(`{"type":"res","id":"`+f.ID+`","ok":false,"error":{"code":"INVALID_REQUEST","message":"recorded"}}`))
}

func (r *secretRecorder) seen() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, append([]string(nil), r.auths...)
}

// TestRemoteURLSecret runs the real gatewayctl (this test binary as a
// child, see TestMain) against a URL that is not loopback: before, it sent
// this host's token file or $GATEWAY_TOKEN there, over plain ws:// too.
func TestRemoteURLSecret(t *testing.T) {
	rec := newSecretRecorder(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "gateway.token"), []byte("LOCAL-FILE-TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	given := filepath.Join(dir, "remote.token")
	if err := os.WriteFile(given, []byte("REMOTE-TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const remote = "ws://gateway.remote.test:18789"
	run := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Args = append([]string{"gatewayctl"}, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "GATEWAY_STATE_DIR="+state, "GATEWAY_CONFIG_PATH="+filepath.Join(dir, "missing.json"),
			"GATEWAY_TOKEN=LOCAL-ENV-TOKEN", "HTTP_PROXY=http://"+rec.ln.Addr().String(), "http_proxy=", "NO_PROXY=", "no_proxy=")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run gatewayctl: %v", err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}

	code, out := run("health", "--url", remote)
	if n, _ := rec.seen(); code != ExitUsage || n != 0 || !strings.Contains(out, "refusing plain ws://") {
		t.Fatalf("plain ws:// off loopback: exit %d after %d connections: %s; want exit %d and no connection", code, n, out, ExitUsage)
	}
	code, out = run("health", "--url", remote, "--insecure-ws", "--timeout", "10s")
	n, auths := rec.seen()
	if n != 1 || len(auths) != 1 {
		t.Fatalf("gatewayctl with --insecure-ws did not reach the stand-in gateway (%d connections, exit %d): %s", n, code, out)
	}
	if strings.Contains(auths[0], "LOCAL") {
		t.Errorf("this host's token went to %s: auth %s", remote, auths[0])
	}
	run("health", "--url", remote, "--insecure-ws", "--token-file", given, "--timeout", "10s")
	if _, auths = rec.seen(); len(auths) != 2 || !strings.Contains(auths[1], `"REMOTE-TOKEN"`) {
		t.Errorf("--token-file for the remote gateway: auths %q, want REMOTE-TOKEN sent", auths)
	}
}
