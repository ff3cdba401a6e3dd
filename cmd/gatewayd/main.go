// Command gatewayd is the gateway daemon: flags → config → run. It takes its
// listening sockets from systemd socket activation, launchd, or binds them
// itself, and reports readiness, status, watchdog, reload and stop to the
// service manager. See `gatewayd --help`, docs/man/gatewayd.8.md and
// docs/runbook.md.
//
// The process's life (listeners, auth, reload, restart, stop) is
// daemon/lifecycle; this command parses flags and wires the features.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/lifecycle"
	"github.com/gatewayd/gatewayd/daemon/startcheck"
	"github.com/peterbourgon/ff/v3"
)

// Exit statuses. 78 (EX_CONFIG) is fatal misconfiguration: units say
// RestartPreventExitStatus=78 so systemd does not restart-loop on it.
const (
	exitOK     = lifecycle.ExitOK
	exitUsage  = lifecycle.ExitUsage
	exitConfig = lifecycle.ExitConfig
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// flags are gatewayd's command line, each also settable as GATEWAY_<NAME>.
type flags struct {
	port     int
	bind     string
	listen   listFlag
	token    string
	password string
	config   string
	profile  string
	dev      bool
	verbose  bool
	force    bool
	version  bool
	check    bool
	set      map[string]bool // flags given on the command line or in the environment
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.port, "port", 0, "TCP port (default: gateway.port from the config, else the profile's port: 18789, --dev 19001)")
	fs.StringVar(&f.bind, "bind", "", "bind address: loopback (default), lan, or an IP address")
	fs.Var(&f.listen, "listen", "explicit listen address, repeatable: systemd:NAME, launchd:NAME, unix:PATH, HOST:PORT")
	fs.StringVar(&f.token, "token", "", "shared-secret token clients must present (default: gateway.auth.token, else a generated one in the state dir)")
	fs.StringVar(&f.password, "password", "", "shared-secret password (auth mode password)")
	fs.StringVar(&f.config, "config", "", "config file (default: the profile's config.json; env GATEWAY_CONFIG_PATH)")
	fs.StringVar(&f.profile, "profile", "", "profile name: isolated config, state, logs, port and units")
	fs.BoolVar(&f.dev, "dev", false, "use the dev profile (port 19001)")
	fs.BoolVar(&f.verbose, "verbose", false, "debug logging")
	fs.BoolVar(&f.force, "force", false, "if the port is taken, stop the process listening on it (SIGTERM) and start")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.check, "check-config", false, "load and check the config as startup would (file, flags, environment, auth for the bind address), bind nothing, write nothing; exit 0 with \"config ok: PATH\", or 78 with PATH:LINE:COL: message")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gatewayd [flags]\n\nThe gateway daemon. Every flag can also be set as GATEWAY_<FLAG> (e.g. GATEWAY_PORT).\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nExit status: 0 stopped cleanly (--check-config: the config is valid); 1 runtime failure (e.g. port in use); 2 usage; 78 fatal misconfiguration (--check-config: the config is invalid).\n")
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("GATEWAY")); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (gatewayd takes only flags; see gatewayd --help)", fs.Arg(0))
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return exitUsage
	}
	if f.version {
		fmt.Fprintln(stdout, "gatewayd", buildinfo.Get().Version)
		return exitOK
	}
	profile, err := config.NewProfile(f.profile, f.dev)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return exitUsage
	}
	paths := config.ResolvePaths(profile, config.DefaultScope(), os.Getenv)
	if f.config != "" {
		paths.ConfigPath = f.config
	}
	o := lifecycle.Options{Profile: profile, Paths: paths, Version: buildinfo.Get().Version, Stderr: stderr,
		Getenv: os.Getenv, Features: features(), Probe: probeGateway,
		Overrides: startcheck.Overrides{Port: f.port, Bind: f.bind, Listen: f.listen, Token: f.token, Password: f.password,
			Set: f.set, Verbose: f.verbose, Force: f.force}}
	if f.check {
		if e := startcheck.CheckConfig(o.Paths.ConfigPath, o.Overrides, o.Profile); e != nil {
			fmt.Fprintln(stderr, e.Located())
			return exitConfig
		}
		fmt.Fprintln(stdout, "config ok:", paths.ConfigPath)
		return exitOK
	}
	d, code := lifecycle.New(o)
	if d == nil {
		return code
	}
	if w := secretFlagWarning(args); w != "" {
		d.Logger().Warn(w)
	}
	return d.Run(context.Background())
}

// probeGateway reports whether the thing on addr speaks our protocol: a
// gateway sends connect.challenge right after the WebSocket opens.
func probeGateway(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	return probeChallenge(ctx, addr)
}

// features converts featureConstructors for the lifecycle package.
func features() []lifecycle.FeatureConstructor {
	out := make([]lifecycle.FeatureConstructor, 0, len(featureConstructors))
	for _, c := range featureConstructors {
		out = append(out, c)
	}
	return out
}
