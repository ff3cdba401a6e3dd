package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/daemon/store"
	"github.com/gatewayd/gatewayd/platform/listen"
	"github.com/gatewayd/gatewayd/platform/notify"
	"github.com/gatewayd/gatewayd/platform/procs"
)

// daemon is one gatewayd process: its config, sockets and the current
// server generation.
type daemon struct {
	f       *flags
	profile config.Profile
	paths   config.Paths
	stderr  io.Writer
	log     *slog.Logger
	logC    io.Closer
	level   *slog.LevelVar
	notify  notify.Notifier
	started time.Time
	bootID  string

	mu        sync.Mutex
	loaded    *config.Loaded // last good config file
	cfg       *config.Config // effective config (file + flags/env)
	lastErr   string         // last config error (kept serving the last good one)
	loadedAt  time.Time
	srv       *gateway.Server
	set       *listen.Set
	acceptors []*gateway.Acceptor
	infos     []gateway.ListenerInfo
	restarts  int

	store    *store.Store
	features []feature
	exts     []gateway.Extension
}

func newDaemon(f *flags, stderr io.Writer) (*daemon, int) {
	profile, err := config.NewProfile(f.profile, f.dev)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return nil, exitUsage
	}
	paths := config.ResolvePaths(profile, config.DefaultScope(), os.Getenv)
	if f.config != "" {
		paths.ConfigPath = f.config
	}
	d := &daemon{f: f, profile: profile, paths: paths, stderr: stderr, started: time.Now(), level: new(slog.LevelVar)}
	loaded, err := config.Load(paths.ConfigPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatewayd: %v\n", err)
		return nil, exitConfig
	}
	d.loaded, d.loadedAt = loaded, time.Now()
	cfg, err := d.effective(loaded.Config)
	if err != nil {
		fmt.Fprintf(stderr, "gatewayd: %v\n", err)
		return nil, exitConfig
	}
	d.cfg = cfg
	d.setLevel(cfg)
	log, closer, err := logs.New(logs.Options{Level: d.level, Stderr: stderr, Journal: logs.JournalEnabled(os.Getenv),
		FilePath: paths.LogFile, MaxBytes: cfg.Logging.MaxFileBytes, MaxFiles: cfg.Logging.MaxFiles})
	if err != nil {
		// No file log is not fatal: say so and keep stderr.
		fmt.Fprintf(stderr, "gatewayd: file log disabled: %v (fix the permissions of %s or set GATEWAY_STATE_DIR)\n", err, paths.LogDir)
		log, closer, _ = logs.New(logs.Options{Level: d.level, Stderr: stderr, Journal: logs.JournalEnabled(os.Getenv)})
		d.paths.LogFile = ""
	}
	d.log, d.logC = log, closer
	d.notify = notify.New(log)
	return d, exitOK
}

// effective overlays flags and GATEWAY_* environment on the file's config:
// flag/env → config file → default, as DESIGN.md orders them.
func (d *daemon) effective(file *config.Config) (*config.Config, error) {
	c := *file
	c.Gateway = file.Gateway
	c.Gateway.Auth = file.Gateway.Auth
	f := d.f
	if f.set["port"] {
		c.Gateway.Port = f.port
	}
	if c.Gateway.Port == 0 {
		c.Gateway.Port = d.profile.DefaultPort()
	}
	if f.set["bind"] {
		c.Gateway.Bind = f.bind
	}
	if len(f.listen) > 0 {
		c.Gateway.Listen = append([]string(nil), f.listen...)
	}
	if f.set["token"] {
		c.Gateway.Auth.Token = f.token
	}
	if f.set["password"] {
		c.Gateway.Auth.Password = f.password
		if c.Gateway.Auth.Token == "" && (file.Gateway.Auth.Mode == "" || file.Gateway.Auth.Mode == "token") {
			c.Gateway.Auth.Mode = "password"
		}
	}
	if c.Gateway.Mode == config.ModeRemote {
		return nil, errors.New("Gateway start blocked: set gateway.mode=local (this host's config says the gateway runs elsewhere: " + d.paths.ConfigPath + ")")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid setting from flags or GATEWAY_* environment: %w", err)
	}
	return &c, nil
}

