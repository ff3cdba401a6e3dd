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
func (m *systemdManager) Scan(_ context.Context, t Target) ([]Found, error) {
	if err := checkScope(t, m.scope); err != nil {
		return nil, err
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
