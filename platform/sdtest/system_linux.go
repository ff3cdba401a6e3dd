package sdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SystemOptions tunes BootSystem.
type SystemOptions struct {
	// Mask lists units masked for this boot (systemd.mask=), e.g.
	// "postgresql.service", to boot faster.
	Mask []string
	// BootTimeout bounds the wait for the boot to finish; 0 means 90s.
	BootTimeout time.Duration
}

// System is a booted systemd system manager in a container (systemd-nspawn)
// whose root is an overlay of the host's root (read-only lower) with a tmpfs
// upper dir: installing packages in it leaves the host untouched.
type System struct {
	// Root is the scratch directory of this container; removed on Stop.
	Root string
	// Name is the machine name.
	Name string
	// PID is systemd-nspawn's process id.
	PID int
	// Leader is the container's PID 1 (systemd) as seen from the host.
	Leader int

	name, logPath, nsenter string
	cgroups                []string
	done                   chan struct{}
	waitErr                error
	stopOnce               sync.Once
	stopErr                error
	logMu                  sync.Mutex
	finalLog               string
	stopped                bool
}

const systemSkipHint = " (CI runs as root and installs systemd systemd-container util-linux)"

// BootSystem boots the host's own OS image as a container with a real systemd
// system manager (SYSTEMD.md, "A real systemd SYSTEM manager"), waits for the
// boot to finish (`systemctl is-system-running --wait`: running or degraded),
// and registers its halt with t.Cleanup. It skips the test, loudly, when not
// root or when systemd-nspawn (systemd-container), nsenter or overlayfs is
// missing.
func BootSystem(t testing.TB, opts SystemOptions) *System {
	t.Helper()
	gcOnce.Do(func() {
		if err := GC(tLogWriter{t}); err != nil {
			t.Logf("sdtest: garbage collection of earlier runs: %v", err)
		}
	})
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.BootTimeout)
	defer cancel()
	began := time.Now()
	s, err := bootSystem(ctx, opts)
	var skip *skipError
	if errors.As(err, &skip) {
		t.Skip("sdtest: SKIPPING, no booted systemd container: " + skip.reason + systemSkipHint)
	}
	if err != nil {
		t.Fatalf("sdtest: boot systemd container: %v", err)
	}
	t.Logf("sdtest: container %s (nspawn pid %d, pid 1 = host pid %d) booted in %v", s.Name, s.PID, s.Leader, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		err := s.Stop()
		if t.Failed() {
			t.Logf("sdtest: console of container %s:\n%s", s.Name, tail(s.Log(), 16000))
		}
		if err != nil {
			t.Errorf("sdtest: halt container %s: %v", s.Name, err)
		}
	})
	return s
}

