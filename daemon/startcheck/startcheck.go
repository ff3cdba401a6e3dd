// Package startcheck is what gatewayd settles about its config before it
// starts: the overrides from its flags and GATEWAY_* environment on top of
// the config file (Effective), and the checks of the result that startup
// runs (CheckAuth, CheckConfig). gatewayd's lifecycle uses it at start and
// on every reload; `gatewayctl config validate` runs the same checks
// without linking the server.
package startcheck

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/platform/listen"
)

// CheckConfig loads and checks the config as startup would: the file, the
// overrides on top of it, the listen settings, and the authentication for
// the addresses it would bind (a non-loopback bind needs an explicit token
// or password). It binds nothing, logs nothing and writes nothing (the
// token file is not created). It returns nil, or the problem as a
// *config.Error that names the file and, where the offending key is in the
// file, its line and column. It never quotes a secret.
//
// Sockets handed over by systemd or launchd (--listen systemd:NAME) are not
// known before startup: their addresses are not checked.
func CheckConfig(path string, ov Overrides, profile config.Profile) *config.Error {
	loaded, err := config.Load(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return ce
		}
		return &config.Error{File: path, Msg: config.ScrubText(err.Error())}
	}
	cfg, err := Effective(loaded.Config, ov, profile, path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			out := loaded.ErrorAt(ce.Key, ce.Msg)
			if ce.Key != "gateway.mode" {
				out.Msg += " (set by the config file, a flag or GATEWAY_* environment)"
			}
			return out
		}
		return &config.Error{File: path, Msg: config.ScrubText(err.Error())}
	}
	var addrs []string
	for i, s := range cfg.Gateway.Listen {
		sp, err := listen.ParseSpec(s)
		if err != nil {
			return loaded.ErrorAt(fmt.Sprintf("gateway.listen[%d]", i), err.Error())
		}
		if sp.BoundByDaemon() {
			addrs = append(addrs, sp.String())
		}
	}
	if len(cfg.Gateway.Listen) == 0 {
		a, err := listen.BindAddrs(cfg.Gateway.Bind, cfg.Gateway.Port)
		if err != nil {
			return loaded.ErrorAt("gateway.bind", err.Error())
		}
		addrs = a
	}
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:0"} // activation sockets only: check the rest of auth
	}
	if err := CheckAuth(cfg, addrs); err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return loaded.ErrorAt(ae.Key, ae.Msg)
		}
		return &config.Error{File: path, Msg: err.Error()}
	}
	return nil
}

// Overrides are the settings given on the command line or as GATEWAY_*
// environment; they win over the config file.
type Overrides struct {
	Port     int
	Bind     string
	Listen   []string
	Token    string
	Password string
	// Set names the overrides that were given: "port", "bind", "token",
	// "password" (Listen counts when non-empty).
	Set     map[string]bool
	Verbose bool // debug logging whatever logging.level says
	Force   bool // stop the process holding the port (SIGTERM) and start
}

// Effective overlays the overrides on the file's config and checks the
// result; configPath names the file in the remote-mode error.
func Effective(file *config.Config, f Overrides, profile config.Profile, configPath string) (*config.Config, error) {
	c := file.WithDefaults()
	if f.Set["port"] {
		c.Gateway.Port = f.Port
	}
	if c.Gateway.Port == 0 {
		c.Gateway.Port = profile.DefaultPort()
	}
	if f.Set["bind"] {
		c.Gateway.Bind = f.Bind
	}
	if len(f.Listen) > 0 {
		c.Gateway.Listen = append([]string(nil), f.Listen...)
	}
	if f.Set["token"] {
		c.Gateway.Auth.Token = f.Token
	}
	if f.Set["password"] {
		c.Gateway.Auth.Password = f.Password
		if c.Gateway.Auth.Token == "" && (file.Gateway.Auth.Mode == "" || file.Gateway.Auth.Mode == config.AuthToken) {
			c.Gateway.Auth.Mode = config.AuthPassword
		}
	}
	if c.Gateway.Mode == config.ModeRemote {
		return nil, &config.Error{Key: "gateway.mode", Msg: "Gateway start blocked: set gateway.mode=local (this host's config says the gateway runs elsewhere: " + configPath + ")"}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid setting from flags or GATEWAY_* environment: %w", err)
	}
	return c, nil
}

// AuthError is an authentication setting that cannot serve the addresses:
// Key is the config key to point at.
type AuthError struct {
	Key string
	Msg string
}

func (e *AuthError) Error() string { return e.Msg }

// CheckAuth checks c's authentication against the addresses it is served
// on, without touching the token file: exposing the gateway beyond
// loopback needs an explicit token or password, and password mode needs a
// password.
func CheckAuth(c *config.Config, addrs []string) error {
	a := c.Gateway.Auth
	mode := a.Mode
	if mode == "" {
		mode = config.AuthToken
	}
	explicit := (mode == config.AuthToken && a.Token != "") || (mode == config.AuthPassword && a.Password != "")
	if !listen.IsLoopbackOnly(addrs) && !explicit {
		key := "gateway.bind"
		if len(c.Gateway.Listen) > 0 {
			key = "gateway.listen"
		}
		return &AuthError{Key: key, Msg: fmt.Sprintf("refusing to bind gateway to %s without auth (set gateway.auth.token/password, or GATEWAY_TOKEN/GATEWAY_PASSWORD)", strings.Join(addrs, ", "))}
	}
	if mode == config.AuthPassword && a.Password == "" {
		return &AuthError{Key: "gateway.auth.mode", Msg: "gateway.auth.mode is password but no password is set (set gateway.auth.password or GATEWAY_PASSWORD)"}
	}
	return nil
}
