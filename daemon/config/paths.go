package config

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// Scope says whether a gateway runs for one user (user units, LaunchAgents,
// XDG paths) or for the whole host (system units, LaunchDaemons, FHS paths).
type Scope string

// The two scopes.
const (
	ScopeUser   Scope = "user"
	ScopeSystem Scope = "system"
)

// Environment variables that move the paths. The GATEWAY_ ones are the
// operator's; the others are set by systemd from ConfigurationDirectory=,
// StateDirectory= and LogsDirectory=.
const (
	EnvConfigPath      = "GATEWAY_CONFIG_PATH"
	EnvStateDir        = "GATEWAY_STATE_DIR"
	EnvSystemdConfig   = "CONFIGURATION_DIRECTORY"
	EnvSystemdState    = "STATE_DIRECTORY"
	EnvSystemdLogs     = "LOGS_DIRECTORY"
	configFileName     = "config.json"
	logFileName        = "gatewayd.jsonl"
	tokenFileName      = "gateway.token"
	logsSubdirInState  = "logs"
	systemConfigRoot   = "/etc"
	systemStateRoot    = "/var/lib"
	systemLogsRoot     = "/var/log"
	xdgConfigFallback  = ".config"
	xdgStateFallback   = ".local/state"
	envXDGConfigHome   = "XDG_CONFIG_HOME"
	envXDGStateHome    = "XDG_STATE_HOME"
	envHome            = "HOME"
	systemdPathListSep = ":"
)

// Paths are the files and directories one profile uses in one scope.
// All paths are absolute and cleaned.
type Paths struct {
	Scope      Scope  // the scope the paths were resolved for
	ConfigPath string // the JSON config file (it may not exist)
	ConfigDir  string // the directory holding ConfigPath
	StateDir   string // state: the token file, the state store
	LogDir     string // the JSON-lines log and its rotated files
	LogFile    string // LogDir/gatewayd.jsonl
	TokenFile  string // StateDir/gateway.token
}

// ResolvePaths returns the paths of profile p in scope, reading the
// environment through getenv (pass os.Getenv; tests pass a map lookup).
//
// The directory base name is p.UnitBase(). User scope: config
// $XDG_CONFIG_HOME/<base>/config.json (default ~/.config), state
// $XDG_STATE_HOME/<base> (default ~/.local/state), logs <state>/logs.
// System scope: /etc/<base>/config.json, /var/lib/<base>, /var/log/<base>.
//
// Overrides, strongest first: GATEWAY_CONFIG_PATH (the file) then
// $CONFIGURATION_DIRECTORY/config.json; GATEWAY_STATE_DIR then
// $STATE_DIRECTORY; $LOGS_DIRECTORY, then <GATEWAY_STATE_DIR>/logs when the
// operator moved the state directory. systemd's variables may hold a
// colon-separated list; the first entry is used. Relative paths are made
// absolute against the working directory; a relative XDG_*_HOME is ignored,
// as the XDG base directory specification says.
func ResolvePaths(p Profile, scope Scope, getenv func(string) string) Paths {
	if getenv == nil {
		getenv = os.Getenv
	}
	base := p.UnitBase()
	var configDir, stateDir, logDir string
	if scope == ScopeSystem {
		configDir = filepath.Join(systemConfigRoot, base)
		stateDir = filepath.Join(systemStateRoot, base)
		logDir = filepath.Join(systemLogsRoot, base)
	} else {
		scope = ScopeUser
		home := homeDir(getenv)
		configDir = filepath.Join(xdgDir(getenv, envXDGConfigHome, home, xdgConfigFallback), base)
		stateDir = filepath.Join(xdgDir(getenv, envXDGStateHome, home, xdgStateFallback), base)
		logDir = filepath.Join(stateDir, logsSubdirInState)
	}
	configPath := filepath.Join(configDir, configFileName)

	if d := firstPath(getenv(EnvSystemdConfig)); d != "" {
		configPath = filepath.Join(absPath(d), configFileName)
	}
	if f := getenv(EnvConfigPath); f != "" {
		configPath = absPath(f)
	}
	if d := firstPath(getenv(EnvSystemdState)); d != "" {
		stateDir = absPath(d)
	}
	if d := getenv(EnvStateDir); d != "" {
		stateDir = absPath(d)
		logDir = filepath.Join(stateDir, logsSubdirInState)
	}
	if d := firstPath(getenv(EnvSystemdLogs)); d != "" {
		logDir = absPath(d)
	}
	return Paths{
		Scope:      scope,
		ConfigPath: configPath,
		ConfigDir:  filepath.Dir(configPath),
		StateDir:   stateDir,
		LogDir:     logDir,
		LogFile:    filepath.Join(logDir, logFileName),
		TokenFile:  filepath.Join(stateDir, tokenFileName),
	}
}

// DefaultScope returns the scope a process runs in when nothing says
// otherwise: system when running as root, or when $STATE_DIRECTORY is set
// outside the user's home (the process runs under a system unit, perhaps
// as an unprivileged User=); user otherwise. A user unit with StateDirectory=
// gets a $STATE_DIRECTORY under the home directory and stays in user scope.
func DefaultScope() Scope {
	return defaultScope(os.Geteuid(), os.Getenv)
}

func defaultScope(euid int, getenv func(string) string) Scope {
	if euid == 0 {
		return ScopeSystem
	}
	d := firstPath(getenv(EnvSystemdState))
	if d == "" {
		return ScopeUser
	}
	home := homeDir(getenv)
	userState := xdgDir(getenv, envXDGStateHome, home, xdgStateFallback)
	for _, root := range []string{home, userState} {
		if root != "" && root != "/" && within(root, d) {
			return ScopeUser
		}
	}
	return ScopeSystem
}

// within reports whether path is root or inside it.
func within(root, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func homeDir(getenv func(string) string) string {
	if h := getenv(envHome); h != "" {
		return absPath(h)
	}
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return "/"
}

func xdgDir(getenv func(string) string, env, home, fallback string) string {
	if d := getenv(env); d != "" && filepath.IsAbs(d) {
		return filepath.Clean(d)
	}
	return filepath.Join(home, fallback)
}

// firstPath returns the first entry of a colon-separated list as systemd
// writes it for several StateDirectory= (etc.) entries.
func firstPath(list string) string {
	first, _, _ := strings.Cut(list, systemdPathListSep)
	return strings.TrimSpace(first)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}
