package agent

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// ChatMessage is one message of a conversation handed to a backend.
type ChatMessage struct {
	Role    string `json:"role"` // system, user or assistant
	Content string `json:"content"`
}

// Usage is what a backend reports about token use (zero when unknown).
type Usage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
}

// input is what a backend gets for one run.
type input struct {
	RunID, AgentID, SessionKey string
	Message                    string        // the user's message
	History                    []ChatMessage // earlier conversation, oldest first (not including Message)
	SystemPrompt               string
}

// sink receives a backend's output. Both methods are called from the
// backend's goroutine, in order.
type sink interface {
	Delta(text string) error  // assistant text; an error stops the backend (answer too long)
	Tool(data map[string]any) // a tool stream item
}

// backend produces one answer. It returns when the answer is complete, the
// context ends (returning the context's error or what it caused) or it
// failed.
type backend interface {
	run(ctx context.Context, in input, out sink) (Usage, error)
}

func newBackend(a config.AgentConfig, id string, getenv func(string) string) backend {
	switch a.Backend {
	case config.BackendOpenAI:
		return &openAIBackend{id: id, cfg: *a.OpenAI, getenv: getenv}
	case config.BackendExec:
		return &execBackend{id: id, cfg: *a.Exec}
	}
	e := &echoBackend{}
	if a.Echo != nil {
		e.delay = time.Duration(a.Echo.DelayMs) * time.Millisecond
	}
	return e
}

// echoBackend answers with the message itself, in up to four deltas (word
// boundaries where there are words).
type echoBackend struct {
	delay time.Duration
}

func (e *echoBackend) run(ctx context.Context, in input, out sink) (Usage, error) {
	parts := splitDeltas(in.Message, 4)
	var t *time.Timer
	start := time.Now()
	for i, p := range parts {
		if i > 0 && e.delay > 0 {
			// Delta i is due at start + i×delay: the pace does not drift
			// with the time each delta takes to hand over.
			wait := time.Until(start.Add(time.Duration(i) * e.delay))
			if t == nil {
				t = time.NewTimer(wait)
				defer t.Stop()
			} else {
				t.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return Usage{}, context.Cause(ctx)
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return Usage{}, context.Cause(ctx)
		}
		if err := out.Delta(p); err != nil {
			return Usage{}, err
		}
	}
	return Usage{PromptTokens: estimateTokens(in.Message), CompletionTokens: estimateTokens(in.Message)}, nil
}

// splitDeltas cuts s into at most n pieces that concatenate to s: at word
// boundaries when s has at least n words, else at character boundaries.
func splitDeltas(s string, n int) []string {
	if s == "" {
		return nil
	}
	words := strings.SplitAfter(s, " ")
	if len(words) >= n {
		per := (len(words) + n - 1) / n
		out := make([]string, 0, n)
		for i := 0; i < len(words); i += per {
			out = append(out, strings.Join(words[i:min(i+per, len(words))], ""))
		}
		return out
	}
	runes := utf8.RuneCountInString(s)
	per := max((runes+n-1)/n, 1)
	out := make([]string, 0, n)
	start, count := 0, 0
	for i := range s {
		if count > 0 && count%per == 0 {
			out = append(out, s[start:i])
			start = i
		}
		count++
	}
	return append(out, s[start:])
}

// estimateTokens is a rough token count (about four bytes a token) for
// backends that do not report usage.
func estimateTokens(s string) int {
	if s == "" {
		return 0
	}
	return (len(s) + 3) / 4
}
