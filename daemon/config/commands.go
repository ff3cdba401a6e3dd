package config

// CommandsConfig is the "commands" section: operator commands the gateway
// accepts.
type CommandsConfig struct {
	Restart *bool `json:"restart,omitempty"` // SIGUSR1 in-process restart allowed; default true
}

// RestartAllowed reports commands.restart, true when unset.
func (c *Config) RestartAllowed() bool {
	return c == nil || c.Commands.Restart == nil || *c.Commands.Restart
}

func (x *CommandsConfig) withDefaults() {
	if x.Restart == nil {
		t := true
		x.Restart = &t
	}
}

func (x *CommandsConfig) unshare() { x.Restart = clonePtr(x.Restart) }

// validate: a set restart is true or false, both valid.
func (x *CommandsConfig) validate() *Error { return nil }
