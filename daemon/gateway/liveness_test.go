package gateway

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

const livenessToken = "liveness-test-token"

// liveServer runs an in-process server on loopback for tests that need
// its internals (the hub, a connection's queue).
func liveServer(t *testing.T) (*Server, string) {
	t.Helper()
	s, addr := guardServer(t, Settings{})
	return s, "ws://" + addr
}

func dialPipe(t *testing.T, url string) *client.Pipe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := client.DialPipe(ctx, client.Options{URL: url, Token: livenessToken, Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// serverConn finds the server side of the connection whose hello-ok named
// connID.
func serverConn(t *testing.T, s *Server, p *client.Pipe) *wsConn {
	t.Helper()
	for _, c := range s.hub.all() {
		if c.id == p.Hello().Server.ConnID {
			return c
		}
	}
	t.Fatalf("no server connection %s", p.Hello().Server.ConnID)
	return nil
}

// readUntilClose reads (answering pings on the way) until the connection
// ends and returns its close code (0: no close frame).
func readUntilClose(t *testing.T, p *client.Pipe) int {
	t.Helper()
	_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 10_000 {
		if _, err := p.Read(); err != nil {
			var ce *client.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Logf("the connection ended without a close frame: %v", err)
			return 0
		}
	}
	t.Fatal("the connection never ended")
	return 0
}

// TestPingWithoutPongCloses: a client that does not answer the gateway's
// ping within pongWait is closed with 1008; one that answers stays.
func TestPingWithoutPongCloses(t *testing.T) {
	old := pongWait
	pongWait = 300 * time.Millisecond
	t.Cleanup(func() { pongWait = old })
	s, url := liveServer(t)
	silent, answering := dialPipe(t, url), dialPipe(t, url)

	// The answering client reads (a Pipe answers pings inside Read).
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = answering.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			answering.Read()
		}
	}()
	s.hub.pingAll(context.Background())
	close(stop)
	<-done

	if serverConn(t, s, answering).isClosed() {
		t.Fatal("the client that answered the ping was closed")
	}
	if code := readUntilClose(t, silent); code != protocol.ClosePolicyViolation {
		t.Fatalf("silent client: close code %d, want %d (ping timeout)", code, protocol.ClosePolicyViolation)
	}
	// The answering one still works.
	_ = answering.SetReadDeadline(time.Time{})
	if err := answering.Write([]byte(`{"type":"req","id":"h1","method":"health"}`)); err != nil {
		t.Fatal(err)
	}
	_ = answering.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 100 {
		msg, err := answering.Read()
		if err != nil {
			t.Fatalf("answering client after the ping round: %v", err)
		}
		if bytes.Contains(msg, []byte(`"id":"h1"`)) {
			return
		}
	}
	t.Fatal("no health response")
}

// TestSlowConsumerIsClosed: a client that stops reading while events pile
// up past MaxBufferedBytes is closed ("slow consumer"), and its connection
// ends within closeWait even though the gateway's writer is stuck on the
// client's full socket.
func TestSlowConsumerIsClosed(t *testing.T) {
	old := closeWait
	closeWait = 500 * time.Millisecond
	t.Cleanup(func() { closeWait = old })
	s, url := liveServer(t)
	p := dialPipe(t, url) // never read
	c := serverConn(t, s, p)

	payload := []byte(`"` + string(bytes.Repeat([]byte("x"), 1<<20)) + `"`)
	sent := 0
	for ; sent < 2*protocol.MaxBufferedBytes/len(payload) && !c.isClosed(); sent++ {
		c.sendEvent("test.flood", payload, nil)
	}
	if !c.isClosed() {
		t.Fatalf("%d MiB queued for a client that reads nothing and it is still open", sent)
	}
	select {
	case <-c.done:
	case <-time.After(closeWait + 5*time.Second):
		t.Fatalf("the slow consumer's connection did not end within %s of its close", closeWait+5*time.Second)
	}
}

// isClosed reports whether close was called.
func (c *wsConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
