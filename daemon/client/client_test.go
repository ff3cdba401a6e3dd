package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// startGateway runs a fresh gatewayd for one test and stops it (by PID) at
// the end.
func startGateway(t *testing.T, args ...string) *gatewaydtest.Gateway {
	t.Helper()
	return gatewaydtest.StartT(t, gatewaydtest.Options{Args: args})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialHelloAndHealth(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead}})

	h := c.Hello()
	if h.Type != "hello-ok" || h.Protocol != protocol.Version {
		t.Errorf("hello type %q protocol %d, want hello-ok 4", h.Type, h.Protocol)
	}
	if h.Server.Version == "" || h.Server.ConnID == "" {
		t.Errorf("hello server = %+v, want version and connId", h.Server)
	}
	if h.Auth.Role != protocol.RoleOperator {
		t.Errorf("granted role %q, want operator", h.Auth.Role)
	}
	if len(h.Snapshot.Presence) == 0 {
		t.Errorf("hello snapshot has no presence (the gateway itself is an entry)")
	}
	if h.Policy.MaxPayload <= 0 {
		t.Errorf("hello policy.maxPayload = %d", h.Policy.MaxPayload)
	}

	var health struct {
		OK bool `json:"ok"`
	}
	if err := c.CallInto(ctxT(t), "health", struct{}{}, &health); err != nil {
		t.Fatalf("health: %v", err)
	}
	if !health.OK {
		t.Errorf("health ok = false")
	}
	// status takes no params: nil must leave the field out, which the
	// strict server accepts.
	if _, err := c.Call(ctxT(t), "status", nil); err != nil {
		t.Errorf("status without params: %v", err)
	}
}

