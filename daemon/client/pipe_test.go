package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func dialPipe(t *testing.T, o client.Options) *client.Pipe {
	t.Helper()
	p, err := client.DialPipe(ctxT(t), o)
	if err != nil {
		t.Fatalf("DialPipe %s: %v", o.URL, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// response is the part of a response frame the tests look at.
type response struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Event string          `json:"event"`
	Error *protocol.Error `json:"error"`
}

// readResponses reads until n responses arrived (events are skipped),
// bounded in frames and by a deadline.
func readResponses(t *testing.T, p *client.Pipe, n int) map[string]response {
	t.Helper()
	if err := p.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := map[string]response{}
	for range 1000 {
		if len(got) == n {
			return got
		}
		msg, err := p.Read()
		if err != nil {
			t.Fatalf("Read after %d of %d responses: %v", len(got), n, err)
		}
		var r response
		if err := json.Unmarshal(msg, &r); err != nil {
			t.Fatalf("Read returned a message that is not JSON: %q: %v", msg, err)
		}
		if r.Type == protocol.TypeRes {
			got[r.ID] = r
		}
	}
	t.Fatalf("no %d responses among 1000 frames: %v", n, got)
	return nil
}

func TestPipeHandshakeAndBatch(t *testing.T) {
	g := startGateway(t)
	scopes := []string{protocol.ScopeRead, protocol.ScopeAdmin}
	p := dialPipe(t, client.Options{URL: g.URL, Token: g.Token, Scopes: scopes})

	h := p.Hello()
	if h == nil || h.Type != "hello-ok" || h.Protocol != protocol.Version || h.Server.ConnID == "" {
		t.Fatalf("hello = %+v, want a hello-ok for protocol 4 with a connId", h)
	}
	if h.Auth.Role != protocol.RoleOperator || !slices.Equal(h.Auth.Scopes, scopes) {
		t.Errorf("granted %q %v, want operator with the asked-for %v", h.Auth.Role, h.Auth.Scopes, scopes)
	}

	// Three requests in one Write: three responses, matched by id.
	frames := [][]byte{
		[]byte(`{"type":"req","id":"a","method":"health","params":{}}`),
		[]byte(`{"type":"req","id":"b","method":"status"}`),
		[]byte(`{"type":"req","id":"c","method":"bogus.method"}`),
	}
	if err := p.Write(frames...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := readResponses(t, p, 3)
	if !got["a"].OK || !got["b"].OK {
		t.Errorf("health and status: %+v %+v, want ok", got["a"], got["b"])
	}
	if c := got["c"]; c.OK || c.Error == nil || !strings.Contains(c.Error.Message, "unknown method") {
		t.Errorf("bogus.method: %+v, want an unknown-method error", c)
	}

	// A deadline with nothing to read is not the end of the connection.
	if err := p.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := p.Write(frames[0]); err != nil {
		t.Fatalf("Write after a read deadline: %v", err)
	}
	if got := readResponses(t, p, 1); !got["a"].OK {
		t.Errorf("health after a read deadline: %+v", got)
	}
	if p.Buffered() {
		t.Errorf("Buffered() true with nothing sent")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Write(frames[0]); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
}

// TestPipeDialErrorsMatchDial dials the same bad targets with Dial and
// DialPipe: callers' auth fixes and retry decisions read Stage,
// HTTPStatus, CloseCode and the server error, so both must agree.
func TestPipeDialErrorsMatchDial(t *testing.T) {
	g, refusedURL, silent := dialTargets(t)
	tests := []struct {
		name      string
		o         client.Options
		stage     string
		detail    string
		closeCode int
		http      bool
		auth      bool
	}{
		{name: "refused", o: client.Options{URL: refusedURL}, stage: client.StageConnect},
		{name: "silent peer", o: client.Options{URL: "ws://" + silent, HandshakeTimeout: 200 * time.Millisecond},
			stage: client.StageConnect},
		{name: "wrong path", o: client.Options{URL: g.URL + "/not-the-gateway", Token: g.Token}, stage: client.StageConnect, http: true},
		{name: "wrong token", o: client.Options{URL: g.URL, Token: "wrong"}, stage: client.StageHandshake,
			detail: protocol.DetailAuthTokenMismatch, closeCode: protocol.ClosePolicyViolation, auth: true},
		{name: "no token", o: client.Options{URL: g.URL}, stage: client.StageHandshake,
			closeCode: protocol.ClosePolicyViolation, auth: true},
		{name: "protocol mismatch", o: client.Options{URL: g.URL, Token: g.Token, MinProtocol: 5, MaxProtocol: 6},
			stage: client.StageHandshake, detail: protocol.DetailProtocolMismatch, closeCode: protocol.CloseProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := client.DialPipe(context.Background(), tt.o)
			if err == nil {
				p.Close()
				t.Fatal("DialPipe succeeded, want an error")
			}
			var pe *client.DialError
			if !errors.As(err, &pe) {
				t.Fatalf("DialPipe error %T %v, want *DialError", err, err)
			}
			de := dialError(t, tt.o)
			if pe.Stage != tt.stage || (tt.detail != "" && pe.DetailCode() != tt.detail) || pe.IsAuth() != tt.auth || (pe.HTTPStatus != 0) != tt.http {
				t.Errorf("DialPipe: stage %q detail %q auth %v HTTP %d; want %q %q %v HTTP status %v (%v)",
					pe.Stage, pe.DetailCode(), pe.IsAuth(), pe.HTTPStatus, tt.stage, tt.detail, tt.auth, tt.http, pe)
			}
			if tt.closeCode != 0 && pe.CloseCode != tt.closeCode {
				t.Errorf("DialPipe close code %d (%q), want %d", pe.CloseCode, pe.CloseReason, tt.closeCode)
			}
			if pe.Stage != de.Stage || pe.HTTPStatus != de.HTTPStatus || pe.CloseCode != de.CloseCode ||
				pe.CloseReason != de.CloseReason || pe.DetailCode() != de.DetailCode() ||
				pe.IsAuth() != de.IsAuth() || pe.IsUnreachable() != de.IsUnreachable() {
				t.Errorf("DialPipe and Dial disagree:\n pipe %+v\n conn %+v", pe, de)
			}
			if pe.Error() != de.Error() {
				t.Errorf("messages differ:\n pipe %q\n conn %q", pe.Error(), de.Error())
			}
		})
	}
}

func TestPipeServerClose(t *testing.T) {
	g := startGateway(t)
	p := dialPipe(t, client.Options{URL: g.URL, Token: g.Token})
	// The gateway waits for the answer to its close frame before it
	// exits, so this side must be reading while it stops.
	stopped := make(chan error, 1)
	go func() { stopped <- g.Stop() }()
	defer func() {
		if err := <-stopped; err != nil {
			t.Errorf("gatewayd did not exit cleanly on SIGTERM: %v\n%s", err, g.Output())
		}
	}()
	if err := p.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	sawShutdown := false
	var err error
	for range 100 {
		var msg []byte
		if msg, err = p.Read(); err != nil {
			break
		}
		var r response
		if json.Unmarshal(msg, &r) == nil && r.Event == "shutdown" {
			sawShutdown = true
		}
	}
	if !sawShutdown {
		t.Errorf("no shutdown event before the close")
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseServiceRestart {
		t.Fatalf("Read at the end: %v, want a CloseError with %d", err, protocol.CloseServiceRestart)
	}
	if !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "1012") {
		t.Errorf("close error %q does not wrap ErrClosed or name the code", err)
	}
	if _, again := p.Read(); again != err {
		t.Errorf("second Read after the close: %v, want the same %v", again, err)
	}
	if err := p.Write([]byte(`{}`)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Write after the gateway closed: %v, want ErrClosed", err)
	}
}

// peer is a scripted WebSocket server on a loopback socket, for framing the
// real gateway never produces (fragments, pings, oversized messages, a
// frame split across a deadline). It performs a minimal v4 handshake
// (gatewaydtest.AcceptFake, with policy.maxPayload = maxPayload) and then
// runs script.
func peer(t *testing.T, maxPayload int, script func(conn net.Conn, r *bufio.Reader) error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			conn, err := l.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			r, err := gatewaydtest.AcceptFake(conn, int64(maxPayload))
			if err != nil {
				return err
			}
			return script(conn, r)
		}()
	}()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("peer: %v", err)
		}
	})
	return "ws://" + l.Addr().String()
}

