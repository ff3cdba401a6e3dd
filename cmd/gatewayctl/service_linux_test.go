//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/platform/sdtest"
)

// TestServiceScripts runs testdata/service/*.txtar: gatewayctl install,
// status, doctor, start/stop/restart and uninstall against a REAL systemd
// user manager (platform/sdtest), one per script, and the real gatewayd.
//
// Each script gets: the manager's HOME/XDG/D-Bus environment; $PORT and
// $PORT2, free ports; $UNITDIR, where user units go; GATEWAY_STATE_DIR ($WORK/gwstate),
// set in the manager's environment too, so gatewayd and gatewayctl share
// the token and the log, and GATEWAY_CONFIG_PATH ($WORK/config.json) (gatewayd runs as root there and would otherwise
// use the host's /var/lib); GATEWAY_LINGER_DIR with lingering on for the
// manager's user (root). Commands: `systemctl ARGS` runs `systemctl --user`
// inside the manager's namespaces; `exitcode N PROG ARGS` checks an exit
// status exactly.
func TestServiceScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root to run a private systemd user manager (CI runs as root and installs systemd dbus-user-session)")
	}
	gatewayd := buildGatewayd(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/service",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			tb, ok := env.T().(testing.TB)
			if !ok {
				return errors.New("testscript's T is not a testing.TB")
			}
			um := sdtest.StartUser(tb)
			port, err := gatewaydtest.FreePort()
			if err != nil {
				return err
			}
			port2, err := gatewaydtest.FreePort()
			if err != nil {
				return err
			}
			work := env.WorkDir
			state := filepath.Join(work, "gwstate")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if out, err := um.Systemctl(ctx, "set-environment", "GATEWAY_STATE_DIR="+state); err != nil {
				return fmt.Errorf("set the manager's environment: %v: %s", err, out)
			}
			linger := filepath.Join(work, "linger")
			if err := os.MkdirAll(linger, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(linger, "root"), nil, 0o644); err != nil {
				return err
			}
			for _, kv := range um.Env() {
				// Keep testscript's PATH: it holds the gatewayctl command.
				if k, v, _ := strings.Cut(kv, "="); k != "PATH" {
					env.Setenv(k, v)
				}
			}
			env.Setenv("PATH", filepath.Dir(gatewayd)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("PORT", strconv.Itoa(port))
			env.Setenv("PORT2", strconv.Itoa(port2))
			env.Setenv("GATEWAY_PORT", "")
			env.Setenv("GATEWAY_STATE_DIR", state)
			// gatewayctl health (root: system-scope paths) and gatewayctl
			// --scope user must read the same config file.
			env.Setenv("GATEWAY_CONFIG_PATH", filepath.Join(work, "config.json"))
			env.Setenv("GATEWAY_LINGER_DIR", linger)
			env.Setenv("UNITDIR", um.UnitDir())
			env.Setenv("GATEWAYD", gatewayd)
			env.Setenv("TZ", "UTC")
			env.Values["um"] = um
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitcode,
			// systemctl ARGS runs `systemctl --user ARGS` in the manager.
			"systemctl": func(ts *testscript.TestScript, neg bool, args []string) {
				um := ts.Value("um").(*sdtest.UserManager)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				out, err := um.Systemctl(ctx, args...)
				ts.Logf("systemctl --user %s:\n%s", strings.Join(args, " "), out)
				if (err != nil) != neg {
					ts.Fatalf("systemctl --user %s: %v", strings.Join(args, " "), err)
				}
			},
			// waitprop UNIT PROP=VALUE polls `systemctl --user show` (20 s).
			"waitprop": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: waitprop UNIT PROP=VALUE")
				}
				um := ts.Value("um").(*sdtest.UserManager)
				prop, _, _ := strings.Cut(args[1], "=")
				deadline := time.Now().Add(20 * time.Second)
				var out string
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					out, _ = um.Systemctl(ctx, "show", "-p", prop, args[0])
					cancel()
					if strings.TrimSpace(out) == args[1] {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				ts.Fatalf("%s: %s never became %s (last %q)", args[0], prop, args[1], strings.TrimSpace(out))
			},
			// listen ADDR listens on ADDR from the test process (another
			// program on the port) until the script ends.
			"listen": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: listen HOST:PORT")
				}
				ln, err := net.Listen("tcp", args[0])
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
			},
			// replace FILE OLD NEW edits a file the way an operator would.
			"replace": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 3 {
					ts.Fatalf("usage: replace FILE OLD NEW")
				}
				p := ts.MkAbs(args[0])
				data, err := os.ReadFile(p)
				ts.Check(err)
				old, repl := unquote(args[1]), unquote(args[2])
				if !bytes.Contains(data, []byte(old)) {
					ts.Fatalf("%s does not contain %q", p, old)
				}
				ts.Check(os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(repl), 1), 0o644))
			},
			// pidgone PID-FILE checks no process with the pid in the file runs.
			"pidgone": func(ts *testscript.TestScript, neg bool, args []string) {
				data, err := os.ReadFile(ts.MkAbs(args[0]))
				ts.Check(err)
				pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
				ts.Check(err)
				if pid <= 0 {
					ts.Fatalf("no pid in %s", args[0])
				}
				alive := exec.Command("kill", "-0", strconv.Itoa(pid)).Run() == nil
				if alive != neg {
					ts.Fatalf("process %d alive=%v", pid, alive)
				}
			},
		},
	})
}

// unquote turns \n in a replace argument into a newline.
func unquote(s string) string { return strings.ReplaceAll(s, `\n`, "\n") }
