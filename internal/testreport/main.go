// Command testreport reads `go test -json` on stdin and prints what a
// person needs: each failed test's output in full, go test's closing line
// per package (ok / FAIL / no test files), every skipped test with its
// reason, and a final "N passed, N failed, N skipped" line.
//
// Under CI (CI=true, or -ci) a skipped test fails the run unless the
// allowlist (default .ci/skip-allowlist) names it with a reason: a test
// that skips because something is missing on the CI machine hides a
// regression as well as a failure would. Outside CI skips are only listed,
// loudly. The exit status is 1 when a test or package failed (or an
// unallowed skip under CI), 2 for a bad allowlist or input, else 0.
//
// Allowlist lines are `PACKAGE TEST REASON...`; PACKAGE is an import path
// or its part after the module path (daemon/tools), TEST a test name,
// subtests included (TestX/linux), where * matches within one level
// (TestX/*). Blank lines and lines starting with # are ignored.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	ImportPath  string // build-output / build-fail
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

type allowEntry struct {
	pkg, test, reason string
	line              int
	used              bool
}

type skip struct {
	pkg, test, reason string
	allowed           *allowEntry
}

type key struct{ pkg, test string }

type report struct {
	out       io.Writer
	ci        bool
	module    string
	allow     []*allowEntry
	output    map[key][]string // buffered output of running tests and packages ("" test)
	build     map[string][]string
	skips     []skip
	passed    int
	failed    int
	skipped   int
	pkgFailed int
	done      map[string]bool // packages with a closing line
}

func main() {
	allowPath := flag.String("allowlist", ".ci/skip-allowlist", "the allowlist of tests that may skip under CI")
	ci := flag.Bool("ci", os.Getenv("CI") == "true", "fail on skips that are not allowlisted (default: CI=true in the environment)")
	module := flag.String("module", "github.com/gatewayd/gatewayd", "the module path, for allowlist packages given without it")
	flag.Parse()
	allow, err := readAllowlist(*allowPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r := newReport(os.Stdout, *ci, *module, allow)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	os.Exit(r.finish())
}

func newReport(out io.Writer, ci bool, module string, allow []*allowEntry) *report {
	return &report{out: out, ci: ci, module: module, allow: allow,
		output: map[key][]string{}, build: map[string][]string{}, done: map[string]bool{}}
}

func readAllowlist(file string) ([]*allowEntry, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the skip allowlist: %w", err)
	}
	return parseAllowlist(file, string(b))
}

func parseAllowlist(file, text string) ([]*allowEntry, error) {
	var out []*allowEntry
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: %q is not `PACKAGE TEST REASON` (every entry needs a reason)", file, i+1, line)
		}
		if _, err := path.Match(f[1], ""); err != nil {
			return nil, fmt.Errorf("%s:%d: test pattern %q: %w", file, i+1, f[1], err)
		}
		out = append(out, &allowEntry{pkg: f[0], test: f[1], reason: strings.Join(f[2:], " "), line: i + 1})
	}
	return out, nil
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not test2json: go vet or the go command talking; pass it on.
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

func (r *report) event(e event) {
	switch e.Action {
	case "build-output":
		r.build[e.ImportPath] = append(r.build[e.ImportPath], e.Output)
		return
	case "build-fail":
		fmt.Fprint(r.out, strings.Join(r.build[e.ImportPath], ""))
		delete(r.build, e.ImportPath)
		return
	}
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output":
		r.output[k] = append(r.output[k], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.closePackage(e)
			return
		}
		out := r.output[k]
		delete(r.output, k)
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failed++
			fmt.Fprintf(r.out, "=== %s %s\n%s", e.Package, e.Test, strings.Join(out, ""))
		case "skip":
			r.skipped++
			s := skip{pkg: e.Package, test: e.Test, reason: skipReason(out)}
			s.allowed = r.allowed(e.Package, e.Test)
			r.skips = append(r.skips, s)
		}
	}
}

