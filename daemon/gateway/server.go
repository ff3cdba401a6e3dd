// Package gateway is the gateway's network core: one HTTP server per
// listener set that serves the Gateway WebSocket protocol v4 on "/", the
// liveness and readiness endpoints, and 404 elsewhere; the presence and
// event hub; authentication with rate limiting; and the protocol methods.
//
// It knows nothing about where its sockets come from (systemd, launchd or a
// plain bind: see platform/listen) or about the service manager: the
// daemon's main hands it net.Listeners and a Notify callback for status
// text. A Server is one generation: an in-process restart shuts it down and
// starts a new one on the same Acceptors.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gobwas/ws"
)

// Settings are the values a hot reload may change without a restart.
type Settings struct {
	Auth           AuthSettings
	AllowedOrigins []string
	// AllowedHosts are Host names a connection that arrived on a loopback
	// address may use besides localhost and loopback IPs (a local reverse
	// proxy's name); "*" turns the DNS rebinding check off.
	AllowedHosts   []string
	Limits         Limits
	TickInterval   time.Duration
	HealthInterval time.Duration
	ReloadMode     string
}

// ListenerInfo describes one listening socket for status and health.
type ListenerInfo struct {
	Addr   string `json:"addr"`
	Source string `json:"source"` // systemd, launchd or bind
}

// ConfigInfo is what config.get and health report about the config file.
type ConfigInfo struct {
	Path      string `json:"path"`
	Exists    bool   `json:"exists"`
	Valid     bool   `json:"valid"`
	Hash      string `json:"hash,omitempty"`
	Config    any    `json:"config"`
	LastError string `json:"lastError,omitempty"`
	LoadedAt  int64  `json:"loadedAt,omitempty"`
}

// ConfigStatus is the config file's state as health reports it.
type ConfigStatus struct {
	Path      string `json:"path"`
	Valid     bool   `json:"ok"`
	LastError string `json:"lastError,omitempty"`
}

// Options configure a Server generation.
type Options struct {
	Settings   Settings
	Logger     *slog.Logger
	Version    string
	Profile    string
	ConfigPath string
	StateDir   string
	LogFile    string
	Listeners  []ListenerInfo
	// Config returns the current config.get payload (secrets redacted).
	Config func() ConfigInfo
	// ConfigStatus is the cheap part of Config, read on every health call.
	ConfigStatus func() ConfigStatus
	// Notify receives the operator-facing status line whenever it changes
	// (the daemon forwards it as sd_notify STATUS=).
	Notify func(status string)
	// StartedAt is when the process started (uptime spans restarts).
	StartedAt time.Time
	// BootID identifies this process; ConnIDs are unique within it.
	BootID string
	// RestartCount is how many in-process restarts preceded this generation.
	RestartCount int
	// Extensions are the feature packages served besides the core methods
	// (see Extension). Each is bound to this generation in Serve.
	Extensions []Extension
	// MaxSnapshotPresence bounds hello-ok's snapshot.presence and the
	// presence events' lists (default MaxSnapshotPresence);
	// system-presence always lists every entry.
	MaxSnapshotPresence int
}

// Server is one generation of the gateway's network core.
type Server struct {
	o        Options
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	limiter  *rateLimiter
	caps     *connCaps
	guardLog logEvery
	events   *systemEvents
	hub      *hub
	http     *http.Server
	methods  map[string]method
	names    []string
	ext      extensions

	live     sync.Map // *wsConn → struct{}: every open WebSocket, handshaking or not
	stopping atomic.Bool
	serving  atomic.Bool
	handlers sync.WaitGroup

	connMu    sync.Mutex
	openConns int // HTTP connections neither closed nor hijacked (ConnState)
	cancel    context.CancelFunc
	ctx       context.Context

	statusMu   sync.Mutex
	statusNote string
	lastStatus string
	loopDone   chan struct{}
}

// New builds a server generation; Serve starts it.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartedAt.IsZero() {
		o.StartedAt = time.Now()
	}
	if o.MaxSnapshotPresence < 2 {
		o.MaxSnapshotPresence = MaxSnapshotPresence
	}
	if o.BootID == "" {
		o.BootID = newConnID()
	}
	if o.Config == nil {
		path := o.ConfigPath
		o.Config = func() ConfigInfo { return ConfigInfo{Path: path, Valid: true} }
	}
	if o.ConfigStatus == nil {
		cfg := o.Config
		o.ConfigStatus = func() ConfigStatus {
			i := cfg()
			return ConfigStatus{Path: i.Path, Valid: i.Valid, LastError: i.LastError}
		}
	}
	s := &Server{o: o, log: o.Logger, limiter: newRateLimiter(), loopDone: make(chan struct{})}
	s.caps = newConnCaps(s)
	s.events = newSystemEvents()
	st := normalize(o.Settings)
	s.settings.Store(&st)
	s.hub = newHub(s)
	s.registerMethods()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		ConnState:         s.trackConn,
	}
	return s
}

