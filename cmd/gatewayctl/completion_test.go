package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completeBash sources the generated script in a real bash, simulates the
// command line (the cursor at its end) and returns COMPREPLY.
func completeBash(t *testing.T, script, line string) []string {
	t.Helper()
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	prog := "source " + script + "\n" +
		"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
		"COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n" +
		"_gatewayctl\n" +
		`printf '%s\n' "${COMPREPLY[@]}"` + "\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func writeScript(t *testing.T, shell string) string {
	t.Helper()
	s, err := completionScript(shell, newRootCommand(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gatewayctl."+shell)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("SKIPPING: bash is not installed (CI runs on Debian, which has it)")
	}
	script := writeScript(t, "bash")
	tests := []struct {
		line string
		want string
	}{
		{"gatewayctl ", "health status call logs bench version completion install uninstall start stop restart doctor agent message channels nodes pairing config dashboard"},
		{"gatewayctl he", "health"},
		{"gatewayctl health --w", "--wait"},
		{"gatewayctl health --j", "--json"},
		{"gatewayctl completion ", "bash zsh fish"},
		{"gatewayctl completion z", "zsh"},
		{"gatewayctl --url ws://x:1 ", "health status call logs bench version completion install uninstall start stop restart doctor agent message channels nodes pairing config dashboard"}, // the value is skipped
		{"gatewayctl --json lo", "logs"}, // a bool flag takes no value
		{"gatewayctl health --timeout ", ""},
		{"gatewayctl logs --f", "--follow"},
		{"gatewayctl bench --c", "--conns"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got := strings.Join(completeBash(t, script, tt.line), " ")
			if got != tt.want {
				t.Errorf("complete %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestZshAndFishScriptsParse(t *testing.T) {
	tests := []struct {
		shell string
		check []string // the shell's parse-only invocation
		has   []string
	}{
		{"zsh", []string{"zsh", "-n"}, []string{"#compdef gatewayctl", "compdef _gatewayctl gatewayctl", `'bench:Load-test the gateway`}},
		{"fish", []string{"fish", "--no-execute"}, []string{"complete -c gatewayctl -f", "__fish_seen_subcommand_from logs' -l follow", "-a 'bash zsh fish'"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			script := writeScript(t, tt.shell)
			b, _ := os.ReadFile(script)
			for _, h := range tt.has {
				if !strings.Contains(string(b), h) {
					t.Errorf("%s script lacks %q", tt.shell, h)
				}
			}
			if _, err := exec.LookPath(tt.check[0]); err != nil {
				t.Skipf("SKIPPING the %s syntax check: %s is not installed (CI installs the zsh and fish packages)", tt.shell, tt.check[0])
			}
			out, err := exec.Command(tt.check[0], append(tt.check[1:], script)...).CombinedOutput()
			if err != nil {
				t.Errorf("%s rejects the script: %v\n%s", tt.shell, err, out)
			}
		})
	}
}

func TestCompletionUnknownShell(t *testing.T) {
	if _, err := completionScript("tcsh", newRootCommand(io.Discard, io.Discard)); err == nil || !strings.Contains(err.Error(), "bash, zsh, fish") {
		t.Errorf("tcsh: err = %v, want one listing the shells", err)
	}
}
