package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/gatewayd/gatewayd/units"
)

// The two scopes a gateway can be installed in.
const (
	// ScopeUser installs for the invoking user (systemd --user, LaunchAgent).
	ScopeUser = "user"
	// ScopeSystem installs for the whole host (system units, LaunchDaemon).
	ScopeSystem = "system"
)

// Severities of a doctor check, mildest first.
const (
	// SeverityOK: the check passed.
	SeverityOK = "ok"
	// SeverityInfo: something worth knowing that needs no action.
	SeverityInfo = "info"
	// SeverityWarning: the gateway works but something should be fixed.
	SeverityWarning = "warning"
	// SeverityError: the gateway is broken or will break.
	SeverityError = "error"
	// SeverityFailed: the check itself failed (it could not look, or panicked).
	SeverityFailed = "failed"
	// SeveritySkipped: the check does not apply here.
	SeveritySkipped = "skipped"
)

// Target is the gateway a Manager acts on: one profile in one scope.
type Target struct {
	// Profile is the profile name; "" or "default" mean the default profile.
	Profile string `json:"profile"`
	// Scope is ScopeUser or ScopeSystem; "" means the Manager's scope.
	Scope string `json:"scope"`
	// Port is the profile's port, used when ListenAddrs is empty.
	Port int `json:"port"`
	// ListenAddrs are the socket's addresses ("127.0.0.1:18789"); empty
	// means the loopback pair of Port.
	ListenAddrs []string `json:"listenAddrs,omitempty"`
	// ExecPath is the absolute path of the gatewayd binary.
	ExecPath string `json:"execPath"`
	// Version is the version written to the unit's marker environment.
	Version string `json:"version"`
	// ConfigPath is the profile's config file (config-invalid check).
	ConfigPath string `json:"configPath,omitempty"`
	// LogFile is the gateway's JSON-lines log (service-failed check falls
	// back to its last error lines).
	LogFile string `json:"logFile,omitempty"`
	// WatchdogSec is the unit's WatchdogSec=: 0 means the default, a
	// negative value disables the watchdog.
	WatchdogSec int `json:"watchdogSec,omitempty"`
}

// listen returns the addresses the socket must listen on.
func (t Target) listen() []string {
	if len(t.ListenAddrs) > 0 {
		return t.ListenAddrs
	}
	return units.DefaultListenAddrs(t.Port)
}

// InstallOptions tune Install.
type InstallOptions struct {
	// Force rewrites the files even when they are identical, and replaces
	// files that differ.
	Force bool `json:"force"`
	// DryRun returns what would be written without touching anything.
	DryRun bool `json:"dryRun"`
}

// File actions reported in InstallResult.
const (
	// ActionCreate: the file did not exist.
	ActionCreate = "create"
	// ActionUpdate: the file existed with other contents.
	ActionUpdate = "update"
	// ActionRewrite: the file was identical and rewritten (--force).
	ActionRewrite = "rewrite"
	// ActionUnchanged: the file is already identical; nothing written.
	ActionUnchanged = "unchanged"
)

// InstalledFile is one file Install wrote (or would write).
type InstalledFile struct {
	// Path is where the file goes.
	Path string `json:"path"`
	// Action is ActionCreate, ActionUpdate, ActionRewrite or ActionUnchanged.
	Action string `json:"action"`
	// Data is the rendered contents.
	Data []byte `json:"-"`
}

// InstallResult says what Install did.
type InstallResult struct {
	// Manager is "systemd" or "launchd".
	Manager string `json:"manager"`
	// Scope is the scope installed into.
	Scope string `json:"scope"`
	// Files are the unit files or plist, with what was done to each.
	Files []InstalledFile `json:"files"`
	// AlreadyInstalled is true when every file was identical: nothing was
	// written and nothing restarted.
	AlreadyInstalled bool `json:"alreadyInstalled"`
	// DryRun is true when nothing was touched.
	DryRun bool `json:"dryRun"`
	// Actions are the manager operations performed (or planned, with
	// DryRun), in order, e.g. "daemon-reload", "enable gatewayd.socket".
	Actions []string `json:"actions"`
	// Linger reports, in systemd user scope, whether lingering is on for
	// the user (nil when unknown or not applicable).
	Linger *bool `json:"linger,omitempty"`
	// Notes are hints for the operator, e.g. the `loginctl enable-linger`
	// step.
	Notes []string `json:"notes,omitempty"`
}

