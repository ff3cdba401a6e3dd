// Package notifytest is a fake systemd notification socket for tests: it
// listens on a unixgram socket, parses every sd_notify message it receives
// and lets a test wait for them. Point a process at it with Env() or
// t.Setenv("NOTIFY_SOCKET", s.Path()).
package notifytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Message is one sd_notify datagram.
type Message struct {
	// Fields maps each KEY to its value ("READY" → "1").
	Fields map[string]string
	// Raw is the datagram as received.
	Raw string
}

// Get returns the value of key, or "" if the message does not carry it.
func (m Message) Get(key string) string { return m.Fields[key] }

// Has reports whether the message carries key.
func (m Message) Has(key string) bool {
	_, ok := m.Fields[key]
	return ok
}

// Parse splits a datagram into its KEY=value lines.
func Parse(raw string) Message {
	m := Message{Fields: map[string]string{}, Raw: raw}
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			m.Fields[k] = v
		}
	}
	return m
}

// Socket is a listening fake NOTIFY_SOCKET.
type Socket struct {
	path string
	conn *net.UnixConn

	mu      sync.Mutex
	msgs    []Message
	next    int           // index of the next message Next returns
	changed chan struct{} // closed and replaced when msgs grows or reading stops
	readErr error
}

// Listen creates a unixgram socket in a short temporary directory (unix
// socket paths are limited to about 100 bytes, which t.TempDir() can
// exceed) and starts recording messages. Cleanup closes and removes it.
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "nt")
	if err != nil {
		t.Fatalf("notifytest: create temp dir: %v", err)
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("notifytest: listen on %s: %v", path, err)
	}
	// The service may run as another user (systemd drops privileges).
	_ = os.Chmod(dir, 0o755)
	_ = os.Chmod(path, 0o777)
	s := &Socket{path: path, conn: conn, changed: make(chan struct{})}
	done := make(chan struct{})
	go s.read(done)
	t.Cleanup(func() {
		conn.Close()
		<-done
		os.RemoveAll(dir)
	})
	return s
}

func (s *Socket) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 64*1024)
	for {
		n, _, err := s.conn.ReadFromUnix(buf)
		s.mu.Lock()
		if err != nil {
			s.readErr = err
		} else {
			s.msgs = append(s.msgs, Parse(string(buf[:n])))
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Path is the socket's file system path.
func (s *Socket) Path() string { return s.path }

// Env is "NOTIFY_SOCKET=<path>", ready for exec.Cmd.Env.
func (s *Socket) Env() string { return "NOTIFY_SOCKET=" + s.path }

// ErrClosed is returned by Next and WaitFor once the socket is closed and
// every received message was consumed.
var ErrClosed = errors.New("notifytest: socket closed")

// Next returns the next message not yet returned by Next or WaitFor,
// waiting for one until ctx is done.
func (s *Socket) Next(ctx context.Context) (Message, error) {
	for {
		s.mu.Lock()
		if s.next < len(s.msgs) {
			m := s.msgs[s.next]
			s.next++
			s.mu.Unlock()
			return m, nil
		}
		if s.readErr != nil {
			s.mu.Unlock()
			return Message{}, ErrClosed
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-ch:
		}
	}
}

// WaitFor consumes messages until one satisfies pred and returns it. On
// timeout the error lists every message received so far.
func (s *Socket) WaitFor(ctx context.Context, pred func(Message) bool) (Message, error) {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			var raw []string
			for _, m := range s.Messages() {
				raw = append(raw, m.Raw)
			}
			return Message{}, fmt.Errorf("notifytest: no matching message among %d received %q: %w", len(raw), raw, err)
		}
		if pred(m) {
			return m, nil
		}
	}
}

// Messages returns every message received so far, consumed or not.
func (s *Socket) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}
