// Package agent runs agents for the gateway: the protocol methods agent
// (two-stage: accepted, streamed "agent" events, final), agent.wait,
// agent.cancel and chat.history, and a Go API (Start, StartAgent,
// WaitAgent) for the other features (hooks, the OpenAI-compatible HTTP
// endpoints).
//
// Each agent in the config has a backend: "echo" (built in, the default;
// it answers with the message), "openai" (any OpenAI-compatible
// chat-completions endpoint, streamed with SSE) or "exec" (a command, the
// message on its standard input, its output streamed; it runs in its own
// process group, killed as a whole on timeout or cancel). A run's id is the
// caller's idempotency key; the same key within five minutes joins the run
// instead of starting another. Runs are bounded in number
// (agents.maxConcurrent) and in time (a timeout per run or agent).
//
// Session transcripts live in the state store: the user message is written
// (its own transaction) before the run is accepted, the answer is flushed
// at least every 500 ms while it streams and written again at the end, so
// a kill -9 loses at most the last half second of streamed text; answers
// that were still streaming are marked "interrupted" at the next start.
//
// Nothing here depends on the OS beyond the exec backend, which needs
// process groups (Linux, macOS).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// IdempotencyWindow is how long a run is remembered after it ends: a
// repeated idempotency key within it joins (or returns) the same run.
const IdempotencyWindow = 5 * time.Minute

// maxRemembered bounds the ended runs kept for the idempotency window.
const maxRemembered = 10000

// closeTimeout bounds Close's wait for runs to record their end.
const closeTimeout = 5 * time.Second

// Options configure New.
type Options struct {
	Config *config.Config // the effective config (defaults filled in)
	Store  *store.Store   // the state store (transcripts); required
	Log    *slog.Logger
	// Getenv reads API keys named by openai.apiKeyEnv; default os.Getenv.
	Getenv func(string) string
}

// Runner is the agent feature's Go API for the other features (the hooks,
// the chat channels): start (or join, by idempotency key) a run, and wait
// for its end. Manager implements it; the features take a func returning
// one, since the agent feature is built before them at startup.
type Runner interface {
	// StartAgent starts a run (or joins the run with the same
	// idempotencyKey within 5 minutes) and returns its runId.
	StartAgent(ctx context.Context, message, agentID, sessionKey, idempotencyKey string) (runID string, err error)
	// WaitAgent waits for the run's end: status "ok", "error" or
	// "timeout", and the run's summary (the assistant's text) or error.
	WaitAgent(ctx context.Context, runID string) (status, summary string, err error)
}

var _ Runner = (*Manager)(nil)

// Manager runs agents. It implements gateway.Extension and Runner.
type Manager struct {
	log      *slog.Logger
	sessions *sessions
	getenv   func(string) string
	cfg      atomic.Pointer[config.AgentsConfig]
	host     atomic.Value // gateway.Host

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	newRun chan struct{}   // closed (and replaced) when a keyed run is registered
	subs   subscriptions   // sessions.messages.subscribe
	runs   map[string]*Run // by id: in progress, and ended within the window
	ended  []endedRun      // ended keyed runs, oldest first
	active int
	closed bool
}

type endedRun struct {
	id  string
	at  time.Time
	run *Run
}

// New builds the manager and marks answers left streaming by a previous
// process as interrupted.
func New(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("agent: no state store (the daemon opens it before the features)")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	m := &Manager{log: o.Log.With("feature", "agent"), sessions: newSessions(o.Store), getenv: o.Getenv, runs: map[string]*Run{}, newRun: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())
	m.Apply(o.Config)
	n, err := m.sessions.recover()
	if err != nil {
		return nil, fmt.Errorf("agent: recover session transcripts: %w", err)
	}
	if n > 0 {
		m.log.Warn("marked answers that were streaming when the gateway stopped as interrupted", "count", n)
	}
	return m, nil
}

