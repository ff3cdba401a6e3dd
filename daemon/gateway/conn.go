package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/google/uuid"
)

// wsConn is one authenticated (or authenticating) WebSocket client.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	id     string
	remote string
	origin string

	// Set once at hello.
	params   *protocol.ConnectParams
	role     string
	scopes   []string
	presence string // presence key
	listed   bool   // has a presence entry (not a one-off cli connection)

	mu      sync.Mutex
	queue   [][]byte
	queued  int64
	writing bool
	seq     int64
	closed  bool

	closeOnce sync.Once
	done      chan struct{}
	lastRead  atomic.Int64 // unix ms of the last frame read
	attached  atomic.Bool  // hello-ok sent, receiving events
	async     atomic.Int32 // running Async extension calls
	peerRef   atomic.Pointer[Peer]

	deviceToken string // issued in hello-ok by an Admitter (Peer.IssueDeviceToken)
}

// send queues one frame. Frames go out in queue order; a single flusher
// goroutine drains the queue and exits when it is empty.
func (c *wsConn) send(frame []byte) {
	c.mu.Lock()
	start, slow := c.enqueueLocked(frame)
	c.mu.Unlock()
	c.afterEnqueue(start, slow)
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

// sendInline is send for the connection's own reader goroutine: when the
// queue is idle it writes directly, saving a goroutine per response.
func (c *wsConn) sendInline(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.writing || len(c.queue) > 0 {
		c.mu.Unlock()
		c.send(frame)
		return
	}
	c.writing = true
	c.mu.Unlock()
	if err := c.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
		c.close(protocol.CloseInternalError, "write failed")
		return
	}
	c.flush()
}

func (c *wsConn) flush() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, f := range batch {
			if err := c.ws.Write(context.Background(), websocket.MessageText, f); err != nil {
				c.mu.Lock()
				c.writing = false
				c.queue = nil
				c.queued = 0
				c.mu.Unlock()
				c.close(protocol.CloseInternalError, "write failed")
				return
			}
			c.mu.Lock()
			c.queued -= int64(len(f))
			c.mu.Unlock()
		}
	}
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
		go func() {
			_ = c.ws.Close(websocket.StatusCode(code), reason)
		}()
	})
}

// closeAfterFlush waits (bounded) for queued frames to be written, then
// closes: used for error responses followed by a close, and for shutdown.
func (c *wsConn) closeAfterFlush(code int, reason string, wait time.Duration) {
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
