package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatewayd/gatewayd/units"
)

// unitState is one unit as the manager finds it on disk.
type unitState struct {
	name string
	// path is the file the manager loads (or loads after the next
	// daemon-reload): the first file of that name in its unit search path,
	// else its FragmentPath; install when there is none.
	path string
	// install is where `gatewayctl install` writes it: <unitDir>/<name>.
	install string
	// fragment is the FragmentPath the manager reports, "" when unknown.
	fragment string
	// under is the next file of the same name lower in the search path,
	// typically the packaged vendor unit in /usr/lib that the file at path
	// overrides; "" when none. underData is its contents.
	under     string
	underData []byte
	expected  []byte
	data      []byte // nil when missing or a symlink
	exists    bool
	link      string // symlink target, when the path is a symlink
	dropins   map[string][]byte
	fileSt    string // GetUnitFileState
}

// sdState is what the systemd checks look at, gathered once per run.
type sdState struct {
	m         *systemdManager
	t         Target
	s         *session
	ctx       context.Context
	renderErr error
	sock, svc *unitState
	rt        *Runtime
	rtErr     error
}

func (m *systemdManager) gather(ctx context.Context, s *session, t Target) *sdState {
	st := &sdState{m: m, t: t, s: s, ctx: ctx}
	files, err := m.render(t)
	if err != nil {
		st.renderErr = err
		return st
	}
	st.rt, st.rtErr = m.status(ctx, s, t)
	us := make([]*unitState, len(files))
	for i, f := range files {
		u := &unitState{name: f.Name, install: filepath.Join(m.unitDir, f.Name), expected: f.Data}
		if st.rt != nil {
			if strings.HasSuffix(f.Name, ".socket") {
				u.fragment = st.rt.SocketFragmentPath
			} else {
				u.fragment = st.rt.FragmentPath
			}
		}
		u.locate(m.searchDirs())
		if u.exists {
			if fi, err := os.Lstat(u.path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				u.link, _ = os.Readlink(u.path)
			} else {
				u.data, _ = os.ReadFile(u.path)
			}
		}
		if u.under != "" {
			u.underData, _ = os.ReadFile(u.under)
		}
		u.dropins = m.dropins(f.Name)
		u.fileSt, _ = s.unitFileState(ctx, f.Name)
		us[i] = u
	}
	st.sock, st.svc = us[0], us[1]
	if st.rt != nil {
		for _, p := range st.rt.DropInPaths {
			for _, u := range us {
				if strings.Contains(p, "/"+u.name+".d/") {
					if _, ok := u.dropins[p]; !ok {
						if data, err := os.ReadFile(p); err == nil {
							u.dropins[p] = data
						}
					}
				}
			}
		}
	}
	return st
}

// searchDirs returns the manager's unit search path, highest priority
// first, with the install directory in it and each directory once (on a
// merged-/usr host /lib/systemd/system and /usr/lib/systemd/system are one).
func (m *systemdManager) searchDirs() []string {
	dirs := slices.Clone(m.unitPath)
	if !slices.ContainsFunc(dirs, func(d string) bool { return sameDir(d, m.unitDir) }) {
		dirs = append([]string{m.unitDir}, dirs...)
	}
	var out []string
	for _, d := range dirs {
		if !slices.ContainsFunc(out, func(o string) bool { return sameDir(o, d) }) {
			out = append(out, d)
		}
	}
	return out
}

// sameDir reports whether a and b name the same directory (the same path,
// or the same inode through a symlink such as /lib -> usr/lib).
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// locate finds the unit where the manager finds it: the first file (or
// symlink) of that name in the search path, and the next one below it. When
// the search path holds none, the manager's FragmentPath (a unit loaded from
// elsewhere) is used; the install path otherwise.
func (u *unitState) locate(dirs []string) {
	var hits []string
	for _, d := range dirs {
		p := filepath.Join(d, u.name)
		if _, err := os.Lstat(p); err == nil {
			hits = append(hits, p)
		}
	}
	switch {
	case len(hits) > 0:
		u.path, u.exists = hits[0], true
		// Name it as the manager does when it is the same file.
		if u.fragment != "" && u.fragment != hits[0] {
			if a, err := os.Stat(u.fragment); err == nil {
				if b, err := os.Stat(hits[0]); err == nil && os.SameFile(a, b) && !isSymlink(hits[0]) {
					u.path = u.fragment
				}
			}
		}
		if len(hits) > 1 {
			u.under = hits[1]
		}
	case u.fragment != "" && fileExists(u.fragment):
		u.path, u.exists = u.fragment, true
	default:
		u.path = u.install
	}
}

