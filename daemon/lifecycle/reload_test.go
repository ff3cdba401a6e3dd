package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config/configtest"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestReloadTransitions is every reload transition as a table: the
// config the daemon starts with, the edit, and what must hold after the
// SIGHUP that reloads it.
func TestReloadTransitions(t *testing.T) {
	type check func(t *testing.T, h *harness, before snapshot)
	refused := func(wantErr string) check {
		return func(t *testing.T, h *harness, before snapshot) {
			t.Helper()
			if after := h.snap(); after != before {
				t.Errorf("a refused reload changed the gateway:\nbefore %+v\nafter  %+v", before, after)
			}
			if !strings.Contains(h.lastErr(), wantErr) {
				t.Errorf("lastError %q does not contain %q", h.lastErr(), wantErr)
			}
			if st := h.status(); !strings.Contains(st, "last reload FAILED") || strings.Contains(st, "last reload ok") {
				t.Errorf("status after a refused reload: %q", st)
			}
			if !strings.HasPrefix(h.notif.last(), "READY=1") {
				t.Errorf("the reload did not end with READY=1: %q", h.notif.last())
			}
		}
	}
	tests := []struct {
		name  string
		start string
		token string // "" = generated token file
		edit  string
		check check
	}{
		{
			name: "hot-safe change applies without a restart", token: "tok-a",
			start: `{"gateway":{"auth":{"token":"tok-a"}}}`, edit: `{"gateway":{"auth":{"token":"tok-b"}}}`,
			check: func(t *testing.T, h *harness, before snapshot) {
				// The override (GATEWAY_TOKEN) wins over the file, as at startup.
				after := h.snap()
				if after.restarts != 0 || after.addrs != before.addrs || after.listens != before.listens {
					t.Errorf("hot change restarted or re-bound: %+v → %+v", before, after)
				}
				if !strings.Contains(h.status(), "last reload ok") || h.lastErr() != "" {
					t.Errorf("status %q lastError %q", h.status(), h.lastErr())
				}
			},
		},
		{
			name:  "hot-safe auth change from the file",
			start: `{"gateway":{"auth":{"token":"file-tok-a"}}}`, edit: `{"gateway":{"auth":{"token":"file-tok-b"},"tickIntervalMs":5000}}`,
			check: func(t *testing.T, h *harness, before snapshot) {
				after := h.snap()
				if after.auth.Token != "file-tok-b" || after.restarts != 0 || after.addrs != before.addrs {
					t.Errorf("hot auth change not applied in place: %+v", after)
				}
				if h.feature.applied.Load() == 0 {
					t.Error("features did not get the new config")
				}
			},
		},
		{
			name:  "restart-required change restarts in process and re-binds",
			start: `{}`, edit: `{"gateway":{"bind":"127.0.0.1"}}`,
			check: func(t *testing.T, h *harness, before snapshot) {
				after := h.snap()
				if after.restarts != 1 || after.listens != before.listens+1 {
					t.Errorf("bind change: restarts %d listens %d→%d", after.restarts, before.listens, after.listens)
				}
				if after.addrs != fmt.Sprintf("127.0.0.1:%d", h.port) || after.auth.Token != before.auth.Token {
					t.Errorf("after re-bind: %+v (token kept: %v)", after, after.auth.Token == before.auth.Token)
				}
				if st := h.status(); !strings.Contains(st, "restarted in process") || strings.Contains(st, "pending") {
					t.Errorf("status %q", st)
				}
				if len(h.pending()) != 0 {
					t.Errorf("pending after the restart: %v", h.pending())
				}
			},
		},
		{
			name:  "invalid change: JSON syntax",
			start: `{}`, edit: "{\n  \"gateway\": {,}\n}", check: refused("config.json:2:"),
		},
		{
			name:  "invalid change: semantic",
			start: `{}`, edit: "{\n  \"gateway\": {\n    \"reload\": {\"mode\": \"fast\"}\n  }\n}", check: refused("config.json:3:16: gateway.reload.mode"),
		},
		{
			name:  "invalid change: remote mode",
			start: `{}`, edit: `{"gateway":{"mode":"remote"}}`, check: refused("Gateway start blocked"),
		},
		{
			name:  "bind widening without a secret is refused before re-binding",
			start: `{}`, edit: `{"gateway":{"bind":"lan"}}`, check: refused("refusing to bind gateway to 0.0.0.0:"),
		},
		{
			name:  "bind widening in hot mode is refused too",
			start: `{"gateway":{"reload":{"mode":"hot"}}}`, edit: `{"gateway":{"reload":{"mode":"hot"},"bind":"lan"}}`,
			check: refused("refusing to bind gateway"),
		},
		{
			name:  "listen widening without a secret",
			start: `{}`, edit: `{"gateway":{"listen":["0.0.0.0:1"]}}`, check: refused("refusing to bind gateway to 0.0.0.0:1"),
		},
		{
			name:  "removing the secret of a token-less password mode",
			start: `{"gateway":{"auth":{"mode":"password","password":"pw-1"}}}`, edit: `{"gateway":{"auth":{"mode":"password"}}}`,
			check: refused("no password is set"),
		},
		{
			name:  "reload mode restart restarts on a hot-safe change",
			start: `{"gateway":{"reload":{"mode":"restart"}}}`, edit: `{"gateway":{"reload":{"mode":"restart"},"tickIntervalMs":5000}}`,
			check: func(t *testing.T, h *harness, before snapshot) {
				if after := h.snap(); after.restarts != 1 || after.listens != before.listens {
					t.Errorf("mode restart: %+v (want 1 restart, sockets kept)", after)
				}
			},
		},
		{
			name:  "hot mode keeps a restart-required change pending",
			start: `{"gateway":{"reload":{"mode":"hot"}}}`, edit: `{"gateway":{"reload":{"mode":"hot"}},"logging":{"maxFiles":7}}`,
			check: func(t *testing.T, h *harness, before snapshot) {
				if after := h.snap(); after.restarts != 0 {
					t.Errorf("hot mode restarted")
				}
				if !slices.Equal(h.pending(), []string{"logging.maxFiles"}) {
					t.Errorf("pending %v", h.pending())
				}
				if st := h.status(); strings.Contains(st, "last reload ok") || !strings.Contains(st, "restart pending for logging.maxFiles") {
					t.Errorf("status while a restart is pending: %q", st)
				}
				if strings.Contains(h.notif.last(), "last reload ok") {
					t.Errorf("STATUS= while a restart is pending: %q", h.notif.last())
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startDaemon(t, hOpts{config: tc.start, token: tc.token})
			before := h.snap()
			h.reload(tc.edit)
			tc.check(t, h, before)
			// Whatever happened, the gateway still answers on its port.
			if !dialable(fmt.Sprintf("127.0.0.1:%d", h.port)) {
				t.Errorf("nothing listens on 127.0.0.1:%d after the reload\n%s", h.port, h.stderr)
			}
		})
	}
}

// Hot mode remembers every pending restart-required key across later
// reloads, and SIGUSR1 applies them all.
func TestHotModePendingAccumulates(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{"gateway":{"reload":{"mode":"hot"},"port":PORT}}`})
	newPort := gatewaydtest.Port(t)
	h.reload(fmt.Sprintf(`{"gateway":{"reload":{"mode":"hot"},"port":%d}}`, newPort))
	h.reload(fmt.Sprintf(`{"gateway":{"reload":{"mode":"hot"},"port":%d},"logging":{"maxFiles":5}}`, newPort))
	h.reload(fmt.Sprintf(`{"gateway":{"reload":{"mode":"hot"},"port":%d},"logging":{"maxFiles":5,"level":"debug"}}`, newPort))
	if got := h.pending(); !slices.Equal(got, []string{"gateway.port", "logging.maxFiles"}) {
		t.Fatalf("pending after three reloads: %v", got)
	}
	if st := h.status(); !strings.Contains(st, "restart pending for gateway.port, logging.maxFiles") || strings.Contains(st, "last reload ok") {
		t.Fatalf("status %q", st)
	}
	if !dialable(fmt.Sprintf("127.0.0.1:%d", h.port)) || dialable(fmt.Sprintf("127.0.0.1:%d", newPort)) {
		t.Fatal("hot mode moved the port before a restart")
	}
	h.signal(syscall.SIGUSR1, "restart")
	if len(h.pending()) != 0 || h.d.cfg.Logging.MaxFiles != 5 || h.d.cfg.Gateway.Port != newPort {
		t.Fatalf("SIGUSR1 did not apply the pending keys: pending %v cfg %+v", h.pending(), h.d.cfg.Logging)
	}
	if !dialable(fmt.Sprintf("127.0.0.1:%d", newPort)) {
		t.Fatalf("not listening on the new port %d after SIGUSR1\n%s", newPort, h.stderr)
	}
	if strings.Contains(h.status(), "pending") {
		t.Fatalf("status still pending: %q", h.status())
	}
}

// The in-process restart applies logging.maxFileBytes and maxFiles to the
// running log file.
func TestLoggingLimitsAppliedByRestart(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{"logging":{"maxFiles":4}}`})
	pad := strings.Repeat("x", 200)
	for i := range 400 {
		h.d.log.Info("filler", "i", i, "pad", pad)
	}
	h.reload(`{"logging":{"maxFiles":1,"maxFileBytes":4096}}`)
	if s := h.snap(); s.restarts != 1 {
		t.Fatalf("logging limits did not restart: %+v", s)
	}
	for i := range 400 {
		h.d.log.Info("filler", "i", i, "pad", pad)
	}
	log := h.paths.LogFile
	for _, f := range []string{log, log + ".1"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4096 {
			t.Errorf("%s is %d bytes after maxFileBytes 4096", filepath.Base(f), fi.Size())
		}
	}
	for _, f := range []string{log + ".2", log + ".3", log + ".4"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s exists after maxFiles 1 (err %v)", filepath.Base(f), err)
		}
	}
}

