//go:build unix

package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Terminate sends SIGTERM to pid and waits until the process is gone or ctx
// is done. It never sends SIGKILL: if the process outlives ctx, the error
// says so and leaves the decision to the operator. A process that is
// already gone is not an error. Terminate refuses pid <= 0 (process groups)
// and its own pid.
func Terminate(ctx context.Context, pid int, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pid <= 0 {
		return fmt.Errorf("refusing to signal pid %d: not a single process", pid)
	}
	if pid == os.Getpid() {
		return fmt.Errorf("refusing to signal pid %d: that is this process", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			log.Debug("process already gone", "pid", pid)
			return nil
		}
		return fmt.Errorf("send SIGTERM to pid %d: %w (run as the process's owner or root)", pid, err)
	}
	log.Info("sent SIGTERM", "pid", pid)
	start := time.Now()
	delay := 5 * time.Millisecond
	for {
		if gone(pid) {
			log.Info("process exited", "pid", pid, "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if gone(pid) {
				return nil
			}
			return fmt.Errorf("pid %d still running %s after SIGTERM; it was not killed: check what it is doing, then stop it yourself (kill -KILL %d) and retry: %w",
				pid, time.Since(start).Round(time.Millisecond), pid, ctx.Err())
		case <-t.C:
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// gone reports whether pid no longer runs. A zombie (exited, not yet
// reaped by its parent) counts as gone: it holds no sockets any more.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // no /proc (macOS): trust kill(pid, 0)
	}
	// The state follows the parenthesised command name, which may itself
	// contain ") ".
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}
