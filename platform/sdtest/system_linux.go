package sdtest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const systemSkipHint = " (CI runs as root and installs systemd systemd-container util-linux)"

// BootSystem boots the host's own OS image as a container with a real systemd
// system manager (docs/development.md, "Test fixtures: a real systemd
// manager"), waits for the boot to finish (`systemctl is-system-running
// --wait`: running or degraded), and registers its halt with t.Cleanup. It
// skips the test, loudly, when not root or when systemd-nspawn
// (systemd-container), nsenter or overlayfs is missing.
func BootSystem(t testing.TB, opts SystemOptions) *System {
	t.Helper()
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 90 * time.Second
	}
	return startT(t, lifecycle[*System]{
		timeout: opts.BootTimeout,
		start:   func(ctx context.Context) (*System, error) { return bootSystem(ctx, opts) },
		skip:    "booted systemd container",
		hint:    systemSkipHint,
		fail:    "boot systemd container",
		ready: func(s *System, d time.Duration) string {
			return fmt.Sprintf("container %s (nspawn pid %d, pid 1 = host pid %d) booted in %v", s.Name, s.PID, s.Leader, d)
		},
		logName:  func(s *System) string { return "console of container " + s.Name },
		stopName: func(s *System) string { return "halt container " + s.Name },
	})
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
	hs, root, err := newScratch()
	if err != nil {
		return nil, err
	}
	s = &System{
		Root: root,
		fixture: fixture{
			name:    filepath.Base(root),
			nsenter: nsenter,
			process: process{logPath: filepath.Join(root, "console.log"), done: make(chan struct{})},
		},
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
	// A reboot inside the container makes systemd-nspawn exit with 133;
	// the loop then boots the same root again (the overlay's upper dir
	// lives in this mount namespace, so it survives). SIGTERM to this
	// shell is passed to nspawn, which halts the container; the loop
	// then ends with nspawn's status.
	in.WriteString("stop= child=\n")
	in.WriteString("trap 'stop=1; [ -z \"$child\" ] || kill -TERM \"$child\" 2>/dev/null || :' TERM\n")
	in.WriteString("while :; do\n")
	fmt.Fprintf(&in, "env -i PATH=%s SYSTEMD_COLORS=0 %s --quiet --register=no --keep-unit -D %s -M %s --private-network --console=read-only",
		shq(stdPath), shq(nspawn), shq(ovl+"/root"), shq(s.Name))
	// With -b, the arguments after the options go to the container's
	// systemd, which reads them as its kernel command line (systemd 252 has
	// no --init-arg).
	in.WriteString(" -b")
	for _, u := range opts.Mask {
		fmt.Fprintf(&in, " %s", shq("systemd.mask="+u))
	}
	in.WriteString(" </dev/null &\n")
	// wait returns early when the trap runs: wait again until nspawn is gone.
	in.WriteString("child=$!\nrc=0\nwait \"$child\" || rc=$?\n")
	in.WriteString("while kill -0 \"$child\" 2>/dev/null; do rc=0; wait \"$child\" || rc=$?; done\n")
	in.WriteString("child=\n")
	in.WriteString("if [ \"$rc\" -ne 133 ] || [ -n \"$stop\" ]; then exit \"$rc\"; fi\n")
	in.WriteString("echo \"sdtest: container rebooted; booting it again\"\n")
	in.WriteString("done\n")

	// SIGTERM (passed to nspawn) halts the container cleanly, also when
	// the test binary dies.
	s.PID, err = s.launch(hs, s.name, root, "create console log", "start systemd-nspawn", func() string {
		return enterScript(s.cgroups, in.String())
	})
	if err != nil {
		return s, err
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

// Reboot reboots the container (`systemctl reboot` inside) and waits for
// the new boot to finish, as BootSystem does. The same root boots again:
// what was installed, enabled or written persists, while /run, /tmp and
// every process start afresh, as on a real machine. Leader is the new PID 1
// afterwards.
func (s *System) Reboot(ctx context.Context) error {
	old := s.Leader
	// systemctl returns once the reboot job is queued; the connection may
	// drop on the way, so its exit status says nothing.
	_ = s.Exec(ctx, "systemctl", "reboot").Run()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for nsPID1(old) {
		select {
		case <-s.done:
			return fmt.Errorf("systemd-nspawn exited (%v) instead of rebooting container %s; console:\n%s", s.waitErr, s.Name, tail(s.Log(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("container %s: its PID 1 (host pid %d) still runs after `systemctl reboot`: %w", s.Name, old, ctx.Err())
		case <-tick.C:
		}
	}
	s.Leader = 0
	return s.waitBooted(ctx)
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
func (s *System) Log() string { return s.readLog() }

// Stop halts the container (SIGTERM to systemd-nspawn, which shuts the
// system down cleanly), kills what is left in its cgroups, removes them and
// removes Root. It is idempotent; BootSystem's cleanup calls it.
func (s *System) Stop() error {
	return s.teardown(s.Root, s.PID, 60*time.Second,
		fmt.Sprintf("container %s did not halt within 60s of SIGTERM: killed it", s.Name),
		fmt.Sprintf("systemd-nspawn pid %d survived SIGKILL for 5s", s.PID))
}
