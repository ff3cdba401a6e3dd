package units

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current templates")

// goldenCases are the profile × scope combinations pinned by golden files.
var goldenCases = []struct {
	name string
	p    Params
}{
	{"default-user", Params{Scope: ScopeUser, Port: 18789}},
	{"default-system", Params{Profile: "default", Scope: ScopeSystem, Port: 18789}},
	{"dev-user", Params{Profile: "dev", Scope: ScopeUser, Port: 19001}},
	{"dev-system", Params{Profile: "dev", Scope: ScopeSystem, Port: 19001}},
	{"work-user", Params{Profile: "work", Scope: ScopeUser, ListenAddrs: []string{"192.0.2.10:18800"}, WatchdogSec: 60}},
	{"work-system", Params{Profile: "work", Scope: ScopeSystem, ListenAddrs: []string{"0.0.0.0:18800", "[::]:18800"}, User: "gw", Group: "gwgroup", WatchdogSec: -1}},
}

func goldenParams(p Params, execPath string) Params {
	p.ExecPath = execPath
	p.Version = "1.2.3"
	return p
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Render(goldenParams(tc.p, "/usr/bin/gatewayd"))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if len(files) != 2 || !strings.HasSuffix(files[0].Name, ".socket") || !strings.HasSuffix(files[1].Name, ".service") {
				t.Fatalf("Render returned %d files %v, want socket then service", len(files), fileNames(files))
			}
			for _, f := range files {
				path := filepath.Join("testdata", tc.name+"."+f.Name+".golden")
				if *update {
					if err := os.WriteFile(path, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("read golden file (regenerate with `go test ./units -update`): %v", err)
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s (regenerate with `go test ./units -update` if intended):\n--- got\n%s\n--- want\n%s", f.Name, path, f.Data, want)
				}
			}
		})
	}
}

func fileNames(fs []File) []string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return n
}

func TestRenderDeterministic(t *testing.T) {
	p := goldenParams(goldenCases[3].p, "/usr/bin/gatewayd")
	a, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("render %d differs from the first", i)
		}
	}
}