func isSymlink(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// strayOverride reports whether the unit's file overrides a lower copy that
// is byte-identical to the template (the packaged vendor unit): the copy
// on top only hides package upgrades and outlives the package, so the repair
// is to remove it. An override of a vendor unit that differs from the
// template is the operator's deliberate unit and is compared as usual.
func (u *unitState) strayOverride() bool {
	return u.exists && u.link == "" && u.data != nil && u.under != "" && u.underData != nil && bytes.Equal(u.underData, u.expected)
}

// label names a unit in messages: its name when it is in the install
// directory, its name and file otherwise (a vendor unit).
func (m *systemdManager) label(u *unitState) string {
	if !u.exists || sameDir(filepath.Dir(u.path), m.unitDir) {
		return u.name
	}
	return u.name + " (" + u.path + ")"
}

// where says where a unit file was found, for messages.
func (m *systemdManager) where(u *unitState) string {
	if !u.exists {
		return u.path
	}
	if sameDir(filepath.Dir(u.path), m.unitDir) {
		return u.path
	}
	return u.path + " (vendor unit)"
}

// dropins reads <dir>/<unit>.d/*.conf in every directory of the manager's
// unit search path (and the install directory).
func (m *systemdManager) dropins(unit string) map[string][]byte {
	out := map[string][]byte{}
	dirs := append([]string{m.unitDir}, m.unitPath...)
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, unit+".d", "*.conf"))
		for _, p := range matches {
			if _, ok := out[p]; ok {
				continue
			}
			if data, err := os.ReadFile(p); err == nil {
				out[p] = data
			}
		}
	}
	return out
}

func (u *unitState) masked() bool {
	return (u.link != "" && units.IsMaskTarget(u.link)) || strings.HasPrefix(u.fileSt, "masked")
}

// effective returns the installed file, or the rendered one when it is
// missing, for applying drop-ins.
func (u *unitState) effective() []byte {
	if u.data != nil {
		return u.data
	}
	return u.expected
}

// dropinList returns the drop-ins' contents in the order systemd applies
// them.
func (u *unitState) dropinList() [][]byte {
	paths := units.DropinOrder(u.dropins)
	out := make([][]byte, len(paths))
	for i, p := range paths {
		out[i] = u.dropins[p]
	}
	return out
}

type sdCheck = check[*sdState]

// systemdChecks are the systemd doctor checks, in report order.
var systemdChecks = []sdCheck{
	{"unit-missing", "the socket and service unit files are installed in the scope's unit directory", checkUnitMissing},
	{"unit-drift", "the unit files match the template option by option (systemd-delta words)", checkUnitDrift},
	{"unit-dropins", "drop-ins applied to the units (reported as extended, never edited); ListenStream= without a reset is an error", checkDropins},
	{"daemon-reload-needed", "the manager has loaded the unit files as they are on disk", checkReload},
	{"unit-not-enabled", "the socket is enabled, so the gateway comes up at boot/login", checkEnabled},
	{"service-not-enabled", "the service is enabled, so the gateway runs from boot/login without waiting for a client", checkServiceEnabled},
	{"unit-masked", "neither unit is masked", checkMasked},
	{"socket-address", "the socket listens on the profile's configured addresses", checkSocketAddress},
	{"service-failed", "neither the service nor the socket is in the failed state", checkServiceFailed},
	{"watchdog-missing", "the service runs with a watchdog (WatchdogSec=)", checkWatchdog},
	{"secret-in-unit", "no token or password in Environment= or on ExecStart= of the unit or its drop-ins", checkSecret},
	{"marker-mismatch", "the marker environment names gatewayd, this version and this profile", checkMarker},
	{"linger-off", "user scope: lingering is on, so the gateway keeps running after logout", checkLinger},
	{"config-invalid", "the profile's config file loads", func(_ context.Context, s *sdState) CheckResult { return checkConfig(s.t) }},
	{"port-taken", "no other process holds the gateway's port", checkPortTaken},
	{"profiles-share-port", "no other installed gatewayd unit (either scope) listens on the same port", checkSharedPort},
}

// Checks implements Manager.
func (m *systemdManager) Checks() []CheckInfo { return infos(systemdChecks) }

func (s *sdState) need() (CheckResult, bool) { return needs(s.renderErr) }

func (s *sdState) needRuntime() (CheckResult, bool) { return needs(s.renderErr, s.rtErr) }

func (s *sdState) units() []*unitState { return []*unitState{s.sock, s.svc} }

func (s *sdState) sc(args string) string { return s.m.systemctl() + " " + args }

