//go:build linux

package procs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/platform/procs/procstest"
)

func runEscapees(t *testing.T, ctx context.Context, mode string) (map[string]int, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := CommandContext(ctx, Limits{}, "sh", "-c", procstest.Script, "sh", mode)
	cmd.Env = append(os.Environ(), "DIR="+dir)
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return procstest.PIDs(t, dir, time.Second), err
}

// TestRunEndsEveryProcess: when the command exits, its background,
// setsid and orphaned children end too.
func TestRunEndsEveryProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pids, err := runEscapees(t, ctx, "exit")
	if err != nil {
		t.Fatalf("the script failed: %v", err)
	}
	procstest.CheckGone(t, "the run", pids, 0)
}

// TestRunCancelEndsEveryProcess: ending the context kills the command and
// every process it started; Wait reports the kill.
func TestRunCancelEndsEveryProcess(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	cmd := CommandContext(runCtx, Limits{}, "sh", "-c", procstest.Script, "sh", "wait")
	cmd.Env = append(os.Environ(), "DIR="+dir)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := procstest.PIDs(t, dir, 30*time.Second)
	stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Wait after cancel: %v, want the command killed", err)
	}
	procstest.CheckGone(t, "the canceled run", pids, 0)
}

// TestProcessGroupKillMissesSetsid shows what the supervisor is for: the
// old way (a process group, killed at the end) leaves the setsid and
// orphaned children running.
func TestProcessGroupKillMissesSetsid(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", procstest.Script, "sh", "exit")
	cmd.Env = append(os.Environ(), "DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	pids := procstest.PIDs(t, dir, time.Second)
	for _, pid := range pids {
		defer syscall.Kill(pid, syscall.SIGKILL) // ours: started by this test
	}
	if !procstest.Alive(pids["setsid"]) {
		t.Error("the setsid child died with the process group; this test no longer shows the escape")
	}
}

func TestRunLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lim := Limits{CPUSeconds: 7, MemoryBytes: 512 << 20, OpenFiles: 77, Processes: 5000}
	out, err := CommandContext(ctx, lim, "cat", "/proc/self/limits").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{
		{"Max cpu time", "7", "7", "seconds"},
		{"Max address space", "536870912", "536870912", "bytes"},
		{"Max open files", "77", "77", "files"},
		{"Max processes", "5000", "5000", "processes"},
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), strings.Join(want, " ")) {
			t.Errorf("the command's limits lack %q:\n%s", want, out)
		}
	}
	// They bite: a busy loop dies after a second of CPU time.
	cmd := CommandContext(ctx, Limits{CPUSeconds: 1}, "sh", "-c", "while :; do :; done")
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("a busy loop with 1 CPU second: %v, want killed by a signal", err)
	}
	if u := ee.ProcessState.UserTime() + ee.ProcessState.SystemTime(); u > 5*time.Second {
		t.Errorf("it used %s of CPU", u)
	}
	// A limit above gatewayd's own hard limit is an error, not ignored.
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil && nofile.Max < 1<<40 {
		out, err := CommandContext(ctx, Limits{OpenFiles: nofile.Max + 1}, "true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "above gatewayd's own hard limit") {
			t.Errorf("open files above the hard limit: %v %s", err, out)
		}
	}
}

func TestRunStartErrors(t *testing.T) {
	if err := CommandContext(context.Background(), Limits{}, "/nonexistent/tool").Run(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing command: %v, want not-exist from Start", err)
	}
	out, err := CommandContext(context.Background(), Limits{}, "sh", "-c", "echo out; echo err >&2; exit 3").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "out\nerr\n" {
		t.Errorf("exit status and output through the supervisor: %v %q", err, out)
	}
}
