package lifecycle

import (
	"errors"
	"fmt"

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
func CheckConfig(o Options) *config.Error {
	path := o.Paths.ConfigPath
	loaded, err := config.Load(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return ce
		}
		return &config.Error{File: path, Msg: config.ScrubText(err.Error())}
	}
	cfg, err := Effective(loaded.Config, o.Overrides, o.Profile, path)
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
		switch sp.Kind {
		case listen.KindTCP:
			addrs = append(addrs, sp.Addr)
		case listen.KindUnix:
			addrs = append(addrs, listen.KindUnix+":"+sp.Addr)
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