// Reload mode off stops watching the file; switching back starts it.
func TestReloadModeChanges(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{"gateway":{"reload":{"debounceMs":20}}}`})
	// Watching: an edit alone reloads.
	h.write(`{"gateway":{"reload":{"debounceMs":20},"tickIntervalMs":7000}}`)
	h.waitEvent("change")
	if h.d.cfg.Gateway.TickIntervalMs != 7000 {
		t.Fatalf("the watched edit was not applied: %d", h.d.cfg.Gateway.TickIntervalMs)
	}
	h.reload(`{"gateway":{"reload":{"mode":"off","debounceMs":20}}}`)
	h.write(`{"gateway":{"reload":{"mode":"off","debounceMs":20},"tickIntervalMs":8000}}`)
	select {
	case ev := <-h.events:
		t.Fatalf("reload mode off still reacted to an edit: %q", ev)
	case <-time.After(time.Second): // 50 debounce periods
	}
	h.signal(syscall.SIGHUP, "reload")
	if h.d.cfg.Gateway.TickIntervalMs != 8000 {
		t.Fatal("SIGHUP did not reload in mode off")
	}
	h.reload(`{"gateway":{"reload":{"mode":"hybrid","debounceMs":20}}}`)
	h.write(`{"gateway":{"reload":{"mode":"hybrid","debounceMs":20},"tickIntervalMs":9000}}`)
	h.waitEvent("change")
	if h.d.cfg.Gateway.TickIntervalMs != 9000 {
		t.Fatal("watching did not resume after mode off → hybrid")
	}
}

// A SIGUSR1 that arrives while a reload is in progress is not lost, does
// not interleave with it, and runs after it.
func TestSIGUSR1DuringReload(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{}`, blockReload: true})
	h.write(`{"logging":{"maxFiles":2}}`)
	h.sigs <- syscall.SIGHUP
	select {
	case <-h.notif.inReload:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not start")
	}
	h.sigs <- syscall.SIGUSR1
	close(h.notif.release)
	h.waitEvent("reload")
	h.waitEvent("restart")
	s := h.snap()
	if s.restarts != 2 {
		t.Fatalf("restarts %d, want 2 (the reload's and SIGUSR1's)", s.restarts)
	}
	if h.d.cfg.Logging.MaxFiles != 2 || len(h.pending()) != 0 || h.lastErr() != "" {
		t.Fatalf("after reload + SIGUSR1: maxFiles %d pending %v lastErr %q", h.d.cfg.Logging.MaxFiles, h.pending(), h.lastErr())
	}
	if !strings.HasPrefix(h.notif.last(), "READY=1") {
		t.Fatalf("last notify %q", h.notif.last())
	}
	if !dialable(fmt.Sprintf("127.0.0.1:%d", h.port)) {
		t.Fatal("not serving after the restarts")
	}
}

