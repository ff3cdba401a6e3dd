package config

// This file's sections are owned by the channels, tools and hooks (issue 5) work; the lead only wired
// them into Config, WithDefaults, Redacted, clone and Validate.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Defaults of the channels, tools and hooks sections.
const (
	DefaultDedupeTTLMs          = 24 * 60 * 60 * 1000
	DefaultWebhookTimeoutMs     = 10000
	DefaultRetryMaxAttempts     = 5
	DefaultRetryInitialMs       = 500
	DefaultRetryMaxBackoffMs    = 10000
	DefaultRetryMaxElapsedMs    = 60000
	DefaultToolsMaxBodyBytes    = 1 << 20
	DefaultToolsMaxConcurrent   = 8
	DefaultToolTimeoutMs        = 30000
	DefaultToolMaxOutputBytes   = 1 << 20
	DefaultHooksMaxBodyBytes    = 256 << 10
	DefaultHooksPerMinute       = 60
	DefaultHooksWaitTimeoutMs   = 120000
	DefaultHooksHeartbeatMs     = 30000
	MinHooksTokenLength         = 16
	maxRetryAttempts            = 100
	maxHTTPBodyBytes            = 64 << 20
	maxToolOutputBytes          = 64 << 20
	maxHooksRequestsPerMinute   = 1_000_000
	maxChannelOrToolNameLength  = 64
	reservedToolPrefix          = "gateway."
	signatureHeaderPrefixDenied = "x-gateway-"
)

// nameRE is what channel and tool names look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ChannelsConfig is the "channels" section: where `send` delivers messages.
// Each channel is keyed by a name unique across kinds; today the kind is
// webhook, and messaging providers add their own maps next to Webhooks.
type ChannelsConfig struct {
	// Default is the channel for targets that no channel's targets match;
	// "" means such targets are NOT_LINKED.
	Default string `json:"default,omitempty"`
	// DedupeTTLMs is how long an idempotency key is remembered after a
	// delivery (default 24 h): a send with the same key inside it is not
	// delivered again.
	DedupeTTLMs int `json:"dedupeTtlMs,omitempty"`
	// Webhooks are webhook channels by name.
	Webhooks map[string]WebhookChannelConfig `json:"webhooks,omitempty"`
	// Telegram are Telegram bots (Bot API long polling) by name.
	Telegram map[string]TelegramChannelConfig `json:"telegram,omitempty"`
	// Matrix are Matrix accounts (client-server API /sync) by name.
	Matrix map[string]MatrixChannelConfig `json:"matrix,omitempty"`
}

// Chat channel policies.
const (
	DMPolicyPairing   = "pairing"   // unknown senders get a code; an operator approves them
	DMPolicyAllowlist = "allowlist" // only senders in allowFrom (and approved ones)
	DMPolicyOpen      = "open"      // anyone
	DMPolicyDisabled  = "disabled"  // direct messages are ignored

	GroupPolicyAllowlist = "allowlist" // only rooms listed under rooms
	GroupPolicyOpen      = "open"      // every room the account is in
	GroupPolicyDisabled  = "disabled"  // group rooms are ignored

	MatrixAutoJoinAlways    = "always"    // accept every invite
	MatrixAutoJoinAllowlist = "allowlist" // invites from allowed senders, or to rooms listed under rooms
	MatrixAutoJoinOff       = "off"       // never join by invite

	DefaultTelegramAPIBaseURL   = "https://api.telegram.org"
	DefaultTelegramPollTimeoutS = 25
	DefaultReconnectInitialMs   = 1000
	DefaultReconnectMaxMs       = 30000
)

