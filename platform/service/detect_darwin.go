//go:build darwin

package service

import (
	"context"
	"fmt"
	"os"
)

// Detect returns the service manager of this host for scope: on macOS the
// launchd Manager, running /bin/launchctl for the current user.
func Detect(_ context.Context, scope string) (Manager, error) {
	if scope != ScopeUser && scope != ScopeSystem {
		return nil, fmt.Errorf("invalid service scope %q: use %q or %q", scope, ScopeUser, ScopeSystem)
	}
	return NewLaunchd(scope, os.Getuid(), ExecLaunchctl), nil
}
