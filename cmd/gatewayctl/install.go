package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/platform/service"
)

// installReport is `gatewayctl install --json`.
type installReport struct {
	*service.InstallResult
	Profile     string `json:"profile"`
	Port        int    `json:"port"`
	PortSource  string `json:"portSource"`
	ExecPath    string `json:"execPath"`
	ConfigPath  string `json:"configPath"`
	ConfigWrite bool   `json:"configWritten"`
	Account     string `json:"account,omitempty"` // the service account created (system scope), if any
}

func (a *app) installCommand() *ffcli.Command {
	fs := a.flagSet("install")
	var sf svcFlags
	sf.register(fs, true)
	port := fs.Int("port", 0, "the gateway's `port` (written to the profile's config file when it has none)")
	force := fs.Bool("force", false, "rewrite the units even when identical, and replace hand-edited ones")
	dry := fs.Bool("dry-run", false, "print what would be written and done, touch nothing")
	forUser := fs.String("user", "", "as root: install the user-scope gateway of account `NAME` (implies --scope user)")
	linger := fs.Bool("linger", false, "user scope: turn lingering on (logind), so the user's manager and the gateway run from boot without a login")
	return &ffcli.Command{
		Name:       "install",
		ShortUsage: "gatewayctl install [--scope user|system] [--user NAME] [--linger] [--port N] [--force] [--dry-run]",
		ShortHelp:  "Install the gateway as a socket-activated service (systemd units or launchd plist).",
		LongHelp: `Renders the profile's units (systemd: gatewayd[-PROFILE].socket and .service;
launchd: a LaunchAgent, or a LaunchDaemon with --scope system), writes them,
reloads the manager, enables the socket and starts it. The first connection
starts gatewayd.

Idempotent: when the files are identical nothing is written or restarted;
--force rewrites them. A unit edited by hand is not replaced without --force
(run gatewayctl doctor to see the difference). Refuses when the same profile
is installed in the other scope. In user scope it reports whether lingering
is on and how to turn it on (loginctl enable-linger).

Headless (a non-login SSH command, sudo -u, configuration management):
with no session bus in the environment, user scope reaches the user's
manager at /run/user/UID/bus. When that manager is not running (no login
session, lingering off), install says the one command that fixes it;
--linger turns lingering on through logind (which starts the manager now
and at every boot) and goes on. As root, --user NAME installs NAME's
user-scope gateway: the rest of the install runs as NAME, against NAME's
manager (add --linger when NAME has no session).

--port N sets the socket's port; it is written to gateway.port in the
profile's config file when that file does not exist yet (status, health and
doctor read it there), and must match gateway.port when the file exists.

Exit status 0 installed (or already installed), 1 refused or failed, 2 usage.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("install takes no arguments, got %q", args))
			}
			if *forUser != "" {
				if *dry {
					return usageErr(errors.New("--user NAME does not combine with --dry-run: run `sudo -u NAME gatewayctl install --scope user --dry-run`"))
				}
				return a.installForUser(ctx, &sf, *forUser, *linger)
			}
			if *linger {
				if err := a.lingerSelf(ctx, &sf, *dry); err != nil {
					return err
				}
			}
			return a.install(ctx, &sf, *port, service.InstallOptions{Force: *force, DryRun: *dry})
		},
	}
}

func (a *app) install(ctx context.Context, sf *svcFlags, port int, o service.InstallOptions) error {
	st, err := a.serviceTarget(sf, port)
	if err != nil {
		return err
	}
	if err := st.needBinary(); err != nil {
		return err
	}
	writeCfg, err := st.portConfig(port)
	if err != nil {
		return err
	}
	m, err := a.openManager(ctx, st.scope)
	if err != nil {
		return err
	}
	account := ""
	if st.scope == service.ScopeSystem {
		if account, err = ensureServiceAccount(ctx, "", o.DryRun); err != nil {
			return fmt.Errorf("install %s: %w", describe(m, st), err)
		}
	}
	res, err := m.Install(ctx, st.tg, o)
	if err != nil {
		return fmt.Errorf("install %s: %w", describe(m, st), err)
	}
	if writeCfg && !o.DryRun {
		if err := st.writePortConfig(); err != nil {
			return err
		}
	}
	rep := &installReport{InstallResult: res, Profile: st.profile.Name(), Port: st.port, PortSource: st.portSrc,
		ExecPath: st.tg.ExecPath, ConfigPath: st.paths.ConfigPath, ConfigWrite: writeCfg, Account: account}
	if a.g.json {
		return writeValue(a.stdout, rep)
	}
	printInstall(a.stdout, m, st, rep)
	return nil
}

// portConfig decides whether install --port writes the port to the config
// file: yes when the file does not exist; an error when it exists with
// another (or no) gateway.port, so status and doctor keep agreeing with
// the unit.
func (st *svcTarget) portConfig(port int) (bool, error) {
	if port == 0 {
		return false, nil
	}
	if st.cfgErr != nil {
		return false, fmt.Errorf("--port: the config file does not load, fix it first: %w", st.cfgErr)
	}
	if !st.loaded.Exists {
		return true, nil
	}
	if got := st.loaded.Config.Gateway.Port; got != port {
		have := "no gateway.port"
		if got != 0 {
			have = fmt.Sprintf("gateway.port %d", got)
		}
		return false, fmt.Errorf("--port %d, but %s has %s: set \"gateway\": {\"port\": %d} there (status, health and doctor read it), or drop --port", port, st.paths.ConfigPath, have, port)
	}
	return false, nil
}

func (st *svcTarget) writePortConfig() error {
	data, err := json.MarshalIndent(map[string]any{"gateway": map[string]any{"port": st.port}}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	perm := os.FileMode(0o600)
	if st.scope == service.ScopeSystem {
		perm = 0o644 // read by the service's own user; it holds no secret
	}
	if err := os.MkdirAll(st.paths.ConfigDir, 0o755); err != nil {
		return fmt.Errorf("create config directory %s: %w (run with sudo for --scope system)", st.paths.ConfigDir, err)
	}
	if _, err := os.Stat(st.paths.ConfigPath); err == nil {
		return fmt.Errorf("write %s: %w", st.paths.ConfigPath, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s: %w", st.paths.ConfigPath, err)
	}
	if err := config.WriteFileAtomic(st.paths.ConfigPath, append(data, '\n'), perm); err != nil {
		return fmt.Errorf("write %s: %w (run with sudo for --scope system)", st.paths.ConfigPath, err)
	}
	return nil
}

func printInstall(w io.Writer, m service.Manager, st *svcTarget, r *installReport) {
	verb := "installed"
	switch {
	case r.DryRun:
		verb = "would install"
	case r.AlreadyInstalled:
		verb = "already installed"
	}
	fmt.Fprintf(w, "%s %s\n", verb, describe(m, st))
	if r.Account != "" {
		fmt.Fprintf(w, "  %s\n", r.Account)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range r.Files {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Action, f.Path)
	}
	tw.Flush()
	if len(r.Actions) > 0 {
		prefix := "done"
		if r.DryRun {
			prefix = "would do"
		}
		fmt.Fprintf(w, "%s: %s\n", prefix, strings.Join(r.Actions, ", "))
	}
	fmt.Fprintf(w, "port: %d (from %s), binary: %s\n", r.Port, r.PortSource, r.ExecPath)
	if r.ConfigWrite {
		if r.DryRun {
			fmt.Fprintf(w, "would write gateway.port=%d to %s\n", r.Port, r.ConfigPath)
		} else {
			fmt.Fprintf(w, "wrote gateway.port=%d to %s\n", r.Port, r.ConfigPath)
		}
	}
	if r.Linger != nil {
		state := "off"
		if *r.Linger {
			state = "on"
		}
		fmt.Fprintf(w, "lingering: %s\n", state)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if !r.DryRun {
		fmt.Fprintln(w, "next: the first connection starts gatewayd; check with `gatewayctl status` and `gatewayctl doctor`")
	}
}
