package gateway

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

type method struct {
	scope string
	async bool
	fn    func(ctx context.Context, c *wsConn, params json.RawMessage) (any, *protocol.Error)
	// ext is an extension's handler (it also gets the request id).
	ext func(ctx context.Context, c *wsConn, id string, params json.RawMessage) (any, *protocol.Error)
}

// registerMethods builds the method table. Every scope is the one
// OpenClaw's gateway requires for the same method (its method-scopes
// table; TestOpenClawMethodScopes in the OpenClaw e2e tests compares them),
// so a client written for OpenClaw asks for, and gets, the same grants.
func (s *Server) registerMethods() {
	s.methods = map[string]method{
		"health":          {scope: protocol.ScopeRead, fn: s.mHealth},
		"status":          {scope: protocol.ScopeRead, fn: s.mStatus},
		"system-presence": {scope: protocol.ScopeRead, fn: s.mPresence},
		"system-event":    {scope: protocol.ScopeAdmin, fn: s.mSystemEvent},
		"logs.tail":       {scope: protocol.ScopeRead, fn: s.mLogsTail},
		// config.get answers the config with every secret redacted
		// (Config.Redacted), so read is enough, as in OpenClaw.
		"config.get": {scope: protocol.ScopeRead, fn: s.mConfigGet},
	}
	s.installExtensions(s.o.Extensions)
	s.names = make([]string, 0, len(s.methods))
	for n := range s.methods {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
}

// decode validates params against the committed schema definition and
// decodes them strictly.
func decode(method, def string, raw json.RawMessage, v any) *protocol.Error {
	if err := protocol.ValidateParams(def, raw); err != nil {
		return paramsError(method, err)
	}
	if err := protocol.DecodeParams(raw, v); err != nil {
		return paramsError(method, err)
	}
	return nil
}

// Health is the health payload: the same shape as `gatewayctl health --json`.
type Health struct {
	OK          bool             `json:"ok"`
	TS          int64            `json:"ts"`
	DurationMs  float64          `json:"durationMs"`
	Version     string           `json:"version"`
	Profile     string           `json:"profile"`
	PID         int              `json:"pid"`
	UptimeMs    int64            `json:"uptimeMs"`
	Connections int              `json:"connections"`
	Listeners   []ListenerInfo   `json:"listeners"`
	Components  HealthComponents `json:"components"`

	// OpenClaw's health fields (its CLI's `openclaw health` and the
	// Control UI read them), filled by the extensions that know them
	// (HealthContributor): the agents, their sessions, the channels.
	DefaultAgentID   string            `json:"defaultAgentId,omitempty"`
	HeartbeatSeconds int               `json:"heartbeatSeconds"`
	Agents           []any             `json:"agents"`
	Sessions         any               `json:"sessions"`
	Channels         map[string]any    `json:"channels"`
	ChannelOrder     []string          `json:"channelOrder"`
	ChannelLabels    map[string]string `json:"channelLabels"`
}

// HealthContributor is implemented by extensions that add to the health
// payload (OpenClaw's fields: agents and sessions, channels). Contribute
// must be quick and must not block: health is polled.
type HealthContributor interface {
	ContributeHealth(h *Health)
}

// HealthComponents is health's per-component part.
type HealthComponents struct {
	Hub    HubHealth    `json:"hub"`
	Config ConfigStatus `json:"config"`
	Server ServerHealth `json:"server"`
	// Extensions are the StatusReporter extensions' components by name
	// (like "channels"), encoded beside hub, config and server.
	Extensions map[string]any `json:"-"`
}

// MarshalJSON encodes the core components and the extensions' side by
// side; a core name wins over an extension's.
func (c HealthComponents) MarshalJSON() ([]byte, error) {
	if len(c.Extensions) == 0 {
		type plain HealthComponents
		return json.Marshal(plain(c))
	}
	m := make(map[string]any, 3+len(c.Extensions))
	for name, v := range c.Extensions {
		m[name] = v
	}
	m["hub"], m["config"], m["server"] = c.Hub, c.Config, c.Server
	return json.Marshal(m)
}

// HubHealth: the event hub's heartbeat is recent.
type HubHealth struct {
	OK         bool `json:"ok"`
	Goroutines int  `json:"goroutines"`
}

// ServerHealth: the generation is serving, not stopping.
type ServerHealth struct {
	OK       bool `json:"ok"`
	Stopping bool `json:"stopping"`
	Restarts int  `json:"restarts"`
}

var pid = os.Getpid()

// healthOK is health's verdict at now: the hub beats and the generation is
// not stopping.
func (s *Server) healthOK(now time.Time) (ok, hubOK, stopping bool) {
	hubOK = now.UnixMilli()-s.hub.lastBeat.Load() < 5000
	stopping = s.stopping.Load()
	return hubOK && !stopping, hubOK, stopping
}

func (s *Server) health() *Health {
	start := time.Now()
	ok, hubOK, stopping := s.healthOK(start)
	h := &Health{
		OK: ok, TS: start.UnixMilli(), Version: s.o.Version, Profile: s.o.Profile,
		PID: pid, UptimeMs: start.Sub(s.o.StartedAt).Milliseconds(), Connections: s.hub.count(),
		Listeners: s.o.Listeners,
		Components: HealthComponents{
			Hub:    HubHealth{OK: hubOK, Goroutines: runtime.NumGoroutine()},
			Config: s.o.ConfigStatus(),
			Server: ServerHealth{OK: !stopping, Stopping: stopping, Restarts: s.o.RestartCount},
		},
	}
	for _, r := range s.ext.reporters {
		if h.Components.Extensions == nil {
			h.Components.Extensions = make(map[string]any, len(s.ext.reporters))
		}
		h.Components.Extensions[r.name] = r.HealthComponent()
	}
	h.Agents, h.Sessions = []any{}, map[string]any{"path": "", "count": 0, "recent": []any{}}
	h.Channels, h.ChannelOrder, h.ChannelLabels = map[string]any{}, []string{}, map[string]string{}
	for _, hc := range s.ext.contributors {
		hc.ContributeHealth(h)
	}
	h.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	return h
}

// HealthReport is the health method's payload, for extensions (the
// gateway.health tool).
func (s *Server) HealthReport() any { return s.health() }

// StatusReport is the status method's payload, for extensions (the
// gateway.status tool).
func (s *Server) StatusReport() any { return s.statusPayload() }

func (s *Server) mHealth(_ context.Context, _ *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	var p protocol.EmptyParams
	if err := protocol.DecodeParams(raw, &p); err != nil {
		return nil, paramsError("health", err)
	}
	return s.health(), nil
}

// StatusPayload is the short summary the status method returns.
type StatusPayload struct {
	Version     string         `json:"version"`
	Profile     string         `json:"profile"`
	PID         int            `json:"pid"`
	UptimeMs    int64          `json:"uptimeMs"`
	StartedAt   int64          `json:"startedAt"`
	Listeners   []ListenerInfo `json:"listeners"`
	Connections int            `json:"connections"`
	ConfigPath  string         `json:"configPath"`
	ConfigValid bool           `json:"configValid"`
	StateDir    string         `json:"stateDir,omitempty"`
	LogFile     string         `json:"logFile,omitempty"`
	ReloadMode  string         `json:"reloadMode"`
	AuthMode    string         `json:"authMode"`
	Restarts    int            `json:"restarts"`
	StatusText  string         `json:"statusText"`
	BootID      string         `json:"bootId"`
}

func (s *Server) mStatus(_ context.Context, _ *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	var p protocol.EmptyParams
	if err := protocol.DecodeParams(raw, &p); err != nil {
		return nil, paramsError("status", err)
	}
	return s.statusPayload(), nil
}

func (s *Server) statusPayload() *StatusPayload {
	st := s.settings.Load()
	return &StatusPayload{Version: s.o.Version, Profile: s.o.Profile, PID: os.Getpid(),
		UptimeMs: time.Since(s.o.StartedAt).Milliseconds(), StartedAt: s.o.StartedAt.UnixMilli(),
		Listeners: s.o.Listeners, Connections: s.hub.count(), ConfigPath: s.o.ConfigPath, ConfigValid: s.o.ConfigStatus().Valid,
		StateDir: s.o.StateDir, LogFile: s.o.LogFile, ReloadMode: st.ReloadMode, AuthMode: st.Auth.Mode,
		Restarts: s.o.RestartCount, StatusText: s.StatusText(), BootID: s.o.BootID}
}

func (s *Server) mPresence(_ context.Context, _ *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	var p protocol.EmptyParams
	if err := protocol.DecodeParams(raw, &p); err != nil {
		return nil, paramsError("system-presence", err)
	}
	return s.hub.presenceList(), nil
}

func (s *Server) mSystemEvent(_ context.Context, c *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	return s.systemEvent(c, raw) // bounded and rate-limited: sysevent.go
}

func (s *Server) mLogsTail(_ context.Context, _ *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	var p protocol.LogsTailParams
	if perr := decode("logs.tail", "LogsTailParams", raw, &p); perr != nil {
		return nil, perr
	}
	if p.Limit == 0 {
		p.Limit = 200
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = 250000
	}
	if s.o.LogFile == "" {
		return nil, protocol.Errorf(protocol.ErrUnavailable, "this gateway has no file log (started without a log directory)")
	}
	res, err := logs.Tail(s.o.LogFile, p.Cursor, p.Limit, p.MaxBytes)
	if err != nil {
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Message: "read log: " + err.Error(), Retryable: true}
	}
	for i, l := range res.Lines {
		res.Lines[i] = logs.WithMessage(l)
	}
	return res, nil
}

func (s *Server) mConfigGet(_ context.Context, _ *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	var p protocol.ConfigGetParams
	if perr := decode("config.get", "ConfigGetParams", raw, &p); perr != nil {
		return nil, perr
	}
	return s.o.Config(), nil
}
