//go:build !darwin

package listen

import (
	"fmt"
	"runtime"
	"syscall"
)

// launchActivateSocket is the stand-in for launch_activate_socket on systems
// without launchd.
func launchActivateSocket(name string) ([]int, error) {
	return nil, fmt.Errorf("launchd activation is only available on macOS, not %s; use systemd:NAME, unix:/path or host:port: %w", runtime.GOOS, syscall.ENOTSUP)
}
