// Package lifecycle is one gatewayd process's life: load the config,
// acquire the listening sockets, resolve authentication, start the
// features, serve server generations, and react to reloads (file changes,
// SIGHUP), in-process restarts (SIGUSR1, restart-required changes) and
// stops (SIGTERM, SIGINT) until the process exits.
//
// Everything the outside world hands the daemon is a parameter (Options):
// how listeners are acquired, the service-manager notifier, the signal
// channel and the feature constructors, so tests drive every transition
// in-process. cmd/gatewayd only parses flags and wires the features.
//
// The rules it keeps:
//   - A reload is all or nothing. A new config is checked against the
//     addresses it would be served on after a restart (bind, port,
//     listen) as well as the current ones, before anything is applied or
//     re-bound: a config that startup would refuse (a non-loopback bind
//     without an explicit secret, say) is refused, and the gateway keeps
//     serving with the same listeners and auth.
//   - A restart checks the new settings before it closes anything, and
//     never serves with settings it could not build.
//   - A restart-required change stays pending until a restart applies it;
//     the status line says so and never claims "last reload ok" while one
//     is pending.
//   - Errors shown in health, status, STATUS= and the log are scrubbed of
//     secrets (config.ScrubText).
//   - Every exit, even a failed re-bind, returns from Run through the
//     feature, store and log closes.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/config/configwatch"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/daemon/startcheck"
	"github.com/gatewayd/gatewayd/daemon/store"
	"github.com/gatewayd/gatewayd/platform/listen"
	"github.com/gatewayd/gatewayd/platform/notify"
	"github.com/gatewayd/gatewayd/platform/procs"
)

// Exit statuses. 78 (EX_CONFIG) is fatal misconfiguration: units say
// RestartPreventExitStatus=78 so systemd does not restart-loop on it.
const (
	ExitOK        = 0
	ExitFailure   = 1
	ExitUsage     = 2
	ExitConfig    = config.ExitConfig
	ExitPortInUse = 1
)

// ListenFunc acquires the listening sockets: activation fds, explicit specs
// or a bind of the fallback addresses (listen.Acquire).
type ListenFunc func(specs []listen.Spec, fallback []string, log *slog.Logger) (*listen.Set, error)

// Options are what the daemon takes from its surroundings.
type Options struct {
	Profile   config.Profile
	Paths     config.Paths
	Overrides startcheck.Overrides
	Version   string
	// Stderr gets the text log and the errors before the log exists.
	Stderr io.Writer
	// Getenv reads the environment (JOURNAL_STREAM, feature secrets);
	// nil: os.Getenv.
	Getenv func(string) string
	// Notifier reports to the service manager; nil: sd_notify
	// (notify.New).
	Notifier notify.Notifier
	// Listen acquires listeners; nil: listen.Acquire.
	Listen ListenFunc
	// Signals delivers SIGTERM, SIGINT, SIGHUP and SIGUSR1; nil: this
	// process's signals.
	Signals <-chan os.Signal
	// Features build the feature packages, in order.
	Features []FeatureConstructor
	// Probe reports whether a gateway of this protocol answers on addr
	// (for the "another gateway is listening" message); nil: never.
	Probe func(addr string) bool
}

// Daemon is one gatewayd process.
type Daemon struct {
	o       Options
	paths   config.Paths
	stderr  io.Writer
	getenv  func(string) string
	log     *slog.Logger
	logC    io.Closer
	level   *slog.LevelVar
	notify  notify.Notifier
	started time.Time
	bootID  string

	mu        sync.Mutex
	loaded    *config.Loaded   // last good config file
	cfg       *config.Config   // the config in effect (file + overrides, pending keys at their running values)
	want      *config.Config   // the last good config (file + overrides): what a restart applies
	pending   []string         // restart-required keys where cfg and want differ
	lastErr   string           // last reload error, scrubbed (the last good config keeps serving)
	loadedAt  time.Time        // when loaded was read
	st        gateway.Settings // the settings the current generation serves with
	srv       *gateway.Server  // the current generation
	set       *listen.Set      // the listening sockets
	acceptors []*gateway.Acceptor
	infos     []gateway.ListenerInfo
	restarts  int

	store    *store.Store
	features []Feature
	exts     []gateway.Extension

	changes     chan struct{} // the config file changed
	watchStop   context.CancelFunc
	watchDelay  time.Duration
	runCtx      context.Context
	afterHandle func(event string) // tests: called after each handled event
}

