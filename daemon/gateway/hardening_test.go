package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gobwas/ws"
)

// Failures count per credential kind and per client (IPv6
// by /64), in an LRU that never grows past its bound.
func TestRateLimiterKindsKeysAndBound(t *testing.T) {
	a := &AuthSettings{MaxAttempts: 3, Window: time.Minute, Lockout: time.Minute}
	r := newRateLimiter()
	now := time.Now()
	for range 2 {
		r.fail(kindGateway, "192.0.2.7:1000", now, a)
	}
	// A success with another credential does not erase the gateway
	// token's failures: the next gateway failure locks.
	r.success(kindSecret("hooks-token-0123456789"), "192.0.2.7:1001", now)
	if _, locked := r.fail(kindGateway, "192.0.2.7:1002", now, a); !locked {
		t.Fatal("a success with the hooks token reset the gateway token's failures")
	}
	if _, locked := r.locked(kindSecret("hooks-token-0123456789"), "192.0.2.7:1", now); locked {
		t.Fatal("a gateway-token lockout also locks the hooks token")
	}
	// A success during the lockout does not end it.
	r.success(kindGateway, "192.0.2.7:1", now)
	if _, locked := r.locked(kindGateway, "192.0.2.7:1", now); !locked {
		t.Fatal("a success ended a lockout")
	}
	// IPv6: one /64 is one client.
	for i := range 3 {
		r.fail(kindGateway, fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), now, a)
	}
	if _, locked := r.locked(kindGateway, "[2001:db8:1:2:ffff::9]:1", now); !locked {
		t.Fatal("failures from one /64 under rotating addresses did not lock the /64")
	}
	if _, locked := r.locked(kindGateway, "[2001:db8:1:3::1]:1", now); locked {
		t.Fatal("another /64 is locked too")
	}
	// Bounded: past max the least recently used entries go, in O(1).
	r = newRateLimiter()
	r.max = 100
	r.fail(kindGateway, "198.51.100.1:1", now, &AuthSettings{MaxAttempts: 1, Window: time.Minute, Lockout: time.Minute})
	for i := range 1000 {
		r.fail(kindGateway, fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), now, a)
		if i%10 == 0 { // the locked client keeps trying, so it stays recent
			r.locked(kindGateway, "198.51.100.1:1", now)
		}
	}
	if n := r.len(); n != 100 {
		t.Fatalf("table holds %d entries, want the bound 100", n)
	}
	if _, locked := r.locked(kindGateway, "198.51.100.1:1", now); !locked {
		t.Fatal("a recently used lockout was evicted")
	}
}

// A lockout on loopback (every local user) does not keep
// out an operator with the right secret; elsewhere it refuses without
// looking at the secret.
func TestLockoutLetsLoopbackOperatorIn(t *testing.T) {
	s := New(Options{Settings: Settings{Auth: AuthSettings{Mode: "token", Token: "right", MaxAttempts: 2}}})
	a := &s.settings.Load().Auth
	for _, remote := range []string{"127.0.0.1:4000", "[::1]:4000", "192.0.2.9:4000"} {
		for range 2 {
			s.authenticate(kindGateway, remote, a, func() bool { return false })
		}
		called := false
		ok, _, limited := s.authenticate(kindGateway, remote, a, func() bool { called = true; return true })
		loop := remote != "192.0.2.9:4000"
		if ok != loop || (!loop && (called || !limited)) {
			t.Errorf("%s locked out, right secret: ok=%v limited=%v checked=%v", remote, ok, limited, called)
		}
		if ok, _, limited := s.authenticate(kindGateway, remote, a, func() bool { return false }); ok || !limited {
			t.Errorf("%s locked out, wrong secret: ok=%v limited=%v, want a rate-limited refusal", remote, ok, limited)
		}
	}
}

// After hello a header may declare 25 MiB; memory must
// follow the bytes that arrive, not the declaration. Before, readMessage
// grew the buffer to the declared length at once.
func TestReadPayloadAllocatesWhatArrives(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	tr := &wsTransport{conn: srv, br: bufio.NewReaderSize(srv, readBufferSize), closeWait: time.Second}
	tr.setReadLimit(protocol.MaxPayload)
	go func() {
		hdr := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: protocol.MaxPayload}
		_ = ws.WriteHeader(cli, hdr)
		_, _ = cli.Write(bytes.Repeat([]byte("x"), 1000))
		cli.Close()
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var buf bytes.Buffer
	_, _, err := tr.readMessage(&buf, func([]byte) {}, nil)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a truncated frame was read whole")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
		t.Fatalf("reading 1000 bytes of a frame declaring %d allocated %d bytes", protocol.MaxPayload, grew)
	}
}

