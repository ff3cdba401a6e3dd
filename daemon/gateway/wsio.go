package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// The server side of RFC 6455 on a hijacked connection. Framing (header
// parsing, validity checks, unmasking) is github.com/gobwas/ws; this file
// owns buffering, because that is where the throughput is: several frames
// that are ready together (responses to pipelined requests, a burst of
// events) go out in one write syscall, and several frames that arrive
// together are read with one. Each frame costs a syscall with a
// per-message-flushing library, and on loopback a syscall costs as much as
// all the rest of a request.

// closeWait bounds the close handshake: after sending a close frame the
// connection is torn down when the peer's close arrives, or after this.
// Each connection takes its value when it opens (tests shorten it).
var closeWait = 5 * time.Second

// readBufferSize is the per-connection read buffer. Frames larger than it
// are read straight into the message buffer; smaller ones, several at a
// time, through it. It is the main per-connection memory cost of an idle
// client.
const readBufferSize = 2048

// coalesceLimit is the largest batch copied into one buffer for a single
// write; larger batches go out as a vectored write without copying.
const coalesceLimit = 64 << 10

// writeBufs are the buffers batches are copied into: shared, so an idle
// connection holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// errFrameTooBig is returned by readMessage for a message over the limit;
// the connection is already closing with 1009.
var errFrameTooBig = errors.New("message too big")

// maxDiscard bounds what readMessage reads past an oversize frame so that
// its close frame reaches the peer (see readMessage).
const maxDiscard = 32 << 20

// peerClosed is returned by readMessage when the peer sent a close frame.
type peerClosed struct {
	code   ws.StatusCode
	reason string
}

func (e *peerClosed) Error() string {
	return fmt.Sprintf("peer closed the websocket: %d %q", e.code, e.reason)
}

// wsTransport is one server-side WebSocket. One goroutine reads (the
// connection's reader); writes are serialised by wmu.
type wsTransport struct {
	conn  net.Conn
	br    *bufio.Reader
	limit atomic.Int64 // largest message accepted

	hdr      [ws.MaxHeaderSize]byte // header scratch for the reader
	lastPong atomic.Int64           // unix nanos of the last pong read

	wmu       sync.Mutex
	closeSent bool // under wmu: no data frames after a close frame

	closeOnce sync.Once
	closeWait time.Duration
	peerDone  atomic.Bool // the peer's close frame was read
}

// upgradeWS answers the HTTP upgrade request and takes over the connection.
func upgradeWS(w http.ResponseWriter, r *http.Request) (*wsTransport, error) {
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return nil, err
	}
	// net/http's 4 KiB reader may already hold the client's first bytes;
	// drain it into our smaller one rather than keep both per connection.
	var src io.Reader = conn
	if n := rw.Reader.Buffered(); n > 0 {
		pre, _ := rw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(pre)), conn)
	}
	return &wsTransport{conn: conn, br: bufio.NewReaderSize(src, readBufferSize), closeWait: closeWait}, nil
}

// setReadLimit sets the largest message accepted from now on.
func (t *wsTransport) setReadLimit(n int64) { t.limit.Store(n) }

