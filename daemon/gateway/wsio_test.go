package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// wsPair upgrades one real loopback connection: the server side is our
// transport, the client side raw gobwas/ws frames, so tests control every
// byte the server sees.
func wsPair(t *testing.T) (*wsTransport, net.Conn, *bufio.Reader) {
	t.Helper()
	got := make(chan *wsTransport, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, err := upgradeWS(w, r)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		tr.setReadLimit(1024)
		got <- tr
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	select {
	case tr := <-got:
		t.Cleanup(tr.closeNow)
		return tr, conn, br
	case <-time.After(5 * time.Second):
		t.Fatal("server never upgraded")
	}
	return nil, nil, nil
}

// clientFrame is a masked client frame on the wire.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, bytes.Clone(payload)))
	b, err := ws.CompileFrame(f)
	if err != nil {
		panic(err)
	}
	return b
}

// readServerFrame reads one frame the server sent (unmasked).
func readServerFrame(t *testing.T, c net.Conn, br *bufio.Reader) ws.Frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(br)
	if err != nil {
		t.Fatalf("read server frame: %v", err)
	}
	if h.Masked {
		t.Fatalf("server frame is masked")
	}
	if h.Length > 1<<20 {
		t.Fatalf("server frame of %d bytes, more than any test sends", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read server frame payload: %v", err)
	}
	return ws.Frame{Header: h, Payload: p}
}

func TestReadFragmentedMessageAnswersPingInBetween(t *testing.T) {
	tr, c, _ := wsPair(t)
	var wire []byte
	wire = append(wire, clientFrame(ws.OpText, false, []byte(`{"a":`))...)
	wire = append(wire, clientFrame(ws.OpPing, true, []byte("p1"))...)
	wire = append(wire, clientFrame(ws.OpContinuation, false, []byte(`"b`))...)
	wire = append(wire, clientFrame(ws.OpContinuation, true, []byte(`c"}`))...)
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	var pings [][]byte
	var buf bytes.Buffer
	op, data, err := tr.readMessage(&buf, func(p []byte) { pings = append(pings, p) }, nil)
	if err != nil {
		t.Fatalf("readMessage: %v", err)
	}
	if op != ws.OpText || string(data) != `{"a":"bc"}` {
		t.Fatalf("got op %v %q, want text {\"a\":\"bc\"}", op, data)
	}
	if len(pings) != 1 || string(pings[0]) != "p1" {
		t.Fatalf("pings = %q, want [p1]", pings)
	}
}

func TestReadRejectsOversizeAndUnmaskedFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire []byte
		code ws.StatusCode
	}{
		{"over the limit", clientFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 2000)), ws.StatusMessageTooBig},
		{"over the limit across fragments", append(clientFrame(ws.OpText, false, bytes.Repeat([]byte("x"), 600)),
			clientFrame(ws.OpContinuation, true, bytes.Repeat([]byte("x"), 600))...), ws.StatusMessageTooBig},
		{"unmasked", func() []byte { b, _ := ws.CompileFrame(ws.NewTextFrame([]byte("hi"))); return b }(), ws.StatusProtocolError},
		{"continuation first", clientFrame(ws.OpContinuation, true, []byte("x")), ws.StatusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, c, br := wsPair(t)
			if _, err := c.Write(tc.wire); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, _, err := tr.readMessage(&buf, func([]byte) {}, nil); err == nil {
				t.Fatal("readMessage accepted a bad frame")
			}
			f := readServerFrame(t, c, br)
			if f.Header.OpCode != ws.OpClose {
				t.Fatalf("server sent %v, want a close frame", f.Header.OpCode)
			}
			if code, _ := ws.ParseCloseFrameData(f.Payload); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestPeerCloseIsEchoedAndEndsTheConnection(t *testing.T) {
	tr, c, br := wsPair(t)
	if _, err := c.Write(clientFrame(ws.OpClose, true, ws.NewCloseFrameBody(4001, "bye"))); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _, err := tr.readMessage(&buf, func([]byte) {}, nil)
	var pc *peerClosed
	if !errors.As(err, &pc) || pc.code != 4001 || pc.reason != "bye" {
		t.Fatalf("err = %v, want peerClosed 4001 bye", err)
	}
	f := readServerFrame(t, c, br)
	if code, _ := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != 4001 {
		t.Fatalf("reply %v code %d, want close 4001", f.Header.OpCode, code)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the close handshake read = %v, want EOF", err)
	}
	if err := tr.writeFrames(nil, [][]byte{[]byte("late")}); !errors.Is(err, errClosing) {
		t.Fatalf("write after close = %v, want errClosing", err)
	}
}

func TestWriteFramesBatchesInOrder(t *testing.T) {
	for _, size := range []int{10, 300, 70_000} { // 7-bit, 16-bit and 64-bit lengths; the last batch is vectored
		tr, c, br := wsPair(t)
		texts := [][]byte{bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size), []byte("c")}
		go func() { _ = tr.writeFrames([][]byte{controlFrame(ws.OpPong, []byte("x"))}, texts) }()
		if f := readServerFrame(t, c, br); f.Header.OpCode != ws.OpPong || string(f.Payload) != "x" {
			t.Fatalf("size %d: first frame %v %q, want pong x", size, f.Header.OpCode, f.Payload)
		}
		for i, want := range texts {
			f := readServerFrame(t, c, br)
			if f.Header.OpCode != ws.OpText || !f.Header.Fin || !bytes.Equal(f.Payload, want) {
				t.Fatalf("size %d: frame %d is %v fin=%v %d bytes, want final text of %d", size, i, f.Header.OpCode, f.Header.Fin, len(f.Payload), len(want))
			}
		}
	}
}