// The incremental read unmasks correctly across its chunks.
func TestReadPayloadChunkedUnmask(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	tr := &wsTransport{conn: srv, br: bufio.NewReaderSize(srv, readBufferSize), closeWait: time.Second}
	tr.setReadLimit(protocol.MaxPayload)
	want := make([]byte, 300_001)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		masked := bytes.Clone(want)
		mask := [4]byte{9, 8, 7, 6}
		ws.Cipher(masked, mask, 0)
		_ = ws.WriteHeader(cli, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: int64(len(masked))})
		for len(masked) > 0 { // dribble, in odd sizes
			n := min(len(masked), 7777)
			_, _ = cli.Write(masked[:n])
			masked = masked[n:]
		}
	}()
	var buf bytes.Buffer
	_, got, err := tr.readMessage(&buf, func([]byte) {}, nil)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("err %v; payload equal: %v", err, bytes.Equal(got, want))
	}
}

// bodyExt serves a route that reads its whole body.
type bodyExt struct{}

func (bodyExt) Name() string      { return "body" }
func (bodyExt) Methods() []Method { return nil }
func (bodyExt) Events() []string  { return nil }
func (bodyExt) Bind(Host)         {}
func (bodyExt) Routes() []Route {
	return []Route{{Pattern: "POST /echo", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		w.Write(b)
	})}}
}

func guardServer(t *testing.T, st Settings) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Auth.Mode == "" {
		st.Auth = AuthSettings{Mode: "token", Token: livenessToken, MaxAttempts: 3}
	}
	s := New(Options{Version: "test", Settings: st, Extensions: []Extension{bodyExt{}}})
	s.Serve([]net.Listener{ln})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Close()
		_ = s.Shutdown(ctx, "test over", 0)
	})
	return s, ln.Addr().String()
}

// A body sent a byte at a time no longer holds the
// connection forever: it fails at BodyReadTimeout. A body that arrives in
// time works, and its connection stays usable past the deadline (the
// deadline is lifted once the body is in).
func TestSlowBodyTimesOut(t *testing.T) {
	old := BodyReadTimeout
	BodyReadTimeout = 400 * time.Millisecond
	t.Cleanup(func() { BodyReadTimeout = old })
	_, addr := guardServer(t, Settings{})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", addr)
	start := time.Now()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = io.Copy(io.Discard, c) // the answer, then EOF when the server closes
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ended:
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("slow body ended only after %s", el)
			}
			goto fast
		case <-tick.C:
			if i > 50 {
				t.Fatal("a body trickling one byte per 100ms kept the connection open for 5s")
			}
			_, _ = c.Write([]byte(" "))
		}
	}
fast:
	// A body no handler reads (a GET) is bounded the same way: net/http
	// discards it before reusing the connection.
	g, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fmt.Fprintf(g, "GET /healthz HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\n", addr)
	_ = g.SetReadDeadline(time.Now().Add(5 * time.Second))
	gotEOF := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, g); gotEOF <- err }()
	for i := 0; ; i++ {
		select {
		case err := <-gotEOF:
			// A reset is a close too: the gateway closed with the
			// trickled bytes still unread in its receive buffer.
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("a GET with a trickled body was not closed by the gateway: %v", err)
			}
			goto prompt
		case <-time.After(100 * time.Millisecond):
			_, _ = g.Write([]byte(" "))
		}
		if i > 60 {
			t.Fatal("a GET with a trickled body stayed open")
		}
	}
