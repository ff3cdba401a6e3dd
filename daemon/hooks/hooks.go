// Package hooks serves the gateway's inbound webhooks on its port:
// POST /hooks/wake posts a wake-up text to the connected operators (a
// heartbeat event, now or with the next heartbeat) and POST /hooks/agent
// starts an agent run, optionally waiting for its result.
//
// The hooks are off by default: then both paths answer 404, like any path
// the gateway does not serve. When on (hooks.enabled), callers present
// the hooks' own token (hooks.token, not the gateway token) as
// `Authorization: Bearer` or the `x-gateway-token` header; a token in the
// query string is refused with 400, since URLs end up in logs. Failed
// authentication is rate limited by the gateway (429), as are requests
// over hooks.requestsPerMinute; bodies over hooks.maxBodyBytes get 413.
// Config changes, including switching the hooks on or off, apply without a
// restart. When the gateway has no agent runner, /hooks/agent answers 503.
//
// The hooks token reaches less than the gateway token: /hooks/agent runs
// only the agents in hooks.allowedAgentIds (by default only the hooks'
// default agent), only in sessions whose key starts with "hook:" (never
// an operator's session such as agent:main:main), and its runs have ids
// in the same namespace ("hook:" + the Idempotency-Key), so a hooks caller
// can neither join nor read a run somebody else started.
// Nothing here depends on the operating system.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Paths served.
const (
	PathWake  = "/hooks/wake"
	PathAgent = "/hooks/agent"
)

// TokenHeader is the header that may carry the hooks token instead of
// Authorization: Bearer.
const TokenHeader = "x-gateway-token"

// Wake modes.
const (
	ModeNow           = "now"
	ModeNextHeartbeat = "next-heartbeat"
)

// EventHeartbeat is the event a wake broadcasts to operators.
const EventHeartbeat = "heartbeat"

// maxQueued bounds the next-heartbeat queue; older texts are dropped.
const maxQueued = 100

// Prefix starts the session keys and run ids of hook runs.
const Prefix = "hook:"

// maxKeyBytes bounds an Idempotency-Key (the run id adds Prefix to it).
const maxKeyBytes = 200

// WakeParams is the body of POST /hooks/wake.
type WakeParams struct {
	Text string `json:"text"`
	Mode string `json:"mode,omitempty"` // "now" (default) or "next-heartbeat"
}

// AgentParams is the body of POST /hooks/agent.
type AgentParams struct {
	Message           string `json:"message"`
	AgentID           string `json:"agentId,omitempty"`
	SessionKey        string `json:"sessionKey,omitempty"`
	WaitForCompletion bool   `json:"waitForCompletion,omitempty"`
}

// HeartbeatPayload is the payload of the heartbeat event a wake sends.
type HeartbeatPayload struct {
	TS     int64       `json:"ts"`
	Reason string      `json:"reason"` // "wake" (mode now) or "heartbeat" (queued texts)
	Source string      `json:"source"` // "hooks"
	Events []WakeEvent `json:"events"`
}

// WakeEvent is one wake text.
type WakeEvent struct {
	TS   int64  `json:"ts"`
	Text string `json:"text"`
	Mode string `json:"mode"`
}

// Options configure New.
type Options struct {
	Config *config.Config // effective config, defaults filled in
	Log    *slog.Logger
	Getenv func(string) string // for hooks.tokenEnv
	// Agents returns the agent runner, or nil when there is none. It is
	// called per request, so a runner that is set up after the hooks is
	// picked up.
	Agents func() agent.Runner
}

// Service is the hooks feature.
type Service struct {
	log    *slog.Logger
	getenv func(string) string
	agents func() agent.Runner
	st     atomic.Pointer[settings]
	host   atomic.Pointer[hostRef]

	limMu   sync.Mutex
	tokens  float64
	lastRef time.Time

	qMu   sync.Mutex
	queue []WakeEvent

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // interval changed
}

type hostRef struct{ h gateway.Host }

