package listen

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func testLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		str     string
		wantErr string
	}{
		{in: "systemd:gatewayd.socket", want: Spec{Kind: KindSystemd, Name: "gatewayd.socket"}, str: "systemd:gatewayd.socket"},
		{in: "launchd:Listeners", want: Spec{Kind: KindLaunchd, Name: "Listeners"}, str: "launchd:Listeners"},
		{in: "unix:/run/gatewayd/gw.sock", want: Spec{Kind: KindUnix, Addr: "/run/gatewayd/gw.sock"}, str: "unix:/run/gatewayd/gw.sock"},
		{in: "127.0.0.1:18789", want: Spec{Kind: KindTCP, Addr: "127.0.0.1:18789"}, str: "127.0.0.1:18789"},
		{in: "[::1]:18789", want: Spec{Kind: KindTCP, Addr: "[::1]:18789"}, str: "[::1]:18789"},
		{in: " localhost:0 ", want: Spec{Kind: KindTCP, Addr: "localhost:0"}, str: "localhost:0"},
		{in: ":18789", want: Spec{Kind: KindTCP, Addr: ":18789"}, str: ":18789"},
		{in: "tcp:0.0.0.0:80", want: Spec{Kind: KindTCP, Addr: "0.0.0.0:80"}, str: "0.0.0.0:80"},
		{in: "", wantErr: "empty listen address"},
		{in: "systemd:", wantErr: "systemd socket name is empty"},
		{in: "systemd:a:b", wantErr: "contains ':'"},
		{in: "launchd:", wantErr: "launchd socket name is empty"},
		{in: "unix:", wantErr: "empty unix socket path"},
		{in: "unix:/" + strings.Repeat("x", 200), wantErr: "choose a shorter path"},
		{in: "127.0.0.1", wantErr: "missing port"},
		{in: "::1:80", wantErr: "too many colons"},
		{in: "127.0.0.1:http", wantErr: `port "http" is not a number`},
		{in: "127.0.0.1:70000", wantErr: "between 0 and 65535"},
		{in: "example.com:80", wantErr: "not an IP address or localhost"},
		{in: "foo:bar", wantErr: "want systemd:NAME, launchd:NAME, unix:/path or HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSpec(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.str {
				t.Fatalf("String() = %q, want %q", got.String(), tt.str)
			}
			again, err := ParseSpec(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestBindAddrs(t *testing.T) {
	tests := []struct {
		bind    string
		port    int
		want    []string
		wantErr string
	}{
		{bind: "loopback", port: 18789, want: []string{"127.0.0.1:18789", "[::1]:18789"}},
		{bind: "", port: 1, want: []string{"127.0.0.1:1", "[::1]:1"}},
		{bind: "lan", port: 19001, want: []string{"0.0.0.0:19001"}},
		{bind: "192.168.1.10", port: 80, want: []string{"192.168.1.10:80"}},
		{bind: "::1", port: 80, want: []string{"[::1]:80"}},
		{bind: "[fd00::2]", port: 80, want: []string{"[fd00::2]:80"}},
		{bind: "everywhere", port: 80, wantErr: "want loopback, lan, or an IP address"},
		{bind: "loopback", port: -1, wantErr: "invalid port -1"},
		{bind: "loopback", port: 65536, wantErr: "invalid port 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.bind+"/"+strconv.Itoa(tt.port), func(t *testing.T) {
			got, err := BindAddrs(tt.bind, tt.port)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("BindAddrs = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("BindAddrs(%q, %d) = %v, want %v", tt.bind, tt.port, got, tt.want)
			}
		})
	}
}

func TestIsLoopbackOnly(t *testing.T) {
	tests := []struct {
		addrs []string
		want  bool
	}{
		{nil, false},
		{[]string{"127.0.0.1:1", "[::1]:1"}, true},
		{[]string{"127.1.2.3:1"}, true},
		{[]string{"localhost:1"}, true},
		{[]string{"unix:/run/gw.sock", "/tmp/x.sock"}, true},
		{[]string{"[::ffff:127.0.0.1]:1"}, true},
		{[]string{"127.0.0.1:1", "0.0.0.0:1"}, false},
		{[]string{"[::]:1"}, false},
		{[]string{":1"}, false},
		{[]string{"192.168.1.2:1"}, false},
		{[]string{"garbage"}, false},
	}
	for _, tt := range tests {
		if got := IsLoopbackOnly(tt.addrs); got != tt.want {
			t.Errorf("IsLoopbackOnly(%q) = %v, want %v", tt.addrs, got, tt.want)
		}
	}
}

func TestSetSource(t *testing.T) {
	tests := []struct {
		sources []string
		want    string
	}{
		{nil, ""},
		{[]string{"systemd", "systemd"}, "systemd"},
		{[]string{"bind"}, "bind"},
		{[]string{"launchd", "bind"}, "mixed"},
	}
	for _, tt := range tests {
		s := &Set{}
		for _, src := range tt.sources {
			s.Listeners = append(s.Listeners, Listener{Source: src})
		}
		if got := s.Source(); got != tt.want {
			t.Errorf("Source of %v = %q, want %q", tt.sources, got, tt.want)
		}
	}
}

// checkServes proves a listener really accepts: it dials it and reads a byte
// written by the accepting side.
func checkServes(t *testing.T, l net.Listener) {
	t.Helper()
	if d, ok := l.(interface{ SetDeadline(time.Time) error }); ok {
		_ = d.SetDeadline(time.Now().Add(10 * time.Second))
		defer d.SetDeadline(time.Time{})
	}
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		done <- err
	}()
	network := l.Addr().Network()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatalf("dial %s: %v", l.Addr(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read from %s: %q, %v", l.Addr(), b, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("accept on %s: %v", l.Addr(), err)
	}
}

func TestAcquireFallbackLoopbackPair(t *testing.T) {
	var buf bytes.Buffer
	set, err := Acquire(nil, []string{"127.0.0.1:0", "[::1]:0"}, testLogger(&buf))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Source() != SourceBind {
		t.Fatalf("Source = %q, want bind", set.Source())
	}
	addrs := set.Addrs()
	if len(addrs) == 0 || !strings.HasPrefix(addrs[0], "127.0.0.1:") {
		t.Fatalf("Addrs = %v, want 127.0.0.1 first", addrs)
	}
	if !IsLoopbackOnly(addrs) {
		t.Fatalf("IsLoopbackOnly(%v) = false", addrs)
	}
	if len(addrs) == 1 && !strings.Contains(buf.String(), "skipping IPv6") {
		t.Fatalf("[::1] neither bound nor skipped with a log line; log:\n%s", buf.String())
	}
	for _, l := range set.Listeners {
		checkServes(t, l)
	}
	if err := set.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := set.Listeners[0].Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestAcquireSkipsUnusableIPv6(t *testing.T) {
	// 2001:db8::/32 is the documentation prefix: no host has it, so binding
	// fails with EADDRNOTAVAIL (or EAFNOSUPPORT without IPv6 at all).
	var buf bytes.Buffer
	set, err := Acquire(nil, []string{"127.0.0.1:0", "[2001:db8::1]:0"}, testLogger(&buf))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if len(set.Listeners) != 1 {
		t.Fatalf("got %d listeners (%v), want only the IPv4 one", len(set.Listeners), set.Addrs())
	}
	if !strings.Contains(buf.String(), "skipping IPv6") || !strings.Contains(buf.String(), "2001:db8::1") {
		t.Fatalf("no debug line about the skipped address; log:\n%s", buf.String())
	}

	// Alone, the unusable address is an error, not an empty set.
	if set, err := Acquire(nil, []string{"[2001:db8::1]:0"}, nil); err == nil {
		set.Close()
		t.Fatal("Acquire of only an unusable IPv6 address succeeded")
	} else if !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Fatalf("error %v does not wrap EADDRNOTAVAIL/EAFNOSUPPORT", err)
	}
}

func TestAcquireAddrInUseClosesWhatItOpened(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// Find a free port to be opened first and released on failure.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := probe.Addr().String()
	probe.Close()

	for _, tc := range []struct {
		name  string
		specs []Spec
		fb    []string
	}{
		{name: "fallback", fb: []string{free, busy.Addr().String()}},
		{name: "specs", specs: []Spec{{Kind: KindTCP, Addr: free}, {Kind: KindTCP, Addr: busy.Addr().String()}}},
		{name: "ipv6-busy-is-not-skipped", fb: []string{free, busy.Addr().String(), "[::1]:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Acquire(tc.specs, tc.fb, nil)
			if err == nil {
				set.Close()
				t.Fatal("Acquire succeeded on a busy address")
			}
			var inUse *AddrInUseError
			if !errors.As(err, &inUse) || inUse.Addr != busy.Addr().String() {
				t.Fatalf("error %v (%T) is not an *AddrInUseError for %s", err, err, busy.Addr())
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("errors.Is(%v, EADDRINUSE) = false", err)
			}
			if !strings.Contains(err.Error(), busy.Addr().String()) {
				t.Fatalf("error %q does not name the address", err)
			}
			// The address opened before the failure must have been closed.
			l, err := net.Listen("tcp", free)
			if err != nil {
				t.Fatalf("%s still held after a failed Acquire: %v", free, err)
			}
			l.Close()
		})
	}
}

func TestAcquireNoAddress(t *testing.T) {
	_, err := Acquire(nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no listen address") {
		t.Fatalf("Acquire(nil, nil) = %v, want a no-listen-address error", err)
	}
}

func TestAcquireUnix(t *testing.T) {
	dir, err := os.MkdirTemp("", "ls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	t.Run("fresh", func(t *testing.T) {
		path := filepath.Join(dir, "fresh.sock")
		set, err := Acquire([]Spec{{Kind: KindUnix, Addr: path}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o660 {
			t.Fatalf("socket mode %v, want 0660", perm)
		}
		if got := set.Addrs(); len(got) != 1 || got[0] != "unix:"+path {
			t.Fatalf("Addrs = %v", got)
		}
		if !IsLoopbackOnly(set.Addrs()) {
			t.Fatal("a unix socket is not loopback-only")
		}
		checkServes(t, set.Listeners[0])
	})

	t.Run("stale", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("stale socket file missing: %v", err)
		}
		var buf bytes.Buffer
		set, err := Acquire([]Spec{{Kind: KindUnix, Addr: path}}, nil, testLogger(&buf))
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		if !strings.Contains(buf.String(), "removed stale unix socket") {
			t.Fatalf("no log line about the stale socket; log:\n%s", buf.String())
		}
		checkServes(t, set.Listeners[0])
	})

	t.Run("live", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// Nobody calls Accept yet: the kernel's backlog answers the probe.
		_, err = Acquire([]Spec{{Kind: KindUnix, Addr: path}}, nil, nil)
		var inUse *AddrInUseError
		if !errors.As(err, &inUse) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Acquire on a live socket: %v, want *AddrInUseError wrapping EADDRINUSE", err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("live socket file was removed: %v", err)
		}
		// The probe connection Acquire made is queued; take it, then the
		// listener must still serve normally.
		_ = l.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
		probe, err := l.Accept()
		if err != nil {
			t.Fatalf("accept Acquire's probe: %v", err)
		}
		probe.Close()
		checkServes(t, l)
	})

	t.Run("not-a-socket", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Acquire([]Spec{{Kind: KindUnix, Addr: path}}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Acquire over a regular file: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Fatal("regular file was touched")
		}
	})

	t.Run("missing-dir", func(t *testing.T) {
		_, err := Acquire([]Spec{{Kind: KindUnix, Addr: filepath.Join(dir, "nope", "x.sock")}}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "does the directory exist") {
			t.Fatalf("Acquire in a missing directory: %v", err)
		}
	})
}

func TestExplicitActivationAbsent(t *testing.T) {
	// This test process was not socket-activated: asking for a systemd or
	// launchd socket by name is an error that says so.
	if ActivationAvailable() {
		t.Skip("the test process itself was socket-activated; nothing to check")
	}
	_, err := Acquire([]Spec{{Kind: KindSystemd, Name: "web"}}, []string{"127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no sockets were passed by systemd") {
		t.Fatalf("systemd:web without activation: %v", err)
	}
	_, err = Acquire([]Spec{{Kind: KindLaunchd, Name: "Listeners"}}, nil, nil)
	if err == nil {
		t.Fatal("launchd:Listeners without launchd succeeded")
	}
	if !strings.Contains(err.Error(), "launchd") {
		t.Fatalf("launchd error does not say launchd: %v", err)
	}
}