const fixRewrite = "rewrite the unit files from the template, daemon-reload and restart (`gatewayctl doctor --fix`)"

const fixOverride = "remove the copy that overrides the packaged unit, so the manager loads the packaged one, then daemon-reload and restart (`gatewayctl doctor --fix`)"

func checkUnitMissing(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	var missing []string
	for _, u := range s.units() {
		if !u.exists {
			missing = append(missing, u.path)
		}
	}
	if len(missing) > 0 {
		r := CheckResult{Severity: SeverityError, Message: "not installed: " + strings.Join(missing, ", "), Fix: "install the units (`gatewayctl install`, or `gatewayctl doctor --fix`)"}
		for _, u := range s.units() {
			if !u.exists {
				r.Findings = append(r.Findings, units.Finding{Kind: units.KindMissing, Unit: u.name, Path: u.path})
			}
		}
		return r
	}
	if filepath.Dir(s.sock.path) == filepath.Dir(s.svc.path) {
		msg := "both units are installed in " + filepath.Dir(s.sock.path)
		if !sameDir(filepath.Dir(s.sock.path), s.m.unitDir) {
			msg += " (vendor units)"
		}
		return CheckResult{Message: msg}
	}
	return CheckResult{Message: "installed: " + s.m.where(s.sock) + ", " + s.m.where(s.svc)}
}

func checkUnitDrift(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	r := CheckResult{Message: "the unit files match the template"}
	var words []string
	for _, u := range s.units() {
		switch {
		case !u.exists:
			continue
		case u.link != "":
			f := units.SymlinkFinding(u.name, u.path, u.link)
			if f.Kind == units.KindMasked {
				continue // unit-masked reports it
			}
			r.Findings = append(r.Findings, f)
			r.Severity = SeverityWarning
			r.Fix = manual(fmt.Sprintf("rm %s && gatewayctl install", u.path))
			words = append(words, u.name+" redirected to "+u.link)
			continue
		}
		if u.strayOverride() {
			// systemd-delta's words: an identical copy on top of the
			// vendor unit is EQUIVALENT, a different one OVERRIDDEN.
			kind := units.KindOverridden
			if bytes.Equal(u.data, u.underData) {
				kind = units.KindEquivalent
			} else if fs := units.Compare(u.name, u.underData, u.data, nil); len(fs) == 1 && fs[0].Kind == units.KindEquivalent {
				kind = units.KindEquivalent
			}
			r.Findings = append(r.Findings, units.Finding{Kind: kind, Unit: u.name, Path: u.path,
				Detail: "overrides the packaged unit " + u.under + ": package upgrades do not reach it and removing the package leaves it behind"})
			if r.Severity != SeverityError {
				r.Severity = SeverityWarning
			}
			r.Fix = fixOverride
			words = append(words, fmt.Sprintf("[%s] %s → %s", strings.ToUpper(kind), u.path, u.under))
		}
		fs := units.Compare(u.name, u.expected, u.data, nil)
		for _, f := range fs {
			switch f.Kind {
			case units.KindUnchanged:
			case units.KindEquivalent:
				if r.Severity == SeverityOK || r.Severity == "" {
					r.Severity = SeverityInfo
				}
				words = append(words, s.m.label(u)+" equivalent (comments or order differ)")
				r.Findings = append(r.Findings, f)
			case units.KindInvalid:
				r.Severity = SeverityError
				if r.Fix != fixOverride {
					r.Fix = fixRewrite
				}
				words = append(words, s.m.label(u)+" does not parse")
				r.Findings = append(r.Findings, f)
			default:
				if r.Severity != SeverityError {
					r.Severity = SeverityWarning
				}
				if r.Fix != fixOverride {
					r.Fix = fixRewrite
				}
				words = append(words, fmt.Sprintf("%s [%s] %s= %s", s.m.label(u), f.Section, f.Key, f.Kind))
				r.Findings = append(r.Findings, f)
			}
		}
	}
	if len(words) > 0 {
		r.Message = strings.Join(words, "; ")
	}
	return r
}