func TestURLForms(t *testing.T) {
	g := startGateway(t)
	hostPort := strings.TrimPrefix(g.URL, "ws://")
	for _, u := range []string{g.URL, g.URL + "/", "http://" + hostPort, hostPort} {
		t.Run(u, func(t *testing.T) {
			c := gatewaydtest.Dial(t, client.Options{URL: u, Token: g.Token})
			if want := "ws://" + hostPort + "/"; c.URL() != want {
				t.Errorf("URL() = %q, want %q", c.URL(), want)
			}
		})
	}
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"ws://127.0.0.1:18789", "ws://127.0.0.1:18789/", ""},
		{"http://127.0.0.1:18789", "ws://127.0.0.1:18789/", ""},
		{"https://gw.example:443/base", "wss://gw.example:443/base", ""},
		{"127.0.0.1:1", "ws://127.0.0.1:1/", ""},
		{"wss://h/", "wss://h/", ""},
		{"", "", "empty"},
		{"ftp://h:1", "", `scheme "ftp"`},
		{"ws://", "", "no host"},
	}
	for _, tt := range tests {
		got, err := client.NormalizeURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeURL(%q) error = %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCallErrors(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token,
		Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopeAdmin}})
	tests := []struct {
		method  string
		params  any
		code    string
		message string
	}{
		{"bogus.method", nil, protocol.ErrInvalidRequest, "unknown method: bogus.method"},
		{"health", json.RawMessage(`{"nope":1}`), protocol.ErrInvalidRequest, "invalid health params"},
		{"logs.tail", map[string]any{"limit": "ten"}, protocol.ErrInvalidRequest, "invalid logs.tail params"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			_, err := c.Call(ctxT(t), tt.method, tt.params)
			var ce *client.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("Call(%s) error = %v, want *CallError", tt.method, err)
			}
			if ce.Method != tt.method || ce.Err.Code != tt.code || !strings.Contains(ce.Err.Message, tt.message) {
				t.Errorf("CallError = %s/%s/%q, want %s/%s/%q", ce.Method, ce.Err.Code, ce.Err.Message, tt.method, tt.code, tt.message)
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Errorf("CallError does not unwrap to *protocol.Error")
			}
		})
	}
	// The connection survives RPC errors.
	if _, err := c.Call(ctxT(t), "health", nil); err != nil {
		t.Errorf("health after errors: %v", err)
	}
	// Params that are not JSON never reach the wire.
	if _, err := c.Call(ctxT(t), "health", json.RawMessage(`{`)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("invalid raw params: err = %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token})
	const workers, calls = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				// Alternate methods so a response routed to the wrong
				// pending request would be noticed.
				if i%2 == 0 {
					var h struct{ OK *bool }
					if err := c.CallInto(context.Background(), "health", nil, &h); err != nil || h.OK == nil {
						errs <- fmt.Errorf("health: %v (ok field %v)", err, h.OK)
					}
				} else {
					var p []protocol.PresenceEntry
					if err := c.CallInto(context.Background(), "system-presence", nil, &p); err != nil || len(p) == 0 {
						errs <- fmt.Errorf("system-presence: %v (%d entries)", err, len(p))
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallContext(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, "health", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Call with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := c.Call(ctxT(t), "health", nil); err != nil {
		t.Errorf("the connection must stay usable after a canceled call: %v", err)
	}
}

// dialTargets starts a gateway and returns it with the bad targets of the
// dial-error tests: the URL of a loopback port where nothing listens, and
// the address of a peer that accepts TCP and never answers (the upgrade
// must time out).
func dialTargets(t *testing.T) (g *gatewaydtest.Gateway, refusedURL, silent string) {
	t.Helper()
	g = startGateway(t)
	return g, fmt.Sprintf("ws://127.0.0.1:%d", gatewaydtest.Port(t)), silentPeer(t)
}

func TestDialErrors(t *testing.T) {
	g, refusedURL, silent := dialTargets(t)
	tests := []struct {
		name        string
		o           client.Options
		stage       string
		detail      string
		closeCode   int
		auth        bool
		unreachable bool
		msg         []string
	}{
		{name: "refused", o: client.Options{URL: refusedURL}, stage: client.StageConnect, unreachable: true,
			msg: []string{"gateway not reachable at " + refusedURL + ": connection refused (is gatewayd running? check with: gatewayctl status)"}},
		{name: "silent peer", o: client.Options{URL: "ws://" + silent, HandshakeTimeout: 300 * time.Millisecond},
			stage: client.StageConnect, unreachable: true, msg: []string{"no answer within 300ms"}},
		{name: "wrong token", o: client.Options{URL: g.URL, Token: "wrong"}, stage: client.StageHandshake,
			detail: protocol.DetailAuthTokenMismatch, closeCode: protocol.ClosePolicyViolation, auth: true,
			msg: []string{"rejected the connection", "token mismatch", "[AUTH_TOKEN_MISMATCH]", "(pass --token or set GATEWAY_TOKEN)"}},
		{name: "protocol mismatch", o: client.Options{URL: g.URL, Token: g.Token, MinProtocol: 5, MaxProtocol: 6},
			stage: client.StageHandshake, detail: protocol.DetailProtocolMismatch, closeCode: protocol.CloseProtocolError,
			msg: []string{"protocol mismatch", "this client speaks protocol 5..6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			de := dialError(t, tt.o)
			if de.Stage != tt.stage || de.DetailCode() != tt.detail || de.IsAuth() != tt.auth || de.IsUnreachable() != tt.unreachable {
				t.Errorf("stage %q detail %q auth %v unreachable %v; want %q %q %v %v",
					de.Stage, de.DetailCode(), de.IsAuth(), de.IsUnreachable(), tt.stage, tt.detail, tt.auth, tt.unreachable)
			}
			if tt.closeCode != 0 && de.CloseCode != tt.closeCode {
				t.Errorf("close code %d (%q), want %d", de.CloseCode, de.CloseReason, tt.closeCode)
			}
			for _, m := range tt.msg {
				if !strings.Contains(de.Error(), m) {
					t.Errorf("error %q does not contain %q", de, m)
				}
			}
		})
	}
}

// dialError dials o and returns the *DialError the dial must fail with.
func dialError(t *testing.T, o client.Options) *client.DialError {
	t.Helper()
	c, err := client.Dial(context.Background(), o)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded, want an error")
	}
	var de *client.DialError
	if !errors.As(err, &de) {
		t.Fatalf("Dial error %T %v, want *DialError", err, err)
	}
	return de
}

func TestDialMissingToken(t *testing.T) {
	g := startGateway(t)
	_, err := client.Dial(context.Background(), client.Options{URL: g.URL})
	var de *client.DialError
	if !errors.As(err, &de) || !de.IsAuth() {
		t.Fatalf("Dial without a token: %v, want an auth DialError", err)
	}
	if !strings.Contains(err.Error(), "GATEWAY_TOKEN") {
		t.Errorf("error %q does not name the fix", err)
	}
	// Callers may replace the fix (gatewayctl adds the token file).
	de.Fix = "look in /x"
	if !strings.HasSuffix(de.Error(), "(look in /x)") {
		t.Errorf("custom fix not rendered: %q", de.Error())
	}
}

func TestDialWrongPath(t *testing.T) {
	g := startGateway(t)
	_, err := client.Dial(context.Background(), client.Options{URL: g.URL + "/not-the-gateway", Token: g.Token})
	var de *client.DialError
	if !errors.As(err, &de) {
		t.Fatalf("Dial to a non-WebSocket path: %v, want *DialError", err)
	}
	if de.HTTPStatus == 0 || de.IsUnreachable() || !strings.Contains(err.Error(), "refused the WebSocket upgrade") {
		t.Errorf("DialError = %q (HTTP %d), want a refused upgrade", err, de.HTTPStatus)
	}
}

func TestDeviceProof(t *testing.T) {
	g := startGateway(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, Device: priv, ClientID: "gateway-client", Mode: "backend",
		Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite}, Caps: []string{}, Commands: []string{}})
	if _, err := c.Call(ctxT(t), "health", nil); err != nil {
		t.Errorf("health over a device-signed connection: %v", err)
	}
}

// attached makes sure the gateway delivers events to c: it starts doing so
// just after sending hello-ok, so one round trip after Dial is the barrier.
// (Without it, an event broadcast between the hello-ok snapshot and the
// server attaching the connection is in neither.)
func attached(t *testing.T, c *client.Conn) {
	t.Helper()
	if _, err := c.Call(ctxT(t), "health", nil); err != nil {
		t.Fatal(err)
	}
}

// nextEvent returns the next event with the given name, bounded in time.
func nextEvent(t *testing.T, c *client.Conn, name string) client.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %q", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within 5s", name)
		}
	}
}

