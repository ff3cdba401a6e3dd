package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/units"
)

// RunFunc runs `launchctl ARGS...` and returns its combined output and exit
// status; err is for failing to run it at all.
type RunFunc func(ctx context.Context, args ...string) (out string, exit int, err error)

// LaunchdOptions configure a launchd Manager.
type LaunchdOptions struct {
	// Scope is ScopeUser (LaunchAgent, gui/<uid>) or ScopeSystem
	// (LaunchDaemon, system).
	Scope string
	// UID is the user whose gui domain holds a LaunchAgent.
	UID int
	// Run runs launchctl; nil runs /bin/launchctl.
	Run RunFunc
	// HomeDir is the user's home (LaunchAgents, logs); "" means
	// os.UserHomeDir.
	HomeDir string
	// Logger receives debug and error lines; nil discards them.
	Logger *slog.Logger
}

type launchdManager struct {
	scope string
	uid   int
	run   RunFunc
	home  string
	log   *slog.Logger
}

// NewLaunchd returns the launchd Manager for scope and uid, running
// launchctl through run (nil: /bin/launchctl). It is meant for darwin and is
// testable anywhere with a fake run.
func NewLaunchd(scope string, uid int, run func(ctx context.Context, args ...string) (string, int, error)) Manager {
	return NewLaunchdWithOptions(LaunchdOptions{Scope: scope, UID: uid, Run: run})
}

// NewLaunchdWithOptions is NewLaunchd with every path configurable.
func NewLaunchdWithOptions(o LaunchdOptions) Manager {
	m := &launchdManager{scope: o.Scope, uid: o.UID, run: o.Run, home: o.HomeDir, log: discard(o.Logger)}
	if m.run == nil {
		m.run = ExecLaunchctl
	}
	if m.home == "" {
		m.home, _ = os.UserHomeDir()
	}
	return m
}

// ExecLaunchctl runs /bin/launchctl with args and returns its combined
// output and exit status.
func ExecLaunchctl(ctx context.Context, args ...string) (string, int, error) {
	out, err := exec.CommandContext(ctx, "/bin/launchctl", args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, fmt.Errorf("run launchctl: %w (is this macOS?)", err)
	}
	return string(out), 0, nil
}

func (m *launchdManager) Name() string { return "launchd" }

func (m *launchdManager) params(t Target) (launchd.Params, error) {
	if err := checkScope(t, m.scope); err != nil {
		return launchd.Params{}, err
	}
	if m.scope != ScopeUser && m.scope != ScopeSystem {
		return launchd.Params{}, fmt.Errorf("invalid service scope %q: use %q or %q", m.scope, ScopeUser, ScopeSystem)
	}
	return launchd.Params{
		Profile:     t.Profile,
		Scope:       m.scope,
		Port:        t.Port,
		ListenAddrs: t.ListenAddrs,
		ExecPath:    t.ExecPath,
		Version:     t.Version,
		HomeDir:     m.home,
	}, nil
}

func (m *launchdManager) domain() string { return launchd.Domain(m.scope, m.uid) }

func (m *launchdManager) target(t Target) string {
	return launchd.ServiceTarget(m.scope, m.uid, t.Profile)
}

// launchctl runs one verb and turns a non-zero exit into an error.
func (m *launchdManager) launchctl(ctx context.Context, args ...string) error {
	out, code, err := m.run(ctx, args...)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("launchctl %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(out))
	}
	m.log.Debug("launchctl", "args", args)
	return nil
}

func (m *launchdManager) print(ctx context.Context, t Target) (launchd.PrintInfo, error) {
	out, code, err := m.run(ctx, "print", m.target(t))
	if err != nil {
		return launchd.PrintInfo{}, err
	}
	if code != 0 {
		return launchd.PrintInfo{Raw: out}, nil // 113: not loaded
	}
	return launchd.ParsePrint(out), nil
}

