package hooks

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

const (
	gatewayToken = "hooks-test-gateway-token"
	hookToken    = "hooks-test-hook-token-0123"
)

// fakeRunner is an agent.Runner for these unit tests (the real one is the
// agent feature's, exercised by the real-daemon test).
type fakeRunner struct {
	mu     sync.Mutex
	starts []string // message|agentID|sessionKey|key
	ctxs   []context.Context
}

func (f *fakeRunner) StartAgent(ctx context.Context, message, agentID, sessionKey, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, strings.Join([]string{message, agentID, sessionKey, key}, "|"))
	f.ctxs = append(f.ctxs, ctx)
	return key, nil // the real runner's run id is the key
}

func (f *fakeRunner) WaitAgent(ctx context.Context, runID string) (string, string, error) {
	if strings.Contains(runID, "slow") {
		<-ctx.Done()
		return "", "", ctx.Err()
	}
	return "ok", "done: " + runID, nil
}

type fixture struct {
	s    *Service
	base string
	srv  *gateway.Server
}

func hooksConfig(t *testing.T, h config.HooksConfig) *config.Config {
	t.Helper()
	c := &config.Config{Hooks: h}
	if err := c.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	return c.WithDefaults()
}

// serve runs a real in-process gateway server on loopback with the hooks.
func serve(t *testing.T, h config.HooksConfig, runner agent.Runner) *fixture {
	t.Helper()
	s := New(Options{Config: hooksConfig(t, h), Log: testutil.Logger(t), Agents: func() agent.Runner { return runner }})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(gateway.Options{Settings: gateway.Settings{Auth: gateway.AuthSettings{Mode: "token", Token: gatewayToken, MaxAttempts: 5}},
		Logger: testutil.Logger(t), Version: "test", Extensions: []gateway.Extension{s}})
	srv.Serve([]net.Listener{l})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test done", 0)
		s.Close()
	})
	return &fixture{s: s, base: "http://" + l.Addr().String(), srv: srv}
}

type reply struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func post(t *testing.T, url string, headers map[string]string, body string) reply {
	t.Helper()
	resp, raw := testutil.PostJSON(t, context.Background(), url, headers, body)
	r := reply{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, raw)
	}
	if e, ok := r.body["error"].(map[string]any); ok {
		r.raw += " " + e["message"].(string) // unescaped, for matching
	}
	return r
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestHooksOffAreNotFound(t *testing.T) {
	f := serve(t, config.HooksConfig{}, &fakeRunner{})
	for _, p := range []string{PathWake, PathAgent} {
		r := post(t, f.base+p, bearer(hookToken), `{"text":"x","message":"x"}`)
		if r.code != 404 || !strings.Contains(r.raw, `"type":"not_found"`) {
			t.Errorf("%s with hooks off: %d %s, want 404 like any unknown path", p, r.code, r.raw)
		}
	}
	// Hot reload switches them on.
	f.s.Apply(hooksConfig(t, config.HooksConfig{Enabled: true, Token: hookToken}))
	if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"x"}`); r.code != 200 {
		t.Errorf("after enabling: %d %s", r.code, r.raw)
	}
	f.s.Apply(hooksConfig(t, config.HooksConfig{}))
	if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"x"}`); r.code != 404 {
		t.Errorf("after disabling: %d %s", r.code, r.raw)
	}
}

func TestHooksAuth(t *testing.T) {
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken}, &fakeRunner{})
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		code    int
		want    string
	}{
		{"bearer", PathWake, bearer(hookToken), 200, `"ok":true`},
		{"header", PathWake, map[string]string{"x-gateway-token": hookToken}, 200, `"ok":true`},
		{"gateway token is not the hooks token", PathWake, bearer(gatewayToken), 401, `"unauthorized"`},
		{"wrong token", PathWake, bearer("wrong"), 401, `"unauthorized"`},
		{"no token", PathWake, nil, 401, `"unauthorized"`},
		{"query token", PathWake + "?token=" + hookToken, nil, 400, "query string is not accepted"},
		{"query token even with a good header", PathAgent + "?hookToken=x", bearer(hookToken), 400, "x-gateway-token header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"text":"hello"}`
			if strings.HasPrefix(tt.path, PathAgent) {
				body = `{"message":"m"}`
			}
			r := post(t, f.base+tt.path, tt.headers, body)
			if r.code != tt.code || !strings.Contains(r.raw, tt.want) {
				t.Errorf("%d %s, want %d containing %s", r.code, r.raw, tt.code, tt.want)
			}
		})
	}
	// Wrong tokens are rate limited by the gateway (MaxAttempts 5 here).
	var last reply
	for range 5 {
		last = post(t, f.base+PathWake, bearer("still-wrong"), `{"text":"x"}`)
	}
	if last.code != 429 || last.header.Get("Retry-After") == "" {
		t.Errorf("after repeated failures: %d (Retry-After %q), want 429 with Retry-After", last.code, last.header.Get("Retry-After"))
	}
}

