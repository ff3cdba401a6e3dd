package gateway_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gobwas/ws"
)

// Tests against the real gatewayd binary: Host/Origin/Content-Type
// guards, rate limits, connection and body bounds, system-event bounds.
// Each reproduces an attack a review made on a released binary.

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

func httpDo(t *testing.T, method, url string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Item 4: with auth mode none (allowed on loopback) a web page's
// text/plain cross-site POST ran a tool. Now it is refused, while a JSON
// request from a non-browser still runs it.
func TestBinaryCrossSiteToolInvokeRefused(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Bare: true, Config: `{"gateway":{"auth":{"mode":"none"}}}`})
	url := g.HTTPURL + "/tools/invoke"
	body := `{"tool":"gateway.status"}`
	// What a <form> or fetch(no-cors) on another site sends.
	code, out := httpDo(t, "POST", url, map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, body)
	if code != http.StatusForbidden || strings.Contains(out, `"profile"`) {
		t.Fatalf("cross-site text/plain POST: %d %s, want 403 and no tool output", code, out)
	}
	code, out = httpDo(t, "POST", url, map[string]string{"Content-Type": "text/plain"}, body)
	if code != http.StatusUnsupportedMediaType || !strings.Contains(out, "application/json") {
		t.Fatalf("text/plain POST: %d %s, want 415 naming application/json", code, out)
	}
	code, out = httpDo(t, "POST", url, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, body)
	if code != http.StatusForbidden {
		t.Fatalf("JSON POST from a foreign origin: %d %s, want 403", code, out)
	}
	code, out = httpDo(t, "POST", url, map[string]string{"Content-Type": "application/json"}, body)
	if code != http.StatusOK || !strings.Contains(out, `"profile"`) {
		t.Fatalf("JSON POST without Origin: %d %s, want the tool's output", code, out)
	}
	code, _ = httpDo(t, "POST", url, map[string]string{"Content-Type": "application/json", "Origin": g.HTTPURL}, body)
	if code != http.StatusOK {
		t.Fatalf("same-origin JSON POST: %d, want 200", code)
	}
}

// upgrade sends a WebSocket upgrade with host and origin on a raw
// connection and returns the status line.
func upgrade(t *testing.T, addr, host, origin string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n", host, key, origin)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("upgrade with Host %s: %v", host, err)
	}
	return strings.TrimSpace(line)
}

// Item 4: DNS rebinding. The page's name resolves to 127.0.0.1, so its
// Origin equals its Host and the old origin check let it upgrade (101).
func TestBinaryDNSRebindingRefused(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", g.Port)
	evil := fmt.Sprintf("rebind.attacker.example:%d", g.Port)
	if got := upgrade(t, addr, evil, "http://"+evil); strings.Contains(got, "101") || !strings.Contains(got, "421") {
		t.Fatalf("upgrade with Host %s: %q, want 421", evil, got)
	}
	if code, _ := httpDo(t, "GET", g.HTTPURL+"/", map[string]string{"Host": evil}, ""); code != http.StatusMisdirectedRequest {
		t.Fatalf("GET / with Host %s: %d, want 421", evil, code)
	}
	for _, host := range []string{addr, fmt.Sprintf("localhost:%d", g.Port)} {
		if got := upgrade(t, addr, host, "http://"+host); !strings.Contains(got, "101") {
			t.Fatalf("upgrade with Host %s: %q, want 101", host, got)
		}
	}
	// A configured name (a local reverse proxy) is allowed.
	g2 := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{"gateway":{"allowedHosts":["gw.example.lan"]}}`})
	name := fmt.Sprintf("gw.example.lan:%d", g2.Port)
	if got := upgrade(t, fmt.Sprintf("127.0.0.1:%d", g2.Port), name, "http://"+name); !strings.Contains(got, "101") {
		t.Fatalf("upgrade with the allowed Host %s: %q, want 101", name, got)
	}
}

const hooksToken = "hooks-token-0123456789abcdef"

// Item 5: one good /hooks/wake used to erase the gateway token's failure
// count, so a holder of the hooks token could guess the gateway token
// forever; and a lockout refused even the right token, so any local user
// could lock the operator out.
func TestBinaryRateLimitPerCredential(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{"gateway":{"auth":{"rateLimit":{"maxAttempts":5}}},
		"hooks":{"enabled":true,"token":"` + hooksToken + `","requestsPerMinute":1000}}`})
	tools := g.HTTPURL + "/tools/invoke"
	js := map[string]string{"Content-Type": "application/json"}
	bearer := func(tok string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}
	}
	body := `{"tool":"gateway.status"}`
	var last int
	for i := range 12 {
		if code, out := httpDo(t, "POST", g.HTTPURL+"/hooks/wake", bearer(hooksToken), `{"text":"hi"}`); code != 200 {
			t.Fatalf("wake %d: %d %s", i, code, out)
		}
		last, _ = httpDo(t, "POST", tools, bearer(fmt.Sprintf("guess-%d", i)), body)
		if last == http.StatusTooManyRequests {
			t.Logf("locked out after %d guesses interleaved with good hooks calls", i+1)
			break
		}
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("12 wrong gateway tokens interleaved with good hooks calls: last %d, want 429", last)
	}
	// The hooks token still works: its kind is not locked.
	if code, out := httpDo(t, "POST", g.HTTPURL+"/hooks/wake", bearer(hooksToken), `{"text":"hi"}`); code != 200 {
		t.Fatalf("hooks during a gateway-token lockout: %d %s", code, out)
	}
	// The operator on loopback with the right token is not locked out,
	// over HTTP or WebSocket; a wrong token still is.
	if code, out := httpDo(t, "POST", tools, bearer(g.Token), body); code != 200 {
		t.Fatalf("right token during the lockout: %d %s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token})
	if err != nil {
		t.Fatalf("connect with the right token during the lockout: %v", err)
	}
	c.Close()
	_, err = client.Dial(ctx, client.Options{URL: g.URL, Token: "wrong"})
	var de *client.DialError
	if !errors.As(err, &de) || de.DetailCode() != protocol.DetailAuthRateLimited {
		t.Fatalf("connect with a wrong token during the lockout: %v, want %s", err, protocol.DetailAuthRateLimited)
	}
	if code, _ := httpDo(t, "POST", tools, js, body); code != http.StatusTooManyRequests {
		t.Fatalf("no token during the lockout: %d, want 429", code)
	}
}

// raiseNoFile lifts the soft open-files limit to the hard one (the
// gatewayd children inherit it) and returns the soft limit now in force.
func raiseNoFile(t *testing.T) uint64 {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			t.Fatal(err)
		}
	}
	return r.Cur
}

