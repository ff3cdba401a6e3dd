package notify

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/notify/notifytest"
)

// The tests here set NOTIFY_SOCKET with t.Setenv, so none runs in parallel.

func testLogger(w *testutil.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func monoUsec(t *testing.T) int64 {
	t.Helper()
	s := strings.TrimSpace(strings.TrimPrefix(daemon.SdNotifyMonotonicUsec(), "MONOTONIC_USEC="))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("monotonic clock: %v", err)
	}
	return v
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNotifier(t *testing.T) {
	tests := []struct {
		name string
		call func(Notifier)
		raw  string // exact datagram, or "" to check fields only
		want map[string]string
	}{
		{name: "ready", call: func(n Notifier) { n.Ready("serving on 127.0.0.1:18789") },
			raw: "READY=1\nSTATUS=serving on 127.0.0.1:18789"},
		{name: "ready-no-status", call: func(n Notifier) { n.Ready("") }, raw: "READY=1"},
		{name: "status", call: func(n Notifier) { n.Status("3 clients") }, raw: "STATUS=3 clients"},
		{name: "status-one-line", call: func(n Notifier) { n.Status("line one\nline two\n") },
			raw: "STATUS=line one line two"},
		{name: "stopping", call: func(n Notifier) { n.Stopping("draining 2 connections") },
			raw: "STOPPING=1\nSTATUS=draining 2 connections"},
		{name: "watchdog", call: func(n Notifier) { n.Watchdog() }, raw: "WATCHDOG=1"},
		{name: "reloading", call: func(n Notifier) { n.Reloading() },
			want: map[string]string{"RELOADING": "1"}},
	}
	sock := notifytest.Listen(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path())
	n := New(nil)
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := monoUsec(t)
			tt.call(n)
			after := monoUsec(t)
			m, err := sock.Next(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.raw != "" && m.Raw != tt.raw {
				t.Fatalf("sent %q, want %q", m.Raw, tt.raw)
			}
			for k, v := range tt.want {
				if m.Get(k) != v {
					t.Fatalf("sent %q: %s=%q, want %q", m.Raw, k, m.Get(k), v)
				}
			}
			if tt.name == "reloading" {
				if !strings.HasPrefix(m.Raw, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(m.Raw, "\n") {
					t.Fatalf("reload message %q, want RELOADING=1\\nMONOTONIC_USEC=N", m.Raw)
				}
				usec, err := strconv.ParseInt(m.Get("MONOTONIC_USEC"), 10, 64)
				if err != nil || usec < before || usec > after {
					t.Fatalf("MONOTONIC_USEC=%q not within [%d, %d]", m.Get("MONOTONIC_USEC"), before, after)
				}
			}
		})
	}
}

func TestNotifierWithoutSocketIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	var logs testutil.SyncBuffer
	n := New(testLogger(&logs))
	if n.Enabled() {
		t.Fatal("Enabled() = true without NOTIFY_SOCKET")
	}
	n.Ready("x")
	n.Status("x")
	n.Reloading()
	n.Stopping("x")
	n.Watchdog()
	if logs.String() != "" {
		t.Fatalf("no-op notifier logged:\n%s", logs.String())
	}
}

func TestNotifierSendErrorLoggedOnce(t *testing.T) {
	dir, err := os.MkdirTemp("", "nt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Setenv("NOTIFY_SOCKET", dir+"/missing.sock")
	var logs testutil.SyncBuffer
	n := New(testLogger(&logs))
	for range 3 {
		n.Ready("x")
		n.Watchdog()
	}
	if got := strings.Count(logs.String(), "sd_notify failed"); got != 1 {
		t.Fatalf("send failure logged %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "missing.sock") {
		t.Fatalf("failure not logged at debug with the socket path:\n%s", logs.String())
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"2000000", pid, 2 * time.Second, true},
		{"2000000", "1", 0, false}, // another process is watched
		{"nonsense", "", 0, false},
		{"-5", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.usec+"/"+tt.pid, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, ok := WatchdogInterval()
			if got != tt.want || ok != tt.ok {
				t.Fatalf("WatchdogInterval() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if os.Getenv("WATCHDOG_USEC") != tt.usec {
				t.Fatal("WatchdogInterval unset WATCHDOG_USEC")
			}
		})
	}
}

// runWatchdog starts RunWatchdog and returns a stop function that waits for
// it to return and then flushes the socket with a marker message, so every
// ping sent before it is recorded.
func runWatchdog(t *testing.T, sock *notifytest.Socket, n Notifier, interval time.Duration, check func(context.Context) error, log *slog.Logger) (stop func() []notifytest.Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunWatchdog(ctx, n, interval, check, log)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []notifytest.Message {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("RunWatchdog did not return after cancel")
		}
		n.Status("marker")
		if _, err := sock.WaitFor(ctxT(t), func(m notifytest.Message) bool { return m.Get("STATUS") == "marker" }); err != nil {
			t.Fatal(err)
		}
		return sock.Messages()
	}
}

