package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/platform/procs"
)

// TestMain lets testscript run the in-process gatewayctl as a command. It
// runs again in every `exec gatewayctl` child, so nothing else happens
// here: the gatewayd build is in TestScripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"gatewayctl": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/*.txtar against the real gatewayd: each
// script gets its own free port ($PORT, also $GATEWAY_PORT), a port nothing
// listens on ($DEADPORT), a second free port ($PORT2), and its own state, config and XDG directories
// under $WORK.
func TestScripts(t *testing.T) {
	gatewayd := buildGatewayd(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			port, err := gatewaydtest.FreePort()
			if err != nil {
				return err
			}
			dead, err := gatewaydtest.FreePort()
			if err != nil {
				return err
			}
			work := env.WorkDir
			env.Setenv("PATH", filepath.Dir(gatewayd)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("PORT", strconv.Itoa(port))
			env.Setenv("DEADPORT", strconv.Itoa(dead))
			port2, err := gatewaydtest.FreePort()
			if err != nil {
				return err
			}
			env.Setenv("PORT2", strconv.Itoa(port2)) // a second free port
			env.Setenv("GATEWAY_PORT", strconv.Itoa(port))
			env.Setenv("GATEWAY_STATE_DIR", filepath.Join(work, "state"))
			env.Setenv("GATEWAY_CONFIG_PATH", filepath.Join(work, "config.json"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "xdg", "config"))
			env.Setenv("XDG_STATE_HOME", filepath.Join(work, "xdg", "state"))
			env.Setenv("HOME", filepath.Join(work, "home"))
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitcode,
			// waitlisten PORT waits (10 s at most) until something listens
			// on PORT, without connecting (a connect would socket-activate).
			"waitlisten": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waitlisten PORT")
				}
				port, err := strconv.Atoi(args[0])
				ts.Check(err)
				deadline := time.Now().Add(10 * time.Second)
				for {
					if h, _ := procs.ListenersOnPort(port); len(h) > 0 {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("nothing listens on port %d after 10s", port)
					}
					time.Sleep(20 * time.Millisecond)
				}
			},
		},
	})
}

// buildGatewayd builds the real daemon into a temporary directory, or skips
// the test loudly when it cannot be built.
func buildGatewayd(t *testing.T) string {
	t.Helper()
	bin, err := gatewaydtest.Build(t.TempDir())
	if err != nil {
		t.Skipf("SKIPPING: cannot build the real gatewayd to test against (CI builds it from this checkout): %v", err)
	}
	return bin
}

// startGatewayd runs the real daemon (buildGatewayd) with its state under
// dir, a new temporary directory, and stops it when the test ends.
func startGatewayd(t *testing.T) (g *gatewaydtest.Gateway, dir string) {
	t.Helper()
	bin := buildGatewayd(t)
	dir = t.TempDir()
	g, err := gatewaydtest.Start(context.Background(), bin, gatewaydtest.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	return g, dir
}

// cmdExitcode is `exitcode N PROG ARGS...`: run PROG and check its exit
// status is exactly N; stdout and stderr stay available to match.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
