package units

import (
	"reflect"
	"strings"
	"testing"
)

func renderPair(t *testing.T) (sock, svc []byte) {
	t.Helper()
	files, err := Render(Params{Scope: ScopeSystem, Port: 18789, ExecPath: "/usr/bin/gatewayd", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	return files[0].Data, files[1].Data
}

// short reduces findings to "kind section.key expected→actual path" strings.
func short(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		s := f.Kind
		if f.Section != "" {
			s += " " + f.Section + "." + f.Key
		}
		if f.Expected != "" || f.Actual != "" {
			s += " " + f.Expected + "→" + f.Actual
		}
		if f.Path != "" {
			s += " @" + f.Path
		}
		out = append(out, s)
	}
	return out
}

func TestCompareUnitFile(t *testing.T) {
	sock, svc := renderPair(t)
	replace := func(data []byte, old, new string) []byte {
		t.Helper()
		if !strings.Contains(string(data), old) {
			t.Fatalf("fixture: %q not in unit", old)
		}
		return []byte(strings.Replace(string(data), old, new, 1))
	}
	tests := []struct {
		name      string
		expected  []byte
		installed []byte
		want      []string
	}{
		{"missing", sock, nil, []string{"missing"}},
		{"unchanged", sock, sock, []string{"unchanged"}},
		{
			name:      "equivalent: comments, whitespace, key and section order",
			expected:  []byte("# v1\n[Unit]\nDescription=x\n\n[Socket]\nListenStream=127.0.0.1:1\nListenStream=[::1]:1\nBacklog=5\n"),
			installed: []byte("; v2\n[Socket]\nBacklog = 5\nListenStream=127.0.0.1:1\n# note\nListenStream= [::1]:1\n[Unit]\n  Description=x\n"),
			want:      []string{"equivalent"},
		},
		{"equivalent: header from another version", svc, replace(svc, "gatewayctl 1.2.3", "gatewayctl 1.2.2"), []string{"equivalent"}},
		{
			name: "changed single value", expected: svc, installed: replace(svc, "Restart=on-failure", "Restart=always"),
			want: []string{"changed Service.Restart on-failure→always"},
		},
		{
			name: "changed marker env", expected: svc, installed: replace(svc, "GATEWAY_SERVICE_VERSION=1.2.3", "GATEWAY_SERVICE_VERSION=1.0.0"),
			want: []string{"changed Service.Environment GATEWAY_SERVICE_MARKER=gatewayd\nGATEWAY_SERVICE_KIND=gateway\nGATEWAY_SERVICE_VERSION=1.2.3\nGATEWAY_PROFILE=default→" +
				"GATEWAY_SERVICE_MARKER=gatewayd\nGATEWAY_SERVICE_KIND=gateway\nGATEWAY_SERVICE_VERSION=1.0.0\nGATEWAY_PROFILE=default"},
		},
		{
			name: "list order matters", expected: sock,
			installed: replace(replace(sock, "ListenStream=127.0.0.1:18789", "ListenStream=TMP"), "ListenStream=[::1]:18789", "ListenStream=127.0.0.1:18789"),
			want:      []string{"changed Socket.ListenStream 127.0.0.1:18789\n[::1]:18789→TMP\n127.0.0.1:18789"},
		},
		{
			name: "added and removed", expected: svc,
			installed: replace(replace(svc, "ProtectHome=yes\n", ""), "[Service]\n", "[Service]\nEnvironment=GATEWAY_TOKEN=hunter2\nNice=5\n"),
			want: []string{
				"changed Service.Environment GATEWAY_SERVICE_MARKER=gatewayd\nGATEWAY_SERVICE_KIND=gateway\nGATEWAY_SERVICE_VERSION=1.2.3\nGATEWAY_PROFILE=default→" +
					"GATEWAY_TOKEN=hunter2\nGATEWAY_SERVICE_MARKER=gatewayd\nGATEWAY_SERVICE_KIND=gateway\nGATEWAY_SERVICE_VERSION=1.2.3\nGATEWAY_PROFILE=default",
				"removed Service.ProtectHome yes→",
				"added Service.Nice →5",
			},
		},
		{
			name: "empty assignment differs from absent", expected: svc, installed: replace(svc, "CapabilityBoundingSet=\n", ""),
			want: []string{"removed Service.CapabilityBoundingSet"},
		},
		{
			name: "single-valued key repeated: last wins", expected: svc, installed: replace(svc, "Type=notify\n", "Type=notify\nType=simple\n"),
			want: []string{"changed Service.Type notify→simple"},
		},
		{
			name: "unparsable installed unit", expected: svc, installed: []byte("[Service\n"),
			want: []string{"invalid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare("u", tc.expected, tc.installed, nil)
			if s := short(got); !reflect.DeepEqual(s, tc.want) {
				t.Errorf("Compare =\n%q\nwant\n%q", s, tc.want)
			}
			for _, f := range got {
				if f.Unit != "u" {
					t.Errorf("finding %v has Unit %q, want u", f, f.Unit)
				}
			}
		})
	}
}

func TestCompareDropins(t *testing.T) {
	sock, svc := renderPair(t)
	tests := []struct {
		name      string
		expected  []byte
		installed []byte
		dropins   map[string][]byte
		want      []string
	}{
		{
			name: "extended with a new key only", expected: svc, installed: svc,
			dropins: map[string][]byte{"/etc/systemd/system/gatewayd.service.d/nice.conf": []byte("[Service]\nNice=5\n")},
			want:    []string{"unchanged", "extended @/etc/systemd/system/gatewayd.service.d/nice.conf"},
		},
		{
			name: "overridden", expected: svc, installed: svc,
			dropins: map[string][]byte{"/etc/systemd/system/gatewayd.service.d/restart.conf": []byte("[Service]\nRestart=always\n")},
			want: []string{"unchanged", "extended @/etc/systemd/system/gatewayd.service.d/restart.conf",
				"overridden Service.Restart on-failure→always @/etc/systemd/system/gatewayd.service.d/restart.conf"},
		},
		{
			name: "listen leak", expected: sock, installed: sock,
			dropins: map[string][]byte{"/etc/systemd/system/gatewayd.socket.d/port.conf": []byte("[Socket]\nListenStream=0.0.0.0:9999\n")},
			want: []string{"unchanged", "extended @/etc/systemd/system/gatewayd.socket.d/port.conf",
				"listen-added-without-reset Socket.ListenStream →0.0.0.0:9999 @/etc/systemd/system/gatewayd.socket.d/port.conf",
				"overridden Socket.ListenStream 127.0.0.1:18789\n[::1]:18789→127.0.0.1:18789\n[::1]:18789\n0.0.0.0:9999 @/etc/systemd/system/gatewayd.socket.d/port.conf"},
		},
		{
			name: "listen replaced properly is no leak", expected: sock, installed: sock,
			dropins: map[string][]byte{"/etc/systemd/system/gatewayd.socket.d/port.conf": []byte("[Socket]\nListenStream=\nListenStream=0.0.0.0:9999\n")},
			want: []string{"unchanged", "extended @/etc/systemd/system/gatewayd.socket.d/port.conf",
				"overridden Socket.ListenStream 127.0.0.1:18789\n[::1]:18789→0.0.0.0:9999 @/etc/systemd/system/gatewayd.socket.d/port.conf"},
		},
		{
			name: "drop-ins in systemd order; the last one to touch a key is blamed", expected: svc, installed: svc,
			dropins: map[string][]byte{
				"/run/systemd/system/gatewayd.service.d/20-b.conf": []byte("[Service]\nRestart=no\n"),
				"/etc/systemd/system/gatewayd.service.d/10-a.conf": []byte("[Service]\nRestart=always\n"),
			},
			want: []string{"unchanged",
				"extended @/etc/systemd/system/gatewayd.service.d/10-a.conf",
				"extended @/run/systemd/system/gatewayd.service.d/20-b.conf",
				"overridden Service.Restart on-failure→no @/run/systemd/system/gatewayd.service.d/20-b.conf"},
		},
		{
			name: "broken drop-in", expected: svc, installed: svc,
			dropins: map[string][]byte{"/etc/x.d/bad.conf": []byte("Restart=always\n")},
			want:    []string{"unchanged", "invalid @/etc/x.d/bad.conf"},
		},
		{
			name: "drop-in on a missing unit", expected: svc, installed: nil,
			dropins: map[string][]byte{"/etc/x.d/a.conf": []byte("[Service]\nRestart=always\n")},
			want: []string{"missing", "extended @/etc/x.d/a.conf",
				"overridden Service.Restart on-failure→always @/etc/x.d/a.conf"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare("u", tc.expected, tc.installed, tc.dropins)
			if s := short(got); !reflect.DeepEqual(s, tc.want) {
				t.Errorf("Compare =\n%q\nwant\n%q", s, tc.want)
			}
		})
	}
}

func TestCompareFindingDetails(t *testing.T) {
	sock, _ := renderPair(t)
	got := Compare("gatewayd.socket", sock, sock, map[string][]byte{"/etc/p.conf": []byte("[Unit]\nX=1\n[Socket]\n\nListenStream=[::]:1\n")})
	var leak *Finding
	for i := range got {
		if got[i].Kind == KindListenLeak {
			leak = &got[i]
		}
	}
	if leak == nil {
		t.Fatalf("no leak finding in %v", got)
	}
	if !strings.Contains(leak.Detail, "line 5") || !strings.Contains(leak.Detail, "empty `ListenStream=`") {
		t.Errorf("leak detail %q should name the line and the fix", leak.Detail)
	}
	if got[1].Detail != "drop-in sets Unit.X, Socket.ListenStream" {
		t.Errorf("extended detail = %q", got[1].Detail)
	}
	if s := leak.String(); !strings.HasPrefix(s, "listen-added-without-reset gatewayd.socket [Socket] ListenStream") {
		t.Errorf("String() = %q", s)
	}
}

func TestSymlinks(t *testing.T) {
	tests := []struct {
		target string
		mask   bool
		kind   string
	}{
		{"/dev/null", true, KindMasked},
		{"/dev/../dev/null", true, KindMasked},
		{"/opt/gw/gatewayd.service", false, KindRedirected},
		{"", false, KindRedirected},
	}
	for _, tc := range tests {
		if got := IsMaskTarget(tc.target); got != tc.mask {
			t.Errorf("IsMaskTarget(%q) = %v, want %v", tc.target, got, tc.mask)
		}
		f := SymlinkFinding("gatewayd.service", "/etc/systemd/system/gatewayd.service", tc.target)
		if f.Kind != tc.kind || f.Actual != tc.target || f.Path != "/etc/systemd/system/gatewayd.service" {
			t.Errorf("SymlinkFinding(%q) = %+v, want kind %s", tc.target, f, tc.kind)
		}
	}
}

func TestDropinOrder(t *testing.T) {
	got := DropinOrder(map[string][]byte{
		"/run/systemd/system/u.d/20-b.conf": nil,
		"/etc/systemd/system/u.d/10-a.conf": nil,
		"/run/systemd/system/u.d/10-a.conf": nil,
	})
	want := []string{"/etc/systemd/system/u.d/10-a.conf", "/run/systemd/system/u.d/10-a.conf", "/run/systemd/system/u.d/20-b.conf"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DropinOrder = %q, want %q", got, want)
	}
}