// New loads the config and builds the logger. On failure it has printed
// the problem on o.Stderr and returns nil and the exit status.
func New(o Options) (*Daemon, int) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Listen == nil {
		o.Listen = listen.Acquire
	}
	d := &Daemon{o: o, paths: o.Paths, stderr: o.Stderr, getenv: o.Getenv, started: time.Now(),
		level: new(slog.LevelVar), changes: make(chan struct{}, 1)}
	loaded, err := config.Load(d.paths.ConfigPath)
	if err != nil {
		fmt.Fprintf(d.stderr, "gatewayd: %s\n", config.ScrubText(err.Error()))
		return nil, ExitConfig
	}
	d.loaded, d.loadedAt = loaded, time.Now()
	cfg, err := d.effective(loaded.Config)
	if err != nil {
		fmt.Fprintf(d.stderr, "gatewayd: %s\n", config.ScrubText(err.Error(), loaded.Config.SecretValues()...))
		return nil, ExitConfig
	}
	d.cfg, d.want = cfg, cfg
	d.setLevel(cfg)
	log, closer, err := logs.New(logs.Options{Level: d.level, Stderr: d.stderr, Journal: logs.JournalEnabled(d.getenv),
		FilePath: d.paths.LogFile, MaxBytes: cfg.Logging.MaxFileBytes, MaxFiles: cfg.Logging.MaxFiles})
	if err != nil {
		// No file log is not fatal: say so and keep stderr.
		fmt.Fprintf(d.stderr, "gatewayd: file log disabled: %v (fix the permissions of %s or set GATEWAY_STATE_DIR)\n", err, d.paths.LogDir)
		log, closer, _ = logs.New(logs.Options{Level: d.level, Stderr: d.stderr, Journal: logs.JournalEnabled(d.getenv)})
		d.paths.LogFile = ""
	}
	d.log, d.logC = log, closer
	d.notify = o.Notifier
	if d.notify == nil {
		d.notify = notify.New(log)
	}
	return d, ExitOK
}

// Logger is the daemon's logger (stderr/journal and the JSON-lines file),
// for the command's own startup messages.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// effective overlays the overrides on the file's config: flag/env → config
// file → default, as docs/config.md ("Precedence") orders them.
func (d *Daemon) effective(file *config.Config) (*config.Config, error) {
	return startcheck.Effective(file, d.o.Overrides, d.o.Profile, d.paths.ConfigPath)
}

func (d *Daemon) setLevel(c *config.Config) {
	lvl := slog.LevelInfo
	switch c.Logging.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	if d.o.Overrides.Verbose {
		lvl = slog.LevelDebug
	}
	d.level.Set(lvl)
}

// auth resolves the authentication settings for addrs, generating a token
// on first start when none is configured (loopback only).
func (d *Daemon) auth(c *config.Config, addrs []string) (gateway.AuthSettings, error) {
	a := c.Gateway.Auth
	st := gateway.AuthSettings{Mode: a.Mode, Token: a.Token, Password: a.Password,
		MaxAttempts: a.RateLimit.MaxAttempts, Window: time.Duration(a.RateLimit.WindowMs) * time.Millisecond,
		Lockout: time.Duration(a.RateLimit.LockoutMs) * time.Millisecond}
	if st.Mode == "" {
		st.Mode = config.AuthToken
	}
	if err := startcheck.CheckAuth(c, addrs); err != nil {
		return st, err
	}
	if st.Mode == config.AuthToken && st.Token == "" {
		tok, created, err := config.EnsureToken(d.paths.TokenFile)
		if err != nil {
			return st, fmt.Errorf("no gateway token configured and none could be generated: %w (set GATEWAY_TOKEN, or fix the state directory)", err)
		}
		if created {
			d.log.Info("generated a gateway token; clients on this host read it automatically", "file", d.paths.TokenFile)
		} else {
			d.log.Debug("using the gateway token from the state directory", "file", d.paths.TokenFile)
		}
		st.Token = tok
	}
	return st, nil
}