func bootSystem(ctx context.Context, opts SystemOptions) (s *System, err error) {
	if os.Geteuid() != 0 {
		return nil, &skipError{"needs root for cgroups, mount namespaces and systemd-nspawn"}
	}
	nspawn, err := lookPath("systemd-nspawn")
	if err != nil {
		return nil, &skipError{"systemd-nspawn not found: install systemd-container"}
	}
	for _, tool := range []string{"unshare", "mount", "umount"} {
		if _, err := lookPath(tool); err != nil {
			return nil, &skipError{tool + " not found: install util-linux"}
		}
	}
	nsenter, err := lookPath("nsenter")
	if err != nil {
		return nil, &skipError{"nsenter not found: install util-linux"}
	}
	if fsys, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fsys), "\toverlay\n") {
		if err := exec.Command("modprobe", "overlay").Run(); err != nil {
			return nil, &skipError{"the kernel has no overlay filesystem (modprobe overlay)"}
		}
	}
	hs, err := hostHierarchies()
	if err != nil {
		return nil, &skipError{err.Error()}
	}
	root, err := os.MkdirTemp(scratchBase, fmt.Sprintf("%s%d-", namePrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("create scratch dir in %s: %w", scratchBase, err)
	}
	s = &System{
		Root:    root,
		name:    filepath.Base(root),
		logPath: filepath.Join(root, "console.log"),
		nsenter: nsenter,
		done:    make(chan struct{}),
	}
	// Machine names are host names: at most 64 characters.
	s.Name = strings.TrimPrefix(s.name, "gatewayd-")
	defer func() {
		if err != nil {
			if serr := s.Stop(); serr != nil {
				err = fmt.Errorf("%w (and teardown: %v)", err, serr)
			}
		}
	}()
	start, _ := procStart(os.Getpid())
	if err := writeState(root, state{OwnerPID: os.Getpid(), OwnerStart: start}); err != nil {
		return s, err
	}
	if err := os.Mkdir(filepath.Join(root, "ovl"), 0o755); err != nil {
		return s, fmt.Errorf("create overlay dir: %w", err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return s, fmt.Errorf("create console log: %w", err)
	}
	defer logf.Close()
	if s.cgroups, err = createGroups(hs, s.name); err != nil {
		return s, err
	}

	ovl := filepath.Join(root, "ovl")
	var in strings.Builder
	in.WriteString("set -eu\n")
	in.WriteString(remountCgroupsScript(hs))
	// nspawn keeps state in /run/systemd/nspawn: give it its own /run.
	in.WriteString("mount -t tmpfs -o mode=0755,size=16m sdtest-run /run\nmkdir -p /run/systemd/nspawn\n")
	fmt.Fprintf(&in, "mount -t tmpfs -o mode=0755 sdtest-ovl %s\n", shq(ovl))
	fmt.Fprintf(&in, "mkdir %s %s %s\n", shq(ovl+"/upper"), shq(ovl+"/work"), shq(ovl+"/root"))
	fmt.Fprintf(&in, "mount -t overlay -o %s sdtest-root %s\n",
		shq("lowerdir=/,upperdir="+ovl+"/upper,workdir="+ovl+"/work"), shq(ovl+"/root"))
	fmt.Fprintf(&in, "exec env -i PATH=%s SYSTEMD_COLORS=0 %s --quiet --register=no --keep-unit -D %s -M %s --private-network --console=read-only",
		shq(stdPath), shq(nspawn), shq(ovl+"/root"), shq(s.Name))
	// With -b, the arguments after the options go to the container's
	// systemd, which reads them as its kernel command line (systemd 252 has
	// no --init-arg).
	in.WriteString(" -b")
	for _, u := range opts.Mask {
		fmt.Fprintf(&in, " %s", shq("systemd.mask="+u))
	}
	in.WriteString(" </dev/null\n")

	cmd := exec.Command("/bin/sh", "-c", enterScript(s.cgroups, in.String()))
	cmd.Env = []string{"PATH=" + stdPath, "LC_ALL=C"}
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGTERM to nspawn halts the container cleanly, also when the test
	// binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	began := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // Pdeathsig is per thread: see startUser
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			began <- err
			close(s.done)
			return
		}
		began <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := <-began; err != nil {
		return s, fmt.Errorf("start systemd-nspawn: %w", err)
	}
	s.PID = cmd.Process.Pid
	if ns, ok := procStart(s.PID); ok {
		st, _ := readState(root)
		st.ManagerPID, st.ManagerStart = s.PID, ns
		if err := writeState(root, st); err != nil {
			return s, err
		}
	}
	return s, s.waitBooted(ctx)
}