// normalize fills the settings left zero with the config defaults (the
// daemon passes a defaulted config; tests and other callers may not).
func normalize(st Settings) Settings {
	setDefault(&st.TickInterval, config.DefaultTickIntervalMs*time.Millisecond)
	setDefault(&st.HealthInterval, config.DefaultHealthIntervalMs*time.Millisecond)
	setDefault(&st.Auth.MaxAttempts, config.DefaultMaxAttempts)
	setDefault(&st.Auth.Window, config.DefaultWindowMs*time.Millisecond)
	setDefault(&st.Auth.Lockout, config.DefaultLockoutMs*time.Millisecond)
	if st.Auth.Mode == "" {
		st.Auth.Mode = config.AuthToken
	}
	if st.ReloadMode == "" {
		st.ReloadMode = config.ReloadHybrid
	}
	setDefault(&st.Limits.MaxConnections, config.DefaultMaxConnections)
	setDefault(&st.Limits.MaxPreAuthPerIP, config.DefaultMaxPreAuthPerIP)
	return st
}

// setDefault sets *p to def when it is zero or negative.
func setDefault[T int | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// Apply swaps in hot-reloadable settings; existing connections keep their
// authentication, new ones use the new secrets.
func (s *Server) Apply(st Settings) {
	n := normalize(st)
	s.settings.Store(&n)
	s.hub.broadcastHealth()
}

// Serve serves every listener until Shutdown. It returns at once.
func (s *Server) Serve(ls []net.Listener) {
	for _, e := range s.ext.list {
		e.Bind(s)
	}
	// Serving before the first accept: under socket activation the
	// connection that started us is already waiting, and its /readyz must
	// not see "starting".
	s.serving.Store(true)
	for _, l := range ls {
		go func(l net.Listener) {
			if err := s.http.Serve(&capListener{Listener: l, caps: s.caps}); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.log.Error("serve failed", "addr", l.Addr().String(), "err", err)
			}
		}(l)
	}
	go s.hub.loop(s.ctx, s.loopDone)
	s.updateStatus()
}

// Ready reports whether the server accepts and answers connects.
func (s *Server) Ready() bool { return s.serving.Load() && !s.stopping.Load() }

// Clients is the number of connections that completed the handshake.
func (s *Server) Clients() int { return s.hub.count() }

// SetStatusNote sets the tail of the status line (last reload, last error).
func (s *Server) SetStatusNote(note string) {
	s.statusMu.Lock()
	s.statusNote = note
	s.statusMu.Unlock()
	s.updateStatus()
}

// RefreshStatus recomputes the status line and resends STATUS= when it
// changed: for extensions whose StatusClause changed.
func (s *Server) RefreshStatus() { s.updateStatus() }

// StatusText is the operator-facing one-line status.
func (s *Server) StatusText() string {
	addrs := make([]string, 0, len(s.o.Listeners))
	src := ""
	for _, l := range s.o.Listeners {
		addrs = append(addrs, l.Addr)
		src = l.Source
	}
	how := map[string]string{"systemd": "socket-activated", "launchd": "launchd socket", "bind": "bound"}[src]
	if how == "" {
		how = src
	}
	n := s.hub.count()
	plural := "s"
	if n == 1 {
		plural = ""
	}
	line := fmt.Sprintf("Serving on %s (%s); %d client%s", strings.Join(addrs, ", "), how, n, plural)
	if s.stopping.Load() {
		line = "Stopping; " + line
	}
	for _, r := range s.ext.reporters {
		if c := r.StatusClause(); c != "" {
			line += "; " + c
		}
	}
	s.statusMu.Lock()
	note := s.statusNote
	s.statusMu.Unlock()
	if note != "" {
		line += "; " + note
	}
	return line
}

func (s *Server) updateStatus() {
	if s.o.Notify == nil {
		return
	}
	line := s.StatusText()
	s.statusMu.Lock()
	changed := line != s.lastStatus
	s.lastStatus = line
	s.statusMu.Unlock()
	if changed {
		s.o.Notify(line)
	}
}

// Check is the liveness check behind the watchdog: the hub loop must have
// run recently and its lock must be free within the deadline.
func (s *Server) Check(ctx context.Context) error {
	if faultWedged() {
		<-ctx.Done()
		return errors.New("hub wedged (test fault injection)")
	}
	beat := time.UnixMilli(s.hub.lastBeat.Load())
	if time.Since(beat) > 5*time.Second {
		return fmt.Errorf("hub loop last ran %s ago", time.Since(beat).Round(time.Millisecond))
	}
	got := make(chan struct{})
	go func() {
		s.hub.mu.Lock()
		//lint:ignore SA2001 an empty critical section is the probe: the lock can be taken
		s.hub.mu.Unlock()
		close(got)
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		return errors.New("hub lock not acquired before the deadline")
	}
}

