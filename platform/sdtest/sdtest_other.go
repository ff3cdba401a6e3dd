//go:build !linux

package sdtest

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"testing"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// errNotLinux is returned by every method on systems without systemd.
var errNotLinux = errors.New("sdtest: systemd managers need Linux")

// fixture holds nothing on this OS: no manager ever runs.
type fixture struct{}

// StartUser skips the test: systemd needs Linux.
func StartUser(t testing.TB) *UserManager {
	t.Helper()
	t.Skip("sdtest: SKIPPING, systemd user managers need Linux (CI runs on Linux as root and installs systemd dbus-user-session util-linux)")
	return nil
}

// Env returns nil on this OS.
func (m *UserManager) Env() []string { return nil }

// UnitDir returns "" on this OS.
func (m *UserManager) UnitDir() string { return "" }

// Log returns "" on this OS.
func (m *UserManager) Log() string { return "" }

// Systemctl fails on this OS.
func (m *UserManager) Systemctl(ctx context.Context, args ...string) (string, error) {
	return "", errNotLinux
}

// Exec returns a command that fails on this OS.
func (m *UserManager) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = errNotLinux
	return cmd
}

// DialBus fails on this OS.
func (m *UserManager) DialBus(ctx context.Context) (*godbus.Conn, error) { return nil, errNotLinux }

// Dial fails on this OS.
func (m *UserManager) Dial(ctx context.Context) (*sddbus.Conn, error) { return nil, errNotLinux }

// Stop does nothing on this OS.
func (m *UserManager) Stop() error { return nil }

// GC does nothing on this OS: nothing can have been created.
func GC(log io.Writer) error { return nil }

// BootSystem skips the test: systemd-nspawn needs Linux.
func BootSystem(t testing.TB, opts SystemOptions) *System {
	t.Helper()
	t.Skip("sdtest: SKIPPING, systemd containers need Linux (CI runs on Linux as root and installs systemd systemd-container util-linux)")
	return nil
}

// Exec returns a command that fails on this OS.
func (s *System) Exec(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "false")
	cmd.Err = errNotLinux
	return cmd
}

// CopyIn fails on this OS.
func (s *System) CopyIn(hostPath, containerPath string) error { return errNotLinux }

// Log returns "" on this OS.
func (s *System) Log() string { return "" }

// Reboot fails on this OS.
func (s *System) Reboot(ctx context.Context) error { return errNotLinux }

// Stop does nothing on this OS.
func (s *System) Stop() error { return nil }
