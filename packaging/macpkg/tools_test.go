package macpkg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/packaging/macpkg"
)

// tool finds name on PATH or skips loudly.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPING: %s not found; install it with `apt-get install %s` (CI runs as root and installs libarchive-tools p7zip-full shellcheck)", name, pkg)
	}
	return p
}

// run runs a command with a time limit and returns stdout+stderr and the
// exit code (-1 when it could not run).
func run(t *testing.T, stdin []byte, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
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
	t.Fatalf("%s %v: %v", name, args, err)
	return "", -1
}

func TestBsdtarReadsPackage(t *testing.T) {
	bsdtar := tool(t, "bsdtar", "libarchive-tools")
	o := realisticOptions(300)
	pkg, _ := build(t, o)

	out, code := run(t, nil, bsdtar, "-tvf", pkg)
	if code != 0 {
		t.Fatalf("bsdtar -tvf: exit %d\n%s", code, out)
	}
	for _, want := range []string{"Distribution", "gatewayd.pkg/Bom", "gatewayd.pkg/Payload", "gatewayd.pkg/Scripts", "gatewayd.pkg/PackageInfo"} {
		if !hasLineEnding(out, " "+want) {
			t.Errorf("bsdtar -tvf does not list %s:\n%s", want, out)
		}
	}

	payload, code := run(t, nil, bsdtar, "-xOf", pkg, "gatewayd.pkg/Payload")
	if code != 0 || len(payload) == 0 {
		t.Fatalf("bsdtar -xOf Payload: exit %d, %d bytes", code, len(payload))
	}
	listing, code := run(t, []byte(payload), bsdtar, "-tvf", "-")
	if code != 0 {
		t.Fatalf("bsdtar -tvf - (payload): exit %d\n%s", code, listing)
	}
	lines := strings.Split(strings.TrimSpace(listing), "\n")
	if !strings.HasSuffix(lines[0], " .") {
		t.Errorf("payload listing starts with %q, want the root \".\"", lines[0])
	}
	for _, f := range o.Files {
		mode := f.Mode.String()
		if f.Mode&fs.ModeSymlink != 0 {
			mode = "l" + f.Mode.Perm().String()[1:]
		}
		suffix := " ./" + f.Path
		if f.Mode&fs.ModeSymlink != 0 {
			suffix += " -> " + string(f.Data)
		}
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, mode+" ") && strings.HasSuffix(l, suffix) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("payload listing has no %q line ending in %q", mode, suffix)
		}
	}

	// Extract the payload with libarchive and compare contents.
	dir := t.TempDir()
	if out, code := run(t, []byte(payload), bsdtar, "-xf", "-", "-C", dir); code != 0 {
		t.Fatalf("bsdtar -xf payload: exit %d\n%s", code, out)
	}
	for _, f := range o.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		switch {
		case f.Mode.IsDir():
			if st, err := os.Stat(p); err != nil || !st.IsDir() || st.Mode().Perm() != f.Mode.Perm() {
				t.Errorf("extracted %s: %v %v, want dir %v", f.Path, st.Mode(), err, f.Mode)
			}
		case f.Mode&fs.ModeSymlink != 0:
			if target, err := os.Readlink(p); err != nil || target != string(f.Data) {
				t.Errorf("extracted link %s -> %q (%v), want %q", f.Path, target, err, f.Data)
			}
		default:
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, f.Data) {
				t.Errorf("extracted %s: %d bytes (%v), want %d identical bytes", f.Path, len(got), err, len(f.Data))
			}
		}
	}

	scripts, _ := run(t, nil, bsdtar, "-xOf", pkg, "gatewayd.pkg/Scripts")
	sl, code := run(t, []byte(scripts), bsdtar, "-tvf", "-")
	if code != 0 || !hasLineEnding(sl, " ./preinstall") || !hasLineEnding(sl, " ./postinstall") || strings.Count(sl, "-rwxr-xr-x ") != 2 {
		t.Errorf("Scripts listing (exit %d) lacks executable ./preinstall and ./postinstall:\n%s", code, sl)
	}
}