// readMessage reads the next data message into buf (replacing its
// contents), answering pings and the peer's close on the way. Before any
// read that may block (no whole frame buffered) it calls onIdle, if set:
// the reader's cue to write what it held back. On a protocol violation it
// starts the close handshake (1002, or 1009 for a message over the limit)
// and returns an error.
func (t *wsTransport) readMessage(buf *bytes.Buffer, onPing func(payload []byte), onIdle func()) (ws.OpCode, []byte, error) {
	buf.Reset()
	state := ws.StateServerSide
	var op ws.OpCode
	for {
		if onIdle != nil && !t.hasBufferedFrame() {
			onIdle()
		}
		h, err := ws.ReadHeaderBuffer(t.br, t.hdr[:])
		if err != nil {
			return 0, nil, t.readFailed(err)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			t.sendClose(ws.StatusProtocolError, err.Error())
			return 0, nil, err
		}
		if h.OpCode.IsControl() {
			var ctl [ws.MaxControlFramePayloadSize]byte
			p := ctl[:h.Length]
			if _, err := io.ReadFull(t.br, p); err != nil {
				return 0, nil, t.readFailed(err)
			}
			ws.Cipher(p, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPing:
				onPing(bytes.Clone(p))
			case ws.OpPong:
				t.lastPong.Store(time.Now().UnixNano())
			case ws.OpClose:
				return 0, nil, t.peerClose(p)
			}
			continue
		}
		if int64(buf.Len())+h.Length > t.limit.Load() {
			t.sendClose(ws.StatusMessageTooBig, fmt.Sprintf("message over %d bytes", t.limit.Load()))
			// Read past the rest of the frame, which the peer is likely
			// still sending: a socket closed with unread data answers with
			// a reset, and a reset throws away the close frame the peer
			// has not read yet. Bounded in bytes, and in time by the close
			// timer sendClose started.
			_, _ = io.CopyN(io.Discard, t.br, min(h.Length, maxDiscard))
			return 0, nil, errFrameTooBig
		}
		if err := t.readPayload(buf, h); err != nil {
			return 0, nil, t.readFailed(err)
		}
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
		}
		if h.Fin {
			return op, buf.Bytes(), nil
		}
		state = state.Set(ws.StateFragmented)
	}
}

// firstChunk is the most readPayload allocates ahead of the bytes that
// arrived: a frame header may declare up to the read limit (64 KiB before
// hello, 25 MiB after), and memory is committed only as the payload
// actually comes in.
const firstChunk = 2 << 10

// readPayload appends h's payload, unmasked, to buf. The buffer grows as
// bytes arrive (at most doubling what came so far), never to the length
// the header declares before the bytes are there.
func (t *wsTransport) readPayload(buf *bytes.Buffer, h ws.Header) error {
	remaining := h.Length
	var got int64
	for remaining > 0 {
		step := min(remaining, max(firstChunk, got))
		buf.Grow(int(step))
		seg := buf.AvailableBuffer()[:step]
		if _, err := io.ReadFull(t.br, seg); err != nil {
			return err
		}
		ws.Cipher(seg, h.Mask, int(got))
		buf.Write(seg)
		got += step
		remaining -= step
	}
	return nil
}

// readFailed ends the connection after a failed read (EOF, a reset, or
// our own close) and returns err for the reader to judge.
func (t *wsTransport) readFailed(err error) error {
	t.closeNow()
	return err
}

// peerClose answers the peer's close frame (echoing its code, as RFC 6455
// asks) unless we sent ours first, and ends the connection.
func (t *wsTransport) peerClose(p []byte) error {
	t.peerDone.Store(true)
	var code ws.StatusCode = ws.StatusNoStatusRcvd
	var reason string
	if len(p) >= 2 {
		code, reason = ws.ParseCloseFrameData(p)
	}
	reply := code
	if len(p) < 2 {
		reply = ws.StatusNormalClosure
	} else if ws.CheckCloseFrameData(code, reason) != nil {
		reply = ws.StatusProtocolError
	}
	t.wmu.Lock()
	if !t.closeSent {
		t.closeSent = true
		_ = t.conn.SetWriteDeadline(time.Now().Add(t.closeWait))
		_, _ = t.conn.Write(controlFrame(ws.OpClose, ws.NewCloseFrameBody(reply, "")))
	}
	t.wmu.Unlock()
	t.closeNow()
	return &peerClosed{code: code, reason: reason}
}

// sendClose starts the close handshake: the close frame goes out after the
// write in progress (if any), and the connection ends when the peer
// answers (the reader sees it) or after closeWait, whichever is first.
// Later calls do nothing.
func (t *wsTransport) sendClose(code ws.StatusCode, reason string) {
	t.closeOnce.Do(func() {
		// The timer first: it also frees a writer stuck on a peer that
		// stopped reading, which the close frame would wait behind.
		time.AfterFunc(t.closeWait, t.closeNow)
	})
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closeSent {
		return
	}
	t.closeSent = true
	_ = t.conn.SetWriteDeadline(time.Now().Add(t.closeWait))
	if _, err := t.conn.Write(controlFrame(ws.OpClose, ws.NewCloseFrameBody(code, reason))); err != nil {
		t.closeNow()
		return
	}
	if t.peerDone.Load() {
		t.closeNow()
	}
}