// ChatConfig is what every chat-network channel (Telegram, Matrix) has:
// which agent answers, who may talk to it, where replies of `send` go, and
// how it reconnects.
type ChatConfig struct {
	// AgentID answers the channel's messages (default: agents.default).
	AgentID string `json:"agentId,omitempty"`
	// DMPolicy says who may talk to the agent in a direct chat: pairing
	// (default), allowlist, open or disabled.
	DMPolicy string `json:"dmPolicy,omitempty"`
	// AllowFrom are sender ids always allowed (Telegram user ids, Matrix
	// user ids like @alice:example.org).
	AllowFrom []string `json:"allowFrom,omitempty"`
	// GroupPolicy says which group rooms are answered: allowlist (default:
	// the rooms listed under rooms), open or disabled.
	GroupPolicy string `json:"groupPolicy,omitempty"`
	// RequireMention: in group rooms only messages that mention the
	// account are answered (default true).
	RequireMention *bool `json:"requireMention,omitempty"`
	// Rooms are per-room (per-chat) settings by room or chat id.
	Rooms    map[string]ChatRoomConfig `json:"rooms,omitempty"`
	Targets  []string                  `json:"targets,omitempty"`  // target patterns routed here by send
	Disabled bool                      `json:"disabled,omitempty"` // configured but not connecting
	// Reconnect is the backoff between connection attempts.
	Reconnect ReconnectConfig `json:"reconnect"`
}

// ChatRoomConfig is "channels.KIND.NAME.rooms.ID".
type ChatRoomConfig struct {
	AgentID        string `json:"agentId,omitempty"`        // the agent for this room (default: the channel's)
	RequireMention *bool  `json:"requireMention,omitempty"` // default: the channel's
	Disabled       bool   `json:"disabled,omitempty"`       // ignore this room
}

// ReconnectConfig is a chat channel's reconnect backoff: exponential with
// jitter from InitialMs up to MaxMs, for as long as it takes.
type ReconnectConfig struct {
	InitialMs int `json:"initialMs,omitempty"` // default 1000
	MaxMs     int `json:"maxMs,omitempty"`     // default 30000: the bound on the wait between attempts
}

// TelegramChannelConfig is "channels.telegram.NAME": a Telegram bot.
type TelegramChannelConfig struct {
	ChatConfig
	// The bot token from @BotFather, from the environment or a file only.
	TokenEnv  string `json:"tokenEnv,omitempty" redact:"ref"`
	TokenFile string `json:"tokenFile,omitempty" redact:"ref"`
	// APIBaseURL is the Bot API server (default https://api.telegram.org;
	// a self-hosted Bot API server or an emulator).
	APIBaseURL string `json:"apiBaseUrl,omitempty" redact:"url"`
	// PollTimeoutS is getUpdates' long-polling timeout (default 25 s).
	PollTimeoutS int `json:"pollTimeoutS,omitempty"`
}

// MatrixChannelConfig is "channels.matrix.NAME": a Matrix account.
type MatrixChannelConfig struct {
	ChatConfig
	Homeserver string `json:"homeserver" redact:"url"` // client-server API base URL, like https://matrix.example.org
	UserID     string `json:"userId"`                  // the account, like @gw:example.org
	// The access token, from the environment or a file; or a password
	// (environment or file) used once to log in, after which the token is
	// kept in the state directory (mode 0600).
	AccessTokenEnv  string `json:"accessTokenEnv,omitempty" redact:"ref"`
	AccessTokenFile string `json:"accessTokenFile,omitempty" redact:"ref"`
	PasswordEnv     string `json:"passwordEnv,omitempty" redact:"ref"`
	PasswordFile    string `json:"passwordFile,omitempty" redact:"ref"`
	// AutoJoin is what happens to invites: always (default), allowlist or
	// off.
	AutoJoin string `json:"autoJoin,omitempty"`
}

// WebhookChannelConfig is "channels.webhooks.NAME": POST signed JSON to a
// URL.
type WebhookChannelConfig struct {
	URL string `json:"url" redact:"url"` // http:// or https:// receiver
	// Secret signs each body (HMAC-SHA256, header X-Gateway-Signature).
	// Exactly one of Secret, SecretEnv and SecretFile is set.
	Secret     string            `json:"secret,omitempty" redact:"secret"`
	SecretEnv  string            `json:"secretEnv,omitempty" redact:"ref"`  // environment variable holding the secret
	SecretFile string            `json:"secretFile,omitempty" redact:"ref"` // file holding the secret (white space trimmed)
	Targets    []string          `json:"targets,omitempty"`                 // target patterns (path.Match globs: "ops", "team-*") routed here
	Headers    map[string]string `json:"headers,omitempty" redact:"secret"` // extra request headers (values redacted in config.get)
	Disabled   bool              `json:"disabled,omitempty"`                // configured but not delivering
	TimeoutMs  int               `json:"timeoutMs,omitempty"`               // per attempt, default 10000
	Retry      RetryConfig       `json:"retry"`                             // retries on network errors, 5xx and 429
}

