//go:build linux

package service

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/units"
)

// vendorDir is the fixture manager's $XDG_DATA_HOME/systemd/user: a
// directory of its unit search path below the install directory, where it
// finds units the way a system manager finds a package's units in
// /usr/lib/systemd/system.
func (f *fixture) vendorDir(t *testing.T) string {
	t.Helper()
	for _, kv := range f.um.Env() {
		if v, ok := strings.CutPrefix(kv, "XDG_DATA_HOME="); ok {
			return filepath.Join(v, "systemd", "user")
		}
	}
	t.Fatal("the user manager's environment has no XDG_DATA_HOME")
	return ""
}

// shipUnits writes the rendered units into the vendor directory, as a
// package does, and enables and starts the socket as the package's preset
// and postinst do. It returns the rendered files.
func (f *fixture) shipUnits(t *testing.T) map[string][]byte {
	t.Helper()
	dry := f.install(t, InstallOptions{DryRun: true})
	out := map[string][]byte{}
	for _, file := range dry.Files {
		name := filepath.Base(file.Path)
		mkfile(t, f.vendorDir(t), name, string(file.Data))
		out[name] = file.Data
	}
	f.systemctl(t, "daemon-reload")
	f.systemctl(t, "enable", "--now", "gatewayd.socket")
	return out
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the rendered unit:\n%s", path, got)
	}
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (%v), want none", path, err)
	}
}

