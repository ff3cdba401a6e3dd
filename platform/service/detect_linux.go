//go:build linux

package service

import "context"

// Detect returns the service manager of this host for scope: on Linux the
// systemd user or system manager, when one answers on D-Bus. The error
// names the fix when none does.
func Detect(ctx context.Context, scope string) (Manager, error) {
	return NewSystemd(ctx, scope, "")
}
