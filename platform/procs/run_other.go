//go:build unix && !linux

package procs

import (
	"context"
	"os/exec"
)

// CommandContext returns a command that runs name with arg in its own
// process group, killed as a whole when ctx ends or Stop is called. On
// this system a process that leaves the group (setsid) outlives the run,
// and lim is not applied (only Linux has the supervisor; see run_linux.go).
func CommandContext(ctx context.Context, lim Limits, name string, arg ...string) *exec.Cmd {
	return groupCommand(ctx, name, arg...)
}

func stop(cmd *exec.Cmd) error { return killGroup(cmd) }
