package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `package sample

import "testing"

func TestPasses(t *testing.T) {}

func TestFails(t *testing.T) {
	t.Log("the details of the failure")
	t.Fatal("boom")
}

func TestSkipsDarwin(t *testing.T) { t.Skip("SKIPPING: needs macOS") }

func TestSkipsMissingTool(t *testing.T) { t.Skip("SKIPPING: frobnicate is not installed (apt-get install frobnicate)") }

func TestSub(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skip("SKIPPING: sub b") })
}
`

// goTestJSON runs the real go test -json on a package with a passing, a
// failing and skipping tests.
func goTestJSON(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"go.mod": "module example.com/sample\n\ngo 1.22\n", "sample_test.go": sample, "empty/doc.go": "package empty\n"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("go test: %v", err)
	}
	return out
}

func TestReport(t *testing.T) {
	js := goTestJSON(t)
	allow, err := parseAllowlist("allow", "# comment\n\nexample.com/sample TestSkipsDarwin  darwin-only, CI is Linux\nexample.com/sample TestSub/* subtests of a fixture\nexample.com/gone TestGone the cause went away\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range []bool{false, true} {
		var out bytes.Buffer
		r := newReport(&out, ci, "example.com", allow)
		if err := r.read(bytes.NewReader(js)); err != nil {
			t.Fatal(err)
		}
		code := r.finish()
		s := out.String()
		for _, want := range []string{
			"the details of the failure", "boom", // a failure in full
			"FAIL\texample.com/sample\t", // go test's closing lines
			"?   \texample.com/sample/empty\t[no test files]",
			"SKIP (allowed: darwin-only, CI is Linux)\texample.com/sample TestSkipsDarwin: sample_test.go:12: SKIPPING: needs macOS",
			"example.com/sample TestSkipsMissingTool: sample_test.go:14: SKIPPING: frobnicate is not installed (apt-get install frobnicate)",
			"SKIP (allowed: subtests of a fixture)\texample.com/sample TestSub/b: sample_test.go:18: SKIPPING: sub b",
			"note: skip allowlist line 5 (example.com/gone TestGone) matched no skipped test",
			"3 passed, 1 failed, 3 skipped",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("CI=%v: the report lacks %q:\n%s", ci, want, s)
			}
		}
		if strings.Contains(s, "TestPasses") {
			t.Errorf("CI=%v: a passing test's output is printed:\n%s", ci, s)
		}
		notAllowed := strings.Contains(s, "SKIP NOT ALLOWED\texample.com/sample TestSkipsMissingTool") && strings.Contains(s, "(1 skips not allowed under CI)")
		if notAllowed != ci || code != 1 {
			t.Errorf("CI=%v: exit %d, unallowed skip reported %v:\n%s", ci, code, notAllowed, s)
		}
	}
}

// TestReportSkipAloneFailsUnderCI: a run whose only problem is a skip
// passes outside CI and fails under it.
func TestReportSkipAloneFailsUnderCI(t *testing.T) {
	js := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:5: SKIPPING: no zsh\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Elapsed":0.5}
`
	for ci, want := range map[bool]int{false: 0, true: 1} {
		var out bytes.Buffer
		r := newReport(&out, ci, "m", nil)
		if err := r.read(strings.NewReader(js)); err != nil {
			t.Fatal(err)
		}
		if code := r.finish(); code != want || !strings.Contains(out.String(), "ok  \tp\t0.500s") || !strings.Contains(out.String(), "p TestA: a_test.go:5: SKIPPING: no zsh") {
			t.Errorf("CI=%v: exit %d, want %d:\n%s", ci, code, want, out.String())
		}
	}
	if _, err := parseAllowlist("f", "p TestA\n"); err == nil || !strings.Contains(err.Error(), "f:1: ") {
		t.Errorf("an entry without a reason: %v, want an error naming the line", err)
	}
}

// TestReportCutShort: a stream that ends inside a package (go test was
// killed) fails and shows what the running test printed.
func TestReportCutShort(t *testing.T) {
	js := `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    hang_test.go:9: still waiting for the server\n"}
`
	var out bytes.Buffer
	r := newReport(&out, false, "m", nil)
	if err := r.read(strings.NewReader(js)); err != nil {
		t.Fatal(err)
	}
	if code := r.finish(); code != 1 || !strings.Contains(out.String(), "still waiting for the server") || !strings.Contains(out.String(), "FAIL\tp\t") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}
