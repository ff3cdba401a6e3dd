package agent_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

// chatEvents collects the chat and session.message events of one run
// until its chat event with a terminal state.
func chatEvents(t *testing.T, c *client.Conn, runID string, d time.Duration) (chats []agent.ChatEvent, messages []json.RawMessage) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatal("connection closed while waiting for chat events")
			}
			switch ev.Name {
			case "session.message":
				messages = append(messages, ev.Payload)
			case "chat":
				var ce agent.ChatEvent
				if err := json.Unmarshal(ev.Payload, &ce); err != nil {
					t.Fatal(err)
				}
				if ce.RunID != runID {
					continue
				}
				chats = append(chats, ce)
				if ce.State != "delta" {
					return chats, messages
				}
			}
		case <-deadline:
			t.Fatalf("no terminal chat event for run %s within %s (got %d chat events)", runID, d, len(chats))
		}
	}
}

// TestOpenClawChatMethods: OpenClaw's chat methods on gatewayd's agent
// runs: agents.list, chat.send streaming chat events to the final one,
// sessions.messages.subscribe's session.message, chat.history with
// OpenClaw's message fields, sessions.list, chat.startup, and lenient
// params (fields OpenClaw's clients send).
func TestOpenClawChatMethods(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"list":{"slow":{"echo":{"delayMs":400}}}}}`)
	c := dial(t, g)

	var al agent.AgentsListPayload
	if err := call(t, c, "agents.list", map[string]any{}, &al); err != nil {
		t.Fatal(err)
	}
	if al.DefaultID != "main" || al.MainKey != "main" || al.Ownership != "legacy" || len(al.Agents) != 2 ||
		al.Agents[0].ID != "main" || al.Agents[0].Model.Primary != "gatewayd/echo" || al.Agents[1].ID != "slow" {
		t.Fatalf("agents.list %+v", al)
	}

	key := "agent:main:main"
	if err := call(t, c, "sessions.messages.subscribe", map[string]any{"key": key, "includeApprovals": true}, nil); err != nil {
		t.Fatal(err)
	}
	msg := "hello over chat.send"
	var ack agent.ChatSendAck
	if err := call(t, c, "chat.send", map[string]any{"sessionKey": key, "sessionId": key, "message": msg, "deliver": false, "idempotencyKey": "cs-1"}, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.RunID != "cs-1" || ack.Status != "started" || ack.MessageSeq != 1 {
		t.Fatalf("chat.send ack %+v", ack)
	}
	chats, messages := chatEvents(t, c, "cs-1", 10*time.Second)
	last := chats[len(chats)-1]
	if last.State != "final" || last.Message == nil || last.Message.Content[0].Text != msg || last.SessionKey != key {
		t.Fatalf("final chat event %+v", last)
	}
	for i, ce := range chats[:len(chats)-1] {
		if ce.State != "delta" || !strings.HasPrefix(msg, *ce.DeltaText) || !ce.Replace || ce.Seq != int64(i+1) {
			t.Errorf("chat event %d: %+v", i, ce)
		}
	}
	// The final answer as session.message for the subscriber (it may
	// trail the final chat event).
	testutil.WaitFor(t, 5*time.Second, 20*time.Millisecond, "the session.message event", func() (bool, string) {
		select {
		case ev := <-c.Events():
			if ev.Name == "session.message" {
				messages = append(messages, ev.Payload)
			}
		default:
		}
		return len(messages) > 0, "no session.message event yet"
	})
	if !strings.Contains(string(messages[0]), msg) || !strings.Contains(string(messages[0]), `"role":"assistant"`) {
		t.Errorf("session.message %s", messages[0])
	}

	// chat.history with the fields OpenClaw's clients send and read.
	var h agent.HistoryPayload
	if err := call(t, c, "chat.history", map[string]any{"sessionKey": key, "limit": 80, "maxBytes": 262144, "inputRunIds": []string{"cs-1"}}, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 2 || h.TotalMessages != 2 {
		t.Fatalf("chat.history %+v", h)
	}
	u, a := h.Messages[0], h.Messages[1]
	if u.Role != "user" || u.IdempotencyKey != "cs-1:user" || u.Meta.Seq != 1 || u.Content[0].Text != msg ||
		a.Role != "assistant" || a.IdempotencyKey != "cs-1" || a.Meta.Seq != 2 || a.Content[0].Text != msg || a.Timestamp == 0 {
		t.Errorf("history messages %+v", h.Messages)
	}
	var st map[string]any
	if err := call(t, c, "chat.startup", map[string]any{"sessionKey": key, "limit": 80, "maxBytes": 262144}, &st); err != nil {
		t.Fatal(err)
	}
	if r, _ := st["resolution"].(map[string]any); r["ok"] != true || r["agentId"] != "main" || len(st["messages"].([]any)) != 2 {
		t.Errorf("chat.startup %v", st)
	}
	var sl agent.SessionsListPayload
	if err := call(t, c, "sessions.list", map[string]any{"configuredAgentsOnly": true, "includeGlobal": true, "limit": 200}, &sl); err != nil {
		t.Fatal(err)
	}
	if sl.Count != 1 || sl.Sessions[0].Key != key || sl.Sessions[0].AgentID != "main" || sl.Sessions[0].MessageCount != 2 {
		t.Errorf("sessions.list %+v", sl)
	}
	// A field OpenClaw's schema does not have is still refused.
	if code, _ := errCode(call(t, c, "chat.history", map[string]any{"sessionKey": key, "bogus": 1}, nil)); code != protocol.ErrInvalidRequest {
		t.Errorf("chat.history with an unknown field: %s, want INVALID_REQUEST", code)
	}
}

// TestOpenClawChatAbort: chat.abort cancels the session's run; its chat
// events end with state aborted.
func TestOpenClawChatAbort(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"list":{"slow":{"echo":{"delayMs":2000}}}}}`)
	c := dial(t, g)
	key := "agent:slow:main"
	var ack agent.ChatSendAck
	if err := call(t, c, "chat.send", map[string]any{"sessionKey": key, "message": "one two three four five six", "idempotencyKey": "ab-1"}, &ack); err != nil {
		t.Fatal(err)
	}
	var ab agent.ChatAbortPayload
	if err := call(t, c, "chat.abort", map[string]any{"sessionKey": key}, &ab); err != nil {
		t.Fatal(err)
	}
	if !ab.OK || !ab.Aborted || fmt.Sprint(ab.RunIDs) != "[ab-1]" {
		t.Fatalf("chat.abort %+v", ab)
	}
	chats, _ := chatEvents(t, c, "ab-1", 10*time.Second)
	if last := chats[len(chats)-1]; last.State != "aborted" {
		t.Errorf("last chat event %+v, want state aborted", last)
	}
	// Nothing left to abort.
	if err := call(t, c, "chat.abort", map[string]any{"sessionKey": key}, &ab); err != nil || ab.Aborted || len(ab.RunIDs) != 0 {
		t.Errorf("second chat.abort %+v %v", ab, err)
	}
}

