package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config"
)

func testApp(env map[string]string, g globalFlags) *app {
	return &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return env[k] }, g: g}
}

// resolveOrUsageErr resolves with env and g; with wantErr it checks that
// resolve fails with a usage error containing it and returns nil.
func resolveOrUsageErr(t *testing.T, env map[string]string, g globalFlags, wantErr string) *target {
	t.Helper()
	tg, err := testApp(env, g).resolve()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || exitCode(err) != ExitUsage {
			t.Fatalf("err = %v (exit %d), want a usage error containing %q", err, exitCode(err), wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestResolveTarget(t *testing.T) {
	dir := t.TempDir()
	cfgWithPort := filepath.Join(dir, "port.json")
	os.WriteFile(cfgWithPort, []byte(`{"gateway":{"port":23456}}`), 0o600)
	cfgWithBind := filepath.Join(dir, "bind.json")
	os.WriteFile(cfgWithBind, []byte(`{"gateway":{"port":23457,"bind":"10.1.2.3","auth":{"token":"t"}}}`), 0o600)
	cfgBroken := filepath.Join(dir, "broken.json")
	os.WriteFile(cfgBroken, []byte(`{"gateway":{"port":"x"}}`), 0o600)
	missing := filepath.Join(dir, "missing.json")
	named, _ := config.NewProfile("staging", false)

	tests := []struct {
		name    string
		env     map[string]string
		g       globalFlags
		url     string
		source  string
		wantErr string
	}{
		{"flag wins", map[string]string{"GATEWAY_URL": "ws://env:1", "GATEWAY_PORT": "2"}, globalFlags{url: "http://flag:9", insecureWS: true}, "ws://flag:9", "--url", ""},
		{"env url", map[string]string{"GATEWAY_URL": "https://env:1", "GATEWAY_PORT": "2"}, globalFlags{}, "wss://env:1", "GATEWAY_URL", ""},
		{"plain ws off loopback", nil, globalFlags{url: "ws://10.0.0.5:18789"}, "", "", "refusing plain ws:// to 10.0.0.5:18789 (from --url), which is not loopback"},
		{"plain ws off loopback from env", map[string]string{"GATEWAY_URL": "gw.example:1"}, globalFlags{}, "", "", "(from GATEWAY_URL)"},
		{"plain ws to localhost", nil, globalFlags{url: "ws://localhost:7"}, "ws://localhost:7", "--url", ""},
		{"plain ws to ::1", nil, globalFlags{url: "ws://[::1]:7"}, "ws://[::1]:7", "--url", ""},
		{"plain ws to 127.0.0.2", nil, globalFlags{url: "127.0.0.2:7"}, "ws://127.0.0.2:7", "--url", ""},
		{"env port beats config", map[string]string{"GATEWAY_PORT": "2345", "GATEWAY_CONFIG_PATH": cfgWithPort}, globalFlags{}, "ws://127.0.0.1:2345", "GATEWAY_PORT", ""},
		{"config port", map[string]string{"GATEWAY_CONFIG_PATH": cfgWithPort}, globalFlags{}, "ws://127.0.0.1:23456", "gateway.port in " + cfgWithPort, ""},
		{"config bind address", map[string]string{"GATEWAY_CONFIG_PATH": cfgWithBind}, globalFlags{}, "ws://10.1.2.3:23457", "gateway.port in " + cfgWithBind, ""},
		{"broken config falls back to the default", map[string]string{"GATEWAY_CONFIG_PATH": cfgBroken}, globalFlags{}, "ws://127.0.0.1:18789", "profile default default", ""},
		{"default profile", map[string]string{"GATEWAY_CONFIG_PATH": missing}, globalFlags{}, "ws://127.0.0.1:18789", "profile default default", ""},
		{"dev", map[string]string{"GATEWAY_CONFIG_PATH": missing}, globalFlags{dev: true}, "ws://127.0.0.1:19001", "profile dev default", ""},
		{"named via env", map[string]string{"GATEWAY_CONFIG_PATH": missing, "GATEWAY_PROFILE": "staging"}, globalFlags{},
			"ws://127.0.0.1:" + strconv.Itoa(named.DefaultPort()), "profile staging default", ""},
		{"bad port", map[string]string{"GATEWAY_PORT": "99999"}, globalFlags{}, "", "", "GATEWAY_PORT=\"99999\" is not a port number"},
		{"bad url", nil, globalFlags{url: "ftp://x"}, "", "", `scheme "ftp"`},
		{"bad profile", nil, globalFlags{profile: "No"}, "", "", "profile \"No\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": dir, "GATEWAY_STATE_DIR": filepath.Join(dir, "state")}
			for k, v := range tt.env {
				env[k] = v
			}
			tg := resolveOrUsageErr(t, env, tt.g, tt.wantErr)
			if tg == nil {
				return
			}
			if tg.URL != tt.url || tg.URLSource != tt.source {
				t.Errorf("target %q from %q, want %q from %q", tg.URL, tg.URLSource, tt.url, tt.source)
			}
		})
	}
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	tokenFile := filepath.Join(stateDir, "gateway.token")
	os.MkdirAll(stateDir, 0o700)
	os.WriteFile(tokenFile, []byte("from-file\n"), 0o600)
	cfg := filepath.Join(dir, "auth.json")
	os.WriteFile(cfg, []byte(`{"gateway":{"auth":{"mode":"password","password":"pw-from-config"}}}`), 0o600)
	cfgNone := filepath.Join(dir, "none.json")
	os.WriteFile(cfgNone, []byte(`{"gateway":{"auth":{"mode":"none"}}}`), 0o600)
	missing := filepath.Join(dir, "missing.json")

	tests := []struct {
		name               string
		env                map[string]string
		g                  globalFlags
		token, password    string
		source, noteSubstr string
	}{
		{"flag", map[string]string{"GATEWAY_TOKEN": "env"}, globalFlags{token: "flag"}, "flag", "", "--token", ""},
		{"flag password", nil, globalFlags{password: "p"}, "", "p", "--password", ""},
		{"env", map[string]string{"GATEWAY_TOKEN": "env", "GATEWAY_CONFIG_PATH": cfg}, globalFlags{}, "env", "", "GATEWAY_TOKEN", ""},
		{"config", map[string]string{"GATEWAY_CONFIG_PATH": cfg}, globalFlags{}, "", "pw-from-config", "gateway.auth.password in " + cfg, ""},
		{"auth none", map[string]string{"GATEWAY_CONFIG_PATH": cfgNone}, globalFlags{}, "", "", "none (gateway.auth.mode is none)", ""},
		{"token file", map[string]string{"GATEWAY_CONFIG_PATH": missing, "GATEWAY_STATE_DIR": stateDir}, globalFlags{}, "from-file", "", "token file " + tokenFile, ""},
		{"nothing", map[string]string{"GATEWAY_CONFIG_PATH": missing, "GATEWAY_STATE_DIR": filepath.Join(dir, "empty")}, globalFlags{}, "", "", "none", "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": dir, "GATEWAY_PORT": "1", "GATEWAY_STATE_DIR": filepath.Join(dir, "empty")}
			for k, v := range tt.env {
				env[k] = v
			}
			tg, err := testApp(env, tt.g).resolve()
			if err != nil {
				t.Fatal(err)
			}
			if tg.Token != tt.token || tg.Password != tt.password || tg.SecretSource != tt.source || !strings.Contains(tg.SecretNote, tt.noteSubstr) {
				t.Errorf("secret %q/%q from %q (note %q); want %q/%q from %q (note ~%q)",
					tg.Token, tg.Password, tg.SecretSource, tg.SecretNote, tt.token, tt.password, tt.source, tt.noteSubstr)
			}
		})
	}
}

