package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/platform/service"
)

// lingerWait bounds the wait for a user manager that lingering started.
const lingerWait = 30 * time.Second

// lingerSelf turns lingering on for the invoking user (install --linger in
// user scope), unless it is on already.
func (a *app) lingerSelf(ctx context.Context, sf *svcFlags, dryRun bool) error {
	scope, err := sf.scopeOf()
	if err != nil {
		return err
	}
	if scope != service.ScopeUser {
		return usageErr(errors.New("--linger is for user scope: a system-scope gateway runs at boot without it"))
	}
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("--linger: who am I: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if a.lingering(u.Username) {
		return nil
	}
	if dryRun {
		fmt.Fprintf(a.stderr, "gatewayctl: would turn lingering on for %s (logind SetUserLinger)\n", u.Username)
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, lingerWait)
	defer cancel()
	if err := service.EnableLinger(lctx, uid, u.Username); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "gatewayctl: lingering is now on for %s (its user manager runs from boot)\n", u.Username)
	return nil
}

// lingering reports whether logind's linger file for name exists.
func (a *app) lingering(name string) bool {
	dir := a.getenv(EnvLingerDir)
	if dir == "" {
		dir = service.DefaultLingerDir
	}
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// installForUser is `install --user NAME` run by root: lingering on when
// asked, then the install itself re-run as NAME (its uid, gids, home and
// /run/user/UID bus), so the units, config and state are NAME's and NAME's
// own manager loads them.
func (a *app) installForUser(ctx context.Context, sf *svcFlags, name string, linger bool) error {
	if sf.scope != "" && sf.scope != service.ScopeUser {
		return usageErr(fmt.Errorf("--user %s installs a user-scope gateway: drop --scope %s", name, sf.scope))
	}
	if os.Geteuid() != 0 {
		return usageErr(fmt.Errorf("--user %s is for root (installing for another account): as %s, run `gatewayctl install --scope user` yourself", name, name))
	}
	u, err := user.Lookup(name)
	if err != nil {
		return usageErr(fmt.Errorf("--user %s: %w", name, err))
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return usageErr(errors.New("--user root: run `gatewayctl install --scope user` without --user"))
	}
	if linger && !a.lingering(name) {
		lctx, cancel := context.WithTimeout(ctx, lingerWait)
		defer cancel()
		if err := service.EnableLinger(lctx, uid, name); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "gatewayctl: lingering is now on for %s (its user manager runs from boot)\n", name)
	} else if linger {
		lctx, cancel := context.WithTimeout(ctx, lingerWait)
		defer cancel()
		if err := service.WaitUserBus(lctx, uid, name); err != nil {
			return err
		}
	}
	if fi, err := os.Stat(service.UserBusPath(uid)); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("the systemd user manager of %s is not running (no login session, lingering off): `loginctl enable-linger %s` starts it now and at every boot; or add --linger", name, name)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--user %s: find this gatewayctl to run it as %s: %w", name, name, err)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	rt := filepath.Dir(service.UserBusPath(uid))
	env := []string{"HOME=" + u.HomeDir, "USER=" + name, "LOGNAME=" + name,
		"PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + rt, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + service.UserBusPath(uid)}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GATEWAY_") || k == "LANG" || k == "TZ" {
			env = append(env, kv)
		}
	}
	cmd := exec.CommandContext(ctx, exe, userInstallArgs(os.Args[1:])...)
	cmd.Args[0] = "gatewayctl"
	cmd.Env, cmd.Dir = env, u.HomeDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, a.stdout, a.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return silent(withCode(ee.ExitCode(), fmt.Errorf("install as %s: %w", name, err)))
		}
		return fmt.Errorf("run gatewayctl as %s: %w", name, err)
	}
	return nil
}

// userInstallArgs rewrites root's command line for the run as the user:
// without --user and --linger (done), with --scope user.
func userInstallArgs(args []string) []string {
	out := []string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			out = append(out, a)
			continue
		}
		switch name {
		case "user", "scope":
			if !hasVal {
				i++ // its value
			}
			continue
		case "linger":
			continue
		}
		out = append(out, a)
	}
	return append(out, "--scope", service.ScopeUser)
}
