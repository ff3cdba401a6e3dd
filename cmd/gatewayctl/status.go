package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// RuntimeInfo is what the host's service manager says about the gateway's
// service (systemd over D-Bus, launchd via launchctl).
type RuntimeInfo struct {
	Manager     string    `json:"manager"`               // "systemd" or "launchd"
	Unit        string    `json:"unit"`                  // unit name or launchd label
	Scope       string    `json:"scope"`                 // "user" or "system"
	Installed   bool      `json:"installed"`             // the unit/plist exists
	Enabled     string    `json:"enabled,omitempty"`     // e.g. enabled, disabled, static, masked
	ActiveState string    `json:"activeState,omitempty"` // e.g. active, inactive, failed
	SubState    string    `json:"subState,omitempty"`    // e.g. running, listening, dead
	PID         int       `json:"pid,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	Detail      string    `json:"detail,omitempty"` // anything else worth a line (last exit status…)
	Err         string    `json:"error,omitempty"`  // the manager could not be asked
}

// runtimeProbe asks the service manager about the profile's service. It is
// nil until the service-manager support lands (next issue: platform/ wires
// in systemd over D-Bus and launchctl); status then shows a "service"
// section. It must return within ctx and never fail status as a whole: a
// manager that cannot be asked goes into RuntimeInfo.Err.
var runtimeProbe func(ctx context.Context, p config.Profile, scope config.Scope) *RuntimeInfo

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
	Runtime      *RuntimeInfo `json:"runtime,omitempty"`
}

// rpcProbe is the result of connecting and calling status.
type rpcProbe struct {
	OK            bool            `json:"ok"`
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
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: "gatewayctl status [--json]",
		ShortHelp:  "Show which gateway this host talks to, with which config and secret, and whether it answers.",
		LongHelp: `Prints the profile and scope, the target URL and where it came from, the
config file, state directory, log file and token file in use, where the
secret came from, and the result of an RPC probe (connect + the status
method): the server's version, connection id, uptime and summary, or why
the probe failed and what to do about it.

Exit status 0 when the probe succeeded, 3 unreachable, 4 authentication
failed, 1 other problems.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("status takes no arguments, got %q", args))
			}
			return a.status(ctx)
		},
	}
}

func (a *app) status(ctx context.Context) error {
	t, err := a.resolve()
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
	r.RPC = a.probeRPC(ctx, t)
	if runtimeProbe != nil {
		r.Runtime = runtimeProbe(ctx, t.Profile, t.Paths.Scope)
	}
	if a.g.json {
		if err := writeValue(a.stdout, r); err != nil {
			return err
		}
	} else {
		printStatus(a.stdout, r)
	}
	if r.RPC.err != nil {
		return silent(r.RPC.err)
	}
	return nil
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
	if r.RPC.OK {
		fmt.Fprintf(tw, "rpc probe\tok (connect %.1f ms)\n", r.RPC.ConnectMs)
		fmt.Fprintf(tw, "gateway\tversion %s, protocol %d, uptime %s, connection %s\n",
			r.RPC.ServerVersion, r.RPC.Protocol, (time.Duration(r.RPC.UptimeMs) * time.Millisecond).Round(time.Second), r.RPC.ConnID)
		for _, line := range summarize(r.RPC.Status) {
			fmt.Fprintf(tw, "\t%s\n", line)
		}
	} else {
		fmt.Fprintf(tw, "rpc probe\tFAILED: %s\n", r.RPC.Error)
	}
	if r.Runtime != nil {
		rt := r.Runtime
		state := strings.TrimSpace(rt.ActiveState + " " + rt.SubState)
		if rt.Err != "" {
			state = "unknown: " + rt.Err
		} else if !rt.Installed {
			state = "not installed"
		}
		fmt.Fprintf(tw, "service\t%s %s (%s): %s\n", rt.Manager, rt.Unit, rt.Scope, state)
		if rt.Detail != "" {
			fmt.Fprintf(tw, "\t%s\n", rt.Detail)
		}
	}
	tw.Flush()
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