// Shutdown stops the generation: every client gets the shutdown event and
// close 1012, handlers drain (bounded by ctx), the HTTP server closes.
// The caller must have closed the listeners' views (or stopped the
// Acceptors) first, so nothing new arrives meanwhile.
func (s *Server) Shutdown(ctx context.Context, reason string, restartExpectedMs int64) error {
	s.stopping.Store(true)
	s.updateStatus()
	payload, _ := json.Marshal(protocol.ShutdownEvent{Reason: reason, RestartExpectedMs: restartExpectedMs})
	conns := s.hub.all()
	var wg sync.WaitGroup
	for _, c := range conns {
		c.sendEvent("shutdown", payload, nil)
		wg.Add(1)
		go func(c *wsConn) {
			defer wg.Done()
			c.closeAfterFlush(protocol.CloseServiceRestart, "service restart", 2*time.Second)
		}(c)
	}
	// Connections still in their handshake get the close code too.
	s.live.Range(func(k, _ any) bool {
		c := k.(*wsConn)
		if !c.attached.Load() {
			c.close(protocol.CloseServiceRestart, "service restart")
		}
		return true
	})
	wg.Wait()
	// http.Server.Shutdown drops a connection it accepted but whose first
	// request it reads only after Shutdown began (net/http's conn.serve
	// returns without answering when the server is shutting down): under
	// a restart those are just-accepted connections, which clients see as
	// EOF. Drain first: without keep-alives every connection closes after
	// its response; wait for them, then Shutdown has nothing left to drop.
	s.http.SetKeepAlivesEnabled(false)
	s.drainConns(ctx)
	err := s.http.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range s.hub.all() {
			c.t.closeNow()
		}
		if err == nil {
			err = fmt.Errorf("shutdown: %d connections did not close in time: %w", len(s.hub.all()), ctx.Err())
		}
	}
	s.cancel()
	if s.serving.Load() {
		<-s.loopDone
	}
	return err
}

// trackConn counts open HTTP connections (http.Server.ConnState).
func (s *Server) trackConn(_ net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case http.StateNew:
		s.openConns++
	case http.StateHijacked, http.StateClosed:
		s.openConns--
	}
}

// drainConns waits until every HTTP connection is closed or hijacked, or
// ctx ends.
func (s *Server) drainConns(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.connMu.Lock()
		n := s.openConns
		s.connMu.Unlock()
		if n <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ServeHTTP routes the single port, every request through the guard
// (guard.go) first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r, s.settings.Load()) {
		return
	}
	switch {
	case r.URL.Path == "/" && isUpgrade(r):
		s.serveWS(w, r)
	case r.URL.Path == "/healthz" || r.URL.Path == "/health":
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "status": "live"})
	case r.URL.Path == "/readyz":
		ready := s.Ready()
		failing := []string{}
		if s.stopping.Load() {
			failing = append(failing, "shutting-down")
		} else if !s.serving.Load() {
			failing = append(failing, "starting")
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ready, "failing": failing, "uptimeMs": time.Since(s.o.StartedAt).Milliseconds()})
	case s.ext.hasRoutes && s.routed(r):
		s.ext.mux.ServeHTTP(w, r)
	case r.URL.Path == "/":
		w.Header().Set("Upgrade", "websocket")
		writeJSON(w, http.StatusUpgradeRequired, map[string]any{"error": map[string]string{
			"type": "upgrade_required", "message": "this is the gateway's WebSocket endpoint (protocol v4); connect with a WebSocket client such as `gatewayctl`"}})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"type": "not_found", "message": "Not Found"}})
	}
}

// routed reports whether an extension registered a pattern matching r.
func (s *Server) routed(r *http.Request) bool {
	_, pattern := s.ext.mux.Handler(r)
	return pattern != ""
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// originAllowed: no Origin (non-browser) is fine; same-origin always; else
// the configured list (exact origin or host match).
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	host := origin
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if strings.EqualFold(host, r.Host) {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, origin) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"type": "unavailable", "message": "gateway is stopping"}})
		return
	}
	t, err := upgradeWS(w, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.handlers.Add(1)
	c := &wsConn{s: s, t: t, id: newConnID(), remote: r.RemoteAddr, origin: r.Header.Get("Origin"), done: make(chan struct{})}
	s.live.Store(c, struct{}{})
	end := func() {
		s.live.Delete(c)
		close(c.done) // the connection is over: Peer.Done fires
		s.handlers.Done()
	}
	if !originAllowed(r, s.settings.Load().AllowedOrigins) {
		s.log.Warn("websocket origin rejected", "origin", c.origin, "remote", c.remote,
			"fix", "add the origin to gateway.controlUi.allowedOrigins")
		t.closeAndWait(ws.StatusCode(protocol.ClosePolicyViolation), "origin not allowed")
		end()
		return
	}
	if !s.runConn(c) {
		// The close frame is on its way: read until the peer's answer
		// (or closeWait), so a client that answers is let go at once.
		c.t.drainUntilClosed()
		end()
		return
	}
	// The HTTP handler returns; the connection lives on its own goroutine.
	go func() {
		defer end()
		s.serveConn(c)
	}()
}

// hostname is cached: presence entries carry it.
var hostname = func() string { h, _ := os.Hostname(); return h }()

// selfPresence is the gateway's own presence entry.
func (s *Server) selfPresence() protocol.PresenceEntry {
	return protocol.PresenceEntry{TS: time.Now().UnixMilli(), Host: hostname, Version: s.o.Version,
		Platform: runtime.GOOS, Mode: "gateway", Reason: "self", InstanceID: s.o.BootID}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
