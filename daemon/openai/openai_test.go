package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/responses"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

const enabledConfig = `{"http":{"endpoints":{"chatCompletions":{"enabled":true},"responses":{"enabled":true}},"maxBodyBytes":4096},
 "agents":{"maxConcurrent":64,"list":{"ops":{"description":"ops"},"broken":{"backend":"exec","exec":{"command":"/bin/sh","args":["-c","echo nope >&2; exit 1"]}}}}}`

func startGateway(t testing.TB, dir, cfg string) *gatewaydtest.Gateway {
	t.Helper()
	return gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir, Config: cfg})
}

func sdk(g *gatewaydtest.Gateway) oai.Client {
	return oai.NewClient(option.WithBaseURL(g.HTTPURL+"/v1/"), option.WithAPIKey(g.Token), option.WithMaxRetries(0))
}

func post(t testing.TB, g *gatewaydtest.Gateway, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	return testutil.PostJSON(t, context.Background(), g.HTTPURL+path, testutil.Bearer(token), body)
}

func keys(t testing.TB, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func field(t testing.TB, raw json.RawMessage, path ...string) json.RawMessage {
	t.Helper()
	for _, p := range path {
		if raw[0] == '[' {
			var a []json.RawMessage
			_ = json.Unmarshal(raw, &a)
			raw = a[0]
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %s", p, raw)
		}
		raw = m[p]
	}
	return raw
}

func wantKeys(t testing.TB, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v (%s)", what, got, want, raw)
	}
}

// TestDisabledAndAuth: off by default (404), turned on by a hot reload,
// Bearer required (401 with the family's body).
func TestDisabledAndAuth(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, `{}`)
	for _, p := range []string{"/v1/chat/completions", "/v1/responses"} {
		if resp, _ := post(t, g, p, g.Token, `{}`); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s disabled: %d", p, resp.StatusCode)
		}
	}
	if resp, err := http.Get(g.HTTPURL + "/v1/models"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("models disabled: %v %v", resp, err)
	}
	gatewaydtest.WriteConfigT(t, gatewaydtest.ConfigPath(dir), enabledConfig)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := post(t, g, "/v1/chat/completions", g.Token, `{"model":"gateway","messages":[{"role":"user","content":"on"}]}`)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after enabling in the config", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tok := range []string{"", "wrong-token"} {
		resp, raw := post(t, g, "/v1/chat/completions", tok, `{"model":"gateway","messages":[{"role":"user","content":"x"}]}`)
		if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(raw)) != `{"error":{"message":"Unauthorized","type":"unauthorized"}}` {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, raw)
		}
	}
}

// TestChatCompletionsWire checks the JSON and SSE shapes byte by byte
// against OpenAI's format.
func TestChatCompletionsWire(t *testing.T) {
	g := startGateway(t, t.TempDir(), enabledConfig)
	resp, raw := post(t, g, "/v1/chat/completions", g.Token, `{"model":"gateway/ops","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hello wire"}]}],"temperature":0.2}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	wantKeys(t, "completion", raw, "id", "object", "created", "model", "choices", "usage", "system_fingerprint")
	wantKeys(t, "choice", field(t, raw, "choices", "0"), "index", "message", "logprobs", "finish_reason")
	wantKeys(t, "message", field(t, raw, "choices", "0", "message"), "role", "content", "refusal")
	wantKeys(t, "usage", field(t, raw, "usage"), "prompt_tokens", "completion_tokens", "total_tokens")
	var c struct {
		ID, Object, Model string
		Created           int64
		Choices           []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
	}
	_ = json.Unmarshal(raw, &c)
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "gateway/ops" || c.Created == 0 ||
		c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content != "hello wire" || c.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %s", raw)
	}

	resp, raw = post(t, g, "/v1/chat/completions", g.Token, `{"model":"gateway","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three four"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.HasSuffix(raw, []byte("\n\ndata: [DONE]\n\n")) {
		t.Fatalf("stream does not end with data: [DONE]: %q", raw)
	}
	events := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	var text strings.Builder
	for i, ev := range events {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		if i == len(events)-1 {
			if data != "[DONE]" {
				t.Fatalf("last event %q", data)
			}
			break
		}
		chunk := json.RawMessage(data)
		wantKeys(t, "chunk", chunk, "id", "object", "created", "model", "system_fingerprint", "choices", "usage")
		if string(field(t, chunk, "object")) != `"chat.completion.chunk"` {
			t.Fatalf("chunk object %s", chunk)
		}
		if i == len(events)-2 { // the usage chunk
			if string(field(t, chunk, "choices")) != "[]" {
				t.Fatalf("usage chunk %s", chunk)
			}
			wantKeys(t, "usage", field(t, chunk, "usage"), "prompt_tokens", "completion_tokens", "total_tokens")
			continue
		}
		if string(field(t, chunk, "usage")) != "null" {
			t.Fatalf("usage on a content chunk: %s", chunk)
		}
		wantKeys(t, "chunk choice", field(t, chunk, "choices", "0"), "index", "delta", "logprobs", "finish_reason")
		delta := field(t, chunk, "choices", "0", "delta")
		var d struct{ Role, Content string }
		_ = json.Unmarshal(delta, &d)
		switch {
		case i == 0:
			if string(delta) != `{"role":"assistant","content":""}` {
				t.Fatalf("first delta %s", delta)
			}
		case i == len(events)-3:
			if string(delta) != `{}` || string(field(t, chunk, "choices", "0", "finish_reason")) != `"stop"` {
				t.Fatalf("finish chunk %s", chunk)
			}
		default:
			if string(field(t, chunk, "choices", "0", "finish_reason")) != "null" {
				t.Fatalf("content chunk %s", chunk)
			}
			text.WriteString(d.Content)
		}
	}
	if text.String() != "one two three four" || len(events) < 6 {
		t.Fatalf("streamed %q in %d events", text.String(), len(events))
	}
}

// TestChatCompletionsSDK drives the endpoints with the official OpenAI Go
// client library.
func TestChatCompletionsSDK(t *testing.T) {
	g := startGateway(t, t.TempDir(), enabledConfig)
	cl := sdk(g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	comp, err := cl.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gateway", Messages: []oai.ChatCompletionMessageParamUnion{oai.SystemMessage("be nice"), oai.UserMessage("hi from the sdk")}})
	if err != nil {
		t.Fatal(err)
	}
	if comp.Choices[0].Message.Content != "hi from the sdk" || comp.Object != "chat.completion" || !comp.JSON.Usage.Valid() || comp.Usage.TotalTokens != comp.Usage.PromptTokens+comp.Usage.CompletionTokens {
		t.Fatalf("completion %+v", comp)
	}

	stream := cl.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{Model: "gateway/ops", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("stream me to the end")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}})
	acc := oai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "stream me to the end" || acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens == 0 || chunks < 5 {
		t.Fatalf("accumulated %+v in %d chunks", acc.ChatCompletion, chunks)
	}

	models, err := cl.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" {
			t.Fatalf("model %+v", m)
		}
	}
	if !slices.Equal(ids, []string{"gateway", "gateway/broken", "gateway/main", "gateway/ops"}) {
		t.Fatalf("models %v", ids)
	}
	if m, err := cl.Models.Get(ctx, "gateway/ops"); err != nil || m.ID != "gateway/ops" {
		t.Fatalf("models get: %+v %v", m, err)
	}

	// Errors arrive as the SDK's *Error with OpenAI's fields.
	_, err = cl.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("x")}})
	var apiErr *oai.Error
	if !asErr(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Fatalf("unknown model: %v", err)
	}
	_, err = cl.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gateway/broken", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("x")}})
	if !asErr(err, &apiErr) || apiErr.StatusCode != 502 || !strings.Contains(apiErr.Message, "nope") {
		t.Fatalf("failing agent: %v", err)
	}
}

