package launchd

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"howett.net/plist"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/units"
)

// The two scopes a job can be rendered for.
const (
	// ScopeUser renders a LaunchAgent in the user's gui/<uid> domain.
	ScopeUser = "user"
	// ScopeSystem renders a LaunchDaemon in the system domain.
	ScopeSystem = "system"
)

// SocketKey is the key under Sockets (and the name gatewayd passes to
// launch_activate_socket): gatewayd runs with --listen launchd:Listeners.
const SocketKey = "Listeners"

// DefaultUser is the account (and group) a LaunchDaemon runs as.
const DefaultUser = "_gatewayd"

// ThrottleInterval is the minimum number of seconds between two launches.
const ThrottleInterval = 10

// ProcessType is the job's launchd resource class. launchd.plist(5):
// Background jobs get resource limits "intended to prevent them from
// disrupting the user experience" (CPU, I/O and timer throttling); Standard,
// like leaving the key out, still gets "light resource limits ... throttling
// its CPU usage and I/O bandwidth"; Adaptive only lifts them while an XPC
// transaction is open, which gatewayd never has. Interactive runs "with the
// same resource limitations as apps, that is to say, none". The gateway is
// a long-running daemon that answers people (chat, the Control UI, CLI)
// and holds channel connections: throttled, its replies stall and macOS
// can flag it for CPU or wake-up violations and kill it as inefficient. So
// Interactive, as OpenClaw's own LaunchAgent uses.
const ProcessType = "Interactive"

// ExitTimeOut is how long launchd waits after SIGTERM before SIGKILL; it
// matches the systemd unit's TimeoutStopSec= so gatewayd can drain.
const ExitTimeOut = 30

// Params describe one profile's launchd job.
type Params struct {
	// Profile is the profile name; "" or "default" mean the default profile.
	Profile string
	// Scope is ScopeUser (LaunchAgent) or ScopeSystem (LaunchDaemon).
	Scope string
	// Port is used when ListenAddrs is empty: the job then listens on
	// 127.0.0.1:Port and [::1]:Port.
	Port int
	// ListenAddrs are "host:port" addresses ("127.0.0.1:18789",
	// "[::1]:18789") or absolute paths of Unix sockets.
	ListenAddrs []string
	// ExecPath is the absolute path of the gatewayd binary.
	ExecPath string
	// Version goes into GATEWAY_SERVICE_VERSION.
	Version string
	// HomeDir is the user's home directory (user scope: log paths and the
	// working directory). Ignored in system scope.
	HomeDir string
	// User and Group a LaunchDaemon runs as; default DefaultUser. Ignored
	// in user scope.
	User, Group string
	// OnDemand leaves the job purely on demand: launchd holds the sockets
	// and starts gatewayd on the first connection (and again on the next
	// connection after a crash). By default the job is always on, like the
	// systemd units: RunAtLoad starts it when it is loaded (at boot for a
	// LaunchDaemon, at login for a LaunchAgent) and KeepAlive
	// {SuccessfulExit: false} restarts it after a failure, while the
	// sockets stay with launchd so connections queue across restarts.
	OnDemand bool
}

// job is the plist, field order irrelevant: the XML encoder sorts keys.
type job struct {
	Label                string              `plist:"Label"`
	ProgramArguments     []string            `plist:"ProgramArguments"`
	Sockets              map[string][]socket `plist:"Sockets"`
	RunAtLoad            bool                `plist:"RunAtLoad"`
	KeepAlive            *keepAlive          `plist:"KeepAlive,omitempty"`
	ProcessType          string              `plist:"ProcessType"`
	ThrottleInterval     int                 `plist:"ThrottleInterval"`
	ExitTimeOut          int                 `plist:"ExitTimeOut"`
	WorkingDirectory     string              `plist:"WorkingDirectory"`
	StandardOutPath      string              `plist:"StandardOutPath"`
	StandardErrorPath    string              `plist:"StandardErrorPath"`
	EnvironmentVariables map[string]string   `plist:"EnvironmentVariables"`
	UserName             string              `plist:"UserName,omitempty"`
	GroupName            string              `plist:"GroupName,omitempty"`
}

