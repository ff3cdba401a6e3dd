package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/procs/procstest"
)

// TestEchoTwoStageWire reads the raw frames of an echo run: the accepted
// response first, then agent events in seq order (lifecycle start,
// assistant deltas, lifecycle end), then the final response with the same
// id.
func TestEchoTwoStageWire(t *testing.T) {
	g := startGateway(t, t.TempDir(), "")
	ctx := ctxT(t, 15*time.Second)
	ws, _, err := websocket.Dial(ctx, g.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	read := func() map[string]any {
		t.Helper()
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	write := func(v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	if ev := read(); ev["event"] != "connect.challenge" {
		t.Fatalf("first frame %v", ev)
	}
	write(map[string]any{"type": "req", "id": "c1", "method": "connect", "params": map[string]any{
		"minProtocol": 4, "maxProtocol": 4, "client": map[string]any{"id": "test", "version": "1", "platform": "linux", "mode": "test"},
		"scopes": []string{"operator.read", "operator.write"}, "auth": map[string]any{"token": g.Token}}})
	if hello := read(); hello["ok"] != true {
		t.Fatalf("connect: %v", hello)
	}
	msg := "the quick brown fox jumps over the lazy dog"
	write(map[string]any{"type": "req", "id": "r1", "method": "agent", "params": map[string]any{"message": msg, "idempotencyKey": "wire-run-1"}})

	var frames []map[string]any
	for len(frames) < 50 {
		f := read()
		if f["type"] == "event" && f["event"] != "agent" {
			continue // tick, health, presence
		}
		frames = append(frames, f)
		if f["type"] == "res" && len(frames) > 1 {
			break
		}
	}
	first := frames[0]
	if first["type"] != "res" || first["id"] != "r1" || first["ok"] != true {
		t.Fatalf("first frame after the request is not the accepted response: %v", first)
	}
	acc := first["payload"].(map[string]any)
	if acc["runId"] != "wire-run-1" || acc["status"] != "accepted" || acc["acceptedAt"] == nil {
		t.Fatalf("accepted payload %v", acc)
	}
	last := frames[len(frames)-1]
	if last["type"] != "res" || last["id"] != "r1" || last["ok"] != true {
		t.Fatalf("last frame is not the final response: %v", last)
	}
	final := last["payload"].(map[string]any)
	if final["runId"] != "wire-run-1" || final["status"] != "ok" || final["summary"] != msg {
		t.Fatalf("final payload %v", final)
	}
	events := frames[1 : len(frames)-1]
	var text strings.Builder
	deltas := 0
	for i, f := range events {
		p := f["payload"].(map[string]any)
		if p["runId"] != "wire-run-1" || p["seq"].(float64) != float64(i+1) || p["ts"] == nil {
			t.Fatalf("event %d: %v", i, p)
		}
		data := p["data"].(map[string]any)
		switch p["stream"] {
		case "assistant":
			text.WriteString(data["delta"].(string))
			deltas++
		case "lifecycle":
			if (i == 0) != (data["phase"] == "start") || (i == len(events)-1) != (data["phase"] == "end") {
				t.Fatalf("lifecycle event %d out of place: %v", i, p)
			}
		default:
			t.Fatalf("unexpected stream %v", p)
		}
	}
	if text.String() != msg || deltas < 2 {
		t.Fatalf("deltas %d %q, want the message in several deltas", deltas, text.String())
	}
}

func TestEchoRunAndHistory(t *testing.T) {
	g := startGateway(t, t.TempDir(), "")
	c := dial(t, g)
	r := runAgent(t, c, client.AgentParams{Message: "hello there", IdempotencyKey: "k1", SessionKey: "s1"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" || r.result.Summary != "hello there" || r.text() != "hello there" || r.accepted.RunID != "k1" {
		t.Fatalf("run: %+v %v", r.result, r.err)
	}
	var h history
	if err := call(t, c, "chat.history", map[string]any{"sessionKey": "s1"}, &h); err != nil {
		t.Fatal(err)
	}
	if h.Total != 2 || len(h.Messages) != 2 || h.Messages[0].Role != "user" || h.Messages[0].Text != "hello there" ||
		h.Messages[1].Role != "assistant" || h.Messages[1].Text != "hello there" || h.Messages[1].Status != "ok" ||
		h.Messages[0].RunID != "k1" || h.Messages[1].TS == 0 {
		t.Fatalf("history %+v", h)
	}
	// agent.wait on the ended run; on an unknown run.
	var w client.AgentResult
	if err := call(t, c, "agent.wait", map[string]any{"runId": "k1"}, &w); err != nil || w.Status != "ok" || w.EndedAt == 0 {
		t.Fatalf("agent.wait %+v %v", w, err)
	}
	// An unknown run is waited for, as in OpenClaw: no run by then is
	// status timeout.
	var unknown map[string]any
	if err := call(t, c, "agent.wait", map[string]any{"runId": "nope", "timeoutMs": 50}, &unknown); err != nil || unknown["status"] != "timeout" || unknown["runId"] != "nope" {
		t.Fatalf("agent.wait on an unknown run: %v %v", unknown, err)
	}
	// One started while agent.wait waits is waited for to its end.
	waited := make(chan client.AgentResult, 1)
	go func() {
		var w client.AgentResult
		_ = call(t, c, "agent.wait", map[string]any{"runId": "later", "timeoutMs": 10000}, &w)
		waited <- w
	}()
	time.Sleep(100 * time.Millisecond) // let agent.wait start waiting (either order passes)
	if r := runAgent(t, c, client.AgentParams{Message: "later on", IdempotencyKey: "later"}, 10*time.Second); r.err != nil {
		t.Fatal(r.err)
	}
	if w := <-waited; w.Status != "ok" || w.Summary != "later on" {
		t.Fatalf("agent.wait on a run started later: %+v", w)
	}
	// Bad params: missing key, unknown agent, unknown field.
	for _, p := range []map[string]any{
		{"message": "x"},
		{"message": "x", "idempotencyKey": "k2", "agentId": "ghost"},
		{"message": "x", "idempotencyKey": "k3", "bogus": 1},
		{"message": " ", "idempotencyKey": "k4"},
	} {
		_, _, err := c.CallTwoStage(ctxT(t, 5*time.Second), "agent", p)
		if code, _ := errCode(err); code != protocol.ErrInvalidRequest {
			t.Errorf("agent %v: %v, want INVALID_REQUEST", p, err)
		}
	}
}

// TestIdempotentJoin: a second caller with the same key joins the run in
// progress (same runId, later events, same final); after the end the key
// returns the same result without a new run.
func TestIdempotentJoin(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"list":{"slow":{"echo":{"delayMs":300}}}}}`)
	c1, c2 := dial(t, g), dial(t, g)
	p := client.AgentParams{Message: "one two three four five six seven eight", IdempotencyKey: "join-1", AgentID: "slow", SessionKey: "join"}
	var wg sync.WaitGroup
	r1 := &run{}
	streaming := make(chan struct{})
	var once sync.Once
	wg.Add(1)
	go func() {
		defer wg.Done()
		r1.result, r1.err = c1.Agent(ctxT(t, 20*time.Second), p, func(a client.AgentAccepted) { r1.accepted = a }, func(ev client.AgentEvent) {
			r1.events = append(r1.events, ev)
			if ev.Stream == "assistant" {
				once.Do(func() { close(streaming) })
			}
		})
	}()
	// Join only once the run has streamed (its lifecycle start is seq 1),
	// so the joiner's events are a tail that starts later.
	select {
	case <-streaming:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run streamed nothing within 10s")
	}
	r2 := runAgent(t, c2, p, 20*time.Second)
	wg.Wait()
	if r1.err != nil || r2.err != nil {
		t.Fatal(r1.err, r2.err)
	}
	if r2.accepted.RunID != "join-1" || r2.result.Status != "ok" || r2.result.Summary != r1.result.Summary || r1.result.Summary != p.Message {
		t.Fatalf("joined %+v / %+v", r2.result, r1.result)
	}
	if len(r2.events) == 0 || r2.events[len(r2.events)-1].Seq != r1.events[len(r1.events)-1].Seq || r2.events[0].Seq <= 1 {
		t.Fatalf("joiner events should be the tail of the run's: %d of %d, first seq %d", len(r2.events), len(r1.events), r2.events[0].Seq)
	}
	r3 := runAgent(t, c2, p, 5*time.Second)
	if r3.err != nil || r3.result.Summary != p.Message || r3.result.EndedAt != r1.result.EndedAt {
		t.Fatalf("repeat after end: %+v %v", r3.result, r3.err)
	}
	var h history
	_ = call(t, c1, "chat.history", map[string]any{"sessionKey": "join"}, &h)
	if h.Total != 2 {
		t.Fatalf("one run means two transcript messages, got %d", h.Total)
	}
}

// TestConcurrencyLimitAndCancel: past agents.maxConcurrent a run is
// refused (UNAVAILABLE, retryable, TOO_MANY_RUNS); agent.cancel ends a run
// with status error, and its slot is free again.
func TestConcurrencyLimitAndCancel(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"maxConcurrent":2,"list":{"slow":{"echo":{"delayMs":60000}}}}}`)
	c := dial(t, g)
	var finals [2]json.RawMessage
	var wg sync.WaitGroup
	for i := range 2 {
		_, ts, err := c.CallTwoStage(ctxT(t, 5*time.Second), "agent", client.AgentParams{Message: "a b c d", IdempotencyKey: fmt.Sprint("busy-", i), AgentID: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); finals[i], _ = ts.Final(ctxT(t, 20*time.Second)) }()
	}
	_, _, err := c.CallTwoStage(ctxT(t, 5*time.Second), "agent", client.AgentParams{Message: "x", IdempotencyKey: "busy-2"})
	var ce *client.CallError
	if code, detail := errCode(err); code != protocol.ErrUnavailable || detail != "TOO_MANY_RUNS" || !errorsAs(err, &ce) || !ce.Err.Retryable || !strings.Contains(ce.Err.Message, "agents.maxConcurrent") {
		t.Fatalf("third run: %v", err)
	}
	// Cancel only after each run streamed its first word, which the final
	// summary must keep: a cancel that wins the race to the backend's
	// first delta leaves an empty summary.
	waitFirstDeltas(t, c, "busy-0", "busy-1")
	for i := range 2 {
		var out struct {
			Canceled bool `json:"canceled"`
		}
		if err := call(t, c, "agent.cancel", map[string]any{"runId": fmt.Sprint("busy-", i)}, &out); err != nil || !out.Canceled {
			t.Fatalf("cancel: %v %+v", err, out)
		}
	}
	wg.Wait()
	for i, f := range finals {
		var res client.AgentResult
		if err := json.Unmarshal(f, &res); err != nil || res.Status != "error" || res.Error == nil || res.Error.DetailCode() != "RUN_CANCELED" || res.Summary != "a " {
			t.Fatalf("final %d: %s", i, f)
		}
	}
	r := runAgent(t, c, client.AgentParams{Message: "free again", IdempotencyKey: "busy-3"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" {
		t.Fatalf("after cancel: %+v %v", r.result, r.err)
	}
}

// waitFirstDeltas reads c's events (10 s) until every run in runIDs has
// streamed an assistant delta.
func waitFirstDeltas(t *testing.T, c *client.Conn, runIDs ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, id := range runIDs {
		left[id] = true
	}
	deadline := time.After(10 * time.Second)
	for len(left) > 0 {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatal("connection closed while waiting for the runs' first deltas")
			}
			if ev.Name != "agent" {
				continue
			}
			var e struct {
				RunID  string `json:"runId"`
				Stream string `json:"stream"`
				Data   struct {
					Delta string `json:"delta"`
				} `json:"data"`
			}
			if err := json.Unmarshal(ev.Payload, &e); err != nil {
				t.Fatal(err)
			}
			if e.Stream == "assistant" && e.Data.Delta != "" {
				delete(left, e.RunID)
			}
		case <-deadline:
			t.Fatalf("no first delta within 10s from %v", left)
		}
	}
}

