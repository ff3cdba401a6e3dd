package sdtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootSystem boots the host image as a container, installs and starts a
// unit in it through CopyIn and Exec, and halts it cleanly, leaving the host
// untouched.
func TestBootSystem(t *testing.T) {
	t.Parallel()
	s := BootSystem(t, SystemOptions{Mask: []string{"postgresql.service", "postgresql@15-main.service"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	out, err := s.Exec(ctx, "systemctl", "is-system-running").CombinedOutput()
	if st := strings.TrimSpace(string(out)); st != "running" && st != "degraded" {
		t.Fatalf("is-system-running in the container = %q (%v)", st, err)
	}
	if st := strings.TrimSpace(string(out)); st == "degraded" {
		failed, _ := s.Exec(ctx, "systemctl", "--failed", "--no-legend").CombinedOutput()
		t.Logf("container booted degraded; failed units:\n%s", failed)
	}

	src := t.TempDir()
	unit := "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'cat /opt/sdtest/greeting > /run/sdtest-hello'\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile(filepath.Join(src, "sdtest-hello.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(src, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "greeting"), []byte("hello from the host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("greeting", filepath.Join(tree, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyIn(filepath.Join(src, "sdtest-hello.service"), "/etc/systemd/system/sdtest-hello.service"); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyIn(tree, "/opt/sdtest"); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyIn(tree, "relative"); err == nil {
		t.Error("CopyIn to a relative container path succeeded")
	}
	for _, args := range [][]string{
		{"systemctl", "daemon-reload"},
		{"systemctl", "start", "sdtest-hello.service"},
	} {
		if out, err := s.Exec(ctx, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v in the container: %v: %s", args, err, out)
		}
	}
	out, err = s.Exec(ctx, "sh", "-c", "cat /run/sdtest-hello; stat -c %a /opt/sdtest/greeting; readlink /opt/sdtest/sub/link; systemctl is-active sdtest-hello.service").CombinedOutput()
	if want := "hello from the host\n600\ngreeting\nactive\n"; err != nil || string(out) != want {
		t.Errorf("in the container: %q (%v), want %q", out, err, want)
	}
	for _, p := range []string{"/etc/systemd/system/sdtest-hello.service", "/opt/sdtest", "/run/sdtest-hello"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host has %s (%v): the container's writes leaked", p, err)
		}
	}

	// Reboot: the same root boots again. Files and enablement persist,
	// /run and every process are new, and an enabled unit starts at boot.
	for _, args := range [][]string{
		{"systemctl", "enable", "sdtest-hello.service"},
		{"touch", "/run/sdtest-before-reboot"},
	} {
		if out, err := s.Exec(ctx, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v in the container: %v: %s", args, err, out)
		}
	}
	oldLeader := s.Leader
	if err := s.Reboot(ctx); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	if s.Leader == oldLeader || !nsPID1(s.Leader) {
		t.Errorf("after the reboot PID 1 is host pid %d (was %d)", s.Leader, oldLeader)
	}
	out, err = s.Exec(ctx, "sh", "-c", "test ! -e /run/sdtest-before-reboot && cat /run/sdtest-hello && systemctl is-active sdtest-hello.service").CombinedOutput()
	if want := "hello from the host\nactive\n"; err != nil || string(out) != want {
		t.Errorf("after the reboot: %q (%v), want a fresh /run and the enabled unit run at boot: %q", out, err, want)
	}

	cgroups, root := s.cgroups, s.Root
	if err := s.Stop(); err != nil {
		t.Fatalf("halt: %v", err)
	}
	if s.waitErr != nil {
		t.Errorf("systemd-nspawn exit after halt: %v, want a clean 0", s.waitErr)
	}
	if !strings.Contains(s.Log(), "System Power Off") && !strings.Contains(s.Log(), "Halt") {
		t.Errorf("console shows no clean shutdown:\n%s", tail(s.Log(), 2000))
	}
	for _, d := range append(cgroups, root) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", d, err)
		}
	}
}
