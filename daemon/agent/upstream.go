package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// upstreamClient is shared by openai backends; timeouts come from each
// run's context and stall timer. Its transport keeps enough idle
// connections per upstream for concurrent runs to reuse them: the default
// keeps two, so each burst of runs against one local model server (the
// common case) redialled nearly every request.
var upstreamClient = &http.Client{Transport: newUpstreamTransport()}

// maxIdleUpstreamConns bounds the idle connections kept per upstream host.
const maxIdleUpstreamConns = 64

func newUpstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdleUpstreamConns
	t.MaxIdleConns = 4 * maxIdleUpstreamConns
	return t
}

// maxUpstreamLine bounds one SSE line from an upstream.
const maxUpstreamLine = 4 << 20

// errStalled is the cause of a canceled upstream request that went silent.
var errStalled = errors.New("upstream stalled")

// openAIBackend calls an OpenAI-compatible chat-completions endpoint.
type openAIBackend struct {
	id     string
	cfg    config.OpenAIBackendConfig
	getenv func(string) string
}

type upstreamRequest struct {
	Model         string         `json:"model"`
	Messages      []ChatMessage  `json:"messages"`
	Stream        bool           `json:"stream"`
	StreamOptions map[string]any `json:"stream_options,omitempty"`
}

type upstreamChoice struct {
	Delta *struct {
		Content   *string         `json:"content"`
		ToolCalls json.RawMessage `json:"tool_calls"`
	} `json:"delta"`
	Message *struct {
		Content *string `json:"content"`
	} `json:"message"`
	FinishReason *string `json:"finish_reason"`
}

type upstreamBody struct {
	Choices []upstreamChoice `json:"choices"`
	Usage   *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (b *openAIBackend) apiKey() (string, error) {
	switch {
	case b.cfg.APIKeyEnv != "":
		k := strings.TrimSpace(b.getenv(b.cfg.APIKeyEnv))
		if k == "" {
			return "", fmt.Errorf("openai agent %s: environment variable %s (agents.list.%s.openai.apiKeyEnv) is empty: set it in the gateway's environment (systemctl edit, or the launchd plist)", b.id, b.cfg.APIKeyEnv, b.id)
		}
		return k, nil
	case b.cfg.APIKeyFile != "":
		raw, err := os.ReadFile(b.cfg.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("openai agent %s: read API key file (agents.list.%s.openai.apiKeyFile): %w (create it, readable by the gateway's user)", b.id, b.id, err)
		}
		k := strings.TrimSpace(string(raw))
		if k == "" {
			return "", fmt.Errorf("openai agent %s: API key file %s is empty (write the key into it)", b.id, b.cfg.APIKeyFile)
		}
		return k, nil
	}
	return "", nil
}

func (b *openAIBackend) endpoint() string {
	return strings.TrimSuffix(b.cfg.BaseURL, "/") + "/chat/completions"
}

func (b *openAIBackend) run(ctx context.Context, in input, out sink) (Usage, error) {
	key, err := b.apiKey()
	if err != nil {
		return Usage{}, err
	}
	var msgs []ChatMessage
	if sp := strings.TrimSpace(strings.Join(nonEmpty(b.cfg.SystemPrompt, in.SystemPrompt), "\n\n")); sp != "" {
		msgs = append(msgs, ChatMessage{Role: "system", Content: sp})
	}
	msgs = append(msgs, in.History...)
	msgs = append(msgs, ChatMessage{Role: "user", Content: in.Message})
	stream := b.cfg.StreamEnabled()
	body, err := json.Marshal(upstreamRequest{Model: b.cfg.Model, Messages: msgs, Stream: stream})
	if err != nil {
		return Usage{}, fmt.Errorf("openai agent %s: encode request: %w", b.id, err)
	}
	stall := time.Duration(b.cfg.StallTimeoutMs) * time.Millisecond
	if stall <= 0 {
		stall = config.DefaultStallTimeoutMs * time.Millisecond
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	url := b.endpoint()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Usage{}, fmt.Errorf("openai agent %s: %w (check agents.list.%s.openai.baseUrl)", b.id, err, b.id)
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	fail := func(err error) (Usage, error) {
		if context.Cause(rctx) == errStalled && ctx.Err() == nil {
			return Usage{}, fmt.Errorf("openai agent %s: upstream %s stalled: nothing received for %s (is the model server overloaded? raise agents.list.%s.openai.stallTimeoutMs for slow models)", b.id, url, stall, b.id)
		}
		if ctx.Err() != nil {
			return Usage{}, context.Cause(ctx)
		}
		return Usage{}, err
	}
	resp, err := upstreamClient.Do(req)
	if err != nil {
		return fail(fmt.Errorf("openai agent %s: upstream %s: %w (is the model server running? check agents.list.%s.openai.baseUrl)", b.id, url, err, b.id))
	}
	defer resp.Body.Close()
	timer.Reset(stall)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
		return fail(fmt.Errorf("openai agent %s: upstream %s answered %s: %s", b.id, url, resp.Status, upstreamErrorText(raw)))
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	body2 := &stallReader{r: resp.Body, timer: timer, stall: stall}
	var usage Usage
	if ct == "text/event-stream" {
		usage, err = b.readStream(body2, url, out)
	} else {
		usage, err = b.readWhole(body2, url, out)
	}
	if err != nil {
		return fail(err)
	}
	if usage == (Usage{}) {
		usage = Usage{PromptTokens: estimateTokens(in.Message)}
	}
	return usage, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

// upstreamErrorText extracts error.message from an OpenAI-style error
// body, else returns the (shortened) body.
func upstreamErrorText(raw []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && len(e.Error) > 0 {
		return errorText(e.Error)
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "(empty body)"
	}
	return shorten(s, 300)
}

// errorText renders an upstream "error" value: an object with message, or
// a string.
func errorText(raw json.RawMessage) string {
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	return shorten(string(raw), 300)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutUTF8(s, n) + "…"
}

// stallReader re-arms the stall timer on every read that returned data.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	stall time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.stall)
	}
	return n, err
}

func (b *openAIBackend) readWhole(r io.Reader, url string, out sink) (Usage, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return Usage{}, fmt.Errorf("openai agent %s: read upstream %s: %w", b.id, url, err)
	}
	var body upstreamBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return Usage{}, fmt.Errorf("openai agent %s: upstream %s sent malformed JSON: %v (body starts %q)", b.id, url, err, shorten(string(raw), 120))
	}
	if len(body.Error) > 0 && string(body.Error) != "null" {
		return Usage{}, fmt.Errorf("openai agent %s: upstream %s: %s", b.id, url, errorText(body.Error))
	}
	if len(body.Choices) == 0 || body.Choices[0].Message == nil {
		return Usage{}, fmt.Errorf("openai agent %s: upstream %s answered without choices[0].message (is it an OpenAI-compatible chat-completions endpoint?)", b.id, url)
	}
	if c := body.Choices[0].Message.Content; c != nil && *c != "" {
		if err := out.Delta(*c); err != nil {
			return Usage{}, err
		}
	}
	return usageOf(&body), nil
}

