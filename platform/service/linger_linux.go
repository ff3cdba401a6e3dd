package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// UserBusPath is where a user's systemd manager bus lives when its
// manager runs: /run/user/UID/bus (dbus-user-session), the bus that
// `systemctl --user` and gatewayctl reach without a session environment.
func UserBusPath(uid int) string { return filepath.Join("/run/user", strconv.Itoa(uid), "bus") }

// EnableLinger turns lingering on for uid through logind
// (org.freedesktop.login1.Manager.SetUserLinger on the system bus), which
// starts the user's manager now and at every boot, then waits (bounded by
// ctx) for its bus at UserBusPath. For another user it needs root; for
// oneself polkit decides.
func EnableLinger(ctx context.Context, uid int, name string) error {
	conn, err := dialBus(ctx, systemBusAddress())
	if err != nil {
		return fmt.Errorf("turn lingering on for %s: cannot use the system bus (%w): run `sudo loginctl enable-linger %s`", name, err, name)
	}
	defer conn.Close()
	obj := conn.Object("org.freedesktop.login1", "/org/freedesktop/login1")
	if err := obj.CallWithContext(ctx, "org.freedesktop.login1.Manager.SetUserLinger", 0, uint32(uid), true, false).Err; err != nil {
		var de godbus.Error
		if errors.As(err, &de) && (de.Name == "org.freedesktop.DBus.Error.AccessDenied" || de.Name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") {
			return fmt.Errorf("turn lingering on for %s: logind refused (%s): run `sudo loginctl enable-linger %s`, or `sudo gatewayctl install --scope user --user %s --linger`", name, de.Name, name, name)
		}
		return fmt.Errorf("turn lingering on for %s: logind SetUserLinger: %w (run `sudo loginctl enable-linger %s`)", name, err, name)
	}
	return WaitUserBus(ctx, uid, name)
}

// WaitUserBus waits, bounded by ctx, for the user manager's bus of uid.
func WaitUserBus(ctx context.Context, uid int, name string) error {
	p := UserBusPath(uid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lingering is on for %s but its user manager's bus %s did not appear (%w): check `systemctl status user@%d.service` (is dbus-user-session installed?)", name, p, ctx.Err(), uid)
		case <-tick.C:
		}
	}
}
