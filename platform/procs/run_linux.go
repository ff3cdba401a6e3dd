//go:build linux

package procs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// On Linux every run has a supervisor: gatewayd's own binary, re-executed
// as "gatewayd-run-supervisor". It makes itself a child subreaper
// (PR_SET_CHILD_SUBREAPER), so every process the command starts stays
// below it whatever it does (background jobs, setsid, double forks); when
// the command exits, or the supervisor gets SIGTERM (Stop, the run's
// context ending) or its parent dies (PR_SET_PDEATHSIG), it kills every
// process below it, reaps them and exits with the command's status. With
// limits, the command is started through a second re-execution,
// "gatewayd-run-limits", which sets them and execs the command, so the
// supervisor's own runtime is not bound by them. Both are handled by this
// package's init, in any binary that imports it.
const (
	supervisorArg0 = "gatewayd-run-supervisor"
	limitsArg0     = "gatewayd-run-limits"
	selfExe        = "/proc/self/exe"
)

// cleanupBound bounds the supervisor's sweeps after the command ended.
const cleanupBound = 10 * time.Second

func init() {
	switch a := os.Args; {
	case a[0] == supervisorArg0 && len(a) >= 4:
		os.Exit(supervise(a[1], a[2], a[3:]))
	case a[0] == limitsArg0 && len(a) >= 3:
		os.Exit(execWithLimits(a[1], a[2:]))
	case a[0] == supervisorArg0 || a[0] == limitsArg0:
		fmt.Fprintf(os.Stderr, "%s: too few arguments (it is started by gatewayd for exec runs)\n", a[0])
		os.Exit(126)
	}
}

// CommandContext returns a command that runs name with arg as one run:
// when it exits, or ctx ends, or Stop is called, every process it started
// ends too, and lim applies to all of them. The caller sets Env, Dir,
// Stdin/Stdout/Stderr and WaitDelay, and starts and waits as for any
// exec.Cmd; the command's exit status is the run's. name is looked up on
// gatewayd's PATH, as exec.Command does.
func CommandContext(ctx context.Context, lim Limits, name string, arg ...string) *exec.Cmd {
	path, err := exec.LookPath(name)
	if err != nil {
		return groupCommand(ctx, name, arg...) // its Start reports the lookup error
	}
	cmd := exec.CommandContext(ctx, selfExe)
	cmd.Args = append([]string{supervisorArg0, strconv.Itoa(os.Getpid()), lim.encode(), path}, arg...)
	// Its own process group, so a terminal's signals do not reach it, and
	// SIGTERM when gatewayd dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return stop(cmd) }
	return cmd
}

func stop(cmd *exec.Cmd) error {
	if len(cmd.Args) > 0 && cmd.Args[0] == supervisorArg0 {
		return cmd.Process.Signal(syscall.SIGTERM)
	}
	return killGroup(cmd)
}

const prSetChildSubreaper = 36

// supervise runs argv (argv[0] a path) below a subreaper and returns the
// exit status to end with; parent is gatewayd's pid.
func supervise(parent, limSpec string, argv []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "gatewayd run supervisor: "+format+"\n", a...)
		return 126
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return fail("cannot become a child subreaper: %v", e)
	}
	if strconv.Itoa(os.Getppid()) != parent {
		return fail("gatewayd ended before the run started")
	}
	lim, err := decodeLimits(limSpec)
	if err != nil {
		return fail("%v", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	path, args := argv[0], argv
	if !lim.IsZero() {
		path, args = selfExe, append([]string{limitsArg0, limSpec}, argv...)
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "gatewayd: start %s: %v\n", argv[0], err)
		if err == syscall.ENOENT {
			return 127
		}
		return 126
	}
	go func() {
		for range sigs {
			killDescendants()
		}
	}()
	var ws syscall.WaitStatus
	for {
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fail("wait: %v", err)
		}
		if wpid == pid {
			break
		}
		// An orphan of the run, reparented here: reaped.
	}
	if !reapAll(cleanupBound) {
		fmt.Fprintf(os.Stderr, "gatewayd run supervisor: processes of the run still alive after %s\n", cleanupBound)
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		sig := ws.Signal()
		// End the same way, so the caller sees "signal: killed" as it
		// would from the command itself.
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second) // the signal may be one that does not end us
		return 128 + int(sig)
	}
	return 1
}

// reapAll kills every process below this one and reaps them, until there
// are none (true) or bound passed (false).
func reapAll(bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for {
		n := killDescendants()
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.ECHILD {
				if n == 0 {
					return true
				}
				break
			}
			if err != nil && err != syscall.EINTR || wpid == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killDescendants sends SIGKILL to every process below this one and
// returns how many there were.
func killDescendants() int {
	pids := Descendants(os.Getpid())
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return len(pids)
}

// Descendants returns the processes below pid (children, their children,
// …), from the parent links in /proc/PID/stat.
func Descendants(pid int) []int {
	entries, _ := os.ReadDir(procRoot)
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may contain ") ".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		var state byte
		var ppid int
		if _, err := fmt.Sscanf(string(b[i+1:]), " %c %d", &state, &ppid); err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

var rlimits = []struct {
	res  int
	name string
	get  func(Limits) uint64
}{
	{syscall.RLIMIT_CPU, "CPU seconds", func(l Limits) uint64 { return l.CPUSeconds }},
	{syscall.RLIMIT_AS, "memory bytes", func(l Limits) uint64 { return l.MemoryBytes }},
	{syscall.RLIMIT_NOFILE, "open files", func(l Limits) uint64 { return l.OpenFiles }},
	{6 /* RLIMIT_NPROC */, "processes", func(l Limits) uint64 { return l.Processes }},
}

// execWithLimits sets the limits and execs argv (argv[0] a path).
func execWithLimits(limSpec string, argv []string) int {
	lim, err := decodeLimits(limSpec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gatewayd run limits: %v\n", err)
		return 126
	}
	for _, r := range rlimits {
		v := r.get(lim)
		if v == 0 {
			continue
		}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(r.res, &cur); err == nil && v > cur.Max {
			fmt.Fprintf(os.Stderr, "gatewayd: the %s limit %d is above gatewayd's own hard limit %d (lower it, or raise gatewayd's, e.g. LimitNOFILE= in its unit)\n", r.name, v, cur.Max)
			return 126
		}
		if err := syscall.Setrlimit(r.res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			fmt.Fprintf(os.Stderr, "gatewayd: set the %s limit to %d: %v\n", r.name, v, err)
			return 126
		}
	}
	err = syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintf(os.Stderr, "gatewayd: start %s: %v\n", argv[0], err)
	if err == syscall.ENOENT {
		return 127
	}
	return 126
}