func TestHooksLimits(t *testing.T) {
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken, MaxBodyBytes: 100, RequestsPerMinute: 3}, &fakeRunner{})
	if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"`+strings.Repeat("x", 200)+`"}`); r.code != 413 || !strings.Contains(r.raw, "hooks.maxBodyBytes") {
		t.Errorf("oversized body: %d %s", r.code, r.raw)
	}
	for i := range 2 {
		if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"x"}`); r.code != 200 {
			t.Fatalf("request %d: %d %s", i+2, r.code, r.raw)
		}
	}
	r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"x"}`)
	secs, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.code != 429 || secs < 1 || secs > 20 || !strings.Contains(r.raw, "hooks.requestsPerMinute") {
		t.Errorf("fourth request within a minute at 3/min: %d (Retry-After %q) %s", r.code, r.header.Get("Retry-After"), r.raw)
	}
	for _, tt := range []struct{ path, body, want string }{
		{PathWake, `{"text":""}`, "text is required"},
		{PathWake, `{"text":"x","mode":"later"}`, `mode "later" is not`},
		{PathWake, `{"text":"x","extra":1}`, `unknown field "extra"`},
		{PathAgent, `{}`, "message is required"},
		{PathAgent, `not json`, "the body is not valid"},
	} {
		f.s.Apply(hooksConfig(t, config.HooksConfig{Enabled: true, Token: hookToken})) // refills the bucket
		if r := post(t, f.base+tt.path, bearer(hookToken), tt.body); r.code != 400 || !strings.Contains(r.raw, tt.want) {
			t.Errorf("%s %s: %d %s, want 400 %q", tt.path, tt.body, r.code, r.raw, tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.base+PathWake, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET %s: %d Allow %q", PathWake, resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestWakeBroadcastsHeartbeat(t *testing.T) {
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken, HeartbeatIntervalMs: 100}, &fakeRunner{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: strings.Replace(f.base, "http", "ws", 1), Token: gatewayToken, Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := func() HeartbeatPayload {
		t.Helper()
		for {
			select {
			case ev := <-c.Events():
				if ev.Name != EventHeartbeat {
					continue
				}
				var p HeartbeatPayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				return p
			case <-ctx.Done():
				t.Fatal("no heartbeat event")
			}
		}
	}
	if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"queued","mode":"next-heartbeat"}`); r.code != 200 || r.body["mode"] != ModeNextHeartbeat {
		t.Fatalf("queue: %d %s", r.code, r.raw)
	}
	p := next()
	if p.Reason != "heartbeat" || len(p.Events) != 1 || p.Events[0].Text != "queued" || p.Source != "hooks" {
		t.Errorf("queued wake: %+v", p)
	}
	if r := post(t, f.base+PathWake, bearer(hookToken), `{"text":"right now"}`); r.code != 200 || r.body["mode"] != ModeNow {
		t.Fatalf("now: %d %s", r.code, r.raw)
	}
	p = next()
	if p.Reason != "wake" || len(p.Events) != 1 || p.Events[0].Text != "right now" || p.Events[0].Mode != ModeNow {
		t.Errorf("wake now: %+v", p)
	}
}

func TestAgentHook(t *testing.T) {
	runner := &fakeRunner{}
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken, DefaultAgentID: "main", WaitTimeoutMs: 200}, runner)
	r := post(t, f.base+PathAgent, map[string]string{"Authorization": "Bearer " + hookToken, "Idempotency-Key": "nightly"}, `{"message":"nightly report"}`)
	if r.code != 200 || r.body["ok"] != true || r.body["runId"] != "hook:nightly" {
		t.Fatalf("start: %d %s", r.code, r.raw)
	}
	r = post(t, f.base+PathAgent, bearer(hookToken), `{"message":"wait for me","agentId":"main","sessionKey":"hook:s1","waitForCompletion":true}`)
	if r.code != 200 || r.body["ok"] != true || r.body["status"] != "ok" || !strings.HasPrefix(r.body["summary"].(string), "done: hook:") {
		t.Errorf("wait: %d %s", r.code, r.raw)
	}
	runner.mu.Lock()
	starts, ctxs := runner.starts, runner.ctxs
	runner.mu.Unlock()
	if len(starts) != 2 || starts[0] != "nightly report|main|hook:nightly|hook:nightly" || !strings.HasPrefix(starts[1], "wait for me|main|hook:s1|hook:") {
		t.Errorf("runs started: %q", starts)
	}
	// The run outlives the HTTP request that started it.
	if ctxs[0].Err() != nil {
		t.Error("the run's context ended with the hook request")
	}
	r = post(t, f.base+PathAgent, map[string]string{"Authorization": "Bearer " + hookToken, "Idempotency-Key": "slow"}, `{"message":"m","waitForCompletion":true}`)
	if r.code != 504 || r.body["runId"] != "hook:slow" || !strings.Contains(r.raw, "hooks.waitTimeoutMs") {
		t.Errorf("wait past the timeout: %d %s", r.code, r.raw)
	}
}