// waitBooted finds the container's PID 1 in our cgroups, then waits inside
// for `systemctl is-system-running --wait`.
func (s *System) waitBooted(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.Leader == 0 {
		for _, pid := range groupPIDs(s.cgroups) {
			if nsPID1(pid) {
				s.Leader = pid
			}
		}
		if s.Leader != 0 {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("systemd-nspawn exited (%v) before the container started; its output:\n%s", s.waitErr, tail(s.Log(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("waiting for the container's PID 1: %w; output:\n%s", ctx.Err(), tail(s.Log(), 4000))
		case <-tick.C:
		}
	}
	var last string
	for {
		// --wait returns once the boot is over; it fails early while the
		// manager is not yet listening, hence the loop.
		out, _ := s.Exec(ctx, "systemctl", "is-system-running", "--wait").CombinedOutput()
		last = strings.TrimSpace(string(out))
		if last == "running" || last == "degraded" {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("systemd-nspawn exited (%v) during boot (last state %q); console:\n%s", s.waitErr, last, tail(s.Log(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("waiting for the boot to finish (last state %q): %w; console:\n%s", last, ctx.Err(), tail(s.Log(), 4000))
		case <-tick.C:
		}
	}
}

// nsPID1 reports whether pid is PID 1 of a PID namespace below ours.
func nsPID1(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) == 2 && f[1] == "1"
		}
	}
	return false
}

// Exec returns a command that runs inside the container (every namespace of
// its PID 1, via nsenter -a) with a clean root environment. cmd.Dir is not
// honoured: the command starts in the container's /.
func (s *System) Exec(ctx context.Context, args ...string) *exec.Cmd {
	a := append([]string{"--target", strconv.Itoa(s.Leader), "--all", "--"}, args...)
	cmd := exec.CommandContext(ctx, s.nsenter, a...)
	cmd.Env = []string{"PATH=" + stdPath, "HOME=/root", "LANG=C.UTF-8", "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0", "DEBIAN_FRONTEND=noninteractive"}
	return cmd
}

// CopyIn copies the host file or directory tree hostPath to containerPath
// inside the container (modes kept, symlinks copied as links), creating
// parent directories. It writes through /proc/<Leader>/root, so absolute
// symlinks on containerPath's way would resolve on the host: use real paths.
func (s *System) CopyIn(hostPath, containerPath string) error {
	if !filepath.IsAbs(containerPath) {
		return fmt.Errorf("copy %s into container %s: container path %q must be absolute", hostPath, s.Name, containerPath)
	}
	dst := filepath.Join(fmt.Sprintf("/proc/%d/root", s.Leader), containerPath)
	err := filepath.WalkDir(hostPath, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostPath, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s is neither file, directory nor symlink", p)
		}
	})
	if err != nil {
		return fmt.Errorf("copy %s into container %s at %s: %w", hostPath, s.Name, containerPath, err)
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}

// Log returns the container's console output so far (boot messages, and
// whatever systemd prints to the console); after Stop, the final output.
func (s *System) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.stopped {
		return s.finalLog
	}
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Stop halts the container (SIGTERM to systemd-nspawn, which shuts the
// system down cleanly), kills what is left in its cgroups, removes them and
// removes Root. It is idempotent; BootSystem's cleanup calls it.
func (s *System) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *System) stop() error {
	var errs []error
	if st, err := readState(s.Root); err == nil {
		st.Stopping = true
		_ = writeState(s.Root, st)
	}
	select {
	case <-s.done:
	default:
		if s.PID > 0 {
			_ = syscall.Kill(s.PID, syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(60 * time.Second):
				errs = append(errs, fmt.Errorf("container %s did not halt within 60s of SIGTERM: killed it", s.Name))
				_ = syscall.Kill(s.PID, syscall.SIGKILL)
				select {
				case <-s.done:
				case <-time.After(5 * time.Second):
					errs = append(errs, fmt.Errorf("systemd-nspawn pid %d survived SIGKILL for 5s", s.PID))
				}
			}
		}
	}
	if err := killGroups(s.cgroups, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeGroups(s.cgroups, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	s.logMu.Lock()
	b, _ := os.ReadFile(s.logPath)
	s.finalLog, s.stopped = string(b), true
	s.logMu.Unlock()
	if s.Root != "" {
		if err := os.RemoveAll(s.Root); err != nil {
			errs = append(errs, fmt.Errorf("remove scratch dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