// Install implements Manager.
func (m *launchdManager) Install(ctx context.Context, t Target, o InstallOptions) (*InstallResult, error) {
	p, err := m.params(t)
	if err != nil {
		return nil, err
	}
	data, err := launchd.Render(p)
	if err != nil {
		return nil, fmt.Errorf("render plist for profile %s: %w", units.ProfileName(t.Profile), err)
	}
	path := launchd.PlistPath(p)
	other := p
	other.Scope = ScopeSystem
	if m.scope == ScopeSystem {
		other.Scope = ScopeUser
	}
	if op := launchd.PlistPath(other); op != path {
		if _, err := os.Stat(op); err == nil {
			return nil, fmt.Errorf("profile %s is already installed in %s scope at %s: uninstall it there first (`gatewayctl uninstall --%s%s`) or pick another --profile",
				units.ProfileName(t.Profile), other.Scope, op, other.Scope, profileFlag(t.Profile))
		}
	}
	res := &InstallResult{Manager: m.Name(), Scope: m.scope, DryRun: o.DryRun}
	f := InstalledFile{Path: path, Action: ActionCreate, Data: data}
	if cur, err := os.ReadFile(path); err == nil {
		switch {
		case bytes.Equal(cur, data) && o.Force:
			f.Action = ActionRewrite
		case bytes.Equal(cur, data):
			f.Action = ActionUnchanged
		case !o.Force:
			return nil, fmt.Errorf("%s differs from what this version renders: run `gatewayctl doctor` to see how, then `gatewayctl install --force` to replace it", path)
		default:
			f.Action = ActionUpdate
		}
	}
	res.Files = []InstalledFile{f}
	res.AlreadyInstalled = f.Action == ActionUnchanged
	info, err := m.print(ctx, t)
	if err != nil {
		return nil, err
	}
	if !res.AlreadyInstalled {
		res.Actions = append(res.Actions, "write "+path)
		if info.Loaded {
			res.Actions = append(res.Actions, "bootout "+m.target(t))
		}
	}
	if !res.AlreadyInstalled || !info.Loaded {
		res.Actions = append(res.Actions, "enable "+m.target(t), "bootstrap "+m.domain()+" "+path)
	} else {
		res.Notes = append(res.Notes, "already installed: the plist is identical and loaded, nothing was restarted")
	}
	if o.DryRun {
		return res, nil
	}
	if !res.AlreadyInstalled {
		if err := os.MkdirAll(launchd.LogDir(p), 0o755); err != nil {
			return nil, fmt.Errorf("create log directory %s: %w", launchd.LogDir(p), err)
		}
		if err := config.WriteFileAtomic(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("write plist %s: %w (run with sudo for --system)", path, err)
		}
		if info.Loaded {
			if err := m.launchctl(ctx, "bootout", m.target(t)); err != nil {
				return nil, err
			}
		}
	}
	if !res.AlreadyInstalled || !info.Loaded {
		if err := m.launchctl(ctx, "enable", m.target(t)); err != nil {
			return nil, err
		}
		if err := m.launchctl(ctx, "bootstrap", m.domain(), path); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Uninstall implements Manager.
func (m *launchdManager) Uninstall(ctx context.Context, t Target) error {
	p, err := m.params(t)
	if err != nil {
		return err
	}
	info, err := m.print(ctx, t)
	if err != nil {
		return err
	}
	if info.Loaded {
		if err := m.launchctl(ctx, "bootout", m.target(t)); err != nil {
			return err
		}
	}
	if err := os.Remove(launchd.PlistPath(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove plist: %w (remove it by hand)", err)
	}
	return nil
}

// Start implements Manager.
func (m *launchdManager) Start(ctx context.Context, t Target) error {
	p, err := m.params(t)
	if err != nil {
		return err
	}
	info, err := m.print(ctx, t)
	if err != nil {
		return err
	}
	if !info.Loaded {
		if err := m.launchctl(ctx, "bootstrap", m.domain(), launchd.PlistPath(p)); err != nil {
			return err
		}
	}
	return m.launchctl(ctx, "kickstart", m.target(t))
}

// Stop implements Manager: the job is booted out (its plist stays), so
// launchd no longer holds the socket nor restarts it.
func (m *launchdManager) Stop(ctx context.Context, t Target) error {
	if err := checkScope(t, m.scope); err != nil {
		return err
	}
	info, err := m.print(ctx, t)
	if err != nil || !info.Loaded {
		return err
	}
	return m.launchctl(ctx, "bootout", m.target(t))
}

// Restart implements Manager: kickstart -k restarts the process while
// launchd keeps holding the sockets.
func (m *launchdManager) Restart(ctx context.Context, t Target) error {
	if err := checkScope(t, m.scope); err != nil {
		return err
	}
	return m.launchctl(ctx, "kickstart", "-k", m.target(t))
}

// plistInfo is what the installed plist says.
type plistInfo struct {
	data   []byte
	env    map[string]string
	listen []string
}

func readPlist(path string) (*plistInfo, error) {
	data, err := readIfExists(path)
	if err != nil || data == nil {
		return nil, err
	}
	pi := &plistInfo{data: data}
	var doc struct {
		EnvironmentVariables map[string]string           `plist:"EnvironmentVariables"`
		Sockets              map[string][]map[string]any `plist:"Sockets"`
	}
	if _, err := plist.Unmarshal(data, &doc); err != nil {
		return pi, fmt.Errorf("decode %s: %w", path, err)
	}
	pi.env = doc.EnvironmentVariables
	for _, s := range doc.Sockets[launchd.SocketKey] {
		host, _ := s["SockNodeName"].(string)
		port, _ := s["SockServiceName"].(string)
		if pathName, ok := s["SockPathName"].(string); ok {
			pi.listen = append(pi.listen, pathName)
			continue
		}
		pi.listen = append(pi.listen, net.JoinHostPort(host, port))
	}
	return pi, nil
}

// Status implements Manager.
func (m *launchdManager) Status(ctx context.Context, t Target) (*Runtime, error) {
	p, err := m.params(t)
	if err != nil {
		return nil, err
	}
	info, err := m.print(ctx, t)
	if err != nil {
		return nil, err
	}
	return m.runtime(p, info), nil
}

func (m *launchdManager) runtime(p launchd.Params, info launchd.PrintInfo) *Runtime {
	rt := &Runtime{Manager: m.Name(), Unit: launchd.Label(p.Profile), Socket: launchd.SocketKey, LoadState: "not-found", DropInPaths: []string{}, SocketListen: []string{}}
	if info.Loaded {
		rt.LoadState = "loaded"
		rt.ActiveState = info.State
		rt.MainPID = info.PID
		rt.FragmentPath = info.Path
		rt.SocketListening = slices.Contains(info.Sockets, launchd.SocketKey)
		rt.UnitFileState = "enabled"
		if info.LastExitCode != nil {
			rt.ExecMainStatus = *info.LastExitCode
		}
	}
	if pi, _ := readPlist(launchd.PlistPath(p)); pi != nil {
		rt.Environment = pi.env
		rt.SocketListen = append(rt.SocketListen, pi.listen...)
		if rt.FragmentPath == "" {
			rt.FragmentPath = launchd.PlistPath(p)
		}
	}
	return rt
}

// ldState is what the launchd checks look at.
type ldState struct {
	m         *launchdManager
	t         Target
	p         launchd.Params
	path      string
	expected  []byte
	renderErr error
	pi        *plistInfo
	piErr     error
	info      launchd.PrintInfo
	infoErr   error
}

func (m *launchdManager) gather(ctx context.Context, t Target) *ldState {
	s := &ldState{m: m, t: t}
	s.p, s.renderErr = m.params(t)
	if s.renderErr == nil {
		s.expected, s.renderErr = launchd.Render(s.p)
	}
	if s.renderErr != nil {
		return s
	}
	s.path = launchd.PlistPath(s.p)
	s.pi, s.piErr = readPlist(s.path)
	s.info, s.infoErr = m.print(ctx, t)
	return s
}

type ldCheck = check[*ldState]

var launchdChecks = []ldCheck{
	{"unit-missing", "the job's plist is installed", ldMissing},
	{"plist-drift", "the plist matches the template key by key", ldDrift},
	{"plist-not-loaded", "launchd has the job loaded (bootstrapped)", ldNotLoaded},
	{"plist-loaded-path", "launchd loaded the job from the installed plist", ldLoadedPath},
	{"service-failed", "the job's last exit was clean", ldFailed},
	{"secret-in-unit", "no token or password in the plist's EnvironmentVariables", ldSecret},
	{"marker-mismatch", "the marker environment names gatewayd, this version and this profile", ldMarker},
	{"config-invalid", "the profile's config file loads", func(_ context.Context, s *ldState) CheckResult { return checkConfig(s.t) }},
	{"port-taken", "no other process holds the gateway's port", ldPortTaken},
}

// Checks implements Manager.
func (m *launchdManager) Checks() []CheckInfo { return infos(launchdChecks) }

func (s *ldState) need() (CheckResult, bool) {
	if s.renderErr != nil {
		return CheckResult{Severity: SeverityFailed, Message: s.renderErr.Error()}, false
	}
	return CheckResult{}, true
}

func (s *ldState) needPrint() (CheckResult, bool) {
	if r, ok := s.need(); !ok {
		return r, false
	}
	if s.infoErr != nil {
		return CheckResult{Severity: SeverityFailed, Message: s.infoErr.Error()}, false
	}
	return CheckResult{}, true
}

const ldFixRewrite = "rewrite the plist from the template and reload the job (`gatewayctl doctor --fix`)"

func ldMissing(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	if s.pi == nil && s.piErr == nil {
		return CheckResult{Severity: SeverityError, Message: "not installed: " + s.path, Fix: "install the job (`gatewayctl install`, or `gatewayctl doctor --fix`)",
			Findings: []units.Finding{{Kind: units.KindMissing, Unit: launchd.Label(s.t.Profile), Path: s.path}}}
	}
	return CheckResult{Message: "installed at " + s.path}
}

func ldDrift(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	if s.pi == nil {
		return CheckResult{Severity: SeveritySkipped, Message: "no plist (see unit-missing)"}
	}
	r := CheckResult{Message: "the plist matches the template"}
	var words []string
	for _, f := range launchd.Compare(s.expected, s.pi.data) {
		switch f.Kind {
		case units.KindUnchanged:
			continue
		case units.KindEquivalent:
			r.Severity = SeverityInfo
			words = append(words, "equivalent (format or order differ)")
		case units.KindInvalid:
			r.Severity, r.Fix = SeverityError, ldFixRewrite
			words = append(words, "the plist does not decode")
		default:
			if r.Severity != SeverityError {
				r.Severity = SeverityWarning
			}
			r.Fix = ldFixRewrite
			words = append(words, f.Key+" "+f.Kind)
		}
		r.Findings = append(r.Findings, f)
	}
	if len(words) > 0 {
		r.Message = strings.Join(words, "; ")
	}
	return r
}

func ldNotLoaded(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.needPrint(); !ok {
		return r
	}
	if !s.info.Loaded {
		return CheckResult{Severity: SeverityError, Message: launchd.Label(s.t.Profile) + " is not loaded in " + s.m.domain(),
			Fix: "bootstrap it (`launchctl bootstrap " + s.m.domain() + " " + s.path + "`)"}
	}
	state := s.info.State
	if state == "" {
		state = "state unknown"
	}
	return CheckResult{Message: "loaded (" + state + ")"}
}

func ldLoadedPath(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.needPrint(); !ok {
		return r
	}
	switch {
	case !s.info.Loaded:
		return CheckResult{Severity: SeveritySkipped, Message: "not loaded (see plist-not-loaded)"}
	case s.info.Path == "":
		return CheckResult{Severity: SeverityInfo, Message: "launchctl print shows no path: unknown"}
	case filepath.Clean(s.info.Path) != filepath.Clean(s.path):
		return CheckResult{Severity: SeverityError, Message: fmt.Sprintf("launchd runs the job from %s, not from %s", s.info.Path, s.path),
			Fix: fmt.Sprintf("reload it: `launchctl bootout %s && launchctl bootstrap %s %s`", s.m.target(s.t), s.m.domain(), s.path)}
	}
	return CheckResult{Message: "loaded from " + s.path}
}

func ldFailed(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.needPrint(); !ok {
		return r
	}
	if !s.info.Loaded {
		return CheckResult{Severity: SeveritySkipped, Message: "not loaded (see plist-not-loaded)"}
	}
	if s.info.LastExitCode == nil || *s.info.LastExitCode == 0 || s.info.State == "running" {
		return CheckResult{Message: "no failed exit"}
	}
	code := *s.info.LastExitCode
	msg := fmt.Sprintf("the job last exited with status %d", code)
	if lines := logTail(s.t.LogFile, 8); len(lines) > 0 {
		msg += "; last lines of " + s.t.LogFile + ":\n" + strings.Join(lines, "\n")
	}
	r := CheckResult{Severity: SeverityError, Message: msg, Fix: "restart it (`launchctl kickstart -k " + s.m.target(s.t) + "`)"}
	if code == config.ExitConfig {
		r.Fix = manual("fix the config (see config-invalid), then `launchctl kickstart -k " + s.m.target(s.t) + "`")
	}
	return r
}

func ldSecret(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	if s.pi == nil {
		return CheckResult{Severity: SeveritySkipped, Message: "no plist (see unit-missing)"}
	}
	if vars := secretVars(s.pi.env); len(vars) > 0 {
		return CheckResult{Severity: SeverityError, Message: "secret in the plist's EnvironmentVariables: " + strings.Join(vars, ", "),
			Fix: "rewrite the plist from the template (the gateway reads its token file instead): `gatewayctl doctor --fix`"}
	}
	return CheckResult{Message: "no secrets in EnvironmentVariables"}
}

func ldMarker(_ context.Context, s *ldState) CheckResult {
	if r, ok := s.need(); !ok {
		return r
	}
	if s.pi == nil {
		return CheckResult{Severity: SeveritySkipped, Message: "no plist (see unit-missing)"}
	}
	if probs := markerProblems(s.pi.env, s.t); len(probs) > 0 {
		return CheckResult{Severity: SeverityWarning, Message: strings.Join(probs, "; "), Fix: ldFixRewrite}
	}
	return CheckResult{Message: fmt.Sprintf("gatewayd %s, profile %s", s.t.Version, units.ProfileName(s.t.Profile))}
}

func ldPortTaken(ctx context.Context, s *ldState) CheckResult {
	if r, ok := s.needPrint(); !ok {
		return r
	}
	if s.info.Loaded && slices.Contains(s.info.Sockets, launchd.SocketKey) {
		return CheckResult{Message: "launchd holds the job's sockets"}
	}
	var taken []string
	gateway := false
	for _, a := range s.t.listen() {
		if p := probe(ctx, a); p.open {
			taken = append(taken, a)
			gateway = gateway || p.gateway
		}
	}
	if len(taken) == 0 {
		return CheckResult{Message: "the port is free"}
	}
	who := "another process"
	if gateway {
		who = "another gateway (it answers the protocol's connect.challenge)"
	}
	return CheckResult{Severity: SeverityError, Message: fmt.Sprintf("%s is held by %s", strings.Join(taken, ", "), who),
		Fix: manual(fmt.Sprintf("stop it (find it with `lsof -nP -iTCP:%d -sTCP:LISTEN`) or move this profile to another port", firstPort(taken)))}
}

func firstPort(addrs []string) uint16 {
	if p := ports(addrs); len(p) > 0 {
		return p[0]
	}
	return 0
}

// Doctor implements Manager.
func (m *launchdManager) Doctor(ctx context.Context, t Target, o DoctorOptions) (*Report, error) {
	if err := checkScope(t, m.scope); err != nil {
		return nil, err
	}
	checks, err := selectChecks(launchdChecks, o.Only)
	if err != nil {
		return nil, err
	}
	st := m.gather(ctx, t)
	before := runChecks(ctx, m.log, checks, st)
	if !o.Fix || st.renderErr != nil {
		return finish(before), nil
	}
	var rewrite, reload, kick bool
	for _, r := range before {
		if !r.Problem() || r.Fix == "" || strings.HasPrefix(r.Fix, manualPrefix) {
			continue
		}
		switch r.Name {
		case "unit-missing", "plist-drift", "secret-in-unit", "marker-mismatch":
			rewrite, reload = true, true
		case "plist-not-loaded", "plist-loaded-path":
			reload = true
		case "service-failed":
			kick = true
		}
	}
	var steps []string
	if rewrite {
		steps = append(steps, "rewrite "+st.path)
	}
	if reload {
		steps = append(steps, "bootout and bootstrap "+m.target(t))
	}
	if kick && !reload {
		steps = append(steps, "kickstart -k "+m.target(t))
	}
	if len(steps) == 0 {
		return finish(before), nil
	}
	change, changed := planChange(st.path, st.expected, false)
	if o.DryRun {
		for i := range before {
			if before[i].Problem() && !strings.HasPrefix(before[i].Fix, manualPrefix) && before[i].Fix != "" {
				before[i].Fix = "would " + strings.Join(steps, ", then ")
			}
		}
		rep := finish(before)
		if rewrite && changed {
			rep.Changes = []FileChange{change}
		}
		return rep, nil
	}
	var changes []FileChange
	if rewrite {
		if err := os.MkdirAll(launchd.LogDir(st.p), 0o755); err != nil {
			return finish(before), fmt.Errorf("doctor --fix: create log directory: %w", err)
		}
		if changed {
			// Outside LaunchAgents/LaunchDaemons: launchd never loads a backup.
			dir := filepath.Join(filepath.Dir(filepath.Dir(st.path)), BackupDirName)
			change.Diff = ""
			var err error
			if change.Backup, err = backupFile(dir, st.path, time.Now()); err != nil {
				return finish(before), fmt.Errorf("doctor --fix: %w; nothing was changed in %s", err, st.path)
			}
			changes = append(changes, change)
		}
		if err := config.WriteFileAtomic(st.path, st.expected, 0o644); err != nil {
			rep := finish(before)
			rep.Changes = changes
			return rep, fmt.Errorf("doctor --fix: write plist %s: %w", st.path, err)
		}
	}
	if reload {
		if st.info.Loaded {
			if err := m.launchctl(ctx, "bootout", m.target(t)); err != nil {
				return finish(before), fmt.Errorf("doctor --fix: %w", err)
			}
		}
		if err := m.launchctl(ctx, "bootstrap", m.domain(), st.path); err != nil {
			return finish(before), fmt.Errorf("doctor --fix: %w", err)
		}
	} else if kick {
		if err := m.launchctl(ctx, "kickstart", "-k", m.target(t)); err != nil {
			return finish(before), fmt.Errorf("doctor --fix: %w", err)
		}
	}
	after := runChecks(ctx, m.log, checks, m.gather(ctx, t))
	rep := finish(mergeAfterFix(before, after))
	rep.Changes = changes
	return rep, nil
}