// Apply takes a new effective config (hot reload). Runs in progress keep
// the settings they started with.
func (m *Manager) Apply(cfg *config.Config) {
	if cfg == nil {
		cfg = config.Default()
	}
	a := cfg.WithDefaults().Agents
	m.cfg.Store(&a)
}

// Close cancels the runs in progress and waits (bounded) until they have
// recorded their end.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel(errShutdown)
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("agent: runs did not end within %s of shutdown", closeTimeout)
	}
}

type runLimits struct {
	maxMessage int
}

func (m *Manager) limitsNow() runLimits {
	return runLimits{maxMessage: m.cfg.Load().MaxMessageBytes}
}

func (m *Manager) sessionLimits() limits {
	c := m.cfg.Load()
	return limits{messages: c.MaxSessionMessages, bytes: c.MaxSessionBytes}
}

// Request is a run to start.
type Request struct {
	Message        string
	AgentID        string // "" = agents.default
	SessionKey     string // "" with Ephemeral false = "agent:<id>:main"
	Ephemeral      bool   // no transcript (stateless HTTP requests)
	IdempotencyKey string // the run id; "" = a new random id, not remembered after the run
	Timeout        time.Duration
	History        []ChatMessage // conversation before Message (HTTP requests); nil = from the transcript
	SystemPrompt   string
	ChatConn       string // chat.send's connection, which gets the run's chat events; set before the run is published, since a joining caller may launch it
}

// DefaultSessionKey is the session of agent id when a run names none.
func DefaultSessionKey(agentID string) string { return "agent:" + agentID + ":main" }

