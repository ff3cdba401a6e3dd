package gateway_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

const testToken = "extension-test-token"

// testExt exercises every extension hook.
type testExt struct {
	mu        sync.Mutex
	host      gateway.Host
	connected []string
	gone      []string
	release   chan struct{}
	devTok    string
}

func (e *testExt) Name() string     { return "test" }
func (e *testExt) Events() []string { return []string{"test.event"} }
func (e *testExt) Bind(h gateway.Host) {
	e.mu.Lock()
	e.host = h
	e.mu.Unlock()
}

func (e *testExt) Methods() []gateway.Method {
	type echoParams struct {
		Text string `json:"text"`
	}
	return []gateway.Method{
		{Name: "test.echo", Scope: protocol.ScopeRead, Handler: func(_ context.Context, c *gateway.Call) (any, *protocol.Error) {
			var p echoParams
			if perr := c.Decode("", &p); perr != nil {
				return nil, perr
			}
			c.Peer.SendEvent("test.event", map[string]string{"echo": p.Text})
			return map[string]any{"text": p.Text, "conn": c.Peer.ConnID(), "role": c.Peer.Role()}, nil
		}},
		{Name: "test.block", Scope: protocol.ScopeRead, Async: true, Handler: func(ctx context.Context, c *gateway.Call) (any, *protocol.Error) {
			select {
			case <-e.release:
			case <-time.After(10 * time.Second):
			}
			return "released", nil
		}},
		{Name: "test.twostage", Scope: protocol.ScopeWrite, Handler: func(_ context.Context, c *gateway.Call) (any, *protocol.Error) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				c.Peer.Respond(c.ID, map[string]string{"status": "ok"}, nil)
			}()
			return map[string]string{"status": "accepted"}, nil
		}},
		{Name: "test.admin", Scope: protocol.ScopeAdmin, Handler: func(context.Context, *gateway.Call) (any, *protocol.Error) {
			return true, nil
		}},
	}
}

func (e *testExt) Routes() []gateway.Route {
	return []gateway.Route{{Pattern: "POST /test/private", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		h := e.host
		e.mu.Unlock()
		if !h.AuthorizeHTTP(w, r) {
			return
		}
		io.WriteString(w, "secret ok")
	})}}
}

func (e *testExt) Connected(p *gateway.Peer) {
	e.mu.Lock()
	e.connected = append(e.connected, p.ConnID())
	e.mu.Unlock()
}

func (e *testExt) Disconnected(p *gateway.Peer) {
	e.mu.Lock()
	e.gone = append(e.gone, p.ConnID())
	e.mu.Unlock()
}

// Admit refuses nodes without a device, and hands paired devices a token.
func (e *testExt) Admit(p *gateway.Peer) *protocol.Error {
	if p.Role() != protocol.RoleNode {
		return nil
	}
	if p.DeviceID() == "" {
		return &protocol.Error{Code: protocol.ErrNotPaired, Message: "pairing required"}
	}
	p.IssueDeviceToken(e.devTok)
	return nil
}

func (e *testExt) AuthenticateDevice(deviceID, role, token string) bool {
	return role == protocol.RoleNode && token == e.devTok
}

func startServer(t testing.TB, ext gateway.Extension) string {
	t.Helper()
	return startServerWith(t, ext, gateway.Options{})
}

// startServerWith starts a server with o (auth, version and the extension
// filled in).
func startServerWith(t testing.TB, ext gateway.Extension, o gateway.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Settings = gateway.Settings{Auth: gateway.AuthSettings{Mode: "token", Token: testToken, MaxAttempts: 3}}
	o.Version, o.Extensions = "test", []gateway.Extension{ext}
	s := gateway.New(o)
	s.Serve([]net.Listener{ln})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Close()
		_ = s.Shutdown(ctx, "test over", 0)
	})
	return "ws://" + ln.Addr().String()
}

