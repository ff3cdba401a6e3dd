//go:build !linux && !darwin

package service

import (
	"context"
	"fmt"
	"runtime"
)

// Detect returns the service manager of this host for scope. This OS has
// neither systemd nor launchd, so it always returns an error naming the
// alternative.
func Detect(_ context.Context, scope string) (Manager, error) {
	return nil, fmt.Errorf("no supported service manager on %s: run `gatewayd` directly (or under your OS's supervisor); install/doctor support systemd and launchd", runtime.GOOS)
}