// RetryConfig is a webhook's retry policy: exponential backoff with jitter,
// bounded in attempts and in total time.
type RetryConfig struct {
	MaxAttempts      int `json:"maxAttempts,omitempty"`      // default 5 (1 = no retry)
	InitialBackoffMs int `json:"initialBackoffMs,omitempty"` // default 500
	MaxBackoffMs     int `json:"maxBackoffMs,omitempty"`     // default 10000
	MaxElapsedMs     int `json:"maxElapsedMs,omitempty"`     // default 60000, all attempts and waits together
}

func (x *ChannelsConfig) withDefaults() {
	setDefault(&x.DedupeTTLMs, DefaultDedupeTTLMs)
	for name, w := range x.Webhooks {
		setDefault(&w.TimeoutMs, DefaultWebhookTimeoutMs)
		setDefault(&w.Retry.MaxAttempts, DefaultRetryMaxAttempts)
		setDefault(&w.Retry.InitialBackoffMs, DefaultRetryInitialMs)
		setDefault(&w.Retry.MaxBackoffMs, DefaultRetryMaxBackoffMs)
		setDefault(&w.Retry.MaxElapsedMs, DefaultRetryMaxElapsedMs)
		x.Webhooks[name] = w
	}
	for name, t := range x.Telegram {
		t.ChatConfig.withDefaults()
		setDefault(&t.APIBaseURL, DefaultTelegramAPIBaseURL)
		setDefault(&t.PollTimeoutS, DefaultTelegramPollTimeoutS)
		x.Telegram[name] = t
	}
	for name, m := range x.Matrix {
		m.ChatConfig.withDefaults()
		setDefault(&m.AutoJoin, MatrixAutoJoinAlways)
		x.Matrix[name] = m
	}
}

func (c *ChatConfig) withDefaults() {
	setDefault(&c.DMPolicy, DMPolicyPairing)
	setDefault(&c.GroupPolicy, GroupPolicyAllowlist)
	setDefault(&c.Reconnect.InitialMs, DefaultReconnectInitialMs)
	setDefault(&c.Reconnect.MaxMs, DefaultReconnectMaxMs)
}

// MentionRequired reports whether a group message in room must mention the
// account.
func (c *ChatConfig) MentionRequired(room string) bool {
	if r, ok := c.Rooms[room]; ok && r.RequireMention != nil {
		return *r.RequireMention
	}
	return c.RequireMention == nil || *c.RequireMention
}

func (c ChatConfig) clone() ChatConfig {
	c.AllowFrom = slices.Clone(c.AllowFrom)
	c.Targets = slices.Clone(c.Targets)
	if c.RequireMention != nil {
		v := *c.RequireMention
		c.RequireMention = &v
	}
	if c.Rooms != nil {
		rooms := make(map[string]ChatRoomConfig, len(c.Rooms))
		for id, r := range c.Rooms {
			if r.RequireMention != nil {
				v := *r.RequireMention
				r.RequireMention = &v
			}
			rooms[id] = r
		}
		c.Rooms = rooms
	}
	return c
}

