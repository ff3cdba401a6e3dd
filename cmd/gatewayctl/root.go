package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// globalFlags are accepted by every command, before or after its name.
type globalFlags struct {
	url        string
	token      string
	tokenFile  string
	password   string
	insecureWS bool
	profile    string
	dev        bool
	json       bool
	timeout    time.Duration
	verbose    bool
}

// app is the state shared by the commands of one gatewayctl run.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globalFlags
}

// Scopes requested per command: reads ask for operator.read only (as the
// OpenClaw CLI does); call and bench may run any method, so they ask for all
// operator scopes (a shared-secret operator is granted what it asks for).
var (
	readScopes = []string{protocol.ScopeRead}
	allScopes  = []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopeAdmin,
		protocol.ScopeApprovals, protocol.ScopePairing}
)

const rootLongHelp = `gatewayctl is the operator CLI of gatewayd. It talks to the gateway over the
Gateway WebSocket protocol v4 as client "cli" (so it works with any gateway
of that protocol) and, for install/status, to the host's service manager.

TARGET
  --url, else $GATEWAY_URL, else ws://127.0.0.1:PORT where PORT is
  $GATEWAY_PORT, else gateway.port in the profile's config file, else the
  profile's default (18789; --dev 19001; a named profile gets a stable port
  derived from its name).

SECRET
  --token / --password / --token-file, else $GATEWAY_TOKEN /
  $GATEWAY_PASSWORD, else gateway.auth.token|password in the config file,
  else the token file the gateway wrote in its state directory (this user's
  scope first, then the other scope's if readable). Global flags work before
  or after the command name; $GATEWAY_PROFILE selects a profile like
  --profile.

REMOTE GATEWAYS
  A --url (or $GATEWAY_URL) whose host is not loopback (127.0.0.0/8, ::1,
  localhost) gets only a secret given for it: --token, --password or
  --token-file ($GATEWAY_TOKEN / $GATEWAY_PASSWORD too when the URL came
  from $GATEWAY_URL); this host's config and token file are never sent
  there. Plain ws:// off loopback is refused (the secret and all traffic
  would be unencrypted): use wss://, or pass --insecure-ws on a network you
  trust.

` + exitCodesHelp

// newRootCommand builds gatewayctl's command tree. Other commands (install,
// doctor, …) are added to the returned command's Subcommands; the shell
// completions are generated from the tree.
func newRootCommand(stdout, stderr io.Writer) *ffcli.Command {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := &ffcli.Command{
		Name:       "gatewayctl",
		ShortUsage: "gatewayctl [global flags] <command> [flags] [args]",
		ShortHelp:  "Operate a gatewayd gateway: health, status, RPC calls, logs, benchmarks.",
		LongHelp:   rootLongHelp,
		FlagSet:    a.flagSet("gatewayctl"),
	}
	root.Exec = func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usageErr(fmt.Errorf("unknown command %q (run gatewayctl -h for the list)", args[0]))
		}
		fmt.Fprintln(stderr, ffcli.DefaultUsageFunc(root))
		return usageErr(errors.New("no command given (run gatewayctl -h for the list)"))
	}
	root.Subcommands = []*ffcli.Command{
		a.healthCommand(),
		a.statusCommand(),
		a.callCommand(),
		a.logsCommand(),
		a.benchCommand(),
		a.versionCommand(),
		a.completionCommand(root),
		a.installCommand(),
		a.uninstallCommand(),
		a.startCommand(),
		a.stopCommand(),
		a.restartCommand(),
		a.doctorCommand(),
		a.agentCommand(),
		a.messageCommand(),
		a.channelsCommand(),
		a.nodesCommand(),
		a.pairingCommand(),
		a.configCommand(),
		a.dashboardCommand(),
	}
	return root
}

// flagSet returns a FlagSet for one command with the global flags on it, so
// `gatewayctl health --json` and `gatewayctl --json health` both work.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.g.url, "url", "", "gateway `URL` (ws://HOST:PORT; env GATEWAY_URL)")
	fs.StringVar(&a.g.token, "token", "", "gateway auth `token` (env GATEWAY_TOKEN)")
	fs.StringVar(&a.g.password, "password", "", "gateway auth `password` (env GATEWAY_PASSWORD)")
	fs.StringVar(&a.g.tokenFile, "token-file", "", "read the gateway auth token from `file` (keeps it out of ps and shell history)")
	fs.BoolVar(&a.g.insecureWS, "insecure-ws", false, "allow plain ws:// to a non-loopback --url (the secret and traffic are unencrypted)")
	fs.StringVar(&a.g.profile, "profile", "", "profile `name` (env GATEWAY_PROFILE)")
	fs.BoolVar(&a.g.dev, "dev", false, "use the dev profile (port 19001)")
	fs.BoolVar(&a.g.json, "json", false, "print JSON for scripts")
	fs.DurationVar(&a.g.timeout, "timeout", 10*time.Second, "bound for connecting and for each call")
	fs.BoolVar(&a.g.verbose, "verbose", false, "log protocol details to stderr")
	return fs
}

