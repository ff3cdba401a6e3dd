package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// upstream is a local OpenAI-compatible chat-completions server.
type upstream struct {
	mu       sync.Mutex
	requests []map[string]any
	auth     []string
	release  chan struct{}
	// pace is the interval of the /paced stream's chunks.
	pace time.Duration
	// written holds, by the marker of each /paced request (its last user
	// message), the instant the upstream wrote each chunk of its answer,
	// taken right before the write.
	written map[string][]time.Time
}

// pacedChunks is the number of content chunks of a /paced answer.
const pacedChunks = 4

// pacedPiece is chunk k of the /paced answer to the message marker: the
// marker and the index, so the answer tells runs apart and shows its
// chunks' order.
func pacedPiece(marker string, k int) string { return fmt.Sprintf("%s/%d ", marker, k) }

// pacedAnswer is the whole /paced answer to the message marker.
func pacedAnswer(marker string) string {
	var b strings.Builder
	for k := range pacedChunks {
		b.WriteString(pacedPiece(marker, k))
	}
	return b.String()
}

// lastUserMessage is the content of the last user message of a
// chat-completions request body, "" if there is none.
func lastUserMessage(body map[string]any) string {
	msgs, _ := body["messages"].([]any)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m, _ := msgs[i].(map[string]any); m["role"] == "user" {
			s, _ := m["content"].(string)
			return s
		}
	}
	return ""
}

// wroteAt returns the write instants of the /paced answer to marker.
func (u *upstream) wroteAt(marker string) []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.written[marker]
}

func (u *upstream) handler(t testing.TB) http.Handler {
	mux := http.NewServeMux()
	record := func(r *http.Request) map[string]any {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("upstream got bad JSON: %v", err)
		}
		u.mu.Lock()
		u.requests = append(u.requests, body)
		u.auth = append(u.auth, r.Header.Get("Authorization"))
		u.mu.Unlock()
		return body
	}
	mux.HandleFunc("POST /stream/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body := record(r)
		if body["stream"] != true {
			t.Errorf("stream agent sent stream=%v", body["stream"])
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, piece := range []string{"Hel", "lo ", "wörld"} {
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", piece)
			fl.Flush()
		}
		fmt.Fprint(w, "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
	})
	// /paced streams pacedChunks chunks, the first right after the
	// response header and chunk k at that instant + k×pace, flushing each
	// and recording when it wrote it; then the finish chunk and [DONE].
	mux.HandleFunc("POST /paced/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		marker := lastUserMessage(record(r))
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fl.Flush()
		start := time.Now()
		timer := time.NewTimer(u.pace)
		defer timer.Stop()
		for k := range pacedChunks {
			if k > 0 {
				timer.Reset(time.Until(start.Add(time.Duration(k) * u.pace)))
				select {
				case <-r.Context().Done():
					return
				case <-timer.C:
				}
			}
			chunk := fmt.Appendf(nil, "data: {\"id\":\"p\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", pacedPiece(marker, k))
			at := time.Now()
			if _, err := w.Write(chunk); err != nil {
				return // the gateway went away; its run reports that
			}
			fl.Flush()
			u.mu.Lock()
			u.written[marker] = append(u.written[marker], at)
			u.mu.Unlock()
		}
		fmt.Fprint(w, "data: {\"id\":\"p\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	})
	mux.HandleFunc("POST /whole/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}]}`)
	})
	mux.HandleFunc("POST /fail/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"message":"model exploded","type":"server_error"}}`)
	})
	mux.HandleFunc("POST /garbage/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {not json\n\n")
	})
	mux.HandleFunc("POST /stall/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"thinking\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select { // silent until the gateway gives up (or the test ends)
		case <-r.Context().Done():
		case <-u.release:
		}
	})
	return mux
}

func TestOpenAIBackend(t *testing.T) {
	u := &upstream{release: make(chan struct{})}
	srv := httptest.NewServer(u.handler(t))
	t.Cleanup(func() { close(u.release); srv.Close() })
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "api.key")
	if err := os.WriteFile(keyFile, []byte("sk-test-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := func(path, extra string) string {
		return fmt.Sprintf(`{"backend":"openai","openai":{"baseUrl":"%s/%s/v1","model":"m1","apiKeyFile":%q%s}}`, srv.URL, path, keyFile, extra)
	}
	cfg := fmt.Sprintf(`{"agents":{"list":{"s":%s,"w":%s,"f":%s,"g":%s,"st":%s}}}`,
		agent("stream", `,"systemPrompt":"be brief"`), agent("whole", `,"stream":false`), agent("fail", ""), agent("garbage", ""), agent("stall", `,"stallTimeoutMs":300`))
	g := startGateway(t, dir, cfg)
	c := dial(t, g)

	r := runAgent(t, c, client.AgentParams{Message: "hi", IdempotencyKey: "o1", AgentID: "s", SessionKey: "chat"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" || r.result.Summary != "Hello wörld" || r.text() != "Hello wörld" || len(r.events) < 5 {
		t.Fatalf("stream: %+v %v (%d events)", r.result, r.err, len(r.events))
	}
	// The second run of the session carries the first exchange as history.
	r = runAgent(t, c, client.AgentParams{Message: "again", IdempotencyKey: "o2", AgentID: "s", SessionKey: "chat"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" {
		t.Fatal(r.result, r.err)
	}
	u.mu.Lock()
	last := u.requests[len(u.requests)-1]
	auth := u.auth[len(u.auth)-1]
	u.mu.Unlock()
	msgs, _ := json.Marshal(last["messages"])
	want := `[{"content":"be brief","role":"system"},{"content":"hi","role":"user"},{"content":"Hello wörld","role":"assistant"},{"content":"again","role":"user"}]`
	if string(msgs) != want || last["model"] != "m1" || auth != "Bearer sk-test-123" {
		t.Fatalf("upstream request: messages %s model %v auth %q", msgs, last["model"], auth)
	}

	r = runAgent(t, c, client.AgentParams{Message: "hi", IdempotencyKey: "o3", AgentID: "w"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" || r.result.Summary != "whole answer" {
		t.Fatalf("non-stream: %+v %v", r.result, r.err)
	}
	for _, tc := range []struct{ id, want string }{
		{"f", "500 Internal Server Error: model exploded"},
		{"g", "malformed stream chunk"},
		{"st", "stalled: nothing received for 300ms"},
	} {
		start := time.Now()
		r = runAgent(t, c, client.AgentParams{Message: "hi", IdempotencyKey: "o-" + tc.id, AgentID: tc.id}, 10*time.Second)
		if r.err != nil || r.result.Status != "error" || r.result.Error == nil || r.result.Error.Code != protocol.ErrUnavailable || !strings.Contains(r.result.Error.Message, tc.want) {
			t.Fatalf("agent %s: %+v %v", tc.id, r.result, r.err)
		}
		if tc.id == "st" && (r.result.Summary != "thinking" || time.Since(start) > 5*time.Second) {
			t.Fatalf("stall: summary %q after %s", r.result.Summary, time.Since(start))
		}
	}
}
