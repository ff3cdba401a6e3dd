package service

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"howett.net/plist"

	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/units"
)

// Found is one gateway-like service found by Scan: a unit or plist carrying
// the marker environment (GATEWAY_SERVICE_MARKER), or named like ours.
type Found struct {
	// Unit is the service unit name or launchd label.
	Unit string `json:"unit"`
	// Path is the unit file or plist.
	Path string `json:"path"`
	// Scope is the scope of the directory it was found in.
	Scope string `json:"scope"`
	// Marker is true when it carries GATEWAY_SERVICE_MARKER=gatewayd.
	Marker bool `json:"marker"`
	// Profile is its GATEWAY_PROFILE, "" when it has none.
	Profile string `json:"profile,omitempty"`
	// Version is its GATEWAY_SERVICE_VERSION, "" when it has none.
	Version string `json:"version,omitempty"`
	// Listen are its socket's addresses.
	Listen []string `json:"listen"`
	// Self is true for the target's own unit in the target's scope.
	Self bool `json:"self"`
	// SamePort is true when it listens on one of the target's ports while
	// not being the target itself: two gateways competing for one port.
	SamePort bool `json:"samePort"`
}

// CheckList returns the doctor checks of a manager ("systemd" or "launchd")
// without connecting to it, for `gatewayctl doctor --list` on a host where
// the manager does not answer; nil for an unknown name.
func CheckList(manager string) []CheckInfo {
	switch manager {
	case "systemd":
		return infos(systemdChecks)
	case "launchd":
		return infos(launchdChecks)
	}
	return nil
}

// LastLogError returns the last line of the gateway's JSON-lines (or plain)
// log file that reports an error or warning, or its last line when none
// does; "" when the file is missing or empty.
func LastLogError(path string) string {
	if l := logTail(path, 1); len(l) > 0 {
		return l[0]
	}
	return ""
}

