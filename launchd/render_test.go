package launchd

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/gatewayd/gatewayd/daemon/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current code")

var goldenCases = []struct {
	name string
	p    Params
}{
	{"default-user", Params{Scope: ScopeUser, Port: 18789, HomeDir: "/Users/alice"}},
	{"default-system", Params{Profile: "default", Scope: ScopeSystem, Port: 18789}},
	{"work-user", Params{Profile: "work", Scope: ScopeUser, ListenAddrs: []string{"192.0.2.10:18800"}, HomeDir: "/Users/bob/", OnDemand: true}},
	{"work-system", Params{Profile: "work", Scope: ScopeSystem, ListenAddrs: []string{"0.0.0.0:18800", "[::]:18800", "/var/run/gatewayd-work.sock"}, User: "gw", Group: "staff"}},
}

func goldenParams(p Params) Params {
	p.ExecPath = "/usr/local/bin/gatewayd"
	p.Version = "1.2.3"
	return p
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(goldenParams(tc.p))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			path := filepath.Join("testdata", tc.name+".plist.golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (regenerate with `go test ./launchd -update`): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plist differs from %s (regenerate with `go test ./launchd -update` if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			again, _ := Render(goldenParams(tc.p))
			if !bytes.Equal(got, again) {
				t.Error("Render is not deterministic")
			}
		})
	}
}

// decoded mirrors the keys launchd reads, decoded independently of the
// encoder's struct.
type decoded struct {
	Label                string
	ProgramArguments     []string
	Sockets              map[string][]map[string]string
	RunAtLoad            *bool
	KeepAlive            map[string]bool
	ProcessType          string
	ThrottleInterval     int
	ExitTimeOut          int
	WorkingDirectory     string
	StandardOutPath      string
	StandardErrorPath    string
	EnvironmentVariables map[string]string
	UserName, GroupName  string
}