prompt:
	// A prompt body works, and the connection outlives the deadline.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 2 {
		resp, err := hc.Post("http://"+addr+"/echo", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"n":1}` {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		if i == 0 {
			time.Sleep(2 * BodyReadTimeout) // past the first body's deadline: the idle connection must still serve
		}
	}
}

// In-process: the guard's answers, path by path.
func TestGuardChecks(t *testing.T) {
	_, addr := guardServer(t, Settings{AllowedHosts: []string{"gw.example.lan"}, AllowedOrigins: []string{"https://ui.example"}})
	do := func(method, host, origin, ct, body string) int {
		req, _ := http.NewRequest(method, "http://"+addr+"/echo", strings.NewReader(body))
		if body == "" {
			req.Body = http.NoBody
		}
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name                     string
		method, host, origin, ct string
		want                     int
	}{
		{"json", "POST", "", "", "application/json", 200},
		{"json charset", "POST", "", "", "application/json; charset=utf-8", 200},
		{"vendor json", "POST", "", "", "application/merge-patch+json", 200},
		{"text/plain", "POST", "", "", "text/plain", 415},
		{"form", "POST", "", "", "application/x-www-form-urlencoded", 415},
		{"no type", "POST", "", "", "", 415},
		{"same origin", "POST", "", "http://" + addr, "application/json", 200},
		{"localhost same origin", "POST", "localhost:" + port, "http://localhost:" + port, "application/json", 200},
		{"allowed origin", "POST", "", "https://ui.example", "application/json", 200},
		{"foreign origin", "POST", "", "https://evil.example", "application/json", 403},
		{"null origin", "POST", "", "null", "application/json", 403},
		{"rebound host", "POST", "rebind.attacker.example:" + port, "http://rebind.attacker.example:" + port, "application/json", 421},
		{"rebound host GET", "GET", "rebind.attacker.example:" + port, "", "", 421},
		{"allowed host", "POST", "gw.example.lan:" + port, "", "application/json", 200},
		{"ipv6 loopback host", "POST", "[::1]:" + port, "", "application/json", 200},
		{"127/8 host", "POST", "127.3.4.5", "", "application/json", 200},
		{"0.0.0.0 host", "GET", "0.0.0.0:" + port, "", "", 421},
	}
	for _, tt := range tests {
		body := `{"a":1}`
		if tt.method == "GET" {
			body = ""
		}
		if got := do(tt.method, tt.host, tt.origin, tt.ct, body); got != tt.want && !(tt.method == "GET" && tt.want == 200 && got == 405) {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	// Sec-Fetch-Site: cross-site without an Origin is refused too.
	req, _ := http.NewRequest("POST", "http://"+addr+"/echo", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("Sec-Fetch-Site cross-site: %d, want 403", resp.StatusCode)
	}
}

// Per-address and total caps answer 503 and free their
// places when connections close; an authenticated connection leaves the
// per-address count.
func TestConnectionCaps(t *testing.T) {
	s, addr := guardServer(t, Settings{Limits: Limits{MaxConnections: 8, MaxPreAuthPerIP: 3}})
	url := "ws://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Three authenticated clients: none of them counts per address.
	var authed []*client.Conn
	for range 3 {
		c, err := client.Dial(ctx, client.Options{URL: url, Token: livenessToken})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		authed = append(authed, c)
	}
	if n := s.caps.preAuth(addr); n != 0 {
		t.Fatalf("%d unauthenticated connections counted after 3 hello-oks", n)
	}
	// Three idle raw connections fill the per-address cap; the fourth gets 503.
	var raw []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw = append(raw, c)
	}
	testutil.WaitFor(t, 5*time.Second, 5*time.Millisecond, "3 pre-auth connections", func() (bool, string) {
		n := s.caps.preAuth(addr)
		return n == 3, fmt.Sprintf("%d pre-auth", n)
	})
	status := func() string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(line)
	}
	if got := status(); got != "HTTP/1.1 503 Service Unavailable" {
		t.Fatalf("past the per-address cap: %q", got)
	}
	// Closing one frees its place.
	raw[0].Close()
	testutil.WaitFor(t, 5*time.Second, 5*time.Millisecond, "2 pre-auth connections", func() (bool, string) {
		n := s.caps.preAuth(addr)
		return n == 2, fmt.Sprintf("%d pre-auth", n)
	})
	if got := status(); got != "HTTP/1.1 200 OK" {
		t.Fatalf("after a close: %q", got)
	}
	// The total: 3 authenticated + 2 raw + 3 more authenticated = 8; the next is refused.
	testutil.WaitFor(t, 5*time.Second, 5*time.Millisecond, "the probe's close (2 pre-auth, 5 in all)", func() (bool, string) {
		pre, total := s.caps.preAuth(addr), s.caps.total.Load()
		return pre == 2 && total == 5, fmt.Sprintf("%d pre-auth, %d in all", pre, total)
	})
	for range 3 {
		c, err := client.Dial(ctx, client.Options{URL: url, Token: livenessToken})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := client.Dial(ctx, client.Options{URL: url, Token: livenessToken}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("past the total cap: %v, want a 503", err)
	}
	authed[0].Close()
	testutil.WaitFor(t, 5*time.Second, 5*time.Millisecond, "7 connections in all", func() (bool, string) {
		n := s.caps.total.Load()
		return n == 7, fmt.Sprintf("%d in all", n)
	})
	if _, err := client.Dial(ctx, client.Options{URL: url, Token: livenessToken}); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

// System-event is bounded in size, count, time and rate,
// and presence/health reach only operator.read connections.
func TestSystemEventBounds(t *testing.T) {
	s, addr := guardServer(t, Settings{})
	url := "ws://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op := gatewaydtest.Dial(t, client.Options{URL: url, Token: livenessToken, EventBuffer: 4096})
	node := gatewaydtest.Dial(t, client.Options{URL: url, Token: livenessToken, Role: protocol.RoleNode, ClientID: "node-host", Mode: "node"})
	if h, _ := json.Marshal(node.Hello().Snapshot); strings.Contains(string(h), "components") || strings.Count(string(h), `"mode"`) > 1 {
		t.Fatalf("a node's hello-ok snapshot carries operator data: %s", h)
	}

	// Size.
	_, err := op.Call(ctx, "system-event", map[string]any{"text": strings.Repeat("x", 10_000)})
	var se *protocol.Error
	if !errors.As(err, &se) || !strings.Contains(se.Message, "at most") {
		t.Fatalf("10 KB text: %v, want a size error", err)
	}
	// Rate: a burst past sysEventConnBurst is refused, retryable. The
	// calls go out together, so the bucket's refill (5/s) cannot keep up
	// however slow this machine is.
	const burst = 3 * sysEventConnBurst
	errs := make(chan error, burst)
	for i := range burst {
		go func() {
			_, err := op.Call(ctx, "system-event", map[string]any{"text": "burst", "instanceId": fmt.Sprintf("b%d", i)})
			errs <- err
		}()
	}
	limited := 0
	for range burst {
		if err := <-errs; err != nil {
			if !errors.As(err, &se) || !se.Retryable {
				t.Fatalf("burst: %v", err)
			}
			limited++
		}
	}
	if limited < sysEventConnBurst/2 {
		t.Fatalf("%d of %d system-events sent together were refused; the burst allows %d", limited, burst, sysEventConnBurst)
	}
	// Count: many connections' notes stay within MaxSystemNotes.
	for i := range MaxSystemNotes + 40 {
		s.postNote(fmt.Sprintf("instance:n%d", i), protocol.PresenceEntry{Text: "note", TS: time.Now().UnixMilli()}, time.Now())
	}
	if n := len(s.hub.presenceList()); n > MaxSystemNotes+3 {
		t.Fatalf("presence lists %d entries after %d notes; the bound is %d", n, MaxSystemNotes+40, MaxSystemNotes)
	}
	// Expiry.
	s.events.mu.Lock()
	s.events.ttl = 0
	s.events.mu.Unlock()
	testutil.WaitFor(t, 5*time.Second, 5*time.Millisecond, "presence of only the gateway and the operator", func() (bool, string) {
		n := len(s.hub.presenceList())
		return n <= 2, fmt.Sprintf("%d entries", n)
	})
	// The node saw no presence or health event; the operator did.
	s.Apply(*s.settings.Load()) // broadcasts health
	sawOp := false
	for !sawOp {
		select {
		case ev := <-op.Events():
			sawOp = ev.Name == "health"
		case <-time.After(5 * time.Second):
			t.Fatal("the operator got no health event")
		}
	}
	for {
		select {
		case ev := <-node.Events():
			if ev.Name == "presence" || ev.Name == "health" {
				t.Fatalf("a node received a %s event: %s", ev.Name, ev.Payload)
			}
			continue
		default:
		}
		break
	}
}
