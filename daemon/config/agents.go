package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// AgentsConfig is the "agents" section: the agents runs can name, their
// backends, and the limits on runs and session transcripts. With no
// section at all there is one agent, "main", with the built-in echo
// backend, so a first run works with no setup.
type AgentsConfig struct {
	Default            string                 `json:"default,omitempty"`            // agent id used when a run names none; default "main"
	MaxConcurrent      int                    `json:"maxConcurrent,omitempty"`      // runs in progress at once; default 32
	TimeoutMs          int                    `json:"timeoutMs,omitempty"`          // run timeout unless the run or agent sets one; default 600000
	MaxSessionMessages int                    `json:"maxSessionMessages,omitempty"` // messages kept per session transcript; default 1000
	MaxSessionBytes    int                    `json:"maxSessionBytes,omitempty"`    // bytes of message text per session transcript; default 4 MiB
	MaxMessageBytes    int                    `json:"maxMessageBytes,omitempty"`    // largest user message, and the cap on one answer; default 256 KiB
	HistoryMessages    int                    `json:"historyMessages,omitempty"`    // transcript messages sent to an openai backend as context; default 20
	List               map[string]AgentConfig `json:"list,omitempty"`               // agents by id
}

// AgentConfig is one agent under "agents.list".
type AgentConfig struct {
	Backend     string               `json:"backend,omitempty"`     // echo (default) | openai | exec
	Description string               `json:"description,omitempty"` // shown by /v1/models
	TimeoutMs   int                  `json:"timeoutMs,omitempty"`   // this agent's run timeout; default agents.timeoutMs
	Echo        *EchoBackendConfig   `json:"echo,omitempty"`        // settings of the echo backend
	OpenAI      *OpenAIBackendConfig `json:"openai,omitempty"`      // settings of the openai backend (required for it)
	Exec        *ExecBackendConfig   `json:"exec,omitempty"`        // settings of the exec backend (required for it)
}

// EchoBackendConfig is "agents.list.<id>.echo": the built-in backend that
// answers with the message it was given, in a few deltas.
type EchoBackendConfig struct {
	DelayMs int `json:"delayMs,omitempty"` // pause before each delta after the first; default 0
}

// OpenAIBackendConfig is "agents.list.<id>.openai": any OpenAI-compatible
// chat-completions endpoint (llama.cpp server, Ollama, vLLM, a cloud
// provider). The API key is never in the config: it comes from an
// environment variable or a file, read at each run.
type OpenAIBackendConfig struct {
	BaseURL        string `json:"baseUrl" redact:"url"`              // e.g. http://127.0.0.1:11434/v1 (the path before /chat/completions)
	Model          string `json:"model"`                             // upstream model name
	APIKeyEnv      string `json:"apiKeyEnv,omitempty" redact:"ref"`  // environment variable holding the API key
	APIKeyFile     string `json:"apiKeyFile,omitempty" redact:"ref"` // file holding the API key (white space trimmed)
	Stream         *bool  `json:"stream,omitempty"`                  // stream with SSE; default true
	StallTimeoutMs int    `json:"stallTimeoutMs,omitempty"`          // longest silence from the upstream; default 60000
	SystemPrompt   string `json:"systemPrompt,omitempty"`            // sent first as a system message
}

// ExecBackendConfig is "agents.list.<id>.exec": a command run per message,
// the message on its standard input, its standard output streamed as the
// answer.
type ExecBackendConfig struct {
	Command string   `json:"command"`                       // absolute path, or a name looked up on PATH
	Args    []string `json:"args,omitempty"`                // arguments
	Dir     string   `json:"dir,omitempty"`                 // working directory; default the gateway's own
	Env     []string `json:"env,omitempty" redact:"secret"` // extra KEY=VALUE environment (values are redacted in config.get)

	Limits *ProcessLimits `json:"limits,omitempty"` // resource limits of the command and its children
}

