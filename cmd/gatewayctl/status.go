package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/platform/service"
)

// RuntimeInfo is what the host's service manager says about the gateway's
// service (systemd over D-Bus, launchd via launchctl), in status's stable
// JSON shape: the service.Runtime fields plus scope, installed, state and
// error.
type RuntimeInfo struct {
	// Scope is "user" or "system".
	Scope string `json:"scope"`
	// Installed is true when the manager knows the unit (or plist).
	Installed bool `json:"installed"`
	// State is the one-word summary: not-installed, running, waiting
	// (socket listening, no process yet), starting, stopping, failed,
	// stopped, or unknown (the manager could not be asked).
	State string `json:"state"`
	*service.Runtime
	// Err says why the manager could not be asked.
	Err string `json:"error,omitempty"`
}

// deepReport is what `status --deep` adds: the other scope's runtime and
// every gateway-like service on the host.
type deepReport struct {
	OtherScope *RuntimeInfo    `json:"otherScope"`
	Services   []service.Found `json:"services"`
	Warnings   []string        `json:"warnings"`
	ScanError  string          `json:"scanError,omitempty"`
}

// statusReport is everything `gatewayctl status` found, in its stable JSON
// shape (--json).
type statusReport struct {
	Profile      string       `json:"profile"`
	Scope        string       `json:"scope"`
	URL          string       `json:"url"`
	URLSource    string       `json:"urlSource"`
	ConfigPath   string       `json:"configPath"`
	ConfigExists bool         `json:"configExists"`
	ConfigError  string       `json:"configError,omitempty"`
	StateDir     string       `json:"stateDir"`
	LogFile      string       `json:"logFile"`
	TokenFile    string       `json:"tokenFile"`
	SecretSource string       `json:"secretSource"`
	SecretNote   string       `json:"secretNote,omitempty"`
	RPC          rpcProbe     `json:"rpc"`
	Runtime      *RuntimeInfo `json:"runtime"`
	LastLogError string       `json:"lastLogError,omitempty"`
	// Conflicts are processes competing with the installed service for
	// its port or its profile (then runtime.state is "conflict").
	Conflicts []service.Conflict `json:"conflicts,omitempty"`
	Deep      *deepReport        `json:"deep,omitempty"`
}

// rpcProbe is the result of connecting and calling status.
type rpcProbe struct {
	OK            bool            `json:"ok"`
	Skipped       bool            `json:"skipped,omitempty"`
	Error         string          `json:"error,omitempty"`
	ConnectMs     float64         `json:"connectMs,omitempty"`
	ServerVersion string          `json:"serverVersion,omitempty"`
	ConnID        string          `json:"connId,omitempty"`
	Protocol      int             `json:"protocol,omitempty"`
	UptimeMs      int64           `json:"uptimeMs,omitempty"`
	Status        json.RawMessage `json:"status,omitempty"`

	err error
}