// settings builds a generation's hot-reloadable settings for addrs.
func (d *Daemon) settings(c *config.Config, addrs []string) (gateway.Settings, error) {
	a, err := d.auth(c, addrs)
	if err != nil {
		return gateway.Settings{}, err
	}
	return gateway.Settings{Auth: a, AllowedOrigins: c.Gateway.ControlUI.AllowedOrigins,
		AllowedHosts: c.Gateway.AllowedHosts, Limits: gateway.Limits{MaxConnections: c.Gateway.Limits.MaxConnections, MaxPreAuthPerIP: c.Gateway.Limits.MaxPreAuthPerIP},
		TickInterval:   time.Duration(c.Gateway.TickIntervalMs) * time.Millisecond,
		HealthInterval: time.Duration(c.Gateway.HealthIntervalMs) * time.Millisecond,
		ReloadMode:     c.Gateway.Reload.Mode}, nil
}

// addrs are the addresses being served.
func (d *Daemon) addrs() []string {
	out := make([]string, 0, len(d.infos))
	for _, i := range d.infos {
		out = append(out, i.Addr)
	}
	return out
}

// listenKeys are the config keys that decide the listeners.
var listenKeys = []string{"gateway.port", "gateway.bind", "gateway.listen"}

func sameListen(a, b *config.Config) bool {
	return a.Gateway.Port == b.Gateway.Port && a.Gateway.Bind == b.Gateway.Bind && slices.Equal(a.Gateway.Listen, b.Gateway.Listen)
}

// planned returns the addresses c would be served on after a restart and
// whether getting there needs a re-bind. Sockets handed over by systemd
// or launchd are kept (their unit decides the address); sockets we bound
// ourselves are re-bound when port, bind or listen change.
func (d *Daemon) planned(c *config.Config) (addrs []string, rebind bool, err error) {
	if d.set == nil || d.set.Source() != listen.SourceBind || sameListen(d.cfg, c) {
		return d.addrs(), false, nil
	}
	if len(c.Gateway.Listen) == 0 {
		a, err := listen.BindAddrs(c.Gateway.Bind, c.Gateway.Port)
		return a, true, err
	}
	for _, s := range c.Gateway.Listen {
		sp, err := listen.ParseSpec(s)
		if err != nil {
			return nil, false, &config.Error{Key: "gateway.listen", Msg: err.Error()}
		}
		if sp.BoundByDaemon() {
			addrs = append(addrs, sp.String())
		} else {
			// An activation socket's address is the unit's: count it as
			// exposed unless it is already being served.
			addrs = append(addrs, "0.0.0.0:0")
		}
	}
	return addrs, true, nil
}

// acquire gets the listening sockets for c: activation, explicit specs or
// a bind.
func (d *Daemon) acquire(c *config.Config) error {
	var specs []listen.Spec
	for _, s := range c.Gateway.Listen {
		sp, err := listen.ParseSpec(s)
		if err != nil {
			return &configError{err}
		}
		specs = append(specs, sp)
	}
	fallback, err := listen.BindAddrs(c.Gateway.Bind, c.Gateway.Port)
	if err != nil {
		return &configError{err}
	}
	set, err := d.o.Listen(specs, fallback, d.log)
	var inUse *listen.AddrInUseError
	if errors.As(err, &inUse) {
		if d.o.Overrides.Force && d.set == nil {
			if ferr := d.forceFree(c.Gateway.Port); ferr != nil {
				return ferr
			}
			set, err = d.o.Listen(specs, fallback, d.log)
		} else if d.o.Probe != nil && d.o.Probe(inUse.Addr) {
			return fmt.Errorf("another gateway instance is already listening on ws://%s (stop it with `gatewayctl stop`, use another --port, or start with --force)", inUse.Addr)
		}
	}
	if err != nil {
		return err
	}
	d.set = set
	d.infos = nil
	d.acceptors = nil
	for _, l := range set.Listeners {
		d.infos = append(d.infos, gateway.ListenerInfo{Addr: l.Addr().String(), Source: l.Source})
		d.acceptors = append(d.acceptors, gateway.NewAcceptor(l.Listener))
		d.log.Info("listening", "addr", l.Addr().String(), "source", l.Source, "name", l.Name)
	}
	return nil
}

