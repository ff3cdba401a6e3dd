package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Defaults and bounds of the "hooks" section.
const (
	DefaultHooksMaxBodyBytes  = 256 << 10
	DefaultHooksPerMinute     = 60
	DefaultHooksWaitTimeoutMs = 120000
	DefaultHooksHeartbeatMs   = 30000
	MinHooksTokenLength       = 16

	maxHooksRequestsPerMinute = 1_000_000
)

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

func (x *HooksConfig) unshare() {
	x.AllowedAgentIDs = slices.Clone(x.AllowedAgentIDs)
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
	if err := bodyLimit("hooks.maxBodyBytes", x.MaxBodyBytes, DefaultHooksMaxBodyBytes); err != nil {
		return err
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