func errorsAs(err error, ce **client.CallError) bool { return errors.As(err, ce) }

// TestExecBackend: output streamed and exit status mapped; a hanging
// command is killed with its whole process group at the timeout.
func TestExecBackend(t *testing.T) {
	dir := t.TempDir()
	spawnDir, hangDir := filepath.Join(dir, "spawn"), filepath.Join(dir, "hang")
	for _, d := range []string{spawnDir, hangDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := func(mode, dir string) string {
		b, _ := json.Marshal(map[string]any{"command": "/bin/sh", "args": []string{"-c", procstest.Script, "sh", mode}, "env": []string{"DIR=" + dir},
			"limits": map[string]any{"openFiles": 64, "cpuSeconds": 60}})
		return string(b)
	}
	cfg := `{"agents":{"list":{
		"upper":{"backend":"exec","exec":{"command":"tr","args":["a-z","A-Z"]}},
		"fail":{"backend":"exec","exec":{"command":"/bin/sh","args":["-c","echo partial; echo something broke >&2; exit 3"]}},
		"spawner":{"backend":"exec","exec":` + script("exit", spawnDir) + `},
		"hang":{"backend":"exec","timeoutMs":3000,"exec":` + script("wait", hangDir) + `}
	}}}`
	g := startGateway(t, dir, cfg)
	c := dial(t, g)

	r := runAgent(t, c, client.AgentParams{Message: "shout this", IdempotencyKey: "x1", AgentID: "upper"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" || r.result.Summary != "SHOUT THIS" || r.text() != "SHOUT THIS" {
		t.Fatalf("upper: %+v %v", r.result, r.err)
	}
	r = runAgent(t, c, client.AgentParams{Message: "x", IdempotencyKey: "x2", AgentID: "fail"}, 10*time.Second)
	if r.err != nil || r.result.Status != "error" || r.result.Summary != "partial\n" || !strings.Contains(r.result.Error.Message, "exit status 3") || !strings.Contains(r.result.Error.Message, "something broke") {
		t.Fatalf("fail: %+v %v", r.result, r.err)
	}
	// A run that ends leaves nothing running: background, setsid and
	// orphaned children end with it.
	r = runAgent(t, c, client.AgentParams{Message: "x", IdempotencyKey: "x4", AgentID: "spawner"}, 30*time.Second)
	if r.err != nil || r.result.Status != "ok" || r.result.Summary != "started\n" {
		t.Fatalf("spawner: %+v %v", r.result, r.err)
	}
	procstest.CheckGone(t, "the exec agent's run", procstest.PIDs(t, spawnDir, time.Second), 0)
	start := time.Now()
	r = runAgent(t, c, client.AgentParams{Message: "x", IdempotencyKey: "x3", AgentID: "hang"}, 30*time.Second)
	if r.err != nil || r.result.Status != "timeout" || r.result.Error == nil || r.result.Error.Code != protocol.ErrAgentTimeout || r.result.Summary != "started\n" {
		t.Fatalf("hang: %+v %v", r.result, r.err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("the timed-out run took %s to end", el)
	}
	procstest.CheckGone(t, "the timed-out exec agent's run", procstest.PIDs(t, hangDir, time.Second), 5*time.Second)
}

// TestTranscriptSurvivesKill9 kills gatewayd with SIGKILL while a run
// streams, restarts it on the same state directory and reads the
// transcript: the user message and the text flushed before the kill are
// there, the answer marked interrupted.
func TestTranscriptSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "talker.pid")
	cfg := fmt.Sprintf(`{"agents":{"list":{"talker":{"backend":"exec","exec":{"command":"/bin/sh","args":["-c","echo $$ > \"$PIDFILE\"; echo first words; sleep 300"],"env":["PIDFILE=%s"]}}}}}`, pidFile)
	g := startGateway(t, dir, cfg)
	c := dial(t, g)
	_, _, err := c.CallTwoStage(ctxT(t, 5*time.Second), "agent", client.AgentParams{Message: "tell me", IdempotencyKey: "k9", AgentID: "talker", SessionKey: "durable"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, 20*time.Millisecond, "the partial answer to be flushed", func() (bool, string) {
		var h history
		_ = call(t, c, "chat.history", map[string]any{"sessionKey": "durable"}, &h)
		return len(h.Messages) == 2 && h.Messages[1].Text == "first words\n", fmt.Sprintf("messages %+v", h.Messages)
	})
	if err := g.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.Exited()
	// The killed gateway's exec child ends with it (its run supervisor
	// gets SIGTERM when gatewayd dies).
	if raw, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && pid > 1 {
			procstest.WaitGone(t, fmt.Sprintf("the exec agent's command (pid %d) outlived gatewayd killed with SIGKILL", pid), pid, 10*time.Second)
		}
	}
	g2 := startGateway(t, dir, "")
	c2 := dial(t, g2)
	var h history
	if err := call(t, c2, "chat.history", map[string]any{"sessionKey": "durable"}, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 2 || h.Messages[0].Text != "tell me" || h.Messages[0].RunID != "k9" ||
		h.Messages[1].Text != "first words\n" || h.Messages[1].Status != "interrupted" {
		t.Fatalf("history after kill -9: %+v", h)
	}
	r := runAgent(t, c2, client.AgentParams{Message: "again", IdempotencyKey: "k10", SessionKey: "durable"}, 10*time.Second)
	if r.err != nil || r.result.Status != "ok" {
		t.Fatal(r.result, r.err)
	}
	if err := call(t, c2, "chat.history", map[string]any{"sessionKey": "durable", "limit": 2}, &h); err != nil || h.Total != 4 || len(h.Messages) != 2 || h.Messages[1].Text != "again" {
		t.Fatalf("history after restart run: %+v %v", h, err)
	}
}

// TestSessionLimit: a full session refuses the run with a clear error.
func TestSessionLimit(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"maxSessionMessages":4}}`)
	c := dial(t, g)
	for i := range 2 {
		if r := runAgent(t, c, client.AgentParams{Message: "m", IdempotencyKey: fmt.Sprint("lim", i), SessionKey: "small"}, 10*time.Second); r.err != nil {
			t.Fatal(r.err)
		}
	}
	_, _, err := c.CallTwoStage(ctxT(t, 5*time.Second), "agent", client.AgentParams{Message: "m", IdempotencyKey: "lim9", SessionKey: "small"})
	var ce *client.CallError
	if !errorsAs(err, &ce) || ce.Err.DetailCode() != "SESSION_FULL" || !strings.Contains(ce.Err.Message, "agents.maxSessionMessages") {
		t.Fatalf("full session: %v", err)
	}
}

// TestHotReload: an agent added to the config file is usable without a
// restart.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, `{}`)
	c := dial(t, g)
	gatewaydtest.WriteConfigT(t, gatewaydtest.ConfigPath(dir), `{"agents":{"list":{"later":{"backend":"exec","exec":{"command":"tr","args":["a-z","A-Z"]}}}}}`)
	i := 0
	testutil.WaitFor(t, 10*time.Second, 20*time.Millisecond, "agent later to appear", func() (bool, string) {
		i++
		r := runAgent(t, c, client.AgentParams{Message: "hot", IdempotencyKey: fmt.Sprint("hot", i), AgentID: "later"}, 5*time.Second)
		if r.err != nil {
			return false, r.err.Error()
		}
		return r.result.Summary == "HOT", fmt.Sprintf("summary %q", r.result.Summary)
	})
}