// preAuthConn upgrades a raw connection, reads the challenge, and sends a
// frame header declaring n bytes followed by 10 of them.
func preAuthConn(addr string, n int64) (net.Conn, error) {
	c, _, err := gatewaydtest.RawUpgrade(addr, "")
	if err != nil {
		return nil, err
	}
	if err := ws.WriteHeader(c, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: n}); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write([]byte(`{"type":"r`)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Item 6: 3,000 connections that each declared a 64 KiB frame took RSS
// from 19 to 281 MB, because the buffer was allocated when the header
// arrived. Now a connection costs what it sent.
func TestBinaryPreAuthFrameMemory(t *testing.T) {
	const n = 1500
	if lim := raiseNoFile(t); lim < 2*n+200 {
		t.Skipf("SKIPPING: the open-files limit is %d, this test needs %d (raise it with ulimit -n)", lim, 2*n+200)
	}
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{"gateway":{"limits":{"maxPreAuthPerIp":5000}}}`})
	addr := fmt.Sprintf("127.0.0.1:%d", g.Port)
	// Warm up (the first connections grow pools that stay).
	for range 2 {
		c, err := preAuthConn(addr, protocol.PreHelloMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	before, err := g.RSS()
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := preAuthConn(addr, protocol.PreHelloMaxFrame)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // let the last frames' bytes be read
	after, err := g.RSS()
	if err != nil {
		t.Fatal(err)
	}
	per := (after - before) / n
	t.Logf("RSS %.1f MB → %.1f MB with %d pre-auth connections each declaring %d bytes: %.1f KB per connection",
		float64(before)/1e6, float64(after)/1e6, n, protocol.PreHelloMaxFrame, float64(per)/1e3)
	// Before: the declared 64 KiB each, on top of the connection itself.
	if per > 48<<10 {
		t.Fatalf("%d bytes of RSS per pre-auth connection; a declared frame must not be allocated before it arrives", per)
	}
}

// Item 6: past the per-address cap connections get 503 and one log line
// per interval, not one per refusal.
func TestBinaryConnectionCap(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{"gateway":{"limits":{"maxPreAuthPerIp":10}}}`})
	addr := fmt.Sprintf("127.0.0.1:%d", g.Port)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 10 {
		c, err := preAuthConn(addr, 100)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	start := time.Now()
	for i := range 20 {
		code, out := httpDo(t, "GET", g.HTTPURL+"/healthz", nil, "")
		if code != http.StatusServiceUnavailable || !strings.Contains(out, "too many connections") {
			t.Fatalf("refusal %d: %d %s", i, code, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("connect past the cap: %v, want 503", err)
	}
	// One line per 10 s (capLogEvery), however slow this machine is.
	if n, most := strings.Count(g.Output(), "connection refused: too many connections"), 1+int(time.Since(start)/(10*time.Second)); n < 1 || n > most {
		t.Fatalf("%d log lines for 21 refusals in %s, want 1 to %d", n, time.Since(start).Round(time.Millisecond), most)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := httpDo(t, "GET", g.HTTPURL+"/healthz", nil, "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d 10s after the held connections closed", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Item 9: a 10 KB system-event was accepted, kept forever, logged whole,
// and sent as presence to nodes. The operator must still see its note.
func TestBinarySystemEventBounded(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Mode: "backend"})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	// A peer without operator.read (a node, or as here a pairing-only
	// operator: a node needs pairing first, see the in-process test).
	node, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopePairing}, Mode: "backend"})
	if err != nil {
		t.Fatal(err)
	}
	if h := fmt.Sprint(node.Hello().Snapshot.Health); strings.Contains(h, "components") {
		t.Fatalf("hello-ok health for a peer without operator.read: %s", h)
	}
	defer node.Close()
	big := strings.Repeat("A", 10_000)
	if _, err := op.Call(ctx, "system-event", map[string]any{"text": big}); err == nil {
		t.Fatal("a 10 KB system-event was accepted")
	}
	if _, err := op.Call(ctx, "system-event", map[string]any{"text": "operator note: " + strings.Repeat("b", 200)}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(g.Output(), strings.Repeat("b", 200)) {
		t.Fatal("the note's text is in the log")
	}
	for sawNote := false; !sawNote; {
		select {
		case ev := <-op.Events():
			sawNote = ev.Name == "presence" && strings.Contains(string(ev.Payload), "operator note")
		case <-ctx.Done():
			t.Fatal("the operator never saw its note's presence event")
		}
	}
	deadline := time.After(200 * time.Millisecond)
	for {
		select {
		case ev := <-node.Events():
			if ev.Name == "presence" || ev.Name == "health" {
				t.Fatalf("the node received %s: %s", ev.Name, ev.Payload)
			}
			continue
		case <-deadline:
		}
		break
	}
}
