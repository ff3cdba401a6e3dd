package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/platform/service"
	"github.com/gatewayd/gatewayd/units"
)

// EnvLingerDir moves logind's linger directory (default
// /var/lib/systemd/linger), for hosts with a relocated logind state and for
// tests against a private user manager.
const EnvLingerDir = "GATEWAY_LINGER_DIR"

// svcTarget is one profile in one scope, resolved for the service commands.
type svcTarget struct {
	scope   string
	profile config.Profile
	paths   config.Paths
	loaded  *config.Loaded // nil when the config file does not load
	cfgErr  error
	port    int
	portSrc string
	tg      service.Target
}

// svcFlags are the flags the service commands share.
type svcFlags struct {
	scope    string
	gatewayd string
}

func (f *svcFlags) register(fs *flag.FlagSet, withBinary bool) {
	fs.StringVar(&f.scope, "scope", "", "service `scope`: user or system (default: system when run as root, else user)")
	if withBinary {
		fs.StringVar(&f.gatewayd, "gatewayd", "", "`path` of the gatewayd binary the unit runs (default: next to gatewayctl, else $PATH)")
	}
}

// scopeOf returns the scope asked for, or the default for this process.
func (f *svcFlags) scopeOf() (string, error) {
	switch f.scope {
	case "":
		return string(config.DefaultScope()), nil
	case service.ScopeUser, service.ScopeSystem:
		return f.scope, nil
	}
	return "", usageErr(fmt.Errorf("--scope %q: use user or system", f.scope))
}

// serviceTarget resolves the profile, its paths in scope, its port and the
// gatewayd binary into a service.Target. portFlag 0 means not given.
func (a *app) serviceTarget(f *svcFlags, portFlag int) (*svcTarget, error) {
	scope, err := f.scopeOf()
	if err != nil {
		return nil, err
	}
	name := a.g.profile
	if name == "" {
		name = a.getenv("GATEWAY_PROFILE")
	}
	p, err := config.NewProfile(name, a.g.dev)
	if err != nil {
		return nil, usageErr(err)
	}
	st := &svcTarget{scope: scope, profile: p, paths: config.ResolvePaths(p, config.Scope(scope), a.getenv)}
	st.loaded, st.cfgErr = config.Load(st.paths.ConfigPath)
	if st.cfgErr != nil {
		st.loaded = nil
	}
	st.port, st.portSrc = p.DefaultPort(), "profile "+p.Name()+" default"
	bind := config.BindLoopback
	if st.loaded != nil {
		if st.loaded.Config.Gateway.Port != 0 {
			st.port, st.portSrc = st.loaded.Config.Gateway.Port, "gateway.port in "+st.loaded.Path
		}
		if b := st.loaded.Config.Gateway.Bind; b != "" {
			bind = b
		}
	}
	if s := a.getenv("GATEWAY_PORT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return nil, usageErr(fmt.Errorf("GATEWAY_PORT=%q is not a port number 1-65535 (fix or unset it)", s))
		}
		st.port, st.portSrc = n, "GATEWAY_PORT"
	}
	if portFlag != 0 {
		if portFlag < 1 || portFlag > 65535 {
			return nil, usageErr(fmt.Errorf("--port %d is out of range 1-65535", portFlag))
		}
		st.port, st.portSrc = portFlag, "--port"
	}
	bin, err := gatewaydPath(f.gatewayd)
	if err != nil && f.gatewayd != "" {
		return nil, usageErr(err)
	}
	st.tg = service.Target{
		Profile:     p.Name(),
		Scope:       scope,
		Port:        st.port,
		ListenAddrs: listenAddrs(bind, st.port),
		ExecPath:    bin,
		Version:     buildinfo.Get().Version,
		ConfigPath:  st.paths.ConfigPath,
		LogFile:     st.paths.LogFile,
	}
	return st, nil
}

// needBinary fails when no gatewayd binary was found for a command that
// writes units.
func (st *svcTarget) needBinary() error {
	if st.tg.ExecPath == "" {
		_, err := gatewaydPath("")
		return err
	}
	return nil
}

