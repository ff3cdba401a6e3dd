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
	"slices"
	"strings"

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

// job returns the target's launchd parameters and what launchctl print
// says about its job.
func (m *launchdManager) job(ctx context.Context, t Target) (launchd.Params, launchd.PrintInfo, error) {
	p, err := m.params(t)
	if err != nil {
		return p, launchd.PrintInfo{}, err
	}
	info, err := m.print(ctx, t)
	return p, info, err
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
	p, info, err := m.job(ctx, t)
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
	p, info, err := m.job(ctx, t)
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
	p, info, err := m.job(ctx, t)
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
