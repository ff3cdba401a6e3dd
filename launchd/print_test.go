package launchd

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The print-*.txt fixtures are modelled on `launchctl print` output of
// macOS 13 and 14 (tab-indented "key = value" lines and nested "{ }"
// blocks); they were written by hand, not captured on a Mac.
func TestParsePrint(t *testing.T) {
	intp := func(n int) *int { return &n }
	tests := []struct {
		file string
		want PrintInfo
	}{
		{
			file: "print-running.txt",
			want: PrintInfo{
				Loaded: true, State: "running", PID: 48213,
				Path:      "/Users/alice/Library/LaunchAgents/org.gatewayd.gateway.plist",
				Program:   "/usr/local/bin/gatewayd",
				Arguments: []string{"/usr/local/bin/gatewayd", "--listen", "launchd:Listeners"},
				Sockets:   []string{"Listeners"},
			},
		},
		{
			file: "print-not-running.txt",
			want: PrintInfo{
				Loaded: true, State: "not running", LastExitCode: intp(78),
				Path:      "/Library/LaunchDaemons/org.gatewayd.dev.plist",
				Program:   "/usr/local/bin/gatewayd",
				Arguments: []string{"/usr/local/bin/gatewayd", "--profile", "dev", "--listen", "launchd:Listeners"},
				Sockets:   []string{"Listeners"},
			},
		},
		{
			file: "print-waiting-sockets.txt",
			want: PrintInfo{
				Loaded: true, State: "not running",
				Path:      "/Users/bob/Library/LaunchAgents/org.gatewayd.work.plist",
				Program:   "/opt/homebrew/bin/gatewayd",
				Arguments: []string{"/opt/homebrew/bin/gatewayd", "--profile", "work", "--listen", "launchd:Listeners"},
				Sockets:   []string{"Listeners", "Metrics"},
			},
		},
		{file: "print-not-found.txt", want: PrintInfo{}},
		{file: "print-garbage.txt", want: PrintInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := ParsePrint(string(raw))
			if got.Raw != string(raw) {
				t.Error("Raw is not the input")
			}
			got.Raw = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParsePrint =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParsePrintLenient(t *testing.T) {
	intp := func(n int) *int { return &n }
	tests := []struct {
		name string
		in   string
		want PrintInfo
	}{
		{"empty", "", PrintInfo{}},
		{"fields without the job block", "state = running\npid = 12\n", PrintInfo{}},
		{"CRLF and exit code 0", "system/x = {\r\n\tstate = not running\r\n\tlast exit code = 0\r\n}\r\n", PrintInfo{Loaded: true, State: "not running", LastExitCode: intp(0)}},
		{"unreadable pid and exit code", "gui/1/x = {\n\tstate = running\n\tpid = ?\n\tlast exit code = -\n}\n", PrintInfo{Loaded: true, State: "running"}},
		{"truncated output", "gui/1/x = {\n\tpath = /p.plist\n\targuments = {\n\t\t/bin/a\n", PrintInfo{Loaded: true, Path: "/p.plist", Arguments: []string{"/bin/a"}}},
		{"nested state is not the job's", "gui/1/x = {\n\tendpoints = {\n\t\t\"e\" = {\n\t\t\tstate = active\n\t\t}\n\t}\n\tpath = /p\n}\n", PrintInfo{Loaded: true, Path: "/p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParsePrint(tc.in)
			got.Raw = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParsePrint =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
