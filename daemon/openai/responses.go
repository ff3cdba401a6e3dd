package openai

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
)

// responsesRequest is the part of an OpenAI Responses API request the
// gateway uses (text input and output); other fields are accepted and
// ignored.
type responsesRequest struct {
	Model        string          `json:"model"`
	Input        json.RawMessage `json:"input"`
	Instructions string          `json:"instructions"`
	Stream       bool            `json:"stream"`
	User         string          `json:"user"`
}

// inputItem is one item of an array input: a message (type "message" or
// absent) with string or part content. Other item types are skipped.
type inputItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// responsesInput turns input into messages.
func responsesInput(raw json.RawMessage) ([]chatMessage, string) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, _ := json.Marshal(s)
		return []chatMessage{{Role: "user", Content: b}}, ""
	}
	var items []inputItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, "input must be a string or an array of input items"
	}
	var out []chatMessage
	for _, it := range items {
		if it.Type != "" && it.Type != "message" {
			continue
		}
		out = append(out, chatMessage{Role: it.Role, Content: it.Content})
	}
	return out, ""
}

type responseObject struct {
	ID                 string          `json:"id"`
	Object             string          `json:"object"`
	CreatedAt          int64           `json:"created_at"`
	Status             string          `json:"status"`
	Error              *responseError  `json:"error"`
	IncompleteDetails  *struct{}       `json:"incomplete_details"`
	Instructions       *string         `json:"instructions"`
	MaxOutputTokens    *int            `json:"max_output_tokens"`
	Model              string          `json:"model"`
	Output             []outputMessage `json:"output"`
	ParallelToolCalls  bool            `json:"parallel_tool_calls"`
	PreviousResponseID *string         `json:"previous_response_id"`
	Store              bool            `json:"store"`
	Text               map[string]any  `json:"text"`
	ToolChoice         string          `json:"tool_choice"`
	Tools              []any           `json:"tools"`
	Usage              *responseUsage  `json:"usage"`
	User               *string         `json:"user"`
	Metadata           map[string]any  `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type outputMessage struct {
	Type    string       `json:"type"`
	ID      string       `json:"id"`
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

type outputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

type responseUsage struct {
	InputTokens         int            `json:"input_tokens"`
	InputTokensDetails  map[string]int `json:"input_tokens_details"`
	OutputTokens        int            `json:"output_tokens"`
	OutputTokensDetails map[string]int `json:"output_tokens_details"`
	TotalTokens         int            `json:"total_tokens"`
}

func (a *API) responses(w http.ResponseWriter, r *http.Request, cfg *config.HTTPConfig) {
	var req responsesRequest
	if !readBody(w, r, cfg, &req) {
		return
	}
	agentID, ok := a.modelAgent(w, req.Model)
	if !ok {
		return
	}
	if len(req.Input) == 0 {
		writeError(w, http.StatusBadRequest, "input is required (a string, or an array of messages)", "invalid_request_error", "")
		return
	}
	msgs, bad := responsesInput(req.Input)
	if bad == "" && len(msgs) == 0 {
		bad = "input has no message items"
	}
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad, "invalid_request_error", "")
		return
	}
	system, history, message, bad := conversation(msgs)
	if bad != "" {
		writeError(w, http.StatusBadRequest, "input "+bad, "invalid_request_error", "")
		return
	}
	system = strings.Join(nonEmpty(req.Instructions, system), "\n\n")
	areq := agentRequest(agentID, req.User, system, history, message)
	created := time.Now().Unix()
	base := func(id, status string) *responseObject {
		o := &responseObject{ID: "resp_" + compactID(id), Object: "response", CreatedAt: created, Status: status,
			Model: req.Model, Output: []outputMessage{}, ParallelToolCalls: true, Store: false,
			Text: map[string]any{"format": map[string]string{"type": "text"}}, ToolChoice: "auto", Tools: []any{},
			Metadata: map[string]any{}}
		if req.Instructions != "" {
			o.Instructions = &req.Instructions
		}
		if req.User != "" {
			o.User = &req.User
		}
		return o
	}
	finish := func(o *responseObject, res *agent.Result) {
		msgID := "msg_" + compactID(res.RunID)
		u := usageOf(res, message)
		o.Usage = &responseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
			InputTokensDetails: map[string]int{"cached_tokens": 0}, OutputTokensDetails: map[string]int{"reasoning_tokens": 0}}
		if res.Status == agent.StatusOK {
			o.Status = "completed"
			o.Output = []outputMessage{{Type: "message", ID: msgID, Status: "completed", Role: "assistant",
				Content: []outputText{{Type: "output_text", Text: res.Summary, Annotations: []any{}}}}}
			return
		}
		o.Status = "failed"
		code, msg := runFailure(res, "server_error")
		o.Error = &responseError{Code: code, Message: msg}
	}

	if !req.Stream {
		a.runToEnd(w, r, areq, func(res *agent.Result) {
			o := base(res.RunID, "completed")
			finish(o, res)
			writeJSON(w, http.StatusOK, o)
		})
		return
	}

	var sse *sseWriter
	seq := 0
	send := func(typ string, fields map[string]any) {
		fields["type"] = typ
		fields["sequence_number"] = seq
		seq++
		b, _ := json.Marshal(fields)
		sse.event(typ, b)
	}
	var runID, msgID string
	begin := func(id string) {
		runID, msgID = id, "msg_"+compactID(id)
		sse = startSSE(w)
		send("response.created", map[string]any{"response": base(runID, "in_progress")})
		send("response.in_progress", map[string]any{"response": base(runID, "in_progress")})
		send("response.output_item.added", map[string]any{"output_index": 0, "item": outputMessage{Type: "message", ID: msgID, Status: "in_progress", Role: "assistant", Content: []outputText{}}})
		send("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": outputText{Type: "output_text", Text: "", Annotations: []any{}}})
	}
	res := a.runStreaming(w, r, areq, begin, func(d string) {
		send("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": d, "logprobs": []any{}})
	})
	if res == nil {
		return
	}
	o := base(runID, "")
	finish(o, res)
	if res.Status != agent.StatusOK {
		send("response.failed", map[string]any{"response": o})
		return
	}
	part := outputText{Type: "output_text", Text: res.Summary, Annotations: []any{}}
	send("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": res.Summary, "logprobs": []any{}})
	send("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part})
	send("response.output_item.done", map[string]any{"output_index": 0, "item": o.Output[0]})
	send("response.completed", map[string]any{"response": o})
}

// compactID makes an OpenAI-looking id suffix from a run id.
func compactID(id string) string { return strings.ReplaceAll(id, "-", "") }

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}