// TestRenderContent checks, through the package's own parser, the facts the
// rest of the system relies on.
func TestRenderContent(t *testing.T) {
	tests := []struct {
		name        string
		p           Params
		base        string
		listen      []string
		args        string
		watchdog    string // "" = absent
		user        string // "" = absent
		editCommand string
		freeBind    bool
	}{
		{
			name: "default user", p: Params{Scope: ScopeUser, Port: 18789},
			base: "gatewayd", listen: []string{"127.0.0.1:18789", "[::1]:18789"},
			args: "/opt/gw/bin/gatewayd --listen systemd:gatewayd", watchdog: "30s",
			editCommand: "`systemctl --user edit gatewayd.service`",
		},
		{
			name: "dev system", p: Params{Profile: "dev", Scope: ScopeSystem, Port: 19001, WatchdogSec: 45},
			base: "gatewayd-dev", listen: []string{"127.0.0.1:19001", "[::1]:19001"},
			args: "/opt/gw/bin/gatewayd --profile dev --listen systemd:gatewayd-dev", watchdog: "45s",
			user: "gatewayd", editCommand: "`systemctl edit gatewayd-dev.service`",
		},
		{
			name: "lan address", p: Params{Profile: "lan", Scope: ScopeSystem, ListenAddrs: []string{"10.1.2.3:8080"}, WatchdogSec: -1, User: "svc"},
			base: "gatewayd-lan", listen: []string{"10.1.2.3:8080"},
			args: "/opt/gw/bin/gatewayd --profile lan --listen systemd:gatewayd-lan",
			user: "svc", editCommand: "`systemctl edit gatewayd-lan.service`", freeBind: true,
		},
		{
			name: "explicit ipv6 wildcard", p: Params{Profile: "all", Scope: ScopeUser, Port: 1, ListenAddrs: []string{"0.0.0.0:9000", "[::]:9000"}},
			base: "gatewayd-all", listen: []string{"0.0.0.0:9000", "[::]:9000"},
			args: "/opt/gw/bin/gatewayd --profile all --listen systemd:gatewayd-all", watchdog: "30s",
			editCommand: "`systemctl --user edit gatewayd-all.service`",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Render(goldenParams(tc.p, "/opt/gw/bin/gatewayd"))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			sock, svc := mustParse(t, files[0].Data), mustParse(t, files[1].Data)
			if files[0].Name != tc.base+".socket" || files[1].Name != tc.base+".service" {
				t.Errorf("names = %v, want %s.socket, %s.service", fileNames(files), tc.base, tc.base)
			}
			if got := ListenStreams(files[0].Data); !reflect.DeepEqual(got, tc.listen) {
				t.Errorf("ListenStream = %v, want %v", got, tc.listen)
			}
			wantGet(t, sock, "Socket", "FileDescriptorName", tc.base)
			wantGet(t, sock, "Socket", "BindIPv6Only", "ipv6-only")
			wantGet(t, sock, "Install", "WantedBy", "sockets.target")
			if _, ok := sock.Get("Socket", "FreeBind"); ok != tc.freeBind {
				t.Errorf("FreeBind= present = %v, want %v", ok, tc.freeBind)
			}
			wantGet(t, svc, "Service", "ExecStart", tc.args)
			wantGet(t, svc, "Service", "Type", "notify")
			wantGet(t, svc, "Service", "Restart", "on-failure")
			wantGet(t, svc, "Service", "RestartPreventExitStatus", "78")
			wantGet(t, svc, "Service", "ExecReload", "/bin/kill -HUP $MAINPID")
			wantGet(t, svc, "Unit", "Requires", tc.base+".socket")
			wantGet(t, svc, "Unit", "After", tc.base+".socket")
			// Always on: the service starts with the manager's boot target
			// and enabling the socket enables it; it has no Also= back, so
			// disabling only the service leaves the socket (on demand).
			wantGet(t, sock, "Install", "Also", tc.base+".service")
			bootTarget := map[Scope]string{ScopeSystem: "multi-user.target", ScopeUser: "default.target"}[tc.p.Scope]
			wantGet(t, svc, "Install", "WantedBy", bootTarget)
			if _, ok := svc.Get("Install", "Also"); ok {
				t.Error("service has Also=; disabling the service alone must leave the socket enabled")
			}
			wantGet(t, svc, "Service", "WatchdogSec", tc.watchdog)
			wantGet(t, svc, "Service", "User", tc.user)
			if tc.user != "" {
				for _, k := range []string{"StateDirectory", "LogsDirectory", "ConfigurationDirectory"} {
					wantGet(t, svc, "Service", k, tc.base)
				}
			}
			env := EnvironmentOf(files[1].Data)
			wantEnv := map[string]string{
				"GATEWAY_SERVICE_MARKER":  "gatewayd",
				"GATEWAY_SERVICE_KIND":    "gateway",
				"GATEWAY_SERVICE_VERSION": "1.2.3",
				"GATEWAY_PROFILE":         ProfileName(tc.p.Profile),
			}
			if !reflect.DeepEqual(env, wantEnv) {
				t.Errorf("Environment = %v, want %v", env, wantEnv)
			}
			for _, f := range files {
				first := string(f.Data[:bytes.IndexByte(f.Data, '\n')])
				wantFirst := "# Generated by gatewayctl 1.2.3 for profile " + ProfileName(tc.p.Profile) + " (" + string(tc.p.Scope) + " scope)."
				if first != wantFirst {
					t.Errorf("%s header = %q, want %q", f.Name, first, wantFirst)
				}
			}
			if !bytes.Contains(files[1].Data, []byte(tc.editCommand)) {
				t.Errorf("service header does not mention %s", tc.editCommand)
			}
		})
	}
}

