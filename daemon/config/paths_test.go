package config

import (
	"path/filepath"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// layout is the Paths with the given config file, state and log
// directories and the paths derived from them (the first case of
// TestResolvePaths spells the derived ones out).
func layout(scope Scope, configPath, stateDir, logDir string) Paths {
	return Paths{Scope: scope, ConfigPath: configPath, ConfigDir: filepath.Dir(configPath), StateDir: stateDir, LogDir: logDir,
		LogFile: filepath.Join(logDir, "gatewayd.jsonl"), TokenFile: filepath.Join(stateDir, "gateway.token")}
}

func TestResolvePaths(t *testing.T) {
	def := Profile{}
	work, _ := NewProfile("work", false)
	tests := []struct {
		name  string
		p     Profile
		scope Scope
		env   map[string]string
		want  Paths
	}{
		{
			name: "user default XDG unset", p: def, scope: ScopeUser,
			env: map[string]string{"HOME": "/home/u"},
			want: Paths{Scope: ScopeUser, ConfigPath: "/home/u/.config/gatewayd/config.json", ConfigDir: "/home/u/.config/gatewayd",
				StateDir: "/home/u/.local/state/gatewayd", LogDir: "/home/u/.local/state/gatewayd/logs",
				LogFile: "/home/u/.local/state/gatewayd/logs/gatewayd.jsonl", TokenFile: "/home/u/.local/state/gatewayd/gateway.token"},
		},
		{
			name: "user named XDG set", p: work, scope: ScopeUser,
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/x/cfg", "XDG_STATE_HOME": "/x/state/"},
			want: layout(ScopeUser, "/x/cfg/gatewayd-work/config.json", "/x/state/gatewayd-work", "/x/state/gatewayd-work/logs"),
		},
		{
			name: "relative XDG ignored", p: def, scope: ScopeUser,
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "rel/cfg", "XDG_STATE_HOME": "rel"},
			want: layout(ScopeUser, "/home/u/.config/gatewayd/config.json", "/home/u/.local/state/gatewayd", "/home/u/.local/state/gatewayd/logs"),
		},
		{
			name: "system named", p: work, scope: ScopeSystem,
			env:  map[string]string{"HOME": "/root", "XDG_CONFIG_HOME": "/ignored"},
			want: layout(ScopeSystem, "/etc/gatewayd-work/config.json", "/var/lib/gatewayd-work", "/var/log/gatewayd-work"),
		},
		{
			name: "systemd directories, first of a list", p: def, scope: ScopeSystem,
			env:  map[string]string{"CONFIGURATION_DIRECTORY": "/etc/gw:/etc/other", "STATE_DIRECTORY": "/var/lib/gw:/var/lib/x", "LOGS_DIRECTORY": "/var/log/gw"},
			want: layout(ScopeSystem, "/etc/gw/config.json", "/var/lib/gw", "/var/log/gw"),
		},
		{
			name: "GATEWAY_ overrides beat systemd and move logs with state", p: def, scope: ScopeUser,
			env: map[string]string{"HOME": "/home/u", "GATEWAY_CONFIG_PATH": "/tmp/c/my.json", "GATEWAY_STATE_DIR": "/tmp/s",
				"CONFIGURATION_DIRECTORY": "/etc/gw", "STATE_DIRECTORY": "/var/lib/gw"},
			want: layout(ScopeUser, "/tmp/c/my.json", "/tmp/s", "/tmp/s/logs"),
		},
		{
			name: "LOGS_DIRECTORY beats GATEWAY_STATE_DIR for logs", p: def, scope: ScopeSystem,
			env:  map[string]string{"GATEWAY_STATE_DIR": "/tmp/s", "LOGS_DIRECTORY": "/var/log/gw"},
			want: layout(ScopeSystem, "/etc/gatewayd/config.json", "/tmp/s", "/var/log/gw"),
		},
		{
			name: "unknown scope is user", p: def, scope: "",
			env:  map[string]string{"HOME": "/h"},
			want: layout(ScopeUser, "/h/.config/gatewayd/config.json", "/h/.local/state/gatewayd", "/h/.local/state/gatewayd/logs"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolvePaths(tt.p, tt.scope, env(tt.env))
			if got != tt.want {
				t.Errorf("ResolvePaths =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestResolvePathsRelativeOverrideIsMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	got := ResolvePaths(Profile{}, ScopeUser, env(map[string]string{"HOME": "/h", "GATEWAY_CONFIG_PATH": "c.json", "GATEWAY_STATE_DIR": "st"}))
	if got.ConfigPath != dir+"/c.json" || got.StateDir != dir+"/st" || got.ConfigDir != dir {
		t.Errorf("relative overrides: got %+v, want paths under %s", got, dir)
	}
}

func TestDefaultScope(t *testing.T) {
	tests := []struct {
		name string
		euid int
		env  map[string]string
		want Scope
	}{
		{"root", 0, nil, ScopeSystem},
		{"plain user", 1000, map[string]string{"HOME": "/home/u"}, ScopeUser},
		{"system unit with User=", 998, map[string]string{"HOME": "/", "STATE_DIRECTORY": "/var/lib/gatewayd"}, ScopeSystem},
		{"system unit, no HOME", 998, map[string]string{"STATE_DIRECTORY": "/var/lib/gatewayd"}, ScopeSystem},
		{"user unit with StateDirectory=", 1000, map[string]string{"HOME": "/home/u", "STATE_DIRECTORY": "/home/u/.local/state/gatewayd"}, ScopeUser},
		{"user unit, XDG_STATE_HOME elsewhere", 1000, map[string]string{"HOME": "/home/u", "XDG_STATE_HOME": "/data/u/state", "STATE_DIRECTORY": "/data/u/state/gatewayd"}, ScopeUser},
		{"look-alike prefix is not inside home", 1000, map[string]string{"HOME": "/home/u", "STATE_DIRECTORY": "/home/u2/gatewayd"}, ScopeSystem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultScope(tt.euid, env(tt.env)); got != tt.want {
				t.Errorf("defaultScope = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultScopeOfThisProcess(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/gatewayd")
	if got := DefaultScope(); got != ScopeSystem {
		t.Errorf("DefaultScope() with STATE_DIRECTORY=/var/lib/gatewayd = %q, want system", got)
	}
}
