package service

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// mkfile writes data to root/rel, creating the directories.
func mkfile(t *testing.T, root, rel, data string) string {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mklink creates the symlink root/rel -> target.
func mklink(t *testing.T, root, rel, target string) string {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLocate finds a unit where systemd does: the first file of its name in
// the search path (an /etc copy over the /usr/lib one), the vendor file when
// the install directory has none, the FragmentPath's spelling of the same
// file, and the FragmentPath when the search path has none.
func TestLocate(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc/systemd/system")
	run := filepath.Join(root, "run/systemd/system")
	usr := filepath.Join(root, "usr/lib/systemd/system")
	// /lib -> usr/lib, as on a merged-/usr host.
	if err := os.MkdirAll(usr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(root, "lib/systemd/system")
	for _, d := range []string{etc, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := &systemdManager{unitDir: etc, unitPath: []string{etc, run, lib, usr}}
	if got := m.searchDirs(); !slices.Equal(got, []string{etc, run, lib}) {
		t.Fatalf("searchDirs = %v, want %v (/usr/lib is /lib here)", got, []string{etc, run, lib})
	}
	if got := (&systemdManager{unitDir: etc, unitPath: []string{run, usr}}).searchDirs(); !slices.Equal(got, []string{etc, run, usr}) {
		t.Fatalf("searchDirs without the install dir in the path = %v", got)
	}

	vendor := mkfile(t, usr, "gatewayd.service", "[Service]\n")
	outside := mkfile(t, root, "opt/gatewayd.service", "[Service]\n")
	tests := []struct {
		name      string
		setup     func(t *testing.T)
		fragment  string
		wantPath  string
		wantUnder string
		exists    bool
	}{
		{"nothing anywhere", func(t *testing.T) { os.Remove(vendor) }, "", filepath.Join(etc, "gatewayd.service"), "", false},
		{"vendor only, as the manager spells it", func(t *testing.T) {}, filepath.Join(lib, "gatewayd.service"), filepath.Join(lib, "gatewayd.service"), "", true},
		{"vendor only, not loaded", func(t *testing.T) {}, "", filepath.Join(lib, "gatewayd.service"), "", true},
		{"vendor only, FragmentPath spelled /usr/lib", func(t *testing.T) {}, vendor, vendor, "", true},
		{"etc copy over the vendor unit", func(t *testing.T) { mkfile(t, etc, "gatewayd.service", "[Service]\n") }, filepath.Join(lib, "gatewayd.service"), filepath.Join(etc, "gatewayd.service"), filepath.Join(lib, "gatewayd.service"), true},
		{"loaded from outside the search path", func(t *testing.T) { os.Remove(vendor) }, outside, outside, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(etc, "gatewayd.service"))
			mkfile(t, usr, "gatewayd.service", "[Service]\n")
			tc.setup(t)
			u := &unitState{name: "gatewayd.service", install: filepath.Join(etc, "gatewayd.service"), fragment: tc.fragment}
			u.locate(m.searchDirs())
			if u.path != tc.wantPath || u.under != tc.wantUnder || u.exists != tc.exists {
				t.Errorf("locate: path %q under %q exists %v; want %q, %q, %v", u.path, u.under, u.exists, tc.wantPath, tc.wantUnder, tc.exists)
			}
		})
	}
}

// TestStrayOverride: only a regular file on top of a vendor unit that is
// the template itself is a stray copy to remove; an override of a vendor
// unit that differs from the template is the operator's deliberate unit.
func TestStrayOverride(t *testing.T) {
	tmpl := []byte("[Service]\nRestartSec=2s\n")
	tests := []struct {
		name string
		u    unitState
		want bool
	}{
		{"identical copy over the package's unit", unitState{exists: true, data: tmpl, under: "/usr/lib/x", underData: tmpl, expected: tmpl}, true},
		{"edited copy over the package's unit", unitState{exists: true, data: []byte("[Service]\nRestartSec=7s\n"), under: "/usr/lib/x", underData: tmpl, expected: tmpl}, true},
		{"copy over a vendor unit of another rendering", unitState{exists: true, data: tmpl, under: "/usr/lib/x", underData: []byte("[Service]\nRestartSec=1s\n"), expected: tmpl}, false},
		{"no vendor unit below", unitState{exists: true, data: tmpl, expected: tmpl}, false},
		{"a mask over the vendor unit", unitState{exists: true, link: "/dev/null", under: "/usr/lib/x", underData: tmpl, expected: tmpl}, false},
		{"missing", unitState{expected: tmpl}, false},
	}
	for _, tc := range tests {
		if got := tc.u.strayOverride(); got != tc.want {
			t.Errorf("%s: strayOverride = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPerUserUnitDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/srv/cfg")
	t.Setenv("XDG_DATA_HOME", "")
	tests := []struct {
		dir  string
		want bool
	}{
		{"/usr/lib/systemd/user", false},
		{"/lib/systemd/user", false},
		{"/etc/systemd/user", false},
		{"/usr/local/share/systemd/user", false},
		{"/home/alice/.config/systemd/user", true},
		{"/root/.config/systemd/user/", true},
		{"/home/alice/.local/share/systemd/user", true},
		{"/srv/cfg/systemd/user", true},
	}
	for _, tc := range tests {
		if got := perUserUnitDir(tc.dir); got != tc.want {
			t.Errorf("perUserUnitDir(%q) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}

func TestPasswdHomes(t *testing.T) {
	p := mkfile(t, t.TempDir(), "passwd", `root:x:0:0:root:/root:/bin/bash
# a comment:x:1:1::/nope:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice/:/bin/bash
broken line
nohome:x:1001:1001::relative:/bin/sh
twin:x:1002:1002::/home/alice:/bin/sh
`)
	want := []string{"/root", "/usr/sbin", "/home/alice"}
	if got := passwdHomes(p); !slices.Equal(got, want) {
		t.Errorf("passwdHomes = %v, want %v", got, want)
	}
	if got := passwdHomes(filepath.Join(t.TempDir(), "missing")); got != nil {
		t.Errorf("passwdHomes(missing) = %v, want nil", got)
	}
}

// TestTemplateInUse: a packaged user unit counts as installed only when a
// user enabled it (globally or in a home), linked it, or runs it.
func TestTemplateInUse(t *testing.T) {
	names := unitNames("gatewayd.socket")
	if !slices.Equal(names, []string{"gatewayd.socket", "gatewayd.service"}) {
		t.Fatalf("unitNames = %v", names)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, etc, home, cg string)
		want  bool
	}{
		{"shipped, enabled by nobody", func(t *testing.T, etc, home, cg string) {
			mkfile(t, etc, "other.socket", "")
			mklink(t, etc, "sockets.target.wants/other.socket", "/usr/lib/systemd/user/other.socket")
			mkfile(t, cg, "user.slice/user-1000.slice/user@1000.service/app.slice/other.service/cgroup.procs", "")
		}, false},
		{"enabled globally (systemctl --global enable)", func(t *testing.T, etc, home, cg string) {
			mklink(t, etc, "sockets.target.wants/gatewayd.socket", "/usr/lib/systemd/user/gatewayd.socket")
		}, true},
		{"enabled by one user", func(t *testing.T, etc, home, cg string) {
			mklink(t, home, "sockets.target.wants/gatewayd.socket", "/usr/lib/systemd/user/gatewayd.socket")
		}, true},
		{"required by a user's target", func(t *testing.T, etc, home, cg string) {
			mklink(t, home, "default.target.requires/gatewayd.service", "/usr/lib/systemd/user/gatewayd.service")
		}, true},
		{"linked into a user's directory", func(t *testing.T, etc, home, cg string) {
			mklink(t, home, "gatewayd.socket", "/usr/lib/systemd/user/gatewayd.socket")
		}, true},
		{"running under a user manager (app.slice)", func(t *testing.T, etc, home, cg string) {
			mkfile(t, cg, "user.slice/user-1000.slice/user@1000.service/app.slice/gatewayd.service/cgroup.procs", "")
		}, true},
		{"running under a user manager (no slice)", func(t *testing.T, etc, home, cg string) {
			mkfile(t, cg, "user.slice/user-1000.slice/user@1000.service/gatewayd.service/tasks", "")
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			etc := filepath.Join(root, "etc/systemd/user")
			home := filepath.Join(root, "home/alice/.config/systemd/user")
			cg := filepath.Join(root, "cgroup")
			tc.setup(t, etc, home, cg)
			if got := templateInUse(names, []string{etc, home}, []string{cg}); got != tc.want {
				t.Errorf("templateInUse = %v, want %v", got, tc.want)
			}
		})
	}
}