func TestPresenceEvents(t *testing.T) {
	g := startGateway(t)
	a := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, InstanceID: "watcher"})
	attached(t, a)
	// A backend client: one-off cli connections are not presence entries.
	b := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, InstanceID: "poster", ClientID: "gateway-client", Mode: "backend",
		Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopeAdmin}}) // system-event is admin, as in OpenClaw

	ev := nextEvent(t, a, "presence")
	if ev.Seq < 1 || ev.StateVersion == nil || ev.StateVersion.Presence < 1 {
		t.Errorf("presence event seq %d stateVersion %+v, want seq ≥ 1 and a stateVersion", ev.Seq, ev.StateVersion)
	}
	if !strings.Contains(string(ev.Payload), "poster") {
		t.Errorf("presence payload %s does not name the new client", ev.Payload)
	}
	if _, err := b.Call(ctxT(t), "system-event", protocol.SystemEventParams{Text: "hello from the test"}); err != nil {
		t.Fatalf("system-event: %v", err)
	}
	for {
		ev2 := nextEvent(t, a, "presence")
		if ev2.Seq <= ev.Seq {
			t.Fatalf("seq went from %d to %d", ev.Seq, ev2.Seq)
		}
		if strings.Contains(string(ev2.Payload), "hello from the test") {
			break
		}
		ev = ev2
	}
	if a.Gaps() != 0 {
		t.Errorf("Gaps() = %d on a connection that kept up", a.Gaps())
	}
}

func TestEventOverflowReportsGap(t *testing.T) {
	g := startGateway(t)
	// A consumer that never reads, with the smallest buffer: one event fits,
	// the last slot is the gap marker's.
	a := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, EventBuffer: 2})
	attached(t, a)
	b := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, ClientID: "gateway-client", Mode: "backend", Scopes: []string{protocol.ScopeAdmin}})
	for i := range 4 {
		// Past the gateway's 50 ms presence coalescing window, so each
		// note is an event of its own.
		time.Sleep(80 * time.Millisecond)
		if _, err := b.Call(ctxT(t), "system-event", protocol.SystemEventParams{Text: fmt.Sprintf("note %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// b's connect and four notes are five presence events; a holds one and
	// must count the rest as missed.
	deadline := time.Now().Add(5 * time.Second)
	for a.Gaps() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("Gaps() = %d after 5s, want ≥ 4", a.Gaps())
		}
		time.Sleep(5 * time.Millisecond) // polling a counter the read loop updates
	}
	first := <-a.Events()
	second := <-a.Events()
	if first.Name != "presence" || second.Name != client.EventGap {
		t.Errorf("events = %q, %q; want presence then %q", first.Name, second.Name, client.EventGap)
	}
}

func TestShutdownAndClosed(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token})
	if err := g.Stop(); err != nil {
		t.Errorf("gatewayd did not exit cleanly on SIGTERM: %v\n%s", err, g.Output())
	}
	sawShutdown := false
	for ev := range c.Events() { // closed when the connection ends
		if ev.Name == "shutdown" {
			sawShutdown = true
		}
	}
	if !sawShutdown {
		t.Errorf("no shutdown event before the close")
	}
	<-c.Done()
	if code, _ := c.CloseStatus(); code != protocol.CloseServiceRestart {
		t.Errorf("close code %d, want %d", code, protocol.CloseServiceRestart)
	}
	if _, err := c.Call(context.Background(), "health", nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Call after close: %v, want ErrClosed", err)
	}
}

func TestClose(t *testing.T) {
	g := startGateway(t)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token})
	if code, _ := c.CloseStatus(); code != 0 {
		t.Errorf("CloseStatus of an open connection = %d, want 0", code)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, ok := <-c.Events(); ok {
		t.Errorf("Events still open after Close")
	}
	if code, _ := c.CloseStatus(); code != 1000 {
		t.Errorf("CloseStatus after Close = %d, want 1000", code)
	}
}

func TestStoppingGatewayIsRetryable(t *testing.T) {
	// A gateway that is stopping answers the upgrade with 503: retry later.
	de := &client.DialError{URL: "ws://127.0.0.1:1", Stage: client.StageConnect, HTTPStatus: 503}
	if !de.IsUnreachable() || !strings.Contains(de.Error(), "try again in a moment") {
		t.Fatalf("503 upgrade: unreachable=%v, %q", de.IsUnreachable(), de.Error())
	}
	de = &client.DialError{URL: "ws://127.0.0.1:1", Stage: client.StageConnect, HTTPStatus: 404}
	if de.IsUnreachable() || !strings.Contains(de.Error(), "check --url") {
		t.Fatalf("404 upgrade: unreachable=%v, %q", de.IsUnreachable(), de.Error())
	}
}

// silentPeer listens on loopback, accepts TCP connections and never says
// a word; it returns the address. Everything closes when t ends.
func silentPeer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
