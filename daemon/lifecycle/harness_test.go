package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/startcheck"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/listen"
)

// recNotifier records what the daemon tells the service manager. With
// blockReload set, the first Reloading call blocks until release is
// closed (a reload in progress, for signals arriving meanwhile).
type recNotifier struct {
	mu          sync.Mutex
	msgs        []string
	blockReload bool
	inReload    chan struct{}
	release     chan struct{}
	once        sync.Once
}

func newRecNotifier() *recNotifier {
	return &recNotifier{inReload: make(chan struct{}), release: make(chan struct{})}
}

func (n *recNotifier) add(m string) {
	n.mu.Lock()
	n.msgs = append(n.msgs, m)
	n.mu.Unlock()
}
func (n *recNotifier) Ready(s string)    { n.add("READY=1 STATUS=" + s) }
func (n *recNotifier) Status(s string)   { n.add("STATUS=" + s) }
func (n *recNotifier) Stopping(s string) { n.add("STOPPING=1 STATUS=" + s) }
func (n *recNotifier) Watchdog()         {}
func (n *recNotifier) Enabled() bool     { return true }
func (n *recNotifier) Reloading() {
	n.add("RELOADING=1")
	n.mu.Lock()
	block := n.blockReload
	n.blockReload = false
	n.mu.Unlock()
	if block {
		n.once.Do(func() { close(n.inReload) })
		<-n.release
	}
}

func (n *recNotifier) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.msgs, "\n")
}

func (n *recNotifier) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.msgs) == 0 {
		return ""
	}
	return n.msgs[len(n.msgs)-1]
}

// loopbackListen is the listeners parameter of every test daemon: the real
// listen.Acquire, counted, and refusing anything but loopback TCP, so no
// test (and no fuzz input) ever opens the gateway beyond this host.
type loopbackListen struct {
	calls atomic.Int64
	fail  atomic.Bool  // every call fails as if the address were taken
	failN atomic.Int64 // the next failN calls fail so
}

func (l *loopbackListen) failNext(n int64) { l.failN.Store(n) }

func (l *loopbackListen) acquire(specs []listen.Spec, fallback []string, log *slog.Logger) (*listen.Set, error) {
	l.calls.Add(1)
	addrs := fallback
	if len(specs) > 0 {
		addrs = nil
		for _, s := range specs {
			if s.Kind != listen.KindTCP {
				return nil, fmt.Errorf("test listener: %s sockets are not allowed in tests", s.Kind)
			}
			addrs = append(addrs, s.Addr)
		}
	}
	if !listen.IsLoopbackOnly(addrs) {
		return nil, fmt.Errorf("test listener: refusing non-loopback %v", addrs)
	}
	if l.fail.Load() || l.failN.Add(-1) >= 0 {
		return nil, &listen.AddrInUseError{Addr: addrs[0], Err: syscall.EADDRINUSE}
	}
	return listen.Acquire(specs, fallback, log)
}

// fakeFeature records Apply and Close.
type fakeFeature struct {
	applied atomic.Int64
	closed  atomic.Bool
}

func (f *fakeFeature) Name() string              { return "fake" }
func (f *fakeFeature) Methods() []gateway.Method { return nil }
func (f *fakeFeature) Events() []string          { return nil }
func (f *fakeFeature) Bind(gateway.Host)         {}
func (f *fakeFeature) Apply(*config.Config)      { f.applied.Add(1) }
func (f *fakeFeature) Close() error              { f.closed.Store(true); return nil }

// harness is one in-process daemon.
type harness struct {
	t       testing.TB
	dir     string
	paths   config.Paths
	d       *Daemon
	sigs    chan os.Signal
	events  chan string
	exit    chan int
	notif   *recNotifier
	stderr  *testutil.SyncBuffer
	lis     *loopbackListen
	feature *fakeFeature
	port    int
	cancel  context.CancelFunc
}

type hOpts struct {
	config      string // initial config file ("" = none)
	token       string // GATEWAY_TOKEN-like override ("" = generated token)
	blockReload bool
}