// listenAddrs returns the socket addresses for gateway.bind at port: the
// loopback pair for "loopback", the wildcard pair for "lan", else the one
// address given.
func listenAddrs(bind string, port int) []string {
	switch bind {
	case "", config.BindLoopback:
		return units.DefaultListenAddrs(port)
	case config.BindLAN:
		return []string{net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), net.JoinHostPort("::", strconv.Itoa(port))}
	}
	if ip, err := netip.ParseAddr(bind); err == nil {
		return []string{netip.AddrPortFrom(ip, uint16(port)).String()}
	}
	return units.DefaultListenAddrs(port)
}

// gatewaydPath finds the gatewayd binary: the flag, else next to this
// executable, else on $PATH.
func gatewaydPath(flagValue string) (string, error) {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return "", fmt.Errorf("--gatewayd %s: %w", flagValue, err)
		}
		if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("--gatewayd %s is not an executable file: pass the path of the gatewayd binary", abs)
		}
		return abs, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "gatewayd")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("gatewayd"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	return "", errors.New("gatewayd binary not found next to gatewayctl nor on $PATH: install the gatewayd package, or pass --gatewayd PATH")
}

// openManager returns the service manager for scope: systemd over D-Bus on
// Linux, launchd on macOS.
func (a *app) openManager(ctx context.Context, scope string) (service.Manager, error) {
	if runtime.GOOS == "linux" {
		return service.NewSystemdWithOptions(ctx, service.SystemdOptions{
			Scope:     scope,
			LingerDir: a.getenv(EnvLingerDir),
			Logger:    a.logger(),
		})
	}
	return service.Detect(ctx, scope)
}

// describe names the gateway for messages: "gatewayd (profile work, systemd
// user scope)".
func describe(m service.Manager, st *svcTarget) string {
	return fmt.Sprintf("gatewayd (profile %s, %s %s scope)", st.profile.Name(), m.Name(), st.scope)
}

// verbCommand builds start, stop, restart and uninstall: resolve, open the
// manager, run one verb, say what happened.
func (a *app) verbCommand(name, short, long string, do func(ctx context.Context, m service.Manager, st *svcTarget) (string, error)) *ffcli.Command {
	fs := a.flagSet(name)
	var sf svcFlags
	sf.register(fs, false)
	return &ffcli.Command{
		Name:       name,
		ShortUsage: "gatewayctl " + name + " [--scope user|system] [--profile NAME]",
		ShortHelp:  short,
		LongHelp:   long + "\n\nExit status 0 when done, 1 when the service manager refused or failed.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("%s takes no arguments, got %q", name, args))
			}
			st, err := a.serviceTarget(&sf, 0)
			if err != nil {
				return err
			}
			m, err := a.openManager(ctx, st.scope)
			if err != nil {
				return err
			}
			msg, err := do(ctx, m, st)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, describe(m, st), err)
			}
			if a.g.json {
				return writeValue(a.stdout, map[string]any{"ok": true, "action": name, "manager": m.Name(), "scope": st.scope, "profile": st.profile.Name(), "message": msg})
			}
			fmt.Fprintln(a.stdout, msg)
			return nil
		},
	}
}

func (a *app) startCommand() *ffcli.Command {
	return a.verbCommand("start", "Start the gateway's socket and service.",
		`Starts the profile's socket and its service (systemd), or bootstraps and
kickstarts the job (launchd).`,
		func(ctx context.Context, m service.Manager, st *svcTarget) (string, error) {
			if err := m.Start(ctx, st.tg); err != nil {
				return "", err
			}
			return "started " + describe(m, st), nil
		})
}

func (a *app) stopCommand() *ffcli.Command {
	return a.verbCommand("stop", "Stop the gateway's service and socket.",
		`Stops the profile's socket and service: the port is closed until start
(or the next boot/login when the socket is enabled). Connected clients get
the shutdown event and close code 1012.`,
		func(ctx context.Context, m service.Manager, st *svcTarget) (string, error) {
			if err := m.Stop(ctx, st.tg); err != nil {
				return "", err
			}
			return "stopped " + describe(m, st), nil
		})
}