func usageOf(b *upstreamBody) Usage {
	if b.Usage == nil {
		return Usage{}
	}
	return Usage{PromptTokens: b.Usage.PromptTokens, CompletionTokens: b.Usage.CompletionTokens}
}

func (b *openAIBackend) readStream(r io.Reader, url string, out sink) (Usage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxUpstreamLine)
	var data []string
	var usage Usage
	done := false
	handle := func(payload string) error {
		if payload == "[DONE]" {
			done = true
			return nil
		}
		var chunk upstreamBody
		if err := json.Unmarshal([]byte(payload), &chunk); err != nil {
			return fmt.Errorf("openai agent %s: upstream %s sent a malformed stream chunk: %v (chunk starts %q)", b.id, url, err, shorten(payload, 120))
		}
		if len(chunk.Error) > 0 && string(chunk.Error) != "null" {
			return fmt.Errorf("openai agent %s: upstream %s: %s", b.id, url, errorText(chunk.Error))
		}
		if u := usageOf(&chunk); u != (Usage{}) {
			usage = u
		}
		for _, c := range chunk.Choices {
			if c.Delta == nil {
				continue
			}
			if c.Delta.Content != nil && *c.Delta.Content != "" {
				if err := out.Delta(*c.Delta.Content); err != nil {
					return err
				}
			}
			if len(c.Delta.ToolCalls) > 0 && string(c.Delta.ToolCalls) != "null" {
				out.Tool(map[string]any{"toolCalls": c.Delta.ToolCalls})
			}
		}
		return nil
	}
	for !done && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				payload := strings.Join(data, "\n")
				data = data[:0]
				if err := handle(payload); err != nil {
					return Usage{}, err
				}
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return Usage{}, fmt.Errorf("openai agent %s: read upstream stream %s: %w", b.id, url, err)
	}
	if !done && len(data) > 0 {
		if err := handle(strings.Join(data, "\n")); err != nil {
			return Usage{}, err
		}
	}
	if !done {
		return Usage{}, fmt.Errorf("openai agent %s: upstream %s ended the stream without data: [DONE] (the answer may be incomplete)", b.id, url)
	}
	return usage, nil
}