func checkDropins(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	r := CheckResult{Message: "no drop-ins"}
	var words []string
	var leakPaths, otherPaths []string
	for _, u := range s.units() {
		if len(u.dropins) == 0 {
			continue
		}
		for _, f := range units.Compare(u.name, u.effective(), u.effective(), u.dropins) {
			switch f.Kind {
			case units.KindExtended:
				if r.Severity == SeverityOK || r.Severity == "" {
					r.Severity = SeverityInfo
				}
				words = append(words, u.name+" extended by "+f.Path)
				otherPaths = append(otherPaths, f.Path)
			case units.KindOverridden:
				if r.Severity != SeverityError {
					r.Severity = SeverityWarning
				}
				words = append(words, fmt.Sprintf("%s [%s] %s= overridden by %s", u.name, f.Section, f.Key, f.Path))
			case units.KindListenLeak:
				r.Severity = SeverityError
				words = append(words, fmt.Sprintf("%s: %s adds a listen address without resetting the list first (the socket listens on an extra port)", u.name, f.Path))
				leakPaths = append(leakPaths, f.Path)
			case units.KindInvalid:
				r.Severity = SeverityError
				words = append(words, fmt.Sprintf("%s: drop-in %s does not parse", u.name, f.Path))
			default:
				continue
			}
			r.Findings = append(r.Findings, f)
		}
	}
	if len(words) > 0 {
		r.Message = "operator drop-ins (never edited by gatewayctl): " + strings.Join(words, "; ")
	}
	switch {
	case len(leakPaths) > 0:
		r.Fix = manual(fmt.Sprintf("add an empty `ListenStream=` line before the ListenStream= lines in %s, then `%s daemon-reload && %s restart %s`", strings.Join(slices.Compact(leakPaths), ", "), s.m.systemctl(), s.m.systemctl(), s.sock.name))
	case r.Severity == SeverityWarning || r.Severity == SeverityError:
		r.Fix = manual(fmt.Sprintf("review %s (`%s edit %s`), or remove them and run `%s daemon-reload`", strings.Join(slices.Compact(otherPaths), ", "), s.m.systemctl(), s.svc.name, s.m.systemctl()))
	}
	return r
}

func checkReload(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.needRuntime(); !ok {
		return r
	}
	if s.rt.NeedDaemonReload {
		return CheckResult{Severity: SeverityWarning, Message: "a unit file changed on disk since the manager loaded it", Fix: "daemon-reload (`" + s.sc("daemon-reload") + "`)"}
	}
	return CheckResult{Message: "the manager runs the units as they are on disk"}
}

func checkEnabled(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	switch st := s.sock.fileSt; {
	case !s.sock.exists:
		return CheckResult{Severity: SeveritySkipped, Message: s.sock.name + " is not installed (see unit-missing)"}
	case strings.HasPrefix(st, "masked"):
		return CheckResult{Severity: SeveritySkipped, Message: s.sock.name + " is masked (see unit-masked)"}
	case st == "enabled" || st == "enabled-runtime":
		return CheckResult{Message: s.sock.name + " is " + st}
	default:
		if st == "" {
			st = "unknown to the manager"
		}
		return CheckResult{Severity: SeverityWarning, Message: fmt.Sprintf("%s is %s: the gateway does not come up at boot/login", s.sock.name, st), Fix: "enable it (`" + s.sc("enable --now "+s.sock.name) + "`)"}
	}
}

// enableNames are the units --fix enables: the socket, and the service
// when the template starts it at boot.
func (s *sdState) enableNames() []string {
	if startsAtBoot(s.svc.expected) {
		return []string{s.sock.name, s.svc.name}
	}
	return []string{s.sock.name}
}

func checkServiceEnabled(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	switch st := s.svc.fileSt; {
	case !startsAtBoot(s.svc.expected):
		return CheckResult{Severity: SeveritySkipped, Message: "this version's " + s.svc.name + " is started on demand by its socket"}
	case !s.svc.exists:
		return CheckResult{Severity: SeveritySkipped, Message: s.svc.name + " is not installed (see unit-missing)"}
	case strings.HasPrefix(st, "masked"):
		return CheckResult{Severity: SeveritySkipped, Message: s.svc.name + " is masked (see unit-masked)"}
	case st == "enabled" || st == "enabled-runtime":
		return CheckResult{Message: s.svc.name + " is " + st + ": the gateway starts at " + s.bootWord() + " without waiting for a connection"}
	default:
		if st == "" {
			st = "unknown to the manager"
		}
		return CheckResult{Severity: SeverityWarning,
			Message: fmt.Sprintf("%s is %s: the gateway starts only when a client connects, so channels that keep outbound connections stay down after %s", s.svc.name, st, s.bootWord()),
			Fix:     "enable it (`" + s.sc("enable "+s.svc.name) + "`)"}
	}
}

// bootWord says when the scope's manager starts wanted units.
func (s *sdState) bootWord() string {
	if s.m.scope == ScopeUser {
		return "login (at boot with lingering)"
	}
	return "boot"
}

