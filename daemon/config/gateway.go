package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

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

// Values and defaults of the "gateway" section.
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

	// The connection caps of gateway.limits. WithDefaults leaves the
	// keys 0 (config.get shows them unset); the gateway applies these.
	DefaultMaxConnections  = 16384
	DefaultMaxPreAuthPerIP = 512

	maxDebounceMs = 60000
)

var (
	gatewayModes = []string{ModeLocal, ModeRemote}
	authModes    = []string{AuthToken, AuthPassword, AuthNone}
	reloadModes  = []string{ReloadOff, ReloadHot, ReloadRestart, ReloadHybrid}
)

func (g *GatewayConfig) withDefaults() {
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
}

func (g *GatewayConfig) unshare() {
	g.Listen = slices.Clone(g.Listen)
	g.ControlUI.AllowedOrigins = slices.Clone(g.ControlUI.AllowedOrigins)
	g.ControlUI.Enabled = clonePtr(g.ControlUI.Enabled)
	g.AllowedHosts = slices.Clone(g.AllowedHosts)
}

func (g *GatewayConfig) validate() *Error {
	return firstError(
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
	)
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