// Prepare creates (or, by idempotency key, finds) a run without starting
// it, so the caller can answer and subscribe first; Launch starts it. A
// new run's user message is in the transcript when Prepare returns. The
// error is a *protocol.Error: INVALID_REQUEST for bad input or a full
// session, UNAVAILABLE (retryable) past agents.maxConcurrent or while
// shutting down.
func (m *Manager) Prepare(req Request) (run *Run, joined bool, perr *protocol.Error) {
	cfg := m.cfg.Load()
	if strings.TrimSpace(req.Message) == "" {
		return nil, false, protocol.Errorf(protocol.ErrInvalidRequest, "message is empty (pass the text for the agent)")
	}
	if len(req.Message) > cfg.MaxMessageBytes {
		return nil, false, protocol.Errorf(protocol.ErrInvalidRequest, fmt.Sprintf("message is %d bytes, more than agents.maxMessageBytes (%d): shorten it or raise the limit", len(req.Message), cfg.MaxMessageBytes))
	}
	if len(req.IdempotencyKey) > 256 {
		return nil, false, protocol.Errorf(protocol.ErrInvalidRequest, "idempotencyKey is longer than 256 bytes")
	}
	if req.AgentID == "" {
		req.AgentID = cfg.Default
	}
	ac, ok := cfg.Agent(req.AgentID)
	if !ok {
		return nil, false, &protocol.Error{Code: protocol.ErrInvalidRequest, Message: fmt.Sprintf("unknown agent %q (configured agents: %s)", req.AgentID, strings.Join(cfg.AgentIDs(), ", ")), Details: protocol.Details{"code": "UNKNOWN_AGENT"}}
	}
	if !req.Ephemeral && req.SessionKey == "" {
		req.SessionKey = DefaultSessionKey(req.AgentID)
	}
	if req.Ephemeral {
		req.SessionKey = ""
	}
	if err := checkSessionKey(req.SessionKey); err != nil {
		return nil, false, protocol.Errorf(protocol.ErrInvalidRequest, "sessionKey "+err.Error())
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = time.Duration(cfg.TimeoutMs) * time.Millisecond
		if ac.TimeoutMs > 0 {
			timeout = time.Duration(ac.TimeoutMs) * time.Millisecond
		}
	}
	keyed := req.IdempotencyKey != ""
	id := req.IdempotencyKey
	if !keyed {
		id = uuid.NewString()
	}

	m.mu.Lock()
	if keyed {
		if r := m.runs[id]; r != nil {
			m.mu.Unlock()
			return r, true, nil
		}
	}
	if m.closed {
		m.mu.Unlock()
		return nil, false, &protocol.Error{Code: protocol.ErrUnavailable, Message: "the gateway is shutting down; run the agent again after it restarts", Retryable: true}
	}
	if m.active >= cfg.MaxConcurrent {
		n := m.active
		m.mu.Unlock()
		return nil, false, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, RetryAfterMs: 1000,
			Message: fmt.Sprintf("too many agent runs in progress (%d, the limit agents.maxConcurrent is %d): retry when one ends, or raise agents.maxConcurrent", n, cfg.MaxConcurrent),
			Details: protocol.Details{"code": "TOO_MANY_RUNS", "limit": cfg.MaxConcurrent}}
	}
	m.active++
	ctx, cancel := context.WithCancelCause(m.ctx)
	r := &Run{
		id: id, agentID: req.AgentID, session: req.SessionKey, acceptedAt: time.Now(), keyed: keyed,
		m: m, be: newBackend(ac, req.AgentID, m.getenv), timeout: timeout, ctx: ctx, cancel: cancel,
		subs: map[int]func(Event){}, done: make(chan struct{}), chatConn: req.ChatConn,
		in: input{RunID: id, AgentID: req.AgentID, SessionKey: req.SessionKey, Message: req.Message, History: req.History, SystemPrompt: req.SystemPrompt},
	}
	if keyed {
		m.runs[id] = r
		close(m.newRun)
		m.newRun = make(chan struct{})
	}
	m.mu.Unlock()

	if r.session != "" {
		if r.in.History == nil && ac.Backend == config.BackendOpenAI && cfg.HistoryMessages > 0 {
			hist, _, err := m.sessions.history(r.session, cfg.HistoryMessages)
			if err != nil {
				perr := protocol.Errorf(protocol.ErrUnavailable, "read session transcript: "+err.Error())
				m.abandon(r, perr)
				return nil, false, perr
			}
			r.in.History = chatHistory(hist)
		}
		err := m.sessions.appendUser(r.session, Message{Role: "user", Text: req.Message, TS: r.acceptedAt.UnixMilli(), RunID: id, AgentID: req.AgentID}, m.sessionLimits())
		if err != nil {
			perr := protocol.Errorf(protocol.ErrUnavailable, "write session transcript: "+err.Error())
			var full *SessionFullError
			if errors.As(err, &full) {
				perr = &protocol.Error{Code: protocol.ErrInvalidRequest, Message: full.Error(), Details: protocol.Details{"code": "SESSION_FULL", "sessionKey": full.SessionKey}}
			}
			m.abandon(r, perr)
			return nil, false, perr
		}
	}
	return r, false, nil
}

// chatHistory turns transcript messages into a conversation for a backend
// (answers that failed without text are left out).
func chatHistory(msgs []Message) []ChatMessage {
	out := make([]ChatMessage, 0, len(msgs))
	for _, m := range msgs {
		if m.Text == "" {
			continue
		}
		out = append(out, ChatMessage{Role: m.Role, Content: m.Text})
	}
	return out
}

// abandon forgets a prepared run that will not be launched; a caller that
// joined it meanwhile sees it end with perr.
func (m *Manager) abandon(r *Run, perr *protocol.Error) {
	r.launchOnce.Do(func() {})
	m.mu.Lock()
	if m.runs[r.id] == r {
		delete(m.runs, r.id)
	}
	m.active--
	m.mu.Unlock()
	r.cancel(nil)
	now := time.Now().UnixMilli()
	r.mu.Lock()
	r.result = &Result{RunID: r.id, Status: StatusError, StartedAt: now, EndedAt: now, Error: perr}
	r.subs = nil
	r.mu.Unlock()
	close(r.done)
}

// Launch starts a prepared run (a no-op for a run already started).
func (r *Run) Launch() { r.launch() }