// TestAgentFinalPayloadsAndHealth: agent's final answer carries
// result.payloads; health carries OpenClaw's agent and session fields.
func TestAgentFinalPayloadsAndHealth(t *testing.T) {
	g := startGateway(t, t.TempDir(), "")
	c := dial(t, g)
	_, two, err := c.CallTwoStage(ctxT(t, 10*time.Second), "agent", map[string]any{"message": "payload me", "idempotencyKey": "fp-1",
		"sessionKey": "agent:main:main", "deliver": false, "timeout": 600, "replyAccountId": "x"})
	if err != nil {
		t.Fatal(err)
	}
	final, err := two.Final(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Status string `json:"status"`
		Result struct {
			Payloads []struct{ Text string } `json:"payloads"`
		} `json:"result"`
	}
	if err := json.Unmarshal(final, &f); err != nil || f.Status != "ok" || len(f.Result.Payloads) != 1 || f.Result.Payloads[0].Text != "payload me" {
		t.Fatalf("final %s %v", final, err)
	}
	var h struct {
		DefaultAgentID   string `json:"defaultAgentId"`
		HeartbeatSeconds *int   `json:"heartbeatSeconds"`
		Agents           []struct {
			AgentID   string `json:"agentId"`
			IsDefault bool   `json:"isDefault"`
			Sessions  struct {
				Count  int `json:"count"`
				Recent []struct {
					Key string `json:"key"`
				} `json:"recent"`
			} `json:"sessions"`
		} `json:"agents"`
		Sessions struct {
			Count int `json:"count"`
		} `json:"sessions"`
		Channels map[string]any `json:"channels"`
	}
	if err := call(t, c, "health", nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.DefaultAgentID != "main" || h.HeartbeatSeconds == nil || len(h.Agents) != 1 || !h.Agents[0].IsDefault ||
		h.Agents[0].Sessions.Count != 1 || h.Agents[0].Sessions.Recent[0].Key != "agent:main:main" || h.Sessions.Count != 1 || h.Channels == nil {
		t.Errorf("health's OpenClaw fields %+v", h)
	}
}
