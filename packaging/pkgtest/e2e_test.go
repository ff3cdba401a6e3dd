package pkgtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/packaging/pkgbuild"
	"github.com/gatewayd/gatewayd/platform/sdtest"
)

// container runs commands in a booted sdtest system.
type container struct {
	t   *testing.T
	s   *sdtest.System
	ctx context.Context
}

// sh runs a shell command inside and returns its output and exit code.
func (c *container) sh(script string) (string, int) {
	c.t.Helper()
	cmd := c.s.Exec(c.ctx, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		c.t.Fatalf("in the container: %s: %v", script, err)
	}
	return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
}

// must runs a shell command inside and fails the test on a non-zero exit.
func (c *container) must(script string) string {
	c.t.Helper()
	out, code := c.sh(script)
	if code != 0 {
		c.t.Fatalf("in the container: %s: exit %d\n%s", script, code, out)
	}
	return out
}

func (c *container) prop(unit, p string) string {
	c.t.Helper()
	return c.must("systemctl show -P " + p + " " + unit)
}

// waitFor polls cond every 100 ms for up to d.
func (c *container) waitFor(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) || i > int(d/(100*time.Millisecond))+10 {
			c.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statusJSON is the part of `gatewayctl status --json` this test reads.
type statusJSON struct {
	RPC struct {
		OK            bool   `json:"ok"`
		Error         string `json:"error"`
		ServerVersion string `json:"serverVersion"`
	} `json:"rpc"`
	Runtime *struct {
		State       string `json:"state"`
		ActiveState string `json:"ActiveState"`
	} `json:"runtime"`
}

// TestEndToEndSystemd installs the deb with apt-get in a booted systemd
// container, activates the gateway through its socket, checks status and
// doctor, has doctor repair an edited unit, upgrades to a newer build
// without closing the socket, and purges.
func TestEndToEndSystemd(t *testing.T) {
	res := packages(t)
	needRoot(t, "systemd-nspawn")
	hostStatus := hostFileHash(t, "/var/lib/dpkg/status")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	upVersion := testUpgradeVersion
	o := pkgbuild.Options{RepoRoot: repoRoot, OutDir: t.TempDir(), Formats: []string{pkgbuild.FormatDeb}}
	if os.Getenv("GATEWAYD_DIST") != "" {
		upVersion = res.Version + "+up1"
	} else {
		o.Commit, o.SourceDateEpoch = "pkgtest-up", testEpoch
	}
	o.Version = upVersion
	up, err := pkgbuild.Build(ctx, o)
	if err != nil {
		t.Fatalf("build the upgrade deb: %v", err)
	}

	s := sdtest.BootSystem(t, sdtest.SystemOptions{Mask: []string{"postgresql.service", "postgresql@15-main.service"}})
	c := &container{t: t, s: s, ctx: ctx}
	for _, p := range []string{res.Deb, up.Deb} {
		if err := s.CopyIn(p, "/root/pkgs/"+filepath.Base(p)); err != nil {
			t.Fatal(err)
		}
	}
	apt := "apt-get install -y -q --no-install-recommends -o Debug::NoLocking=1 "
	// This machine's image carries Docker's /usr/sbin/policy-rc.d ("exit
	// 101": never start services), which makes deb-systemd-invoke skip
	// every start/restart. A real host has none: remove it inside the
	// container (its overlay; the host's file is untouched).
	c.must("rm -f /usr/sbin/policy-rc.d")

	// Install: the preset enables the socket and postinst starts it; the
	// service waits for the first connection.
	c.must(apt + "/root/pkgs/" + filepath.Base(res.Deb))
	if st := c.prop("gatewayd.socket", "UnitFileState"); st != "enabled" {
		t.Errorf("gatewayd.socket is %s after install, want enabled by the preset", st)
	}
	if st := c.prop("gatewayd.socket", "ActiveState"); st != "active" {
		t.Errorf("gatewayd.socket is %s after install, want started by postinst", st)
	}
	c.must("systemctl enable --now gatewayd.socket")
	if st := c.prop("gatewayd.socket", "ActiveState"); st != "active" {
		t.Fatalf("gatewayd.socket is %s after enable --now, want active", st)
	}
	if st := c.prop("gatewayd.service", "ActiveState"); st != "inactive" {
		t.Errorf("gatewayd.service is %s before any connection, want inactive (socket activation only)", st)
	}
	c.must("id gatewayd")

	// The first connection starts the service as the gatewayd user.
	c.must(fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'", pkgbuild.DefaultPort()))
	c.waitFor("gatewayd.service active after the first connection", 30*time.Second, func() bool {
		return c.prop("gatewayd.service", "ActiveState") == "active"
	})
	pid := c.prop("gatewayd.service", "MainPID")
	if user := c.must("ps -o user= -p " + pid); user != "gatewayd" {
		t.Errorf("gatewayd runs as %q, want the gatewayd user", user)
	}
	c.waitFor("the token file", 10*time.Second, func() bool {
		_, code := c.sh("test -s /var/lib/gatewayd/gateway.token")
		return code == 0
	})

	status := func() statusJSON {
		out, code := c.sh("gatewayctl status --json")
		var st statusJSON
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("gatewayctl status --json (exit %d): %v\n%s", code, err, out)
		}
		return st
	}
	st := status()
	if st.Runtime == nil || st.Runtime.State != "running" || !st.RPC.OK || st.RPC.ServerVersion != res.Version {
		out, _ := c.sh("gatewayctl status")
		t.Errorf("gatewayctl status: runtime %+v, rpc %+v; want running and an RPC probe ok from %s\n%s", st.Runtime, st.RPC, res.Version, out)
	}
	if out, code := c.sh("gatewayctl doctor"); code != 0 {
		t.Errorf("gatewayctl doctor on a fresh package install: exit %d, want 0 (clean)\n%s", code, out)
	}

	// An operator edits the installed unit: doctor reports drift, --fix
	// repairs it.
	unit := c.prop("gatewayd.service", "FragmentPath")
	orig := c.must("sha256sum " + unit)
	c.must("sed -i 's/^RestartSec=2s$/RestartSec=7s/' " + unit + " && grep -q '^RestartSec=7s$' " + unit)
	out, code := c.sh("gatewayctl doctor")
	if code != 1 || !strings.Contains(out, "RestartSec") {
		t.Errorf("gatewayctl doctor after editing %s: exit %d, want 1 with the RestartSec= drift reported\n%s", unit, code, out)
	}
	if out, code := c.sh("gatewayctl doctor --fix"); code != 0 {
		t.Errorf("gatewayctl doctor --fix: exit %d, want 0\n%s", code, out)
	}
	if got := c.must("sha256sum " + unit); got != orig {
		t.Errorf("doctor --fix did not restore %s", unit)
	}
	if out, code := c.sh("gatewayctl doctor"); code != 0 {
		t.Errorf("gatewayctl doctor after --fix: exit %d\n%s", code, out)
	}
	c.waitFor("gatewayd.service active after doctor --fix", 30*time.Second, func() bool {
		return c.prop("gatewayd.service", "ActiveState") == "active"
	})
	pid = c.prop("gatewayd.service", "MainPID")
	socketSince := c.prop("gatewayd.socket", "ActiveEnterTimestampMonotonic")

	// Upgrade: the service restarts on the new binary; the socket is never
	// stopped.
	c.must(apt + "/root/pkgs/" + filepath.Base(up.Deb))
	c.waitFor("gatewayd.service active after the upgrade", 30*time.Second, func() bool {
		return c.prop("gatewayd.service", "ActiveState") == "active"
	})
	if newPID := c.prop("gatewayd.service", "MainPID"); newPID == pid {
		t.Errorf("the service was not restarted by the upgrade (MainPID still %s)", pid)
	}
	if since := c.prop("gatewayd.socket", "ActiveEnterTimestampMonotonic"); since != socketSince || c.prop("gatewayd.socket", "ActiveState") != "active" {
		t.Errorf("gatewayd.socket was restarted by the upgrade (active since %s, was %s)", since, socketSince)
	}
	var ver struct {
		Client struct{ Version string } `json:"client"`
	}
	if v := c.must("gatewayctl version --json"); json.Unmarshal([]byte(v), &ver) != nil || ver.Client.Version != upVersion {
		t.Errorf("after the upgrade gatewayctl version says:\n%s\nwant client version %s", v, upVersion)
	}
	c.waitFor("the upgraded gateway answering", 30*time.Second, func() bool {
		st := status()
		return st.RPC.OK && st.RPC.ServerVersion == upVersion
	})

	// Purge: stopped, disabled, files and state gone; the account stays.
	c.must("apt-get purge -y -q -o Debug::NoLocking=1 gatewayd")
	for _, u := range []string{"gatewayd.socket", "gatewayd.service"} {
		if st := c.prop(u, "ActiveState"); st != "inactive" {
			t.Errorf("%s is %s after purge, want inactive", u, st)
		}
		if st := c.prop(u, "LoadState"); st != "not-found" {
			t.Errorf("%s load state %s after purge, want not-found", u, st)
		}
	}
	for _, p := range []string{"/var/lib/gatewayd", "/var/log/gatewayd", "/etc/gatewayd", "/usr/bin/gatewayd", "/etc/systemd/system/sockets.target.wants/gatewayd.socket", "/usr/lib/systemd/system/gatewayd.socket"} {
		if _, code := c.sh("test -e " + p + " || test -L " + p); code == 0 {
			t.Errorf("%s remains after purge", p)
		}
	}
	if out, code := c.sh("dpkg-query -W -f='${Status}' gatewayd"); code == 0 && !strings.Contains(out, "not-installed") {
		t.Errorf("dpkg still knows gatewayd after purge: %s", out)
	}
	if got := hostFileHash(t, "/var/lib/dpkg/status"); got != hostStatus {
		t.Error("the host's dpkg database changed during the container test")
	}
}