// skipReason is the t.Skip message in a skipped test's output: its lines
// other than go test's own (=== RUN, --- SKIP).
func skipReason(out []string) string {
	var lines []string
	for _, l := range out {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " ")
}

func (r *report) allowed(pkg, test string) *allowEntry {
	for _, a := range r.allow {
		if a.pkg != pkg && r.module+"/"+a.pkg != pkg {
			continue
		}
		if m, _ := path.Match(a.test, test); m {
			a.used = true
			return a
		}
	}
	return nil
}

// closePackage prints go test's closing line of a package, and on failure
// what was printed outside any finished test (a panic, a timeout, the
// output of tests still running).
func (r *report) closePackage(e event) {
	r.done[e.Package] = true
	var rest []string
	var keys []key
	for k := range r.output {
		if k.pkg == e.Package {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].test < keys[j].test })
	for _, k := range keys {
		if e.Action == "fail" {
			rest = append(rest, r.output[k]...)
		}
		delete(r.output, k)
	}
	switch e.Action {
	case "pass":
		fmt.Fprintf(r.out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case "skip":
		fmt.Fprintf(r.out, "?   \t%s\t[no test files]\n", e.Package)
	case "fail":
		r.pkgFailed++
		var kept []string
		for _, l := range rest {
			// go test's own closing lines are printed below, once.
			if t := strings.TrimSpace(l); t == "FAIL" || strings.HasPrefix(t, "FAIL\t"+e.Package) {
				continue
			}
			kept = append(kept, l)
		}
		fmt.Fprint(r.out, strings.Join(kept, ""))
		if e.FailedBuild != "" {
			fmt.Fprintf(r.out, "FAIL\t%s [build failed]\n", e.Package)
		} else {
			fmt.Fprintf(r.out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		}
	}
}

// finish prints the skips and the totals and returns the exit status.
func (r *report) finish() int {
	status := 0
	// Packages whose end never came (go test was killed): what they
	// printed, and a failure.
	var open []string
	for k := range r.output {
		if !r.done[k.pkg] && !slices.Contains(open, k.pkg) {
			open = append(open, k.pkg)
		}
	}
	sort.Strings(open)
	for _, pkg := range open {
		r.closePackage(event{Action: "fail", Package: pkg})
		fmt.Fprintf(r.out, "(go test ended before %s did)\n", pkg)
	}
	if r.failed > 0 || r.pkgFailed > 0 {
		status = 1
	}
	var bad []skip
	if len(r.skips) > 0 {
		fmt.Fprintf(r.out, "\n=== SKIPPED TESTS (%d)\n", len(r.skips))
		for _, s := range r.skips {
			tag := "SKIP"
			switch {
			case s.allowed != nil:
				tag = "SKIP (allowed: " + s.allowed.reason + ")"
			case r.ci:
				tag = "SKIP NOT ALLOWED"
				bad = append(bad, s)
			}
			fmt.Fprintf(r.out, "%s\t%s %s: %s\n", tag, s.pkg, s.test, s.reason)
		}
	}
	for _, a := range r.allow {
		if !a.used {
			fmt.Fprintf(r.out, "note: skip allowlist line %d (%s %s) matched no skipped test; remove it if the cause is gone\n", a.line, a.pkg, a.test)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(r.out, "\nFAIL: %d tests skipped under CI=true without being on the skip allowlist. Fix the cause (install what they need in .ci/setup) or add `PACKAGE TEST REASON` lines to .ci/skip-allowlist.\n", len(bad))
		status = 1
	}
	fmt.Fprintf(r.out, "%d passed, %d failed, %d skipped", r.passed, r.failed, r.skipped)
	if len(bad) > 0 {
		fmt.Fprintf(r.out, " (%d skips not allowed under CI)", len(bad))
	}
	fmt.Fprintln(r.out)
	return status
}
