package sdtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// fixture is the private part of a UserManager or a System: its name
// (cgroups and scratch dir), the nsenter binary that enters it, and the
// process that runs it.
type fixture struct {
	name    string
	nsenter string
	process
}

// process is what UserManager and System share: the process that runs the
// manager (systemd --user, or systemd-nspawn) in its own cgroups, its log
// file, and its teardown.
type process struct {
	cgroups []string // host directories of the process's cgroups
	logPath string

	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // its exit status, valid after done

	stopOnce sync.Once
	stopErr  error
	logMu    sync.Mutex
	finalLog string // the log, kept when the teardown removes the scratch dir
	stopped  bool
}

// launch creates the cgroups name below hs, then runs /bin/sh -c script()
// (built once the cgroups exist: it enters them) with its output appended
// to the log file. The shell is in its own process group and gets SIGTERM
// when the test binary dies. The process is recorded in root's state for
// GC. logErr and startErr head the errors of opening the log and of the
// start.
func (p *process) launch(hs []hierarchy, name, root, logErr, startErr string, script func() string) (pid int, err error) {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", logErr, err)
	}
	defer logf.Close()
	if p.cgroups, err = createGroups(hs, name); err != nil {
		return 0, err
	}
	cmd := exec.Command("/bin/sh", "-c", script())
	cmd.Env = []string{"PATH=" + stdPath, "LC_ALL=C"}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // keep terminal signals for the test binary away from it
		// If the test binary dies without teardown, the manager gets
		// SIGTERM and stops its units (nspawn halts the container); GC
		// removes the rest.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := p.run(cmd); err != nil {
		return 0, fmt.Errorf("%s: %w", startErr, err)
	}
	return cmd.Process.Pid, recordPID(root, cmd.Process.Pid)
}

// run starts cmd and reaps it in the background (closing p.done). cmd's
// SysProcAttr.Pdeathsig belongs to the thread that forks: the goroutine
// stays on its thread until the process has exited.
func (p *process) run(cmd *exec.Cmd) error {
	began := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			began <- err
			close(p.done)
			return
		}
		began <- nil
		p.waitErr = cmd.Wait()
		close(p.done) // the locked thread exits with this goroutine: fine now
	}()
	return <-began
}

// recordPID adds the process (pid, and its start time) to root's state, for
// GC.
func recordPID(root string, pid int) error {
	start, ok := procStart(pid)
	if !ok {
		return nil
	}
	st, _ := readState(root)
	st.ManagerPID, st.ManagerStart = pid, start
	return writeState(root, st)
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// readLog returns the log so far; after the teardown, the final log.
func (p *process) readLog() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	if p.stopped {
		return p.finalLog
	}
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// teardown marks root's state as stopping, sends SIGTERM to pid and waits
// up to grace for it to exit (then SIGKILL: the error ignoredTerm; no exit
// 5 s after that: survivedKill), kills what is left in the cgroups, removes
// them, keeps the final log and removes root. It runs once: later calls
// return the first one's result.
func (p *process) teardown(root string, pid int, grace time.Duration, ignoredTerm, survivedKill string) error {
	p.stopOnce.Do(func() { p.stopErr = p.teardownOnce(root, pid, grace, ignoredTerm, survivedKill) })
	return p.stopErr
}

func (p *process) teardownOnce(root string, pid int, grace time.Duration, ignoredTerm, survivedKill string) error {
	var errs []error
	if st, err := readState(root); err == nil {
		st.Stopping = true
		_ = writeState(root, st)
	}
	if pid > 0 && !p.exited() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			errs = append(errs, errors.New(ignoredTerm))
			_ = syscall.Kill(pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				errs = append(errs, errors.New(survivedKill))
			}
		}
	}
	if err := killGroups(p.cgroups, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeGroups(p.cgroups, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	p.logMu.Lock()
	b, _ := os.ReadFile(p.logPath)
	p.finalLog, p.stopped = string(b), true
	p.logMu.Unlock()
	if root != "" {
		if err := os.RemoveAll(root); err != nil {
			errs = append(errs, fmt.Errorf("remove scratch dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// newScratch reads the host's cgroup hierarchies (their absence skips the
// test) and creates the fixture's scratch directory.
func newScratch() ([]hierarchy, string, error) {
	hs, err := hostHierarchies()
	if err != nil {
		return nil, "", &skipError{err.Error()}
	}
	root, err := os.MkdirTemp(scratchBase, fmt.Sprintf("%s%d-", namePrefix, os.Getpid()))
	if err != nil {
		return nil, "", fmt.Errorf("create scratch dir in %s: %w", scratchBase, err)
	}
	return hs, root, nil
}