// Runtime is the live state of a profile's service as the service manager
// reports it. `gatewayctl status --json` prints it; the json names are stable.
type Runtime struct {
	// Manager is "systemd" or "launchd".
	Manager string `json:"manager"`
	// Unit is the service unit name or launchd label.
	Unit string `json:"unit"`
	// Socket is the socket unit name (systemd) or the Sockets key (launchd).
	Socket string `json:"socket"`
	// LoadState is systemd's LoadState ("loaded", "not-found", "masked")
	// or, for launchd, "loaded"/"not-found".
	LoadState string `json:"loadState"`
	// ActiveState is the service's ActiveState ("active", "inactive",
	// "failed", ...) or launchd's state ("running", "not running", ...).
	ActiveState string `json:"activeState"`
	// SubState is the service's SubState ("running", "dead", ...).
	SubState string `json:"subState"`
	// UnitFileState is the socket's enablement ("enabled", "disabled",
	// "masked", ...), which decides whether the gateway comes up at boot.
	UnitFileState string `json:"unitFileState"`
	// FragmentPath is the service unit file (or plist) the manager loaded.
	FragmentPath string `json:"fragmentPath"`
	// DropInPaths are the drop-ins applied to the service and the socket.
	DropInPaths []string `json:"dropInPaths"`
	// NeedDaemonReload is true when a unit file changed on disk since the
	// manager loaded it.
	NeedDaemonReload bool `json:"needDaemonReload"`
	// MainPID is the gateway's process id, 0 when not running.
	MainPID int `json:"mainPid"`
	// NRestarts counts automatic restarts by the manager.
	NRestarts int `json:"nRestarts"`
	// StatusText is the gateway's last STATUS= (sd_notify).
	StatusText string `json:"statusText"`
	// WatchdogUSec is the service's watchdog interval, 0 when off.
	WatchdogUSec uint64 `json:"watchdogUSec"`
	// SocketListening is true when the socket unit is listening.
	SocketListening bool `json:"socketListening"`
	// SocketListen are the socket's addresses ("127.0.0.1:18789").
	SocketListen []string `json:"socketListen"`
	// ExecMainStatus is the exit status of the last main process.
	ExecMainStatus int `json:"execMainStatus"`
	// Environment is the service's Environment= (marker variables).
	Environment map[string]string `json:"environment"`
	// ExecStart is the command line the service runs (the first
	// ExecStart=; launchd: ProgramArguments), nil when unknown.
	ExecStart []string `json:"execStart,omitempty"`
	// SocketActiveState is the socket unit's ActiveState.
	SocketActiveState string `json:"socketActiveState"`
	// SocketLoadState is the socket unit's LoadState.
	SocketLoadState string `json:"socketLoadState"`
	// SocketFragmentPath is the socket unit file the manager loaded.
	SocketFragmentPath string `json:"socketFragmentPath"`
}

// DoctorOptions tune Doctor.
type DoctorOptions struct {
	// Fix applies the safe repairs and re-checks.
	Fix bool `json:"fix"`
	// DryRun, with Fix, says what would be repaired without touching
	// anything.
	DryRun bool `json:"dryRun"`
	// Only limits the run to these check names.
	Only []string `json:"only,omitempty"`
}

// CheckInfo names and describes one doctor check, for `doctor --list`.
type CheckInfo struct {
	// Name is the stable kebab-case name.
	Name string `json:"name"`
	// Description says what the check looks at.
	Description string `json:"description"`
}

// CheckResult is the outcome of one doctor check.
type CheckResult struct {
	// Name is the check's name.
	Name string `json:"name"`
	// Severity is one of the Severity* constants.
	Severity string `json:"severity"`
	// Message says what was found.
	Message string `json:"message"`
	// Fix is the remedy: what --fix does, or "manual fix required:
	// <command>"; empty when there is nothing to fix.
	Fix string `json:"fix,omitempty"`
	// Fixed is true when --fix repaired it.
	Fixed bool `json:"fixed"`
	// Findings are the unit-level differences behind the result.
	Findings []units.Finding `json:"findings,omitempty"`
}

// Problem reports whether the result needs attention (warning or worse).
func (r CheckResult) Problem() bool {
	switch r.Severity {
	case SeverityWarning, SeverityError, SeverityFailed:
		return true
	}
	return false
}

// Report is the outcome of a doctor run.
type Report struct {
	// Checks are the results, in the order of Checks().
	Checks []CheckResult `json:"checks"`
	// Fixed counts the results --fix repaired.
	Fixed int `json:"fixed"`
	// Remaining counts the results still at warning or worse.
	Remaining int `json:"remaining"`
	// Changes are the files --fix replaced, created or removed, each with
	// its backup; with --dry-run, the ones it would, each with its diff.
	Changes []FileChange `json:"changes,omitempty"`
}

