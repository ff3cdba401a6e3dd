package config

import (
	"reflect"
)

// Config is the gateway's JSON config file. Zero values mean "the default";
// WithDefaults fills them in. Unknown keys are rejected by Load.
//
// Each top-level key is a section: a type with the section methods,
// listed once in sections.
type Config struct {
	Gateway  GatewayConfig  `json:"gateway"`  // where and how the gateway serves (gateway.go)
	Logging  LoggingConfig  `json:"logging"`  // log level and log file rotation (logging.go)
	Commands CommandsConfig `json:"commands"` // operator commands (commands.go)
	Agents   AgentsConfig   `json:"agents"`   // agent runs and their backends (agents.go)
	HTTP     HTTPConfig     `json:"http"`     // OpenAI-compatible HTTP endpoints (http.go)
	Channels ChannelsConfig `json:"channels"` // delivery channels for send (channels.go)
	Tools    ToolsConfig    `json:"tools"`    // /tools/invoke tools (tools.go)
	Hooks    HooksConfig    `json:"hooks"`    // /hooks/wake and /hooks/agent (hooks.go)
	Nodes    NodesConfig    `json:"nodes"`    // nodes and pairing (nodes.go)
}

// A section is one top-level key of the config file. WithDefaults, clone
// and Validate loop over the sections; Redacted needs nothing from them,
// it follows the redact struct tags (redact.go).
type section interface {
	// withDefaults replaces the section's zero values by their defaults.
	withDefaults()
	// validate returns the section's first problem, nil when there is
	// none. Zero values are valid: they mean the default.
	validate() *Error
	// unshare is called on a shallow copy: it replaces the maps, slices
	// and pointers the copy shares with the original by copies of its own.
	unshare()
}

// sections lists c's sections in the order of the Config fields, which is
// the order in which Validate checks them.
func (c *Config) sections() []section {
	return []section{&c.Gateway, &c.Logging, &c.Commands, &c.Agents, &c.HTTP, &c.Channels, &c.Tools, &c.Hooks, &c.Nodes}
}

// Default returns the built-in configuration, the one used when there is no
// config file. Its Gateway.Port is 0: the port comes from the profile.
func Default() *Config {
	return (&Config{}).WithDefaults()
}

// WithDefaults returns a deep copy of c with every zero value replaced by its
// default. Gateway.Port stays 0 when unset: the port is the profile's
// (Profile.DefaultPort) unless a flag or GATEWAY_PORT says otherwise.
// A nil c gives Default().
func (c *Config) WithDefaults() *Config {
	out := c.clone()
	for _, s := range out.sections() {
		s.withDefaults()
	}
	return out
}

// Redacted returns a deep copy of c with every field tagged redact:"secret"
// replaced by "__REDACTED__" and every redact:"url" field passed through
// RedactURL (see redact.go), for config.get, status and logs.
func (c *Config) Redacted() *Config {
	out := c.clone()
	redactTagged(reflect.ValueOf(out).Elem())
	return out
}

// clone returns a deep copy; nil gives an empty Config.
func (c *Config) clone() *Config {
	out := &Config{}
	if c == nil {
		return out
	}
	*out = *c
	for _, s := range out.sections() {
		s.unshare()
	}
	return out
}

// Validate checks every field and returns the first problem as an *Error
// whose Key is the dotted config key, e.g.
// `gateway.reload.mode: "fast" is not one of off, hot, restart, hybrid`.
// Zero values are valid: they mean the default. Load adds the file, line and
// column.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	for _, s := range c.sections() {
		if err := s.validate(); err != nil {
			return err
		}
	}
	return nil
}
