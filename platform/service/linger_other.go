//go:build !linux

package service

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
)

// UserBusPath is the systemd user bus path; systemd is Linux-only.
func UserBusPath(uid int) string { return filepath.Join("/run/user", strconv.Itoa(uid), "bus") }

// EnableLinger is systemd-logind's; there is no lingering elsewhere.
func EnableLinger(ctx context.Context, uid int, name string) error {
	return errors.New("lingering is a systemd-logind feature: not available on this system")
}

// WaitUserBus has nothing to wait for without systemd.
func WaitUserBus(ctx context.Context, uid int, name string) error {
	return errors.New("no systemd user manager on this system")
}
