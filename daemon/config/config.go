package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Config is the gateway's JSON config file. Zero values mean "the default";
// WithDefaults fills them in. Unknown keys are rejected by Load.
type Config struct {
	Gateway  GatewayConfig  `json:"gateway"`
	Logging  LoggingConfig  `json:"logging"`
	Commands CommandsConfig `json:"commands"`
	Agents   AgentsConfig   `json:"agents"`   // agent runs and their backends (agents.go)
	HTTP     HTTPConfig     `json:"http"`     // OpenAI-compatible HTTP endpoints (agents.go)
	Channels ChannelsConfig `json:"channels"` // delivery channels for send (channels.go)
	Tools    ToolsConfig    `json:"tools"`    // /tools/invoke tools (channels.go)
	Hooks    HooksConfig    `json:"hooks"`    // /hooks/wake and /hooks/agent (channels.go)
	Nodes    NodesConfig    `json:"nodes"`    // nodes and pairing (nodes.go)
}

// GatewayConfig is the "gateway" section: where and how the gateway serves.
type GatewayConfig struct {
	Mode             string          `json:"mode,omitempty"`             // "local" (default) | "remote"
	Port             int             `json:"port,omitempty"`             // 0 = profile default
	Bind             string          `json:"bind,omitempty"`             // "loopback" (default) | "lan" | an IP address
	Listen           []string        `json:"listen,omitempty"`           // explicit listen specs: systemd:NAME, launchd:NAME, unix:PATH, HOST:PORT
	Auth             AuthConfig      `json:"auth"`                       // client authentication
	Reload           ReloadConfig    `json:"reload"`                     // config hot reload
	ControlUI        ControlUIConfig `json:"controlUi"`                  // browser control UI
	TickIntervalMs   int             `json:"tickIntervalMs,omitempty"`   // default 30000
	HealthIntervalMs int             `json:"healthIntervalMs,omitempty"` // default 60000 (periodic health event)
	AllowedHosts     []string        `json:"allowedHosts,omitempty"`     // Host names allowed on a loopback listener besides localhost/loopback IPs
	Limits           LimitsConfig    `json:"limits"`                     // connection caps
}

// LimitsConfig is "gateway.limits": caps on open connections.
type LimitsConfig struct {
	MaxConnections  int `json:"maxConnections,omitempty"`  // default 16384, in total
	MaxPreAuthPerIP int `json:"maxPreAuthPerIp,omitempty"` // default 512 unauthenticated connections per client address (IPv6: per /64)
}

// AuthConfig is "gateway.auth": the shared secret clients present.
type AuthConfig struct {
	Mode      string          `json:"mode,omitempty"`                     // "token" (default) | "password" | "none"
	Token     string          `json:"token,omitempty" redact:"secret"`    // shared token; empty = the token file
	Password  string          `json:"password,omitempty" redact:"secret"` // shared password for mode "password"
	RateLimit RateLimitConfig `json:"rateLimit"`                          // failed-attempt limiting
}

// RateLimitConfig is "gateway.auth.rateLimit": failed auth attempts per
// client address.
type RateLimitConfig struct {
	MaxAttempts int `json:"maxAttempts,omitempty"` // default 10
	WindowMs    int `json:"windowMs,omitempty"`    // default 60000
	LockoutMs   int `json:"lockoutMs,omitempty"`   // default 300000
}

// ReloadConfig is "gateway.reload": what happens when the config file
// changes.
type ReloadConfig struct {
	Mode       string `json:"mode,omitempty"`       // off | hot | restart | hybrid (default)
	DebounceMs int    `json:"debounceMs,omitempty"` // default 300
}

// ControlUIConfig is "gateway.controlUi": the browser control UI.
type ControlUIConfig struct {
	Enabled        *bool    `json:"enabled,omitempty"`                     // serve the control UI at / (default true)
	AllowedOrigins []string `json:"allowedOrigins,omitempty" redact:"url"` // extra browser origins allowed to connect
}