// closeAndWait closes with code and reason and waits (at most closeWait)
// for the peer's answer, for a connection no reader is serving.
func (t *wsTransport) closeAndWait(code ws.StatusCode, reason string) {
	t.sendClose(code, reason)
	t.drainUntilClosed()
}

// drainUntilClosed reads (discarding messages) until the connection ends:
// the peer's close frame, an error, or the close timer of sendClose.
func (t *wsTransport) drainUntilClosed() {
	var buf bytes.Buffer
	for i := 0; i < 64; i++ { // bounded: the close timer ends the connection anyway
		if _, _, err := t.readMessage(&buf, func([]byte) {}, nil); err != nil {
			return
		}
	}
	t.closeNow()
}

// closeNow ends the TCP connection at once (idempotent).
func (t *wsTransport) closeNow() {
	_ = t.conn.Close()
}

// errClosing is returned for writes after the close frame.
var errClosing = errors.New("websocket is closing")

// writeFrames writes control frames (complete, as built by ws.CompileFrame)
// and then text messages, all in one write where possible.
func (t *wsTransport) writeFrames(ctl [][]byte, texts [][]byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closeSent {
		return errClosing
	}
	total := 0
	for _, f := range ctl {
		total += len(f)
	}
	for _, p := range texts {
		total += ws.MaxHeaderSize + len(p)
	}
	if total <= coalesceLimit {
		bp := writeBufs.Get().(*[]byte)
		b := (*bp)[:0]
		for _, f := range ctl {
			b = append(b, f...)
		}
		for _, p := range texts {
			b = appendTextHeader(b, len(p))
			b = append(b, p...)
		}
		_, err := t.conn.Write(b)
		*bp = b[:0]
		writeBufs.Put(bp)
		return err
	}
	bufs := make(net.Buffers, 0, len(ctl)+2*len(texts))
	bufs = append(bufs, ctl...)
	hdrs := make([]byte, 0, 10*len(texts))
	for _, p := range texts {
		start := len(hdrs)
		hdrs = appendTextHeader(hdrs, len(p))
		bufs = append(bufs, hdrs[start:len(hdrs):len(hdrs)], p)
	}
	_, err := bufs.WriteTo(rawConn(t.conn))
	return err
}

// rawConn unwraps a counted connection, so net.Buffers can use writev.
func rawConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		return u.NetConn()
	}
	return c
}

// appendTextHeader appends an unmasked, final text frame header.
func appendTextHeader(b []byte, n int) []byte {
	const finText = 0x80 | byte(ws.OpText)
	switch {
	case n <= 125:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		return append(b, finText, 127,
			byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// hasBufferedFrame reports whether a whole frame is already in the read
// buffer, so reading it will not block: the reader then holds its
// responses back to write them together with the next ones.
func (t *wsTransport) hasBufferedFrame() bool {
	n := t.br.Buffered()
	if n < 2 {
		return false
	}
	b, _ := t.br.Peek(n)
	need := 2
	l := int64(b[1] & 0x7f)
	switch l {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if b[1]&0x80 != 0 {
		need += 4
	}
	if n < need {
		return false
	}
	switch l {
	case 126:
		l = int64(b[2])<<8 | int64(b[3])
	case 127:
		l = 0
		for _, c := range b[2:10] {
			l = l<<8 | int64(c)
		}
	}
	return l >= 0 && int64(n-need) >= l
}

// controlFrame compiles an unmasked control frame.
func controlFrame(op ws.OpCode, payload []byte) []byte {
	b, _ := ws.CompileFrame(ws.NewFrame(op, true, payload))
	return b
}
