package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Every top-level key is a section that WithDefaults, clone and Validate
// reach: a Config field missing from sections would silently keep zero
// values and shared maps.
func TestSectionsListsEveryField(t *testing.T) {
	var c Config
	listed := map[uintptr]bool{}
	for _, s := range c.sections() {
		listed[reflect.ValueOf(s).Pointer()] = true
	}
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if !listed[v.Field(i).Addr().Pointer()] {
			t.Errorf("Config.%s is not in Config.sections", v.Type().Field(i).Name)
		}
	}
	if n := len(c.sections()); n != v.NumField() {
		t.Errorf("sections lists %d sections for %d Config fields", n, v.NumField())
	}
}

func TestDefaults(t *testing.T) {
	d := Default()
	g := d.Gateway
	checks := []struct {
		key       string
		got, want any
	}{
		{"gateway.mode", g.Mode, "local"},
		{"gateway.port", g.Port, 0},
		{"gateway.bind", g.Bind, "loopback"},
		{"gateway.auth.mode", g.Auth.Mode, "token"},
		{"gateway.auth.rateLimit.maxAttempts", g.Auth.RateLimit.MaxAttempts, 10},
		{"gateway.auth.rateLimit.windowMs", g.Auth.RateLimit.WindowMs, 60000},
		{"gateway.auth.rateLimit.lockoutMs", g.Auth.RateLimit.LockoutMs, 300000},
		{"gateway.reload.mode", g.Reload.Mode, "hybrid"},
		{"gateway.reload.debounceMs", g.Reload.DebounceMs, 300},
		{"gateway.tickIntervalMs", g.TickIntervalMs, 30000},
		{"gateway.healthIntervalMs", g.HealthIntervalMs, 60000},
		{"logging.level", d.Logging.Level, "info"},
		{"logging.maxFileBytes", d.Logging.MaxFileBytes, int64(10 << 20)},
		{"logging.maxFiles", d.Logging.MaxFiles, 3},
		{"commands.restart", *d.Commands.Restart, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	if !d.RestartAllowed() {
		t.Error("RestartAllowed() = false by default")
	}
}

func TestWithDefaultsKeepsSetValuesAndCopies(t *testing.T) {
	f := false
	c := &Config{
		Gateway: GatewayConfig{Mode: "remote", Port: 1234, Bind: "lan", Listen: []string{"systemd:gw"},
			Reload:    ReloadConfig{Mode: "off"},
			ControlUI: ControlUIConfig{AllowedOrigins: []string{"https://a.example"}}},
		Logging:  LoggingConfig{Level: "debug", MaxFiles: 7},
		Commands: CommandsConfig{Restart: &f},
	}
	w := c.WithDefaults()
	if w.Gateway.Mode != "remote" || w.Gateway.Port != 1234 || w.Gateway.Bind != "lan" || w.Gateway.Reload.Mode != "off" ||
		w.Logging.Level != "debug" || w.Logging.MaxFiles != 7 || *w.Commands.Restart || w.RestartAllowed() {
		t.Errorf("WithDefaults overwrote set values: %+v", w)
	}
	if w.Logging.MaxFileBytes != DefaultMaxFileBytes || w.Gateway.Auth.Mode != "token" {
		t.Errorf("WithDefaults did not fill zero values: %+v", w)
	}
	// Deep copy: changing the copy leaves the original alone.
	w.Gateway.Listen[0] = "changed"
	w.Gateway.ControlUI.AllowedOrigins[0] = "changed"
	*w.Commands.Restart = true
	if c.Gateway.Listen[0] != "systemd:gw" || c.Gateway.ControlUI.AllowedOrigins[0] != "https://a.example" || *c.Commands.Restart {
		t.Errorf("WithDefaults shares memory with its receiver: %+v", c)
	}
	if c.Gateway.Auth.Mode != "" {
		t.Errorf("WithDefaults modified its receiver")
	}
	if !reflect.DeepEqual(w.WithDefaults(), w) {
		t.Errorf("WithDefaults is not idempotent")
	}
	var nilCfg *Config
	if !reflect.DeepEqual(nilCfg.WithDefaults(), Default()) {
		t.Errorf("nil.WithDefaults() != Default()")
	}
}

func TestRedacted(t *testing.T) {
	c := &Config{Gateway: GatewayConfig{Auth: AuthConfig{Token: "s3cret-token", Password: "hunter2"}, Listen: []string{"a:1"}}}
	r := c.Redacted()
	if r.Gateway.Auth.Token != RedactedValue || r.Gateway.Auth.Password != RedactedValue {
		t.Errorf("Redacted left secrets: %+v", r.Gateway.Auth)
	}
	if c.Gateway.Auth.Token != "s3cret-token" || c.Gateway.Auth.Password != "hunter2" {
		t.Errorf("Redacted modified its receiver")
	}
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "hunter2") {
		t.Errorf("redacted JSON leaks a secret: %s", b)
	}
	r.Gateway.Listen[0] = "x"
	if c.Gateway.Listen[0] != "a:1" {
		t.Errorf("Redacted shares the listen slice")
	}
	empty := (&Config{}).Redacted()
	if empty.Gateway.Auth.Token != "" || empty.Gateway.Auth.Password != "" {
		t.Errorf("Redacted invented secrets: %+v", empty.Gateway.Auth)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string
		wantMsg string
	}{
		{"zero config", func(c *Config) {}, "", ""},
		{"full valid", func(c *Config) {
			c.Gateway = GatewayConfig{Mode: "remote", Port: 65535, Bind: "::1",
				Listen: []string{"systemd:gatewayd", "launchd:Listeners", "unix:/run/gw.sock", "127.0.0.1:0", "[::1]:18789", ":18789", "localhost:80"},
				Auth:   AuthConfig{Mode: "password", Password: "pw", RateLimit: RateLimitConfig{MaxAttempts: 1, WindowMs: 1, LockoutMs: 1}},
				Reload: ReloadConfig{Mode: "hot", DebounceMs: 0}, ControlUI: ControlUIConfig{AllowedOrigins: []string{"*", "http://localhost:5173", "https://ui.example/"}},
				TickIntervalMs: 10, HealthIntervalMs: 86400000}
			c.Logging = LoggingConfig{Level: "error", MaxFileBytes: 1, MaxFiles: 100}
		}, "", ""},
		{"bind lan", func(c *Config) { c.Gateway.Bind = "lan" }, "", ""},
		{"bind ipv4", func(c *Config) { c.Gateway.Bind = "0.0.0.0" }, "", ""},
		{"mode", func(c *Config) { c.Gateway.Mode = "Local" }, "gateway.mode", `"Local" is not one of local, remote`},
		{"port high", func(c *Config) { c.Gateway.Port = 65536 }, "gateway.port", "65536 is not a TCP port"},
		{"port negative", func(c *Config) { c.Gateway.Port = -1 }, "gateway.port", "-1 is not a TCP port"},
		{"bind", func(c *Config) { c.Gateway.Bind = "everywhere" }, "gateway.bind", `"everywhere" is not "loopback", "lan" or an IP address`},
		{"listen no port", func(c *Config) { c.Gateway.Listen = []string{"a:1", "localhost"} }, "gateway.listen[1]", "is not systemd:NAME"},
		{"listen bad port", func(c *Config) { c.Gateway.Listen = []string{"127.0.0.1:http"} }, "gateway.listen[0]", "is not a number"},
		{"listen big port", func(c *Config) { c.Gateway.Listen = []string{"127.0.0.1:70000"} }, "gateway.listen[0]", "is not a number from 0 to 65535"},
		{"listen systemd empty", func(c *Config) { c.Gateway.Listen = []string{"systemd:"} }, "gateway.listen[0]", "systemd socket name"},
		{"listen launchd empty", func(c *Config) { c.Gateway.Listen = []string{"launchd:"} }, "gateway.listen[0]", "launchd socket name"},
		{"listen unix relative", func(c *Config) { c.Gateway.Listen = []string{"unix:gw.sock"} }, "gateway.listen[0]", "must be absolute"},
		{"auth mode", func(c *Config) { c.Gateway.Auth.Mode = "oauth" }, "gateway.auth.mode", `"oauth" is not one of token, password, none`},
		{"token space", func(c *Config) { c.Gateway.Auth.Token = "abc " }, "gateway.auth.token", "white space"},
		{"password space", func(c *Config) { c.Gateway.Auth.Password = "\tpw" }, "gateway.auth.password", "white space"},
		{"maxAttempts", func(c *Config) { c.Gateway.Auth.RateLimit.MaxAttempts = -1 }, "gateway.auth.rateLimit.maxAttempts", "out of range"},
		{"windowMs", func(c *Config) { c.Gateway.Auth.RateLimit.WindowMs = -5 }, "gateway.auth.rateLimit.windowMs", "out of range"},
		{"lockoutMs", func(c *Config) { c.Gateway.Auth.RateLimit.LockoutMs = -5 }, "gateway.auth.rateLimit.lockoutMs", "out of range"},
		{"reload mode", func(c *Config) { c.Gateway.Reload.Mode = "fast" }, "gateway.reload.mode", `"fast" is not one of off, hot, restart, hybrid`},
		{"debounce", func(c *Config) { c.Gateway.Reload.DebounceMs = 60001 }, "gateway.reload.debounceMs", "out of range"},
		{"origin path", func(c *Config) { c.Gateway.ControlUI.AllowedOrigins = []string{"https://a.example/ui"} }, "gateway.controlUi.allowedOrigins[0]", "is not an origin"},
		{"origin scheme", func(c *Config) { c.Gateway.ControlUI.AllowedOrigins = []string{"*", "ftp://a.example"} }, "gateway.controlUi.allowedOrigins[1]", "is not an origin"},
		{"origin bare host", func(c *Config) { c.Gateway.ControlUI.AllowedOrigins = []string{"a.example"} }, "gateway.controlUi.allowedOrigins[0]", "is not an origin"},
		{"tick too small", func(c *Config) { c.Gateway.TickIntervalMs = 5 }, "gateway.tickIntervalMs", "out of range"},
		{"health negative", func(c *Config) { c.Gateway.HealthIntervalMs = -1 }, "gateway.healthIntervalMs", "out of range"},
		{"level", func(c *Config) { c.Logging.Level = "verbose" }, "logging.level", `"verbose" is not one of debug, info, warn, error`},
		{"maxFileBytes", func(c *Config) { c.Logging.MaxFileBytes = -1 }, "logging.maxFileBytes", "negative"},
		{"maxFiles", func(c *Config) { c.Logging.MaxFiles = 101 }, "logging.maxFiles", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{}
			tt.mutate(c)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if err := c.WithDefaults().Validate(); err != nil {
					t.Fatalf("WithDefaults().Validate() = %v, want nil", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v (%T), want *Error", err, err)
			}
			if ce.Key != tt.wantKey || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("Validate() key %q msg %q, want key %q msg containing %q", ce.Key, ce.Msg, tt.wantKey, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), tt.wantKey+": ") {
				t.Errorf("Validate() error %q does not start with the key", err)
			}
		})
	}
}

func TestValidateExampleMessage(t *testing.T) {
	c := &Config{Gateway: GatewayConfig{Reload: ReloadConfig{Mode: "fast"}}}
	want := `gateway.reload.mode: "fast" is not one of off, hot, restart, hybrid`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}