type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// forceFree stops whatever listens on port (SIGTERM, never SIGKILL).
func (d *Daemon) forceFree(port int) error {
	holders, err := procs.ListenersOnPort(port)
	if err != nil {
		return fmt.Errorf("--force: %w", err)
	}
	if len(holders) == 0 {
		return fmt.Errorf("--force: port %d is busy but no process holding it was found (it may belong to another user or namespace)", port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range holders {
		if h.PID == os.Getpid() {
			continue
		}
		d.log.Warn("--force: stopping the process listening on the port", "pid", h.PID, "cmdline", h.Cmdline, "addr", h.Addr)
		if err := procs.Terminate(ctx, h.PID, d.log); err != nil {
			return fmt.Errorf("--force: %w", err)
		}
		d.log.Warn("--force: stopped", "pid", h.PID)
	}
	return nil
}

// ConfigInfo is the config.get payload: the last good file, redacted, and
// the last reload error.
func (d *Daemon) ConfigInfo() gateway.ConfigInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gateway.ConfigInfo{Path: d.loaded.Path, Exists: d.loaded.Exists, Valid: d.lastErr == "", Hash: d.loaded.Hash,
		Config: d.loaded.Config.Redacted(), LastError: d.lastErr, LoadedAt: d.loadedAt.UnixMilli()}
}

func (d *Daemon) configStatus() gateway.ConfigStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gateway.ConfigStatus{Path: d.loaded.Path, Valid: d.lastErr == "", LastError: d.lastErr}
}

func (d *Daemon) newServer(st gateway.Settings) *gateway.Server {
	var srv *gateway.Server
	// Only the current generation speaks to the service manager: a
	// draining one's "Stopping; …" must not overwrite the new STATUS=.
	status := func(line string) {
		d.mu.Lock()
		cur := d.srv == srv
		d.mu.Unlock()
		if cur {
			d.notify.Status(line)
		}
	}
	srv = gateway.New(gateway.Options{Settings: st, Logger: d.log, Version: d.o.Version,
		Profile: d.o.Profile.Name(), ConfigPath: d.paths.ConfigPath, StateDir: d.paths.StateDir, LogFile: d.paths.LogFile,
		Listeners: d.infos, Config: d.ConfigInfo, ConfigStatus: d.configStatus, Notify: status, StartedAt: d.started, BootID: d.bootID,
		RestartCount: d.restarts, Extensions: d.exts})
	return srv
}

func (d *Daemon) serve(srv *gateway.Server, st gateway.Settings) []net.Listener {
	views := make([]net.Listener, 0, len(d.acceptors))
	for _, a := range d.acceptors {
		views = append(views, a.View())
	}
	d.mu.Lock()
	d.srv, d.st = srv, st
	d.mu.Unlock()
	srv.Serve(views)
	return views
}

func (d *Daemon) current() *gateway.Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.srv
}