type keepAlive struct {
	SuccessfulExit bool `plist:"SuccessfulExit"`
}

type socket struct {
	SockNodeName    string `plist:"SockNodeName,omitempty"`
	SockServiceName string `plist:"SockServiceName,omitempty"`
	SockPathName    string `plist:"SockPathName,omitempty"`
	SockType        string `plist:"SockType"`
	SockFamily      string `plist:"SockFamily"`
}

// Label returns the launchd label of a profile: "org.gatewayd.gateway" for
// the default profile, "org.gatewayd.<profile>" otherwise. (A profile named
// "gateway" would collide with the default; Render refuses it.)
func Label(profile string) string {
	p := units.ProfileName(profile)
	if p == units.DefaultProfile {
		return "org.gatewayd.gateway"
	}
	return "org.gatewayd." + p
}

// PlistPath returns where the job's plist is installed:
// <HomeDir>/Library/LaunchAgents/<label>.plist in user scope,
// /Library/LaunchDaemons/<label>.plist in system scope.
func PlistPath(p Params) string {
	if p.Scope == ScopeSystem {
		return filepath.Join("/Library/LaunchDaemons", Label(p.Profile)+".plist")
	}
	return filepath.Join(p.HomeDir, "Library/LaunchAgents", Label(p.Profile)+".plist")
}

// LogDir returns the directory of StandardOutPath/StandardErrorPath, which
// must exist before the job starts: <HomeDir>/Library/Logs/<base> in user
// scope; in system scope the system scope's log directory of package
// config, /var/log/<base>, next to gatewayd's own JSON-lines log. <base> is
// "gatewayd" or "gatewayd-<profile>".
func LogDir(p Params) string {
	base := units.UnitBase(p.Profile)
	if p.Scope == ScopeSystem {
		return filepath.Join("/var/log", base)
	}
	return filepath.Join(p.HomeDir, "Library/Logs", base)
}

// systemEnv returns the environment that points a LaunchDaemon's gatewayd
// at the system scope's paths. The daemon runs as an unprivileged account
// and launchd sets nothing like systemd's STATE_DIRECTORY, so on its own it
// would resolve the user scope's paths under the account's home
// (/var/empty). Config file and state directory are given by gatewayd's own
// variables; the log directory by LOGS_DIRECTORY, the variable package
// config reads for it (systemd's name: there is no GATEWAY_ one).
func systemEnv(profile string) (map[string]string, error) {
	prof, err := config.NewProfile(profile, false)
	if err != nil {
		return nil, err
	}
	paths := config.ResolvePaths(prof, config.ScopeSystem, func(string) string { return "" })
	return map[string]string{
		config.EnvConfigPath:  paths.ConfigPath,
		config.EnvStateDir:    paths.StateDir,
		config.EnvSystemdLogs: paths.LogDir,
	}, nil
}

// Domain returns the launchctl domain target for a scope: "gui/<uid>" for
// ScopeUser, "system" otherwise.
func Domain(scope string, uid int) string {
	if scope == ScopeUser {
		return "gui/" + strconv.Itoa(uid)
	}
	return "system"
}

// ServiceTarget returns "<domain>/<label>", the target of launchctl's
// print, kickstart, bootout, enable and disable.
func ServiceTarget(scope string, uid int, profile string) string {
	return Domain(scope, uid) + "/" + Label(profile)
}

// Render renders the job's plist as XML. The output is deterministic: the
// same Params always give the same bytes.
func Render(p Params) ([]byte, error) {
	j, err := build(p)
	if err != nil {
		return nil, err
	}
	out, err := plist.MarshalIndent(j, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("encode launchd plist for %s: %w", j.Label, err)
	}
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	return out, nil
}