// Result returns the named check's result and whether it ran.
func (r *Report) Result(name string) (CheckResult, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return CheckResult{}, false
}

// Manager drives one service manager for gatewayctl. Implementations are
// the systemd Manager (NewSystemd) and the launchd Manager (NewLaunchd).
type Manager interface {
	// Name returns "systemd" or "launchd".
	Name() string
	// Install renders the profile's units (or plist), writes them
	// atomically, makes the manager load them and enables and starts the
	// socket. It is idempotent: identical files are "already installed"
	// and nothing is restarted.
	Install(ctx context.Context, t Target, o InstallOptions) (*InstallResult, error)
	// Uninstall stops, disables and removes the profile's units, leaving
	// no unit, link or process behind.
	Uninstall(ctx context.Context, t Target) error
	// Start starts the socket and the service.
	Start(ctx context.Context, t Target) error
	// Stop stops the service and its socket.
	Stop(ctx context.Context, t Target) error
	// Restart restarts the service and keeps the socket, so connects are
	// queued rather than refused.
	Restart(ctx context.Context, t Target) error
	// Status returns the live state.
	Status(ctx context.Context, t Target) (*Runtime, error)
	// Doctor runs the checks and, with o.Fix, the safe repairs.
	Doctor(ctx context.Context, t Target, o DoctorOptions) (*Report, error)
	// Checks lists the checks Doctor runs.
	Checks() []CheckInfo
	// Scan finds gateway-like services in both scopes (marker environment
	// or our naming), for `gatewayctl status --deep`; t's own unit is
	// marked Self and others on one of t's ports SamePort.
	Scan(ctx context.Context, t Target) ([]Found, error)
}

// check is one doctor check of a Manager.
type check[S any] struct {
	name, desc string
	run        func(ctx context.Context, s S) CheckResult
}

func infos[S any](checks []check[S]) []CheckInfo {
	out := make([]CheckInfo, len(checks))
	for i, c := range checks {
		out[i] = CheckInfo{Name: c.name, Description: c.desc}
	}
	return out
}

