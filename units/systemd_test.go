package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxSystemExposure is the highest `systemd-analyze security` exposure the
// system service may have.
const maxSystemExposure = 1.5

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPING: systemd-analyze not found, so rendered units are NOT linted (CI runs as root and installs the Debian package systemd)")
	}
	return path
}

// runAnalyze runs systemd-analyze in dir with a private HOME and XDG dirs,
// so the host's own unit configuration cannot leak into the result.
func runAnalyze(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	scratch := t.TempDir()
	rt := filepath.Join(scratch, "run")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemdAnalyze(t), args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + scratch,
		"XDG_RUNTIME_DIR=" + rt,
		"XDG_CONFIG_HOME=" + filepath.Join(scratch, "config"),
		"SYSTEMD_LOG_COLOR=0",
		"SYSTEMD_COLORS=0",
		"SYSTEMD_PAGER=",
		"LANG=C.UTF-8",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFiles(t *testing.T, files []File) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// verify runs `systemd-analyze verify`; it exits 0 on unknown keys and bad
// values, so any output at all is a failure. --man=no: the man pages named
// in Documentation= are installed by the package, not on the test host.
func verify(t *testing.T, scope Scope, dir string, names ...string) (string, error) {
	args := []string{"verify", "--man=no"}
	if scope == ScopeUser {
		args = append([]string{"--user"}, args...)
	}
	for _, n := range names {
		args = append(args, "./"+n)
	}
	return runAnalyze(t, dir, args...)
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	systemdAnalyze(t)
	exe, err := os.Executable() // a real executable for ExecStart=
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files, err := Render(goldenParams(tc.p, exe))
			if err != nil {
				t.Fatal(err)
			}
			dir := writeFiles(t, files)
			out, err := verify(t, tc.p.Scope, dir, fileNames(files)...)
			if err != nil || out != "" {
				t.Errorf("systemd-analyze verify must print nothing; err=%v output:\n%s", err, out)
			}
		})
	}
}

// TestSystemdAnalyzeVerifyCatchesMistakes shows the lint above can fail.
func TestSystemdAnalyzeVerifyCatchesMistakes(t *testing.T) {
	systemdAnalyze(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files, err := Render(Params{Scope: ScopeSystem, Port: 18789, ExecPath: exe, Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	files[0].Data = []byte(strings.Replace(string(files[0].Data), "Backlog=1024", "Backlog=1024\nListenStreem=1", 1))
	out, _ := verify(t, ScopeSystem, writeFiles(t, files), fileNames(files)...)
	if !strings.Contains(out, "ListenStreem") {
		t.Errorf("verify did not report the misspelt key; output:\n%s", out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)

func TestSystemdAnalyzeSecurity(t *testing.T) {
	systemdAnalyze(t)
	for _, tc := range goldenCases {
		if tc.p.Scope != ScopeSystem {
			continue // user managers cannot sandbox: user units always score badly
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files, err := Render(goldenParams(tc.p, "/usr/bin/gatewayd"))
			if err != nil {
				t.Fatal(err)
			}
			dir := writeFiles(t, files)
			out, err := runAnalyze(t, dir, "security", "--offline=true", "--no-pager", "./"+files[1].Name)
			if err != nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			m := exposureRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no \"Overall exposure level\" line in:\n%s", out)
			}
			score, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: systemd-analyze security exposure %.1f (limit %.1f)", files[1].Name, score, maxSystemExposure)
			if score > maxSystemExposure {
				t.Errorf("%s exposure %.1f > %.1f; output:\n%s", files[1].Name, score, maxSystemExposure, out)
			}
		})
	}
}