// logger returns the client logger: warnings only, or debug with --verbose.
func (a *app) logger() *slog.Logger {
	level := slog.LevelWarn
	if a.g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

// target is where and how to reach the gateway, and where that came from.
type target struct {
	URL          string
	URLSource    string
	Profile      config.Profile
	Paths        config.Paths
	Config       *config.Loaded // nil when the file could not be loaded
	ConfigErr    error
	Token        string
	Password     string
	SecretSource string
	SecretNote   string // why no secret was found, when none was
	TokenFile    string // the token file to point operators at
	// Remote: the URL was given (--url, GATEWAY_URL) and its host is not
	// loopback, so only a secret given for it is sent.
	Remote    bool
	secretErr error // --token-file could not be used
}

// resolve works out the target and secret from flags, environment, the
// profile's config file and its token file.
func (a *app) resolve() (*target, error) {
	name := a.g.profile
	if name == "" {
		name = a.getenv("GATEWAY_PROFILE")
	}
	p, err := config.NewProfile(name, a.g.dev)
	if err != nil {
		return nil, usageErr(err)
	}
	t := &target{Profile: p, Paths: config.ResolvePaths(p, config.DefaultScope(), a.getenv)}
	t.Config, t.ConfigErr = config.Load(t.Paths.ConfigPath)
	if t.ConfigErr != nil {
		t.Config = nil
	}
	if err := a.resolveURL(t); err != nil {
		return nil, err
	}
	a.resolveSecret(t)
	if t.secretErr != nil {
		return nil, t.secretErr
	}
	return t, nil
}

// isLoopbackHost reports whether host (a URL's host, without port) names
// this machine's loopback interface.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

func (a *app) resolveURL(t *target) error {
	switch {
	case a.g.url != "":
		t.URL, t.URLSource = a.g.url, "--url"
	case a.getenv("GATEWAY_URL") != "":
		t.URL, t.URLSource = a.getenv("GATEWAY_URL"), "GATEWAY_URL"
	}
	if t.URL != "" {
		u, err := client.NormalizeURL(t.URL)
		if err != nil {
			return usageErr(err)
		}
		t.URL = strings.TrimSuffix(u, "/")
		pu, err := url.Parse(u)
		if err != nil {
			return usageErr(fmt.Errorf("gateway URL %q: %w", t.URL, err))
		}
		if !isLoopbackHost(pu.Hostname()) {
			t.Remote = true
			if pu.Scheme == "ws" && !a.g.insecureWS {
				return usageErr(fmt.Errorf("refusing plain ws:// to %s (from %s), which is not loopback: the secret and all traffic would cross the network unencrypted; use wss:// (TLS in front of the gateway, or an SSH tunnel to its loopback port), or pass --insecure-ws on a network you trust",
					pu.Host, t.URLSource))
			}
		}
		return nil
	}
	host := "127.0.0.1"
	port, src := t.Profile.DefaultPort(), "profile "+t.Profile.Name()+" default"
	if t.Config != nil {
		if t.Config.Config.Gateway.Port != 0 {
			port, src = t.Config.Config.Gateway.Port, "gateway.port in "+t.Config.Path
		}
		// A gateway bound to one specific address is not on 127.0.0.1.
		if ip, err := netip.ParseAddr(t.Config.Config.Gateway.Bind); err == nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			host = ip.String()
		}
	}
	if s := a.getenv("GATEWAY_PORT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return usageErr(fmt.Errorf("GATEWAY_PORT=%q is not a port number 1-65535 (fix or unset it)", s))
		}
		port, src = n, "GATEWAY_PORT"
	}
	t.URL = "ws://" + net.JoinHostPort(host, strconv.Itoa(port))
	t.URLSource = src
	return nil
}

