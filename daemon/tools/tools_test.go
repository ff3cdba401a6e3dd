package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/procs/procstest"
)

const testToken = "tools-test-token-0123456789"

// serve runs a real in-process gateway server on loopback with the tools
// feature and returns its base URL.
func serve(t *testing.T, s *Service) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(gateway.Options{Settings: gateway.Settings{Auth: gateway.AuthSettings{Mode: "token", Token: testToken}},
		Logger: testutil.Logger(t), Version: "test", Extensions: []gateway.Extension{s}})
	srv.Serve([]net.Listener{l})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test done", 0)
		s.Close()
	})
	return "http://" + l.Addr().String()
}

func toolsConfig(t *testing.T, tc config.ToolsConfig) *config.Config {
	t.Helper()
	c := &config.Config{Tools: tc}
	if err := c.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	return c.WithDefaults()
}

type answer struct {
	code   int
	header http.Header
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func invoke(t *testing.T, ctx context.Context, base, token, body string) answer {
	t.Helper()
	resp, raw := testutil.PostJSON(t, ctx, base+Path, testutil.Bearer(token), body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, raw)
	}
	a.code, a.header = resp.StatusCode, resp.Header
	return a
}

func TestInvoke(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	cfg := toolsConfig(t, config.ToolsConfig{
		MaxBodyBytes: 4096,
		Deny:         []string{"secret-*"},
		Exec: map[string]config.ExecToolConfig{
			"add": {Command: []string{"/bin/sh", "-c", `cat; echo "$GATEWAY_TOOL_ACTION $GATEWAY_SESSION_KEY $GATEWAY_AGENT_ID" >&2; touch "$MARK"`},
				Env:        map[string]string{"MARK": marker},
				ArgsSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false}`)},
			"env":      {Command: []string{"/bin/sh", "-c", `echo "$GATEWAY_TOOL_NAME/$GATEWAY_TOOL_ACTION/$GATEWAY_SESSION_KEY/$GATEWAY_AGENT_ID/$GATEWAY_IDEMPOTENCY_KEY/${GATEWAY_TOKEN:-no-token}"`}},
			"fails":    {Command: []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}},
			"chatty":   {Command: []string{"/bin/sh", "-c", "yes"}, MaxOutputBytes: 1000},
			"missing":  {Command: []string{"/nonexistent/tool"}},
			"secret-x": {Command: []string{"/bin/true"}},
		},
	})
	t.Setenv("GATEWAY_TOKEN", "must-not-leak")
	base := serve(t, New(Options{Config: cfg, Log: testutil.Logger(t), Builtins: CoreBuiltins()}))
	ctx := context.Background()
	tests := []struct {
		name, token, body string
		code              int
		typ, msg, result  string
	}{
		{name: "good args", body: `{"tool":"add","args":{"a":1,"b":2}}`, code: 200, result: `{"a":1,"b":2}`},
		{name: "name alias", body: `{"name":"add","args":{"a":1,"b":2}}`, code: 200, result: `{"a":1,"b":2}`},
		{name: "text output and context env, no gateway secrets", body: `{"tool":"env","action":"go","sessionKey":"s1","agentId":"main","idempotencyKey":"i1"}`,
			code: 200, result: `"env/go/s1/main/i1/no-token"`},
		{name: "bad args type", body: `{"tool":"add","args":{"a":"one","b":2}}`, code: 400, typ: TypeInvalidRequest, msg: "at /a: got string, want integer"},
		{name: "missing arg", body: `{"tool":"add","args":{"a":1}}`, code: 400, typ: TypeInvalidRequest, msg: "missing property 'b'"},
		{name: "args not object", body: `{"tool":"env","args":[1]}`, code: 400, typ: TypeInvalidRequest, msg: "must be a JSON object"},
		{name: "unknown field", body: `{"tool":"add","bogus":1}`, code: 400, typ: TypeInvalidRequest, msg: `unknown field "bogus"`},
		{name: "no tool", body: `{"args":{}}`, code: 400, typ: TypeInvalidRequest, msg: "tool is required"},
		{name: "tool and name differ", body: `{"tool":"a","name":"b"}`, code: 400, typ: TypeInvalidRequest, msg: "differ"},
		{name: "not json", body: `{`, code: 400, typ: TypeInvalidRequest, msg: "not a valid invoke request"},
		{name: "unknown tool", body: `{"tool":"nope"}`, code: 404, typ: TypeNotFound, msg: `tool "nope" is not available (available: add, chatty, env, fails, gateway.health`},
		{name: "denied", body: `{"tool":"secret-x"}`, code: 403, typ: TypeForbidden, msg: "denied by tools.deny"},
		{name: "no auth", token: "-", body: `{"tool":"gateway.status"}`, code: 401},
		{name: "wrong token", token: "wrong", body: `{"tool":"gateway.status"}`, code: 401},
		{name: "too large", body: `{"tool":"add","args":{"a":1,"b":2,"pad":"` + strings.Repeat("x", 5000) + `"}}`, code: 413, typ: TypeTooLarge, msg: "tools.maxBodyBytes"},
		{name: "non-zero exit", body: `{"tool":"fails"}`, code: 500, typ: TypeToolError, msg: "exit status 3"},
		{name: "output limit", body: `{"tool":"chatty"}`, code: 500, typ: TypeToolError, msg: "more than 1000 bytes"},
		{name: "command missing", body: `{"tool":"missing"}`, code: 500, typ: TypeToolError, msg: "check tools.exec.missing.command"},
		// A duplicate key would let the schema see one value and the tool the other.
		{name: "duplicate key in args", body: `{"tool":"add","args":{"a":"$(reboot)","a":1,"b":2}}`, code: 400, typ: TypeInvalidRequest, msg: `the key "a" twice in the object at "/args"`},
		{name: "duplicate key nested", body: `{"tool":"env","args":{"x":[{"k":1,"\u006b":2}]}}`, code: 400, typ: TypeInvalidRequest, msg: `the key "k" twice in the object at "/args/x/0"`},
		{name: "duplicate top-level key", body: `{"tool":"secret-x","tool":"add","args":{"a":1,"b":2}}`, code: 400, typ: TypeInvalidRequest, msg: `the key "tool" twice in the object at "/"`},
		{name: "builtin action refused", body: `{"tool":"gateway.status","action":"x"}`, code: 400, typ: TypeInvalidRequest, msg: "takes no action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken
			switch tt.token {
			case "-":
				tok = ""
			case "":
			default:
				tok = tt.token
			}
			a := invoke(t, ctx, base, tok, tt.body)
			if a.code != tt.code {
				t.Fatalf("status %d (%+v), want %d", a.code, a.Error, tt.code)
			}
			if tt.code == 401 {
				if a.Error.Type != "unauthorized" {
					t.Errorf("401 body: %+v", a.Error)
				}
				return
			}
			if a.OK != (tt.code == 200) {
				t.Errorf("ok = %v with status %d", a.OK, a.code)
			}
			if tt.typ != "" && (a.Error.Type != tt.typ || !strings.Contains(a.Error.Message, tt.msg)) {
				t.Errorf("error %+v, want type %s containing %q", a.Error, tt.typ, tt.msg)
			}
			if tt.result != "" && string(a.Result) != tt.result {
				t.Errorf("result %s, want %s", a.Result, tt.result)
			}
		})
	}
	if a := invoke(t, ctx, base, testToken, `{"tool":"fails"}`); !strings.Contains(a.Error.Message, ": boom") {
		t.Errorf("a failing tool's stderr is not in the message: %q", a.Error.Message)
	}

	// dryRun validates without running.
	os.Remove(marker)
	if a := invoke(t, ctx, base, testToken, `{"tool":"add","args":{"a":"smuggled","a":1,"b":2}}`); a.code != 400 {
		t.Errorf("duplicate-key smuggle: %d %s, want 400", a.code, a.Result)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a request with a duplicate key ran the tool")
	}
	a := invoke(t, ctx, base, testToken, `{"tool":"add","args":{"a":1,"b":2},"dryRun":true}`)
	if a.code != 200 || !strings.Contains(string(a.Result), `"dryRun":true`) {
		t.Errorf("dry run: %d %s", a.code, a.Result)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("dryRun ran the tool")
	}
	if a := invoke(t, ctx, base, testToken, `{"tool":"add","args":{"a":1},"dryRun":true}`); a.code != 400 {
		t.Errorf("dry run with bad args: %d, want 400", a.code)
	}

	// Built-ins.
	a = invoke(t, ctx, base, testToken, `{"tool":"gateway.status"}`)
	// The bound host is the core's server: its own status payload.
	var st struct {
		Version string `json:"version"`
		BootID  string `json:"bootId"`
	}
	if a.code != 200 || json.Unmarshal(a.Result, &st) != nil || st.Version != "test" || st.BootID == "" {
		t.Errorf("gateway.status: %d %s", a.code, a.Result)
	}
	a = invoke(t, ctx, base, testToken, `{"tool":"gateway.health"}`)
	if a.code != 200 || !strings.Contains(string(a.Result), `"ok":true`) {
		t.Errorf("gateway.health: %d %s", a.code, a.Result)
	}
	a = invoke(t, ctx, base, testToken, `{"tool":"gateway.tools"}`)
	if a.code != 200 || !strings.Contains(string(a.Result), `"name":"add","kind":"exec"`) || !strings.Contains(string(a.Result), `"required":["a","b"]`) {
		t.Errorf("gateway.tools: %d %s", a.code, a.Result)
	}
}

// procGone reports whether pid no longer runs (absent, or a zombie
// nobody reaped yet: in a container PID 1 may not reap).
func procGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// state is the field after the ")" that ends the command name
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testutil.WaitFor(t, 5*time.Second, 10*time.Millisecond, "the tool's pid file", func() (bool, string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, err.Error()
		}
		if !bytes.HasSuffix(b, []byte("\n")) {
			return false, fmt.Sprintf("no full line yet: %q", b)
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil, fmt.Sprintf("%q", b)
	})
	return pid
}

// TestTimeoutKillsEveryProcess: at the timeout the tool and every process
// it started end, setsid and orphaned children included (they used to
// outlive the process group kill).
func TestTimeoutKillsEveryProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("SKIPPING: needs Linux /proc to watch the tool's child processes (CI runs on Linux)")
	}
	dir := t.TempDir()
	cfg := toolsConfig(t, config.ToolsConfig{Exec: map[string]config.ExecToolConfig{
		"hang": {Command: []string{"/bin/sh", "-c", procstest.Script, "sh", "wait"}, TimeoutMs: 3000, Env: map[string]string{"DIR": dir}},
	}})
	base := serve(t, New(Options{Config: cfg, Log: testutil.Logger(t)}))
	start := time.Now()
	a := invoke(t, context.Background(), base, testToken, `{"tool":"hang"}`)
	if a.code != http.StatusRequestTimeout || a.Error.Type != TypeTimeout || !strings.Contains(a.Error.Message, "every process it started were killed") {
		t.Fatalf("hanging tool: %d %+v, want 408 timeout", a.code, a.Error)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the timeout of 3s took %s", took)
	}
	procstest.CheckGone(t, "the timed-out tool", procstest.PIDs(t, dir, time.Second), 5*time.Second)
}

// TestToolRunEndsEveryProcess: a tool that exits leaves nothing running.
func TestToolRunEndsEveryProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("SKIPPING: needs Linux /proc to watch the tool's child processes (CI runs on Linux)")
	}
	dir := t.TempDir()
	cfg := toolsConfig(t, config.ToolsConfig{Exec: map[string]config.ExecToolConfig{
		"spawner": {Command: []string{"/bin/sh", "-c", procstest.Script, "sh", "exit"}, Env: map[string]string{"DIR": dir},
			Limits: &config.ProcessLimits{OpenFiles: 64}},
	}})
	base := serve(t, New(Options{Config: cfg, Log: testutil.Logger(t)}))
	a := invoke(t, context.Background(), base, testToken, `{"tool":"spawner"}`)
	if a.code != 200 || string(a.Result) != `"started"` {
		t.Fatalf("spawner: %d %s %+v", a.code, a.Result, a.Error)
	}
	procstest.CheckGone(t, "the tool's run", procstest.PIDs(t, dir, time.Second), 0)
}

func TestConcurrencyLimitAndCancel(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "slow.pid")
	cfg := toolsConfig(t, config.ToolsConfig{MaxConcurrent: 1, Exec: map[string]config.ExecToolConfig{
		"slow": {Command: []string{"/bin/sh", "-c", `echo $$ > "$PIDFILE"; exec sleep 60`}, Env: map[string]string{"PIDFILE": pidFile}},
	}})
	s := New(Options{Config: cfg, Log: testutil.Logger(t)})
	base := serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+Path, strings.NewReader(`{"tool":"slow"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- answer{}
	}()
	pid := readPID(t, pidFile)
	a := invoke(t, context.Background(), base, testToken, `{"tool":"gateway.health"}`)
	if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || a.Error.Type != TypeRateLimited {
		t.Errorf("second invocation with maxConcurrent 1: %d %+v (Retry-After %q), want 429", a.code, a.Error, a.header.Get("Retry-After"))
	}
	// The caller hangs up: the tool is killed.
	cancel()
	<-done
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		testutil.WaitFor(t, 5*time.Second, 10*time.Millisecond, "the cancelled tool to die", func() (bool, string) {
			return procGone(pid), fmt.Sprintf("pid %d still there", pid)
		})
	}
	testutil.WaitFor(t, 5*time.Second, 10*time.Millisecond, "the slot to free up", func() (bool, string) {
		n := s.running.Load()
		return n == 0, fmt.Sprintf("%d running", n)
	})
	if a := invoke(t, context.Background(), base, testToken, `{"tool":"gateway.tools"}`); a.code != 200 {
		t.Errorf("after the slow tool ended: %d %+v", a.code, a.Error)
	}
}

func TestApplyAddsTool(t *testing.T) {
	s := New(Options{Config: toolsConfig(t, config.ToolsConfig{}), Log: testutil.Logger(t)})
	base := serve(t, s)
	if a := invoke(t, context.Background(), base, testToken, `{"tool":"late"}`); a.code != 404 {
		t.Fatalf("before reload: %d", a.code)
	}
	s.Apply(toolsConfig(t, config.ToolsConfig{Exec: map[string]config.ExecToolConfig{"late": {Command: []string{"/bin/echo", "hi"}}}}))
	if a := invoke(t, context.Background(), base, testToken, `{"tool":"late"}`); a.code != 200 || string(a.Result) != `"hi"` {
		t.Errorf("after reload: %d %s %+v", a.code, a.Result, a.Error)
	}
}

func TestDuplicateKey(t *testing.T) {
	for _, tt := range []struct{ doc, ptr, key string }{
		{`{"a":1,"b":{"a":2}}`, "", ""},
		{`{"a":1,"a":2}`, "", "a"},
		{`{"a":{"b":[1,{"c":1,"d":{"e":1,"e":2}}]}}`, "/a/b/1/d", "e"},
		{`[{"x":1},{"x":1,"y":{},"x":3}]`, "/1", "x"},
		{`{"a/b":{"~":1,"~":2}}`, "/a~1b", "~"},
		{`{"s":"a","t":"a"}`, "", ""}, // equal values are not keys
		{`{"a":`, "", ""},             // malformed: the decoder reports it
	} {
		ptr, key, ok := duplicateKey([]byte(tt.doc))
		if ok != (tt.key != "") || ptr != tt.ptr || key != tt.key {
			t.Errorf("duplicateKey(%s) = %q %q %v, want %q %q", tt.doc, ptr, key, ok, tt.ptr, tt.key)
		}
	}
}
