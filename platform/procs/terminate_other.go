//go:build !unix

package procs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
)

// Terminate is not available on this system.
func Terminate(ctx context.Context, pid int, log *slog.Logger) error {
	return fmt.Errorf("stopping pid %d is not supported on %s; stop the other process yourself", pid, runtime.GOOS)
}