// selectChecks returns the checks named in only (all when empty), or an
// error naming the unknown ones and the list of known names.
func selectChecks[S any](checks []check[S], only []string) ([]check[S], error) {
	if len(only) == 0 {
		return checks, nil
	}
	var out []check[S]
	var unknown []string
	for _, name := range only {
		i := slices.IndexFunc(checks, func(c check[S]) bool { return c.name == name })
		if i < 0 {
			unknown = append(unknown, name)
			continue
		}
		if !slices.ContainsFunc(out, func(c check[S]) bool { return c.name == name }) {
			out = append(out, checks[i])
		}
	}
	if len(unknown) > 0 {
		names := make([]string, len(checks))
		for i, c := range checks {
			names[i] = c.name
		}
		return nil, fmt.Errorf("unknown doctor check %s: use one of %s (see `gatewayctl doctor --list`)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	// Keep the canonical order.
	sort.SliceStable(out, func(i, j int) bool {
		return slices.IndexFunc(checks, func(c check[S]) bool { return c.name == out[i].name }) <
			slices.IndexFunc(checks, func(c check[S]) bool { return c.name == out[j].name })
	})
	return out, nil
}

// runChecks runs every check, turning a panic inside one into that check's
// "failed" result so the others still run.
func runChecks[S any](ctx context.Context, log *slog.Logger, checks []check[S], s S) []CheckResult {
	out := make([]CheckResult, 0, len(checks))
	for _, c := range checks {
		out = append(out, runCheck(ctx, log, c, s))
	}
	return out
}

func runCheck[S any](ctx context.Context, log *slog.Logger, c check[S], s S) (r CheckResult) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("doctor check panicked", "check", c.name, "panic", p, "stack", string(debug.Stack()))
			r = CheckResult{
				Name:     c.name,
				Severity: SeverityFailed,
				Message:  fmt.Sprintf("the check crashed: %v", p),
				Fix:      "report this as a gatewayd bug, with the output of `gatewayctl doctor --json`",
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return CheckResult{Name: c.name, Severity: SeverityFailed, Message: fmt.Sprintf("not run: %v", err)}
	}
	r = c.run(ctx, s)
	r.Name = c.name
	if r.Severity == "" {
		r.Severity = SeverityOK
	}
	return r
}

// finish fills in a report's counters.
func finish(results []CheckResult) *Report {
	rep := &Report{Checks: results}
	for _, r := range results {
		if r.Fixed {
			rep.Fixed++
		}
		if r.Problem() {
			rep.Remaining++
		}
	}
	return rep
}

// mergeAfterFix combines the results before and after a repair: a problem
// that is gone is marked fixed; one that remains keeps its new result, with a
// manual fix hint when the repair could not handle it.
func mergeAfterFix(before, after []CheckResult) []CheckResult {
	out := make([]CheckResult, len(after))
	for i, a := range after {
		out[i] = a
		j := slices.IndexFunc(before, func(b CheckResult) bool { return b.Name == a.Name })
		if j < 0 || !before[j].Problem() {
			continue
		}
		b := before[j]
		if !a.Problem() {
			out[i].Fixed = true
			out[i].Message = "fixed: " + b.Message
			out[i].Findings = b.Findings
			continue
		}
		if a.Fix != "" && !strings.HasPrefix(a.Fix, manualPrefix) {
			out[i].Fix = manualPrefix + a.Fix
		}
	}
	return out
}

// needs is the start of a check that cannot look without what gather
// found: the first of errs (the render error first, then the manager's
// answer) as the check's failed result, ok when there is none.
func needs(errs ...error) (CheckResult, bool) {
	for _, err := range errs {
		if err != nil {
			return CheckResult{Severity: SeverityFailed, Message: err.Error()}, false
		}
	}
	return CheckResult{}, true
}

// doctorChecks returns the checks a doctor run asks for, or why the run
// cannot start: a target in another scope, or an unknown check name.
func doctorChecks[S any](t Target, scope string, checks []check[S], o DoctorOptions) ([]check[S], error) {
	if err := checkScope(t, scope); err != nil {
		return nil, err
	}
	return selectChecks(checks, o.Only)
}

// fix is what doctor --fix does, as each manager's plan says it: the steps
// in words (--dry-run shows them), the checks they repair and the files
// they write or remove. Each manager's plan embeds it.
type fix struct {
	steps []string
	fixes map[string]bool
	files []fileRepair
}

func (f fix) common() fix { return f }

// fileRepair is one file --fix writes or removes.
type fileRepair struct {
	path   string
	remove bool   // remove a stray file instead of writing
	data   []byte // the template, when writing
}

// runDoctor is the doctor run both managers share: gather the state and
// run the checks; with --fix, plan the repair from the results, show it
// (--dry-run) or carry it out, then gather and check again and mark what
// the repair fixed. apply returns the files it changed, also when a later
// step fails.
func runDoctor[S any, P interface{ common() fix }](ctx context.Context, log *slog.Logger, checks []check[S], o DoctorOptions,
	gather func() S, plan func(S, []CheckResult) P, apply func(S, P) ([]FileChange, error)) (*Report, error) {
	st := gather()
	before := runChecks(ctx, log, checks, st)
	if !o.Fix {
		return finish(before), nil
	}
	p := plan(st, before)
	f := p.common()
	if len(f.steps) == 0 {
		return finish(before), nil
	}
	if o.DryRun {
		for i := range before {
			if before[i].Problem() && f.fixes[before[i].Name] {
				before[i].Fix = "would " + strings.Join(f.steps, ", then ")
			}
		}
		rep := finish(before)
		for _, r := range f.files {
			if c, ok := planChange(r.path, r.data, r.remove); ok {
				rep.Changes = append(rep.Changes, c)
			}
		}
		return rep, nil
	}
	changes, err := apply(st, p)
	if err != nil {
		log.Error("doctor --fix failed", "err", err)
		rep := finish(before)
		rep.Changes = changes
		return rep, fmt.Errorf("doctor --fix: %w", err)
	}
	after := runChecks(ctx, log, checks, gather())
	rep := finish(mergeAfterFix(before, after))
	rep.Changes = changes
	return rep, nil
}

// manualPrefix starts the Fix of a problem --fix does not repair.
const manualPrefix = "manual fix required: "

func manual(cmd string) string { return manualPrefix + cmd }

// discard returns log, or a logger that drops everything when log is nil.
func discard(log *slog.Logger) *slog.Logger {
	if log != nil {
		return log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// checkScope returns the scope a Target asks for, or an error when it
// contradicts the Manager's.
func checkScope(t Target, scope string) error {
	if t.Scope != "" && t.Scope != scope {
		return fmt.Errorf("target scope %q does not match the %s service manager in use: pass --%s, or open a manager for %s scope", t.Scope, scope, t.Scope, t.Scope)
	}
	return nil
}