// TestDoctorVendorUnits covers a package-installed host: the units live in
// a vendor directory of the search path, not in the install directory.
// doctor finds them through FragmentPath and the search path, is clean,
// reports an edit of the vendor file and repairs that very file, and removes
// (rather than rewrites) a copy in the install directory that overrides the
// packaged unit, so nothing is left to outlive the package.
func TestDoctorVendorUnits(t *testing.T) {
	f := newFixture(t)
	rendered := f.shipUnits(t)
	vendor := f.vendorDir(t)
	vsock, vsvc := filepath.Join(vendor, "gatewayd.socket"), filepath.Join(vendor, "gatewayd.service")

	rt := f.status(t)
	if rt.SocketFragmentPath != vsock || !rt.SocketListening || rt.UnitFileState != "enabled" {
		t.Fatalf("status of the shipped units: %+v", rt)
	}
	rep := f.doctor(t, DoctorOptions{})
	assertClean(t, rep)
	if c, _ := rep.Result("unit-missing"); !strings.Contains(c.Message, vendor) {
		t.Fatalf("unit-missing does not say where the units are: %q", c.Message)
	}
	f.activate(t)
	f.waitStatus(t, "active", func(rt *Runtime) bool { return rt.ActiveState == "active" && rt.FragmentPath == vsvc })

	// `gatewayctl install` on such a host writes no copy.
	res := f.install(t, InstallOptions{})
	if !res.AlreadyInstalled || res.Files[0].Path != vsock || res.Files[1].Path != vsvc {
		t.Fatalf("install over the shipped units: %+v", res)
	}
	assertNoFile(t, f.unitPath("gatewayd.socket"))
	assertNoFile(t, f.unitPath("gatewayd.service"))

	t.Run("edited vendor unit", func(t *testing.T) {
		editUnit(t, vsvc, "RestartSec=2s", "RestartSec=7s")
		rep := f.doctor(t, DoctorOptions{})
		c := assertCheck(t, rep, "unit-drift", SeverityWarning)
		if len(c.Findings) != 1 || c.Findings[0].Key != "RestartSec" || !strings.Contains(c.Message, vsvc) {
			t.Fatalf("unit-drift: %+v", c)
		}
		assertCheck(t, rep, "daemon-reload-needed", SeverityWarning)
		dry := f.doctor(t, DoctorOptions{Fix: true, DryRun: true})
		if c, _ := dry.Result("unit-drift"); !strings.Contains(c.Fix, "rewrite "+vsvc) || strings.Contains(c.Fix, f.unitPath("")) {
			t.Fatalf("dry-run fix must rewrite the vendor file only: %q", c.Fix)
		}
		rep = f.doctor(t, DoctorOptions{Fix: true})
		if c, _ := rep.Result("unit-drift"); !c.Fixed || rep.Remaining != 0 {
			t.Fatalf("after --fix:\n%s", dump(rep))
		}
		assertFile(t, vsvc, rendered["gatewayd.service"])
		assertNoFile(t, f.unitPath("gatewayd.service"))
		assertNoFile(t, f.unitPath("gatewayd.socket"))
		assertClean(t, f.doctor(t, DoctorOptions{}))
		if rt := f.status(t); rt.NeedDaemonReload || rt.FragmentPath != vsvc {
			t.Fatalf("after --fix: %+v", rt)
		}
		f.activate(t)
	})

	copies := func(t *testing.T, svc []byte) {
		t.Helper()
		mkfile(t, f.um.UnitDir(), "gatewayd.socket", string(rendered["gatewayd.socket"]))
		mkfile(t, f.um.UnitDir(), "gatewayd.service", string(svc))
		f.systemctl(t, "daemon-reload")
		if rt := f.status(t); rt.FragmentPath != f.unitPath("gatewayd.service") {
			t.Fatalf("the manager does not load the copy: FragmentPath %s", rt.FragmentPath)
		}
	}
	fixRemovesCopies := func(t *testing.T) {
		t.Helper()
		dry := f.doctor(t, DoctorOptions{Fix: true, DryRun: true})
		if c, _ := dry.Result("unit-drift"); !strings.Contains(c.Fix, "would remove "+f.unitPath("gatewayd.socket")) {
			t.Fatalf("dry-run fix: %q", c.Fix)
		}
		rep := f.doctor(t, DoctorOptions{Fix: true})
		if c, _ := rep.Result("unit-drift"); !c.Fixed || rep.Remaining != 0 {
			t.Fatalf("after --fix:\n%s", dump(rep))
		}
		assertNoFile(t, f.unitPath("gatewayd.socket"))
		assertNoFile(t, f.unitPath("gatewayd.service"))
		assertFile(t, vsock, rendered["gatewayd.socket"])
		assertFile(t, vsvc, rendered["gatewayd.service"])
		rt := f.status(t)
		if rt.FragmentPath != vsvc || rt.SocketFragmentPath != vsock || rt.UnitFileState != "enabled" || !rt.SocketListening || rt.NeedDaemonReload {
			t.Fatalf("after --fix the packaged units must be loaded, enabled and listening: %+v", rt)
		}
		for _, l := range enableLinks(t, f.um.ConfigHome, "gatewayd.socket") {
			if tgt, _ := os.Readlink(l); tgt != vsock {
				t.Errorf("enablement link %s -> %s, want -> %s", l, tgt, vsock)
			}
		}
		assertClean(t, f.doctor(t, DoctorOptions{}))
		f.activate(t)
	}

	t.Run("identical copy over the vendor unit", func(t *testing.T) {
		copies(t, rendered["gatewayd.service"])
		c := assertCheck(t, f.doctor(t, DoctorOptions{}), "unit-drift", SeverityWarning)
		if len(c.Findings) != 2 || c.Findings[0].Kind != units.KindEquivalent || c.Findings[0].Path != f.unitPath("gatewayd.socket") ||
			!strings.Contains(c.Message, "[EQUIVALENT] "+f.unitPath("gatewayd.service")+" → "+vsvc) {
			t.Fatalf("unit-drift: %+v", c)
		}
		fixRemovesCopies(t)
	})

	t.Run("edited copy over the vendor unit", func(t *testing.T) {
		copies(t, bytes.Replace(rendered["gatewayd.service"], []byte("RestartSec=2s"), []byte("RestartSec=7s"), 1))
		c := assertCheck(t, f.doctor(t, DoctorOptions{}), "unit-drift", SeverityWarning)
		var kinds []string
		for _, fd := range c.Findings {
			kinds = append(kinds, fd.Kind+" "+fd.Key)
		}
		if !slices.Contains(kinds, units.KindOverridden+" ") || !slices.Contains(kinds, units.KindChanged+" RestartSec") || !strings.Contains(c.Message, "[OVERRIDDEN]") {
			t.Fatalf("unit-drift: %+v", c)
		}
		fixRemovesCopies(t)
	})

	t.Run("deliberate unit over a different vendor unit", func(t *testing.T) {
		// The vendor unit is not what this gatewayctl renders (say, the
		// profile moved to another port) and the operator installed the
		// right one on top: that is the unit in use, and it is clean.
		old := bytes.Replace(rendered["gatewayd.service"], []byte("RestartSec=2s"), []byte("RestartSec=5s"), 1)
		if err := os.WriteFile(vsvc, old, 0o644); err != nil {
			t.Fatal(err)
		}
		copies(t, rendered["gatewayd.service"])
		rep := f.doctor(t, DoctorOptions{Fix: true})
		assertClean(t, rep)
		assertFile(t, f.unitPath("gatewayd.service"), rendered["gatewayd.service"])
		assertFile(t, vsvc, old)
		for _, n := range []string{"gatewayd.socket", "gatewayd.service"} {
			os.Remove(f.unitPath(n))
		}
		if err := os.WriteFile(vsvc, rendered["gatewayd.service"], 0o644); err != nil {
			t.Fatal(err)
		}
		f.systemctl(t, "daemon-reload")
		assertClean(t, f.doctor(t, DoctorOptions{}))
	})
}