// settings is the hot-reloadable config.
type settings struct {
	cfg          config.HooksConfig
	defaultAgent string // hooks.defaultAgentId, else agents.default
	token        string
	tokenErr     error
}

// agentAllowed reports whether hooks may run agent id.
func (st *settings) agentAllowed(id string) bool {
	if len(st.cfg.AllowedAgentIDs) == 0 {
		return id == st.defaultAgent
	}
	return slices.Contains(st.cfg.AllowedAgentIDs, id) || slices.Contains(st.cfg.AllowedAgentIDs, "*")
}

// allowedAgents describes the allowed agents for an error message.
func (st *settings) allowedAgents() string {
	if len(st.cfg.AllowedAgentIDs) == 0 {
		return fmt.Sprintf("only the default agent %q, since hooks.allowedAgentIds is unset", st.defaultAgent)
	}
	return "hooks.allowedAgentIds is " + strings.Join(st.cfg.AllowedAgentIDs, ", ")
}

// New builds the hooks feature.
func New(o Options) *Service {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Agents == nil {
		o.Agents = func() agent.Runner { return nil }
	}
	s := &Service{log: o.Log.With("feature", "hooks"), getenv: o.Getenv, agents: o.Agents, kick: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Apply(o.Config)
	s.wg.Add(1)
	go s.heartbeats()
	return s
}

// Name implements gateway.Extension.
func (s *Service) Name() string { return "hooks" }

// Methods implements gateway.Extension: hooks are HTTP only.
func (s *Service) Methods() []gateway.Method { return nil }

// Events implements gateway.Extension.
func (s *Service) Events() []string { return []string{EventHeartbeat} }

// Bind implements gateway.Extension.
func (s *Service) Bind(h gateway.Host) { s.host.Store(&hostRef{h: h}) }

// Routes implements gateway.HTTPRoutes. Every method is routed here so a
// disabled hook is 404 whatever the method.
func (s *Service) Routes() []gateway.Route {
	return []gateway.Route{
		{Pattern: PathWake, Handler: http.HandlerFunc(s.serveWake)},
		{Pattern: PathAgent, Handler: http.HandlerFunc(s.serveAgent)},
	}
}

// Apply takes a reloaded config: hooks switch on or off, the token and
// limits change, without a restart.
func (s *Service) Apply(cfg *config.Config) {
	c := cfg.Hooks
	st := &settings{cfg: c, defaultAgent: c.DefaultAgentID}
	if st.defaultAgent == "" {
		st.defaultAgent = cfg.Agents.Default
	}
	if st.defaultAgent == "" {
		st.defaultAgent = config.DefaultAgentID
	}
	if c.Enabled {
		st.token, st.tokenErr = config.ResolveSecret("hooks.token", c.Token, c.TokenEnv, c.TokenFile, s.getenv)
		if st.tokenErr != nil {
			s.log.Error("hooks are enabled but their token is unavailable; they answer 503", "err", st.tokenErr)
		}
	}
	old := s.st.Swap(st)
	if old == nil || old.cfg.Enabled != c.Enabled {
		s.log.Info("hooks", "enabled", c.Enabled)
	}
	if old == nil || old.cfg.RequestsPerMinute != c.RequestsPerMinute {
		s.limMu.Lock()
		s.tokens, s.lastRef = float64(perMinute(c)), time.Now()
		s.limMu.Unlock()
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops the heartbeat loop.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func perMinute(c config.HooksConfig) int {
	if c.RequestsPerMinute <= 0 {
		return config.DefaultHooksPerMinute
	}
	return c.RequestsPerMinute
}

// allow takes one request from the token bucket (capacity and refill per
// minute: requestsPerMinute). When empty it returns how long until the
// next request is allowed.
func (s *Service) allow(c config.HooksConfig, now time.Time) (bool, time.Duration) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	n := float64(perMinute(c))
	rate := n / 60 // per second
	s.tokens = math.Min(n, s.tokens+now.Sub(s.lastRef).Seconds()*rate)
	s.lastRef = now
	if s.tokens >= 1 {
		s.tokens--
		return true, 0
	}
	return false, time.Duration((1 - s.tokens) / rate * float64(time.Second))
}

// admit runs the checks every hook request goes through. It returns the
// body on success; otherwise it has answered.
func (s *Service) admit(w http.ResponseWriter, r *http.Request) (*settings, []byte, bool) {
	st := s.st.Load()
	ref := s.host.Load()
	if !st.cfg.Enabled || ref == nil {
		// The same answer as a path the gateway does not serve.
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"type": "not_found", "message": "Not Found"}})
		return nil, nil, false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.URL.Path+" takes POST")
		return nil, nil, false
	}
	for k := range r.URL.Query() {
		if strings.Contains(strings.ToLower(k), "token") {
			writeError(w, http.StatusBadRequest, "invalid_request",
				"a token in the query string is not accepted (URLs end up in logs); send it as `Authorization: Bearer <hooks.token>` or the x-gateway-token header")
			return nil, nil, false
		}
	}
	if st.tokenErr != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "hooks are enabled but their token is unavailable: "+st.tokenErr.Error())
		return nil, nil, false
	}
	if !ref.h.AuthorizeHTTPSecret(w, r, st.token, TokenHeader) {
		return nil, nil, false
	}
	if ok, wait := s.allow(st.cfg, time.Now()); !ok {
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("more than %d hook requests per minute (hooks.requestsPerMinute); retry after %ds", perMinute(st.cfg), secs))
		return nil, nil, false
	}
	limit := st.cfg.MaxBodyBytes
	if limit <= 0 {
		limit = config.DefaultHooksMaxBodyBytes
	}
	if r.ContentLength > limit {
		writeTooLarge(w, limit)
		return nil, nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeTooLarge(w, limit)
		} else {
			writeError(w, http.StatusBadRequest, "invalid_request", "reading the request body: "+err.Error())
		}
		return nil, nil, false
	}
	return st, body, true
}

func writeTooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large",
		fmt.Sprintf("the request body is over %d bytes (send less, or raise hooks.maxBodyBytes)", limit))
}

// decodeBody decodes a JSON object strictly (unknown fields are errors).
func decodeBody(w http.ResponseWriter, body []byte, v any, example string) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("the body is not valid: %s (send %s)", strings.TrimPrefix(err.Error(), "json: "), example))
		return false
	}
	return true
}

func (s *Service) serveWake(w http.ResponseWriter, r *http.Request) {
	_, body, ok := s.admit(w, r)
	if !ok {
		return
	}
	var p WakeParams
	const example = `{"text": "...", "mode": "now"|"next-heartbeat"}`
	if !decodeBody(w, body, &p, example) {
		return
	}
	if strings.TrimSpace(p.Text) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "text is required (send "+example+")")
		return
	}
	if p.Mode == "" {
		p.Mode = ModeNow
	}
	ev := WakeEvent{TS: time.Now().UnixMilli(), Text: p.Text, Mode: p.Mode}
	switch p.Mode {
	case ModeNow:
		s.qMu.Lock()
		events := append(s.queue, ev)
		s.queue = nil
		s.qMu.Unlock()
		s.broadcast("wake", events)
	case ModeNextHeartbeat:
		s.qMu.Lock()
		s.queue = append(s.queue, ev)
		if len(s.queue) > maxQueued {
			s.queue = s.queue[len(s.queue)-maxQueued:]
		}
		s.qMu.Unlock()
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("mode %q is not %q or %q", p.Mode, ModeNow, ModeNextHeartbeat))
		return
	}
	s.log.Info("wake hook", "mode", p.Mode, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "mode": p.Mode})
}

// broadcast sends a heartbeat event with events to the operators.
func (s *Service) broadcast(reason string, events []WakeEvent) {
	ref := s.host.Load()
	if ref == nil || len(events) == 0 {
		return
	}
	ref.h.Broadcast(EventHeartbeat, HeartbeatPayload{TS: time.Now().UnixMilli(), Reason: reason, Source: "hooks", Events: events},
		protocol.ScopeRead)
}