// Scan implements Manager: it reads the unit directories of both scopes
// (the install directory, the manager's unit search path and the other
// scope's directories) for services with the marker environment or a
// gatewayd*.service name.
func (m *systemdManager) Scan(ctx context.Context, t Target) ([]Found, error) {
	if err := checkScope(t, m.scope); err != nil {
		return nil, err
	}
	// The manager tells whether a vendor unit of its own scope is enabled
	// or running; without it every unit file counts.
	var s *session
	if sess, err := m.open(ctx); err == nil {
		defer sess.Close()
		s = sess
	} else {
		m.log.Debug("scan without the manager: every vendor unit counts", "err", err)
	}
	type dir struct{ path, scope string }
	var dirs []dir
	add := func(p, scope string) {
		if p != "" && !slices.ContainsFunc(dirs, func(d dir) bool { return filepath.Clean(d.path) == filepath.Clean(p) }) {
			dirs = append(dirs, dir{p, scope})
		}
	}
	add(m.unitDir, m.scope)
	for _, p := range m.unitPath {
		add(p, m.scope)
	}
	for _, p := range m.other {
		add(p, m.otherScopeName())
	}
	want := ports(t.listen())
	self := units.ServiceName(t.Profile)
	var out []Found
	seen := map[string]bool{} // scope + unit name: the first in the search path wins
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d.path, "*.service"))
		for _, p := range matches {
			name := filepath.Base(p)
			if seen[d.scope+"/"+name] {
				continue
			}
			if tgt, err := os.Readlink(p); err == nil && units.IsMaskTarget(tgt) {
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			env := units.EnvironmentOf(data, m.dropinsOf(d.path, name)...)
			marker := env[units.EnvMarker] == units.MarkerValue
			if !marker && !strings.HasPrefix(name, "gatewayd") {
				continue
			}
			seen[d.scope+"/"+name] = true
			if name != self || d.scope != m.scope {
				// A vendor unit nobody enabled or runs is not an install.
				if d.scope == m.scope && !m.ownScopeInstall(ctx, s, d.path, name) {
					continue
				}
				if d.scope != m.scope && !m.otherScopeInstall(d.path, name) {
					continue
				}
			}
			f := Found{Unit: name, Path: p, Scope: d.scope, Marker: marker, Profile: env[units.EnvProfile], Version: env[units.EnvVersion], Listen: []string{}}
			sock := strings.TrimSuffix(name, ".service") + ".socket"
			for _, sd := range dirs {
				if sd.scope != d.scope {
					continue
				}
				if sdata, err := os.ReadFile(filepath.Join(sd.path, sock)); err == nil {
					f.Listen = append(f.Listen, units.ListenStreams(sdata, m.dropinsOf(sd.path, sock)...)...)
					break
				}
			}
			f.Self = name == self && d.scope == m.scope
			if !f.Self {
				for _, port := range ports(f.Listen) {
					f.SamePort = f.SamePort || slices.Contains(want, port)
				}
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// dropinsOf reads dir/unit.d/*.conf in name order.
func (m *systemdManager) dropinsOf(dir, unit string) [][]byte {
	matches, _ := filepath.Glob(filepath.Join(dir, unit+".d", "*.conf"))
	slices.Sort(matches)
	var out [][]byte
	for _, p := range matches {
		if data, err := os.ReadFile(p); err == nil {
			out = append(out, data)
		}
	}
	return out
}

// Scan implements Manager: it reads the LaunchAgents of the user and the
// LaunchDaemons for plists with the marker environment or a label under
// org.gatewayd.
func (m *launchdManager) Scan(_ context.Context, t Target) ([]Found, error) {
	p, err := m.params(t)
	if err != nil {
		return nil, err
	}
	dirs := []struct{ path, scope string }{
		{filepath.Join(m.home, "Library/LaunchAgents"), ScopeUser},
		{"/Library/LaunchDaemons", ScopeSystem},
	}
	want := ports(t.listen())
	selfPath := launchd.PlistPath(p)
	var out []Found
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d.path, "*.plist"))
		for _, path := range matches {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			var doc struct {
				Label                string            `plist:"Label"`
				EnvironmentVariables map[string]string `plist:"EnvironmentVariables"`
			}
			if _, err := plist.Unmarshal(data, &doc); err != nil {
				continue
			}
			marker := doc.EnvironmentVariables[units.EnvMarker] == units.MarkerValue
			if !marker && !strings.HasPrefix(doc.Label, "org.gatewayd.") {
				continue
			}
			f := Found{Unit: doc.Label, Path: path, Scope: d.scope, Marker: marker,
				Profile: doc.EnvironmentVariables[units.EnvProfile], Version: doc.EnvironmentVariables[units.EnvVersion], Listen: []string{}}
			if pi, err := readPlist(path); err == nil && pi != nil {
				f.Listen = append(f.Listen, pi.listen...)
			}
			f.Self = filepath.Clean(path) == filepath.Clean(selfPath)
			if !f.Self {
				for _, port := range ports(f.Listen) {
					f.SamePort = f.SamePort || slices.Contains(want, port)
				}
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// Where user managers run their services (cgroup v2, the hybrid layout's
// unified hierarchy, and v1's name=systemd hierarchy).
var defaultCgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}

// passwdFile lists the accounts whose own user unit directories are looked
// at for enablement links of packaged user units.
const passwdFile = "/etc/passwd"

// perUserUnitDir reports whether dir is one user's own unit directory
// (~/.config/systemd/user, ~/.local/share/systemd/user, or this process's
// $XDG_CONFIG_HOME/systemd/user or $XDG_DATA_HOME/systemd/user) rather than
// a directory every user manager reads (/etc/systemd/user,
// /usr/lib/systemd/user, ...), where a package ships its user units.
func perUserUnitDir(dir string) bool {
	dir = filepath.Clean(dir)
	for _, suffix := range []string{"/.config/systemd/user", "/.local/share/systemd/user"} {
		if strings.HasSuffix(dir, suffix) {
			return true
		}
	}
	for _, env := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME"} {
		if x := os.Getenv(env); filepath.IsAbs(x) && filepath.Clean(filepath.Join(x, "systemd", "user")) == dir {
			return true
		}
	}
	return false
}

// passwdHomes returns the home directories of the accounts in a passwd(5)
// file, each once, in file order; nil when it cannot be read.
func passwdHomes(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		if i >= 100000 {
			break
		}
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(line, "#") || !filepath.IsAbs(f[5]) {
			continue
		}
		if h := filepath.Clean(f[5]); !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// templateInUse reports whether a user unit shipped in a directory shared
// by every user manager is in use: enabled or linked (a symlink named like
// one of names in a *.wants, *.requires or *.upholds directory of one of
// configDirs, or the unit itself in a user's own directory among
// configDirs) or running (a cgroup of that name under a user manager,
// user@UID.service, below one of cgroupRoots). A package's user units that
// no user enabled are templates, not an installation.
func templateInUse(names, configDirs, cgroupRoots []string) bool {
	for _, dir := range configDirs {
		for _, n := range names {
			for _, pat := range []string{"*.wants", "*.requires", "*.upholds"} {
				if m, _ := filepath.Glob(filepath.Join(dir, pat, n)); len(m) > 0 {
					return true
				}
			}
			if perUserUnitDir(dir) {
				if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
					return true
				}
			}
		}
	}
	for _, root := range cgroupRoots {
		for _, n := range names {
			for _, pat := range []string{"user.slice/user-*.slice/user@*.service/" + n, "user.slice/user-*.slice/user@*.service/*.slice/" + n} {
				if m, _ := filepath.Glob(filepath.Join(root, pat)); len(m) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// unitNames returns the socket and service names of a unit file name's
// base ("gatewayd-work.socket" → gatewayd-work.socket, gatewayd-work.service).
func unitNames(name string) []string {
	base := strings.TrimSuffix(strings.TrimSuffix(name, ".socket"), ".service")
	return []string{base + ".socket", base + ".service"}
}

// otherScopeInstall reports whether the unit file dir/name of the other
// scope is an installation. In system scope, a user unit in a directory
// shared by all user managers (a package's /usr/lib/systemd/user) counts
// only when some user enabled, linked or runs it; everything else counts.
func (m *systemdManager) otherScopeInstall(dir, name string) bool {
	if m.scope != ScopeSystem || perUserUnitDir(dir) {
		return true
	}
	cfg := slices.Clone(m.other)
	for _, h := range passwdHomes(passwdFile) {
		cfg = append(cfg, filepath.Join(h, ".config", "systemd", "user"))
	}
	return templateInUse(unitNames(name), cfg, defaultCgroupRoots)
}

// ownScopeInstall reports whether a unit file of the manager's own scope
// found outside the install directory (a vendor unit in /usr/lib, a
// global user unit in /etc/systemd/user) is an installation: the manager
// says one of its names is enabled or linked, or it is active. Units in the
// install directory always count.
func (m *systemdManager) ownScopeInstall(ctx context.Context, s *session, dir, name string) bool {
	if sameDir(dir, m.unitDir) || s == nil {
		return true
	}
	for _, n := range unitNames(name) {
		switch st, _ := s.unitFileState(ctx, n); st {
		case "enabled", "enabled-runtime", "linked", "linked-runtime", "alias":
			return true
		}
		if ok, _ := s.loaded(ctx, n); ok {
			if p, err := s.sd.GetUnitPropertyContext(ctx, n, "ActiveState"); err == nil {
				switch v, _ := p.Value.Value().(string); v {
				case "active", "activating", "reloading", "deactivating":
					return true
				}
			}
		}
	}
	return false
}