func hasLineEnding(out, suffix string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// Test7zVerifiesChecksums checks what 7-Zip does with our SHA-1s. Observed
// with Debian 12's p7zip-full (7-Zip 26.02): `7z t` verifies every
// member's extracted-checksum ("CRC Failed", exit 2) and zlib stream
// ("Data Error", exit 2); a wrong TOC checksum at heap offset 0 is only a
// warning ("CRC Error", "Archives with Warnings", exit 0).
func Test7zVerifiesChecksums(t *testing.T) {
	sevenZ := tool(t, "7z", "p7zip-full")
	_, data := build(t, realisticOptions(40))
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, code := run(t, nil, sevenZ, "t", write("good.pkg", data))
	// "Files: 7": our 6 files (Resources/LICENSE among them) plus 7-Zip's synthetic [TOC].xml.
	if code != 0 || !strings.Contains(out, "Everything is Ok") || !strings.Contains(out, "Type = Xar") || !strings.Contains(out, "Files: 7") {
		t.Fatalf("7z t on a good package: exit %d\n%s", code, out)
	}

	cases := []struct {
		name     string
		at       func() int
		wantCode int
		wantOut  string
	}{
		{"payload byte (stored as-is)", func() int { return heapPos(t, data, "gatewayd.pkg/Payload") }, 2, "CRC Failed : gatewayd.pkg/Payload"},
		{"scripts byte (stored as-is)", func() int { return heapPos(t, data, "gatewayd.pkg/Scripts") }, 2, "CRC Failed : gatewayd.pkg/Scripts"},
		{"bom byte (zlib)", func() int { return heapPos(t, data, "gatewayd.pkg/Bom") }, 2, "gatewayd.pkg/Bom"},
		{"toc checksum", func() int { return heapStart(data) + 7 }, 0, "CRC Error"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(data)
			bad[tc.at()] ^= 0x20
			out, code := run(t, nil, sevenZ, "t", write(fmt.Sprintf("bad%d.pkg", i), bad))
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("7z t after flipping a %s: exit %d, want %d and %q\n%s", tc.name, code, tc.wantCode, tc.wantOut, out)
			}
		})
	}
}

func TestScriptsAreValidPOSIXsh(t *testing.T) {
	pre, post := macpkg.Scripts()
	dir := t.TempDir()
	checks := []struct {
		name string
		body []byte
		want []string
	}{
		{"preinstall", pre, []string{"launchctl bootout \"system/$label\"", `label="org.gatewayd.gateway"`}},
		{"postinstall", post, []string{
			"dscl . -create \"/Users/$svc_user\" UniqueID", "dscl . -create \"/Groups/$svc_group\" PrimaryGroupID",
			`state_dir="/var/lib/gatewayd"`, `log_dir="/var/log/gatewayd"`,
			"launchctl bootstrap system \"$plist\"", "launchctl enable \"system/$label\"",
			`plist="/Library/LaunchDaemons/$label.plist"`,
		}},
	}
	shellcheck, scErr := exec.LookPath("shellcheck")
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.HasPrefix(c.body, []byte("#!/bin/sh\n")) {
				t.Errorf("%s does not start with #!/bin/sh", c.name)
			}
			for _, w := range c.want {
				if !bytes.Contains(c.body, []byte(w)) {
					t.Errorf("%s lacks %q", c.name, w)
				}
			}
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.body, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, code := run(t, nil, "sh", "-n", p); code != 0 {
				t.Errorf("sh -n %s: exit %d\n%s", c.name, code, out)
			}
			if scErr != nil {
				t.Skip("SKIPPING shellcheck: not installed (apt-get install shellcheck; CI installs it)")
			}
			if out, code := run(t, nil, shellcheck, "-s", "sh", p); code != 0 {
				t.Errorf("shellcheck -s sh %s: exit %d\n%s", c.name, code, out)
			}
		})
	}
}

// TestPreinstallWithFakeLaunchctl runs preinstall against a launchctl
// stand-in that records its arguments (the script touches no files, so it
// is safe to run on the host).
func TestPreinstallWithFakeLaunchctl(t *testing.T) {
	pre, _ := macpkg.Scripts()
	cases := []struct {
		name        string
		printExit   int
		bootoutOut  string
		bootoutExit int
		target      string
		wantCalls   string
		wantStderr  bool
	}{
		{"not loaded", 113, "", 0, "/", "print system/org.gatewayd.gateway\n", false},
		{"loaded", 0, "", 0, "/", "print system/org.gatewayd.gateway\nbootout system/org.gatewayd.gateway\n", false},
		{"raced to unloaded", 0, "Boot-out failed: 3: No such process", 3, "/", "print system/org.gatewayd.gateway\nbootout system/org.gatewayd.gateway\n", false},
		{"bootout fails", 0, "Boot-out failed: 1: Operation not permitted", 1, "/", "print system/org.gatewayd.gateway\nbootout system/org.gatewayd.gateway\n", true},
		{"other volume", 0, "", 0, "/Volumes/Other", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "calls")
			fake := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
case "$1" in
print) exit %d ;;
bootout) [ -n %q ] && echo %q >&2; exit %d ;;
esac
exit 99
`, log, tc.printExit, tc.bootoutOut, tc.bootoutOut, tc.bootoutExit)
			if err := os.WriteFile(filepath.Join(dir, "launchctl"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(dir, "preinstall")
			if err := os.WriteFile(script, pre, 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", script, "/tmp/gatewayd.pkg", "/", tc.target)
			cmd.Env = append(os.Environ(), "PATH="+dir+":/usr/bin:/bin")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("preinstall failed: %v\n%s", err, stderr.String())
			}
			calls, _ := os.ReadFile(log)
			if string(calls) != tc.wantCalls {
				t.Errorf("launchctl calls:\n%s\nwant:\n%s", calls, tc.wantCalls)
			}
			if (stderr.Len() > 0) != tc.wantStderr {
				t.Errorf("stderr %q, want output: %v", stderr.String(), tc.wantStderr)
			}
		})
	}
}
