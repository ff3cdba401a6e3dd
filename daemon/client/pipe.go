package client

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
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// pipeReadBuffer is a Pipe's read buffer: frames smaller than it arrive
// several at a time per read syscall; larger ones are read straight into
// the message. 16 KiB holds a window of a few dozen small responses.
const pipeReadBuffer = 16 << 10

// pipeCloseWait bounds how long Close waits for the gateway's close frame,
// and how long a rejected handshake waits for the close that names why.
const (
	pipeCloseWait  = time.Second
	pipeRejectWait = 500 * time.Millisecond
)

// maxHandshakeFrames bounds the frames DialPipe reads while it waits for
// connect.challenge, then for the answer to connect.
const maxHandshakeFrames = 1000

// pipeConnectID is the request id of DialPipe's connect request. Callers
// choose their own ids after the handshake.
const pipeConnectID = "connect"

// Pipe is a low-level authenticated connection for load generation: the
// caller writes requests it encoded itself, several per write syscall, and
// reads raw text messages back (responses and events, in arrival order).
// Unlike Conn it starts no goroutines, matches nothing and decodes
// nothing after the handshake, so its cost per request is a share of one
// write and one read syscall.
//
// A Pipe is not safe for concurrent use by several readers or by several
// writers: one goroutine may Read while another Writes (Read's automatic
// pong shares the write lock), but Read must not race Read or Close, and
// Write must not race Write. Bench drives each Pipe from one goroutine.
type Pipe struct {
	conn  net.Conn
	br    *bufio.Reader
	url   string
	hello *protocol.HelloOK
	limit int64 // largest message accepted, in bytes

	// Read side.
	rerr     error     // sticky: why reading ended (never a timeout)
	inFrame  bool      // hdr is valid and its payload is partly read
	hdr      ws.Header // the frame being read
	got      int64     // payload bytes of hdr read so far
	base     int       // where hdr's payload starts in msg (data frames)
	msg      []byte    // the message being assembled
	msgOp    ws.OpCode // opcode of the message's first frame; 0: none yet
	returned bool      // msg was handed out by the last Read
	ctl      [ws.MaxControlFramePayloadSize]byte
	hr       bytes.Reader
	rhbuf    [ws.MaxHeaderSize]byte

	// Write side, under wmu.
	wmu       sync.Mutex
	wbuf      bytes.Buffer
	whbuf     [ws.MaxHeaderSize]byte
	wdl       time.Time // the write deadline last set
	werr      error     // sticky: why writing ended
	closeSent bool

	closeOnce sync.Once
}

// CloseError is the error (*Pipe).Read returns once the gateway has closed
// the connection with a close frame. It wraps ErrClosed.
type CloseError struct {
	Code   int    // the WebSocket close code; 1005 when the frame carried none
	Reason string // the close reason, possibly empty
}

// Error returns e.g. "gateway connection closed (1008 slow consumer)".
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s (%d)", errConnClosed, e.Code)
	}
	return fmt.Sprintf("%s (%d %s)", errConnClosed, e.Code, e.Reason)
}

// Unwrap returns ErrClosed.
func (e *CloseError) Unwrap() error { return errConnClosed }

// frameError is a protocol violation by the gateway; Read answers it with
// a close frame carrying code.
type frameError struct {
	code ws.StatusCode
	err  error
}

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// DialPipe connects to the gateway at o.URL and completes the same v4
// handshake as Dial (connect.challenge, then connect with the params o
// produces, then hello-ok), bounded by o.HandshakeTimeout and ctx. Errors
// are *DialError with the same Stage, HTTPStatus and CloseCode as Dial's.
// o.EventBuffer and o.Logger are not used: a Pipe hands events to the
// caller's Read like any other message.
func DialPipe(ctx context.Context, o Options) (*Pipe, error) {
	o = o.withDefaults()
	u, err := NormalizeURL(o.URL)
	if err != nil {
		return nil, &DialError{URL: o.URL, Stage: StageConnect, Err: err}
	}
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()

	d := ws.Dialer{ReadBufferSize: pipeReadBuffer}
	if o.Origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {o.Origin}})
	}
	conn, br, _, err := d.Dial(hctx, u)
	if err != nil {
		de := &DialError{URL: displayURL(u), Stage: StageConnect, Err: err, timeout: o.HandshakeTimeout}
		var se ws.StatusError
		if errors.As(err, &se) {
			de.HTTPStatus = int(se)
		}
		return nil, de
	}
	if br == nil { // nothing arrived with the upgrade response
		br = bufio.NewReaderSize(conn, pipeReadBuffer)
	}
	p := &Pipe{conn: conn, br: br, url: u, limit: protocol.MaxPayload}

	// The handshake's reads and writes end when hctx does (its timeout or
	// the caller's cancel): the deadline interrupts them.
	stop := context.AfterFunc(hctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	hello, derr := p.handshake(hctx, o)
	if !stop() && derr == nil {
		derr = p.dialError(hctx, o, StageHandshake, hctx.Err())
	}
	if derr != nil {
		conn.Close()
		return nil, derr
	}
	p.wmu.Lock()
	p.wdl = time.Time{}
	p.wmu.Unlock()
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, p.dialError(hctx, o, StageHandshake, err)
	}
	p.hello = hello
	if hello.Policy.MaxPayload > 0 {
		p.limit = hello.Policy.MaxPayload
	}
	return p, nil
}