// Start prepares a run, subscribes fn (nil: none) before anything happens
// and launches it.
func (m *Manager) Start(req Request, fn func(Event)) (*Run, bool, *protocol.Error) {
	r, joined, perr := m.Prepare(req)
	if perr != nil {
		return nil, false, perr
	}
	if fn != nil {
		r.Subscribe(fn)
	}
	r.Launch()
	return r, joined, nil
}

// finished is called once by a run after it ended.
func (m *Manager) finished(r *Run) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active--
	if !r.keyed {
		return
	}
	m.ended = append(m.ended, endedRun{id: r.id, at: now, run: r})
	cut := 0
	for cut < len(m.ended) && (now.Sub(m.ended[cut].at) > IdempotencyWindow || len(m.ended)-cut > maxRemembered) {
		e := m.ended[cut]
		if m.runs[e.id] == e.run {
			delete(m.runs, e.id)
		}
		cut++
	}
	if cut > 0 {
		// Drop from the front without copying the rest (once the window is
		// full that happens at every finished run): the cleared slots stop
		// holding their runs, and append moves the live tail to a new array
		// when this one runs out, so the cost per run stays constant.
		clear(m.ended[:cut])
		m.ended = m.ended[cut:]
	}
}

// Lookup finds a run in progress or ended within the idempotency window.
func (m *Manager) Lookup(runID string) (*Run, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[runID]
	if r == nil {
		return nil, false
	}
	if res := r.Result(); res != nil && time.Since(time.UnixMilli(res.EndedAt)) > IdempotencyWindow {
		return nil, false
	}
	return r, true
}

// StartAgent implements Runner: start (or join) a run.
func (m *Manager) StartAgent(ctx context.Context, message, agentID, sessionKey, idempotencyKey string) (string, error) {
	if idempotencyKey == "" {
		idempotencyKey = uuid.NewString()
	}
	r, _, perr := m.Start(Request{Message: message, AgentID: agentID, SessionKey: sessionKey, IdempotencyKey: idempotencyKey}, nil)
	if perr != nil {
		return "", perr
	}
	return r.ID(), nil
}

// WaitAgent implements Runner: wait for a run's end.
// A run that failed returns its status and partial text with a nil error;
// err is for an unknown run or ctx ending.
func (m *Manager) WaitAgent(ctx context.Context, runID string) (status, summary string, err error) {
	r, ok := m.Lookup(runID)
	if !ok {
		return "", "", unknownRun(runID)
	}
	res, err := r.Wait(ctx)
	if err != nil {
		return "", "", fmt.Errorf("wait for agent run %s: %w", runID, err)
	}
	return res.Status, res.Summary, nil
}

// await returns the run with id, waiting for it to be started until ctx
// ends.
func (m *Manager) await(ctx context.Context, id string) (*Run, error) {
	for {
		m.mu.Lock()
		next := m.newRun
		m.mu.Unlock()
		if r, ok := m.Lookup(id); ok {
			return r, nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func unknownRun(id string) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrInvalidRequest, Message: fmt.Sprintf("unknown run %q (runs are remembered for %s after they end, and not across gateway restarts)", id, IdempotencyWindow), Details: protocol.Details{"code": "UNKNOWN_RUN"}}
}

// History returns the last limit messages of a session's transcript and
// its total message count.
func (m *Manager) History(sessionKey string, limit int) ([]Message, int, error) {
	return m.sessions.history(sessionKey, limit)
}

// Agents returns the current agents config (for /v1/models).
func (m *Manager) Agents() config.AgentsConfig { return *m.cfg.Load() }

// Name implements gateway.Extension.
func (m *Manager) Name() string { return "agent" }

// Events implements gateway.Extension.
func (m *Manager) Events() []string { return []string{"agent", "chat", "session.message"} }

// Bind implements gateway.Extension.
func (m *Manager) Bind(h gateway.Host) { m.host.Store(&h) }