// TestSharedPortVendorUnits: a vendor unit of another profile on the same
// port is a second gateway only when it is enabled or running. In the
// manager's own scope the manager says so; from system scope, a packaged
// user unit (in a directory every user manager reads) counts only when a
// user enabled, linked or runs it.
func TestSharedPortVendorUnits(t *testing.T) {
	f := newFixture(t)
	f.install(t, InstallOptions{})
	workSock := fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n\n[Install]\nWantedBy=sockets.target\n", f.tg.Port)
	workSvc := "[Service]\nExecStart=/bin/true\nEnvironment=" + units.EnvMarker + "=" + units.MarkerValue + "\n"

	findWork := func(t *testing.T, m Manager, tg Target) *Found {
		t.Helper()
		found, err := m.Scan(testCtx(t), tg)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for i := range found {
			if found[i].Unit == "gatewayd-work.service" {
				return &found[i]
			}
		}
		return nil
	}

	t.Run("own scope", func(t *testing.T) {
		p := mkfile(t, f.vendorDir(t), "gatewayd-work.socket", workSock)
		mkfile(t, f.vendorDir(t), "gatewayd-work.service", workSvc)
		f.systemctl(t, "daemon-reload")
		assertCheck(t, f.doctor(t, DoctorOptions{Only: []string{"profiles-share-port"}}), "profiles-share-port", SeverityOK)
		if w := findWork(t, f.mgr, f.tg); w != nil {
			t.Fatalf("Scan lists a vendor unit nobody enabled: %+v", w)
		}
		f.systemctl(t, "enable", "gatewayd-work.socket")
		c := assertCheck(t, f.doctor(t, DoctorOptions{Only: []string{"profiles-share-port"}}), "profiles-share-port", SeverityError)
		if !strings.Contains(c.Message, p) {
			t.Fatalf("profiles-share-port: %q", c.Message)
		}
		if w := findWork(t, f.mgr, f.tg); w == nil || !w.SamePort || w.Path != filepath.Join(f.vendorDir(t), "gatewayd-work.service") {
			t.Fatalf("Scan after enabling: %+v", w)
		}
		f.systemctl(t, "disable", "gatewayd-work.socket")
		os.Remove(p)
		os.Remove(filepath.Join(f.vendorDir(t), "gatewayd-work.service"))
		f.systemctl(t, "daemon-reload")
	})

	t.Run("packaged user units seen from system scope", func(t *testing.T) {
		// A system-scope Manager (on the fixture's bus: only the unit
		// directories matter here) whose other scope is a package's user
		// unit directory and one user's own directory.
		root := t.TempDir()
		shared := filepath.Join(root, "usr/lib/systemd/user")
		alice := filepath.Join(root, "home/alice/.config/systemd/user")
		for _, d := range []string{shared, alice} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		m, err := NewSystemdWithOptions(testCtx(t), SystemdOptions{
			Scope: ScopeSystem, BusAddress: f.um.BusAddress,
			UnitDir: filepath.Join(root, "etc/systemd/system"), OtherScopeDirs: []string{shared, alice},
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		tg := f.tg
		tg.Scope = ScopeSystem
		p := mkfile(t, shared, "gatewayd-work.socket", workSock)
		mkfile(t, shared, "gatewayd-work.service", workSvc)
		// The same profile's packaged user units do not block a system
		// install either.
		mkfile(t, shared, "gatewayd.socket", workSock)
		if _, err := m.Install(testCtx(t), tg, InstallOptions{DryRun: true}); err != nil {
			t.Fatalf("system install refused over unused packaged user units: %v", err)
		}

		rep, err := m.Doctor(testCtx(t), tg, DoctorOptions{Only: []string{"profiles-share-port"}})
		if err != nil {
			t.Fatal(err)
		}
		assertCheck(t, rep, "profiles-share-port", SeverityOK)
		if w := findWork(t, m, tg); w != nil {
			t.Fatalf("Scan lists a packaged user unit nobody enabled: %+v", w)
		}

		mklink(t, alice, "sockets.target.wants/gatewayd-work.socket", p)
		rep, err = m.Doctor(testCtx(t), tg, DoctorOptions{Only: []string{"profiles-share-port"}})
		if err != nil {
			t.Fatal(err)
		}
		if c := assertCheck(t, rep, "profiles-share-port", SeverityError); !strings.Contains(c.Message, p) {
			t.Fatalf("profiles-share-port: %q", c.Message)
		}
		if w := findWork(t, m, tg); w == nil || !w.SamePort || w.Scope != ScopeUser {
			t.Fatalf("Scan after a user enabled it: %+v", w)
		}
		mklink(t, alice, "sockets.target.wants/gatewayd.socket", filepath.Join(shared, "gatewayd.socket"))
		if _, err := m.Install(testCtx(t), tg, InstallOptions{DryRun: true}); err == nil || !strings.Contains(err.Error(), "user scope") {
			t.Fatalf("system install with the profile enabled in user scope: err = %v, want a refusal", err)
		}
	})
}
