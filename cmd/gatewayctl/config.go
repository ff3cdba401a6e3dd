package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/startcheck"
)

// ExitConfig is config validate's status for an invalid config: 78
// (EX_CONFIG), the same as gatewayd --check-config and gatewayd's startup.
const ExitConfig = config.ExitConfig

// validateReport is the stable JSON of `gatewayctl config validate --json`.
type validateReport struct {
	OK      bool   `json:"ok"`
	Path    string `json:"path"`
	Exists  bool   `json:"exists"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message,omitempty"`
}

func (a *app) configCommand() *ffcli.Command {
	fs := a.flagSet("config")
	return &ffcli.Command{
		Name:       "config",
		ShortUsage: "gatewayctl config <subcommand>",
		ShortHelp:  "Work with the gateway's config file without a running gateway.",
		LongHelp:   "Commands on the profile's config file. They read the file directly: no gateway is needed.",
		FlagSet:    fs,
		Subcommands: []*ffcli.Command{
			a.configValidateCommand(),
		},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("unknown config subcommand %q (try gatewayctl config validate)", args[0]))
			}
			return usageErr(errors.New("config needs a subcommand: validate"))
		},
	}
}

func (a *app) configValidateCommand() *ffcli.Command {
	fs := a.flagSet("config validate")
	path := fs.String("config", "", "config `file` to check (default: the profile's config.json; env GATEWAY_CONFIG_PATH)")
	return &ffcli.Command{
		Name:       "validate",
		ShortUsage: "gatewayctl config validate [--config PATH] [--profile NAME|--dev] [--json]",
		ShortHelp:  "Check the config file as gatewayd would at startup; exit 0 or 78.",
		LongHelp: `Loads and checks the config file exactly as gatewayd does at startup, the
same check as gatewayd --check-config: strict JSON, unknown and duplicate
keys, types and values, gateway.mode, the listen settings, and auth for the
address it would bind (a non-loopback bind needs an explicit token or
password). GATEWAY_PORT, GATEWAY_BIND, GATEWAY_LISTEN, GATEWAY_TOKEN and
GATEWAY_PASSWORD in the environment count as they do for gatewayd. It binds
nothing and writes nothing; no gateway is needed.

Prints "config ok: PATH" and exits 0, or prints PATH:LINE:COL: KEY: message
on stderr and exits 78 (EX_CONFIG). A missing file is valid (the defaults).
Secret values are never printed. --json prints
{"ok","path","exists","line"?,"column"?,"key"?,"message"?}.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("config validate takes no arguments, got %q (use --config PATH)", args))
			}
			return a.configValidate(*path)
		},
	}
}

func (a *app) configValidate(path string) error {
	name := a.g.profile
	if name == "" {
		name = a.getenv("GATEWAY_PROFILE")
	}
	p, err := config.NewProfile(name, a.g.dev)
	if err != nil {
		return usageErr(err)
	}
	paths := config.ResolvePaths(p, config.DefaultScope(), a.getenv)
	if path == "" {
		path = a.getenv("GATEWAY_CONFIG") // gatewayd's --config as environment
	}
	if path != "" {
		paths.ConfigPath = path
	}
	ov, err := envOverrides(a.getenv)
	if err != nil {
		return usageErr(err)
	}
	verr := startcheck.CheckConfig(paths.ConfigPath, ov, p)
	_, statErr := os.Stat(paths.ConfigPath)
	r := validateReport{OK: verr == nil, Path: paths.ConfigPath, Exists: statErr == nil}
	if verr != nil {
		r.Line, r.Column, r.Key, r.Message = verr.Line, verr.Col, verr.Key, verr.Msg
	}
	switch {
	case a.g.json:
		if err := writeValue(a.stdout, r); err != nil {
			return err
		}
	case verr == nil:
		fmt.Fprintln(a.stdout, "config ok:", paths.ConfigPath)
	default:
		fmt.Fprintln(a.stderr, verr.Located())
	}
	if verr != nil {
		return silent(withCode(ExitConfig, verr))
	}
	return nil
}

// envOverrides reads the GATEWAY_* settings gatewayd takes from its
// environment (gatewayd's flags, as ff reads them).
func envOverrides(getenv func(string) string) (startcheck.Overrides, error) {
	ov := startcheck.Overrides{Set: map[string]bool{}}
	if v := getenv("GATEWAY_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return ov, fmt.Errorf("GATEWAY_PORT=%q is not a port number", v)
		}
		ov.Port, ov.Set["port"] = n, true
	}
	if v := getenv("GATEWAY_BIND"); v != "" {
		ov.Bind, ov.Set["bind"] = v, true
	}
	if v := getenv("GATEWAY_LISTEN"); v != "" {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				ov.Listen = append(ov.Listen, s)
			}
		}
	}
	if v := getenv("GATEWAY_TOKEN"); v != "" {
		ov.Token, ov.Set["token"] = v, true
	}
	if v := getenv("GATEWAY_PASSWORD"); v != "" {
		ov.Password, ov.Set["password"] = v, true
	}
	return ov, nil
}
