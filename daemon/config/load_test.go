package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

func TestLoadMissingFileIsDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "config.json")
	l, err := Load(path)
	if err != nil {
		t.Fatalf("Load(missing) = %v", err)
	}
	if l.Exists || l.Hash != "" || l.Raw != nil || l.Path != path {
		t.Errorf("Load(missing) = %+v, want Exists=false, no hash, no raw", l)
	}
	if !reflect.DeepEqual(l.Config, Default()) {
		t.Errorf("Load(missing).Config = %+v, want Default()", l.Config)
	}
}

func TestLoadValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	content := `{
  "gateway": {
    "port": 19999,
    "bind": "lan",
    "listen": ["systemd:gatewayd", "127.0.0.1:0"],
    "auth": {"mode": "password", "password": "pw", "rateLimit": {"maxAttempts": 3}},
    "reload": {"mode": "hot"},
    "controlUi": {"allowedOrigins": ["http://localhost:5173"]}
  },
  "logging": {"level": "debug"},
  "commands": {"restart": false}
}
`
	testutil.WriteFile(t, path, content)
	l, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sum := sha256.Sum256([]byte(content))
	if !l.Exists || l.Hash != hex.EncodeToString(sum[:]) || string(l.Raw) != content {
		t.Errorf("Load: exists=%v hash=%s raw=%q", l.Exists, l.Hash, l.Raw)
	}
	c := l.Config
	if c.Gateway.Port != 19999 || c.Gateway.Bind != "lan" || len(c.Gateway.Listen) != 2 || c.Gateway.Auth.Password != "pw" ||
		c.Gateway.Auth.RateLimit.MaxAttempts != 3 || c.Gateway.Reload.Mode != "hot" || c.Logging.Level != "debug" || c.RestartAllowed() {
		t.Errorf("Load: values not read: %+v", c)
	}
	// Defaults are filled in for what the file leaves out.
	if c.Gateway.Auth.RateLimit.WindowMs != DefaultWindowMs || c.Gateway.Mode != "local" || c.Logging.MaxFiles != 3 {
		t.Errorf("Load: defaults not filled in: %+v", c)
	}
}

