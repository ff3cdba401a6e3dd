// Package pkgtest checks gatewayd's packages as an operator's machine would
// see them: lintian and rpmlint, the maintainer scripts, a dpkg --root
// scratch install, rpm queries, the macOS package with independent readers,
// the hardening score of the shipped unit, and an end-to-end install,
// upgrade and purge in a booted systemd container (platform/sdtest).
//
// TestMain builds the packages once with package pkgbuild (the code behind
// `make package`) into a temporary directory, or uses the ones in
// $GATEWAYD_DIST when set (`make package-test` points it at dist/). Tests
// that need a tool or root skip loudly when it is missing; CI runs as root
// and installs them (.ci/setup). Nothing here touches the host's dpkg or rpm
// database: rpmlint runs with a cpio wrapper that refuses absolute paths,
// and installs happen in a scratch root or a container.
package pkgtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/packaging/pkgbuild"
)

// testVersion is the version of the packages TestMain builds; the upgrade
// test builds testUpgradeVersion, and testStrictVersion from a source whose
// config validation is stricter.
const (
	testVersion        = "1.0.0~test1"
	testUpgradeVersion = "1.0.0"
	testStrictVersion  = "1.0.1"
	testEpoch          = 1735689600 // 2025-01-01T00:00:00Z
)

var (
	srcHash  string // sourceHash() when TestMain built the packages
	repoRoot string
	dist     *pkgbuild.Result
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	defer func() {
		if extractDir != "" {
			os.RemoveAll(extractDir)
		}
	}()
	if d := os.Getenv("GATEWAYD_DIST"); d != "" {
		dist, buildErr = fromDist(d)
		return m.Run()
	}
	srcHash = sourceHash()
	out, err := os.MkdirTemp("", "gatewayd-pkgtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dist, buildErr = pkgbuild.Build(ctx, pkgbuild.Options{RepoRoot: root, OutDir: out, Version: testVersion, Commit: "pkgtest", SourceDateEpoch: testEpoch})
	return m.Run()
}

// fromDist finds the packages `make package` wrote in dir.
func fromDist(dir string) (*pkgbuild.Result, error) {
	debs, _ := filepath.Glob(filepath.Join(dir, "gatewayd_*_*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dir, "gatewayd-*-1.*.rpm"))
	pkgs, _ := filepath.Glob(filepath.Join(dir, "gatewayd-*.pkg"))
	if len(debs) != 1 || len(rpms) != 1 || len(pkgs) != 2 {
		return nil, fmt.Errorf("GATEWAYD_DIST=%s holds %d debs, %d rpms, %d pkgs; want 1, 1, 2 (run make clean package)", dir, len(debs), len(rpms), len(pkgs))
	}
	v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(debs[0]), "gatewayd_"), "_"+debArch()+".deb")
	return &pkgbuild.Result{Version: v, Deb: debs[0], RPM: rpms[0], Pkgs: pkgs}, nil
}

func debArch() string { return runtime.GOARCH } // amd64, arm64 match Debian's names

// packages returns the built packages or fails the test.
func packages(t *testing.T) *pkgbuild.Result {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building the packages failed: %v", buildErr)
	}
	return dist
}

// tool finds a command or skips the test loudly.
func tool(t *testing.T, name, debPkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPING: %s not found; install Debian package %s (CI runs as root and installs it via .ci/setup)", name, debPkg)
	}
	return p
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPING: needs root for %s (CI runs as root)", why)
	}
}

// run runs a command with a time limit; it returns combined output and the
// exit code, and fails the test when the command cannot start.
func run(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	return "", -1
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, code := run(t, env, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

var (
	extractOnce sync.Once
	extractDir  string
	extractErr  error
)

// debTree returns the deb's files unpacked with `dpkg-deb -x` (a plain
// extraction into a directory: no scripts, no database).
func debTree(t *testing.T) string {
	t.Helper()
	res := packages(t)
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	extractOnce.Do(func() {
		extractDir, extractErr = os.MkdirTemp("", "gatewayd-debtree-")
		if extractErr != nil {
			return
		}
		out, err := exec.Command(dpkgDeb, "-x", res.Deb, extractDir).CombinedOutput()
		if err != nil {
			extractErr = fmt.Errorf("dpkg-deb -x: %v: %s", err, out)
		}
	})
	if extractErr != nil {
		t.Fatal(extractErr)
	}
	return extractDir
}

// maintainerScripts are the repository's package scripts (deb and rpm)
// and the macOS ones.
func maintainerScripts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, g := range []string{"packaging/deb/*", "packaging/rpm/*", "packaging/macpkg/scripts/*"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, g))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) != 10 {
		t.Fatalf("found %d maintainer scripts, want 10 (3 deb, 5 rpm, 2 macOS): %v", len(out), out)
	}
	return out
}

// sourceHash hashes every Go source and module file of the checkout, so a
// test can tell whether the source changed between two builds.
func sourceHash() string {
	h := sha256.New()
	_ = filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "dist" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if n := d.Name(); !d.IsDir() && (strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" || strings.Contains(p, "/packaging/") || strings.Contains(p, "/units/templates/")) {
			b, _ := os.ReadFile(p)
			fmt.Fprintf(h, "%s %d\n", p, len(b))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