func TestHasBufferedFrame(t *testing.T) {
	tr, c, _ := wsPair(t)
	two := append(clientFrame(ws.OpText, true, []byte("one")), clientFrame(ws.OpText, true, bytes.Repeat([]byte("2"), 200))...)
	partial := clientFrame(ws.OpText, true, []byte("three"))
	if _, err := c.Write(append(two, partial[:4]...)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, data, err := tr.readMessage(&buf, func([]byte) {}, nil); err != nil || string(data) != "one" {
		t.Fatalf("first = %q, %v", data, err)
	}
	if !tr.hasBufferedFrame() {
		t.Fatal("second frame is buffered whole, hasBufferedFrame = false")
	}
	if _, _, err := tr.readMessage(&buf, func([]byte) {}, nil); err != nil {
		t.Fatal(err)
	}
	if tr.hasBufferedFrame() {
		t.Fatal("only part of the third frame is buffered, hasBufferedFrame = true")
	}
	if _, err := c.Write(partial[4:]); err != nil {
		t.Fatal(err)
	}
	if _, data, err := tr.readMessage(&buf, func([]byte) {}, nil); err != nil || string(data) != "three" {
		t.Fatalf("third = %q, %v", data, err)
	}
}

func TestSendCloseWaitsForThePeerThenEnds(t *testing.T) {
	tr, c, br := wsPair(t)
	done := make(chan error, 1)
	go func() {
		var buf bytes.Buffer
		_, _, err := tr.readMessage(&buf, func([]byte) {}, nil)
		done <- err
	}()
	tr.sendClose(ws.StatusGoingAway, "restart")
	f := readServerFrame(t, c, br)
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != ws.StatusGoingAway || reason != "restart" {
		t.Fatalf("close %d %q, want 1001 restart", code, reason)
	}
	if _, err := c.Write(clientFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, ""))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var pc *peerClosed
		if !errors.As(err, &pc) {
			t.Fatalf("reader ended with %v, want the peer's close", err)
		}
	case <-time.After(closeWait / 2):
		t.Fatal("reader still running after the peer answered the close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after the close handshake: %v", err)
	}
}

// TestIdleHookBeforeBlocking: a reader holding responses back must hear
// before every read that can block, also when the buffered frame it
// corked for was a control frame (a pong right behind a request): the
// responses would otherwise wait for the client's next request.
func TestIdleHookBeforeBlocking(t *testing.T) {
	tr, c, _ := wsPair(t)
	wire := append(clientFrame(ws.OpText, true, []byte("req")), clientFrame(ws.OpPong, true, nil)...)
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, data, err := tr.readMessage(&buf, func([]byte) {}, nil); err != nil || string(data) != "req" {
		t.Fatalf("first = %q, %v", data, err)
	}
	if !tr.hasBufferedFrame() {
		t.Fatal("the pong is buffered whole, hasBufferedFrame = false")
	}
	idle := make(chan struct{}, 8)
	got := make(chan string, 1)
	go func() {
		_, data, err := tr.readMessage(&buf, func([]byte) {}, func() { idle <- struct{}{} })
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(data)
	}()
	select {
	case <-idle: // the pong was consumed and the next read would block
	case s := <-got:
		t.Fatalf("readMessage returned %q without blocking", s)
	case <-time.After(5 * time.Second):
		t.Fatal("onIdle never called before blocking behind a buffered pong")
	}
	if _, err := c.Write(clientFrame(ws.OpText, true, []byte("next"))); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "next" {
		t.Fatalf("second = %q, want next", s)
	}
}