// TestResolveSecretOtherScope: a token found only in the other scope's
// state directory is used (an operator reaching the gateway of the other
// scope).
func TestResolveSecretOtherScope(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir, "XDG_STATE_HOME": filepath.Join(dir, "xdgstate"),
		"GATEWAY_CONFIG_PATH": filepath.Join(dir, "missing.json"), "GATEWAY_PORT": "1"}
	getenv := func(k string) string { return env[k] }
	p := config.Profile{}
	user := config.ResolvePaths(p, config.ScopeUser, getenv).TokenFile
	system := config.ResolvePaths(p, config.ScopeSystem, getenv).TokenFile
	if _, err := os.Stat(system); err == nil {
		t.Skipf("SKIPPING: this host has a real system gateway token at %s, which would be found first", system)
	}
	os.MkdirAll(filepath.Dir(user), 0o700)
	os.WriteFile(user, []byte("user-token"), 0o600)
	tg, err := testApp(env, globalFlags{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	if tg.Token != "user-token" || tg.SecretSource != "token file "+user {
		t.Errorf("secret %q from %q, want user-token from token file %s (scope %s)", tg.Token, tg.SecretSource, user, tg.Paths.Scope)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args   []string
		pos    []string
		params string
		json   bool
	}{
		{[]string{"m"}, []string{"m"}, "", false},
		{[]string{"m", "--params", "{}"}, []string{"m"}, "{}", false},
		{[]string{"--params", "{}", "m", "--json"}, []string{"m"}, "{}", true},
		{[]string{"a", "b", "--json"}, []string{"a", "b"}, "", true},
		{[]string{"a", "--", "--json"}, []string{"a", "--json"}, "", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		params := fs.String("params", "", "")
		js := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if strings.Join(pos, ",") != strings.Join(tt.pos, ",") || *params != tt.params || *js != tt.json {
			t.Errorf("%q: pos %q params %q json %v; want %q %q %v", tt.args, pos, *params, *js, tt.pos, tt.params, tt.json)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"m", "--nope"}); exitCode(err) != ExitUsage {
		t.Errorf("unknown flag after a positional: %v (exit %d), want a usage error", err, exitCode(err))
	}
}

func TestExitCodeOfPlainErrors(t *testing.T) {
	if exitCode(nil) != ExitOK || exitCode(errors.New("x")) != ExitProblem || exitCode(flag.ErrHelp) != ExitOK {
		t.Error("exit codes of nil / plain error / ErrHelp")
	}
	if exitCode(silent(withCode(ExitAuth, errors.New("x")))) != ExitAuth {
		t.Error("silent errors keep their code")
	}
}

// TestResolveSecretRemote: a URL that is not loopback gets only a secret
// given for it, never this host's config or token file.
func TestResolveSecretRemote(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	os.MkdirAll(stateDir, 0o700)
	os.WriteFile(filepath.Join(stateDir, "gateway.token"), []byte("local-file-token\n"), 0o600)
	cfg := filepath.Join(dir, "auth.json")
	os.WriteFile(cfg, []byte(`{"gateway":{"auth":{"token":"local-config-token"}}}`), 0o600)
	given := filepath.Join(dir, "remote.token")
	os.WriteFile(given, []byte(" remote-file-token\n"), 0o600)
	empty := filepath.Join(dir, "empty.token")
	os.WriteFile(empty, nil, 0o600)
	remote := globalFlags{url: "wss://gw.example:443"}
	with := func(f func(*globalFlags)) globalFlags { g := remote; f(&g); return g }
	tests := []struct {
		name          string
		env           map[string]string
		g             globalFlags
		token, source string
		wantErr       string
	}{
		{"remote: no local token file", map[string]string{"GATEWAY_CONFIG_PATH": filepath.Join(dir, "missing.json")}, remote, "", "none (this host's token is not sent off loopback)", ""},
		{"remote: no local config token", map[string]string{"GATEWAY_CONFIG_PATH": cfg}, remote, "", "none (this host's token is not sent off loopback)", ""},
		{"remote --url: no GATEWAY_TOKEN", map[string]string{"GATEWAY_TOKEN": "env-token"}, remote, "", "none (this host's token is not sent off loopback)", ""},
		{"remote GATEWAY_URL with GATEWAY_TOKEN", map[string]string{"GATEWAY_URL": "wss://gw.example", "GATEWAY_TOKEN": "env-token"}, globalFlags{}, "env-token", "GATEWAY_TOKEN", ""},
		{"remote with --token", nil, with(func(g *globalFlags) { g.token = "flag-token" }), "flag-token", "--token", ""},
		{"remote with --token-file", nil, with(func(g *globalFlags) { g.tokenFile = given }), "remote-file-token", "--token-file " + given, ""},
		{"insecure ws remote", map[string]string{"GATEWAY_CONFIG_PATH": cfg}, globalFlags{url: "ws://10.0.0.5:1", insecureWS: true}, "", "none (this host's token is not sent off loopback)", ""},
		{"loopback --url keeps the local token", map[string]string{"GATEWAY_CONFIG_PATH": cfg}, globalFlags{url: "ws://127.0.0.1:1"}, "local-config-token", "gateway.auth.token in " + cfg, ""},
		{"--token-file missing", nil, with(func(g *globalFlags) { g.tokenFile = filepath.Join(dir, "nope") }), "", "", "--token-file " + filepath.Join(dir, "nope")},
		{"--token-file empty", nil, with(func(g *globalFlags) { g.tokenFile = empty }), "", "", "the file is empty"},
		{"--token and --token-file", nil, with(func(g *globalFlags) { g.tokenFile, g.token = given, "x" }), "", "", "both given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": dir, "GATEWAY_STATE_DIR": stateDir, "GATEWAY_CONFIG_PATH": filepath.Join(dir, "missing.json")}
			for k, v := range tt.env {
				env[k] = v
			}
			tg := resolveOrUsageErr(t, env, tt.g, tt.wantErr)
			if tg == nil {
				return
			}
			if tg.Token != tt.token || tg.SecretSource != tt.source {
				t.Errorf("secret %q from %q, want %q from %q", tg.Token, tg.SecretSource, tt.token, tt.source)
			}
		})
	}
}
