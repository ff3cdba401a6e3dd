package openai

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
)

// chatRequest is the part of OpenAI's chat-completions request the gateway
// uses; other fields (temperature, max_tokens, tools …) are accepted and
// ignored, as official clients send them.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// contentText reads OpenAI message content: a string, or an array of parts
// of which the text parts count.
func contentText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		switch p.Type {
		case "text", "input_text", "output_text":
			b.WriteString(p.Text)
		}
	}
	return b.String(), true
}

// conversation splits messages into system prompt, history and the last
// user message.
func conversation(msgs []chatMessage) (system string, history []agent.ChatMessage, message string, errMsg string) {
	last := -1
	for i, m := range msgs {
		if m.Role == "user" {
			last = i
		}
	}
	if last < 0 {
		return "", nil, "", "messages must contain at least one message with role \"user\""
	}
	var sys []string
	for i, m := range msgs {
		text, ok := contentText(m.Content)
		if !ok {
			return "", nil, "", "messages[" + itoa(i) + "].content must be a string or an array of content parts"
		}
		switch m.Role {
		case "system", "developer":
			sys = append(sys, text)
		case "user", "assistant":
			if i == last {
				message = text
			} else if i < last {
				history = append(history, agent.ChatMessage{Role: m.Role, Content: text})
			}
		}
	}
	if history == nil {
		history = []agent.ChatMessage{}
	}
	return strings.Join(sys, "\n\n"), history, message, ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// sessionFor is the session of a request with OpenAI's "user" field.
func sessionFor(agentID, user string) string {
	return "agent:" + agentID + ":openai-user:" + user
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
	SystemFingerprint *string      `json:"system_fingerprint"`
}

type chatChoice struct {
	Index        int              `json:"index"`
	Message      chatOutMessage   `json:"message"`
	Logprobs     *json.RawMessage `json:"logprobs"`
	FinishReason string           `json:"finish_reason"`
}

type chatOutMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint *string         `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int              `json:"index"`
	Delta        chunkDelta       `json:"delta"`
	Logprobs     *json.RawMessage `json:"logprobs"`
	FinishReason *string          `json:"finish_reason"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

func usageOf(res *agent.Result, prompt string) chatUsage {
	u := chatUsage{PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens}
	if u.PromptTokens == 0 {
		u.PromptTokens = (len(prompt) + 3) / 4
	}
	if u.CompletionTokens == 0 {
		u.CompletionTokens = (len(res.Summary) + 3) / 4
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (a *API) chatCompletions(w http.ResponseWriter, r *http.Request, cfg *config.HTTPConfig) {
	var req chatRequest
	if !readBody(w, r, cfg, &req) {
		return
	}
	agentID, ok := a.modelAgent(w, req.Model)
	if !ok {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "messages must be a non-empty array", "invalid_request_error", "")
		return
	}
	system, history, message, bad := conversation(req.Messages)
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad, "invalid_request_error", "")
		return
	}
	areq := agentRequest(agentID, req.User, system, history, message)
	created := time.Now().Unix()
	if !req.Stream {
		a.runToEnd(w, r, areq, func(res *agent.Result) {
			writeJSON(w, http.StatusOK, chatCompletion{
				ID: "chatcmpl-" + res.RunID, Object: "chat.completion", Created: created, Model: req.Model,
				Choices: []chatChoice{{Index: 0, Message: chatOutMessage{Role: "assistant", Content: res.Summary}, FinishReason: "stop"}},
				Usage:   usageOf(res, message),
			})
		})
		return
	}

	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	var sse *sseWriter
	var id string
	chunk := func(delta chunkDelta, finish *string) {
		c := chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []chunkChoice{{Index: 0, Delta: delta, FinishReason: finish}}}
		if includeUsage {
			c.Usage = json.RawMessage("null")
		}
		b, _ := json.Marshal(c)
		sse.event("", b)
	}
	begin := func(runID string) {
		if sse != nil {
			return
		}
		id = "chatcmpl-" + runID
		sse = startSSE(w)
		empty := ""
		chunk(chunkDelta{Role: "assistant", Content: &empty}, nil)
	}
	res := a.runStreaming(w, r, areq, begin, func(d string) {
		chunk(chunkDelta{Content: &d}, nil)
	})
	if res == nil {
		return
	}
	begin(res.RunID)
	if res.Status != agent.StatusOK {
		code, msg := runFailure(res, "agent_error")
		b, _ := json.Marshal(errorBody{Error: errorDetail{Message: msg, Type: "server_error", Code: &code}})
		sse.event("", b)
		sse.event("", []byte("[DONE]"))
		return
	}
	stop := "stop"
	chunk(chunkDelta{}, &stop)
	if includeUsage {
		u := usageOf(res, message)
		ub, _ := json.Marshal(u)
		b, _ := json.Marshal(chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model, Choices: []chunkChoice{}, Usage: ub})
		sse.event("", b)
	}
	sse.event("", []byte("[DONE]"))
}
