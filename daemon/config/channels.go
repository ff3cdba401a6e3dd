package config

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Defaults and bounds of the "channels" section.
const (
	DefaultDedupeTTLMs       = 24 * 60 * 60 * 1000
	DefaultWebhookTimeoutMs  = 10000
	DefaultRetryMaxAttempts  = 5
	DefaultRetryInitialMs    = 500
	DefaultRetryMaxBackoffMs = 10000
	DefaultRetryMaxElapsedMs = 60000

	maxRetryAttempts            = 100
	signatureHeaderPrefixDenied = "x-gateway-"
)

// ChannelsConfig is the "channels" section: where `send` delivers messages.
// Each channel is keyed by a name unique across kinds (webhooks, Telegram
// bots, Matrix accounts).
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
	setEach(x.Webhooks, (*WebhookChannelConfig).withDefaults)
	setEach(x.Telegram, (*TelegramChannelConfig).withDefaults)
	setEach(x.Matrix, (*MatrixChannelConfig).withDefaults)
}

func (w *WebhookChannelConfig) withDefaults() {
	setDefault(&w.TimeoutMs, DefaultWebhookTimeoutMs)
	setDefault(&w.Retry.MaxAttempts, DefaultRetryMaxAttempts)
	setDefault(&w.Retry.InitialBackoffMs, DefaultRetryInitialMs)
	setDefault(&w.Retry.MaxBackoffMs, DefaultRetryMaxBackoffMs)
	setDefault(&w.Retry.MaxElapsedMs, DefaultRetryMaxElapsedMs)
}

func (t *TelegramChannelConfig) withDefaults() {
	t.ChatConfig.withDefaults()
	setDefault(&t.APIBaseURL, DefaultTelegramAPIBaseURL)
	setDefault(&t.PollTimeoutS, DefaultTelegramPollTimeoutS)
}

func (m *MatrixChannelConfig) withDefaults() {
	m.ChatConfig.withDefaults()
	setDefault(&m.AutoJoin, MatrixAutoJoinAlways)
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

func (x *ChannelsConfig) unshare() {
	x.Webhooks = cloneMap(x.Webhooks, (*WebhookChannelConfig).unshare)
	x.Telegram = cloneMap(x.Telegram, (*TelegramChannelConfig).unshare)
	x.Matrix = cloneMap(x.Matrix, (*MatrixChannelConfig).unshare)
}

func (w *WebhookChannelConfig) unshare() {
	w.Targets = slices.Clone(w.Targets)
	w.Headers = maps.Clone(w.Headers)
}

func (c *ChatConfig) unshare() {
	c.AllowFrom = slices.Clone(c.AllowFrom)
	c.Targets = slices.Clone(c.Targets)
	c.RequireMention = clonePtr(c.RequireMention)
	c.Rooms = cloneMap(c.Rooms, func(r *ChatRoomConfig) { r.RequireMention = clonePtr(r.RequireMention) })
}

func (x *ChannelsConfig) validate() *Error {
	if err := intRange("channels.dedupeTtlMs", x.DedupeTTLMs, 0, 30*maxIntervalMs); err != nil {
		return err
	}
	seen := map[string]string{} // channel name -> its kind
	if err := validateChannels("webhooks", x.Webhooks, seen, (*WebhookChannelConfig).validate); err != nil {
		return err
	}
	if err := validateChannels("telegram", x.Telegram, seen, (*TelegramChannelConfig).validate); err != nil {
		return err
	}
	if err := validateChannels("matrix", x.Matrix, seen, (*MatrixChannelConfig).validate); err != nil {
		return err
	}
	if x.Default != "" && !slices.Contains(x.ChannelNames(), x.Default) {
		return &Error{Key: "channels.default", Msg: fmt.Sprintf("%q is not a configured channel (configured: %s)", x.Default, listOrNone(x.ChannelNames()))}
	}
	return nil
}

// validateChannels checks the channels of one kind in name order: the
// name, that no channel of another kind has it (seen holds the names
// checked so far, with their kinds), and the channel's settings.
func validateChannels[C any](kind string, channels map[string]C, seen map[string]string, validate func(*C, string) *Error) *Error {
	for _, name := range slices.Sorted(maps.Keys(channels)) {
		key := "channels." + kind + "." + name
		if err := checkName(key, name, "channel"); err != nil {
			return err
		}
		if k, dup := seen[name]; dup {
			return &Error{Key: key, Msg: fmt.Sprintf("the name is also used under channels.%s (channel names are unique across kinds)", k)}
		}
		seen[name] = kind
		c := channels[name]
		if err := validate(&c, key); err != nil {
			return err
		}
	}
	return nil
}

func (w *WebhookChannelConfig) validate(key string) *Error {
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
	return nil
}

func (t *TelegramChannelConfig) validate(key string) *Error {
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
	return t.ChatConfig.validate(key)
}

func (m *MatrixChannelConfig) validate(key string) *Error {
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
	return m.ChatConfig.validate(key)
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