// Run is the process lifetime: acquire, serve, and react to signals and
// config changes until stopped or ctx is done. It returns the exit status,
// always after closing the features, the state store and the log.
func (d *Daemon) Run(ctx context.Context) int {
	defer d.logC.Close()
	d.bootID = newBootID()
	sigs := d.o.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
		defer signal.Stop(ch)
		sigs = ch
	}

	if err := d.acquire(d.cfg); err != nil {
		msg := d.scrub(err.Error())
		d.log.Error("cannot listen", "err", msg)
		d.notify.Status("Failed: " + msg)
		var ce *configError
		if errors.As(err, &ce) {
			return ExitConfig
		}
		return ExitPortInUse
	}
	st, err := d.settings(d.cfg, d.addrs())
	if err != nil {
		msg := d.scrub(err.Error())
		d.log.Error("refusing to start", "err", msg)
		d.notify.Status("Failed: " + msg)
		d.set.Close()
		return ExitConfig
	}
	if err := d.startFeatures(); err != nil {
		msg := d.scrub(err.Error())
		d.log.Error("cannot start", "err", msg)
		d.notify.Status("Failed: " + msg)
		d.set.Close()
		return ExitFailure
	}
	defer d.closeFeatures()
	srv := d.newServer(st)
	views := d.serve(srv, st)
	d.notify.Ready(srv.StatusText())
	d.log.Info("gateway ready", "version", d.o.Version, "profile", d.o.Profile.Name(),
		"config", d.paths.ConfigPath, "state", d.paths.StateDir, "log", d.paths.LogFile, "auth", st.Auth.Mode)

	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	d.runCtx = wctx
	if iv, ok := notify.WatchdogInterval(); ok {
		go notify.RunWatchdog(wctx, d.notify, iv, func(c context.Context) error { return d.current().Check(c) }, d.log)
		d.log.Info("watchdog enabled", "interval", iv)
	}
	d.syncWatcher()
	defer d.stopWatcher()

	for {
		var restart, fromReload bool
		event := ""
		select {
		case <-ctx.Done():
			return d.stop(views, "context done")
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				return d.stop(views, sig.String())
			case syscall.SIGHUP:
				event = "reload"
				d.log.Info("SIGHUP: reloading config")
				restart = d.reload(true)
				fromReload = true
			case syscall.SIGUSR1:
				event = "restart"
				if !d.cfg.RestartAllowed() {
					d.log.Warn("SIGUSR1 ignored: in-process restart is disabled (commands.restart=false)")
					break
				}
				d.log.Info("SIGUSR1: restarting in process; listening sockets are kept")
				restart = true
			}
		case <-d.changes:
			event = "change"
			if d.cfg.Gateway.Reload.Mode == config.ReloadOff {
				d.log.Debug("config file changed; reload mode is off, reload with SIGHUP")
				break
			}
			restart = d.reload(false)
			fromReload = true
		}
		if restart {
			var err error
			views, err = d.restart(views, fromReload)
			if err != nil {
				d.log.Error("restart failed; exiting so the supervisor can act", "err", d.scrub(err.Error()))
				return ExitPortInUse
			}
		}
		if d.afterHandle != nil {
			d.afterHandle(event)
		}
	}
}