// frame encodes one unmasked server frame.
func frame(op ws.OpCode, fin bool, payload string) []byte {
	b, err := ws.CompileFrame(ws.NewFrame(op, fin, []byte(payload)))
	if err != nil {
		panic(err)
	}
	return b
}

// readClientFrame reads one frame the Pipe sent and checks it is masked.
func readClientFrame(r *bufio.Reader) (ws.OpCode, []byte, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return 0, nil, err
	}
	if !h.Masked {
		return 0, nil, errors.New("client frame is not masked")
	}
	b := make([]byte, h.Length)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	ws.Cipher(b, h.Mask, 0)
	return h.OpCode, b, nil
}

func TestPipeFraming(t *testing.T) {
	type step struct {
		sent     []byte // what the peer sends next, in one write
		want     string // the message Read must return ("" with wantErr)
		wantErr  string // Read must fail with this text
		pong     string // then the peer expects this pong
		buffered bool   // after the Read, Buffered() must say this
	}
	join := func(fs ...[]byte) []byte { return slices.Concat(fs...) }
	tests := []struct {
		name      string
		steps     []step
		wantClose ws.StatusCode // the close the peer must then receive (0: none expected)
	}{
		{name: "fragmented with a ping inside", steps: []step{{
			sent: join(frame(ws.OpText, false, `{"a":`), frame(ws.OpPing, true, "p1"), frame(ws.OpContinuation, true, `1}`)),
			want: `{"a":1}`, pong: "p1"}}},
		{name: "binary dropped", steps: []step{{
			sent: join(frame(ws.OpBinary, true, "bin"), frame(ws.OpText, true, `{"b":2}`)), want: `{"b":2}`}}},
		{name: "two in one segment", steps: []step{
			{sent: join(frame(ws.OpText, true, `{"c":1}`), frame(ws.OpText, true, `{"c":2}`)), want: `{"c":1}`, buffered: true},
			{want: `{"c":2}`, buffered: false}}},
		{name: "too big", steps: []step{{
			sent: frame(ws.OpText, true, `{"x":"`+strings.Repeat("x", 200)+`"}`), wantErr: "over the limit of 100"}},
			wantClose: ws.StatusMessageTooBig},
		{name: "close frame", steps: []step{{
			sent: frame(ws.OpClose, true, string(ws.NewCloseFrameBody(4001, "bye"))), wantErr: "gateway connection closed (4001 bye)"}},
			wantClose: 4001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan int)
			url := peer(t, 100, func(conn net.Conn, r *bufio.Reader) error {
				for i, s := range tt.steps {
					if s.sent != nil {
						if _, err := conn.Write(s.sent); err != nil {
							return err
						}
					}
					if s.pong != "" {
						op, b, err := readClientFrame(r)
						if err != nil || op != ws.OpPong || string(b) != s.pong {
							return fmt.Errorf("step %d: got %v %q %v, want pong %q", i, op, b, err, s.pong)
						}
					}
					next <- i
				}
				if tt.wantClose != 0 {
					op, b, err := readClientFrame(r)
					if err != nil || op != ws.OpClose {
						return fmt.Errorf("got %v %q %v, want a close frame", op, b, err)
					}
					if code, _ := ws.ParseCloseFrameData(b); code != tt.wantClose {
						return fmt.Errorf("close code %d, want %d", code, tt.wantClose)
					}
				}
				return nil
			})
			p, err := client.DialPipe(ctxT(t), client.Options{URL: url, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				msg, err := p.Read()
				if s.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), s.wantErr) || !errors.Is(err, client.ErrClosed) {
						t.Errorf("step %d: Read = %q, %v; want an ErrClosed error containing %q", i, msg, err, s.wantErr)
					}
				} else if err != nil || string(msg) != s.want {
					t.Errorf("step %d: Read = %q, %v; want %q", i, msg, err, s.want)
				}
				select {
				case <-next:
				case <-time.After(10 * time.Second):
					t.Fatalf("step %d: the peer did not finish the step", i)
				}
				if err == nil && p.Buffered() != s.buffered {
					t.Errorf("step %d: Buffered() = %v, want %v", i, !s.buffered, s.buffered)
				}
			}
		})
	}
}