func TestExtensionMethodsEventsAndHooks(t *testing.T) {
	ext := &testExt{release: make(chan struct{}), devTok: "node-cred"}
	url := startServer(t, ext)
	c := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, Scopes: []string{protocol.ScopeRead}})

	h := c.Hello()
	if !slices.Contains(h.Features.Methods, "test.echo") || !slices.Contains(h.Features.Events, "test.event") {
		t.Fatalf("hello-ok features do not list the extension: %+v", h.Features)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// An async call blocks; a sync call on the same connection still answers.
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "test.block", nil)
		blocked <- err
	}()
	var got struct{ Text, Conn, Role string }
	if err := c.CallInto(ctx, "test.echo", map[string]string{"text": "hi"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Text != "hi" || got.Conn != h.Server.ConnID || got.Role != protocol.RoleOperator {
		t.Fatalf("test.echo = %+v", got)
	}
	select {
	case err := <-blocked:
		t.Fatalf("async call answered before release: %v", err)
	default:
	}
	close(ext.release)
	if err := <-blocked; err != nil {
		t.Fatalf("async call: %v", err)
	}
	waitEvent(t, c, "test.event")

	// Strict params, scopes.
	var ce *client.CallError
	if _, err := c.Call(ctx, "test.echo", map[string]any{"text": "x", "extra": 1}); !errors.As(err, &ce) || !strings.Contains(ce.Err.Message, "invalid test.echo params") {
		t.Fatalf("unknown param: %v", err)
	}
	if _, err := c.Call(ctx, "test.twostage", nil); !errors.As(err, &ce) || ce.Err.Code != protocol.ErrForbidden {
		t.Fatalf("write method with read scope: %v", err)
	}
	if _, err := c.Call(ctx, "test.admin", nil); !errors.As(err, &ce) || ce.Err.Code != protocol.ErrForbidden {
		t.Fatalf("admin method with read scope: %v", err)
	}

	ext.mu.Lock()
	conns := slices.Clone(ext.connected)
	ext.mu.Unlock()
	if !slices.Contains(conns, h.Server.ConnID) {
		t.Fatalf("Connected not called for %s: %v", h.Server.ConnID, conns)
	}
	ext.mu.Lock()
	h0 := ext.host
	ext.mu.Unlock()
	peer, ok := h0.Peer(h.Server.ConnID)
	if !ok || peer.Closed() {
		t.Fatalf("Host.Peer(%s) = %v, closed=%v", h.Server.ConnID, ok, ok && peer.Closed())
	}
	c.Close()
	select {
	case <-peer.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Peer.Done did not fire after the client closed")
	}
	if !peer.Closed() {
		t.Fatal("Peer.Closed false after Done")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ext.mu.Lock()
		done := slices.Contains(ext.gone, h.Server.ConnID)
		ext.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Disconnected not called")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitEvent(t *testing.T, c *client.Conn, name string) client.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 5s", name)
		}
	}
}

func TestExtensionTwoStageResponse(t *testing.T) {
	url := startServer(t, &testExt{release: make(chan struct{})})
	c := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := c.Call(ctx, "test.twostage", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "accepted") {
		t.Fatalf("first stage = %s", first)
	}
	// The second response carries the same id; the client reports frames
	// it has no caller for, and the connection stays healthy.
	var ok bool
	if err := c.CallInto(ctx, "test.admin", nil, &ok); err != nil || !ok {
		t.Fatalf("connection after two-stage response: %v %v", ok, err)
	}
}

func TestExtensionAdmitAndDeviceToken(t *testing.T) {
	ext := &testExt{release: make(chan struct{}), devTok: "node-cred"}
	url := startServer(t, ext)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A node without a device is refused by the Admitter: NOT_PAIRED, 1008.
	_, err := client.Dial(ctx, client.Options{URL: url, Token: testToken, Role: protocol.RoleNode, ClientID: "node-host", Mode: "node"})
	var de *client.DialError
	if !errors.As(err, &de) || de.Server == nil || de.Server.Code != protocol.ErrNotPaired || de.CloseCode != protocol.ClosePolicyViolation {
		t.Fatalf("unpaired node: %v", err)
	}

	// With a device it is admitted and gets its device token in hello-ok.
	_, key, _ := ed25519.GenerateKey(nil)
	node := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, Role: protocol.RoleNode, ClientID: "node-host", Mode: "node", Device: key})
	if node.Hello().Auth.DeviceToken != "node-cred" {
		t.Fatalf("hello-ok auth = %+v", node.Hello().Auth)
	}
	// The device token replaces the shared token, for that device only.
	gatewaydtest.Dial(t, client.Options{URL: url, Token: "node-cred", Role: protocol.RoleNode, ClientID: "node-host", Mode: "node", Device: key})
	if _, err := client.Dial(ctx, client.Options{URL: url, Token: "node-cred", Role: protocol.RoleNode, ClientID: "node-host", Mode: "node"}); err == nil {
		t.Fatal("device token accepted without the device proof")
	}
	if _, err := client.Dial(ctx, client.Options{URL: url, Token: "node-cred"}); err == nil {
		t.Fatal("device token accepted for an operator")
	}
}

func TestExtensionHTTPRouteAuth(t *testing.T) {
	url := startServer(t, &testExt{release: make(chan struct{})})
	base := "http://" + strings.TrimPrefix(url, "ws://")
	post := func(tok string) (int, string, http.Header) {
		req, _ := http.NewRequest("POST", base+"/test/private", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := post(testToken); code != 200 || body != "secret ok" {
		t.Fatalf("good token: %d %s", code, body)
	}
	code, body, _ := post("")
	var e struct {
		Error struct{ Message, Type string }
	}
	if json.Unmarshal([]byte(body), &e); code != 401 || e.Error.Type != "unauthorized" {
		t.Fatalf("no token: %d %s", code, body)
	}
	// MaxAttempts is 3: the third failure locks the address out.
	post("wrong")
	code, _, hdr := post("wrong")
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("after repeated failures: %d, Retry-After %q", code, hdr.Get("Retry-After"))
	}
	// Unrouted paths stay 404; GET on the POST route is not served.
	resp, err := http.Get(base + "/test/private")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET on a POST route: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/nothing: %d", resp.StatusCode)
	}
}