func checkMasked(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	var masked []string
	var fs []units.Finding
	for _, u := range s.units() {
		if u.masked() {
			masked = append(masked, u.name)
			f := units.Finding{Kind: units.KindMasked, Unit: u.name, Detail: "unit file state " + u.fileSt}
			if u.link != "" {
				f = units.SymlinkFinding(u.name, u.path, u.link)
			}
			fs = append(fs, f)
		}
	}
	if len(masked) > 0 {
		return CheckResult{Severity: SeverityError, Message: strings.Join(masked, " and ") + " masked: the manager refuses to start it", Fix: manual(s.sc("unmask " + strings.Join(masked, " "))), Findings: fs}
	}
	return CheckResult{Message: "not masked"}
}

func checkSocketAddress(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.needRuntime(); !ok {
		return r
	}
	if s.rt.SocketLoadState != "loaded" {
		return CheckResult{Severity: SeveritySkipped, Message: s.sock.name + " is not loaded (" + s.rt.SocketLoadState + ")"}
	}
	want := s.t.listen()
	if sameAddrs(s.rt.SocketListen, want) {
		return CheckResult{Message: "listens on " + strings.Join(s.rt.SocketListen, ", ")}
	}
	r := CheckResult{Severity: SeverityError, Message: fmt.Sprintf("%s listens on %s, the profile wants %s", s.sock.name, strings.Join(s.rt.SocketListen, ", "), strings.Join(want, ", "))}
	// Caused by a drop-in: manual; by the file: a rewrite fixes it.
	if fromFile := units.ListenStreams(s.sock.effective()); len(s.sock.dropins) > 0 && !sameAddrs(units.ListenStreams(s.sock.effective(), s.sock.dropinList()...), fromFile) {
		r.Fix = manual(fmt.Sprintf("fix the ListenStream= lines of the drop-ins of %s (see unit-dropins)", s.sock.name))
	} else {
		r.Fix = fixRewrite
	}
	return r
}

func checkServiceFailed(ctx context.Context, s *sdState) CheckResult {
	if r, ok := s.needRuntime(); !ok {
		return r
	}
	var failed []string
	if s.rt.ActiveState == "failed" {
		failed = append(failed, s.svc.name)
	}
	if s.rt.SocketActiveState == "failed" {
		failed = append(failed, s.sock.name)
	}
	if len(failed) == 0 {
		return CheckResult{Message: fmt.Sprintf("%s is %s, %s is %s", s.svc.name, s.rt.ActiveState, s.sock.name, s.rt.SocketActiveState)}
	}
	msg := strings.Join(failed, " and ") + " failed"
	if s.rt.ExecMainStatus != 0 {
		msg += fmt.Sprintf(" (last exit status %d)", s.rt.ExecMainStatus)
	}
	if lines := s.m.journal(ctx, s.svc.name, 8); len(lines) > 0 {
		msg += "; journal:\n" + strings.Join(lines, "\n")
	} else if lines := logTail(s.t.LogFile, 8); len(lines) > 0 {
		msg += "; last lines of " + s.t.LogFile + ":\n" + strings.Join(lines, "\n")
	}
	r := CheckResult{Severity: SeverityError, Message: msg, Fix: "reset the failed state and restart (`" + s.sc("reset-failed "+strings.Join(failed, " ")) + " && gatewayctl restart`)"}
	if s.rt.ExecMainStatus == 78 {
		r.Fix = manual("fix the config (see config-invalid), then `" + s.sc("reset-failed "+s.svc.name) + " && gatewayctl restart`")
	}
	return r
}

// journal returns the unit's last journal lines, or nil when there is no
// journal (no journalctl, no journald, nothing logged).
func (m *systemdManager) journal(ctx context.Context, unit string, n int) []string {
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		return nil
	}
	args := []string{"--no-pager", "-o", "short-iso", "-n", fmt.Sprint(n)}
	if m.scope == ScopeUser {
		args = append(args, "--user-unit", unit)
	} else {
		args = append(args, "-u", unit)
	}
	out, err := exec.CommandContext(ctx, jc, args...).Output()
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" || strings.HasPrefix(l, "-- ") || strings.Contains(l, "No journal files") || strings.Contains(l, "No entries") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

func checkWatchdog(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.needRuntime(); !ok {
		return r
	}
	if s.t.WatchdogSec < 0 {
		return CheckResult{Severity: SeveritySkipped, Message: "the watchdog is disabled for this profile on purpose"}
	}
	if s.rt.LoadState != "loaded" {
		return CheckResult{Severity: SeveritySkipped, Message: s.svc.name + " is not loaded (" + s.rt.LoadState + ")"}
	}
	if s.rt.WatchdogUSec == 0 {
		return CheckResult{Severity: SeverityWarning, Message: s.svc.name + " runs without a watchdog: a hung gateway is never restarted", Fix: fixRewrite}
	}
	return CheckResult{Message: fmt.Sprintf("watchdog every %gs", float64(s.rt.WatchdogUSec)/1e6)}
}