// TestPipeDeadlineMidFrame splits a frame around a read deadline: the
// Read that times out must lose nothing, and the next one returns the
// whole message.
func TestPipeDeadlineMidFrame(t *testing.T) {
	msg := `{"type":"event","event":"tick","payload":{"ts":` + strings.Repeat("1", 300) + `}}`
	f := frame(ws.OpText, true, msg)
	timedOut := make(chan struct{})
	url := peer(t, 1<<20, func(conn net.Conn, r *bufio.Reader) error {
		for _, part := range [][]byte{f[:1], f[1:3], f[3:100]} { // in the header, then the payload
			if _, err := conn.Write(part); err != nil {
				return err
			}
			select {
			case <-timedOut:
			case <-time.After(5 * time.Second):
				return errors.New("the client never timed out")
			}
		}
		_, err := conn.Write(f[100:])
		return err
	})
	p, err := client.DialPipe(ctxT(t), client.Options{URL: url, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		if err := p.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if got, err := p.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read %d of a partial frame: %q, %v; want a deadline error", i, got, err)
		}
		if p.Buffered() {
			t.Errorf("Buffered() true with part %d of a frame received", i)
		}
		timedOut <- struct{}{}
	}
	if err := p.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := p.Read()
	if err != nil || string(got) != msg {
		t.Fatalf("Read after the deadlines: %q, %v; want the whole message", got, err)
	}
}
