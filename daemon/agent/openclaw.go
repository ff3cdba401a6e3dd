package agent

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// The methods and events OpenClaw's clients use to chat: its CLI
// (agents.list before `openclaw agent` without --agent) and its Control UI
// (agents.list, sessions.list, chat.startup, chat.history, chat.send,
// chat.abort, sessions.messages.subscribe, and the "chat" event that
// streams a reply). They are backed by gatewayd's agent runs and session
// transcripts; the answers carry the fields OpenClaw's clients read.

// mainKey is the last part of an agent's main session key
// ("agent:<id>:main"), as agents.list announces it.
const mainKey = "main"

// AgentsListPayload is agents.list's answer (OpenClaw's AgentsListResult).
type AgentsListPayload struct {
	DefaultID string `json:"defaultId"`
	// Ownership is "sole" with one agent (OpenClaw's CLI then needs no
	// --agent), else "legacy": runs without an agent go to the default.
	Ownership         string         `json:"ownership"`
	SelectionRequired bool           `json:"selectionRequired"`
	MainKey           string         `json:"mainKey"`
	Scope             string         `json:"scope"` // "per-sender": sessions are per agent
	Agents            []AgentSummary `json:"agents"`
}

// AgentSummary is one agent in agents.list (OpenClaw's fields only: its
// result schema is closed).
type AgentSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"` // "agent"
	// Model names what answers: "<backend>/<model>" (openai: the
	// upstream's model; echo and exec: the backend). OpenClaw's Control UI
	// lets you chat only with an agent that has one.
	Model AgentModel `json:"model"`
}

// AgentModel is an agent's model in agents.list.
type AgentModel struct {
	Primary string `json:"primary"`
}

// agentModel is what agents.list reports as an agent's model.
func agentModel(ac config.AgentConfig) string {
	switch {
	case ac.Backend == config.BackendOpenAI && ac.OpenAI != nil:
		return "openai/" + ac.OpenAI.Model
	case ac.Backend == "":
		return "gatewayd/" + config.BackendEcho
	}
	return "gatewayd/" + ac.Backend
}

func (m *Manager) agentsList() AgentsListPayload {
	cfg := m.cfg.Load()
	ids := cfg.AgentIDs()
	out := AgentsListPayload{DefaultID: cfg.Default, Ownership: "legacy", MainKey: mainKey, Scope: "per-sender", Agents: make([]AgentSummary, 0, len(ids))}
	if len(ids) == 1 {
		out.Ownership = "sole"
	}
	for _, id := range ids {
		ac, _ := cfg.Agent(id)
		out.Agents = append(out.Agents, AgentSummary{ID: id, Name: id, Kind: "agent", Model: AgentModel{Primary: agentModel(ac)}})
	}
	return out
}

func (m *Manager) mAgentsList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.AgentsListParams
	if perr := call.Decode("AgentsListParams", &p); perr != nil {
		return nil, perr
	}
	return m.agentsList(), nil
}

// SessionRow is one session in sessions.list (the fields of OpenClaw's
// session rows that its clients read).
type SessionRow struct {
	Key          string `json:"key"`
	SessionID    string `json:"sessionId"`
	AgentID      string `json:"agentId,omitempty"`
	Kind         string `json:"kind"` // "direct"
	Label        string `json:"label,omitempty"`
	DisplayName  string `json:"displayName"`
	UpdatedAt    *int64 `json:"updatedAt"`
	MessageCount int    `json:"messageCount"`
	LastMessage  string `json:"lastMessagePreview,omitempty"`
	Running      bool   `json:"running"`
}

// sessionRow builds a session's row from its transcript's last messages.
func (m *Manager) sessionRow(key string, total int, last []Message) SessionRow {
	row := SessionRow{Key: key, SessionID: key, AgentID: m.sessionAgent("", key), Kind: "direct", DisplayName: key, MessageCount: total}
	if row.AgentID == "" && strings.HasPrefix(key, "agent:") {
		row.AgentID = strings.SplitN(strings.TrimPrefix(key, "agent:"), ":", 2)[0]
	}
	if n := len(last); n > 0 {
		ts := last[n-1].TS
		row.UpdatedAt = &ts
		row.LastMessage = cutUTF8(last[n-1].Text, 200)
		row.Running = last[n-1].Status == StatusStreaming
	}
	return row
}

// SessionsListPayload is sessions.list's answer.
type SessionsListPayload struct {
	TS       int64        `json:"ts"`
	Path     string       `json:"path"`
	Count    int          `json:"count"`
	Defaults SessionsDefs `json:"defaults"`
	Sessions []SessionRow `json:"sessions"`
}