func checkSecret(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	var where []string
	var inDropin []string
	// found lists what in one file holds a secret: Environment= variables,
	// and options of ExecStart= (also visible to every local user in the
	// process list while the gateway runs).
	found := func(data []byte, dropin bool) []string {
		base := data
		var extra [][]byte
		if dropin {
			base, extra = []byte("[Service]\n"), [][]byte{data}
		}
		var what []string
		if vars := secretVars(units.EnvironmentOf(base, extra...)); len(vars) > 0 {
			what = append(what, "Environment= "+strings.Join(vars, ", "))
		}
		for _, argv := range units.ExecStartOf(base, extra...) {
			if flags := secretFlags(argv); len(flags) > 0 {
				what = append(what, "ExecStart= "+strings.Join(flags, ", "))
			}
		}
		return what
	}
	if s.svc.data != nil {
		if what := found(s.svc.data, false); len(what) > 0 {
			where = append(where, fmt.Sprintf("%s in %s", strings.Join(what, "; "), s.svc.path))
		}
	}
	for p, d := range s.svc.dropins {
		if what := found(d, true); len(what) > 0 {
			where = append(where, fmt.Sprintf("%s in %s", strings.Join(what, "; "), p))
			inDropin = append(inDropin, p)
		}
	}
	if len(where) == 0 {
		return CheckResult{Message: "no secrets in Environment= or ExecStart="}
	}
	slices.Sort(where)
	r := CheckResult{Severity: SeverityError, Message: "secret in the unit (world-readable, shown by `systemctl show`; on a command line also by `ps`): " + strings.Join(where, "; ")}
	if len(inDropin) > 0 {
		slices.Sort(inDropin)
		r.Fix = manual(fmt.Sprintf("remove the Environment= or ExecStart= secret from %s and keep the secret in the gateway's token file or config (gateway.auth), then `%s daemon-reload && gatewayctl restart`", strings.Join(inDropin, ", "), s.m.systemctl()))
	} else {
		r.Fix = "rewrite the unit from the template (the gateway reads its token file instead): `gatewayctl doctor --fix`"
	}
	return r
}

func checkMarker(_ context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	if s.svc.data == nil {
		return CheckResult{Severity: SeveritySkipped, Message: s.svc.name + " is not installed as a file"}
	}
	env := units.EnvironmentOf(s.svc.data, s.svc.dropinList()...)
	if probs := markerProblems(env, s.t); len(probs) > 0 {
		return CheckResult{Severity: SeverityWarning, Message: s.svc.name + ": " + strings.Join(probs, "; "), Fix: fixRewrite}
	}
	return CheckResult{Message: fmt.Sprintf("gatewayd %s, profile %s", s.t.Version, units.ProfileName(s.t.Profile))}
}

func checkLinger(_ context.Context, s *sdState) CheckResult {
	if s.m.scope != ScopeUser {
		return CheckResult{Severity: SeveritySkipped, Message: "system scope: lingering does not apply"}
	}
	if s.m.lingering() {
		return CheckResult{Message: "lingering is on for " + s.m.user}
	}
	return CheckResult{Severity: SeverityWarning, Message: fmt.Sprintf("lingering is off for %s: the gateway stops when the user logs out and starts only at login", s.m.user), Fix: manual("loginctl enable-linger " + s.m.user)}
}

func checkPortTaken(ctx context.Context, s *sdState) CheckResult {
	if r, ok := s.needRuntime(); !ok {
		return r
	}
	var ours []string
	if s.rt.SocketListening {
		ours = s.rt.SocketListen
	}
	taken, who := portHolders(ctx, s.t.listen(), func(a string) bool {
		return strings.HasPrefix(a, "/") || slices.ContainsFunc(ours, func(o string) bool { return normAddr(o) == normAddr(a) })
	})
	if len(taken) == 0 {
		if len(ours) > 0 {
			return CheckResult{Message: "the port is held by " + s.sock.name}
		}
		return CheckResult{Message: "the port is free"}
	}
	pp := ports(taken)
	port := ""
	if len(pp) > 0 {
		port = fmt.Sprint(pp[0])
	}
	return CheckResult{
		Severity: SeverityError,
		Message:  fmt.Sprintf("%s is held by %s, not by %s", strings.Join(taken, ", "), who, s.sock.name),
		Fix:      manual(fmt.Sprintf("stop it (find it with `ss -ltnp 'sport = :%s'`) or move this profile to another port (`gatewayctl install --port N --force`)", port)),
	}
}

