package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// AcceptedPayload is the first response of "agent".
type AcceptedPayload struct {
	RunID      string `json:"runId"`
	Status     string `json:"status"` // "accepted"
	AcceptedAt int64  `json:"acceptedAt"`
	SessionKey string `json:"sessionKey,omitempty"`
	AgentID    string `json:"agentId,omitempty"`
}

// defaultWaitMs is agent.wait's default bound.
const defaultWaitMs = 30000

type cancelParams struct {
	RunID string `json:"runId"`
}

// History limits of chat.history.
const (
	defaultHistoryLimit = 200
	maxHistoryLimit     = 1000
)

// HistoryPayload is chat.history's answer: gatewayd's fields (sessionKey,
// messages with role and text, total) and OpenClaw's (messages with
// content parts and timestamp, totalMessages, sessionInfo), so gatewayctl
// and OpenClaw's clients read the same answer.
type HistoryPayload struct {
	SessionKey    string           `json:"sessionKey"`
	SessionID     string           `json:"sessionId"`
	Messages      []HistoryMessage `json:"messages"`
	Total         int              `json:"total"` // messages in the session (Messages holds the last limit)
	TotalMessages int              `json:"totalMessages"`
	HasMore       bool             `json:"hasMore"`
	SessionInfo   SessionRow       `json:"sessionInfo"`
	PendingInputs PendingInputs    `json:"pendingInputs"`
}

// PendingInputs are OpenClaw's queued inputs of a session; gatewayd runs
// every message at once, so there are none.
type PendingInputs struct {
	Items []any `json:"items"`
	Total int   `json:"total"`
}

// HistoryMessage is a transcript message as chat.history answers it.
type HistoryMessage struct {
	Message
	Content   []ContentPart `json:"content"`   // OpenClaw's form of Text
	Timestamp int64         `json:"timestamp"` // OpenClaw's name of TS
	ID        string        `json:"id"`
	// OpenClaw's clients match a message to the send that made it by
	// idempotencyKey (the run id; the user's message is "<runId>:user")
	// and order and deduplicate by __openclaw.seq.
	IdempotencyKey string       `json:"idempotencyKey"`
	Meta           OpenClawMeta `json:"__openclaw"`
}

// OpenClawMeta is the __openclaw part of a message.
type OpenClawMeta struct {
	ID    string `json:"id"`
	Seq   int    `json:"seq"` // 1-based position in the transcript
	RunID string `json:"runId"`
}

// messageIdentity is a transcript message's id, position and
// idempotency key, as OpenClaw's clients read them.
func messageIdentity(session string, index int, m Message) (id string, meta OpenClawMeta, key string) {
	id = fmt.Sprintf("%s#%d", session, index)
	key = m.RunID
	if m.Role == "user" {
		key += ":user"
	}
	return id, OpenClawMeta{ID: id, Seq: index + 1, RunID: m.RunID}, key
}

// ContentPart is one part of an OpenClaw message's content.
type ContentPart struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

func historyMessages(session string, first int, msgs []Message) []HistoryMessage {
	out := make([]HistoryMessage, len(msgs))
	for i, m := range msgs {
		id, meta, key := messageIdentity(session, first+i, m)
		out[i] = HistoryMessage{Message: m, Content: []ContentPart{{Type: "text", Text: m.Text}}, Timestamp: m.TS,
			ID: id, IdempotencyKey: key, Meta: meta}
	}
	return out
}

// Methods implements gateway.Extension.
func (m *Manager) Methods() []gateway.Method {
	return []gateway.Method{
		// agent answers twice: the first response is sent from the handler
		// (so it precedes every event of the run), the final is the
		// handler's return value.
		// Scopes are OpenClaw's for the same methods (agent.cancel is
		// gatewayd's own).
		{Name: "agent", Scope: protocol.ScopeWrite, Async: true, Handler: m.mAgent},
		{Name: "agent.wait", Scope: protocol.ScopeWrite, Async: true, Handler: m.mWait},
		{Name: "agent.cancel", Scope: protocol.ScopeWrite, Handler: m.mCancel},
		{Name: "agents.list", Scope: protocol.ScopeRead, Handler: m.mAgentsList},
		{Name: "models.list", Scope: protocol.ScopeRead, Handler: m.mModelsList},
		{Name: "chat.history", Scope: protocol.ScopeRead, Handler: m.mHistory},
		{Name: "chat.startup", Scope: protocol.ScopeRead, Handler: m.mChatStartup},
		{Name: "chat.send", Scope: protocol.ScopeWrite, Handler: m.mChatSend},
		{Name: "chat.abort", Scope: protocol.ScopeWrite, Handler: m.mChatAbort},
		{Name: "sessions.list", Scope: protocol.ScopeRead, Handler: m.mSessionsList},
		{Name: "sessions.messages.subscribe", Scope: protocol.ScopeRead, Handler: m.mMessagesSubscribe},
		{Name: "sessions.messages.unsubscribe", Scope: protocol.ScopeRead, Handler: m.mMessagesUnsubscribe},
	}
}