// LoggingConfig is the "logging" section.
type LoggingConfig struct {
	Level        string `json:"level,omitempty"`        // debug | info (default) | warn | error
	MaxFileBytes int64  `json:"maxFileBytes,omitempty"` // default 10 MiB
	MaxFiles     int    `json:"maxFiles,omitempty"`     // rotated files kept, default 3
}

// CommandsConfig is the "commands" section: operator commands the gateway
// accepts.
type CommandsConfig struct {
	Restart *bool `json:"restart,omitempty"` // SIGUSR1 in-process restart allowed; default true
}

// Allowed values and defaults.
const (
	ModeLocal  = "local"
	ModeRemote = "remote"

	BindLoopback = "loopback"
	BindLAN      = "lan"

	AuthToken    = "token"
	AuthPassword = "password"
	AuthNone     = "none"

	ReloadOff     = "off"
	ReloadHot     = "hot"
	ReloadRestart = "restart"
	ReloadHybrid  = "hybrid"

	DefaultTickIntervalMs   = 30000
	DefaultHealthIntervalMs = 60000
	DefaultMaxAttempts      = 10
	DefaultWindowMs         = 60000
	DefaultLockoutMs        = 300000
	DefaultDebounceMs       = 300
	DefaultLogLevel         = "info"
	DefaultMaxFileBytes     = 10 << 20
	DefaultMaxFiles         = 3

	// RedactedValue replaces secrets in Redacted.
	RedactedValue = "__REDACTED__"

	minIntervalMs = 10
	maxIntervalMs = 24 * 60 * 60 * 1000
	maxDebounceMs = 60000
	maxLogFiles   = 100
)

var (
	gatewayModes = []string{ModeLocal, ModeRemote}
	authModes    = []string{AuthToken, AuthPassword, AuthNone}
	reloadModes  = []string{ReloadOff, ReloadHot, ReloadRestart, ReloadHybrid}
	logLevels    = []string{"debug", "info", "warn", "error"}
)

// Default returns the built-in configuration, the one used when there is no
// config file. Its Gateway.Port is 0: the port comes from the profile.
func Default() *Config {
	return (&Config{}).WithDefaults()
}

// WithDefaults returns a deep copy of c with every zero value replaced by its
// default. Gateway.Port stays 0 when unset: the port is the profile's
// (Profile.DefaultPort) unless a flag or GATEWAY_PORT says otherwise.
// A nil c gives Default().
func (c *Config) WithDefaults() *Config {
	out := c.clone()
	g := &out.Gateway
	setDefault(&g.Mode, ModeLocal)
	setDefault(&g.Bind, BindLoopback)
	setDefault(&g.Auth.Mode, AuthToken)
	setDefault(&g.Auth.RateLimit.MaxAttempts, DefaultMaxAttempts)
	setDefault(&g.Auth.RateLimit.WindowMs, DefaultWindowMs)
	setDefault(&g.Auth.RateLimit.LockoutMs, DefaultLockoutMs)
	setDefault(&g.Reload.Mode, ReloadHybrid)
	setDefault(&g.Reload.DebounceMs, DefaultDebounceMs)
	setDefault(&g.TickIntervalMs, DefaultTickIntervalMs)
	setDefault(&g.HealthIntervalMs, DefaultHealthIntervalMs)
	setDefault(&out.Logging.Level, DefaultLogLevel)
	setDefault(&out.Logging.MaxFileBytes, DefaultMaxFileBytes)
	setDefault(&out.Logging.MaxFiles, DefaultMaxFiles)
	if out.Commands.Restart == nil {
		t := true
		out.Commands.Restart = &t
	}
	out.Agents.withDefaults()
	out.HTTP.withDefaults()
	out.Channels.withDefaults()
	out.Tools.withDefaults()
	out.Hooks.withDefaults()
	out.Nodes.withDefaults()
	return out
}

// RestartAllowed reports commands.restart, true when unset.
func (c *Config) RestartAllowed() bool {
	return c == nil || c.Commands.Restart == nil || *c.Commands.Restart
}

