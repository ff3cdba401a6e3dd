package service

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/platform/procs"
	"github.com/gatewayd/gatewayd/units"
)

// FindConflicts returns the processes that compete with the installed
// service described by q: listeners on one of its ports, and gatewayd
// processes of its profile and state directory, other than the service's
// main process and the service manager (which holds the socket unit's
// listener). It reads /proc; processes of other users are visible to root
// only.
func FindConflicts(q ConflictQuery) ([]Conflict, error) {
	var out []Conflict
	seen := map[int]bool{}
	add := func(c Conflict) {
		if !seen[c.PID] {
			seen[c.PID] = true
			out = append(out, c)
		}
	}
	var firstErr error
	for _, port := range q.Ports {
		holders, err := procs.ListenersOnPort(port)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, h := range holders {
			argv := procArgv(h.PID)
			if h.PID == q.MainPID || h.PID == os.Getpid() || isServiceManager(argv) {
				continue
			}
			c := Conflict{PID: h.PID, Command: h.Cmdline, Kind: "foreign", Reason: fmt.Sprintf("port %d (%s)", port, h.Addr)}
			if isGatewayd(argv) {
				c.Kind = "gatewayd"
				c.Fix = fmt.Sprintf("a gatewayd the service manager did not start (run by hand?) listens on port %d: stop it (`kill %d`), then `%s`; or give one of them another port", port, h.PID, q.restart())
			} else {
				c.Fix = fmt.Sprintf("another program listens on port %d: stop it (`kill %d`, or its own service), or move this profile to another port (`gatewayctl install --port N --force`)", port, h.PID)
			}
			add(c)
		}
	}
	dirs, _ := os.ReadDir("/proc")
	want := units.ProfileName(q.Profile)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == q.MainPID || pid == os.Getpid() || seen[pid] {
			continue
		}
		argv := procArgv(pid)
		if !isGatewayd(argv) || slices.ContainsFunc(argv[1:], oneShotFlag) {
			continue
		}
		env := procEnv(pid)
		if len(env) == 0 {
			continue // another user's process: its paths are unknowable
		}
		prof := profileOf(argv, env)
		if prof != want || q.StateDir == "" {
			continue
		}
		p, err := config.NewProfile(prof, prof == "dev")
		if err != nil {
			continue
		}
		scope := config.ScopeUser
		if procUID(pid) == 0 {
			scope = config.ScopeSystem
		} else if env["HOME"] == "" && env["XDG_STATE_HOME"] == "" && env["GATEWAY_STATE_DIR"] == "" {
			continue // its state directory would be guessed from ours
		}
		paths := config.ResolvePaths(p, scope, func(k string) string { return env[k] })
		if filepath.Clean(paths.StateDir) != filepath.Clean(q.StateDir) {
			continue
		}
		add(Conflict{PID: pid, Command: strings.Join(argv, " "), Kind: "gatewayd",
			Reason: fmt.Sprintf("profile %s (state %s)", want, q.StateDir),
			Fix:    fmt.Sprintf("a second gatewayd of profile %s shares its state, token and log with the service: stop it (`kill %d`), then `%s`", want, pid, q.restart())})
	}
	slices.SortFunc(out, func(a, b Conflict) int { return a.PID - b.PID })
	return out, firstErr
}

func (q ConflictQuery) restart() string {
	if q.Stop != "" {
		return q.Stop
	}
	return "gatewayctl restart"
}

// oneShotFlag: gatewayd runs that exit at once (the config check of
// gatewayctl restart, --version) are not gateways.
func oneShotFlag(a string) bool {
	a = strings.TrimLeft(a, "-")
	return a == "check-config" || a == "version" || a == "help" || a == "h"
}

func procArgv(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func procEnv(pid int) map[string]string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

func procUID(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n
			}
		}
	}
	return -1
}

func isGatewayd(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "gatewayd"
}

// isServiceManager: systemd (PID 1 or a user manager) holds the listening
// socket of a socket unit on the service's behalf.
func isServiceManager(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	b := filepath.Base(argv[0])
	return b == "systemd" || b == "init" || b == "launchd"
}

// profileOf is the profile a gatewayd process runs: --profile NAME or
// --dev on its command line, else GATEWAY_PROFILE, else the default.
func profileOf(argv []string, env map[string]string) string {
	prof := env["GATEWAY_PROFILE"]
	for i := 1; i < len(argv); i++ {
		a := strings.TrimLeft(argv[i], "-")
		switch {
		case a == "dev" && strings.HasPrefix(argv[i], "-"):
			return "dev"
		case a == "profile" && i+1 < len(argv):
			prof = argv[i+1]
		case strings.HasPrefix(a, "profile=") && strings.HasPrefix(argv[i], "-"):
			prof = strings.TrimPrefix(a, "profile=")
		}
	}
	return units.ProfileName(prof)
}