func (a *app) resolveSecret(t *target) {
	t.TokenFile = t.Paths.TokenFile
	switch {
	case a.g.tokenFile != "":
		if a.g.token != "" {
			t.secretErr = usageErr(errors.New("--token and --token-file both given (pass one)"))
			return
		}
		b, err := os.ReadFile(a.g.tokenFile)
		tok := strings.TrimSpace(string(b))
		if err == nil && tok == "" {
			err = errors.New("the file is empty (write the gateway's token into it)")
		}
		if err != nil {
			t.secretErr = usageErr(fmt.Errorf("--token-file %s: %w", a.g.tokenFile, err))
			return
		}
		t.Token, t.Password = tok, a.g.password
		t.SecretSource = "--token-file " + a.g.tokenFile
		if t.Password != "" {
			t.SecretSource += " and --password"
		}
		return
	case a.g.token != "" || a.g.password != "":
		t.Token, t.Password = a.g.token, a.g.password
		t.SecretSource = secretSource("--token", "--password", t)
		return
	case (!t.Remote || t.URLSource == "GATEWAY_URL") && (a.getenv("GATEWAY_TOKEN") != "" || a.getenv("GATEWAY_PASSWORD") != ""):
		t.Token, t.Password = a.getenv("GATEWAY_TOKEN"), a.getenv("GATEWAY_PASSWORD")
		t.SecretSource = secretSource("GATEWAY_TOKEN", "GATEWAY_PASSWORD", t)
		return
	case t.Remote:
		// This host's secrets are for this host's gateway.
		t.SecretSource = "none (this host's token is not sent off loopback)"
		t.SecretNote = "the URL " + t.URL + " is not loopback, so this host's token is not sent there"
		return
	}
	if t.Config != nil {
		auth := t.Config.Config.Gateway.Auth
		if auth.Mode == "none" {
			t.SecretSource = "none (gateway.auth.mode is none)"
			return
		}
		if auth.Token != "" || auth.Password != "" {
			t.Token, t.Password = auth.Token, auth.Password
			t.SecretSource = secretSource("gateway.auth.token", "gateway.auth.password", t) + " in " + t.Config.Path
			return
		}
	}
	// The token file: this scope's, then the other scope's when readable
	// (an operator running gatewayctl as themselves against the system
	// gateway, or as root against their user gateway).
	files := []string{t.Paths.TokenFile}
	other := config.ScopeSystem
	if t.Paths.Scope == config.ScopeSystem {
		other = config.ScopeUser
	}
	if f := config.ResolvePaths(t.Profile, other, a.getenv).TokenFile; f != t.Paths.TokenFile {
		files = append(files, f)
	}
	var firstErr error
	for _, f := range files {
		tok, err := config.ReadToken(f)
		if err == nil {
			t.Token, t.TokenFile = tok, f
			t.SecretSource = "token file " + f
			return
		}
		if firstErr == nil {
			firstErr = err
		}
		if _, serr := os.Stat(f); serr == nil && t.TokenFile == t.Paths.TokenFile {
			t.TokenFile = f // exists but unreadable: still the file to point at
		}
	}
	t.SecretSource = "none"
	if firstErr != nil {
		t.SecretNote = firstErr.Error()
	}
}

func secretSource(tokenName, passwordName string, t *target) string {
	switch {
	case t.Token != "" && t.Password != "":
		return tokenName + " and " + passwordName
	case t.Password != "":
		return passwordName
	}
	return tokenName
}

// dial connects to the target, turning auth failures into errors that say
// where this host's token is.
func (a *app) dial(ctx context.Context, t *target, scopes []string) (*client.Conn, error) {
	dial := func() (*client.Conn, error) {
		return client.Dial(ctx, client.Options{
			URL:              t.URL,
			Token:            t.Token,
			Password:         t.Password,
			Scopes:           scopes,
			HandshakeTimeout: a.g.timeout,
			Logger:           a.logger(),
		})
	}
	c, err := dial()
	if err != nil && firstStart(t, err) {
		c, err = a.afterFirstStart(ctx, t, dial, err) // see firststart.go
	}
	if err != nil {
		var de *client.DialError
		if errors.As(err, &de) {
			de.URL = t.URL
			if de.IsAuth() && de.DetailCode() != protocol.DetailAuthRateLimited {
				de.Fix = a.authFix(t, de)
			}
		}
		return nil, err
	}
	return c, nil
}

func (a *app) authFix(t *target, de *client.DialError) string {
	if t.Remote {
		return "pass --token, --token-file or --password with the secret of the gateway at " + t.URL +
			" (this host's token is never sent to a URL that is not loopback)"
	}
	fix := "pass --token or set GATEWAY_TOKEN"
	if de.DetailCode() == protocol.DetailAuthPasswordMismatch {
		fix = "pass --password or set GATEWAY_PASSWORD"
	}
	fix += "; on this host the token is in " + t.TokenFile
	if t.SecretSource != "" && t.SecretSource != "none" {
		fix += " (this attempt used " + t.SecretSource + ")"
	} else if t.SecretNote != "" {
		fix += " (no secret was sent: " + t.SecretNote + ")"
	}
	return fix
}

// callCtx returns a context bounded by --timeout.
func (a *app) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.g.timeout)
}

// parseInterspersed parses flags that follow positional arguments (the flag
// package stops at the first positional): `call METHOD --params {}`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 {
		if len(args) == 0 {
			break
		}
		if err := fs.Parse(args); err != nil {
			return nil, usageErr(err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}