func asErr(err error, target **oai.Error) bool {
	e, ok := err.(*oai.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestResponses(t *testing.T) {
	g := startGateway(t, t.TempDir(), enabledConfig)
	cl := sdk(g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := cl.Responses.New(ctx, responses.ResponseNewParams{Model: "gateway", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("respond to this")}})
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "respond to this" || r.Status != "completed" || r.Object != "response" || !strings.HasPrefix(r.ID, "resp_") || r.Usage.TotalTokens == 0 {
		t.Fatalf("response %+v", r)
	}

	stream := cl.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gateway/ops", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("a b c d e f")}})
	var types []string
	var text strings.Builder
	var completed responses.Response
	seq := int64(0)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq {
			t.Fatalf("sequence_number %d, want %d", ev.SequenceNumber, seq)
		}
		seq++
		if len(types) == 0 || types[len(types)-1] != ev.Type {
			types = append(types, ev.Type)
		}
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.AsResponseOutputTextDelta().Delta)
		case "response.completed":
			completed = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if !slices.Equal(types, want) || text.String() != "a b c d e f" || completed.OutputText() != "a b c d e f" {
		t.Fatalf("events %v text %q completed %q", types, text.String(), completed.OutputText())
	}

	// Raw framing: "event: TYPE" then one data line whose type matches.
	resp, raw := post(t, g, "/v1/responses", g.Token, `{"model":"gateway","stream":true,"input":[{"role":"user","content":[{"type":"input_text","text":"raw"}]}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	for _, ev := range strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n") {
		lines := strings.Split(ev, "\n")
		name, ok1 := strings.CutPrefix(lines[0], "event: ")
		data, ok2 := strings.CutPrefix(lines[len(lines)-1], "data: ")
		if len(lines) != 2 || !ok1 || !ok2 || string(field(t, json.RawMessage(data), "type")) != `"`+name+`"` {
			t.Fatalf("bad SSE event %q", ev)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	g := startGateway(t, t.TempDir(), enabledConfig)
	for _, tc := range []struct {
		name, path, body string
		status           int
		typ              string
	}{
		{"bad json", "/v1/chat/completions", `{"model":`, 400, "invalid_request_error"},
		{"too large", "/v1/chat/completions", `{"model":"gateway","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "invalid_request_error"},
		{"no user message", "/v1/chat/completions", `{"model":"gateway","messages":[{"role":"system","content":"x"}]}`, 400, "invalid_request_error"},
		{"unknown model", "/v1/responses", `{"model":"gpt-4","input":"x"}`, 404, "invalid_request_error"},
		{"responses bad json", "/v1/responses", `[`, 400, "invalid_request_error"},
	} {
		resp, raw := post(t, g, tc.path, g.Token, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, raw)
			continue
		}
		wantKeys(t, tc.name, field(t, raw, "error"), "message", "type", "param", "code")
		if string(field(t, raw, "error", "type")) != `"`+tc.typ+`"` {
			t.Errorf("%s: %s", tc.name, raw)
		}
	}
}
