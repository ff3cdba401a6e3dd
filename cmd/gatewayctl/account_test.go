package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/units"
)

// TestEnsureServiceAccount creates the account in a scratch root with
// systemd-sysusers --root, never touching the host's passwd.
func TestEnsureServiceAccount(t *testing.T) {
	if _, err := exec.LookPath("systemd-sysusers"); err != nil {
		t.Skip("SKIPPED LOUDLY: systemd-sysusers not installed (apt-get install systemd; CI installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: systemd-sysusers --root needs root (CI runs as root)")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostPasswd, _ := os.ReadFile("/etc/passwd")
	msg, err := ensureServiceAccount(context.Background(), root, true)
	if err != nil || !strings.Contains(msg, "would create") {
		t.Fatalf("dry run: %q %v", msg, err)
	}
	if fileExists(filepath.Join(root, "etc/sysusers.d", units.DefaultUser+".conf")) {
		t.Fatal("dry run wrote the sysusers entry")
	}
	if _, err := ensureServiceAccount(context.Background(), root, false); err != nil {
		t.Fatal(err)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), units.DefaultUser+":") {
		t.Fatalf("scratch passwd has no %s account: %v\n%s", units.DefaultUser, err, passwd)
	}
	if after, _ := os.ReadFile("/etc/passwd"); string(after) != string(hostPasswd) {
		t.Fatal("the host's /etc/passwd changed")
	}
}
