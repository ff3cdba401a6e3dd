package config

import (
	"strings"
	"testing"
)

// gateway.allowedHosts takes host names (or "*") and gateway.limits
// bounded counts; both are hot-safe.
func TestValidateAllowedHostsAndLimits(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string // "" = valid
	}{
		{"names", func(c *Config) { c.Gateway.AllowedHosts = []string{"gw.example.lan", "*", "[fd00::1]"} }, ""},
		{"scheme", func(c *Config) { c.Gateway.AllowedHosts = []string{"https://gw.example.lan"} }, "gateway.allowedHosts[0]"},
		{"port", func(c *Config) { c.Gateway.AllowedHosts = []string{"ok.lan", "gw.example.lan:443"} }, "gateway.allowedHosts[1]"},
		{"empty", func(c *Config) { c.Gateway.AllowedHosts = []string{""} }, "gateway.allowedHosts[0]"},
		{"limits", func(c *Config) { c.Gateway.Limits = LimitsConfig{MaxConnections: 100, MaxPreAuthPerIP: 10} }, ""},
		{"negative total", func(c *Config) { c.Gateway.Limits.MaxConnections = -1 }, "gateway.limits.maxConnections"},
		{"negative per ip", func(c *Config) { c.Gateway.Limits.MaxPreAuthPerIP = -5 }, "gateway.limits.maxPreAuthPerIp"},
	}
	for _, tt := range tests {
		c := &Config{}
		tt.edit(c)
		err := c.Validate()
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.key != "" && (err == nil || !strings.Contains(err.Error(), tt.key)):
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.key)
		}
	}
	// Both keys are hot-safe: a reload applies them without a restart.
	for _, k := range []string{"gateway.allowedHosts", "gateway.limits.maxConnections", "gateway.limits.maxPreAuthPerIp"} {
		if NeedsRestartInProcess(k) {
			t.Errorf("%s needs a restart", k)
		}
	}
	// Parsed from JSON under their documented names.
	c, err := Parse("t.json", []byte(`{"gateway":{"allowedHosts":["gw.lan"],"limits":{"maxConnections":9,"maxPreAuthPerIp":3}}}`))
	if err != nil || c.Gateway.AllowedHosts[0] != "gw.lan" || c.Gateway.Limits.MaxConnections != 9 || c.Gateway.Limits.MaxPreAuthPerIP != 3 {
		t.Fatalf("parse: %+v %v", c, err)
	}
}
