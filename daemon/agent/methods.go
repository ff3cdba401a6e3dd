package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// agentParams are the params of "agent". Fields after Timeout are sent by
// OpenClaw clients; they are accepted and (except extraSystemPrompt)
// ignored.
type agentParams struct {
	Message        string `json:"message"`
	IdempotencyKey string `json:"idempotencyKey"`
	AgentID        string `json:"agentId,omitempty"`
	SessionKey     string `json:"sessionKey,omitempty"`
	Timeout        *int   `json:"timeout,omitempty"` // seconds; 0 or absent: the agent's timeout

	ExtraSystemPrompt string          `json:"extraSystemPrompt,omitempty"`
	SessionID         string          `json:"sessionId,omitempty"`
	Thinking          string          `json:"thinking,omitempty"`
	Deliver           *bool           `json:"deliver,omitempty"`
	BestEffortDeliver *bool           `json:"bestEffortDeliver,omitempty"`
	Channel           string          `json:"channel,omitempty"`
	ReplyChannel      string          `json:"replyChannel,omitempty"`
	To                string          `json:"to,omitempty"`
	ReplyTo           string          `json:"replyTo,omitempty"`
	AccountID         string          `json:"accountId,omitempty"`
	ThreadID          string          `json:"threadId,omitempty"`
	Label             string          `json:"label,omitempty"`
	Lane              string          `json:"lane,omitempty"`
	Attachments       json.RawMessage `json:"attachments,omitempty"`
}

// AcceptedPayload is the first response of "agent".
type AcceptedPayload struct {
	RunID      string `json:"runId"`
	Status     string `json:"status"` // "accepted"
	AcceptedAt int64  `json:"acceptedAt"`
}

type waitParams struct {
	RunID     string `json:"runId"`
	TimeoutMs *int   `json:"timeoutMs,omitempty"`
}

// defaultWaitMs is agent.wait's default bound.
const defaultWaitMs = 30000

type cancelParams struct {
	RunID string `json:"runId"`
}

type historyParams struct {
	SessionKey string `json:"sessionKey"`
	Limit      *int   `json:"limit,omitempty"`
}

// History limits of chat.history.
const (
	defaultHistoryLimit = 200
	maxHistoryLimit     = 1000
)

// HistoryPayload is chat.history's answer.
type HistoryPayload struct {
	SessionKey string    `json:"sessionKey"`
	Messages   []Message `json:"messages"`
	Total      int       `json:"total"` // messages in the session (Messages holds the last limit)
}

// Methods implements gateway.Extension.
func (m *Manager) Methods() []gateway.Method {
	return []gateway.Method{
		// agent answers twice: the first response is sent from the handler
		// (so it precedes every event of the run), the final is the
		// handler's return value.
		{Name: "agent", Scope: protocol.ScopeWrite, Async: true, Handler: m.mAgent},
		{Name: "agent.wait", Scope: protocol.ScopeRead, Async: true, Handler: m.mWait},
		{Name: "agent.cancel", Scope: protocol.ScopeWrite, Handler: m.mCancel},
		{Name: "chat.history", Scope: protocol.ScopeRead, Handler: m.mHistory},
	}
}

func (m *Manager) mAgent(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p agentParams
	if perr := call.Decode("", &p); perr != nil {
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
	run, _, perr := m.Prepare(Request{Message: p.Message, AgentID: p.AgentID, SessionKey: p.SessionKey,
		IdempotencyKey: p.IdempotencyKey, Timeout: timeout, SystemPrompt: p.ExtraSystemPrompt})
	if perr != nil {
		return nil, perr
	}
	peer := call.Peer
	peer.Respond(call.ID, AcceptedPayload{RunID: run.ID(), Status: StatusAccepted, AcceptedAt: run.AcceptedAt().UnixMilli()}, nil)
	unsubscribe := run.Subscribe(func(ev Event) { peer.SendEvent("agent", ev) })
	defer unsubscribe()
	run.Launch()
	select {
	case <-run.Done():
		return run.Result(), nil
	case <-peer.Done():
	case <-ctx.Done():
	}
	return nil, protocol.Errorf(protocol.ErrUnavailable, "connection closed before the run ended (the run goes on; agent.wait "+run.ID()+" reports its end)")
}

func (m *Manager) mWait(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p waitParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	if p.RunID == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent.wait params: at /runId: required")
	}
	ms := defaultWaitMs
	if p.TimeoutMs != nil {
		if *p.TimeoutMs < 0 || *p.TimeoutMs > 24*60*60*1000 {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid agent.wait params: at /timeoutMs: must be 0 to 86400000")
		}
		ms = *p.TimeoutMs
	}
	r, ok := m.Lookup(p.RunID)
	if !ok {
		return nil, unknownRun(p.RunID)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	defer cancel()
	res, err := r.Wait(wctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, protocol.Errorf(protocol.ErrUnavailable, "connection closed")
		}
		// Still running after timeoutMs: the protocol's answer is status
		// "timeout" without endedAt.
		return map[string]any{"runId": r.ID(), "status": StatusTimeout, "startedAt": r.AcceptedAt().UnixMilli()}, nil
	}
	return res, nil
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
	var p historyParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	if p.SessionKey == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid chat.history params: at /sessionKey: required")
	}
	limit := defaultHistoryLimit
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > maxHistoryLimit {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, fmt.Sprintf("invalid chat.history params: at /limit: must be 1 to %d", maxHistoryLimit))
		}
		limit = *p.Limit
	}
	msgs, total, err := m.History(p.SessionKey, limit)
	if err != nil {
		return nil, protocol.Errorf(protocol.ErrUnavailable, "read session transcript: "+err.Error())
	}
	return HistoryPayload{SessionKey: p.SessionKey, Messages: msgs, Total: total}, nil
}