func TestRenderQuotesExecPath(t *testing.T) {
	files, err := Render(Params{Profile: "x", Scope: ScopeUser, Port: 1, ExecPath: `/opt/my apps/50%/gate"d$`, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	svc := mustParse(t, files[1].Data)
	wantGet(t, svc, "Service", "ExecStart", `"/opt/my apps/50%%/gate\"d$$" --profile x --listen systemd:gatewayd-x`)
}

func TestRenderErrors(t *testing.T) {
	ok := Params{Scope: ScopeSystem, Port: 18789, ExecPath: "/usr/bin/gatewayd", Version: "1.0.0"}
	tests := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"bad scope", func(p *Params) { p.Scope = "global" }, `invalid unit scope "global"`},
		{"empty scope", func(p *Params) { p.Scope = "" }, `invalid unit scope ""`},
		{"bad profile", func(p *Params) { p.Profile = "a/b" }, `invalid profile name "a/b"`},
		{"profile with space", func(p *Params) { p.Profile = "my profile" }, `invalid profile name`},
		{"relative exec", func(p *Params) { p.ExecPath = "gatewayd" }, "pass an absolute path"},
		{"empty version", func(p *Params) { p.Version = "" }, "invalid version"},
		{"version with space", func(p *Params) { p.Version = "1 2" }, "invalid version"},
		{"no port", func(p *Params) { p.Port = 0 }, "set ListenAddrs or a Port"},
		{"port too large", func(p *Params) { p.Port = 70000 }, "set ListenAddrs or a Port"},
		{"host name", func(p *Params) { p.ListenAddrs = []string{"localhost:80"} }, `invalid listen address "localhost:80"`},
		{"no port in addr", func(p *Params) { p.ListenAddrs = []string{"127.0.0.1"} }, `invalid listen address "127.0.0.1"`},
		{"zero port in addr", func(p *Params) { p.ListenAddrs = []string{"127.0.0.1:0"} }, "must not be 0"},
		{"zoned", func(p *Params) { p.ListenAddrs = []string{"[fe80::1%eth0]:80"} }, "zoned"},
		{"unix path with space", func(p *Params) { p.ListenAddrs = []string{"/run/a b.sock"} }, "invalid unix socket path"},
		{"bad user", func(p *Params) { p.User = "root;rm" }, `invalid user or group name "root;rm"`},
		{"bad group", func(p *Params) { p.Group = "1abc def" }, `invalid user or group name`},
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

func TestNames(t *testing.T) {
	tests := []struct{ profile, base string }{
		{"", "gatewayd"}, {"default", "gatewayd"}, {"dev", "gatewayd-dev"}, {"work_2", "gatewayd-work_2"},
	}
	for _, tc := range tests {
		if got := UnitBase(tc.profile); got != tc.base {
			t.Errorf("UnitBase(%q) = %q, want %q", tc.profile, got, tc.base)
		}
		if got := ServiceName(tc.profile); got != tc.base+".service" {
			t.Errorf("ServiceName(%q) = %q", tc.profile, got)
		}
		if got := SocketName(tc.profile); got != tc.base+".socket" {
			t.Errorf("SocketName(%q) = %q", tc.profile, got)
		}
	}
}

func mustParse(t *testing.T, data []byte) *Unit {
	t.Helper()
	u, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return u
}

// wantGet checks a single-valued option; want "" means "not set".
func wantGet(t *testing.T, u *Unit, section, key, want string) {
	t.Helper()
	got, ok := u.Get(section, key)
	switch {
	case want == "" && ok:
		t.Errorf("[%s] %s = %q, want it unset", section, key, got)
	case want != "" && got != want:
		t.Errorf("[%s] %s = %q (set: %v), want %q", section, key, got, ok, want)
	}
}

func TestAccounts(t *testing.T) {
	u, g, err := Accounts("", "", "svc")
	if err != nil || u != "svc" || g != "svc" {
		t.Errorf(`Accounts("", "", "svc") = %q, %q, %v; want the default for both`, u, g, err)
	}
	u, g, err = Accounts("_gw", "staff.x-1", "svc")
	if err != nil || u != "_gw" || g != "staff.x-1" {
		t.Errorf("Accounts(_gw, staff.x-1) = %q, %q, %v", u, g, err)
	}
	for _, bad := range []string{"a b", "1abc", "root;rm", strings.Repeat("a", 33)} {
		if _, _, err := Accounts("ok", bad, "svc"); err == nil || err.Error() != fmt.Sprintf("invalid user or group name %q", bad) {
			t.Errorf("Accounts(ok, %q) error = %v", bad, err)
		}
	}
}