func (c *ChatConfig) validate(key string) *Error {
	if err := oneOf(key+".dmPolicy", c.DMPolicy, []string{DMPolicyPairing, DMPolicyAllowlist, DMPolicyOpen, DMPolicyDisabled}); err != nil {
		return err
	}
	if err := oneOf(key+".groupPolicy", c.GroupPolicy, []string{GroupPolicyAllowlist, GroupPolicyOpen, GroupPolicyDisabled}); err != nil {
		return err
	}
	for i, a := range c.AllowFrom {
		if strings.TrimSpace(a) == "" {
			return &Error{Key: fmt.Sprintf("%s.allowFrom[%d]", key, i), Msg: "is empty (a sender id, like 123456789 or @alice:example.org)"}
		}
	}
	for id := range c.Rooms {
		if strings.TrimSpace(id) == "" {
			return &Error{Key: key + ".rooms", Msg: "has an empty room id"}
		}
	}
	if err := checkTargets(key, c.Targets); err != nil {
		return err
	}
	if err := intRange(key+".reconnect.initialMs", c.Reconnect.InitialMs, 0, maxIntervalMs); err != nil {
		return err
	}
	if err := intRange(key+".reconnect.maxMs", c.Reconnect.MaxMs, 0, maxIntervalMs); err != nil {
		return err
	}
	if c.Reconnect.InitialMs > 0 && c.Reconnect.MaxMs > 0 && c.Reconnect.InitialMs > c.Reconnect.MaxMs {
		return &Error{Key: key + ".reconnect.initialMs", Msg: fmt.Sprintf("%d is larger than reconnect.maxMs %d (lower it or raise maxMs)", c.Reconnect.InitialMs, c.Reconnect.MaxMs)}
	}
	return nil
}

func checkTargets(key string, targets []string) *Error {
	for i, t := range targets {
		if _, err := path.Match(t, ""); err != nil || strings.TrimSpace(t) == "" {
			return &Error{Key: fmt.Sprintf("%s.targets[%d]", key, i), Msg: fmt.Sprintf("%q is not a target pattern (a name like \"ops\" or a glob like \"team-*\")", t)}
		}
	}
	return nil
}

// ChannelNames lists every configured channel name (all kinds), sorted.
func (x *ChannelsConfig) ChannelNames() []string {
	var names []string
	names = append(names, slices.Collect(maps.Keys(x.Webhooks))...)
	names = append(names, slices.Collect(maps.Keys(x.Telegram))...)
	names = append(names, slices.Collect(maps.Keys(x.Matrix))...)
	slices.Sort(names)
	return names
}

func (x ChannelsConfig) clone() ChannelsConfig {
	x = cloneChatChannels(x)
	if x.Webhooks == nil {
		return x
	}
	out := x
	out.Webhooks = make(map[string]WebhookChannelConfig, len(x.Webhooks))
	for name, w := range x.Webhooks {
		w.Targets = slices.Clone(w.Targets)
		w.Headers = maps.Clone(w.Headers)
		out.Webhooks[name] = w
	}
	return out
}

func cloneChatChannels(x ChannelsConfig) ChannelsConfig {
	if x.Telegram != nil {
		t := make(map[string]TelegramChannelConfig, len(x.Telegram))
		for name, c := range x.Telegram {
			c.ChatConfig = c.ChatConfig.clone()
			t[name] = c
		}
		x.Telegram = t
	}
	if x.Matrix != nil {
		m := make(map[string]MatrixChannelConfig, len(x.Matrix))
		for name, c := range x.Matrix {
			c.ChatConfig = c.ChatConfig.clone()
			m[name] = c
		}
		x.Matrix = m
	}
	return x
}