func TestRenderRoundTrip(t *testing.T) {
	tests := []struct {
		p         Params
		label     string
		args      []string
		sockets   []map[string]string
		logDir    string
		sysEnv    map[string]string
		workDir   string
		user      string
		keepAlive map[string]bool
		path      string
	}{
		{
			p: goldenCases[0].p, label: "org.gatewayd.gateway",
			args: []string{"/usr/local/bin/gatewayd", "--listen", "launchd:Listeners"},
			sockets: []map[string]string{
				{"SockNodeName": "127.0.0.1", "SockServiceName": "18789", "SockType": "stream", "SockFamily": "IPv4"},
				{"SockNodeName": "::1", "SockServiceName": "18789", "SockType": "stream", "SockFamily": "IPv6"},
			},
			logDir: "/Users/alice/Library/Logs/gatewayd", workDir: "/Users/alice",
			keepAlive: map[string]bool{"SuccessfulExit": false},
			path:      "/Users/alice/Library/LaunchAgents/org.gatewayd.gateway.plist",
		},
		{
			p: goldenCases[1].p, label: "org.gatewayd.gateway",
			args: []string{"/usr/local/bin/gatewayd", "--listen", "launchd:Listeners"},
			sockets: []map[string]string{
				{"SockNodeName": "127.0.0.1", "SockServiceName": "18789", "SockType": "stream", "SockFamily": "IPv4"},
				{"SockNodeName": "::1", "SockServiceName": "18789", "SockType": "stream", "SockFamily": "IPv6"},
			},
			logDir: "/var/log/gatewayd", workDir: "/", user: "_gatewayd",
			sysEnv:    map[string]string{"GATEWAY_CONFIG_PATH": "/etc/gatewayd/config.json", "GATEWAY_STATE_DIR": "/var/lib/gatewayd", "LOGS_DIRECTORY": "/var/log/gatewayd"},
			keepAlive: map[string]bool{"SuccessfulExit": false},
			path:      "/Library/LaunchDaemons/org.gatewayd.gateway.plist",
		},
		{
			p: goldenCases[2].p, label: "org.gatewayd.work",
			args: []string{"/usr/local/bin/gatewayd", "--profile", "work", "--listen", "launchd:Listeners"},
			sockets: []map[string]string{
				{"SockNodeName": "192.0.2.10", "SockServiceName": "18800", "SockType": "stream", "SockFamily": "IPv4"},
			},
			logDir: "/Users/bob/Library/Logs/gatewayd-work", workDir: "/Users/bob",
			path: "/Users/bob/Library/LaunchAgents/org.gatewayd.work.plist",
		},
		{
			p: goldenCases[3].p, label: "org.gatewayd.work",
			args: []string{"/usr/local/bin/gatewayd", "--profile", "work", "--listen", "launchd:Listeners"},
			sockets: []map[string]string{
				{"SockNodeName": "0.0.0.0", "SockServiceName": "18800", "SockType": "stream", "SockFamily": "IPv4"},
				{"SockNodeName": "::", "SockServiceName": "18800", "SockType": "stream", "SockFamily": "IPv6"},
				{"SockPathName": "/var/run/gatewayd-work.sock", "SockType": "stream", "SockFamily": "Unix"},
			},
			logDir: "/var/log/gatewayd-work", workDir: "/", user: "gw",
			sysEnv:    map[string]string{"GATEWAY_CONFIG_PATH": "/etc/gatewayd-work/config.json", "GATEWAY_STATE_DIR": "/var/lib/gatewayd-work", "LOGS_DIRECTORY": "/var/log/gatewayd-work"},
			keepAlive: map[string]bool{"SuccessfulExit": false},
			path:      "/Library/LaunchDaemons/org.gatewayd.work.plist",
		},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			data, err := Render(goldenParams(tc.p))
			if err != nil {
				t.Fatal(err)
			}
			var d decoded
			format, err := plist.Unmarshal(data, &d)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if format != plist.XMLFormat {
				t.Errorf("format = %d, want XML", format)
			}
			if d.Label != tc.label || d.Label != Label(tc.p.Profile) {
				t.Errorf("Label = %q, want %q", d.Label, tc.label)
			}
			if !reflect.DeepEqual(d.ProgramArguments, tc.args) {
				t.Errorf("ProgramArguments = %q, want %q", d.ProgramArguments, tc.args)
			}
			if len(d.Sockets) != 1 || !reflect.DeepEqual(d.Sockets[SocketKey], tc.sockets) {
				t.Errorf("Sockets = %v, want {Listeners: %v}", d.Sockets, tc.sockets)
			}
			// Always on unless OnDemand: started when loaded (boot or
			// login), kept alive after failures.
			if d.RunAtLoad == nil || *d.RunAtLoad != !tc.p.OnDemand {
				t.Errorf("RunAtLoad = %v, want an explicit %v", d.RunAtLoad, !tc.p.OnDemand)
			}
			if !reflect.DeepEqual(d.KeepAlive, tc.keepAlive) {
				t.Errorf("KeepAlive = %v, want %v", d.KeepAlive, tc.keepAlive)
			}
			// Interactive: launchd must neither throttle the gateway
			// (Background, Standard) nor tie its limits to XPC (Adaptive).
			if d.ProcessType != "Interactive" || d.ThrottleInterval != ThrottleInterval || d.ExitTimeOut != ExitTimeOut {
				t.Errorf("ProcessType/ThrottleInterval/ExitTimeOut = %q/%d/%d", d.ProcessType, d.ThrottleInterval, d.ExitTimeOut)
			}
			if d.WorkingDirectory != tc.workDir {
				t.Errorf("WorkingDirectory = %q, want %q", d.WorkingDirectory, tc.workDir)
			}
			if d.StandardOutPath != tc.logDir+"/stdout.log" || d.StandardErrorPath != tc.logDir+"/stderr.log" || LogDir(tc.p) != tc.logDir {
				t.Errorf("log paths = %q, %q (LogDir %q), want under %q", d.StandardOutPath, d.StandardErrorPath, LogDir(tc.p), tc.logDir)
			}
			if d.UserName != tc.user {
				t.Errorf("UserName = %q, want %q", d.UserName, tc.user)
			}
			profile := tc.p.Profile
			if profile == "" {
				profile = "default"
			}
			wantEnv := map[string]string{
				"GATEWAY_SERVICE_MARKER": "gatewayd", "GATEWAY_SERVICE_KIND": "gateway",
				"GATEWAY_SERVICE_VERSION": "1.2.3", "GATEWAY_PROFILE": profile,
			}
			for k, v := range tc.sysEnv {
				wantEnv[k] = v
			}
			if !reflect.DeepEqual(d.EnvironmentVariables, wantEnv) {
				t.Errorf("EnvironmentVariables = %v, want %v", d.EnvironmentVariables, wantEnv)
			}
			if got := PlistPath(tc.p); got != tc.path {
				t.Errorf("PlistPath = %q, want %q", got, tc.path)
			}
		})
	}
}

// TestRenderPythonPlistlib reads every golden plist with Python's plistlib,
// a second, independent plist parser.
func TestRenderPythonPlistlib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPING: python3 not found, so plists are NOT checked by an independent parser (CI installs the Debian package python3)")
	}
	dir := t.TempDir()
	args := []string{"-c", `import plistlib,sys
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        d = plistlib.load(f)
    print(d["Label"], d["Sockets"]["Listeners"][0]["SockType"], d["RunAtLoad"], " ".join(d["ProgramArguments"][1:]))`}
	var want strings.Builder
	for _, tc := range goldenCases {
		data, err := Render(goldenParams(tc.p))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, tc.name+".plist")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
		runAtLoad := map[bool]string{true: "False", false: "True"}[tc.p.OnDemand]
		want.WriteString(Label(tc.p.Profile) + " stream " + runAtLoad + " ")
		if tc.p.Profile != "" && tc.p.Profile != "default" {
			want.WriteString("--profile " + tc.p.Profile + " ")
		}
		want.WriteString("--listen launchd:Listeners\n")
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	if string(out) != want.String() {
		t.Errorf("plistlib read\n%s\nwant\n%s", out, want.String())
	}
}

