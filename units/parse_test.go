package units

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	sdunit "github.com/coreos/go-systemd/v22/unit"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Section
	}{
		{
			name: "comments blank lines and whitespace",
			in:   "# comment\n; also a comment\n\n[Unit]\n  Description = a  b  \n\t#indented comment\nAfter=x.socket\n",
			want: []Section{{Name: "Unit", Options: []Option{
				{Key: "Description", Value: "a  b", Line: 5},
				{Key: "After", Value: "x.socket", Line: 7},
			}}},
		},
		{
			name: "continuation lines with a comment inside",
			in:   "[Service]\nExecStart=/bin/foo \\\n  --a \\\n# skipped\n  --b\nType=notify\n",
			want: []Section{{Name: "Service", Options: []Option{
				{Key: "ExecStart", Value: "/bin/foo --a --b", Line: 2},
				{Key: "Type", Value: "notify", Line: 6},
			}}},
		},
		{
			name: "backslash on the last line",
			in:   "[Service]\nExecStart=/bin/foo \\",
			want: []Section{{Name: "Service", Options: []Option{{Key: "ExecStart", Value: "/bin/foo", Line: 2}}}},
		},
		{
			name: "empty value and value with equals",
			in:   "\uFEFF[Socket]\nListenStream=\nEnvironment=A=1 \"B=x y\"\n",
			want: []Section{{Name: "Socket", Options: []Option{
				{Key: "ListenStream", Value: "", Line: 2},
				{Key: "Environment", Value: `A=1 "B=x y"`, Line: 3},
			}}},
		},
		{
			name: "repeated section and empty section",
			in:   "[Unit]\nA=1\n[Install]\n[Unit]\nB=2\n",
			want: []Section{
				{Name: "Unit", Options: []Option{{Key: "A", Value: "1", Line: 2}}},
				{Name: "Install"},
				{Name: "Unit", Options: []Option{{Key: "B", Value: "2", Line: 5}}},
			},
		},
		{name: "empty file", in: "", want: nil},
		{name: "CRLF line ends", in: "[Unit]\r\nA = 1\r\n", want: []Section{{Name: "Unit", Options: []Option{{Key: "A", Value: "1", Line: 2}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(u.Sections, tc.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", u.Sections, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"assignment before section", "# c\nA=1\n", 2, "before any [Section]"},
		{"missing equals", "[Unit]\nA=1\nJustAWord\n", 3, "missing '='"},
		{"unterminated header", "[Unit]\n\n[Service\n", 3, "invalid section header"},
		{"empty header", "[]\n", 1, "invalid section header"},
		{"empty key", "[Unit]\n = x\n", 2, "missing key"},
		{"key with space", "[Unit]\nA B=1\n", 2, "invalid key"},
		{"continued line reports its first line", "[Unit]\nfoo \\\nbar\n", 2, "missing '='"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("error = %v, want line %d containing %q", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with the line number", err)
			}
		})
	}
}

// TestParseAgreesWithGoSystemd parses every golden unit with go-systemd's
// independent deserializer and checks both see the same options.
func TestParseAgreesWithGoSystemd(t *testing.T) {
	for _, tc := range goldenCases {
		files, err := Render(goldenParams(tc.p, "/usr/bin/gatewayd"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			u := mustParse(t, f.Data)
			var ours []string
			for _, s := range u.Sections {
				for _, o := range s.Options {
					ours = append(ours, s.Name+"|"+o.Key+"|"+o.Value)
				}
			}
			opts, err := sdunit.DeserializeOptions(bytes.NewReader(f.Data))
			if err != nil {
				t.Fatalf("%s/%s: go-systemd: %v", tc.name, f.Name, err)
			}
			var theirs []string
			for _, o := range opts {
				theirs = append(theirs, o.Section+"|"+o.Name+"|"+o.Value)
			}
			if !reflect.DeepEqual(ours, theirs) {
				t.Errorf("%s/%s: parsers disagree:\nours   %q\ntheirs %q", tc.name, f.Name, ours, theirs)
			}
		}
	}
}

func TestValuesAndGet(t *testing.T) {
	main := mustParse(t, []byte("[Socket]\nListenStream=127.0.0.1:1\nListenStream=[::1]:1\nBacklog=10\n"))
	reset := mustParse(t, []byte("[Socket]\nListenStream=\nListenStream=127.0.0.1:2\nBacklog=20\n"))
	add := mustParse(t, []byte("[Socket]\nListenStream=127.0.0.1:3\n"))
	tests := []struct {
		name    string
		u       *Unit
		listen  []string
		backlog string
	}{
		{"main", main, []string{"127.0.0.1:1", "[::1]:1"}, "10"},
		{"reset", Merge(main, reset), []string{"127.0.0.1:2"}, "20"},
		{"add", Merge(main, add), []string{"127.0.0.1:1", "[::1]:1", "127.0.0.1:3"}, "10"},
		{"reset then add", Merge(main, reset, add), []string{"127.0.0.1:2", "127.0.0.1:3"}, "20"},
		{"nil skipped", Merge(main, nil), []string{"127.0.0.1:1", "[::1]:1"}, "10"},
	}
	for _, tc := range tests {
		if got := tc.u.Values("Socket", "ListenStream"); !reflect.DeepEqual(got, tc.listen) {
			t.Errorf("%s: Values = %v, want %v", tc.name, got, tc.listen)
		}
		if got, _ := tc.u.Get("Socket", "Backlog"); got != tc.backlog {
			t.Errorf("%s: Get(Backlog) = %q, want %q", tc.name, got, tc.backlog)
		}
	}
	if _, ok := main.Get("Service", "Backlog"); ok {
		t.Error("Get found a key in the wrong section")
	}
}

func TestListenStreamsWithDropins(t *testing.T) {
	main := []byte("[Socket]\nListenStream=127.0.0.1:1\n")
	if got := ListenStreams(main, []byte("[Socket]\nListenStream=\nListenStream=0.0.0.0:2\n")); !reflect.DeepEqual(got, []string{"0.0.0.0:2"}) {
		t.Errorf("ListenStreams with reset = %v", got)
	}
	if got := ListenStreams(main, []byte("not a unit")); got != nil {
		t.Errorf("ListenStreams with a broken drop-in = %v, want nil", got)
	}
}

func TestEnvironmentOf(t *testing.T) {
	tests := []struct {
		name    string
		unit    string
		dropins []string
		want    map[string]string
	}{
		{
			name: "several forms",
			unit: "[Service]\nEnvironment=A=1 B=2\nEnvironment=\"C=x y\" 'D=it''s'\nEnvironment=E=a\\ b F=50%%\nEnvironment=bogus\n",
			want: map[string]string{"A": "1", "B": "2", "C": "x y", "D": "its", "E": "a b", "F": "50%"},
		},
		{
			name: "later wins and reset clears",
			unit: "[Service]\nEnvironment=A=1\nEnvironment=B=1\n",
			dropins: []string{
				"[Service]\nEnvironment=A=2\n",
				"[Service]\nEnvironment=\nEnvironment=GATEWAY_TOKEN=secret\n",
			},
			want: map[string]string{"GATEWAY_TOKEN": "secret"},
		},
		{name: "other section ignored", unit: "[Unit]\nEnvironment=A=1\n", want: map[string]string{}},
		{name: "broken unit", unit: "Environment=A=1\n", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ds [][]byte
			for _, d := range tc.dropins {
				ds = append(ds, []byte(d))
			}
			if got := EnvironmentOf([]byte(tc.unit), ds...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EnvironmentOf = %v, want %v", got, tc.want)
			}
		})
	}
}
