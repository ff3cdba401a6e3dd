package config

import (
	"strings"
	"testing"
)

func TestNewProfile(t *testing.T) {
	tests := []struct {
		name    string
		dev     bool
		want    string
		isDef   bool
		port    int
		unit    string
		label   string
		wantErr string
	}{
		{name: "", want: "default", isDef: true, port: 18789, unit: "gatewayd", label: "org.gatewayd.gateway"},
		{name: "default", want: "default", isDef: true, port: 18789, unit: "gatewayd", label: "org.gatewayd.gateway"},
		{dev: true, want: "dev", port: 19001, unit: "gatewayd-dev", label: "org.gatewayd.dev"},
		{name: "dev", dev: true, want: "dev", port: 19001, unit: "gatewayd-dev", label: "org.gatewayd.dev"},
		{name: "dev", want: "dev", port: 19001, unit: "gatewayd-dev", label: "org.gatewayd.dev"},
		{name: "work", want: "work", unit: "gatewayd-work", label: "org.gatewayd.work"},
		{name: "0-a", want: "0-a", unit: "gatewayd-0-a", label: "org.gatewayd.0-a"},
		{name: strings.Repeat("a", 31), want: strings.Repeat("a", 31), unit: "gatewayd-" + strings.Repeat("a", 31), label: "org.gatewayd." + strings.Repeat("a", 31)},
		{name: strings.Repeat("a", 32), wantErr: "must match ^[a-z0-9][a-z0-9-]{0,30}$"},
		{name: "Work", wantErr: "must match"},
		{name: "-work", wantErr: "must match"},
		{name: "a_b", wantErr: "must match"},
		{name: "a.b", wantErr: "must match"},
		{name: "../x", wantErr: "must match"},
		{name: "work", dev: true, wantErr: "cannot be combined"},
		{name: "default", dev: true, wantErr: "cannot be combined"},
		{name: "gateway", wantErr: "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name+map[bool]string{true: "+dev"}[tt.dev], func(t *testing.T) {
			p, err := NewProfile(tt.name, tt.dev)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewProfile(%q, %v) error = %v, want one containing %q", tt.name, tt.dev, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewProfile(%q, %v): %v", tt.name, tt.dev, err)
			}
			if p.Name() != tt.want || p.IsDefault() != tt.isDef || p.UnitBase() != tt.unit || p.LaunchdLabel() != tt.label {
				t.Errorf("got name=%q default=%v unit=%q label=%q, want %q %v %q %q",
					p.Name(), p.IsDefault(), p.UnitBase(), p.LaunchdLabel(), tt.want, tt.isDef, tt.unit, tt.label)
			}
			if tt.port != 0 && p.DefaultPort() != tt.port {
				t.Errorf("DefaultPort() = %d, want %d", p.DefaultPort(), tt.port)
			}
		})
	}
}

func TestZeroProfileIsDefault(t *testing.T) {
	var p Profile
	if !p.IsDefault() || p.Name() != "default" || p.DefaultPort() != 18789 {
		t.Fatalf("zero Profile = %q port %d, want the default profile on 18789", p.Name(), p.DefaultPort())
	}
}

func TestNamedProfilePorts(t *testing.T) {
	// Known FNV-1a 32 values pin the derivation so that a refactor cannot
	// silently move every named profile to another port.
	// FNV-1a 32 of "a" is 0xe40c292c.
	p, _ := NewProfile("a", false)
	if want := 20000 + int(0xe40c292c%10000); p.DefaultPort() != want {
		t.Errorf("profile a: port %d, want %d", p.DefaultPort(), want)
	}
	seen := map[int]string{}
	for _, name := range []string{"work", "home", "test", "staging", "prod", "ci", "x", "y", "z", "alpha", "beta", "gamma"} {
		p, err := NewProfile(name, false)
		if err != nil {
			t.Fatal(err)
		}
		port := p.DefaultPort()
		if port < 20000 || port > 29999 || port == 18789 || port == 19001 {
			t.Errorf("profile %s: port %d outside 20000-29999", name, port)
		}
		again, _ := NewProfile(name, false)
		if again.DefaultPort() != port {
			t.Errorf("profile %s: port not stable: %d then %d", name, port, again.DefaultPort())
		}
		if other, dup := seen[port]; dup {
			t.Logf("profiles %s and %s share port %d (possible, but unlikely for this set)", name, other, port)
		}
		seen[port] = name
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct ports for 12 names: the derivation does not spread", len(seen))
	}
}