// SessionsDefs is sessions.list's defaults.
type SessionsDefs struct {
	ModelProvider *string `json:"modelProvider"`
	Model         *string `json:"model"`
	ContextTokens *int64  `json:"contextTokens"`
}

func (m *Manager) mSessionsList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.SessionsListParams
	if perr := call.Decode("SessionsListParams", &p); perr != nil {
		return nil, perr
	}
	rows, err := m.Sessions()
	if err != nil {
		return nil, protocol.Errorf(protocol.ErrUnavailable, "read session transcripts: "+err.Error())
	}
	if p.AgentID != "" {
		rows = slices.DeleteFunc(rows, func(r SessionRow) bool { return r.AgentID != p.AgentID })
	}
	if p.Search != "" {
		rows = slices.DeleteFunc(rows, func(r SessionRow) bool { return !strings.Contains(r.Key, p.Search) })
	}
	if p.Offset != nil && *p.Offset > 0 {
		rows = rows[min(int(*p.Offset), len(rows)):]
	}
	if p.Limit != nil && int(*p.Limit) < len(rows) {
		rows = rows[:*p.Limit]
	}
	return SessionsListPayload{TS: time.Now().UnixMilli(), Path: "gatewayd state store", Count: len(rows), Sessions: rows}, nil
}

// Sessions lists the sessions with a transcript, the most recently updated
// first.
func (m *Manager) Sessions() ([]SessionRow, error) {
	var rows []SessionRow
	err := m.sessions.st.View(func(tx *store.Tx) error {
		return tx.List(bucketMeta, "", func(key string, raw []byte) error {
			var meta sessionMeta
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil // not a session's meta
			}
			row := m.sessionRow(key, meta.Messages, nil)
			if meta.Updated > 0 {
				u := meta.Updated
				row.UpdatedAt = &u
			}
			rows = append(rows, row)
			return nil
		})
	})
	sort.SliceStable(rows, func(i, j int) bool {
		var a, b int64
		if rows[i].UpdatedAt != nil {
			a = *rows[i].UpdatedAt
		}
		if rows[j].UpdatedAt != nil {
			b = *rows[j].UpdatedAt
		}
		return a > b
	})
	if rows == nil {
		rows = []SessionRow{}
	}
	return rows, err
}

// ChatStartupPayload is chat.startup's answer: chat.history's for the
// session, and how the session was resolved.
type ChatStartupPayload struct {
	*HistoryPayload
	Resolution map[string]any `json:"resolution"`
}

func (m *Manager) mChatStartup(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.ChatStartupParams
	if perr := call.Decode("ChatStartupParams", &p); perr != nil {
		return nil, perr
	}
	if p.SessionKey == "" {
		// OpenClaw's other form names a session by a short id that
		// gatewayd does not hand out.
		return map[string]any{"resolution": map[string]any{"ok": false}}, nil
	}
	h, perr := m.history("chat.startup", protocol.ChatHistoryParams{SessionKey: p.SessionKey, AgentID: p.AgentID, Limit: p.Limit})
	if perr != nil {
		return nil, perr
	}
	agentID := m.sessionAgent(p.AgentID, p.SessionKey)
	if agentID == "" {
		agentID = m.cfg.Load().Default
	}
	return ChatStartupPayload{HistoryPayload: h, Resolution: map[string]any{"ok": true, "key": p.SessionKey, "agentId": agentID}}, nil
}

// ChatSendAck is chat.send's answer; the reply streams as chat events.
type ChatSendAck struct {
	RunID  string `json:"runId"`
	Status string `json:"status"` // "started", or "in_flight" for a repeated idempotency key
	// MessageSeq is the user message's position in the transcript
	// (__openclaw.seq in chat.history), so the client can match it.
	MessageSeq int `json:"messageSeq,omitempty"`
}

func (m *Manager) mChatSend(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.ChatSendParams
	if perr := call.Decode("ChatSendParams", &p); perr != nil {
		return nil, perr
	}
	if p.SessionKey == "" || p.IdempotencyKey == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid chat.send params: sessionKey and idempotencyKey are required")
	}
	var timeout time.Duration
	if p.TimeoutMs != nil && *p.TimeoutMs > 0 {
		timeout = time.Duration(*p.TimeoutMs) * time.Millisecond
	}
	run, joined, perr := m.Prepare(Request{Message: p.Message, AgentID: m.sessionAgent(p.AgentID, p.SessionKey), SessionKey: p.SessionKey,
		IdempotencyKey: p.IdempotencyKey, Timeout: timeout, ChatConn: call.Peer.ConnID()})
	if perr != nil {
		return nil, perr
	}
	if joined {
		return ChatSendAck{RunID: run.ID(), Status: "in_flight"}, nil
	}
	// The answer is written only after Launch: the transcript's last
	// message is this run's user message.
	_, total, _ := m.History(p.SessionKey, 1)
	run.Launch()
	return ChatSendAck{RunID: run.ID(), Status: "started", MessageSeq: total}, nil
}

