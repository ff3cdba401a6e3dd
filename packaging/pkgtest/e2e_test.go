package pkgtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/testutil"
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
// container and follows an operator's first hour (docs/runbook.md): with the
// presets disabling the gateway, `systemctl enable --now gatewayd.socket`
// turns it on and the first `gatewayctl health` works; with the presets as
// shipped, installing alone starts it and the first `health` and `status`
// work; after a reboot it runs without any client having connected; doctor
// repairs an edited unit; an upgrade restarts it on the new binary without
// closing the socket; an upgrade to a build whose validation rejects the
// installed config leaves the old gateway serving and says what to fix,
// and after the fix a reinstall brings the new version up; purge.
func TestEndToEndSystemd(t *testing.T) {
	res := packages(t)
	needRoot(t, "systemd-nspawn")
	needCheckConfig(t)
	hostStatus := hostFileHash(t, "/var/lib/dpkg/status")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	upVersion, strictVersion := testUpgradeVersion, testStrictVersion
	if os.Getenv("GATEWAYD_DIST") != "" {
		upVersion, strictVersion = res.Version+"+up1", res.Version+"+up2"
	}
	up := buildDeb(ctx, t, repoRoot, upVersion, "pkgtest-up")
	strict := buildDeb(ctx, t, stricterSource(t), strictVersion, "pkgtest-strict")

	s := sdtest.BootSystem(t, sdtest.SystemOptions{Mask: []string{"postgresql.service", "postgresql@15-main.service"}})
	c := &container{t: t, s: s, ctx: ctx}
	for _, p := range []string{res.Deb, up.Deb, strict.Deb} {
		if err := s.CopyIn(p, "/root/pkgs/"+filepath.Base(p)); err != nil {
			t.Fatal(err)
		}
	}
	apt := "apt-get install -y -q --no-install-recommends -o Debug::NoLocking=1 "
	deb := func(r *pkgbuild.Result) string { return "/root/pkgs/" + filepath.Base(r.Deb) }
	// This machine's image carries Docker's /usr/sbin/policy-rc.d ("exit
	// 101": never start services), which makes deb-systemd-invoke skip
	// every start/restart. A real host has none: remove it inside the
	// container (its overlay; the host's file is untouched).
	c.must("rm -f /usr/sbin/policy-rc.d")
	port := pkgbuild.DefaultPort()

	// 1. A site whose presets disable the gateway: installing enables and
	// starts nothing; `systemctl enable --now gatewayd.socket` turns on
	// both units (the socket's Also=), and the very first health check,
	// with no retry flag, answers.
	c.must("mkdir -p /etc/systemd/system-preset && echo 'disable gatewayd.*' > /etc/systemd/system-preset/00-pkgtest.preset")
	c.must(apt + deb(res))
	c.wantUnits("after installing under a disabling preset", map[string]string{"UnitFileState": "disabled", "ActiveState": "inactive"})
	c.must("systemctl enable --now gatewayd.socket")
	c.wantUnits("after `systemctl enable --now gatewayd.socket` (always on)", map[string]string{"UnitFileState": "enabled"})
	if out, code := c.sh("gatewayctl health"); code != 0 {
		t.Errorf("the first `gatewayctl health` after `systemctl enable --now gatewayd.socket`: exit %d\n%s", code, out)
	}
	c.must("apt-get purge -y -q -o Debug::NoLocking=1 gatewayd && rm /etc/systemd/system-preset/00-pkgtest.preset")

	// 2. The presets as shipped: installing enables both units and starts
	// the gateway, so the very first health and status answer.
	c.must(apt + deb(res))
	c.wantUnits("after install (enabled by the preset, started by postinst)", map[string]string{"UnitFileState": "enabled", "ActiveState": "active"})
	if out, code := c.sh("gatewayctl health"); code != 0 {
		t.Errorf("the first `gatewayctl health` after apt-get install: exit %d\n%s", code, out)
	}
	if out, code := c.sh("gatewayctl status"); code != 0 {
		t.Errorf("the first `gatewayctl status` after apt-get install: exit %d\n%s", code, out)
	}
	c.must("systemctl enable --now gatewayd.socket") // the documented command is harmless now
	c.must("id gatewayd")
	// man finds the three pages the package installed, and the documents
	// are in the doc directory.
	for _, page := range []string{"8 gatewayd", "1 gatewayctl", "5 gatewayd.json"} {
		if out, code := c.sh("man -w " + page); code != 0 || !strings.HasPrefix(out, "/usr/share/man/") {
			t.Errorf("man -w %s after install: exit %d, %q; want the packaged page", page, code, out)
		}
	}
	c.must("test -s /usr/share/doc/gatewayd/runbook.md && test -s /usr/share/doc/gatewayd/config.md && test -s /usr/share/doc/gatewayd/protocol.md")
	// The units' Documentation= leads to all three pages and the runbook
	// (systemctl show quotes the entries with parentheses).
	for _, u := range []string{"gatewayd.socket", "gatewayd.service"} {
		got := strings.ReplaceAll(c.prop(u, "Documentation"), `"`, "")
		if want := "man:gatewayd(8) man:gatewayd.json(5) man:gatewayctl(1) file:/usr/share/doc/gatewayd/runbook.md"; got != want {
			t.Errorf("%s Documentation=%q, want %q", u, got, want)
		}
	}

	// 3. Reboot: the gateway comes up at boot, before and without any
	// client connecting (nothing in the container dials the port).
	oldLeader := s.Leader
	if err := s.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Leader == oldLeader {
		t.Fatal("the container's PID 1 did not change across the reboot")
	}
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "gatewayd.service active after the reboot", func() (bool, string) {
		s := c.prop("gatewayd.service", "ActiveState")
		return s == "active", "ActiveState=" + s
	})
	if wb := c.prop("gatewayd.service", "WantedBy"); !strings.Contains(wb, "multi-user.target") {
		t.Errorf("gatewayd.service WantedBy=%q, want multi-user.target (started by the boot, not by a client)", wb)
	}
	pid := c.prop("gatewayd.service", "MainPID")
	if user := c.must("ps -o user= -p " + pid); user != "gatewayd" {
		t.Errorf("gatewayd runs as %q, want the gatewayd user", user)
	}
	if out := c.must("ss -Hltnp sport = :" + strconv.Itoa(port)); !strings.Contains(out, "systemd") {
		t.Errorf("port %d after the reboot is not held by systemd (the socket unit):\n%s", port, out)
	}

	st := c.status()
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
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "gatewayd.service active after doctor --fix", func() (bool, string) {
		s := c.prop("gatewayd.service", "ActiveState")
		return s == "active", "ActiveState=" + s
	})
	pid = c.prop("gatewayd.service", "MainPID")
	socketSince := c.prop("gatewayd.socket", "ActiveEnterTimestampMonotonic")

	// 4. Upgrade: the new binary accepts the config, so the service
	// restarts on it; the socket is never stopped.
	c.must(apt + deb(up))
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "gatewayd.service active after the upgrade", func() (bool, string) {
		s := c.prop("gatewayd.service", "ActiveState")
		return s == "active", "ActiveState=" + s
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
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the upgraded gateway answering", func() (bool, string) {
		st := c.status()
		return st.RPC.OK && st.RPC.ServerVersion == upVersion, fmt.Sprintf("rpc ok %v, server version %q", st.RPC.OK, st.RPC.ServerVersion)
	})

	// 5. The operator sets a reload debounce this version accepts, and the
	// gateway runs with it.
	const config = "/etc/gatewayd/config.json"
	c.must(`sed -i 's/"mode": "hybrid"/"mode": "hybrid", "debounceMs": 5000/' ` + config + ` && grep -q '"debounceMs": 5000' ` + config)
	c.must("gatewayd --check-config --config " + config)
	c.must("systemctl restart gatewayd.service")
	pid = c.prop("gatewayd.service", "MainPID")
	socketSince = c.prop("gatewayd.socket", "ActiveEnterTimestampMonotonic")

	// 6. An upgrade to a build whose validation is stricter (debounceMs at
	// most 1000): apt succeeds and prints the config error with its
	// position and what to do; the old gateway keeps serving.
	out, code = c.sh(apt + deb(strict) + " 2>&1")
	if code != 0 {
		t.Fatalf("apt-get install of the stricter build: exit %d, want 0 (the transaction must complete)\n%s", code, out)
	}
	t.Logf("apt-get install of the stricter build:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`rejects the configuration in ` + regexp.QuoteMeta(config)),
		regexp.MustCompile(regexp.QuoteMeta(config) + `:\d+:\d+: .*debounceMs`),
		regexp.MustCompile(`NOT restarted`),
		regexp.MustCompile(`systemctl restart gatewayd\.service`),
		regexp.MustCompile(`apt-get install --reinstall gatewayd`),
	} {
		if !want.MatchString(out) {
			t.Errorf("apt-get output of the rejected upgrade lacks %q:\n%s", want, out)
		}
	}
	if st := c.must("dpkg-query -W -f='${Status} ${Version}' gatewayd"); st != "install ok installed "+strictVersion {
		t.Errorf("dpkg says %q after the rejected upgrade, want %q (configured, not half-installed)", st, "install ok installed "+strictVersion)
	}
	if got := c.prop("gatewayd.service", "MainPID"); got != pid || c.prop("gatewayd.service", "ActiveState") != "active" {
		t.Errorf("the rejected upgrade touched the running gateway: MainPID %s (was %s), %s", got, pid, c.prop("gatewayd.service", "ActiveState"))
	}
	if since := c.prop("gatewayd.socket", "ActiveEnterTimestampMonotonic"); since != socketSince {
		t.Errorf("gatewayd.socket was restarted by the rejected upgrade")
	}
	if out, code := c.sh("gatewayctl health"); code != 0 {
		t.Errorf("gatewayctl health after the rejected upgrade: exit %d\n%s", code, out)
	}
	if st := c.status(); !st.RPC.OK || st.RPC.ServerVersion != upVersion {
		t.Errorf("after the rejected upgrade the gateway answers %+v, want the previous version %s still serving", st.RPC, upVersion)
	}

	// 7. Fix the config; a reinstall validates again and brings the new
	// version up.
	c.must(`sed -i 's/, "debounceMs": 5000//' ` + config + ` && ! grep -q debounceMs ` + config)
	out, code = c.sh("apt-get install --reinstall -y -q -o Debug::NoLocking=1 " + deb(strict) + " 2>&1")
	if code != 0 || strings.Contains(out, "rejects the configuration") {
		t.Errorf("reinstall after fixing the config: exit %d\n%s", code, out)
	}
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the stricter version answering after the fix", func() (bool, string) {
		st := c.status()
		return st.RPC.OK && st.RPC.ServerVersion == strictVersion, fmt.Sprintf("rpc ok %v, server version %q", st.RPC.OK, st.RPC.ServerVersion)
	})
	if got := c.prop("gatewayd.service", "MainPID"); got == pid {
		t.Errorf("the reinstall did not restart the gateway (MainPID still %s)", pid)
	}

	// Purge: stopped, disabled, files and state gone; the account stays.
	c.must("apt-get purge -y -q -o Debug::NoLocking=1 gatewayd")
	c.wantUnits("after purge", map[string]string{"ActiveState": "inactive", "LoadState": "not-found"})
	for _, p := range []string{"/var/lib/gatewayd", "/var/log/gatewayd", "/etc/gatewayd", "/usr/bin/gatewayd", "/etc/systemd/system/sockets.target.wants/gatewayd.socket", "/etc/systemd/system/multi-user.target.wants/gatewayd.service", "/usr/lib/systemd/system/gatewayd.socket"} {
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

// wantUnits checks properties of both gatewayd units.
func (c *container) wantUnits(when string, want map[string]string) {
	c.t.Helper()
	for _, u := range []string{"gatewayd.socket", "gatewayd.service"} {
		for p, v := range want {
			if got := c.prop(u, p); got != v {
				c.t.Errorf("%s: %s has %s=%s, want %s", when, u, p, got, v)
			}
		}
	}
}

// status runs `gatewayctl status --json` inside.
func (c *container) status() statusJSON {
	c.t.Helper()
	out, code := c.sh("gatewayctl status --json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("gatewayctl status --json (exit %d): %v\n%s", code, err, out)
	}
	return st
}

// buildDeb builds a deb of version from the source tree src.
func buildDeb(ctx context.Context, t *testing.T, src, version, commit string) *pkgbuild.Result {
	t.Helper()
	r, err := pkgbuild.Build(ctx, pkgbuild.Options{RepoRoot: src, OutDir: t.TempDir(), Formats: []string{pkgbuild.FormatDeb},
		Version: version, Commit: commit, SourceDateEpoch: testEpoch})
	if err != nil {
		t.Fatalf("build the %s deb: %v", version, err)
	}
	return r
}

// stricterSource copies the checkout and tightens one validation rule
// (gateway.reload.debounceMs at most 1000 instead of 60000), as a release
// that changed config validation would: a config the current version runs
// with is rejected by the copy's build.
func stricterSource(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		if d.IsDir() {
			if rel == ".git" || rel == "dist" || rel == "bin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the checkout: %v", err)
	}
	// The rule is found by its declaration, in whichever file of
	// daemon/config declares it.
	re := regexp.MustCompile(`(?m)^(\s*maxDebounceMs\s*=\s*)60000\b`)
	files, _ := filepath.Glob(filepath.Join(dst, "daemon/config/*.go"))
	tightened := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !re.Match(b) {
			continue
		}
		if err := os.WriteFile(f, re.ReplaceAll(b, []byte("${1}1000")), 0o644); err != nil {
			t.Fatal(err)
		}
		tightened++
	}
	if tightened != 1 {
		t.Fatalf("daemon/config declares `maxDebounceMs = 60000` in %d files, want 1; update stricterSource to the validation rule that replaced it", tightened)
	}
	return dst
}

// needCheckConfig fails when the packaged gatewayd's --check-config does
// not accept the packaged config (the upgrade scripts call it and refuse
// to restart without it).
func needCheckConfig(t *testing.T) {
	t.Helper()
	tree := debTree(t)
	dir := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GATEWAY_STATE_DIR=" + dir}
	out, code := run(t, env, filepath.Join(tree, "usr/bin/gatewayd"), "--check-config", "--config", filepath.Join(tree, "etc/gatewayd/config.json"))
	if code != 0 || !strings.HasPrefix(out, "config ok: ") {
		t.Fatalf("packaged gatewayd --check-config on the packaged config: exit %d: %s (the upgrade scripts need it to accept the shipped config)", code, strings.TrimSpace(out))
	}
}