// Agent backends and defaults.
const (
	BackendEcho   = "echo"
	BackendOpenAI = "openai"
	BackendExec   = "exec"

	DefaultAgentID            = "main"
	DefaultMaxConcurrentRuns  = 32
	DefaultAgentTimeoutMs     = 600000
	DefaultMaxSessionMessages = 1000
	DefaultMaxSessionBytes    = 4 << 20
	DefaultMaxMessageBytes    = 256 << 10
	DefaultHistoryMessages    = 20
	DefaultStallTimeoutMs     = 60000

	maxAgentTimeoutMs = 24 * 60 * 60 * 1000
)

var (
	agentBackends = []string{BackendEcho, BackendOpenAI, BackendExec}
	agentIDRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	envNameRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Agent returns the effective settings of agent id (the implicit "main"
// echo agent when the list does not name it) and whether it exists.
func (x *AgentsConfig) Agent(id string) (AgentConfig, bool) {
	if a, ok := x.List[id]; ok {
		if a.Backend == "" {
			a.Backend = BackendEcho
		}
		return a, true
	}
	if id == DefaultAgentID {
		return AgentConfig{Backend: BackendEcho}, true
	}
	return AgentConfig{}, false
}

// AgentIDs lists the agents that exist, sorted ("main" is always there).
func (x *AgentsConfig) AgentIDs() []string {
	ids := slices.Collect(maps.Keys(x.List))
	if _, ok := x.List[DefaultAgentID]; !ok {
		ids = append(ids, DefaultAgentID)
	}
	slices.Sort(ids)
	return ids
}

// StreamEnabled reports openai.stream, true when unset.
func (o *OpenAIBackendConfig) StreamEnabled() bool { return o == nil || o.Stream == nil || *o.Stream }

func (x *AgentsConfig) withDefaults() {
	setDefault(&x.Default, DefaultAgentID)
	setDefault(&x.MaxConcurrent, DefaultMaxConcurrentRuns)
	setDefault(&x.TimeoutMs, DefaultAgentTimeoutMs)
	setDefault(&x.MaxSessionMessages, DefaultMaxSessionMessages)
	setDefault(&x.MaxSessionBytes, DefaultMaxSessionBytes)
	setDefault(&x.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&x.HistoryMessages, DefaultHistoryMessages)
	setEach(x.List, (*AgentConfig).withDefaults)
}

func (a *AgentConfig) withDefaults() {
	setDefault(&a.Backend, BackendEcho)
	if a.OpenAI != nil {
		setDefault(&a.OpenAI.StallTimeoutMs, DefaultStallTimeoutMs)
	}
}

func (x *AgentsConfig) unshare() {
	x.List = cloneMap(x.List, (*AgentConfig).unshare)
}

func (a *AgentConfig) unshare() {
	a.Echo = clonePtr(a.Echo)
	if a.OpenAI != nil {
		o := *a.OpenAI
		o.Stream = clonePtr(o.Stream)
		a.OpenAI = &o
	}
	if a.Exec != nil {
		e := *a.Exec
		e.Args = slices.Clone(e.Args)
		e.Env = slices.Clone(e.Env)
		e.Limits = clonePtr(e.Limits)
		a.Exec = &e
	}
}

func (x *AgentsConfig) validate() *Error {
	err := firstError(
		func() *Error { return intRange("agents.maxConcurrent", x.MaxConcurrent, 0, 100000) },
		func() *Error { return intRange("agents.timeoutMs", x.TimeoutMs, 0, maxAgentTimeoutMs) },
		func() *Error { return intRange("agents.maxSessionMessages", x.MaxSessionMessages, 0, 1_000_000) },
		func() *Error { return intRange("agents.maxSessionBytes", x.MaxSessionBytes, 0, 1<<30) },
		func() *Error { return intRange("agents.maxMessageBytes", x.MaxMessageBytes, 0, 16<<20) },
		func() *Error { return intRange("agents.historyMessages", x.HistoryMessages, 0, 10000) },
		func() *Error {
			if x.Default == "" || x.Default == DefaultAgentID {
				return nil
			}
			if _, ok := x.List[x.Default]; !ok {
				return &Error{Key: "agents.default", Msg: fmt.Sprintf("%q is not an agent in agents.list (add it there, or leave agents.default out for %q)", x.Default, DefaultAgentID)}
			}
			return nil
		},
	)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(x.List)) {
		if err := validateAgent("agents.list."+id, id, x.List[id]); err != nil {
			return err
		}
	}
	return nil
}

func validateAgent(key, id string, a AgentConfig) *Error {
	if !agentIDRe.MatchString(id) {
		return &Error{Key: key, Msg: fmt.Sprintf("agent id %q must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit", id)}
	}
	if err := oneOf(key+".backend", a.Backend, agentBackends); err != nil {
		return err
	}
	if err := intRange(key+".timeoutMs", a.TimeoutMs, 0, maxAgentTimeoutMs); err != nil {
		return err
	}
	backend := a.Backend
	if backend == "" {
		backend = BackendEcho
	}
	if a.Echo != nil {
		if err := intRange(key+".echo.delayMs", a.Echo.DelayMs, 0, 60000); err != nil {
			return err
		}
	}
	if a.OpenAI != nil {
		if err := validateOpenAI(key+".openai", a.OpenAI); err != nil {
			return err
		}
	} else if backend == BackendOpenAI {
		return &Error{Key: key + ".openai", Msg: `is required for backend "openai" (set at least baseUrl and model)`}
	}
	if a.Exec != nil {
		if err := validateExec(key+".exec", a.Exec); err != nil {
			return err
		}
	} else if backend == BackendExec {
		return &Error{Key: key + ".exec", Msg: `is required for backend "exec" (set at least command)`}
	}
	return nil
}

func validateOpenAI(key string, o *OpenAIBackendConfig) *Error {
	u, err := url.Parse(o.BaseURL)
	if o.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return &Error{Key: key + ".baseUrl", Msg: fmt.Sprintf("%q is not an http(s) URL without query or credentials, like http://127.0.0.1:8080/v1 (the part before /chat/completions)", RedactURL(o.BaseURL))}
	}
	if strings.TrimSpace(o.Model) == "" {
		return &Error{Key: key + ".model", Msg: "is required (the upstream's model name, e.g. llama3.1)"}
	}
	if o.APIKeyEnv != "" && !envNameRe.MatchString(o.APIKeyEnv) {
		return &Error{Key: key + ".apiKeyEnv", Msg: fmt.Sprintf("%q is not an environment variable name (letters, digits, '_')", o.APIKeyEnv)}
	}
	if o.APIKeyEnv != "" && o.APIKeyFile != "" {
		return &Error{Key: key + ".apiKeyFile", Msg: "set either apiKeyEnv or apiKeyFile, not both"}
	}
	if o.APIKeyFile != "" && !strings.HasPrefix(o.APIKeyFile, "/") {
		return &Error{Key: key + ".apiKeyFile", Msg: fmt.Sprintf("%q must be an absolute path", o.APIKeyFile)}
	}
	if o.StallTimeoutMs != 0 && (o.StallTimeoutMs < 100 || o.StallTimeoutMs > maxAgentTimeoutMs) {
		return &Error{Key: key + ".stallTimeoutMs", Msg: fmt.Sprintf("%d is out of range (100 to %d milliseconds; leave it out for %d)", o.StallTimeoutMs, maxAgentTimeoutMs, DefaultStallTimeoutMs)}
	}
	return nil
}

func validateExec(key string, e *ExecBackendConfig) *Error {
	if strings.TrimSpace(e.Command) == "" {
		return &Error{Key: key + ".command", Msg: "is required (an absolute path, or a command name on the gateway's PATH)"}
	}
	if strings.ContainsRune(e.Command, '/') && !strings.HasPrefix(e.Command, "/") {
		return &Error{Key: key + ".command", Msg: fmt.Sprintf("%q is a relative path (use an absolute path, or a bare name looked up on PATH)", e.Command)}
	}
	if e.Dir != "" && !strings.HasPrefix(e.Dir, "/") {
		return &Error{Key: key + ".dir", Msg: fmt.Sprintf("%q must be an absolute path", e.Dir)}
	}
	for i, kv := range e.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envNameRe.MatchString(k) {
			return &Error{Key: fmt.Sprintf("%s.env[%d]", key, i), Msg: "is not KEY=VALUE with KEY letters, digits and '_' (the value is not shown: it may be a secret)"}
		}
	}
	return e.Limits.validate(key + ".limits")
}