// dialError builds the DialError of a failed handshake step: a deadline
// hit while hctx is done is the handshake timeout (or the caller's
// cancel), and a close frame from the gateway fills CloseCode and
// CloseReason.
func (p *Pipe) dialError(hctx context.Context, o Options, stage string, err error) *DialError {
	if hctx.Err() != nil && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
		err = hctx.Err()
	}
	de := &DialError{URL: displayURL(p.url), Stage: stage, Err: err, timeout: o.HandshakeTimeout,
		minProto: o.MinProtocol, maxProto: o.MaxProtocol}
	var ce *CloseError
	if errors.As(err, &ce) {
		de.CloseCode, de.CloseReason, de.Err = ce.Code, ce.Reason, errConnClosed
	}
	return de
}

// handshake waits for connect.challenge, sends connect and decodes the
// answer with the helpers Dial uses.
func (p *Pipe) handshake(ctx context.Context, o Options) (*protocol.HelloOK, *DialError) {
	nonce, found := "", false
	for range maxHandshakeFrames {
		msg, err := p.Read()
		if err != nil {
			return nil, p.dialError(ctx, o, StageChallenge, err)
		}
		var f inFrame
		if json.Unmarshal(msg, &f) != nil || f.Type != protocol.TypeEvent || f.Event != "connect.challenge" {
			continue
		}
		var ch protocol.ChallengePayload
		if json.Unmarshal(f.Payload, &ch) == nil {
			nonce, found = ch.Nonce, true
			break
		}
	}
	if !found {
		return nil, p.dialError(ctx, o, StageChallenge, fmt.Errorf("no connect.challenge among the first %d frames", maxHandshakeFrames))
	}

	params, err := marshalParams("connect", connectParams(o, nonce, time.Now()))
	if err != nil {
		return nil, p.dialError(ctx, o, StageHandshake, err)
	}
	frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, ID: pipeConnectID, Method: "connect", Params: params})
	if err != nil {
		return nil, p.dialError(ctx, o, StageHandshake, fmt.Errorf("encode connect request: %w", err))
	}
	if err := p.Write(frame); err != nil {
		// A failed send usually means the gateway is closing (1012 while
		// it stops): its close frame names why.
		de := p.dialError(ctx, o, StageHandshake, err)
		if ce := p.awaitClose(pipeRejectWait); ce != nil {
			de.CloseCode, de.CloseReason = ce.Code, ce.Reason
		}
		return nil, de
	}
	for range maxHandshakeFrames {
		msg, err := p.Read()
		if err != nil {
			return nil, p.dialError(ctx, o, StageHandshake, err)
		}
		var f inFrame
		if json.Unmarshal(msg, &f) != nil || f.Type != protocol.TypeRes || f.ID != pipeConnectID {
			continue
		}
		hello, rejected, err := decodeHello(&f, o)
		if rejected != nil {
			// The gateway closes right after a rejected connect (1002 or
			// 1008); the close frame lets the error name it.
			de := p.dialError(ctx, o, StageHandshake, nil)
			de.Err, de.Server = nil, rejected
			if ce := p.awaitClose(pipeRejectWait); ce != nil {
				de.CloseCode, de.CloseReason = ce.Code, ce.Reason
			}
			return nil, de
		}
		if err != nil {
			return nil, p.dialError(ctx, o, StageHandshake, err)
		}
		return hello, nil
	}
	return nil, p.dialError(ctx, o, StageHandshake, fmt.Errorf("no answer to connect among the first %d frames", maxHandshakeFrames))
}

// awaitClose reads and drops messages for at most d until the gateway's
// close frame or the end of the connection, and returns the close frame's
// status (nil when none came).
func (p *Pipe) awaitClose(d time.Duration) *CloseError {
	if p.rerr == nil {
		p.conn.SetReadDeadline(time.Now().Add(d))
	}
	for range maxHandshakeFrames {
		if _, err := p.Read(); err != nil {
			var ce *CloseError
			if errors.As(err, &ce) {
				return ce
			}
			return nil
		}
	}
	return nil
}

