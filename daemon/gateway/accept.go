package gateway

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Acceptor owns one listening socket across server generations. Its
// goroutine accepts connections and hands them to whichever View is current;
// between generations (an in-process restart) connections wait in the
// kernel's listen queue, so none is refused. The socket itself is never
// closed by a View: only Close closes it.
type Acceptor struct {
	ln    net.Listener
	conns chan net.Conn
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type deadliner interface{ SetDeadline(time.Time) error }

// NewAcceptor starts accepting on ln.
func NewAcceptor(ln net.Listener) *Acceptor {
	a := &Acceptor{ln: ln, conns: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

// Addr is the socket's address.
func (a *Acceptor) Addr() net.Addr { return a.ln.Addr() }

func (a *Acceptor) loop() {
	defer close(a.done)
	backoff := 5 * time.Millisecond
	for {
		c, err := a.ln.Accept()
		if err != nil {
			select {
			case <-a.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off, bounded, and keep the socket.
			time.Sleep(backoff)
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case a.conns <- c:
		case <-a.stop:
			// Stopping with a connection in hand: give the current view a
			// last chance to take it, else close it.
			select {
			case a.conns <- c:
			case <-time.After(time.Second):
				c.Close()
			}
			return
		}
	}
}

// StopAccepting stops taking new connections from the kernel without
// closing the socket: the rest stay queued for the next owner (the next
// generation, or under socket activation the next process).
func (a *Acceptor) StopAccepting() {
	a.once.Do(func() {
		close(a.stop)
		if d, ok := a.ln.(deadliner); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
		} else {
			a.ln.Close()
		}
	})
	<-a.done
}

// Close stops accepting and closes the socket.
func (a *Acceptor) Close() error {
	a.StopAccepting()
	return a.ln.Close()
}

// View returns a net.Listener for one server generation. Closing the view
// ends that generation's Accept without touching the socket.
func (a *Acceptor) View() net.Listener {
	return &view{a: a, closed: make(chan struct{})}
}

type view struct {
	a      *Acceptor
	closed chan struct{}
	once   sync.Once
}

func (v *view) Accept() (net.Conn, error) {
	select {
	case c := <-v.a.conns:
		return c, nil
	case <-v.closed:
		return nil, net.ErrClosed
	case <-v.a.done:
		// The acceptor stopped; drain a connection it may still hand over.
		select {
		case c := <-v.a.conns:
			return c, nil
		default:
		}
		return nil, net.ErrClosed
	}
}

func (v *view) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *view) Addr() net.Addr { return v.a.ln.Addr() }
