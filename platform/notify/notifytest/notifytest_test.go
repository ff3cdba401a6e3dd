package notifytest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, path, msg string) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want map[string]string
	}{
		{"READY=1", map[string]string{"READY": "1"}},
		{"READY=1\nSTATUS=a=b c\n", map[string]string{"READY": "1", "STATUS": "a=b c"}},
		{"garbage\n=x\nWATCHDOG=1", map[string]string{"WATCHDOG": "1"}},
		{"", map[string]string{}},
	}
	for _, tt := range tests {
		m := Parse(tt.raw)
		if m.Raw != tt.raw || len(m.Fields) != len(tt.want) {
			t.Errorf("Parse(%q) = %+v, want fields %v", tt.raw, m, tt.want)
			continue
		}
		for k, v := range tt.want {
			if m.Get(k) != v || !m.Has(k) {
				t.Errorf("Parse(%q)[%s] = %q, want %q", tt.raw, k, m.Get(k), v)
			}
		}
	}
}

func TestSocket(t *testing.T) {
	s := Listen(t)
	if len(s.Path()) > 100 {
		t.Fatalf("socket path %q is too long for sun_path", s.Path())
	}
	if s.Env() != "NOTIFY_SOCKET="+s.Path() {
		t.Fatalf("Env() = %q", s.Env())
	}
	send(t, s.Path(), "STATUS=starting")
	send(t, s.Path(), "READY=1\nSTATUS=ready")
	send(t, s.Path(), "WATCHDOG=1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil || m.Get("STATUS") != "starting" {
		t.Fatalf("Next = %+v, %v", m, err)
	}
	m, err = s.WaitFor(ctx, func(m Message) bool { return m.Has("WATCHDOG") })
	if err != nil || m.Raw != "WATCHDOG=1" {
		t.Fatalf("WaitFor = %+v, %v", m, err)
	}
	if got := len(s.Messages()); got != 3 {
		t.Fatalf("Messages() has %d, want 3 (all recorded, consumed or not)", got)
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	_, err = s.WaitFor(short, func(m Message) bool { return m.Has("STOPPING") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "READY=1") {
		t.Fatalf("WaitFor timeout error = %v, want deadline exceeded listing what was received", err)
	}
}

func TestSocketCleanup(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		path = Listen(t).Path()
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket %s still exists after cleanup: %v", path, err)
	}
}