func (a *app) statusCommand() *ffcli.Command {
	fs := a.flagSet("status")
	var sf svcFlags
	sf.register(fs, false)
	deep := fs.Bool("deep", false, "also ask the other scope and list every gateway-like service on this host")
	noProbe := fs.Bool("no-probe", false, "skip the RPC probe: only the service manager's view")
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: "gatewayctl status [--scope user|system] [--deep] [--no-probe] [--json]",
		ShortHelp:  "Show the gateway's service runtime, its paths and secret, and whether it answers.",
		LongHelp: `Prints the profile and scope, the target URL and where it came from, the
config file, state directory, log file and token file in use, where the
secret came from; then, separately, what the service manager says (load,
active and sub state, main pid, restarts, the gateway's STATUS= text,
enabled state, whether the socket listens) and the result of an RPC probe
(connect + the status method). When the service looks up but the port does
not answer, the last error line of the gateway's log is shown.

--deep also asks the other scope's manager and lists every gateway-like
service on the host (marker environment GATEWAY_SERVICE_MARKER), warning
about other profiles or copies on the same port.

A process that competes with the installed service is reported as a
CONFLICT (runtime state "conflict") with its pid and how to resolve it: a
gatewayd the service manager did not start (run by hand) or another
program listening on the profile's port, or a second gatewayd of the same
profile and state directory.

Exit status 0 when the probe succeeded, 3 unreachable, 4 authentication
failed, 1 other problems (a conflict among them). With --no-probe: 0, or 1
when the service manager could not be asked or there is a conflict.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("status takes no arguments, got %q", args))
			}
			return a.status(ctx, &sf, *deep, *noProbe)
		},
	}
}

// resolveIn is resolve with the paths of an explicit scope.
func (a *app) resolveIn(st *svcTarget) (*target, error) {
	t := &target{Profile: st.profile, Paths: st.paths, Config: st.loaded, ConfigErr: st.cfgErr}
	if err := a.resolveURL(t); err != nil {
		return nil, err
	}
	a.resolveSecret(t)
	if t.secretErr != nil {
		return nil, t.secretErr
	}
	return t, nil
}

func (a *app) status(ctx context.Context, sf *svcFlags, deep, noProbe bool) error {
	st, err := a.serviceTarget(sf, 0)
	if err != nil {
		return err
	}
	t, err := a.resolveIn(st)
	if err != nil {
		return err
	}
	r := &statusReport{
		Profile:      t.Profile.Name(),
		Scope:        string(t.Paths.Scope),
		URL:          t.URL,
		URLSource:    t.URLSource,
		ConfigPath:   t.Paths.ConfigPath,
		StateDir:     t.Paths.StateDir,
		LogFile:      t.Paths.LogFile,
		TokenFile:    t.TokenFile,
		SecretSource: t.SecretSource,
		SecretNote:   t.SecretNote,
	}
	if t.Config != nil {
		r.ConfigExists = t.Config.Exists
	}
	if t.ConfigErr != nil {
		r.ConfigExists = true
		r.ConfigError = t.ConfigErr.Error()
	}
	r.Runtime = a.probeRuntime(ctx, st, st.scope)
	if noProbe {
		r.RPC.Skipped = true
	} else {
		r.RPC = a.probeRPC(ctx, t)
		// The probe may have started the gateway, which wrote its token.
		r.TokenFile, r.SecretSource, r.SecretNote = t.TokenFile, t.SecretSource, t.SecretNote
		if !r.RPC.OK && r.Runtime.looksUp() && exitCode(r.RPC.err) == ExitUnreachable {
			r.LastLogError = service.LastLogError(t.Paths.LogFile)
		}
	}
	if r.Runtime.State == "failed" {
		r.LastLogError = service.LastLogError(t.Paths.LogFile)
	}
	if r.Runtime.Installed {
		r.Conflicts = findConflicts(st, r.Runtime)
		if len(r.Conflicts) > 0 {
			r.Runtime.State = "conflict"
		}
	}
	if deep {
		r.Deep = a.probeDeep(ctx, st)
	}
	if a.g.json {
		if err := writeValue(a.stdout, r); err != nil {
			return err
		}
	} else {
		printStatus(a.stdout, r)
	}
	switch {
	case !noProbe && r.RPC.err != nil:
		return silent(r.RPC.err)
	case len(r.Conflicts) > 0:
		return silent(withCode(ExitProblem, fmt.Errorf("%d processes compete with the installed service", len(r.Conflicts))))
	case noProbe && r.Runtime.Err != "":
		return silent(withCode(ExitProblem, errors.New(r.Runtime.Err)))
	}
	return nil
}

// probeRuntime asks scope's service manager about the profile's service. It
// never fails: a manager that cannot be asked goes into Err.
func (a *app) probeRuntime(ctx context.Context, st *svcTarget, scope string) *RuntimeInfo {
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	ri := &RuntimeInfo{Scope: scope, State: "unknown"}
	m, err := a.openManager(ctx, scope)
	if err != nil {
		ri.Err = err.Error()
		return ri
	}
	tg := st.tg
	tg.Scope = scope
	rt, err := m.Status(ctx, tg)
	if err != nil {
		ri.Err = err.Error()
		return ri
	}
	ri.Runtime = rt
	ri.Installed = rt.LoadState == "loaded" || rt.SocketLoadState == "loaded"
	ri.State = runtimeState(ri)
	return ri
}

// findConflicts looks for processes that compete with the installed
// service (service.FindConflicts); a scan that fails is not a conflict.
func findConflicts(st *svcTarget, ri *RuntimeInfo) []service.Conflict {
	q := service.ConflictQuery{Profile: st.profile.Name(), StateDir: st.paths.StateDir, MainPID: ri.MainPID,
		Stop: "gatewayctl restart --scope " + st.scope + profileArg(st)}
	for _, a := range st.tg.ListenAddrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && !slices.Contains(q.Ports, int(ap.Port())) {
			q.Ports = append(q.Ports, int(ap.Port()))
		}
	}
	if len(q.Ports) == 0 {
		q.Ports = []int{st.port}
	}
	found, _ := service.FindConflicts(q)
	return found
}

// profileArg is " --profile NAME" for a named profile, "" for the default.
func profileArg(st *svcTarget) string {
	switch n := st.profile.Name(); n {
	case "default":
		return ""
	case "dev":
		return " --dev"
	default:
		return " --profile " + n
	}
}

// runtimeState sums a runtime up in one word.
func runtimeState(ri *RuntimeInfo) string {
	rt := ri.Runtime
	switch {
	case !ri.Installed:
		return "not-installed"
	case rt.ActiveState == "failed" || rt.SocketActiveState == "failed":
		return "failed"
	case rt.ActiveState == "active" && (rt.MainPID > 0 || rt.Manager == "launchd"):
		return "running"
	case rt.ActiveState == "running":
		return "running" // launchd
	case rt.ActiveState == "activating" || rt.ActiveState == "reloading":
		return "starting"
	case rt.ActiveState == "deactivating":
		return "stopping"
	case rt.SocketListening:
		return "waiting"
	}
	return "stopped"
}

// looksUp reports whether the manager says the gateway should answer.
func (ri *RuntimeInfo) looksUp() bool {
	switch ri.State {
	case "running", "waiting", "starting":
		return true
	}
	return false
}

// probeDeep asks the other scope and scans for gateway-like services.
func (a *app) probeDeep(ctx context.Context, st *svcTarget) *deepReport {
	d := &deepReport{Services: []service.Found{}, Warnings: []string{}}
	other := service.ScopeSystem
	if st.scope == service.ScopeSystem {
		other = service.ScopeUser
	}
	d.OtherScope = a.probeRuntime(ctx, st, other)
	if d.OtherScope.Installed {
		d.Warnings = append(d.Warnings, fmt.Sprintf("profile %s is also installed in %s scope (%s): two copies compete for one port; uninstall one (gatewayctl uninstall --scope %s)",
			st.profile.Name(), other, d.OtherScope.Unit, other))
	}
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	m, err := a.openManager(cctx, st.scope)
	if err != nil {
		d.ScanError = err.Error()
		return d
	}
	found, err := m.Scan(cctx, st.tg)
	if err != nil {
		d.ScanError = err.Error()
		return d
	}
	d.Services = found
	for _, f := range found {
		if !f.SamePort {
			continue
		}
		who := "another gateway-like service"
		if f.Marker && f.Profile != "" {
			who = "gatewayd profile " + f.Profile
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s (%s, %s scope, %s) listens on the same port as this profile (%s)",
			who, f.Unit, f.Scope, f.Path, strings.Join(f.Listen, ", ")))
	}
	return d
}

func (a *app) probeRPC(ctx context.Context, t *target) rpcProbe {
	var p rpcProbe
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	c, err := a.dial(cctx, t, readScopes)
	if err != nil {
		p.Error, p.err = err.Error(), err
		return p
	}
	defer c.Close()
	p.ConnectMs = float64(time.Since(t0).Microseconds()) / 1000
	h := c.Hello()
	p.ServerVersion, p.ConnID, p.Protocol, p.UptimeMs = h.Server.Version, h.Server.ConnID, h.Protocol, h.Snapshot.UptimeMs
	raw, err := c.Call(cctx, "status", nil)
	if err != nil {
		p.Error, p.err = err.Error(), err
		return p
	}
	p.OK, p.Status = true, raw
	return p
}

func printStatus(w io.Writer, r *statusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\t%s (%s scope)\n", r.Profile, r.Scope)
	fmt.Fprintf(tw, "target\t%s (from %s)\n", r.URL, r.URLSource)
	cfg := r.ConfigPath
	switch {
	case r.ConfigError != "":
		cfg += " (INVALID: " + r.ConfigError + ")"
	case !r.ConfigExists:
		cfg += " (not present: defaults)"
	}
	fmt.Fprintf(tw, "config\t%s\n", cfg)
	fmt.Fprintf(tw, "state dir\t%s\n", r.StateDir)
	fmt.Fprintf(tw, "log file\t%s\n", r.LogFile)
	secret := r.SecretSource
	if r.SecretNote != "" {
		secret += " (" + r.SecretNote + ")"
	}
	fmt.Fprintf(tw, "secret\t%s\n", secret)
	if r.Runtime != nil {
		printRuntime(tw, "", r.Runtime)
	}
	switch {
	case r.RPC.Skipped:
		fmt.Fprintf(tw, "rpc probe\tskipped (--no-probe)\n")
	case r.RPC.OK:
		fmt.Fprintf(tw, "rpc probe\tok (connect %.1f ms)\n", r.RPC.ConnectMs)
		fmt.Fprintf(tw, "gateway\tversion %s, protocol %d, uptime %s, connection %s\n",
			r.RPC.ServerVersion, r.RPC.Protocol, (time.Duration(r.RPC.UptimeMs) * time.Millisecond).Round(time.Second), r.RPC.ConnID)
		for _, line := range summarize(r.RPC.Status) {
			fmt.Fprintf(tw, "\t%s\n", line)
		}
	default:
		fmt.Fprintf(tw, "rpc probe\tFAILED: %s\n", r.RPC.Error)
	}
	if r.LastLogError != "" {
		fmt.Fprintf(tw, "last log error\t%s\n", r.LastLogError)
	}
	for _, c := range r.Conflicts {
		fmt.Fprintf(tw, "CONFLICT\t%s pid %d on %s: %s\n", c.Kind, c.PID, c.Reason, c.Command)
		fmt.Fprintf(tw, "\tfix: %s\n", c.Fix)
	}
	if d := r.Deep; d != nil {
		printRuntime(tw, "other scope ", d.OtherScope)
		for _, f := range d.Services {
			mark := ""
			if f.Self {
				mark = " (this one)"
			}
			prof := f.Profile
			if prof == "" {
				prof = "?"
			}
			fmt.Fprintf(tw, "found\t%s scope %s, profile %s, listen %s%s\n", f.Scope, f.Unit, prof, strings.Join(f.Listen, " "), mark)
		}
		if d.ScanError != "" {
			fmt.Fprintf(tw, "scan\tFAILED: %s\n", d.ScanError)
		}
		for _, wmsg := range d.Warnings {
			fmt.Fprintf(tw, "WARNING\t%s\n", wmsg)
		}
	}
	tw.Flush()
}

// printRuntime prints the service manager's view, apart from the RPC probe.
func printRuntime(tw io.Writer, prefix string, ri *RuntimeInfo) {
	if ri.Err != "" {
		fmt.Fprintf(tw, "%sruntime\tunknown (%s scope): %s\n", prefix, ri.Scope, ri.Err)
		return
	}
	rt := ri.Runtime
	switch ri.State {
	case "not-installed":
		fmt.Fprintf(tw, "%sruntime\tnot installed (%s %s scope; gatewayctl install)\n", prefix, rt.Manager, ri.Scope)
		return
	case "running":
		fmt.Fprintf(tw, "%sruntime\trunning (socket-activated, pid %d)\n", prefix, rt.MainPID)
	case "waiting":
		fmt.Fprintf(tw, "%sruntime\twaiting (socket listening; the first connection starts gatewayd)\n", prefix)
	case "failed":
		fmt.Fprintf(tw, "%sruntime\tfailed (last exit status %d; gatewayctl doctor)\n", prefix, rt.ExecMainStatus)
	case "conflict":
		fmt.Fprintf(tw, "%sruntime\tCONFLICT: other processes compete with the service for its port or profile (see CONFLICT below)\n", prefix)
	default:
		fmt.Fprintf(tw, "%sruntime\t%s\n", prefix, ri.State)
	}
	if prefix != "" {
		fmt.Fprintf(tw, "\t%s %s, %s\n", rt.Manager, rt.Unit, ri.Scope)
		return
	}
	svc := fmt.Sprintf("%s %s (%s scope): %s, %s/%s", rt.Manager, rt.Unit, ri.Scope, rt.LoadState, rt.ActiveState, rt.SubState)
	if rt.MainPID > 0 {
		svc += fmt.Sprintf(", pid %d", rt.MainPID)
	}
	svc += fmt.Sprintf(", %d restarts", rt.NRestarts)
	if rt.WatchdogUSec > 0 {
		svc += ", watchdog " + (time.Duration(rt.WatchdogUSec) * time.Microsecond).String()
	}
	fmt.Fprintf(tw, "service\t%s\n", svc)
	if rt.StatusText != "" {
		fmt.Fprintf(tw, "status text\t%s\n", rt.StatusText)
	}
	sock := "not listening"
	if rt.SocketListening {
		sock = "listening on " + strings.Join(rt.SocketListen, ", ")
	}
	en := rt.UnitFileState
	if en == "" {
		en = "unknown"
	}
	fmt.Fprintf(tw, "socket\t%s: %s; %s\n", rt.Socket, sock, en)
	if rt.FragmentPath != "" {
		uf := rt.FragmentPath
		if len(rt.DropInPaths) > 0 {
			uf += " + drop-ins " + strings.Join(rt.DropInPaths, ", ")
		}
		if rt.NeedDaemonReload {
			uf += " (changed on disk: gatewayctl doctor --fix)"
		}
		fmt.Fprintf(tw, "unit file\t%s\n", uf)
	}
}

// shownElsewhere are status payload keys the report already prints.
var shownElsewhere = map[string]bool{"version": true, "uptimeMs": true, "startedAt": true, "profile": true,
	"configPath": true, "stateDir": true, "logFile": true, "bootId": true}

// summarize renders the server's status payload as "key: value" lines, in
// the order the server sent them, without what the report shows already.
func summarize(raw json.RawMessage) []string {
	var lines []string
	for _, kv := range flattenJSON(raw) {
		if !shownElsewhere[kv.key] {
			lines = append(lines, kv.key+": "+kv.val)
		}
	}
	return lines
}