func TestRenderErrors(t *testing.T) {
	ok := Params{Scope: ScopeUser, Port: 18789, ExecPath: "/usr/local/bin/gatewayd", Version: "1.0", HomeDir: "/Users/a"}
	tests := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"bad scope", func(p *Params) { p.Scope = "agent" }, `invalid launchd scope "agent"`},
		{"bad profile", func(p *Params) { p.Profile = "../x" }, "invalid profile name"},
		{"label collision", func(p *Params) { p.Profile = "gateway" }, "would be the default profile's"},
		{"relative exec", func(p *Params) { p.ExecPath = "bin/gatewayd" }, "pass an absolute path"},
		{"no version", func(p *Params) { p.Version = "" }, "invalid version"},
		{"no home", func(p *Params) { p.HomeDir = "" }, "invalid home directory"},
		{"no port", func(p *Params) { p.Port = 0 }, "set ListenAddrs or a Port"},
		{"host name", func(p *Params) { p.ListenAddrs = []string{"localhost:1"} }, `invalid listen address "localhost:1"`},
		{"zero port", func(p *Params) { p.ListenAddrs = []string{"[::1]:0"} }, "must not be 0"},
		{"bad daemon user", func(p *Params) { p.Scope = ScopeSystem; p.User = "a b" }, `invalid user or group name "a b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.modify(&p)
			_, err := Render(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Render(ok); err != nil {
		t.Fatalf("baseline params fail: %v", err)
	}
}

func TestNamesAndDomains(t *testing.T) {
	tests := []struct {
		profile, label string
	}{
		{"", "org.gatewayd.gateway"}, {"default", "org.gatewayd.gateway"}, {"dev", "org.gatewayd.dev"},
	}
	for _, tc := range tests {
		if got := Label(tc.profile); got != tc.label {
			t.Errorf("Label(%q) = %q, want %q", tc.profile, got, tc.label)
		}
	}
	if got := Domain(ScopeUser, 501); got != "gui/501" {
		t.Errorf("Domain(user, 501) = %q", got)
	}
	if got := Domain(ScopeSystem, 501); got != "system" {
		t.Errorf("Domain(system, 501) = %q", got)
	}
	if got := ServiceTarget(ScopeUser, 502, "dev"); got != "gui/502/org.gatewayd.dev" {
		t.Errorf("ServiceTarget = %q", got)
	}
}

// TestSystemPaths checks that a LaunchDaemon's gatewayd, which runs as an
// unprivileged account and so resolves the user scope by default, ends up
// on the same config, state and log paths as `gatewayctl --scope system`
// (package config's system scope), and that its launchd log files sit in
// that log directory; a LaunchAgent gets no path overrides.
func TestSystemPaths(t *testing.T) {
	for _, profile := range []string{"", "work"} {
		t.Run("profile "+profile, func(t *testing.T) {
			p := goldenParams(Params{Profile: profile, Scope: ScopeSystem, Port: 18789})
			data, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			var d decoded
			if _, err := plist.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			prof, err := config.NewProfile(profile, false)
			if err != nil {
				t.Fatal(err)
			}
			// What gatewayd resolves as _gatewayd: user scope, with only
			// the plist's environment and the account's home.
			env := map[string]string{"HOME": "/var/empty"}
			for k, v := range d.EnvironmentVariables {
				env[k] = v
			}
			got := config.ResolvePaths(prof, config.ScopeUser, func(k string) string { return env[k] })
			want := config.ResolvePaths(prof, config.ScopeSystem, func(string) string { return "" })
			if got.ConfigPath != want.ConfigPath || got.StateDir != want.StateDir || got.LogDir != want.LogDir {
				t.Errorf("the LaunchDaemon's gatewayd resolves config %s, state %s, logs %s; gatewayctl --scope system expects %s, %s, %s",
					got.ConfigPath, got.StateDir, got.LogDir, want.ConfigPath, want.StateDir, want.LogDir)
			}
			if filepath.Dir(d.StandardErrorPath) != want.LogDir || LogDir(p) != want.LogDir {
				t.Errorf("StandardErrorPath %s, LogDir %s: want them in %s", d.StandardErrorPath, LogDir(p), want.LogDir)
			}
			user, err := Render(goldenParams(Params{Profile: profile, Scope: ScopeUser, Port: 18789, HomeDir: "/Users/a"}))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"GATEWAY_CONFIG_PATH", "GATEWAY_STATE_DIR", "LOGS_DIRECTORY"} {
				if bytes.Contains(user, []byte("<key>"+k+"</key>")) {
					t.Errorf("the LaunchAgent sets %s: a user's gateway must resolve its own XDG paths", k)
				}
			}
		})
	}
}
