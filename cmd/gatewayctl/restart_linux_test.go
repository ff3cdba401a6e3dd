//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// TestRestartUnderLoad is the issue-3 restart acceptance test: ten
// `gatewayctl restart` runs against a real systemd user manager while
// bounded client loops open new connections (a WebSocket connect up to
// hello-ok, and GET /healthz): none is refused or reset, because the socket
// unit keeps listening and gatewayd stops accepting before it drains. Every
// WebSocket client connected before a restart gets the shutdown event, then
// close 1012, and reconnects to the new gatewayd.
func TestRestartUnderLoad(t *testing.T) {
	bin := buildGatewayd(t)
	w := newSvcWorld(t, bin)
	w.ctl(t, "install", "--scope", "user", "--port", strconv.Itoa(w.port), "--gatewayd", bin)
	w.ctl(t, "health", "--wait", "20s")
	first := w.waitSvc(t, "gatewayd active after the first connect", 20*time.Second, func(s svcState) bool {
		return s.ActiveState == "active" && s.MainPID > 0
	})
	token, err := config.ReadToken(filepath.Join(w.state, "gateway.token"))
	if err != nil {
		t.Fatal(err)
	}
	opts := client.Options{
		URL:              fmt.Sprintf("ws://127.0.0.1:%d", w.port),
		Token:            token,
		HandshakeTimeout: 30 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const restarts, clients = 10, 3
	var watchers []*reconnector
	for i := range clients {
		r, err := startReconnector(ctx, opts, restarts)
		if err != nil {
			t.Fatalf("WebSocket client %d: %v", i, err)
		}
		defer r.stop()
		watchers = append(watchers, r)
	}

	l := newLoad()
	l.loop(func() error {
		c, err := client.Dial(ctx, opts)
		if err != nil {
			return err
		}
		if c.Hello() == nil {
			c.Close()
			return fmt.Errorf("dial returned without hello-ok")
		}
		return c.Close()
	})
	l.loop(healthzAttempt(w.port))
	defer l.stop()

	pids := map[uint32]bool{first.MainPID: true}
	for i := 1; i <= restarts; i++ {
		w.ctl(t, "restart", "--scope", "user")
		s := w.waitSvc(t, fmt.Sprintf("gatewayd active after restart %d", i), 20*time.Second, func(s svcState) bool {
			return s.ActiveState == "active" && s.MainPID > 0
		})
		if pids[s.MainPID] {
			t.Fatalf("restart %d: MainPID %d is not new", i, s.MainPID)
		}
		pids[s.MainPID] = true
		l.markPID(s.MainPID)
		// Each restart must have closed every client, which reconnects.
		deadline := time.Now().Add(20 * time.Second)
		for _, r := range watchers {
			for r.generation() < i {
				if time.Now().After(deadline) {
					t.Fatalf("restart %d: a WebSocket client did not reconnect in 20s (generation %d): %v", i, r.generation(), r.errors())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	last := w.svc(t)
	c := l.stop()
	t.Logf("new connections across %d restarts (WebSocket hello-ok + HTTP /healthz): %s", restarts, c)
	for i, r := range watchers {
		r.stop()
		if errs := r.errors(); len(errs) > 0 {
			t.Errorf("WebSocket client %d: %v", i, errs)
		}
		if g := r.generation(); g != restarts {
			t.Errorf("WebSocket client %d reconnected %d times, want %d", i, g, restarts)
		}
	}
	t.Logf("%d existing WebSocket clients each got shutdown + 1012 and reconnected %d times", clients, restarts)
	if c.n["refused"] != 0 || c.n["reset"] != 0 || c.n["other"] != 0 {
		t.Errorf("new connections failed during restarts (want 0 refused, 0 reset): %s", c)
	}
	// A WebSocket connect the old gatewayd accepted just before it began
	// stopping is answered 503 (upgrade) or closed 1012 (handshake), like
	// every client: "restarting, try again" is the protocol's answer, so
	// it is allowed but counted. The loop is sequential, so at most one
	// connect per restart can be caught that way.
	if n := c.n["retry-later"]; n > restarts {
		t.Errorf("%d WebSocket connects told to retry, more than one per restart: %s", n, c)
	}
	if c.okAfter(last.MainPID) == 0 || c.n["ok"] < 2*restarts {
		t.Errorf("the client loops did not run across the restarts: %s", c)
	}
	rep := w.status(t)
	if rep.Runtime == nil || rep.Runtime.Runtime == nil || rep.Runtime.State != "running" || !rep.Runtime.SocketListening || rep.Runtime.MainPID != int(last.MainPID) {
		t.Fatalf("gatewayctl status after %d restarts: %+v", restarts, rep.Runtime)
	}
}

// reconnector is a WebSocket client that stays connected: each time the
// gateway closes it, it checks the close was a restart (shutdown event,
// then 1012) and dials again.
type reconnector struct {
	gen      atomic.Int32 // restarts survived: closes seen and reconnected
	quitting atomic.Bool
	mu       sync.Mutex
	conn     *client.Conn
	errs     []string
	done     chan struct{}
}

// startReconnector connects once, then follows at most max restarts.
func startReconnector(ctx context.Context, o client.Options, max int) (*reconnector, error) {
	c, err := client.Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	r := &reconnector{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for i := 0; i <= max; i++ {
			var shutdown *protocol.ShutdownEvent
			for ev := range c.Events() { // closed when the connection ends
				if ev.Name == "shutdown" && shutdown == nil {
					shutdown = &protocol.ShutdownEvent{}
					if err := json.Unmarshal(ev.Payload, shutdown); err != nil {
						r.fail("shutdown event payload %s: %v", ev.Payload, err)
					}
				}
			}
			<-c.Done() // Events closes just before Done: CloseStatus needs Done
			if r.quitting.Load() {
				return
			}
			code, reason := c.CloseStatus()
			switch {
			case shutdown == nil:
				r.fail("generation %d: closed %d %q without a shutdown event first", i, code, reason)
			case shutdown.Reason == "":
				r.fail("generation %d: shutdown event without a reason", i)
			}
			if code != protocol.CloseServiceRestart {
				r.fail("generation %d: close code %d %q, want %d", i, code, reason, protocol.CloseServiceRestart)
			}
			if i == max {
				r.fail("closed after the last restart (%d %q)", code, reason)
				return
			}
			nc, err := dialRetrying(ctx, o)
			if err != nil {
				r.fail("generation %d: reconnect: %v", i, err)
				return
			}
			r.mu.Lock()
			r.conn, c = nc, nc
			r.mu.Unlock()
			if r.quitting.Load() { // stop closed the previous conn
				nc.Close()
				return
			}
			r.gen.Add(1)
		}
	}()
	return r, nil
}

func (r *reconnector) fail(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *reconnector) generation() int { return int(r.gen.Load()) }

func (r *reconnector) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// stop closes the current connection and waits for the loop to end.
func (r *reconnector) stop() {
	if r.quitting.Swap(true) {
		<-r.done
		return
	}
	r.mu.Lock()
	c := r.conn
	r.mu.Unlock()
	c.Close()
	<-r.done
}

// dialRetrying dials like a well-behaved client after a 1012: a connect
// that lands on the stopping process is told to retry (HTTP 503 or close
// 1012 before hello-ok, IsUnreachable) and is retried, bounded in count and
// by ctx; anything else fails at once.
func dialRetrying(ctx context.Context, o client.Options) (*client.Conn, error) {
	var err error
	for range 100 {
		var c *client.Conn
		if c, err = client.Dial(ctx, o); err == nil {
			return c, nil
		}
		var de *client.DialError
		if !errors.As(err, &de) || !de.IsUnreachable() || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond) // back off before the retry the gateway asked for
	}
	return nil, err
}