func TestAgentHookWithoutRunner(t *testing.T) {
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken}, nil)
	r := post(t, f.base+PathAgent, bearer(hookToken), `{"message":"m"}`)
	if r.code != 503 || !strings.Contains(r.raw, "agent runs are not available") {
		t.Errorf("no runner: %d %s", r.code, r.raw)
	}
}

func TestTokenFromEnvMissing(t *testing.T) {
	s := New(Options{Config: hooksConfig(t, config.HooksConfig{Enabled: true, TokenEnv: "HOOKS_TOKEN_UNSET"}), Log: testutil.Logger(t)})
	defer s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(gateway.Options{Settings: gateway.Settings{Auth: gateway.AuthSettings{Mode: "token", Token: gatewayToken}},
		Logger: testutil.Logger(t), Extensions: []gateway.Extension{s}})
	srv.Serve([]net.Listener{l})
	defer srv.Shutdown(context.Background(), "done", 0)
	r := post(t, "http://"+l.Addr().String()+PathWake, bearer("anything"), `{"text":"x"}`)
	if r.code != 503 || !strings.Contains(r.raw, "HOOKS_TOKEN_UNSET is not set") {
		t.Errorf("enabled with an unset tokenEnv: %d %s", r.code, r.raw)
	}
}

// TestAgentHookReach: the agents, sessions and run ids a hooks caller may
// name (hooks.allowedAgentIds, hook: sessions and run ids).
func TestAgentHookReach(t *testing.T) {
	runner := &fakeRunner{}
	f := serve(t, config.HooksConfig{Enabled: true, Token: hookToken}, runner)
	h := func(key string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + hookToken, "Idempotency-Key": key}
	}
	for _, tt := range []struct {
		name, key, body string
		code            int
		want            string
	}{
		{"default agent (agents.default)", "", `{"message":"m"}`, 200, `"runId":"hook:`},
		{"the default agent by name", "", `{"message":"m","agentId":"main"}`, 200, `"runId":"hook:`},
		{"another agent", "", `{"message":"m","agentId":"ops"}`, 403, `agent "ops" may not be run by hooks (only the default agent "main", since hooks.allowedAgentIds is unset`},
		{"main session", "", `{"message":"m","sessionKey":"agent:main:main"}`, 400, `sessionKey "agent:main:main" does not start with "hook:"`},
		{"bare prefix", "", `{"message":"m","sessionKey":"hook:"}`, 400, `does not start with "hook:"`},
		{"operator's run id", "op-run", `{"message":"m"}`, 200, `"runId":"hook:op-run"`},
		{"control characters in the key", "a\tb", `{"message":"m"}`, 400, "Idempotency-Key"},
		{"long key", strings.Repeat("k", 201), `{"message":"m"}`, 400, "over 200 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hd := bearer(hookToken)
			if tt.key != "" {
				hd = h(tt.key)
			}
			f.s.Apply(hooksConfig(t, config.HooksConfig{Enabled: true, Token: hookToken})) // refills the bucket
			if r := post(t, f.base+PathAgent, hd, tt.body); r.code != tt.code || !strings.Contains(r.raw, tt.want) {
				t.Errorf("%d %s, want %d containing %s", r.code, r.raw, tt.code, tt.want)
			}
		})
	}
	runner.mu.Lock()
	for _, s := range runner.starts {
		if parts := strings.Split(s, "|"); !strings.HasPrefix(parts[2], Prefix) || !strings.HasPrefix(parts[3], Prefix) || parts[1] != "main" {
			t.Errorf("a hook run was started as %q: agent, session and run id must be main, hook:*, hook:*", s)
		}
	}
	runner.mu.Unlock()

	f.s.Apply(hooksConfig(t, config.HooksConfig{Enabled: true, Token: hookToken, AllowedAgentIDs: []string{"*"}}))
	if r := post(t, f.base+PathAgent, bearer(hookToken), `{"message":"m","agentId":"ops"}`); r.code != 200 {
		t.Errorf("allowedAgentIds [*]: %d %s", r.code, r.raw)
	}
	f.s.Apply(hooksConfig(t, config.HooksConfig{Enabled: true, Token: hookToken, DefaultAgentID: "ops", AllowedAgentIDs: []string{"ops", "nightly"}}))
	for agent, code := range map[string]int{"": 200, "nightly": 200, "main": 403} {
		if r := post(t, f.base+PathAgent, bearer(hookToken), `{"message":"m","agentId":"`+agent+`"}`); r.code != code {
			t.Errorf("allowedAgentIds [ops nightly], agent %q: %d %s, want %d", agent, r.code, r.raw, code)
		}
	}
}