func TestLoadRoundTripsEveryKey(t *testing.T) {
	// Marshal a config with every field set and load it back: every JSON
	// name the encoder writes must be accepted by the strict walker.
	tr := true
	full := &Config{
		Gateway: GatewayConfig{Mode: "remote", Port: 1, Bind: "127.0.0.1", Listen: []string{"unix:/x.sock"},
			Auth:      AuthConfig{Mode: "token", Token: "t", Password: "p", RateLimit: RateLimitConfig{MaxAttempts: 1, WindowMs: 2, LockoutMs: 3}},
			Reload:    ReloadConfig{Mode: "restart", DebounceMs: 4},
			ControlUI: ControlUIConfig{AllowedOrigins: []string{"*"}}, TickIntervalMs: 1000, HealthIntervalMs: 2000},
		Logging:  LoggingConfig{Level: "warn", MaxFileBytes: 5, MaxFiles: 6},
		Commands: CommandsConfig{Restart: &tr},
	}
	b, err := json.MarshalIndent(full, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	testutil.WriteFile(t, path, string(b))
	l, err := Load(path)
	if err != nil {
		t.Fatalf("Load(marshalled full config): %v\n%s", err, b)
	}
	if want := full.WithDefaults(); !reflect.DeepEqual(l.Config, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", l.Config, want)
	}
	l2, err := Load(writeTemp2(t, "{}"))
	if err != nil || !reflect.DeepEqual(l2.Config, Default()) {
		t.Errorf("Load({}) = %+v, %v; want defaults", l2, err)
	}
}

func writeTemp2(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	testutil.WriteFile(t, path, content)
	return path
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		content   string
		line, col int
		key       string
		msg       string
	}{
		{"empty", "", 1, 1, "", "the file is empty"},
		{"white space only", " \n\t\n", 1, 1, "", "the file is empty"},
		{"syntax: bad literal", "{\n  \"gateway\": {\n    \"port\": 12a\n  }\n}", 3, 15, "gateway", "invalid JSON: invalid character 'a'"},
		{"syntax: trailing comma", "{\n  \"logging\": {\"level\": \"info\",}\n}", 2, 31, "logging", "invalid JSON"},
		{"syntax: truncated", "{\n  \"gateway\": {\n    \"port\": 1", 3, 14, "gateway", "unexpected end of file"},
		{"syntax: single quotes", "{'gateway': {}}", 1, 2, "", "invalid JSON"},
		{"top level array", "\n[]", 2, 1, "", "the top level must be a JSON object"},
		{"top level null", "null", 1, 1, "", "the top level must be a JSON object"},
		{"trailing data", "{}\n{}", 2, 1, "", "unexpected data after the top-level object"},
		{"type: string for int", "{\n  \"gateway\": {\n    \"port\": \"18789\"\n  }\n}", 3, 5, "gateway.port", "expected a whole number, got string"},
		{"type: float for int", "{\"gateway\": {\"auth\": {\"rateLimit\": {\n  \"windowMs\": 1.5}}}}", 2, 3, "gateway.auth.rateLimit.windowMs", "expected a whole number, got number 1.5"},
		{"type: string for bool", "{\"commands\":\n {\"restart\": \"yes\"}}", 2, 3, "commands.restart", "expected true or false, got string"},
		{"type: array for object", "{\n\"gateway\": []}", 2, 1, "gateway", "expected an object {...}, got array"},
		{"type: string for list", "{\"gateway\": {\n\"listen\": \"127.0.0.1:1\"}}", 2, 1, "gateway.listen", "expected a list [...], got string"},
		{"unknown top key", "{\n  \"gateway\": {},\n  \"loging\": {}\n}", 3, 3, "loging", "unknown key (known keys here: agents, channels, commands, gateway, hooks, http, logging, nodes, tools)"},
		{"unknown nested key", "{\n  \"gateway\": {\n    \"auth\": {\n      \"tokn\": \"x\"\n    }\n  }\n}", 4, 7, "gateway.auth.tokn", "unknown key"},
		{"unknown key case", "{\"gateway\": {\n  \"controlUI\": {}}}", 2, 3, "gateway.controlUI", `did you mean "controlUi"?`},
		{"unknown key after unicode", "{\"gateway\": {\"bind\": \"ünï\", \"x\": 1}}", 1, 29, "gateway.x", "unknown key"},
		{"duplicate key", "{\n  \"gateway\": {\"port\": 1,\n    \"port\": 2}}", 3, 5, "gateway.port", "duplicate key"},
		{"validate: reload mode", "{\n  \"gateway\": {\n    \"reload\": {\n      \"mode\": \"fast\"\n    }\n  }\n}", 4, 7, "gateway.reload.mode", `"fast" is not one of off, hot, restart, hybrid`},
		{"validate: list element", "{\"gateway\": {\"listen\": [\n  \"systemd:gw\",\n  \"nowhere\"\n]}}", 3, 3, "gateway.listen[1]", "is not systemd:NAME"},
		{"validate: level", "{\"logging\": {\n\n\"level\": \"loud\"}}", 3, 1, "logging.level", "is not one of debug, info, warn, error"},
		{"validate: port", "{\"gateway\": {\"port\": 99999}}", 1, 14, "gateway.port", "99999 is not a TCP port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp2(t, tt.content)
			l, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, want an error", tt.content, l.Config)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load error %v is %T, want *Error", err, err)
			}
			if ce.File != path || ce.Line != tt.line || ce.Col != tt.col || ce.Key != tt.key || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("Load(%q) error\n got %s:%d:%d key %q msg %q\nwant %s:%d:%d key %q msg containing %q",
					tt.content, ce.File, ce.Line, ce.Col, ce.Key, ce.Msg, path, tt.line, tt.col, tt.key, tt.msg)
			}
			s := err.Error()
			if !strings.HasPrefix(s, "config "+path) || !strings.HasSuffix(s, "(fix the file, or move it aside to start from defaults)") {
				t.Errorf("Error() = %q, want config FILE... (fix the file...)", s)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "/c.json", Line: 3, Col: 7, Key: "gateway.port", Msg: "bad"}, "config /c.json:3:7: gateway.port: bad (fix the file, or move it aside to start from defaults)"},
		{Error{File: "/c.json", Msg: "the file is empty"}, "config /c.json: the file is empty (fix the file, or move it aside to start from defaults)"},
		{Error{File: "/c.json", Line: 1, Col: 1, Msg: "m"}, "config /c.json:1:1: m (fix the file, or move it aside to start from defaults)"},
		{Error{Key: "logging.level", Msg: "m"}, "logging.level: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read, whoever we are.
	path := filepath.Join(dir, "config.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != path || !strings.Contains(ce.Msg, "cannot read") {
		t.Errorf("Load(directory) = %v, want *Error naming %s", err, path)
	}
}
