package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/units"
)

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

// launchdChecks are the launchd doctor checks, in report order.
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

func (s *ldState) need() (CheckResult, bool) { return needs(s.renderErr) }

func (s *ldState) needPrint() (CheckResult, bool) { return needs(s.renderErr, s.infoErr) }

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
	taken, who := portHolders(ctx, s.t.listen(), nil)
	if len(taken) == 0 {
		return CheckResult{Message: "the port is free"}
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
	checks, err := doctorChecks(t, m.scope, launchdChecks, o)
	if err != nil {
		return nil, err
	}
	return runDoctor(ctx, m.log, checks, o,
		func() *ldState { return m.gather(ctx, t) },
		m.fixPlan,
		func(st *ldState, p ldFixPlan) ([]FileChange, error) { return m.applyFix(ctx, st, p) })
}

// ldFixPlan is what doctor --fix does on launchd; its files are the plist,
// when rewrite is set.
type ldFixPlan struct {
	fix
	rewrite, reload, kick bool
}

func (m *launchdManager) fixPlan(st *ldState, results []CheckResult) ldFixPlan {
	p := ldFixPlan{fix: fix{fixes: map[string]bool{}}}
	if st.renderErr != nil {
		return p
	}
	for _, r := range results {
		if !r.Problem() || r.Fix == "" || strings.HasPrefix(r.Fix, manualPrefix) {
			continue
		}
		switch r.Name {
		case "unit-missing", "plist-drift", "secret-in-unit", "marker-mismatch":
			p.rewrite, p.reload = true, true
		case "plist-not-loaded", "plist-loaded-path":
			p.reload = true
		case "service-failed":
			p.kick = true
		default:
			continue
		}
		p.fixes[r.Name] = true
	}
	if p.rewrite {
		p.files = []fileRepair{{path: st.path, data: st.expected}}
		p.steps = append(p.steps, "rewrite "+st.path)
	}
	if p.reload {
		p.steps = append(p.steps, "bootout and bootstrap "+m.target(st.t))
	}
	if p.kick && !p.reload {
		p.steps = append(p.steps, "kickstart -k "+m.target(st.t))
	}
	return p
}

// applyFix carries out the plan. The plist it replaces is first copied to
// the backup directory next to LaunchAgents (LaunchDaemons), outside the
// directories launchd loads; the returned changes say where, also when a
// later step fails.
func (m *launchdManager) applyFix(ctx context.Context, st *ldState, p ldFixPlan) ([]FileChange, error) {
	if p.rewrite {
		if err := os.MkdirAll(launchd.LogDir(st.p), 0o755); err != nil {
			return nil, fmt.Errorf("create log directory: %w", err)
		}
	}
	dir := filepath.Join(filepath.Dir(filepath.Dir(st.path)), BackupDirName)
	changes, err := replaceFiles(p.files, dir, func(f fileRepair, _ FileChange) error {
		if err := config.WriteFileAtomic(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("write plist %s: %w", f.path, err)
		}
		return nil
	})
	if err != nil {
		return changes, err
	}
	return changes, m.applyManagerSteps(ctx, st, p)
}

// applyManagerSteps runs the plan's reload (bootout, when loaded, and
// bootstrap) or, without one, its kickstart.
func (m *launchdManager) applyManagerSteps(ctx context.Context, st *ldState, p ldFixPlan) error {
	switch {
	case p.reload:
		if st.info.Loaded {
			if err := m.launchctl(ctx, "bootout", m.target(st.t)); err != nil {
				return err
			}
		}
		return m.launchctl(ctx, "bootstrap", m.domain(), st.path)
	case p.kick:
		return m.launchctl(ctx, "kickstart", "-k", m.target(st.t))
	}
	return nil
}
