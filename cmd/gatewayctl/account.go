package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/units"
)

// sysusersConf is the sysusers.d entry for the system service's account,
// the same line the deb/rpm ship in /usr/lib/sysusers.d/gatewayd.conf.
const sysusersConf = "# The account gatewayd.service runs as (User=/Group= gatewayd); written by gatewayctl install.\n" +
	"u " + units.DefaultUser + " - \"gatewayd gateway daemon\" /var/lib/gatewayd -\n"

// sysusersDirs are where an existing entry for the account may live.
var sysusersDirs = []string{"/etc/sysusers.d", "/usr/lib/sysusers.d", "/lib/sysusers.d"}

// ensureServiceAccount makes sure the system service's account exists on
// Linux: when it does not, it writes /etc/sysusers.d/gatewayd.conf (unless
// a package already shipped an entry) and runs systemd-sysusers, the same
// way the packages create it. It reports what it did ("" when nothing).
func ensureServiceAccount(ctx context.Context, root string, dryRun bool) (string, error) {
	if runtime.GOOS != "linux" {
		return "", nil
	}
	if accountExists(root, units.DefaultUser) {
		return "", nil
	}
	conf := ""
	for _, d := range sysusersDirs {
		if p := filepath.Join(root, d, units.DefaultUser+".conf"); fileExists(p) {
			conf = p
			break
		}
	}
	wrote := ""
	if conf == "" {
		conf = filepath.Join(root, "/etc/sysusers.d", units.DefaultUser+".conf")
		wrote = conf
	}
	if dryRun {
		return fmt.Sprintf("would create the service account %q (%s, systemd-sysusers)", units.DefaultUser, conf), nil
	}
	if wrote != "" {
		if err := os.MkdirAll(filepath.Dir(wrote), 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w (run with sudo for --scope system)", filepath.Dir(wrote), err)
		}
		if err := config.WriteFileAtomic(wrote, []byte(sysusersConf), 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w (run with sudo for --scope system)", wrote, err)
		}
	}
	args := []string{conf}
	if root != "" && root != "/" {
		args = []string{"--root", root, conf}
	}
	out, err := exec.CommandContext(ctx, "systemd-sysusers", args...).CombinedOutput()
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", fmt.Errorf("the service account %q does not exist and systemd-sysusers is not installed: create it with `useradd --system --home-dir /var/lib/gatewayd --shell /usr/sbin/nologin %s`, then run install again", units.DefaultUser, units.DefaultUser)
		}
		return "", fmt.Errorf("systemd-sysusers %s: %w: %s", conf, err, out)
	}
	return fmt.Sprintf("created the service account %q (%s)", units.DefaultUser, conf), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// accountExists looks the account up on this host, or in root's
// /etc/passwd when root is set.
func accountExists(root, name string) bool {
	if root == "" || root == "/" {
		_, err := user.Lookup(name)
		return err == nil
	}
	data, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	return err == nil && (strings.HasPrefix(string(data), name+":") || strings.Contains(string(data), "\n"+name+":"))
}
