//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/platform/sdtest"
)

// TestHeadlessUserInstall is the headless user install (docs/runbook.md), in a
// booted systemd container (real logind, user@.service, dbus-user-session):
// as a non-root user with no DBUS_SESSION_BUS_ADDRESS and no
// XDG_RUNTIME_DIR (setpriv --reset-env, as a non-login SSH command or a
// configuration-management run has), `gatewayctl install` names the one
// command that fixes it; root's `install --user alice --linger` turns
// lingering on through logind and installs alice's user-scope gateway,
// which alice then reaches with no session environment at all. In the same
// container, for the system scope: the first health after an install, the
// always-on service started by its target with no client, and logs from
// the journal (and the file) with the service stopped.
func TestHeadlessUserInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root to boot a systemd container (CI runs as root and installs systemd-container)")
	}
	gatewayd := buildGatewayd(t)
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "gatewayctl"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build gatewayctl: %v\n%s", err, out)
	}
	s := sdtest.BootSystem(t, sdtest.SystemOptions{Mask: []string{"postgresql.service", "postgresql@15-main.service"}})
	for _, b := range []string{filepath.Join(bin, "gatewayctl"), gatewayd} {
		if err := s.CopyIn(b, "/usr/local/bin/"+filepath.Base(b)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 90*time.Second)
		defer ccancel()
		cmd := s.Exec(cctx, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		if got != want {
			t.Fatalf("%s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, want, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	// alice runs a command as a non-login process would: her uid, gids,
	// HOME and USER, and nothing else (no XDG_RUNTIME_DIR, no session bus).
	alice := func(want int, args ...string) (string, string) {
		t.Helper()
		return run(want, append([]string{"setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env"}, args...)...)
	}
	run(0, "useradd", "--create-home", "--shell", "/bin/sh", "alice")
	port := strconv.Itoa(18000 + os.Getpid()%1000) // the container has its own network namespace
	if out, _ := alice(0, "env"); strings.Contains(out, "XDG_RUNTIME_DIR") || strings.Contains(out, "DBUS_SESSION_BUS_ADDRESS") {
		t.Fatalf("alice's environment has a session:\n%s", out)
	}

	// No session, lingering off: install fails and names the fix.
	_, stderr := alice(1, "gatewayctl", "install", "--scope", "user", "--port", port)
	if !strings.Contains(stderr, "`sudo loginctl enable-linger alice`") {
		t.Errorf("install without a user manager does not name `sudo loginctl enable-linger alice`:\n%s", stderr)
	}
	// The same, from root for alice without --linger.
	if _, stderr := run(1, "gatewayctl", "install", "--user", "alice", "--port", port); !strings.Contains(stderr, "`loginctl enable-linger alice`") {
		t.Errorf("install --user alice without a user manager does not name `loginctl enable-linger alice`:\n%s", stderr)
	}

	// --dry-run with --linger touches nothing, lingering included.
	if _, stderr := alice(1, "gatewayctl", "install", "--scope", "user", "--linger", "--dry-run", "--port", port); !strings.Contains(stderr, "would turn lingering on for alice") {
		t.Errorf("install --linger --dry-run: %s", stderr)
	}
	run(0, "test", "!", "-e", "/var/lib/systemd/linger/alice") // --dry-run left lingering off

	// alice, headless, with --linger: logind (polkit's set-self-linger)
	// turns lingering on, her manager starts, the install goes on.
	stdout, stderr := alice(0, "gatewayctl", "install", "--scope", "user", "--linger", "--port", port)
	for _, want := range []string{"installed gatewayd (profile default, systemd user scope)", "/home/alice/.config/systemd/user/gatewayd.socket", "lingering: on"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("alice: install --linger: no %q in:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
	if !strings.Contains(stderr, "lingering is now on for alice") {
		t.Errorf("install --linger does not say it turned lingering on:\n%s", stderr)
	}
	if out, _ := run(0, "loginctl", "show-user", "alice", "-p", "Linger"); strings.TrimSpace(out) != "Linger=yes" {
		t.Errorf("loginctl says %q, want Linger=yes", out)
	}

	// Root installs bob's gateway: lingering through logind, then the
	// install as bob against his manager.
	run(0, "useradd", "--create-home", "--shell", "/bin/sh", "bob")
	port2 := strconv.Itoa(18000 + os.Getpid()%1000 + 1)
	stdout, stderr = run(0, "gatewayctl", "install", "--user", "bob", "--linger", "--port", port2)
	for _, want := range []string{"installed gatewayd (profile default, systemd user scope)", "/home/bob/.config/systemd/user/gatewayd.socket", "lingering: on"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("install --user bob --linger: no %q in:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
	if out, _ := run(0, "stat", "-c", "%U", "/home/bob/.config/systemd/user/gatewayd.socket", "/home/bob/.config/gatewayd/config.json"); strings.Count(out, "bob") != 2 {
		t.Errorf("the units and config are not bob's:\n%s", out)
	}
	if out, _ := run(0, "setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "--reset-env", "gatewayctl", "health"); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("health as bob: %s", out)
	}

	// alice, still with no session environment: the first health works,
	// status sees her manager, and a second install is a no-op.
	if out, _ := alice(0, "gatewayctl", "health"); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("health as alice: %s", out)
	}
	if out, _ := alice(0, "gatewayctl", "status", "--scope", "user"); !strings.Contains(out, "runtime      running") || !strings.Contains(out, "systemd gatewayd.service (user scope)") {
		t.Errorf("status as alice:\n%s", out)
	}
	if out, _ := alice(0, "gatewayctl", "install", "--scope", "user", "--linger"); !strings.Contains(out, "already installed") {
		t.Errorf("a second install as alice (lingering already on) is not a no-op:\n%s", out)
	}
	if out, _ := run(0, "systemctl", "--user", "-M", "alice@", "is-enabled", "gatewayd.service", "gatewayd.socket"); strings.Count(out, "enabled") != 2 {
		t.Errorf("systemctl --user -M alice@ is-enabled: %s", out)
	}

	// System scope in the same booted system: the first health after the
	// install just works (gatewayd writes its token while the connection
	// that started it waits), and the always-on service starts with its
	// target, without any client: stop it, start multi-user.target (what
	// a boot does), and it runs again.
	port3 := strconv.Itoa(18000 + os.Getpid()%1000 + 2)
	run(0, "gatewayctl", "install", "--scope", "system", "--port", port3)
	run(0, "test", "!", "-e", "/var/lib/gatewayd/gateway.token")
	if out, _ := run(0, "gatewayctl", "health"); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("the first health after a system install: %s", out)
	}
	if out, _ := run(0, "gatewayctl", "status"); !strings.Contains(out, "rpc probe    ok") {
		t.Errorf("status after a system install:\n%s", out)
	}
	run(0, "systemctl", "stop", "gatewayd.service")
	run(0, "systemctl", "start", "multi-user.target")
	if out, _ := run(0, "systemctl", "is-active", "gatewayd.service"); strings.TrimSpace(out) != "active" {
		t.Errorf("gatewayd.service is %q after starting multi-user.target with no client, want active", out)
	}

	// logs with the service stopped, as a user who may read the journal but
	// not the gateway's log file: the journal, and it says so.
	run(0, "gatewayctl", "stop", "--scope", "system")
	run(0, "usermod", "-aG", "systemd-journal", "alice")
	stdout, stderr = alice(0, "gatewayctl", "logs", "--scope", "system", "--limit", "20")
	if !strings.Contains(stderr, "read the journal of gatewayd.service instead (journalctl") || !strings.Contains(stdout, "gateway ready") {
		t.Errorf("logs from the journal as alice:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	// root reads the file itself.
	if _, stderr := run(0, "gatewayctl", "logs", "--limit", "5"); !strings.Contains(stderr, "read the log file /var/log/gatewayd/gatewayd.jsonl directly instead") {
		t.Errorf("logs as root with the service stopped:\n%s", stderr)
	}
}