func (m *Manager) mAgent(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.AgentParams
	if perr := call.Decode("AgentParams", &p); perr != nil {
		return nil, perr
	}
	if p.IdempotencyKey == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent params: at /idempotencyKey: required (a unique key per run; it becomes the runId)")
	}
	var timeout time.Duration
	if p.Timeout != nil {
		if *p.Timeout < 0 || *p.Timeout > 86400 {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent params: at /timeout: must be 0 to 86400 seconds")
		}
		timeout = time.Duration(*p.Timeout) * time.Second
	}
	run, _, perr := m.Prepare(Request{Message: p.Message, AgentID: m.sessionAgent(p.AgentID, p.SessionKey), SessionKey: p.SessionKey,
		IdempotencyKey: p.IdempotencyKey, Timeout: timeout, SystemPrompt: p.ExtraSystemPrompt})
	if perr != nil {
		return nil, perr
	}
	peer := call.Peer
	peer.Respond(call.ID, AcceptedPayload{RunID: run.ID(), Status: StatusAccepted, AcceptedAt: run.AcceptedAt().UnixMilli(),
		SessionKey: run.session, AgentID: run.agentID}, nil)
	unsubscribe := run.Subscribe(func(ev Event) { peer.SendEvent("agent", ev) })
	defer unsubscribe()
	run.Launch()
	select {
	case <-run.Done():
		return finalPayload(run.Result()), nil
	case <-peer.Done():
	case <-ctx.Done():
	}
	return nil, protocol.Errorf(protocol.ErrUnavailable, "connection closed before the run ended (the run goes on; agent.wait "+run.ID()+" reports its end)")
}

// FinalPayload is the final response of "agent": the run's Result and, as
// OpenClaw's gateway answers, result.payloads with the reply's text
// (OpenClaw's CLI prints those).
type FinalPayload struct {
	*Result
	Reply ReplyResult `json:"result"`
}

// ReplyResult is FinalPayload.result.
type ReplyResult struct {
	Payloads []ReplyPayload `json:"payloads"`
}

// ReplyPayload is one reply of a run.
type ReplyPayload struct {
	Text string `json:"text"`
}

func finalPayload(r *Result) FinalPayload {
	f := FinalPayload{Result: r, Reply: ReplyResult{Payloads: []ReplyPayload{}}}
	if r.Summary != "" {
		f.Reply.Payloads = append(f.Reply.Payloads, ReplyPayload{Text: r.Summary})
	}
	return f
}

// sessionAgent is the agent of a call: the one named, else the one an
// "agent:<id>:…" session key names when that agent exists, else "" (the
// default agent).
func (m *Manager) sessionAgent(agentID, sessionKey string) string {
	if agentID != "" {
		return agentID
	}
	rest, ok := strings.CutPrefix(sessionKey, "agent:")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	cfg := m.cfg.Load()
	if _, known := cfg.Agent(id); ok && known {
		return id
	}
	return ""
}

func (m *Manager) mWait(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.AgentWaitParams
	if perr := call.Decode("AgentWaitParams", &p); perr != nil {
		return nil, perr
	}
	if p.RunID == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent.wait params: at /runId: required")
	}
	ms := int64(defaultWaitMs)
	if p.TimeoutMs != nil {
		if *p.TimeoutMs < 0 || *p.TimeoutMs > 24*60*60*1000 {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent.wait params: at /timeoutMs: must be 0 to 86400000")
		}
		ms = *p.TimeoutMs
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	defer cancel()
	// As in OpenClaw, a run that is not (yet) known is waited for: it may
	// be started within timeoutMs; if not, the answer is status timeout.
	r, err := m.await(wctx, p.RunID)
	if err == nil {
		var res *Result
		res, err = r.Wait(wctx)
		if err == nil {
			return res, nil
		}
	}
	if ctx.Err() != nil {
		return nil, protocol.Errorf(protocol.ErrUnavailable, "connection closed")
	}
	// Not ended within timeoutMs: the protocol's answer is status
	// "timeout" without endedAt.
	out := map[string]any{"runId": p.RunID, "status": StatusTimeout}
	if r != nil {
		out["startedAt"] = r.AcceptedAt().UnixMilli()
	}
	return out, nil
}

func (m *Manager) mCancel(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p cancelParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	if p.RunID == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent.cancel params: at /runId: required")
	}
	r, ok := m.Lookup(p.RunID)
	if !ok {
		return nil, unknownRun(p.RunID)
	}
	return map[string]any{"runId": r.ID(), "canceled": r.Cancel()}, nil
}

func (m *Manager) mHistory(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.ChatHistoryParams
	if perr := call.Decode("ChatHistoryParams", &p); perr != nil {
		return nil, perr
	}
	return m.history("chat.history", p)
}

func (m *Manager) history(method string, p protocol.ChatHistoryParams) (*HistoryPayload, *protocol.Error) {
	if p.SessionKey == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid "+method+" params: at /sessionKey: required")
	}
	limit := defaultHistoryLimit
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > maxHistoryLimit {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, fmt.Sprintf("invalid %s params: at /limit: must be 1 to %d", method, maxHistoryLimit))
		}
		limit = int(*p.Limit)
	}
	msgs, total, err := m.History(p.SessionKey, limit)
	if err != nil {
		return nil, protocol.Errorf(protocol.ErrUnavailable, "read session transcript: "+err.Error())
	}
	row := m.sessionRow(p.SessionKey, total, msgs)
	return &HistoryPayload{SessionKey: p.SessionKey, SessionID: p.SessionKey, Messages: historyMessages(p.SessionKey, total-len(msgs), msgs),
		Total: total, TotalMessages: total, HasMore: total > len(msgs), SessionInfo: row, PendingInputs: PendingInputs{Items: []any{}}}, nil
}