// syncWatcher starts or stops the config file watcher to match
// gateway.reload.mode (off: no watching, SIGHUP only) and debounceMs.
func (d *Daemon) syncWatcher() {
	mode := d.cfg.Gateway.Reload.Mode
	delay := time.Duration(d.cfg.Gateway.Reload.DebounceMs) * time.Millisecond
	if mode == config.ReloadOff {
		d.stopWatcher()
		return
	}
	if d.watchStop != nil && d.watchDelay == delay {
		return
	}
	d.stopWatcher()
	// Arm the watch before returning, so that an edit made once the reload
	// that turned watching on has answered is seen.
	w, err := configwatch.New(d.paths.ConfigPath, d.log)
	if err != nil {
		d.log.Warn("config file watching disabled; reload with SIGHUP (systemctl reload)", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	d.watchStop, d.watchDelay = cancel, delay
	go func() {
		err := w.Run(ctx, delay, func() {
			select {
			case d.changes <- struct{}{}:
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			d.log.Warn("config file watching disabled; reload with SIGHUP (systemctl reload)", "err", err)
		}
	}()
}

func (d *Daemon) stopWatcher() {
	if d.watchStop != nil {
		d.watchStop()
		d.watchStop = nil
	}
}

// scrub removes secrets from a text before it is shown: URLs are
// redacted, and so is every secret value of the configs in play and of
// the file on disk (which may be the rejected one).
func (d *Daemon) scrub(s string) string {
	var secrets []string
	d.mu.Lock()
	for _, c := range []*config.Config{d.cfg, d.want} {
		secrets = append(secrets, c.SecretValues()...)
	}
	d.mu.Unlock()
	if raw, err := os.ReadFile(d.paths.ConfigPath); err == nil {
		secrets = append(secrets, config.LenientSecretValues(raw)...)
	}
	for _, v := range []string{d.o.Overrides.Token, d.o.Overrides.Password} {
		if v != "" {
			secrets = append(secrets, v)
		}
	}
	return config.ScrubText(s, secrets...)
}

// reject records a refused reload: the error (scrubbed) goes to health and
// config.get, the status line and the log; nothing else changes.
func (d *Daemon) reject(err error) {
	msg := d.scrub(err.Error())
	d.mu.Lock()
	d.lastErr = msg
	d.mu.Unlock()
	d.log.Error("config reload rejected; still serving the last good config", "err", msg)
	d.current().SetStatusNote("last reload FAILED " + clock() + ": " + shorten(msg, 160) + d.pendingNote())
}

func (d *Daemon) pendingNote() string {
	if len(d.pending) == 0 {
		return ""
	}
	return "; restart pending for " + strings.Join(d.pending, ", ")
}

// reload re-reads the config. A config that cannot serve (invalid, or
// refused for the addresses it would be served on) is rejected whole;
// otherwise the hot-safe changes are applied now and restart reports
// whether an in-process restart should apply the rest (per
// gateway.reload.mode).
func (d *Daemon) reload(explicit bool) (restart bool) {
	if explicit {
		d.notify.Reloading()
		defer func() {
			if !restart {
				d.notify.Ready(d.current().StatusText())
			}
		}()
	}
	loaded, err := config.Load(d.paths.ConfigPath)
	if err == nil && !explicit && loaded.Hash == d.loaded.Hash {
		return false
	}
	var cfg *config.Config
	if err == nil {
		cfg, err = d.effective(loaded.Config)
	}
	var planned []string
	if err == nil {
		planned, _, err = d.planned(cfg)
	}
	if err == nil {
		// The addresses after a restart, and the current ones the hot
		// settings apply to at once.
		err = startcheck.CheckAuth(cfg, append(planned, d.addrs()...))
	}
	var st gateway.Settings
	if err == nil {
		st, err = d.settings(cfg, d.addrs())
	}
	if err != nil {
		d.reject(err)
		return false
	}
	changes := config.Diff(d.cfg, cfg)
	var hot, cold []string
	for _, c := range changes {
		if c.RestartInProcess {
			cold = append(cold, c.Key)
		} else {
			hot = append(hot, c.Key)
		}
	}
	mode := cfg.Gateway.Reload.Mode
	d.log.Info("config reloaded", "file", loaded.Path, "hash", shorten(loaded.Hash, 12), "hot", hot, "restartRequired", cold, "mode", mode)
	applied := config.Carry(d.cfg, cfg, cold)
	d.mu.Lock()
	d.loaded, d.loadedAt, d.lastErr = loaded, time.Now(), ""
	d.cfg, d.want, d.pending = applied, cfg, cold
	d.mu.Unlock()
	d.setLevel(applied)
	d.current().Apply(st)
	d.mu.Lock()
	d.st = st
	d.mu.Unlock()
	d.applyFeatures(applied)
	d.syncWatcher()
	switch {
	case len(cold) > 0 && mode == config.ReloadHot:
		d.log.Warn("some changes need a restart and reload mode is hot; run `gatewayctl restart` (or send SIGUSR1) to apply them", "keys", cold)
		d.current().SetStatusNote("reloaded " + clock() + "; restart pending for " + strings.Join(cold, ", "))
	case len(cold) > 0 || (mode == config.ReloadRestart && len(changes) > 0):
		d.current().SetStatusNote("reloaded " + clock() + "; restarting in process")
		return true
	default:
		d.current().SetStatusNote("last reload ok " + clock())
	}
	return false
}

// restart replaces the server generation with one for the last good
// config (want), keeping the listening sockets unless the listen settings
// changed (then they are re-bound). The new settings are built before
// anything is closed: when they cannot be, nothing changes. An error means
// the gateway has no listener left and must exit.
func (d *Daemon) restart(views []net.Listener, fromReload bool) ([]net.Listener, error) {
	d.notify.Reloading()
	next := d.want
	planned, rebind, err := d.planned(next)
	var st gateway.Settings
	if err == nil {
		st, err = d.settings(next, append(planned, d.addrs()...))
	}
	if err != nil {
		msg := d.scrub(err.Error())
		d.mu.Lock()
		d.lastErr = "restart refused: " + msg
		d.mu.Unlock()
		d.log.Error("restart refused; still serving as before", "err", msg)
		cur := d.current()
		cur.SetStatusNote("restart FAILED " + clock() + ": " + shorten(msg, 160) + d.pendingNote())
		d.notify.Ready(cur.StatusText())
		return views, nil
	}
	old := d.current()
	for _, v := range views {
		v.Close()
	}
	// The old generation drains in the background while the new one takes
	// over the same sockets at once: nothing waits in the kernel queue for
	// long, and no connect is refused.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := old.Shutdown(ctx, "gateway restarting", 1500); err != nil {
			d.log.Warn("restart: previous generation did not stop cleanly", "err", err)
		}
	}()
	d.restarts++
	note := "restarted in process " + clock()
	if fromReload {
		note = "last reload ok " + clock() + ", restarted in process"
	}
	if !rebind && !sameListen(d.cfg, next) {
		d.log.Warn("restart: gateway.port/bind/listen changed, but the sockets were handed over by the service manager and are kept; change the socket unit (or plist) to move the gateway", "source", d.set.Source(), "addrs", d.addrs())
	}
	if rebind {
		d.log.Info("restart: listen addresses changed; re-binding", "from", d.addrs(), "to", planned)
		for _, a := range d.acceptors {
			a.Close()
		}
		if err := d.acquire(next); err != nil {
			msg := d.scrub(err.Error())
			d.log.Error("restart: cannot listen on the new addresses; binding the previous ones again", "err", msg)
			if err2 := d.acquire(d.cfg); err2 != nil {
				d.notify.Stopping("Failed: " + msg)
				return nil, fmt.Errorf("cannot listen on the new addresses (%s) nor on the previous ones (%s)", msg, d.scrub(err2.Error()))
			}
			next = config.Carry(d.cfg, next, listenKeys)
			if st, err = d.settings(next, d.addrs()); err != nil {
				d.notify.Stopping("Failed: " + d.scrub(err.Error()))
				return nil, err
			}
			d.mu.Lock()
			d.lastErr = "restart: " + msg + " (still serving on the previous addresses)"
			d.mu.Unlock()
			note = "restart FAILED to re-bind " + clock() + ": " + shorten(msg, 120)
		}
	}
	logs.SetLimits(d.logC, next.Logging.MaxFileBytes, next.Logging.MaxFiles)
	var pending []string
	for _, c := range config.Diff(next, d.want) {
		if c.RestartInProcess {
			pending = append(pending, c.Key)
		}
	}
	d.mu.Lock()
	d.cfg, d.pending = next, pending
	d.mu.Unlock()
	d.setLevel(next)
	srv := d.newServer(st)
	if len(pending) > 0 {
		note += "; restart pending for " + strings.Join(pending, ", ")
	}
	srv.SetStatusNote(note)
	views = d.serve(srv, st)
	d.notify.Ready(srv.StatusText())
	d.log.Info("restarted in process", "generation", d.restarts)
	return views, nil
}

// stop is the graceful stop: STOPPING=1, stop accepting (what is still in
// the kernel queue stays for the next instance), shutdown event + 1012 to
// every client, drain, exit 0.
func (d *Daemon) stop(views []net.Listener, why string) int {
	d.notify.Stopping("Stopping (" + why + ")")
	d.log.Info("stopping", "signal", why)
	d.stopWatcher()
	for _, a := range d.acceptors {
		a.StopAccepting()
	}
	for _, v := range views {
		v.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.current().Shutdown(ctx, "gateway stopping", 0)
	for _, a := range d.acceptors {
		a.Close()
	}
	if err != nil {
		d.log.Warn("stopped with connections still open", "err", err)
	}
	d.log.Info("stopped")
	return ExitOK
}

func clock() string { return time.Now().Format("15:04:05") }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func newBootID() string {
	b := make([]byte, 8)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = io.ReadFull(f, b)
		f.Close()
	}
	return strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + fmt.Sprintf("%x", b[:4])
}