func checkSharedPort(ctx context.Context, s *sdState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	want := ports(s.t.listen())
	own := append([]string{s.m.unitDir}, s.m.unitPath...)
	dirs := append(slices.Clone(own), s.m.other...)
	seen := map[string]bool{}
	var clashes []string
	for i, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, "gatewayd*.socket"))
		for _, p := range matches {
			if seen[p] || (filepath.Base(p) == s.sock.name && filepath.Clean(dir) == filepath.Clean(s.m.unitDir)) {
				continue
			}
			seen[p] = true
			if tgt, err := os.Readlink(p); err == nil && units.IsMaskTarget(tgt) {
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil || !bytes.Contains(data, []byte("ListenStream")) {
				continue
			}
			if filepath.Base(p) == s.sock.name && slices.Contains(s.m.unitPath, dir) {
				// The same unit name lower in our own search path is the
				// vendor copy of this very unit, not another profile.
				continue
			}
			// A vendor unit that nobody enabled or runs (the package's
			// user units in /usr/lib/systemd/user) is not an install.
			if i < len(own) && !s.m.ownScopeInstall(ctx, s.s, dir, filepath.Base(p)) {
				continue
			}
			if i >= len(own) && !s.m.otherScopeInstall(dir, filepath.Base(p)) {
				continue
			}
			for _, port := range ports(units.ListenStreams(data)) {
				if slices.Contains(want, port) {
					clashes = append(clashes, fmt.Sprintf("%s (port %d)", p, port))
				}
			}
		}
	}
	if len(clashes) == 0 {
		return CheckResult{Message: "no other gatewayd unit uses this port"}
	}
	return CheckResult{
		Severity: SeverityError,
		Message:  "another installed gatewayd socket listens on the same port: " + strings.Join(clashes, ", "),
		Fix:      manual("give one of the profiles its own port (`gatewayctl install --profile P --port N --force`) or uninstall it"),
	}
}

// Doctor implements Manager.
func (m *systemdManager) Doctor(ctx context.Context, t Target, o DoctorOptions) (*Report, error) {
	checks, err := doctorChecks(t, m.scope, systemdChecks, o)
	if err != nil {
		return nil, err
	}
	s, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return runDoctor(ctx, m.log, checks, o,
		func() *sdState { return m.gather(ctx, s, t) },
		m.fixPlan,
		func(st *sdState, p fixPlan) ([]FileChange, error) { return m.applyFix(ctx, s, st, p) })
}

// fixPlan is what doctor --fix does on systemd; its files are the repairs
// of the unit files, when rewrite is set.
type fixPlan struct {
	fix
	rewrite, reload, enable, restartSocket, restartService bool
	// disable is set when the socket's overriding copy is removed: its
	// enablement links may point at that file, so it is disabled first
	// and enabled again on the packaged unit.
	disable bool
}

// repairs returns what --fix does to each unit file: write the template to
// the file the manager loads (the install path when there is none, the
// vendor file itself when that is the one loaded), or remove a stray copy
// that overrides the packaged unit. A masked or redirected unit is left
// alone (unit-masked and unit-drift say what to do by hand).
func (st *sdState) repairs() []fileRepair {
	var out []fileRepair
	for _, u := range st.units() {
		switch {
		case u.link != "":
		case !u.exists:
			out = append(out, fileRepair{path: u.install, data: u.expected})
		case u.strayOverride():
			out = append(out, fileRepair{path: u.path, remove: true})
		case !bytes.Equal(u.data, u.expected):
			out = append(out, fileRepair{path: u.path, data: u.expected})
		}
	}
	return out
}

