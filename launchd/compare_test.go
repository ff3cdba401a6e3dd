package launchd

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/units"
	"howett.net/plist"
)

func short(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		s := f.Kind
		if f.Key != "" {
			s += " " + f.Key
		}
		if f.Expected != "" || f.Actual != "" {
			s += " " + f.Expected + "→" + f.Actual
		}
		out = append(out, s)
	}
	return out
}

// reencode decodes a plist and encodes it again in another format.
func reencode(t *testing.T, data []byte, format int, mutate func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(m)
	}
	out, err := plist.Marshal(m, format)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompare(t *testing.T) {
	exp, err := Render(goldenParams(goldenCases[1].p))
	if err != nil {
		t.Fatal(err)
	}
	sockets := func(m map[string]any) []any { return m["Sockets"].(map[string]any)["Listeners"].([]any) }
	tests := []struct {
		name      string
		installed []byte
		want      []string
	}{
		{"missing", nil, []string{"missing"}},
		{"unchanged", exp, []string{"unchanged"}},
		{"equivalent: binary plist", reencode(t, exp, plist.BinaryFormat, nil), []string{"equivalent"}},
		{"equivalent: other indentation", []byte(strings.ReplaceAll(string(exp), "\t", "  ")), []string{"equivalent"}},
		{
			name:      "changed nested key",
			installed: reencode(t, exp, plist.XMLFormat, func(m map[string]any) { sockets(m)[0].(map[string]any)["SockNodeName"] = "0.0.0.0" }),
			want:      []string{"changed Sockets.Listeners.0.SockNodeName 127.0.0.1→0.0.0.0"},
		},
		{
			name: "changed arguments and env",
			installed: reencode(t, exp, plist.XMLFormat, func(m map[string]any) {
				m["ProgramArguments"] = []any{"/usr/local/bin/gatewayd", "--verbose"}
				m["EnvironmentVariables"].(map[string]any)["GATEWAY_SERVICE_VERSION"] = "1.0.0"
			}),
			want: []string{
				"changed EnvironmentVariables.GATEWAY_SERVICE_VERSION 1.2.3→1.0.0",
				"changed ProgramArguments /usr/local/bin/gatewayd\n--listen\nlaunchd:Listeners→/usr/local/bin/gatewayd\n--verbose",
			},
		},
		{
			// A plist from an older release (Background class): doctor must report the
			// throttled class, not accept it.
			name: "throttled ProcessType",
			installed: reencode(t, exp, plist.XMLFormat, func(m map[string]any) {
				m["ProcessType"] = "Background"
			}),
			want: []string{"changed ProcessType Interactive→Background"},
		},
		{
			name: "added, removed and retyped",
			installed: reencode(t, exp, plist.XMLFormat, func(m map[string]any) {
				delete(m, "ProcessType")
				m["KeepAlive"] = true
				m["EnvironmentVariables"].(map[string]any)["GATEWAY_TOKEN"] = "hunter2"
				m["ThrottleInterval"] = "10"
				m["Sockets"].(map[string]any)["Listeners"] = append(sockets(m), map[string]any{"SockNodeName": "10.0.0.1"})
			}),
			want: []string{
				"removed KeepAlive.SuccessfulExit false→",
				"removed ProcessType Interactive→",
				"changed ThrottleInterval 10→10",
				"added EnvironmentVariables.GATEWAY_TOKEN →hunter2",
				"added KeepAlive →true",
				"added Sockets.Listeners.2.SockNodeName →10.0.0.1",
			},
		},
		{"not a plist", []byte("{{{ nope"), []string{"invalid"}},
		{"not a dictionary", []byte(`<?xml version="1.0"?><plist version="1.0"><array/></plist>`), []string{"invalid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(exp, tc.installed)
			if s := short(got); !reflect.DeepEqual(s, tc.want) {
				t.Errorf("Compare =\n%q\nwant\n%q", s, tc.want)
			}
			for _, f := range got {
				if f.Unit != "org.gatewayd.gateway" {
					t.Errorf("finding %v: Unit = %q, want the label", f, f.Unit)
				}
				if f.Kind == units.KindChanged && f.Key == "ThrottleInterval" && !strings.Contains(f.Detail, "type string, want integer") {
					t.Errorf("retyped value detail = %q", f.Detail)
				}
			}
		})
	}
}