func startDaemon(t testing.TB, o hOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, sigs: make(chan os.Signal, 8), events: make(chan string, 64), exit: make(chan int, 1),
		notif: newRecNotifier(), stderr: &testutil.SyncBuffer{}, lis: &loopbackListen{}, feature: &fakeFeature{}, port: gatewaydtest.Port(t)}
	h.notif.blockReload = o.blockReload
	h.paths = config.Paths{ConfigPath: filepath.Join(dir, "config.json"), ConfigDir: dir, StateDir: filepath.Join(dir, "state"),
		LogDir: filepath.Join(dir, "logs"), LogFile: filepath.Join(dir, "logs", "gatewayd.jsonl"), TokenFile: filepath.Join(dir, "state", "gateway.token")}
	// PORT in the config is this daemon's port; without it the port is an
	// override (like --port), which the file cannot change.
	o.config = strings.ReplaceAll(o.config, "PORT", fmt.Sprint(h.port))
	if o.config != "" {
		h.write(o.config)
	}
	ov := startcheck.Overrides{Set: map[string]bool{}}
	if !strings.Contains(o.config, `"port"`) {
		ov.Port, ov.Set["port"] = h.port, true
	}
	if o.token != "" {
		ov.Token, ov.Set["token"] = o.token, true
	}
	profile, err := config.NewProfile("", false)
	if err != nil {
		t.Fatal(err)
	}
	d, code := New(Options{Profile: profile, Paths: h.paths, Overrides: ov, Version: "test", Stderr: h.stderr,
		Getenv: func(string) string { return "" }, Notifier: h.notif, Listen: h.lis.acquire, Signals: h.sigs,
		Features: []FeatureConstructor{func(*FeatureDeps) (Feature, error) { return h.feature, nil }}})
	if d == nil {
		t.Fatalf("New: exit %d\n%s", code, h.stderr)
	}
	h.d = d
	d.afterHandle = func(ev string) { h.events <- ev }
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.exit <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.exit:
		case <-time.After(15 * time.Second):
			t.Errorf("daemon did not stop within 15s")
		}
	})
	testutil.WaitFor(t, 10*time.Second, 20*time.Millisecond, "READY=1", func() (bool, string) {
		msgs := h.notif.all()
		return strings.Contains(msgs, "READY=1"), "notified:\n" + msgs + "\ndaemon stderr:\n" + h.stderr.String()
	})
	return h
}

func (h *harness) write(s string) {
	h.t.Helper()
	if err := os.WriteFile(h.paths.ConfigPath, []byte(s), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// signal sends sig and waits until the daemon has handled it.
func (h *harness) signal(sig os.Signal, want string) {
	h.t.Helper()
	h.sigs <- sig
	h.waitEvent(want)
}

// waitEvent waits until the daemon has handled a want event. The file
// watcher's "change" events for the test's own writes may come in
// between; they are skipped unless want is "change".
func (h *harness) waitEvent(want string) {
	h.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if ev == want {
				return
			}
			if ev != "change" {
				h.t.Fatalf("event %q, want %q", ev, want)
			}
		case code := <-h.exit:
			h.t.Fatalf("daemon exited %d while waiting for %s\n%s", code, want, h.stderr)
		case <-timeout:
			h.t.Fatalf("no %s event within 15s\n%s", want, h.stderr)
		}
	}
}

// reload writes cfg and sends SIGHUP.
func (h *harness) reload(cfg string) {
	h.t.Helper()
	h.write(cfg)
	h.signal(syscall.SIGHUP, "reload")
}

// snapshot is what a reload must not change when it is refused.
type snapshot struct {
	addrs    string
	auth     gateway.AuthSettings
	restarts int
	listens  int64
}

func (h *harness) snap() snapshot {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return snapshot{addrs: strings.Join(h.d.addrs(), ","), auth: h.d.st.Auth, restarts: h.d.restarts, listens: h.lis.calls.Load()}
}

func (h *harness) status() string  { return h.d.current().StatusText() }
func (h *harness) lastErr() string { return h.d.ConfigInfo().LastError }
func (h *harness) pending() []string {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return append([]string(nil), h.d.pending...)
}

// dialable reports whether something accepts TCP on addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