func (m *systemdManager) fixPlan(st *sdState, results []CheckResult) fixPlan {
	p := fixPlan{fix: fix{fixes: map[string]bool{}}}
	if st.renderErr != nil {
		return p
	}
	masked := st.sock.masked() || st.svc.masked()
	for _, r := range results {
		if !r.Problem() || strings.HasPrefix(r.Fix, manualPrefix) || r.Fix == "" {
			continue
		}
		switch r.Name {
		case "unit-missing", "unit-drift", "marker-mismatch", "watchdog-missing", "secret-in-unit", "socket-address":
			p.rewrite, p.reload = true, true
		case "daemon-reload-needed":
			p.reload = true
		case "unit-not-enabled", "service-not-enabled":
			p.enable = true
		case "service-failed":
			p.restartService = true
		default:
			continue
		}
		p.fixes[r.Name] = true
	}
	if masked {
		p.enable, p.restartService = false, false
	}
	if p.rewrite {
		p.files = st.repairs()
		for _, f := range p.files {
			if f.remove {
				p.steps = append(p.steps, "remove "+f.path+" (it overrides the packaged unit)")
				p.disable = p.disable || (f.path == st.sock.path && !masked)
			} else {
				p.steps = append(p.steps, "rewrite "+f.path)
			}
		}
		if !masked {
			p.enable = true
		}
		if !bytes.Equal(st.sock.data, st.sock.expected) {
			p.restartSocket = !masked
		}
		if !bytes.Equal(st.svc.data, st.svc.expected) && st.rt != nil && (st.rt.ActiveState == "active" || st.rt.ActiveState == "activating") {
			p.restartService = !masked
		}
	}
	if st.rt != nil && st.rt.SocketActiveState == "failed" && !masked {
		p.restartSocket = true
	}
	if p.reload {
		p.steps = append(p.steps, "daemon-reload")
	}
	if p.enable {
		p.steps = append(p.steps, "enable "+strings.Join(st.enableNames(), " "))
	}
	if p.restartSocket {
		p.steps = append(p.steps, "restart "+st.sock.name)
	}
	if p.restartService {
		p.steps = append(p.steps, "restart "+st.svc.name)
	}
	return p
}

// applyFix carries out the plan. Every file it replaces or removes is first
// copied to the backup directory; the returned changes say where, also
// when a later step fails.
func (m *systemdManager) applyFix(ctx context.Context, s *session, st *sdState, p fixPlan) (changes []FileChange, err error) {
	if p.disable {
		if _, err := s.sd.DisableUnitFilesContext(ctx, []string{st.sock.name}, false); err != nil {
			return nil, fmt.Errorf("disable %s before removing %s: %w (try `%s disable %s`)", st.sock.name, st.sock.path, err, m.systemctl(), st.sock.name)
		}
	}
	changes, err = replaceFiles(p.files, m.backupDir, func(f fileRepair, c FileChange) error {
		if f.remove {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s, which overrides the packaged unit: %w (remove it by hand, then `%s daemon-reload`)", f.path, err, m.systemctl())
			}
			m.log.Info("doctor removed a unit file that overrides the packaged unit", "file", f.path, "backup", c.Backup)
			return nil
		}
		if err := writeFiles([]InstalledFile{{Path: f.path, Action: ActionUpdate, Data: f.data}}); err != nil {
			return err
		}
		m.log.Info("doctor rewrote a unit file", "file", f.path, "backup", c.Backup)
		return nil
	})
	if err != nil {
		return changes, err
	}
	return changes, m.applyManagerSteps(ctx, s, st, p)
}

// applyManagerSteps runs the plan's reload, enable and restarts.
func (m *systemdManager) applyManagerSteps(ctx context.Context, s *session, st *sdState, p fixPlan) error {
	if p.reload || p.disable {
		if err := s.sd.ReloadContext(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
	}
	if p.enable {
		if err := m.enable(ctx, s, st.enableNames()...); err != nil {
			return err
		}
	}
	if p.restartSocket {
		if err := m.job(ctx, "stop", st.svc.name, s.sd.StopUnitContext); err != nil {
			return err
		}
		_ = s.sd.ResetFailedUnitContext(ctx, st.sock.name)
		if err := m.job(ctx, "restart", st.sock.name, s.sd.RestartUnitContext); err != nil {
			return err
		}
	} else if p.enable {
		if err := m.job(ctx, "start", st.sock.name, s.sd.StartUnitContext); err != nil {
			return err
		}
	}
	if p.restartService {
		_ = s.sd.ResetFailedUnitContext(ctx, st.svc.name)
		if err := m.job(ctx, "restart", st.svc.name, s.sd.RestartUnitContext); err != nil {
			return err
		}
	}
	return nil
}

// installTarget returns the file Install writes for a rendered unit: the
// one in the install directory, unless there is none there and the file
// the manager loads is a vendor unit byte-identical to the template (the
// package's own): then that one, so that installing on a package-installed
// host writes no copy in /etc that would hide package upgrades and outlive
// the package.
func (m *systemdManager) installTarget(f units.File) string {
	u := &unitState{name: f.Name, install: filepath.Join(m.unitDir, f.Name)}
	u.locate(m.searchDirs())
	if !u.exists || u.path == u.install || isSymlink(u.path) {
		return u.install
	}
	if cur, err := os.ReadFile(u.path); err == nil && bytes.Equal(cur, f.Data) {
		return u.path
	}
	return u.install
}