// Redacted returns a deep copy of c with every field tagged redact:"secret"
// replaced by "__REDACTED__" and every redact:"url" field passed through
// RedactURL (see redact.go), for config.get, status and logs.
func (c *Config) Redacted() *Config {
	out := c.clone()
	redactTagged(reflect.ValueOf(out).Elem())
	return out
}

// clone returns a deep copy; nil gives an empty Config.
func (c *Config) clone() *Config {
	out := &Config{}
	if c == nil {
		return out
	}
	*out = *c
	out.Gateway.Listen = slices.Clone(c.Gateway.Listen)
	out.Gateway.ControlUI.AllowedOrigins = slices.Clone(c.Gateway.ControlUI.AllowedOrigins)
	out.Gateway.AllowedHosts = slices.Clone(c.Gateway.AllowedHosts)
	if c.Gateway.ControlUI.Enabled != nil {
		v := *c.Gateway.ControlUI.Enabled
		out.Gateway.ControlUI.Enabled = &v
	}
	if c.Commands.Restart != nil {
		v := *c.Commands.Restart
		out.Commands.Restart = &v
	}
	out.Agents = c.Agents.clone()
	out.HTTP = c.HTTP.clone()
	out.Channels = c.Channels.clone()
	out.Tools = c.Tools.clone()
	out.Hooks = c.Hooks.clone()
	out.Nodes = c.Nodes.clone()
	return out
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate checks every field and returns the first problem as an *Error
// whose Key is the dotted config key, e.g.
// `gateway.reload.mode: "fast" is not one of off, hot, restart, hybrid`.
// Zero values are valid: they mean the default. Load adds the file, line and
// column.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	g := &c.Gateway
	checks := []func() *Error{
		func() *Error { return oneOf("gateway.mode", g.Mode, gatewayModes) },
		func() *Error { return portRange("gateway.port", g.Port) },
		func() *Error { return checkBind("gateway.bind", g.Bind) },
		func() *Error {
			for i, spec := range g.Listen {
				if err := CheckListenSpec(spec); err != nil {
					return &Error{Key: fmt.Sprintf("gateway.listen[%d]", i), Msg: err.Error()}
				}
			}
			return nil
		},
		func() *Error { return oneOf("gateway.auth.mode", g.Auth.Mode, authModes) },
		func() *Error { return checkSecret("gateway.auth.token", g.Auth.Token) },
		func() *Error { return checkSecret("gateway.auth.password", g.Auth.Password) },
		func() *Error {
			return intRange("gateway.auth.rateLimit.maxAttempts", g.Auth.RateLimit.MaxAttempts, 0, 1_000_000)
		},
		func() *Error {
			return intRange("gateway.auth.rateLimit.windowMs", g.Auth.RateLimit.WindowMs, 0, maxIntervalMs)
		},
		func() *Error {
			return intRange("gateway.auth.rateLimit.lockoutMs", g.Auth.RateLimit.LockoutMs, 0, maxIntervalMs)
		},
		func() *Error { return oneOf("gateway.reload.mode", g.Reload.Mode, reloadModes) },
		func() *Error { return intRange("gateway.reload.debounceMs", g.Reload.DebounceMs, 0, maxDebounceMs) },
		func() *Error {
			for i, o := range g.ControlUI.AllowedOrigins {
				if err := checkOrigin(o); err != nil {
					return &Error{Key: fmt.Sprintf("gateway.controlUi.allowedOrigins[%d]", i), Msg: err.Error()}
				}
			}
			return nil
		},
		func() *Error { return interval("gateway.tickIntervalMs", g.TickIntervalMs) },
		func() *Error {
			for i, h := range g.AllowedHosts {
				if h != "*" && (h == "" || strings.ContainsAny(h, "/:@ ") && !strings.HasPrefix(h, "[")) {
					return &Error{Key: fmt.Sprintf("gateway.allowedHosts[%d]", i), Msg: fmt.Sprintf("%q is not a host name (give a name like gateway.example.lan, no scheme, port or path; or \"*\")", h)}
				}
			}
			return nil
		},
		func() *Error {
			return intRange("gateway.limits.maxConnections", g.Limits.MaxConnections, 0, 10_000_000)
		},
		func() *Error {
			return intRange("gateway.limits.maxPreAuthPerIp", g.Limits.MaxPreAuthPerIP, 0, 10_000_000)
		},
		func() *Error { return interval("gateway.healthIntervalMs", g.HealthIntervalMs) },
		func() *Error { return oneOf("logging.level", c.Logging.Level, logLevels) },
		func() *Error {
			if c.Logging.MaxFileBytes < 0 {
				return &Error{Key: "logging.maxFileBytes", Msg: fmt.Sprintf("%d is negative (use a size in bytes, or leave it out for %d)", c.Logging.MaxFileBytes, DefaultMaxFileBytes)}
			}
			return nil
		},
		func() *Error { return intRange("logging.maxFiles", c.Logging.MaxFiles, 0, maxLogFiles) },
		c.Agents.validate,
		c.HTTP.validate,
		c.Channels.validate,
		c.Tools.validate,
		c.Hooks.validate,
		c.Nodes.validate,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func oneOf(key, v string, allowed []string) *Error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

func intRange(key string, v, lo, hi int) *Error {
	if v >= lo && v <= hi {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (%d to %d; 0 or left out means the default)", v, lo, hi)}
}

func interval(key string, v int) *Error {
	if v == 0 || (v >= minIntervalMs && v <= maxIntervalMs) {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (%d to %d milliseconds; leave it out for the default)", v, minIntervalMs, maxIntervalMs)}
}

func portRange(key string, v int) *Error {
	if v >= 0 && v <= 65535 {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is not a TCP port (1 to 65535; leave it out for the profile's default port)", v)}
}

func checkBind(key, v string) *Error {
	if v == "" || v == BindLoopback || v == BindLAN {
		return nil
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%q is not %q, %q or an IP address", v, BindLoopback, BindLAN)}
}

func checkSecret(key, v string) *Error {
	if v != "" && strings.TrimSpace(v) != v {
		return &Error{Key: key, Msg: "has leading or trailing white space (remove it; clients would not send it)"}
	}
	return nil
}

// CheckListenSpec checks one listen spec: systemd:NAME (a socket unit's
// FileDescriptorName=), launchd:NAME (a Sockets key of the plist), unix:PATH
// (an absolute socket path) or HOST:PORT (HOST may be empty or an IP
// address or name; IPv6 in brackets).
func CheckListenSpec(spec string) error {
	kind, rest, found := strings.Cut(spec, ":")
	switch {
	case found && kind == "systemd":
		if rest == "" || len(rest) > 255 || strings.ContainsAny(rest, ": \t\n") {
			return fmt.Errorf("%q: a systemd socket name must be 1 to 255 characters without colons or white space (the socket unit's FileDescriptorName=)", spec)
		}
		return nil
	case found && kind == "launchd":
		if rest == "" || strings.ContainsAny(rest, " \t\n") {
			return fmt.Errorf("%q: a launchd socket name must be the non-empty key under Sockets in the plist", spec)
		}
		return nil
	case found && kind == "unix":
		if !strings.HasPrefix(rest, "/") {
			return fmt.Errorf("%q: a unix socket path must be absolute, like unix:/run/gatewayd/gateway.sock", spec)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(spec)
	if err != nil {
		return fmt.Errorf("%q is not systemd:NAME, launchd:NAME, unix:PATH or HOST:PORT: %w", spec, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", spec, port)
	}
	if strings.ContainsAny(host, " \t\n/") {
		return fmt.Errorf("%q: host %q is not an IP address or host name", spec, host)
	}
	return nil
}

func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("%q is not an origin like https://ops.example.com:8443", RedactURL(o))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin like https://ops.example.com:8443 (scheme http or https, a host, no path) or \"*\"", RedactURL(o))
	}
	return nil
}