// Hello returns the gateway's hello-ok payload.
func (p *Pipe) Hello() *protocol.HelloOK { return p.hello }

// URL returns the normalized WebSocket URL of the gateway.
func (p *Pipe) URL() string { return p.url }

// SetReadDeadline bounds the Reads in progress and to come (zero: no
// bound). A Read that hits it returns an error wrapping
// os.ErrDeadlineExceeded and loses nothing: set a later deadline and Read
// again to continue where it stopped.
func (p *Pipe) SetReadDeadline(t time.Time) error {
	if err := p.conn.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set read deadline on gateway connection %s: %w", displayURL(p.url), err)
	}
	return nil
}

// Buffered reports whether a whole frame has already been received and not
// yet returned by Read: the next Read then needs no read syscall (unless
// that frame is a control frame or the first fragment of a longer
// message). Callers that batch writes use it to tell "more answers are
// already here" from "the next Read waits for the network".
func (p *Pipe) Buffered() bool {
	n := p.br.Buffered()
	if p.inFrame {
		return int64(n) >= p.hdr.Length-p.got
	}
	if n < 2 {
		return false
	}
	b, _ := p.br.Peek(2) // buffered: no syscall
	size := int64(2)
	if b[1]&0x80 != 0 {
		size += 4
	}
	switch l := int64(b[1] & 0x7f); l {
	case 126:
		if n < 4 {
			return false
		}
		b, _ = p.br.Peek(4)
		size += 2 + (int64(b[2])<<8 | int64(b[3]))
	case 127:
		return false // 64 KiB or more never fits the buffer
	default:
		size += l
	}
	return int64(n) >= size
}

// Read returns the next text message from the gateway: a response or an
// event, as sent. The slice is valid until the next Read. Pings are
// answered, pongs and binary messages dropped, fragmented messages
// reassembled; a message over the size limit (protocol.MaxPayload, or the
// gateway's policy.maxPayload) ends the connection with close 1009.
//
// Once the gateway has closed the connection Read returns a *CloseError
// (code and reason), or another error wrapping ErrClosed when the
// connection ended without a close frame; every later Read returns the
// same. A deadline (SetReadDeadline) is not an end: see there.
func (p *Pipe) Read() ([]byte, error) {
	if p.rerr != nil {
		return nil, p.rerr
	}
	if p.returned {
		p.msg, p.msgOp, p.returned = p.msg[:0], 0, false
	}
	for {
		if !p.inFrame {
			if err := p.readHeader(); err != nil {
				return nil, p.readFailed(err)
			}
		}
		h := p.hdr
		if h.OpCode.IsControl() {
			payload := p.ctl[:h.Length]
			if err := p.readPayload(payload); err != nil {
				return nil, p.readFailed(err)
			}
			p.inFrame = false
			switch h.OpCode {
			case ws.OpPing:
				if err := p.writeControl(ws.OpPong, payload); err != nil {
					return nil, p.readFailed(err)
				}
			case ws.OpClose:
				return nil, p.peerClosed(payload)
			}
			continue
		}
		if err := p.readPayload(p.msg[p.base:]); err != nil {
			return nil, p.readFailed(err)
		}
		p.inFrame = false
		if !h.Fin {
			continue
		}
		if p.msgOp != ws.OpText { // binary: not part of the protocol
			p.msg, p.msgOp = p.msg[:0], 0
			continue
		}
		p.returned = true
		return p.msg, nil
	}
}

// readHeader reads the next frame header without consuming anything until
// all of it is buffered, so that a deadline in the middle loses nothing,
// and prepares msg for a data frame's payload.
func (p *Pipe) readHeader() error {
	b, err := p.br.Peek(2)
	if err != nil {
		return err
	}
	n := 2
	if b[1]&0x80 != 0 {
		n += 4
	}
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b, err = p.br.Peek(n); err != nil {
		return err
	}
	p.hr.Reset(b)
	h, err := ws.ReadHeaderBuffer(&p.hr, p.rhbuf[:0])
	if err != nil {
		return &frameError{code: ws.StatusProtocolError, err: fmt.Errorf("bad frame header: %w", err)}
	}
	p.br.Discard(n)
	state := ws.StateClientSide
	if p.msgOp != 0 {
		state = state.Set(ws.StateFragmented)
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return &frameError{code: ws.StatusProtocolError, err: fmt.Errorf("bad frame: %w", err)}
	}
	p.hdr, p.got, p.inFrame = h, 0, true
	if h.OpCode.IsControl() {
		return nil
	}
	if size := int64(len(p.msg)) + h.Length; size > p.limit {
		return &frameError{code: ws.StatusMessageTooBig,
			err: fmt.Errorf("message of at least %d bytes is over the limit of %d", size, p.limit)}
	}
	if h.OpCode != ws.OpContinuation {
		p.msgOp = h.OpCode
	}
	p.base = len(p.msg)
	p.msg = slices.Grow(p.msg, int(h.Length))[:p.base+int(h.Length)]
	return nil
}

