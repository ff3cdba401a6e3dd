package config

// This file's sections are owned by the channels, tools and hooks (issue 5) work; the lead only wired
// them into Config, WithDefaults, Redacted, clone and Validate.

// ChannelsConfig is the "channels" section. (To be filled in.)
type ChannelsConfig struct{}

func (x *ChannelsConfig) withDefaults()        {}
func (x *ChannelsConfig) redact()              {}
func (x ChannelsConfig) clone() ChannelsConfig { return x }
func (x *ChannelsConfig) validate() *Error     { return nil }

// ToolsConfig is the "tools" section. (To be filled in.)
type ToolsConfig struct{}

func (x *ToolsConfig) withDefaults()     {}
func (x *ToolsConfig) redact()           {}
func (x ToolsConfig) clone() ToolsConfig { return x }
func (x *ToolsConfig) validate() *Error  { return nil }

// HooksConfig is the "hooks" section. (To be filled in.)
type HooksConfig struct{}

func (x *HooksConfig) withDefaults()     {}
func (x *HooksConfig) redact()           {}
func (x HooksConfig) clone() HooksConfig { return x }
func (x *HooksConfig) validate() *Error  { return nil }