func (x *ChannelsConfig) validate() *Error {
	if err := intRange("channels.dedupeTtlMs", x.DedupeTTLMs, 0, 30*maxIntervalMs); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(x.Webhooks)) {
		w := x.Webhooks[name]
		key := "channels.webhooks." + name
		if err := checkName(key, name, "channel"); err != nil {
			return err
		}
		u, err := url.Parse(w.URL)
		if w.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Key: key + ".url", Msg: fmt.Sprintf("%q is not an http:// or https:// URL (set the receiver's address, like https://hooks.example.com/gateway)", RedactURL(w.URL))}
		}
		if err := checkSecretSource(key, "secret", w.Secret, w.SecretEnv, w.SecretFile, true); err != nil {
			return err
		}
		if err := checkTargets(key, w.Targets); err != nil {
			return err
		}
		for h := range w.Headers {
			if !validHeaderName(h) {
				return &Error{Key: key + ".headers." + h, Msg: "is not a valid HTTP header name (letters, digits and -)"}
			}
			if strings.HasPrefix(strings.ToLower(h), signatureHeaderPrefixDenied) || strings.EqualFold(h, "Idempotency-Key") ||
				strings.EqualFold(h, "Content-Type") || strings.EqualFold(h, "Content-Length") {
				return &Error{Key: key + ".headers." + h, Msg: "is set by the gateway itself (signature, timestamp, idempotency key, content type); remove it"}
			}
		}
		if err := intRange(key+".timeoutMs", w.TimeoutMs, 0, maxIntervalMs); err != nil {
			return err
		}
		r := w.Retry
		if err := intRange(key+".retry.maxAttempts", r.MaxAttempts, 0, maxRetryAttempts); err != nil {
			return err
		}
		if err := intRange(key+".retry.initialBackoffMs", r.InitialBackoffMs, 0, maxIntervalMs); err != nil {
			return err
		}
		if err := intRange(key+".retry.maxBackoffMs", r.MaxBackoffMs, 0, maxIntervalMs); err != nil {
			return err
		}
		if err := intRange(key+".retry.maxElapsedMs", r.MaxElapsedMs, 0, maxIntervalMs); err != nil {
			return err
		}
		if r.InitialBackoffMs > 0 && r.MaxBackoffMs > 0 && r.InitialBackoffMs > r.MaxBackoffMs {
			return &Error{Key: key + ".retry.initialBackoffMs", Msg: fmt.Sprintf("%d is larger than retry.maxBackoffMs %d (lower it or raise maxBackoffMs)", r.InitialBackoffMs, r.MaxBackoffMs)}
		}
	}
	if err := x.validateChat(); err != nil {
		return err
	}
	if x.Default != "" && !slices.Contains(x.ChannelNames(), x.Default) {
		return &Error{Key: "channels.default", Msg: fmt.Sprintf("%q is not a configured channel (configured: %s)", x.Default, listOrNone(x.ChannelNames()))}
	}
	return nil
}

func (x *ChannelsConfig) validateChat() *Error {
	seen := map[string]string{}
	for name := range x.Webhooks {
		seen[name] = "webhooks"
	}
	for _, name := range slices.Sorted(maps.Keys(x.Telegram)) {
		t := x.Telegram[name]
		key := "channels.telegram." + name
		if err := checkName(key, name, "channel"); err != nil {
			return err
		}
		if k, dup := seen[name]; dup {
			return &Error{Key: key, Msg: fmt.Sprintf("the name is also used under channels.%s (channel names are unique across kinds)", k)}
		}
		seen[name] = "telegram"
		if err := checkSecretSource(key, "token", "", t.TokenEnv, t.TokenFile, true); err != nil {
			err.Msg += " (the bot token from @BotFather; it is read from the environment or a file, never the config file)"
			return err
		}
		u, err := url.Parse(t.APIBaseURL)
		if t.APIBaseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return &Error{Key: key + ".apiBaseUrl", Msg: fmt.Sprintf("%q is not an http:// or https:// URL (leave it out for %s)", RedactURL(t.APIBaseURL), DefaultTelegramAPIBaseURL)}
		}
		if err := intRange(key+".pollTimeoutS", t.PollTimeoutS, 0, 50); err != nil {
			return err
		}
		if err := t.ChatConfig.validate(key); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(x.Matrix)) {
		m := x.Matrix[name]
		key := "channels.matrix." + name
		if err := checkName(key, name, "channel"); err != nil {
			return err
		}
		if k, dup := seen[name]; dup {
			return &Error{Key: key, Msg: fmt.Sprintf("the name is also used under channels.%s (channel names are unique across kinds)", k)}
		}
		seen[name] = "matrix"
		u, err := url.Parse(m.Homeserver)
		if m.Homeserver == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Key: key + ".homeserver", Msg: fmt.Sprintf("%q is not an http:// or https:// URL (the homeserver's client API, like https://matrix.example.org)", RedactURL(m.Homeserver))}
		}
		if !strings.HasPrefix(m.UserID, "@") || !strings.Contains(m.UserID, ":") {
			return &Error{Key: key + ".userId", Msg: fmt.Sprintf("%q is not a Matrix user id (like @gw:example.org)", m.UserID)}
		}
		hasToken := m.AccessTokenEnv != "" || m.AccessTokenFile != ""
		hasPassword := m.PasswordEnv != "" || m.PasswordFile != ""
		if hasToken && hasPassword {
			return &Error{Key: key + ".accessTokenFile", Msg: "set an access token or a password, not both"}
		}
		if hasPassword {
			if err := checkSecretSource(key, "password", "", m.PasswordEnv, m.PasswordFile, true); err != nil {
				return err
			}
		} else if err := checkSecretSource(key, "accessToken", "", m.AccessTokenEnv, m.AccessTokenFile, true); err != nil {
			err.Msg += " (or passwordEnv/passwordFile to log in once; secrets are read from the environment or a file, never the config file)"
			return err
		}
		if err := oneOf(key+".autoJoin", m.AutoJoin, []string{MatrixAutoJoinAlways, MatrixAutoJoinAllowlist, MatrixAutoJoinOff}); err != nil {
			return err
		}
		if err := m.ChatConfig.validate(key); err != nil {
			return err
		}
	}
	return nil
}

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
	for name, t := range x.Exec {
		setDefault(&t.TimeoutMs, DefaultToolTimeoutMs)
		setDefault(&t.MaxOutputBytes, DefaultToolMaxOutputBytes)
		x.Exec[name] = t
	}
}