func build(p Params) (*job, error) {
	if err := units.ValidateProfile(p.Profile); err != nil {
		return nil, err
	}
	profile := units.ProfileName(p.Profile)
	if profile == "gateway" {
		return nil, fmt.Errorf("invalid profile name %q: its launchd label would be the default profile's (%s); choose another name", profile, Label(""))
	}
	if p.Version == "" || strings.ContainsAny(p.Version, " \t\r\n") {
		return nil, fmt.Errorf("invalid version %q for the launchd marker: pass the build version (no spaces)", p.Version)
	}
	if !filepath.IsAbs(p.ExecPath) {
		return nil, fmt.Errorf("invalid gatewayd path %q for ProgramArguments: pass an absolute path to the binary", p.ExecPath)
	}
	j := &job{
		Label:            Label(p.Profile),
		RunAtLoad:        !p.OnDemand,
		ProcessType:      ProcessType,
		ThrottleInterval: ThrottleInterval,
		ExitTimeOut:      ExitTimeOut,
		EnvironmentVariables: map[string]string{
			units.EnvMarker:  units.MarkerValue,
			units.EnvKind:    units.KindValue,
			units.EnvVersion: p.Version,
			units.EnvProfile: profile,
		},
	}
	if !p.OnDemand {
		j.KeepAlive = &keepAlive{SuccessfulExit: false}
	}
	switch p.Scope {
	case ScopeUser:
		if !filepath.IsAbs(p.HomeDir) {
			return nil, fmt.Errorf("invalid home directory %q for the LaunchAgent: pass the user's absolute home directory", p.HomeDir)
		}
		j.WorkingDirectory = filepath.Clean(p.HomeDir)
	case ScopeSystem:
		env, err := systemEnv(profile)
		if err != nil {
			return nil, err
		}
		for k, v := range env {
			j.EnvironmentVariables[k] = v
		}
		j.WorkingDirectory = "/"
		if j.UserName, j.GroupName, err = units.Accounts(p.User, p.Group, DefaultUser); err != nil {
			return nil, fmt.Errorf("%w for the LaunchDaemon: use an account name such as %q", err, DefaultUser)
		}
	default:
		return nil, fmt.Errorf("invalid launchd scope %q: use %q (LaunchAgent) or %q (LaunchDaemon)", p.Scope, ScopeUser, ScopeSystem)
	}
	logDir := LogDir(p)
	j.StandardOutPath = filepath.Join(logDir, "stdout.log")
	j.StandardErrorPath = filepath.Join(logDir, "stderr.log")

	addrs := p.ListenAddrs
	if len(addrs) == 0 {
		if p.Port <= 0 || p.Port > 65535 {
			return nil, fmt.Errorf("no listen address for the launchd job: set ListenAddrs or a Port in 1-65535 (got %d)", p.Port)
		}
		addrs = units.DefaultListenAddrs(p.Port)
	}
	var socks []socket
	for _, a := range addrs {
		s, err := sockFor(a)
		if err != nil {
			return nil, err
		}
		socks = append(socks, s)
	}
	j.Sockets = map[string][]socket{SocketKey: socks}

	j.ProgramArguments = []string{p.ExecPath}
	if profile != units.DefaultProfile {
		j.ProgramArguments = append(j.ProgramArguments, "--profile", profile)
	}
	j.ProgramArguments = append(j.ProgramArguments, "--listen", "launchd:"+SocketKey)
	return j, nil
}

func sockFor(a string) (socket, error) {
	if strings.HasPrefix(a, "/") {
		return socket{SockPathName: a, SockType: "stream", SockFamily: "Unix"}, nil
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return socket{}, fmt.Errorf("invalid listen address %q for the launchd socket: use IP:PORT such as 127.0.0.1:18789 or [::1]:18789: %w", a, err)
	}
	if ap.Port() == 0 {
		return socket{}, fmt.Errorf("invalid listen address %q for the launchd socket: the port must not be 0", a)
	}
	fam := "IPv4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		fam = "IPv6"
	}
	return socket{
		SockNodeName:    ap.Addr().String(),
		SockServiceName: strconv.Itoa(int(ap.Port())),
		SockType:        "stream",
		SockFamily:      fam,
	}, nil
}
