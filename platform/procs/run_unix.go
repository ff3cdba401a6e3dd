//go:build unix

package procs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// Stop ends a run started from CommandContext: every process of it is
// killed (on Linux its supervisor kills them all and exits; elsewhere the
// process group gets SIGKILL). A run that already ended is not an error.
func Stop(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := stop(cmd)
	if errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// killGroup kills the process group led by cmd's process.
func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// groupCommand is the fallback: the command in its own process group,
// killed as a whole when ctx ends.
func groupCommand(ctx context.Context, name string, arg ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, arg...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	return cmd
}
