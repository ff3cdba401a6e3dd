package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// fuzzConn is a net.Conn whose reads come from a fixed client stream and
// whose writes (pongs, close frames) are kept for inspection.
type fuzzConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadMessage feeds arbitrary client bytes to the server's frame
// reader. It must never panic, never return a message over the limit or
// of a control opcode, and its own "a whole frame is buffered" check must
// agree with gobwas/ws's header parser on the same bytes.
func FuzzReadMessage(f *testing.F) {
	seeds := [][]byte{
		clientFrame(ws.OpText, true, []byte(`{"type":"req","id":"1","method":"health"}`)),
		append(clientFrame(ws.OpText, false, []byte(`{"a":`)), clientFrame(ws.OpContinuation, true, []byte(`1}`))...),
		append(clientFrame(ws.OpPing, true, []byte("p")), clientFrame(ws.OpText, true, []byte("x"))...),
		clientFrame(ws.OpClose, true, ws.NewCloseFrameBody(1000, "bye")),
		clientFrame(ws.OpClose, true, []byte{3}), // a one-byte close body
		clientFrame(ws.OpBinary, true, bytes.Repeat([]byte{0}, 300)),
		clientFrame(ws.OpText, true, bytes.Repeat([]byte("y"), 70_000)), // 64-bit length, over the limit
		func() []byte { b, _ := ws.CompileFrame(ws.NewTextFrame([]byte("unmasked"))); return b }(),
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // huge declared length, no body
		{0x8f, 0x80, 0, 0, 0, 0}, // reserved opcode
		{0x81},                   // a lone first byte
	}
	for _, s := range seeds {
		f.Add(s)
	}
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := &fuzzConn{r: bytes.NewReader(data)}
		tr := &wsTransport{conn: conn, br: bufio.NewReaderSize(conn, readBufferSize), closeWait: time.Millisecond}
		tr.setReadLimit(limit)
		var buf bytes.Buffer
		for i := 0; i <= len(data); i++ { // each message consumes at least 2 bytes
			checkBufferedFrame(t, tr)
			op, msg, err := tr.readMessage(&buf, func([]byte) {}, func() {})
			if err != nil {
				if errors.Is(err, errFrameTooBig) && conn.out.Len() == 0 {
					t.Fatal("oversize message without a close frame")
				}
				return
			}
			if op != ws.OpText && op != ws.OpBinary {
				t.Fatalf("message with opcode %v", op)
			}
			if len(msg) > limit {
				t.Fatalf("message of %d bytes over the %d limit", len(msg), limit)
			}
		}
		t.Fatalf("more messages than the input could hold")
	})
}

// checkBufferedFrame compares hasBufferedFrame with gobwas/ws parsing the
// buffered bytes.
func checkBufferedFrame(t *testing.T, tr *wsTransport) {
	t.Helper()
	peek, _ := tr.br.Peek(tr.br.Buffered())
	got := tr.hasBufferedFrame()
	r := bytes.NewReader(peek)
	h, err := ws.ReadHeader(r)
	// The header's size on the wire, not ws.HeaderSize's minimal one: a
	// length may be sent in more bytes than it needs.
	hdrLen := int64(len(peek) - r.Len())
	want := err == nil && h.Length >= 0 && hdrLen+h.Length <= int64(len(peek))
	if got != want {
		t.Fatalf("hasBufferedFrame = %v, gobwas/ws says %v, for % x", got, want, peek)
	}
}