// A restart whose new addresses cannot be bound binds the previous ones
// again and keeps serving; when even that fails, Run returns through the
// feature, store and log closes.
func TestRestartRebindFailure(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{"gateway":{"port":PORT}}`})
	taken := gatewaydtest.Port(t)
	h.lis.fail.Store(false)
	// The new port is free for the check but the bind fails.
	h.lis.failNext(1)
	h.reload(fmt.Sprintf(`{"gateway":{"port":%d}}`, taken))
	if !dialable(fmt.Sprintf("127.0.0.1:%d", h.port)) {
		t.Fatalf("not serving on the previous port after a failed re-bind\n%s", h.stderr)
	}
	if !strings.Contains(h.lastErr(), "still serving on the previous addresses") {
		t.Fatalf("lastError %q", h.lastErr())
	}
	if !slices.Contains(h.pending(), "gateway.port") {
		t.Fatalf("the port change is not pending after the failed re-bind: %v", h.pending())
	}

	h.lis.fail.Store(true)
	h.sigs <- syscall.SIGUSR1
	select {
	case code := <-h.exit:
		if code != ExitPortInUse {
			t.Fatalf("exit %d, want %d", code, ExitPortInUse)
		}
		h.exit <- code // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after losing every listener")
	}
	if !h.feature.closed.Load() {
		t.Fatal("features were not closed before exit")
	}
	if h.d.store != nil {
		t.Fatal("the state store was not closed before exit")
	}
	if !strings.Contains(h.notif.all(), "STOPPING=1") {
		t.Fatal("no STOPPING=1 before the exit")
	}
}

// Every config field tagged secret or url, in valid and invalid shapes,
// through a real reload: the value never reaches config.get, lastError,
// the status line, STATUS= or the log (stderr and the file).
func TestReloadNeverEchoesSecrets(t *testing.T) {
	h := startDaemon(t, hOpts{config: `{}`})
	cases := configtest.SecretCases()
	for _, c := range cases {
		h.reload(string(c.JSON))
		info, _ := json.Marshal(h.d.ConfigInfo())
		logFile, _ := os.ReadFile(h.paths.LogFile)
		for what, text := range map[string]string{
			"config.get": string(info), "status": h.status(), "STATUS=": h.notif.all(),
			"stderr log": h.stderr.String(), "file log": string(logFile),
		} {
			if strings.Contains(text, c.Sentinel) {
				t.Errorf("%s: %s shows the secret", c, what)
			}
		}
	}
	// And the rejections did happen and say what is wrong.
	if !strings.Contains(h.stderr.String(), "config reload rejected") {
		t.Fatal("no case was rejected: the cases do not exercise the error path")
	}
	t.Logf("%d secret cases reloaded", len(cases))
}