func (a *app) restartCommand() *ffcli.Command {
	var noCheck *bool
	cmd := a.verbCommand("restart", "Restart the gateway; the socket keeps accepting meanwhile.",
		`Restarts the profile's service while its socket stays open, so new
connections queue in the socket's backlog instead of being refused.
Connected clients get the shutdown event and close code 1012 and reconnect.

First it runs the installed binary's config check (gatewayd --check-config,
the binary the unit runs, with the profile's config file): when that fails
the gateway is not restarted, the running one keeps serving, and the
errors (FILE:LINE:COL: message) are printed. --no-config-check skips it.`,
		func(ctx context.Context, m service.Manager, st *svcTarget) (string, error) {
			note, err := a.checkInstalledConfig(ctx, m, st, *noCheck)
			if err != nil {
				return "", err
			}
			if err := m.Restart(ctx, st.tg); err != nil {
				return "", err
			}
			return "restarted " + describe(m, st) + note, nil
		})
	noCheck = cmd.FlagSet.Bool("no-config-check", false, "restart without running the installed gatewayd's --check-config first")
	cmd.ShortUsage = "gatewayctl restart [--scope user|system] [--profile NAME] [--no-config-check]"
	return cmd
}

// errConfigRejected is a restart refused because the installed gatewayd
// rejects the config.
var errConfigRejected = errors.New("the installed gatewayd rejects the config")

// checkInstalledConfig runs `gatewayd --check-config` with the binary the
// service runs, for the profile's config file, and returns an error (the
// gateway is left alone) when the check fails. A binary that predates
// --check-config is not an error: the returned note says the check was
// skipped.
func (a *app) checkInstalledConfig(ctx context.Context, m service.Manager, st *svcTarget, skip bool) (string, error) {
	if skip {
		return " (config check skipped: --no-config-check)", nil
	}
	bin, env := st.tg.ExecPath, os.Environ()
	if rt, err := m.Status(ctx, st.tg); err == nil && len(rt.ExecStart) > 0 && filepath.IsAbs(rt.ExecStart[0]) {
		bin = rt.ExecStart[0] // the binary the unit runs, which may not be ours
		for k, v := range rt.Environment {
			env = append(env, k+"="+v)
		}
	}
	if bin == "" {
		return "", fmt.Errorf("cannot check the config before restarting: %w (or pass --no-config-check)", st.needBinary())
	}
	args := []string{"--check-config", "--config", st.paths.ConfigPath}
	if a.g.dev {
		args = append(args, "--dev")
	} else {
		args = append(args, "--profile", st.profile.Name())
	}
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return " (config ok: " + st.paths.ConfigPath + ")", nil
	case errors.As(err, &ee) && ee.ExitCode() == 2 && strings.Contains(stderr.String(), "-check-config"):
		// flag provided but not defined: an older gatewayd.
		return fmt.Sprintf(" (config not checked: %s predates --check-config)", bin), nil
	case errors.As(err, &ee) && ee.ExitCode() == 78:
		return "", fmt.Errorf("%w (%s --check-config), so it was NOT restarted and the running gateway keeps serving:\n%s\nfix the config, check it with `gatewayctl config validate`, then run `gatewayctl restart` again",
			errConfigRejected, bin, strings.TrimRight(stderr.String(), "\n"))
	}
	return "", fmt.Errorf("cannot check the config with %s --check-config (%v), so the gateway was NOT restarted: %s (restart without the check: gatewayctl restart --no-config-check)",
		bin, err, strings.TrimSpace(stderr.String()+" "+stdout.String()))
}

func (a *app) uninstallCommand() *ffcli.Command {
	return a.verbCommand("uninstall", "Stop, disable and remove the gateway's units (or plist).",
		`Stops the profile's socket and service, disables them and removes the unit
files (systemd) or boots out the job and removes its plist (launchd),
leaving no unit, link or process behind. The config, state and logs stay.`,
		func(ctx context.Context, m service.Manager, st *svcTarget) (string, error) {
			if err := m.Uninstall(ctx, st.tg); err != nil {
				return "", err
			}
			return fmt.Sprintf("uninstalled %s; config, state and logs are kept (%s, %s)", describe(m, st), st.paths.ConfigPath, st.paths.StateDir), nil
		})
}