// ChatAbortPayload is chat.abort's answer.
type ChatAbortPayload struct {
	OK      bool     `json:"ok"`
	Aborted bool     `json:"aborted"`
	RunIDs  []string `json:"runIds"`
}

func (m *Manager) mChatAbort(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.ChatAbortParams
	if perr := call.Decode("ChatAbortParams", &p); perr != nil {
		return nil, perr
	}
	if p.SessionKey == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid chat.abort params: at /sessionKey: required")
	}
	out := ChatAbortPayload{OK: true, RunIDs: []string{}}
	m.mu.Lock()
	var runs []*Run
	for _, r := range m.runs {
		if r.session == p.SessionKey && (p.RunID == "" || r.id == p.RunID) {
			runs = append(runs, r)
		}
	}
	m.mu.Unlock()
	for _, r := range runs {
		if r.abort() {
			out.RunIDs = append(out.RunIDs, r.id)
		}
	}
	sort.Strings(out.RunIDs)
	out.Aborted = len(out.RunIDs) > 0
	return out, nil
}

func (m *Manager) mMessagesSubscribe(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.SessionsMessagesSubscribeParams
	if perr := call.Decode("SessionsMessagesSubscribeParams", &p); perr != nil {
		return nil, perr
	}
	if p.Key == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid sessions.messages.subscribe params: at /key: required")
	}
	m.subs.add(call.Peer.ConnID(), p.Key)
	return map[string]any{"subscribed": true, "key": p.Key}, nil
}

func (m *Manager) mMessagesUnsubscribe(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.SessionsMessagesUnsubscribeParams
	if perr := call.Decode("SessionsMessagesUnsubscribeParams", &p); perr != nil {
		return nil, perr
	}
	if p.Key == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid sessions.messages.unsubscribe params: at /key: required")
	}
	m.subs.remove(call.Peer.ConnID(), p.Key)
	return map[string]any{"subscribed": false, "key": p.Key}, nil
}

// subscriptions are the sessions each connection subscribed to with
// sessions.messages.subscribe; they get session.message events.
type subscriptions struct {
	mu     sync.Mutex
	byConn map[string]map[string]bool
}

func (s *subscriptions) add(conn, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byConn == nil {
		s.byConn = map[string]map[string]bool{}
	}
	if s.byConn[conn] == nil {
		s.byConn[conn] = map[string]bool{}
	}
	s.byConn[conn][key] = true
}

func (s *subscriptions) remove(conn, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byConn[conn], key)
	if len(s.byConn[conn]) == 0 {
		delete(s.byConn, conn)
	}
}

func (s *subscriptions) drop(conn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byConn, conn)
}

func (s *subscriptions) subscribers(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for conn, keys := range s.byConn {
		if keys[key] {
			out = append(out, conn)
		}
	}
	return out
}

// Disconnected implements gateway.ConnObserver: a closed connection's
// subscriptions end.
func (m *Manager) Disconnected(p *gateway.Peer) { m.subs.drop(p.ConnID()) }

// Connected implements gateway.ConnObserver.
func (m *Manager) Connected(*gateway.Peer) {}

// ChatEvent is the payload of a "chat" event (OpenClaw's ChatEvent): a
// session run's reply as it streams (state delta, the whole text so far),
// then its end (final, error or aborted).
type ChatEvent struct {
	RunID        string          `json:"runId"`
	SessionKey   string          `json:"sessionKey"`
	Seq          int64           `json:"seq"`
	State        string          `json:"state"`
	DeltaText    *string         `json:"deltaText,omitempty"`
	Replace      bool            `json:"replace,omitempty"`
	Message      *DisplayMessage `json:"message,omitempty"`
	ErrorMessage string          `json:"errorMessage,omitempty"`
	StopReason   string          `json:"stopReason,omitempty"`
}

// DisplayMessage is a message in OpenClaw's form, in chat and session.message
// events.
type DisplayMessage struct {
	Role           string        `json:"role"`
	Content        []ContentPart `json:"content"`
	Timestamp      int64         `json:"timestamp"`
	RunID          string        `json:"runId,omitempty"`
	IdempotencyKey string        `json:"idempotencyKey,omitempty"`
}

