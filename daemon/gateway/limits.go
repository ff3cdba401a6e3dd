package gateway

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Connection caps. Every accepted connection counts against
// Limits.MaxConnections until it closes; a connection that has not
// authenticated (a WebSocket before hello-ok, and every plain HTTP
// connection, which authenticates per request) also counts against
// Limits.MaxPreAuthPerIP for its client address (IPv6 by /64). Past a cap
// the gateway answers 503 with Retry-After and closes; the refusals are
// logged at most once per capLogEvery.
const capLogEvery = 10 * time.Second

// Limits are the connection caps (hot-reloadable; applied to new
// connections).
type Limits struct {
	MaxConnections  int // open connections in total; <= 0: config.DefaultMaxConnections
	MaxPreAuthPerIP int // unauthenticated connections per client address; <= 0: config.DefaultMaxPreAuthPerIP
}

// connCaps counts a server generation's connections.
type connCaps struct {
	s     *Server
	total atomic.Int64
	mu    sync.Mutex
	perIP map[string]int // client key → unauthenticated connections
	log   logEvery
	// linger bounds the goroutines that wait for a refused client to read
	// its 503 before the socket closes.
	linger chan struct{}
}

func newConnCaps(s *Server) *connCaps {
	return &connCaps{s: s, perIP: map[string]int{}, linger: make(chan struct{}, 64)}
}

// capListener applies the caps to every connection l accepts.
type capListener struct {
	net.Listener
	caps *connCaps
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if cc := l.caps.admit(c); cc != nil {
			return cc, nil
		}
	}
}

// admit counts c, or refuses it (503, close) and returns nil.
func (k *connCaps) admit(c net.Conn) *capConn {
	lim := k.s.settings.Load().Limits
	key := clientKey(c.RemoteAddr().String())
	if _, unix := c.RemoteAddr().(*net.UnixAddr); unix {
		key = "" // a unix socket's peers are local users: only the total applies
	}
	if n := k.total.Add(1); n > int64(lim.MaxConnections) {
		k.total.Add(-1)
		k.refuse(c, "total", int(n-1), lim.MaxConnections)
		return nil
	}
	if key != "" {
		k.mu.Lock()
		n := k.perIP[key]
		if n >= lim.MaxPreAuthPerIP {
			k.mu.Unlock()
			k.total.Add(-1)
			k.refuse(c, "per-address", n, lim.MaxPreAuthPerIP)
			return nil
		}
		k.perIP[key] = n + 1
		k.mu.Unlock()
	}
	return &capConn{Conn: c, caps: k, key: key}
}

func (k *connCaps) release(key string) {
	if key == "" {
		return
	}
	k.mu.Lock()
	if n := k.perIP[key] - 1; n > 0 {
		k.perIP[key] = n
	} else {
		delete(k.perIP, key)
	}
	k.mu.Unlock()
}

// preAuth is the number of unauthenticated connections from remote's
// address (for tests).
func (k *connCaps) preAuth(remote string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.perIP[clientKey(remote)]
}

// refuse answers 503 on a connection over a cap and closes it.
func (k *connCaps) refuse(c net.Conn, which string, n, limit int) {
	if k.log.allow(which, time.Now()) {
		k.s.log.Warn("connection refused: too many connections", "cap", which, "open", n, "limit", limit,
			"remote", c.RemoteAddr().String(), "refusedSinceLastLog", k.log.suppressed(which),
			"fix", "raise gateway.limits.maxConnections / maxPreAuthPerIp if this load is legitimate")
	}
	body := `{"error":{"type":"unavailable","message":"too many connections (` + which + ` limit ` + strconv.Itoa(limit) + `); retry later"}}` + "\n"
	resp := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	// The answer goes out after the request's head has arrived (HTTP
	// clients discard a response that comes before their request), within
	// a second, on a bounded number of goroutines; past that bound the
	// connection is just closed.
	select {
	case k.linger <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-k.linger }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		var buf [4096]byte
		var head []byte
		for len(head) < len(buf) && !bytes.Contains(head, []byte("\r\n\r\n")) {
			n, err := c.Read(buf[len(head):])
			head = buf[:len(head)+n]
			if err != nil {
				return
			}
		}
		_, _ = c.Write([]byte(resp))
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		// Let the client read the answer before the close (unread request
		// bytes would make the close a reset).
		for range 16 {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

// capConn is a counted connection: Close releases its place.
type capConn struct {
	net.Conn
	caps   *connCaps
	key    string
	authed atomic.Bool
	closed atomic.Bool
}

// NetConn returns the underlying connection (for vectored writes).
func (c *capConn) NetConn() net.Conn { return c.Conn }

// authenticated moves the connection out of its address's
// unauthenticated count (it still counts in the total).
func (c *capConn) authenticated() {
	if !c.closed.Load() && c.authed.CompareAndSwap(false, true) {
		c.caps.release(c.key)
	}
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.caps.total.Add(-1)
		if c.authed.CompareAndSwap(false, true) {
			c.caps.release(c.key)
		}
	}
	return err
}

// logEvery lets one log line per key through per capLogEvery and counts
// the ones it held back.
type logEvery struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func (l *logEvery) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < capLogEvery {
		l.held[key]++
		return false
	}
	l.last[key] = now
	return true
}

// suppressed returns and resets the count held back for key.
func (l *logEvery) suppressed(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.held[key]
	delete(l.held, key)
	return n
}