// heartbeats flushes the next-heartbeat queue every
// hooks.heartbeatIntervalMs.
func (s *Service) heartbeats() {
	defer s.wg.Done()
	for {
		iv := time.Duration(s.st.Load().cfg.HeartbeatIntervalMs) * time.Millisecond
		if iv <= 0 {
			iv = config.DefaultHooksHeartbeatMs * time.Millisecond
		}
		t := time.NewTimer(iv)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-s.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		s.qMu.Lock()
		events := s.queue
		s.queue = nil
		s.qMu.Unlock()
		s.broadcast("heartbeat", events)
	}
}

func (s *Service) serveAgent(w http.ResponseWriter, r *http.Request) {
	st, body, ok := s.admit(w, r)
	if !ok {
		return
	}
	var p AgentParams
	const example = `{"message": "...", "agentId"?: "...", "sessionKey"?: "...", "waitForCompletion"?: true}`
	if !decodeBody(w, body, &p, example) {
		return
	}
	if strings.TrimSpace(p.Message) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "message is required (send "+example+")")
		return
	}
	runner := s.agents()
	if runner == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable",
			"agent runs are not available in this gateway (it was built without the agent feature); /hooks/wake still works")
		return
	}
	if p.AgentID == "" {
		p.AgentID = st.defaultAgent
	}
	if !st.agentAllowed(p.AgentID) {
		writeError(w, http.StatusForbidden, "forbidden",
			fmt.Sprintf("agent %q may not be run by hooks (%s; add it there, or \"*\" for every agent)", p.AgentID, st.allowedAgents()))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxKeyBytes || strings.ContainsFunc(key, unicode.IsControl) {
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("the Idempotency-Key header is over %d bytes or has control characters (send a short printable key)", maxKeyBytes))
		return
	}
	if key == "" {
		key = uuid.NewString()
	}
	// Runs of hooks live in their own namespace: the caller's key cannot
	// name (join, and read the result of) a run started by an operator.
	runID := Prefix + key
	switch {
	case p.SessionKey == "":
		p.SessionKey = runID // a session of its own
	case !strings.HasPrefix(p.SessionKey, Prefix) || len(p.SessionKey) == len(Prefix):
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("sessionKey %q does not start with %q: hook runs only write to hook sessions (send e.g. %q, or leave it out for a session of the run's own)", p.SessionKey, Prefix, Prefix+"nightly"))
		return
	}
	// The run belongs to the gateway, not to this request: a caller that
	// does not wait must not cancel it by hanging up.
	runID, err := runner.StartAgent(s.ctx, p.Message, p.AgentID, p.SessionKey, runID)
	if err != nil {
		s.log.Warn("agent hook: start failed", "err", err)
		writeError(w, http.StatusInternalServerError, "agent_error", "starting the agent run failed: "+err.Error())
		return
	}
	s.log.Info("agent hook: run started", "runId", runID, "agentId", p.AgentID, "remote", r.RemoteAddr)
	if !p.WaitForCompletion {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "runId": runID})
		return
	}
	wait := time.Duration(st.cfg.WaitTimeoutMs) * time.Millisecond
	if wait <= 0 {
		wait = config.DefaultHooksWaitTimeoutMs * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	status, summary, err := runner.WaitAgent(ctx, runID)
	switch {
	case err != nil && ctx.Err() != nil:
		writeJSON(w, http.StatusGatewayTimeout, map[string]any{"ok": false, "runId": runID, "error": map[string]string{"type": "timeout",
			"message": fmt.Sprintf("run %s is still going after %s (it goes on; wait with `gatewayctl call agent.wait --params '{\"runId\":\"%s\"}'`, or raise hooks.waitTimeoutMs)", runID, wait, runID)}})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"ok": false, "runId": runID, "error": map[string]string{"type": "agent_error",
			"message": "waiting for the run failed: " + err.Error()}})
	default:
		out := map[string]any{"ok": status == "ok", "runId": runID, "status": status, "summary": summary}
		writeJSON(w, http.StatusOK, out)
	}
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"ok": false, "error": map[string]string{"type": typ, "message": msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