// relayChat turns a session run's agent events into chat events, and its
// final answer into a session.message event, for the connections
// subscribed to the session (sessions.messages.subscribe, as OpenClaw's
// Control UI does for the session it shows) and the connection that sent
// the message with chat.send. Runs nobody watches cost nothing more. (The
// user's message is not sent: the client that sent it shows it already,
// and every client reads it with the answer when it reloads the history
// after the final chat event.)
func (r *Run) relayChat() {
	h := r.m.hostNow()
	if h == nil || r.session == "" {
		return
	}
	var (
		seq  int64
		text strings.Builder
	)
	r.Subscribe(func(ev Event) {
		ce := ChatEvent{RunID: r.id, SessionKey: r.session}
		switch d := ev.Data.(type) {
		case AssistantData:
			text.WriteString(d.Delta)
			t := text.String()
			ce.State, ce.DeltaText, ce.Replace = "delta", &t, true
			ce.Message = &DisplayMessage{Role: "assistant", Content: []ContentPart{{Type: "text", Text: t}}, Timestamp: ev.TS}
		case LifecycleData:
			if d.Phase != "end" {
				return
			}
			msg := &DisplayMessage{Role: "assistant", Content: []ContentPart{{Type: "text", Text: text.String()}}, Timestamp: ev.TS, RunID: r.id, IdempotencyKey: r.id}
			switch {
			case d.Status == StatusOK:
				ce.State, ce.Message, ce.StopReason = "final", msg, "stop"
			case isAbort(d.Error):
				ce.State, ce.Message, ce.StopReason = "aborted", msg, "aborted"
			default:
				ce.State, ce.Message = "error", nil
				if d.Error != nil {
					ce.ErrorMessage = d.Error.Message
				}
			}
			r.m.sessionMessage(h, r.session, *msg)
		default:
			return
		}
		seq++
		ce.Seq = seq
		r.m.toWatchers(h, r.session, r.chatConn, "chat", ce)
	})
}

// isAbort reports whether a run's error is its cancellation.
func isAbort(e *protocol.Error) bool { return e != nil && e.DetailCode() == "RUN_CANCELED" }

// sessionMessage sends a session.message event to the connections
// subscribed to session.
func (m *Manager) sessionMessage(h gateway.Host, session string, msg DisplayMessage) {
	m.toWatchers(h, session, "", "session.message", map[string]any{"sessionKey": session, "key": session, "message": msg})
}

// toWatchers sends an event to the connections subscribed to session, and
// to conn (the chat.send caller) when it is not "".
func (m *Manager) toWatchers(h gateway.Host, session, conn, event string, payload any) {
	conns := m.subs.subscribers(session)
	if conn != "" && !slices.Contains(conns, conn) {
		conns = append(conns, conn)
	}
	for _, id := range conns {
		if p, ok := h.Peer(id); ok {
			p.SendEvent(event, payload)
		}
	}
}

func (m *Manager) hostNow() gateway.Host {
	h, _ := m.host.Load().(*gateway.Host)
	if h == nil {
		return nil
	}
	return *h
}

// abort cancels the run as chat.abort does (reported whether it was still
// in progress).
func (r *Run) abort() bool { return r.Cancel() }

// healthRecent is how many recent sessions health lists.
const healthRecent = 5

// ContributeHealth implements gateway.HealthContributor: the agents (with
// their sessions) and the default agent, in OpenClaw's health fields.
// gatewayd's agents have no heartbeat runs: heartbeatSeconds is 0 and each
// agent's heartbeat is disabled.
func (m *Manager) ContributeHealth(h *gateway.Health) {
	cfg := m.cfg.Load()
	rows, err := m.Sessions()
	if err != nil {
		m.log.Warn("health: cannot list sessions", "err", err)
	}
	now := time.Now().UnixMilli()
	summary := func(rows []SessionRow) map[string]any {
		recent := []map[string]any{}
		for _, r := range rows[:min(len(rows), healthRecent)] {
			var age any
			if r.UpdatedAt != nil {
				age = now - *r.UpdatedAt
			}
			recent = append(recent, map[string]any{"key": r.Key, "updatedAt": r.UpdatedAt, "age": age})
		}
		return map[string]any{"path": "gatewayd state store (" + bucketMeta + ")", "count": len(rows), "recent": recent}
	}
	h.DefaultAgentID = cfg.Default
	h.HeartbeatSeconds = 0
	h.Sessions = summary(rows)
	h.Agents = h.Agents[:0]
	for _, id := range cfg.AgentIDs() {
		mine := slices.DeleteFunc(slices.Clone(rows), func(r SessionRow) bool { return r.AgentID != id })
		h.Agents = append(h.Agents, map[string]any{
			"agentId": id, "name": id, "isDefault": id == cfg.Default,
			"heartbeat": map[string]any{"enabled": false, "every": "disabled", "everyMs": nil},
			"sessions":  summary(mine),
		})
	}
}
