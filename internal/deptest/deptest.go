// Package deptest pins what a binary may link, after tailscale's
// tstest/deptest: a test names the packages a command must not depend on,
// each with the reason, and fails naming the package, the reason and the
// import chain that pulled it in. It runs `go list -deps -json` for each
// target GOOS, so a dependency that only one platform links is caught on
// any build host.
package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// DepChecker checks the dependencies of one package.
type DepChecker struct {
	// Pkg is the package to check, as go list takes it ("." for the
	// test's own package).
	Pkg string
	// GOOS and GOARCH select the build; "" keeps the host's.
	GOOS   string
	GOARCH string
	// BadDeps maps an import path to the reason it must not be linked. A
	// path ending in "/..." stands for the path and every package under
	// it.
	BadDeps map[string]string
}

// Package is what go list says of one package.
type Package struct {
	ImportPath string
	Imports    []string
}

// Check fails t for every bad dependency of c.Pkg.
func (c DepChecker) Check(t testing.TB) {
	t.Helper()
	pkgs, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if c.GOOS != "" {
		env = append(env, "GOOS="+c.GOOS)
	}
	if c.GOARCH != "" {
		env = append(env, "GOARCH="+c.GOARCH)
	}
	for _, msg := range Violations(pkgs, c.BadDeps) {
		t.Errorf("%s: %s", strings.Join(append(env, "go list -deps"), " "), msg)
	}
}

// list runs go list -deps -json for c.
func (c DepChecker) list() ([]Package, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("deptest needs the go command on PATH (go test puts it there): %w", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json=ImportPath,Imports", c.Pkg)
	cmd.Env = os.Environ()
	if c.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+c.GOOS)
	}
	if c.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+c.GOARCH)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s (GOOS=%s): %v\n%s", c.Pkg, c.GOOS, err, stderr.Bytes())
	}
	return Decode(bytes.NewReader(out))
}

// Decode reads the JSON stream of go list -json. With -deps the package
// named on the command line comes last.
func Decode(r io.Reader) ([]Package, error) {
	var pkgs []Package
	dec := json.NewDecoder(r)
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// Violations lists, for each package in pkgs that bad names, the package,
// the reason and the shortest import chain from the root (the last
// package, as go list -deps orders them) to it. The list is sorted.
func Violations(pkgs []Package, bad map[string]string) []string {
	if len(pkgs) == 0 {
		return nil
	}
	imports := map[string][]string{}
	for _, p := range pkgs {
		imports[p.ImportPath] = p.Imports
	}
	root := pkgs[len(pkgs)-1].ImportPath
	// Breadth first from the root: via[p] is the package that first
	// imported p, so following it back gives a shortest chain.
	via := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports[p] {
			if _, seen := via[q]; !seen {
				via[q] = p
				queue = append(queue, q)
			}
		}
	}
	var out []string
	for _, p := range pkgs {
		why, ok := reason(bad, p.ImportPath)
		if !ok {
			continue
		}
		var chain []string
		for q := p.ImportPath; q != ""; q = via[q] {
			chain = append(chain, q)
		}
		slices.Reverse(chain)
		out = append(out, fmt.Sprintf("%s links %s (%s), imported through %s", root, p.ImportPath, why, strings.Join(chain, " → ")))
	}
	slices.Sort(out)
	return out
}

// reason returns why path is bad: its own entry, or that of a "/..."
// entry above it.
func reason(bad map[string]string, path string) (string, bool) {
	if why, ok := bad[path]; ok {
		return why, true
	}
	for p := path; ; {
		if why, ok := bad[p+"/..."]; ok {
			return why, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return "", false
		}
		p = p[:i]
	}
}

// CheckGOOS checks pkg against bad for each of goos, in parallel subtests
// named after the GOOS.
func CheckGOOS(t *testing.T, pkg string, bad map[string]string, goos ...string) {
	for _, g := range goos {
		t.Run(g, func(t *testing.T) {
			t.Parallel()
			DepChecker{Pkg: pkg, GOOS: g, BadDeps: bad}.Check(t)
		})
	}
}
