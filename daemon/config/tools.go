package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Defaults and bounds of the "tools" section.
const (
	DefaultToolsMaxBodyBytes  = 1 << 20
	DefaultToolsMaxConcurrent = 8
	DefaultToolTimeoutMs      = 30000
	DefaultToolMaxOutputBytes = 1 << 20

	maxToolOutputBytes = 64 << 20
	reservedToolPrefix = "gateway."
)

// ToolsConfig is the "tools" section: what POST /tools/invoke may run
// besides the built-in gateway.* tools.
type ToolsConfig struct {
	MaxBodyBytes  int64    `json:"maxBodyBytes,omitempty"`  // request body limit, default 1 MiB (larger: 413)
	MaxConcurrent int      `json:"maxConcurrent,omitempty"` // invocations running at once, default 8 (more: 429)
	Deny          []string `json:"deny,omitempty"`          // tool names or globs refused with 403, built-ins included
	// Exec are operator-configured command tools by name.
	Exec map[string]ExecToolConfig `json:"exec,omitempty"`
}

// ExecToolConfig is "tools.exec.NAME": a command run per invocation with the
// arguments as JSON on stdin. Its stdout is the result (JSON when it parses,
// else text).
type ExecToolConfig struct {
	Command     []string `json:"command"`               // argv; the first element is a path or a name on PATH
	Description string   `json:"description,omitempty"` // for tool listings
	// ArgsSchema is the JSON Schema the args must satisfy (default: any
	// JSON object).
	ArgsSchema     json.RawMessage   `json:"argsSchema,omitempty"`
	TimeoutMs      int               `json:"timeoutMs,omitempty"`           // default 30000; the process group is killed at the limit (408)
	MaxOutputBytes int               `json:"maxOutputBytes,omitempty"`      // stdout limit, default 1 MiB; over it the process group is killed (500)
	Env            map[string]string `json:"env,omitempty" redact:"secret"` // extra environment (values redacted in config.get)
	Dir            string            `json:"dir,omitempty"`                 // working directory, absolute; default "/"

	Limits *ProcessLimits `json:"limits,omitempty"` // resource limits of the command and its children
}

func (x *ToolsConfig) withDefaults() {
	setDefault(&x.MaxBodyBytes, DefaultToolsMaxBodyBytes)
	setDefault(&x.MaxConcurrent, DefaultToolsMaxConcurrent)
	setEach(x.Exec, (*ExecToolConfig).withDefaults)
}

func (t *ExecToolConfig) withDefaults() {
	setDefault(&t.TimeoutMs, DefaultToolTimeoutMs)
	setDefault(&t.MaxOutputBytes, DefaultToolMaxOutputBytes)
}

func (x *ToolsConfig) unshare() {
	x.Deny = slices.Clone(x.Deny)
	x.Exec = cloneMap(x.Exec, (*ExecToolConfig).unshare)
}

func (t *ExecToolConfig) unshare() {
	t.Command = slices.Clone(t.Command)
	t.ArgsSchema = slices.Clone(t.ArgsSchema)
	t.Env = maps.Clone(t.Env)
	t.Limits = clonePtr(t.Limits)
}

func (x *ToolsConfig) validate() *Error {
	if err := bodyLimit("tools.maxBodyBytes", x.MaxBodyBytes, DefaultToolsMaxBodyBytes); err != nil {
		return err
	}
	if err := intRange("tools.maxConcurrent", x.MaxConcurrent, 0, 10000); err != nil {
		return err
	}
	for i, d := range x.Deny {
		if _, err := path.Match(d, ""); err != nil || d == "" {
			return &Error{Key: fmt.Sprintf("tools.deny[%d]", i), Msg: fmt.Sprintf("%q is not a tool name or glob (like \"gateway.status\" or \"deploy-*\")", d)}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(x.Exec)) {
		t := x.Exec[name]
		key := "tools.exec." + name
		if err := checkName(key, name, "tool"); err != nil {
			return err
		}
		if strings.HasPrefix(name, reservedToolPrefix) {
			return &Error{Key: key, Msg: fmt.Sprintf("names starting with %q are the gateway's built-in tools (pick another name)", reservedToolPrefix)}
		}
		if len(t.Command) == 0 || strings.TrimSpace(t.Command[0]) == "" {
			return &Error{Key: key + ".command", Msg: `is empty (set the argv to run, like ["/usr/local/bin/deploy", "--dry"])`}
		}
		if strings.Contains(t.Command[0], "/") && !strings.HasPrefix(t.Command[0], "/") {
			return &Error{Key: key + ".command[0]", Msg: fmt.Sprintf("%q is a relative path (use an absolute path or a bare name found on PATH)", t.Command[0])}
		}
		if len(t.ArgsSchema) > 0 {
			if _, err := CompileToolSchema(name, t.ArgsSchema); err != nil {
				return &Error{Key: key + ".argsSchema", Msg: err.Error()}
			}
		}
		if err := intRange(key+".timeoutMs", t.TimeoutMs, 0, maxIntervalMs); err != nil {
			return err
		}
		if err := intRange(key+".maxOutputBytes", t.MaxOutputBytes, 0, maxToolOutputBytes); err != nil {
			return err
		}
		if t.Dir != "" && !strings.HasPrefix(t.Dir, "/") {
			return &Error{Key: key + ".dir", Msg: fmt.Sprintf("%q is not an absolute path", t.Dir)}
		}
		if err := t.Limits.validate(key + ".limits"); err != nil {
			return err
		}
		for k := range t.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return &Error{Key: key + ".env", Msg: fmt.Sprintf("%q is not an environment variable name", k)}
			}
		}
	}
	return nil
}

// CompileToolSchema compiles an exec tool's argsSchema (JSON Schema, draft
// 2020-12 unless $schema says otherwise). Remote $refs are not fetched.
func CompileToolSchema(tool string, schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(schema)))
	if err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noRemoteLoader{})
	loc := "mem:///tools/" + tool + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("is not a usable JSON Schema: %w", err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %w (fix the schema; see https://json-schema.org)", err)
	}
	return s, nil
}

type noRemoteLoader struct{}

func (noRemoteLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schema %s is not loaded: only schemas inside argsSchema are allowed (inline it under $defs)", u)
}