// readPayload fills buf, resuming at p.got after an interrupted Read.
func (p *Pipe) readPayload(buf []byte) error {
	for p.got < int64(len(buf)) {
		n, err := p.br.Read(buf[p.got:])
		p.got += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readFailed turns a read error into Read's: a deadline is returned as is
// (state kept, Read may resume); anything else ends reading for good.
func (p *Pipe) readFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("read from gateway %s: %w", displayURL(p.url), err)
	}
	var fe *frameError
	if errors.As(err, &fe) {
		p.writeControl(ws.OpClose, ws.NewCloseFrameBody(fe.code, "")) // best effort: we are failing anyway
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		p.rerr = fmt.Errorf("read from gateway %s: %w without a close frame", displayURL(p.url), errConnClosed)
	default:
		p.rerr = fmt.Errorf("read from gateway %s: %w: %w", displayURL(p.url), errConnClosed, err)
	}
	p.conn.Close()
	return p.rerr
}

// peerClosed handles the gateway's close frame: it is answered (unless
// this side already sent one) and the TCP connection closed.
func (p *Pipe) peerClosed(payload []byte) error {
	code, reason := ws.ParseCloseFrameData(payload)
	ce := &CloseError{Code: int(code), Reason: reason}
	if code.Empty() {
		ce.Code = int(ws.StatusNoStatusRcvd)
		code = ws.StatusNormalClosure
	}
	p.writeControl(ws.OpClose, ws.NewCloseFrameBody(code, "")) // best effort: the gateway is leaving
	p.rerr = ce
	p.conn.Close()
	return ce
}

// Write sends frames (each one complete JSON text message) with a single
// write syscall. It fails for good once a write failed or Close began;
// such errors wrap ErrClosed.
func (p *Pipe) Write(frames ...[]byte) error {
	if len(frames) == 0 {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	p.wbuf.Reset()
	for _, f := range frames {
		p.appendFrame(ws.OpText, f)
	}
	return p.flush()
}

// writeControl sends one control frame; a close frame is sent at most
// once, and nothing is sent after it.
func (p *Pipe) writeControl(op ws.OpCode, payload []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	p.wbuf.Reset()
	p.appendFrame(op, payload)
	if op == ws.OpClose {
		p.closeSent = true
	}
	return p.flush()
}

func (p *Pipe) writable() error {
	if p.werr != nil {
		return p.werr
	}
	if p.closeSent {
		return fmt.Errorf("send to gateway %s: %w (closing)", displayURL(p.url), errConnClosed)
	}
	return nil
}

// appendFrame adds one masked frame to wbuf (wmu held).
func (p *Pipe) appendFrame(op ws.OpCode, payload []byte) {
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	ws.WriteHeaderBuffer(&p.wbuf, h, p.whbuf[:]) // a bytes.Buffer does not fail
	start := p.wbuf.Len()
	p.wbuf.Write(payload)
	ws.Cipher(p.wbuf.Bytes()[start:], h.Mask, 0)
}

// flush writes wbuf in one syscall under the stuck-peer bound (wmu held).
// The deadline is moved only when less than half of it is left, not on
// every write.
func (p *Pipe) flush() error {
	now := time.Now()
	if p.wdl.Sub(now) < writeTimeout/2 {
		p.wdl = now.Add(writeTimeout)
		if err := p.conn.SetWriteDeadline(p.wdl); err != nil {
			p.werr = fmt.Errorf("send to gateway %s: %w: %w", displayURL(p.url), errConnClosed, err)
			return p.werr
		}
	}
	_, err := p.conn.Write(p.wbuf.Bytes())
	if p.wbuf.Cap() > 1<<20 {
		p.wbuf = bytes.Buffer{} // a one-off big message: do not keep its buffer
	}
	if err != nil {
		// Part of a frame may have gone out: the stream is unusable.
		p.werr = fmt.Errorf("send to gateway %s: %w: %w", displayURL(p.url), errConnClosed, err)
		return p.werr
	}
	return nil
}

// Close sends close 1000, waits (at most about a second) for the gateway's
// close frame, dropping what arrives before it, and closes the TCP
// connection. After the gateway closed first it only closes the TCP
// connection. Closing twice returns nil. Close must not run concurrently
// with Read.
func (p *Pipe) Close() error {
	var err error
	p.closeOnce.Do(func() {
		if p.rerr == nil {
			if p.writeControl(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")) == nil {
				p.awaitClose(pipeCloseWait)
			}
		}
		if cerr := p.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("close gateway connection %s: %w", displayURL(p.url), cerr)
		}
	})
	return err
}
