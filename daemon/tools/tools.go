// Package tools serves POST /tools/invoke on the gateway's port: a caller
// holding the gateway token (Authorization: Bearer) runs one tool and gets
// {ok:true, result} or {ok:false, error:{type, message}}.
//
// Tools are the built-ins (gateway.status, gateway.health, gateway.tools)
// and the operator's exec tools (tools.exec.NAME): a command run per
// invocation with the arguments, validated against the tool's JSON Schema,
// as JSON on stdin, a minimal environment, a timeout, a limit on its
// output and optional resource limits; every process it starts ends with
// it (see procs.CommandContext). The endpoint is
// always on; with no exec tools configured only the built-ins exist.
// It needs a Unix system (Linux, macOS); only on Linux do processes that
// leave the process group (setsid) end with the run, and do limits apply.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/platform/procs"
)

// Path is the endpoint's path.
const Path = "/tools/invoke"

// Error types of {ok:false, error:{type}} and their HTTP statuses.
const (
	TypeInvalidRequest = "invalid_request"   // 400
	TypeForbidden      = "forbidden"         // 403
	TypeNotFound       = "not_found"         // 404
	TypeTimeout        = "timeout"           // 408
	TypeTooLarge       = "payload_too_large" // 413
	TypeRateLimited    = "rate_limited"      // 429
	TypeToolError      = "tool_error"        // 500
)

// stderrLimit bounds the stderr kept for an error message.
const stderrLimit = 4 << 10