func countPings(msgs []notifytest.Message) int {
	n := 0
	for _, m := range msgs {
		if m.Raw == "WATCHDOG=1" {
			n++
		}
	}
	return n
}

func TestRunWatchdog(t *testing.T) {
	const interval = 80 * time.Millisecond
	tests := []struct {
		name string
		// fail reports whether the check fails on call i (0-based).
		fail      func(i int64) bool
		calls     int64 // wait until the check ran this many times
		wantPings func(int) bool
		wantWarns int
		wantBack  bool
	}{
		// The last check may race with cancel and send no ping.
		{name: "healthy", fail: func(int64) bool { return false }, calls: 5,
			wantPings: func(p int) bool { return p >= 4 }},
		{name: "unhealthy", fail: func(int64) bool { return true }, calls: 5,
			wantPings: func(p int) bool { return p == 0 }, wantWarns: 1},
		{name: "recovers", fail: func(i int64) bool { return i < 3 }, calls: 7,
			wantPings: func(p int) bool { return p >= 3 }, wantWarns: 1, wantBack: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := notifytest.Listen(t)
			t.Setenv("NOTIFY_SOCKET", sock.Path())
			var logs testutil.SyncBuffer
			log := testLogger(&logs)
			var calls atomic.Int64
			reached := make(chan struct{})
			var deadlineErr atomic.Value
			check := func(ctx context.Context) error {
				dl, ok := ctx.Deadline()
				if !ok || time.Until(dl) > interval/4 {
					deadlineErr.Store("check context has no deadline of at most interval/4")
				}
				i := calls.Add(1) - 1
				if i+1 == tt.calls {
					close(reached)
				}
				if tt.fail(i) {
					return errors.New("hub wedged")
				}
				return nil
			}
			stop := runWatchdog(t, sock, New(log), interval, check, log)
			select {
			case <-reached:
			case <-time.After(15 * time.Second):
				t.Fatalf("check ran %d times in 15s, want %d", calls.Load(), tt.calls)
			}
			msgs := stop()
			if v := deadlineErr.Load(); v != nil {
				t.Fatal(v)
			}
			pings := countPings(msgs)
			if !tt.wantPings(pings) {
				t.Fatalf("%d WATCHDOG=1 pings after %d checks", pings, calls.Load())
			}
			// Pings never outnumber passing checks.
			passing := 0
			for i := int64(0); i < calls.Load(); i++ {
				if !tt.fail(i) {
					passing++
				}
			}
			if pings > passing {
				t.Fatalf("%d pings but only %d passing checks", pings, passing)
			}
			if got := strings.Count(logs.String(), "liveness check failed"); got != tt.wantWarns {
				t.Fatalf("failure logged %d times, want %d (rate-limited):\n%s", got, tt.wantWarns, logs.String())
			}
			if got := strings.Contains(logs.String(), "passes again"); got != tt.wantBack {
				t.Fatalf("recovery logged = %v, want %v:\n%s", got, tt.wantBack, logs.String())
			}
		})
	}
}

func TestRunWatchdogDisabled(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunWatchdog(context.Background(), New(nil), 0, func(context.Context) error {
			t.Error("check called with the watchdog disabled")
			return nil
		}, nil)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunWatchdog with interval 0 did not return")
	}
}