func (x ToolsConfig) clone() ToolsConfig {
	out := x
	out.Deny = slices.Clone(x.Deny)
	if x.Exec != nil {
		out.Exec = make(map[string]ExecToolConfig, len(x.Exec))
		for name, t := range x.Exec {
			t.Command = slices.Clone(t.Command)
			t.ArgsSchema = slices.Clone(t.ArgsSchema)
			t.Env = maps.Clone(t.Env)
			t.Limits = t.Limits.clone()
			out.Exec[name] = t
		}
	}
	return out
}

func (x *ToolsConfig) validate() *Error {
	if x.MaxBodyBytes < 0 || x.MaxBodyBytes > maxHTTPBodyBytes {
		return &Error{Key: "tools.maxBodyBytes", Msg: fmt.Sprintf("%d is out of range (1 to %d bytes; leave it out for %d)", x.MaxBodyBytes, maxHTTPBodyBytes, DefaultToolsMaxBodyBytes)}
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

// HooksConfig is the "hooks" section: POST /hooks/wake and /hooks/agent,
// off by default.
type HooksConfig struct {
	Enabled bool `json:"enabled,omitempty"`
	// Token is the hooks' own secret (not the gateway token), sent as
	// `Authorization: Bearer` or `x-gateway-token`. Required when enabled:
	// exactly one of Token, TokenEnv and TokenFile.
	Token               string `json:"token,omitempty" redact:"secret"`
	TokenEnv            string `json:"tokenEnv,omitempty" redact:"ref"`
	TokenFile           string `json:"tokenFile,omitempty" redact:"ref"`
	MaxBodyBytes        int64  `json:"maxBodyBytes,omitempty"`        // default 256 KiB (larger: 413)
	RequestsPerMinute   int    `json:"requestsPerMinute,omitempty"`   // default 60 (more: 429 with Retry-After)
	DefaultAgentID      string `json:"defaultAgentId,omitempty"`      // agent for /hooks/agent without agentId
	WaitTimeoutMs       int    `json:"waitTimeoutMs,omitempty"`       // bound of waitForCompletion, default 120000
	HeartbeatIntervalMs int    `json:"heartbeatIntervalMs,omitempty"` // when queued next-heartbeat wakes go out, default 30000

	// AllowedAgentIDs are the agents /hooks/agent may run (403 for others).
	// Unset or empty: only the hooks' default agent (defaultAgentId, else
	// agents.default); "*" allows every agent.
	AllowedAgentIDs []string `json:"allowedAgentIds,omitempty"`
}

func (x *HooksConfig) withDefaults() {
	setDefault(&x.MaxBodyBytes, DefaultHooksMaxBodyBytes)
	setDefault(&x.RequestsPerMinute, DefaultHooksPerMinute)
	setDefault(&x.WaitTimeoutMs, DefaultHooksWaitTimeoutMs)
	setDefault(&x.HeartbeatIntervalMs, DefaultHooksHeartbeatMs)
}

func (x HooksConfig) clone() HooksConfig {
	x.AllowedAgentIDs = slices.Clone(x.AllowedAgentIDs)
	return x
}

func (x *HooksConfig) validate() *Error {
	if err := checkSecretSource("hooks", "token", x.Token, x.TokenEnv, x.TokenFile, x.Enabled); err != nil {
		if x.Enabled && x.Token == "" && x.TokenEnv == "" && x.TokenFile == "" {
			err.Msg = "is required when hooks.enabled is true (set hooks.token to a long random value, e.g. `openssl rand -hex 32`, or hooks.tokenEnv / hooks.tokenFile)"
		}
		return err
	}
	if x.Token != "" && len(x.Token) < MinHooksTokenLength {
		return &Error{Key: "hooks.token", Msg: fmt.Sprintf("is %d characters; use at least %d (a long random value, e.g. `openssl rand -hex 32`)", len(x.Token), MinHooksTokenLength)}
	}
	if x.MaxBodyBytes < 0 || x.MaxBodyBytes > maxHTTPBodyBytes {
		return &Error{Key: "hooks.maxBodyBytes", Msg: fmt.Sprintf("%d is out of range (1 to %d bytes; leave it out for %d)", x.MaxBodyBytes, maxHTTPBodyBytes, DefaultHooksMaxBodyBytes)}
	}
	if err := intRange("hooks.requestsPerMinute", x.RequestsPerMinute, 0, maxHooksRequestsPerMinute); err != nil {
		return err
	}
	if err := intRange("hooks.waitTimeoutMs", x.WaitTimeoutMs, 0, maxIntervalMs); err != nil {
		return err
	}
	for i, id := range x.AllowedAgentIDs {
		if id != "*" && (strings.TrimSpace(id) == "" || strings.ContainsFunc(id, unicode.IsControl)) {
			return &Error{Key: fmt.Sprintf("hooks.allowedAgentIds[%d]", i), Msg: fmt.Sprintf("%q is not an agent id (list agent ids from agents.list, or \"*\" for every agent)", id)}
		}
	}
	return interval("hooks.heartbeatIntervalMs", x.HeartbeatIntervalMs)
}

// ResolveSecret returns a secret configured as a value, an environment
// variable (looked up with getenv) or a file (white space trimmed). key
// names the config key in errors, like "hooks.token".
func ResolveSecret(key, value, env, file string, getenv func(string) string) (string, error) {
	switch {
	case value != "":
		return value, nil
	case env != "":
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return "", fmt.Errorf("%sEnv: environment variable %s is not set or empty (set it in the service's environment, e.g. a systemd drop-in Environment= or EnvironmentFile=)", key, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%sFile: %s does not exist (create it with the secret, mode 0600): %w", key, file, err)
		}
		if err != nil {
			return "", fmt.Errorf("%sFile: read %s: %w (make it readable by the gateway's user)", key, file, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%sFile: %s is empty (write the secret into it)", key, file)
		}
		return v, nil
	}
	return "", fmt.Errorf("%s is not set (set %s, %sEnv or %sFile)", key, key, key, key)
}

// checkSecretSource checks that at most one (exactly one when required) of
// a secret's value, env and file is set.
func checkSecretSource(prefix, name, value, env, file string, required bool) *Error {
	key := prefix + "." + name
	n := 0
	for _, s := range []string{value, env, file} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return &Error{Key: key, Msg: fmt.Sprintf("set only one of %s, %sEnv and %sFile", name, name, name)}
	case n == 0 && required:
		return &Error{Key: key, Msg: fmt.Sprintf("is required (set %s, %sEnv or %sFile)", name, name, name)}
	}
	if err := checkSecret(key, value); err != nil {
		return err
	}
	if file != "" && !strings.HasPrefix(file, "/") {
		return &Error{Key: key + "File", Msg: fmt.Sprintf("%q is not an absolute path", file)}
	}
	return nil
}

func checkName(key, name, what string) *Error {
	if !nameRE.MatchString(name) || len(name) > maxChannelOrToolNameLength {
		return &Error{Key: key, Msg: fmt.Sprintf("%q is not a %s name (1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit)", name, what, maxChannelOrToolNameLength)}
	}
	return nil
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return http.CanonicalHeaderKey(h) != ""
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
