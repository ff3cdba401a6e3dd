// Package notify reports the gateway's state to the service manager with
// sd_notify(3): readiness, status text, reloads, stop, and watchdog pings.
//
// It uses go-systemd's daemon.SdNotify and never unsets NOTIFY_SOCKET, so
// the watchdog keeps working for the life of the process. When NOTIFY_SOCKET
// is unset (not started by systemd with Type=notify, launchd, a terminal, or
// any OS without systemd) every call is a silent no-op.
package notify

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells the service manager what the gateway is doing.
type Notifier interface {
	// Ready reports that startup or a reload finished and the gateway
	// answers connections, with a human status line.
	Ready(status string)
	// Status updates the human status line (shown by systemctl status).
	Status(status string)
	// Reloading reports that a configuration reload started; call Ready
	// when it is done.
	Reloading()
	// Stopping reports that shutdown started, with a human status line.
	Stopping(status string)
	// Watchdog pings the service manager's watchdog.
	Watchdog()
	// Enabled reports whether messages go anywhere (NOTIFY_SOCKET is set).
	Enabled() bool
}

// New returns a Notifier that sends to $NOTIFY_SOCKET. Without
// NOTIFY_SOCKET it does nothing. A failed send is logged once at debug
// level; later failures are not logged.
func New(log *slog.Logger) Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &sdNotifier{log: log}
}

type sdNotifier struct {
	log      *slog.Logger
	warnOnce sync.Once
}

func (n *sdNotifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.warnOnce.Do(func() {
			n.log.Debug("sd_notify failed; further failures are not logged",
				"socket", os.Getenv("NOTIFY_SOCKET"), "state", firstLine(state), "err", err)
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// statusField renders STATUS=text on one line: the protocol is
// newline-separated, so newlines in text become spaces.
func statusField(status string) string {
	return "STATUS=" + strings.Join(strings.Fields(status), " ")
}

func withStatus(state, status string) string {
	if status == "" {
		return state
	}
	return state + "\n" + statusField(status)
}

// Ready sends READY=1 and STATUS=status.
func (n *sdNotifier) Ready(status string) { n.send(withStatus(daemon.SdNotifyReady, status)) }

// Status sends STATUS=status.
func (n *sdNotifier) Status(status string) { n.send(statusField(status)) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC, as systemd expects.
func (n *sdNotifier) Reloading() {
	state := daemon.SdNotifyReloading
	if mono := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"); mono != "" {
		state += "\n" + mono
	}
	n.send(state)
}

// Stopping sends STOPPING=1 and STATUS=status.
func (n *sdNotifier) Stopping(status string) { n.send(withStatus(daemon.SdNotifyStopping, status)) }

// Watchdog sends WATCHDOG=1.
func (n *sdNotifier) Watchdog() { n.send(daemon.SdNotifyWatchdog) }

// Enabled reports whether NOTIFY_SOCKET is set.
func (n *sdNotifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// WatchdogInterval returns the systemd watchdog timeout (WatchdogSec=) and
// true when the watchdog is enabled for this process. The environment is
// left in place.
func WatchdogInterval() (time.Duration, bool) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// watchdogLogEvery bounds how often a failing liveness check is logged.
const watchdogLogEvery = time.Minute

// RunWatchdog pings n's watchdog every interval/2 until ctx is done, but
// only when check passes; check gets a context with a deadline of
// interval/4. A failing check sends no ping (so systemd restarts a wedged
// gateway) and is logged as a warning at most once a minute; recovery is
// logged too. A nil check counts as always passing. RunWatchdog returns
// at once if interval is not positive. It blocks: run it in a goroutine.
func RunWatchdog(ctx context.Context, n Notifier, interval time.Duration, check func(context.Context) error, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		failures int
		lastLog  time.Time
	)
	tick := func() {
		var err error
		if check != nil {
			cctx, cancel := context.WithTimeout(ctx, interval/4)
			err = check(cctx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			if failures == 1 || time.Since(lastLog) >= watchdogLogEvery {
				log.Warn("liveness check failed; not pinging the systemd watchdog", "err", err, "failures", failures)
				lastLog = time.Now()
			}
			return
		}
		if failures > 0 {
			log.Info("liveness check passes again; pinging the systemd watchdog", "failures", failures)
			failures = 0
		}
		n.Watchdog()
	}
	ticker := time.NewTicker(interval / 2)
	defer ticker.Stop()
	tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			tick()
		}
	}
}