func (d *daemon) setLevel(c *config.Config) {
	lvl := slog.LevelInfo
	switch c.Logging.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	if d.f.verbose {
		lvl = slog.LevelDebug
	}
	d.level.Set(lvl)
}

// auth resolves the effective authentication settings, generating a token
// on first start when none is configured (loopback only: exposing the
// gateway to a network needs a deliberate secret).
func (d *daemon) auth(c *config.Config, addrs []string) (gateway.AuthSettings, error) {
	a := c.Gateway.Auth
	st := gateway.AuthSettings{Mode: a.Mode, Token: a.Token, Password: a.Password,
		MaxAttempts: a.RateLimit.MaxAttempts, Window: time.Duration(a.RateLimit.WindowMs) * time.Millisecond,
		Lockout: time.Duration(a.RateLimit.LockoutMs) * time.Millisecond}
	if st.Mode == "" {
		st.Mode = "token"
	}
	loopback := listen.IsLoopbackOnly(addrs)
	explicit := (st.Mode == "token" && st.Token != "") || (st.Mode == "password" && st.Password != "")
	if !loopback && !explicit {
		return st, fmt.Errorf("refusing to bind gateway to %s without auth (set gateway.auth.token/password, or GATEWAY_TOKEN/GATEWAY_PASSWORD)", strings.Join(addrs, ", "))
	}
	if st.Mode == "password" && st.Password == "" {
		return st, errors.New("gateway.auth.mode is password but no password is set (set gateway.auth.password or GATEWAY_PASSWORD)")
	}
	if st.Mode == "token" && st.Token == "" {
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

// settings builds the server's hot-reloadable settings.
func (d *daemon) settings(c *config.Config) (gateway.Settings, error) {
	a, err := d.auth(c, d.addrs())
	if err != nil {
		return gateway.Settings{}, err
	}
	return gateway.Settings{Auth: a, AllowedOrigins: c.Gateway.ControlUI.AllowedOrigins,
		AllowedHosts: c.Gateway.AllowedHosts, Limits: gateway.Limits{MaxConnections: c.Gateway.Limits.MaxConnections, MaxPreAuthPerIP: c.Gateway.Limits.MaxPreAuthPerIP},
		TickInterval:   time.Duration(c.Gateway.TickIntervalMs) * time.Millisecond,
		HealthInterval: time.Duration(c.Gateway.HealthIntervalMs) * time.Millisecond,
		ReloadMode:     c.Gateway.Reload.Mode}, nil
}

func (d *daemon) addrs() []string {
	out := make([]string, 0, len(d.infos))
	for _, i := range d.infos {
		out = append(out, i.Addr)
	}
	return out
}

// acquire gets the listening sockets: activation, explicit specs or a bind.
func (d *daemon) acquire(c *config.Config) error {
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
	set, err := listen.Acquire(specs, fallback, d.log)
	var inUse *listen.AddrInUseError
	if errors.As(err, &inUse) {
		if d.f.force {
			if ferr := d.forceFree(c.Gateway.Port); ferr != nil {
				return ferr
			}
			set, err = listen.Acquire(specs, fallback, d.log)
		} else if probeGateway(inUse.Addr) {
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
func (d *daemon) forceFree(port int) error {
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

// probeGateway reports whether the thing on addr speaks our protocol: a
// gateway sends connect.challenge right after the WebSocket opens.
func probeGateway(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	return probeChallenge(ctx, addr)
}

func (d *daemon) configInfo() gateway.ConfigInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gateway.ConfigInfo{Path: d.loaded.Path, Exists: d.loaded.Exists, Valid: d.lastErr == "", Hash: d.loaded.Hash,
		Config: d.loaded.Config.Redacted(), LastError: d.lastErr, LoadedAt: d.loadedAt.UnixMilli()}
}

func (d *daemon) configStatus() gateway.ConfigStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gateway.ConfigStatus{Path: d.loaded.Path, Valid: d.lastErr == "", LastError: d.lastErr}
}

func (d *daemon) newServer(st gateway.Settings) *gateway.Server {
	return gateway.New(gateway.Options{Settings: st, Logger: d.log, Version: buildinfo.Get().Version,
		Profile: d.profile.Name(), ConfigPath: d.paths.ConfigPath, StateDir: d.paths.StateDir, LogFile: d.paths.LogFile,
		Listeners: d.infos, Config: d.configInfo, ConfigStatus: d.configStatus, Notify: d.notify.Status, StartedAt: d.started, BootID: d.bootID,
		RestartCount: d.restarts, Extensions: d.exts})
}

func (d *daemon) serve(srv *gateway.Server) []net.Listener {
	views := make([]net.Listener, 0, len(d.acceptors))
	for _, a := range d.acceptors {
		views = append(views, a.View())
	}
	d.mu.Lock()
	d.srv = srv
	d.mu.Unlock()
	srv.Serve(views)
	return views
}

func (d *daemon) current() *gateway.Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.srv
}

// run is the process lifetime: acquire, serve, and react to signals and
// config changes until stopped.
func (d *daemon) run(ctx context.Context) int {
	defer d.logC.Close()
	d.bootID = newBootID()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	if err := d.acquire(d.cfg); err != nil {
		d.log.Error("cannot listen", "err", err)
		d.notify.Status("Failed: " + err.Error())
		var ce *configError
		if errors.As(err, &ce) {
			return exitConfig
		}
		return exitPortInUse
	}
	st, err := d.settings(d.cfg)
	if err != nil {
		d.log.Error("refusing to start", "err", err)
		d.notify.Status("Failed: " + err.Error())
		d.set.Close()
		return exitConfig
	}
	if err := d.startFeatures(); err != nil {
		d.log.Error("cannot start", "err", err)
		d.notify.Status("Failed: " + err.Error())
		d.set.Close()
		return exitFailure
	}
	defer d.closeFeatures()
	srv := d.newServer(st)
	views := d.serve(srv)
	d.notify.Ready(srv.StatusText())
	d.log.Info("gateway ready", "version", buildinfo.Get().Version, "profile", d.profile.Name(),
		"config", d.paths.ConfigPath, "state", d.paths.StateDir, "log", d.paths.LogFile, "auth", st.Auth.Mode)

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if iv, ok := notify.WatchdogInterval(); ok {
		go notify.RunWatchdog(wctx, d.notify, iv, func(c context.Context) error { return d.current().Check(c) }, d.log)
		d.log.Info("watchdog enabled", "interval", iv)
	}
	changes := make(chan struct{}, 1)
	if d.cfg.Gateway.Reload.Mode != "off" {
		debounce := time.Duration(d.cfg.Gateway.Reload.DebounceMs) * time.Millisecond
		go func() {
			err := config.Watch(wctx, d.paths.ConfigPath, debounce, d.log, func() {
				select {
				case changes <- struct{}{}:
				default:
				}
			})
			if err != nil && wctx.Err() == nil {
				d.log.Warn("config file watching disabled; reload with SIGHUP (systemctl reload)", "err", err)
			}
		}()
	}

	for {
		var restart bool
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				return d.stop(views, sig)
			case syscall.SIGHUP:
				d.log.Info("SIGHUP: reloading config")
				restart = d.reload(true)
			case syscall.SIGUSR1:
				if !d.cfg.RestartAllowed() {
					d.log.Warn("SIGUSR1 ignored: in-process restart is disabled (commands.restart=false)")
					continue
				}
				d.log.Info("SIGUSR1: restarting in process; listening sockets are kept")
				restart = true
			}
		case <-changes:
			restart = d.reload(false)
		}
		if restart {
			views = d.restart(views)
		}
	}
}

// reload re-reads the config. It applies hot-safe changes and reports
// whether a restart is needed (per gateway.reload.mode). A broken file is
// rejected and the last good config keeps serving.
func (d *daemon) reload(explicit bool) (restart bool) {
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
	var st gateway.Settings
	if err == nil {
		st, err = d.settings(cfg)
	}
	if err != nil {
		d.mu.Lock()
		d.lastErr = err.Error()
		d.mu.Unlock()
		d.log.Error("config reload rejected; still serving the last good config", "err", err)
		d.current().SetStatusNote("last reload FAILED " + time.Now().Format("15:04:05") + ": " + shorten(err.Error(), 160))
		return false
	}
	changes := config.Diff(d.cfg, cfg)
	d.mu.Lock()
	d.loaded, d.loadedAt, d.lastErr = loaded, time.Now(), ""
	d.mu.Unlock()
	mode := cfg.Gateway.Reload.Mode
	var hot, cold []string
	for _, c := range changes {
		if c.Restart {
			cold = append(cold, c.Key)
		} else {
			hot = append(hot, c.Key)
		}
	}
	d.log.Info("config reloaded", "file", loaded.Path, "hash", shorten(loaded.Hash, 12), "hot", hot, "restartRequired", cold, "mode", mode)
	old := d.cfg
	d.cfg = cfg
	d.setLevel(cfg)
	d.current().Apply(st)
	d.applyFeatures(cfg)
	note := "last reload ok " + time.Now().Format("15:04:05")
	switch {
	case len(cold) > 0 && mode == "hot":
		d.log.Warn("some changes need a restart and reload mode is hot; run `gatewayctl restart` to apply them", "keys", cold)
		note += " (restart needed: " + strings.Join(cold, ", ") + ")"
		d.cfg = keepColdSettings(old, cfg)
	case len(cold) > 0 || (mode == "restart" && len(changes) > 0):
		restart = true
	}
	d.current().SetStatusNote(note)
	return restart
}

// keepColdSettings keeps the running values of restart-required settings,
// so a later restart-free reload does not pretend they were applied.
func keepColdSettings(running, next *config.Config) *config.Config {
	c := *next
	c.Gateway.Port, c.Gateway.Bind, c.Gateway.Listen, c.Gateway.Mode = running.Gateway.Port, running.Gateway.Bind, running.Gateway.Listen, running.Gateway.Mode
	return &c
}

// restart replaces the server generation, keeping the listening sockets
// unless the listen addresses themselves changed (then they are re-bound).
func (d *daemon) restart(views []net.Listener) []net.Listener {
	d.notify.Reloading()
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
	if d.set.Source() == "bind" {
		want, err := listen.BindAddrs(d.cfg.Gateway.Bind, d.cfg.Gateway.Port)
		if err == nil && len(d.cfg.Gateway.Listen) == 0 && !sameAddrs(want, d.addrs()) {
			d.log.Info("restart: listen addresses changed; re-binding", "from", d.addrs(), "to", want)
			for _, a := range d.acceptors {
				a.Close()
			}
			if err := d.acquire(d.cfg); err != nil {
				d.log.Error("restart: cannot bind the new addresses; exiting so the supervisor can act", "err", err)
				d.notify.Stopping("Failed: " + err.Error())
				os.Exit(exitPortInUse)
			}
		}
	}
	st, err := d.settings(d.cfg)
	if err != nil {
		d.log.Error("restart: settings invalid; keeping the previous ones", "err", err)
		st = gateway.Settings{}
	}
	srv := d.newServer(st)
	views = d.serve(srv)
	d.notify.Ready(srv.StatusText())
	d.log.Info("restarted in process", "generation", d.restarts)
	return views
}

func sameAddrs(want, have []string) bool {
	if len(want) > len(have) {
		return false
	}
	m := map[string]bool{}
	for _, h := range have {
		m[h] = true
	}
	for _, w := range want {
		if !m[w] {
			// [::1]:P may be absent on hosts without IPv6.
			if strings.HasPrefix(w, "[::1]:") {
				continue
			}
			return false
		}
	}
	return true
}

// stop is the graceful stop: STOPPING=1, stop accepting (what is still in
// the kernel queue stays for the next instance), shutdown event + 1012 to
// every client, drain, exit 0.
func (d *daemon) stop(views []net.Listener, sig os.Signal) int {
	d.notify.Stopping("Stopping (" + sig.String() + ")")
	d.log.Info("stopping", "signal", sig.String())
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
	return exitOK
}

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