// Request is one invocation, as a tool sees it.
type Request struct {
	Tool           string          `json:"tool,omitempty"`
	Name           string          `json:"name,omitempty"` // an alias of tool
	Action         string          `json:"action,omitempty"`
	Args           json.RawMessage `json:"args,omitempty"`
	SessionKey     string          `json:"sessionKey,omitempty"`
	AgentID        string          `json:"agentId,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	DryRun         bool            `json:"dryRun,omitempty"`
}

// Builtin is a tool served by the gateway itself.
type Builtin struct {
	Description string
	// Run answers the tool; h is the current server generation.
	Run func(ctx context.Context, h gateway.Host, req *Request) (any, error)
}

// Options configure New.
type Options struct {
	Config   *config.Config // effective config, defaults filled in
	Log      *slog.Logger
	Builtins map[string]Builtin // gateway.* tools (see CoreBuiltins); gateway.tools is added
}

// Service is the tools feature: the POST /tools/invoke route.
type Service struct {
	log      *slog.Logger
	builtins map[string]Builtin
	table    atomic.Pointer[table]
	host     atomic.Pointer[hostRef]
	running  atomic.Int64
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

type hostRef struct{ h gateway.Host }

// table is the hot-reloadable part of the config.
type table struct {
	maxBody       int64
	maxConcurrent int
	deny          []string
	exec          map[string]*execTool
}

type execTool struct {
	name   string
	cfg    config.ExecToolConfig
	schema *jsonschema.Schema // nil: any JSON object
}

// New builds the tools feature.
func New(o Options) *Service {
	s := &Service{log: o.Log.With("feature", "tools"), builtins: maps.Clone(o.Builtins)}
	if s.builtins == nil {
		s.builtins = map[string]Builtin{}
	}
	s.builtins["gateway.tools"] = s.toolsBuiltin()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Apply(o.Config)
	return s
}

// Name implements gateway.Extension.
func (s *Service) Name() string { return "tools" }

// Methods implements gateway.Extension: tools are HTTP only.
func (s *Service) Methods() []gateway.Method { return nil }

// Events implements gateway.Extension.
func (s *Service) Events() []string { return nil }

// Bind implements gateway.Extension.
func (s *Service) Bind(h gateway.Host) { s.host.Store(&hostRef{h: h}) }

// Routes implements gateway.HTTPRoutes.
func (s *Service) Routes() []gateway.Route {
	return []gateway.Route{{Pattern: "POST " + Path, Handler: http.HandlerFunc(s.serveInvoke)}}
}

// Apply takes a reloaded config. Invocations in progress finish with the
// tool definition they started with.
func (s *Service) Apply(cfg *config.Config) {
	tc := cfg.Tools
	t := &table{maxBody: tc.MaxBodyBytes, maxConcurrent: tc.MaxConcurrent, deny: slices.Clone(tc.Deny), exec: map[string]*execTool{}}
	if t.maxBody <= 0 {
		t.maxBody = config.DefaultToolsMaxBodyBytes
	}
	if t.maxConcurrent <= 0 {
		t.maxConcurrent = config.DefaultToolsMaxConcurrent
	}
	for name, ec := range tc.Exec {
		et := &execTool{name: name, cfg: ec}
		if len(ec.ArgsSchema) > 0 {
			sch, err := config.CompileToolSchema(name, ec.ArgsSchema)
			if err != nil { // Validate compiled it already; be safe anyway
				s.log.Error("tool schema does not compile; the tool is unavailable", "tool", name, "err", err)
				continue
			}
			et.schema = sch
		}
		if et.cfg.TimeoutMs <= 0 {
			et.cfg.TimeoutMs = config.DefaultToolTimeoutMs
		}
		if et.cfg.MaxOutputBytes <= 0 {
			et.cfg.MaxOutputBytes = config.DefaultToolMaxOutputBytes
		}
		t.exec[name] = et
	}
	s.table.Store(t)
}

// Close stops running tools (their process groups are killed) and waits.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Names lists the available tool names, sorted.
func (s *Service) Names() []string {
	t := s.table.Load()
	out := slices.Collect(maps.Keys(s.builtins))
	out = append(out, slices.Collect(maps.Keys(t.exec))...)
	slices.Sort(out)
	return out
}

// toolError is a failed invocation with its HTTP status.
type toolError struct {
	status int
	typ    string
	msg    string
}

func (e *toolError) Error() string { return e.msg }

func fail(status int, typ, format string, a ...any) *toolError {
	return &toolError{status: status, typ: typ, msg: fmt.Sprintf(format, a...)}
}

func (s *Service) serveInvoke(w http.ResponseWriter, r *http.Request) {
	ref := s.host.Load()
	if ref == nil || !ref.h.AuthorizeHTTP(w, r) {
		if ref == nil {
			writeError(w, fail(http.StatusServiceUnavailable, "unavailable", "the gateway is starting; retry"))
		}
		return
	}
	t := s.table.Load()
	req, terr := readRequest(w, r, t.maxBody)
	if terr != nil {
		writeError(w, terr)
		return
	}
	if n := s.running.Add(1); n > int64(t.maxConcurrent) {
		s.running.Add(-1)
		w.Header().Set("Retry-After", "1")
		writeError(w, fail(http.StatusTooManyRequests, TypeRateLimited,
			"%d tool invocations are already running (tools.maxConcurrent); retry shortly", t.maxConcurrent))
		return
	}
	defer s.running.Add(-1)
	s.wg.Add(1)
	defer s.wg.Done()
	ctx, cancel := mergeCancel(r.Context(), s.ctx)
	defer cancel()
	start := time.Now()
	res, terr := s.invoke(ctx, ref.h, t, req)
	if terr != nil {
		s.log.Info("tool invocation failed", "tool", req.Tool, "status", terr.status, "err", terr.msg, "remote", r.RemoteAddr)
		writeError(w, terr)
		return
	}
	s.log.Debug("tool invoked", "tool", req.Tool, "durationMs", time.Since(start).Milliseconds(), "dryRun", req.DryRun)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": res})
}

// readRequest reads and checks the body: size, strict JSON, tool name.
func readRequest(w http.ResponseWriter, r *http.Request, limit int64) (*Request, *toolError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest, "reading the request body: %v", err)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest,
			"the body is not a valid invoke request: %v (send {\"tool\": NAME, \"args\": {...}})", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest, "the body has data after the JSON object (send one object)")
	}
	if ptr, key, dup := duplicateKey(body); dup {
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest,
			"the body has the key %q twice in the object at %q (readers disagree on which one counts; send each key once)", key, "/"+strings.TrimPrefix(ptr, "/"))
	}
	switch {
	case req.Tool == "" && req.Name == "":
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest, "tool is required (send {\"tool\": NAME, \"args\": {...}})")
	case req.Tool != "" && req.Name != "" && req.Tool != req.Name:
		return nil, fail(http.StatusBadRequest, TypeInvalidRequest, "tool %q and name %q differ (name is an alias of tool; send one)", req.Tool, req.Name)
	case req.Tool == "":
		req.Tool = req.Name
	}
	req.Name = ""
	args := bytes.TrimSpace(req.Args)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		args = []byte("{}")
	}
	req.Args = args
	return &req, nil
}

func tooLarge(limit int64) *toolError {
	return fail(http.StatusRequestEntityTooLarge, TypeTooLarge,
		"the request body is over %d bytes (send smaller args, or raise tools.maxBodyBytes)", limit)
}

// invoke runs one validated request.
func (s *Service) invoke(ctx context.Context, h gateway.Host, t *table, req *Request) (any, *toolError) {
	for _, pat := range t.deny {
		if m, _ := path.Match(pat, req.Tool); m {
			return nil, fail(http.StatusForbidden, TypeForbidden, "tool %q is denied by tools.deny (%q)", req.Tool, pat)
		}
	}
	if b, ok := s.builtins[req.Tool]; ok {
		if req.Action != "" {
			return nil, fail(http.StatusBadRequest, TypeInvalidRequest, "tool %q takes no action (leave action out)", req.Tool)
		}
		if req.DryRun {
			return map[string]any{"dryRun": true, "tool": req.Tool, "valid": true}, nil
		}
		res, err := b.Run(ctx, h, req)
		if err != nil {
			var te *toolError
			if errors.As(err, &te) {
				return nil, te
			}
			return nil, fail(http.StatusInternalServerError, TypeToolError, "tool %q failed: %v", req.Tool, err)
		}
		return res, nil
	}
	et, ok := t.exec[req.Tool]
	if !ok {
		names := s.Names()
		return nil, fail(http.StatusNotFound, TypeNotFound, "tool %q is not available (available: %s; operators add tools under tools.exec)",
			req.Tool, strings.Join(names, ", "))
	}
	if err := et.validate(req.Args); err != nil {
		return nil, err
	}
	if req.DryRun {
		return map[string]any{"dryRun": true, "tool": req.Tool, "valid": true, "command": et.cfg.Command}, nil
	}
	return et.run(ctx, req)
}

// validate checks args against the tool's schema (or that they are an
// object when it has none).
func (et *execTool) validate(args json.RawMessage) *toolError {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return fail(http.StatusBadRequest, TypeInvalidRequest, "args of tool %q are not valid JSON: %v", et.name, err)
	}
	if et.schema == nil {
		if _, ok := inst.(map[string]any); !ok {
			return fail(http.StatusBadRequest, TypeInvalidRequest, "args of tool %q must be a JSON object", et.name)
		}
		return nil
	}
	if err := et.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		msg := err.Error()
		if errors.As(err, &ve) {
			msg = describeValidation(ve)
		}
		return fail(http.StatusBadRequest, TypeInvalidRequest, "invalid args for tool %q: %s (see tools.exec.%s.argsSchema)", et.name, msg, et.name)
	}
	return nil
}

// describeValidation flattens a schema validation error into one line:
// "at /path: reason; at /other: reason".
func describeValidation(ve *jsonschema.ValidationError) string {
	var parts []string
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if u.Error != nil && len(u.Errors) == 0 {
			parts = append(parts, "at /"+strings.TrimPrefix(u.InstanceLocation, "/")+": "+u.Error.String())
		}
		for _, e := range u.Errors {
			walk(e)
		}
	}
	walk(*ve.BasicOutput())
	if len(parts) == 0 {
		return strings.Join(strings.Fields(ve.Error()), " ")
	}
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more", len(parts)-5))
	}
	return strings.Join(parts, "; ")
}

var (
	errTimedOut      = errors.New("timed out")
	errOutputTooLong = errors.New("output too long")
)

// run executes the tool's command in its own process group.
func (et *execTool) run(parent context.Context, req *Request) (any, *toolError) {
	timeout := time.Duration(et.cfg.TimeoutMs) * time.Millisecond
	base, cancelBase := context.WithCancelCause(parent)
	defer cancelBase(nil)
	ctx, cancel := context.WithTimeoutCause(base, timeout, errTimedOut)
	defer cancel()
	// Every process the tool starts ends with it (setsid and background
	// children too), within its configured limits.
	cmd := procs.CommandContext(ctx, et.cfg.Limits.Procs(), et.cfg.Command[0], et.cfg.Command[1:]...)
	cmd.WaitDelay = 2 * time.Second
	cmd.Dir = et.cfg.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = et.env(req)
	cmd.Stdin = bytes.NewReader(req.Args)
	stdout := &capBuffer{limit: et.cfg.MaxOutputBytes, over: func() { cancelBase(errOutputTooLong) }}
	stderr := &capBuffer{limit: stderrLimit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err := cmd.Run()
	_ = procs.Stop(cmd) // what is left of the run, where the OS has no supervisor
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errTimedOut):
		return nil, fail(http.StatusRequestTimeout, TypeTimeout,
			"tool %q timed out after %s; it and every process it started were killed (raise tools.exec.%s.timeoutMs if it needs longer)", et.name, timeout, et.name)
	case errors.Is(cause, errOutputTooLong):
		return nil, fail(http.StatusInternalServerError, TypeToolError,
			"tool %q wrote more than %d bytes to stdout; it was killed (raise tools.exec.%s.maxOutputBytes or make it print less)", et.name, et.cfg.MaxOutputBytes, et.name)
	case cause != nil:
		return nil, fail(http.StatusServiceUnavailable, "unavailable", "tool %q was stopped: the request ended or the gateway is stopping", et.name)
	}
	if err != nil {
		var ee *exec.ExitError
		tail := strings.TrimSpace(stderr.String())
		if tail != "" {
			tail = ": " + strings.Join(strings.Fields(tail), " ")
		}
		if errors.As(err, &ee) {
			return nil, fail(http.StatusInternalServerError, TypeToolError, "tool %q failed (%v after %s)%s", et.name, ee.ProcessState,
				time.Since(start).Round(time.Millisecond), tail)
		}
		return nil, fail(http.StatusInternalServerError, TypeToolError, "tool %q could not run: %v (check tools.exec.%s.command)", et.name, err, et.name)
	}
	out := bytes.TrimSpace(stdout.Bytes())
	if len(out) > 0 && json.Valid(out) {
		return json.RawMessage(out), nil
	}
	return string(out), nil
}

// env is the tool's environment: a minimal base (no gateway secrets), the
// configured env, and the request's context.
func (et *execTool) env(req *Request) []string {
	env := []string{"PATH=" + envOr("PATH", "/usr/local/bin:/usr/bin:/bin")}
	for _, k := range []string{"HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(et.cfg.Env)) {
		env = append(env, k+"="+et.cfg.Env[k])
	}
	return append(env,
		"GATEWAY_TOOL_NAME="+et.name,
		"GATEWAY_TOOL_ACTION="+req.Action,
		"GATEWAY_SESSION_KEY="+req.SessionKey,
		"GATEWAY_AGENT_ID="+req.AgentID,
		"GATEWAY_IDEMPOTENCY_KEY="+req.IdempotencyKey,
	)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// capBuffer keeps at most limit bytes; past it, over is called once and
// the rest is dropped (the writer is not failed, so the child sees no
// EPIPE before it is killed).
type capBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	over  func()
	done  bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - b.buf.Len()
	if len(p) <= room {
		b.buf.Write(p)
		return len(p), nil
	}
	b.buf.Write(p[:max(room, 0)])
	if !b.done && b.over != nil {
		b.done = true
		b.over()
	}
	return len(p), nil
}

func (b *capBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
}

func (b *capBuffer) String() string { return string(b.Bytes()) }

// mergeCancel returns a context that ends when either a or b ends.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

func writeError(w http.ResponseWriter, e *toolError) {
	writeJSON(w, e.status, map[string]any{"ok": false, "error": map[string]string{"type": e.typ, "message": e.msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
