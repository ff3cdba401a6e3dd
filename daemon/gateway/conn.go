package gateway

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gobwas/ws"
	"github.com/google/uuid"
)

// wsConn is one authenticated (or authenticating) WebSocket client.
type wsConn struct {
	s      *Server
	t      *wsTransport
	id     string
	remote string
	origin string

	// Set once at hello.
	params   *protocol.ConnectParams
	role     string
	scopes   []string
	presence string // presence key
	listed   bool   // has a presence entry (not a one-off cli connection)

	// The outbound queue. Whoever sets writing owns the socket's write side
	// until it sees the queue empty: a flusher goroutine, a reader writing
	// a response inline, or the reader holding responses back (corked)
	// while more requests are already buffered.
	mu      sync.Mutex
	queue   [][]byte // text messages
	spare   [][]byte // the previous batch's slice, reused
	ctl     [][]byte // complete control frames (pong, ping), sent first
	queued  int64
	writing bool
	corked  bool
	seq     int64
	closed  bool

	closeOnce sync.Once
	done      chan struct{}
	lastRead  atomic.Int64 // unix ms of the last frame read
	attached  atomic.Bool  // hello-ok sent, receiving events
	async     atomic.Int32 // running Async extension calls
	peerRef   atomic.Pointer[Peer]

	sysEvents bucket // system-event rate limit (under s.events.mu)

	deviceToken string // issued in hello-ok by an Admitter (Peer.IssueDeviceToken)
}

// enqueueLocked appends a frame; it reports whether a flusher must start
// and whether the client is over its outbound buffer.
func (c *wsConn) enqueueLocked(frame []byte) (start, slow bool) {
	if c.closed {
		return false, false
	}
	if c.queued+int64(len(frame)) > protocol.MaxBufferedBytes {
		return false, true
	}
	c.queue = append(c.queue, frame)
	c.queued += int64(len(frame))
	if c.writing {
		return false, false
	}
	c.writing = true
	return true, false
}

func (c *wsConn) afterEnqueue(start, slow bool) {
	if slow {
		c.close(protocol.ClosePolicyViolation, "slow consumer")
		return
	}
	if start {
		go c.flush()
	}
}

// sendControl queues a complete control frame ahead of queued messages.
func (c *wsConn) sendControl(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.ctl = append(c.ctl, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.flush()
	}
}

// sendInline is send for a goroutine that can afford to write: when the
// queue is idle it writes directly, saving a goroutine per response.
func (c *wsConn) sendInline(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.writing || len(c.queue) > 0 {
		start, slow := c.enqueueLocked(frame)
		c.mu.Unlock()
		c.afterEnqueue(start, slow)
		return
	}
	c.writing = true
	c.mu.Unlock()
	one := [1][]byte{frame}
	if err := c.t.writeFrames(nil, one[:]); err != nil {
		c.writeFailed(err)
		return
	}
	c.flush()
}

// cork is called by the reader when another request is already buffered:
// responses queue up (if nobody is writing) until uncork writes them all
// at once.
func (c *wsConn) cork() {
	c.mu.Lock()
	if !c.writing && !c.closed {
		c.writing = true
		c.corked = true
	}
	c.mu.Unlock()
}

// uncork writes what queued up while corked. Any goroutine may call it.
func (c *wsConn) uncork() {
	c.mu.Lock()
	if !c.corked {
		c.mu.Unlock()
		return
	}
	c.corked = false
	c.mu.Unlock()
	c.flush()
}

// flush writes queued frames, a whole batch per write, until the queue is
// empty; the caller owns the write side (writing is set).
func (c *wsConn) flush() {
	for {
		c.mu.Lock()
		if (len(c.queue) == 0 && len(c.ctl) == 0) || c.closed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch, ctl := c.queue, c.ctl
		c.queue, c.ctl, c.spare = c.spare, nil, nil
		c.mu.Unlock()
		err := c.t.writeFrames(ctl, batch)
		var n int64
		for _, f := range batch {
			n += int64(len(f))
		}
		clear(batch)
		c.mu.Lock()
		c.queued -= n
		if cap(batch) <= 64 {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// writeFailed gives up the write side after a failed write and closes.
func (c *wsConn) writeFailed(err error) {
	c.mu.Lock()
	c.writing = false
	c.corked = false
	c.queue = nil
	c.queued = 0
	c.mu.Unlock()
	if errors.Is(err, errClosing) {
		return // the close handshake is under way
	}
	c.close(protocol.CloseInternalError, "write failed")
}

// sendEvent queues an event with this connection's next seq; seq order and
// queue order are the same because both happen under one lock.
func (c *wsConn) sendEvent(name string, payload []byte, sv *protocol.StateVersion) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.seq++
	start, slow := c.enqueueLocked(eventFrame(name, payload, c.seq, sv))
	c.mu.Unlock()
	c.afterEnqueue(start, slow)
}

func eventFrame(name string, payload []byte, seq int64, sv *protocol.StateVersion) []byte {
	b := make([]byte, 0, 64+len(payload))
	b = append(b, `{"type":"event","event":`...)
	b = strconv.AppendQuote(b, name)
	if payload != nil {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	if seq > 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, seq, 10)
	}
	if sv != nil {
		b = append(b, `,"stateVersion":{"presence":`...)
		b = strconv.AppendInt(b, sv.Presence, 10)
		b = append(b, `,"health":`...)
		b = strconv.AppendInt(b, sv.Health, 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// respond sends a response frame from the reader goroutine.
func (c *wsConn) respond(id string, payload any, perr *protocol.Error) {
	c.sendInline(responseFrame(id, payload, perr))
}

func responseFrame(id string, payload any, perr *protocol.Error) []byte {
	f := protocol.ResponseFrame{Type: protocol.TypeRes, ID: id, OK: perr == nil, Payload: payload, Error: perr}
	b, err := json.Marshal(&f)
	if err != nil {
		f = protocol.ResponseFrame{Type: protocol.TypeRes, ID: id, OK: false,
			Error: protocol.Errorf(protocol.ErrUnavailable, "internal error: encode response: "+err.Error())}
		b, _ = json.Marshal(&f)
	}
	return b
}

// close closes the WebSocket with code and reason (cut to 120 bytes), once.
// It does not block the caller on the close handshake.
func (c *wsConn) close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		if len(reason) > protocol.MaxCloseReason {
			reason = reason[:protocol.MaxCloseReason]
		}
		go c.t.sendClose(ws.StatusCode(code), reason)
	})
}

// closeAfterFlush waits (bounded) for queued frames to be written, then
// closes: used for error responses followed by a close, and for shutdown.
func (c *wsConn) closeAfterFlush(code int, reason string, wait time.Duration) {
	c.uncork()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		idle := !c.writing && len(c.queue) == 0
		c.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.close(code, reason)
}

func newConnID() string { return uuid.NewString() }
