package sdtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hierarchy is one mounted cgroup hierarchy (a v1 controller set, a named v1
// hierarchy such as name=systemd, or cgroup2) and the calling process's place
// in it.
type hierarchy struct {
	// MountPoint is where the hierarchy is mounted on the host, e.g.
	// /sys/fs/cgroup/memory.
	MountPoint string
	// FSType is "cgroup" (v1) or "cgroup2".
	FSType string
	// Options are the mount options that select this hierarchy again inside
	// a cgroup namespace (v1 only), e.g. "memory" or "none,name=systemd".
	Options string
	// Own is the host directory of the calling process's cgroup in it.
	Own string
}

// parseHierarchies pairs the cgroup mounts of a mountinfo table with the
// process's cgroup membership (/proc/self/cgroup). Mounts of a hierarchy the
// process has no line for (bind mounts of a sub-tree, say) are skipped; a
// hierarchy mounted twice is taken once, at its first mount point.
func parseHierarchies(mountinfo, selfCgroup string) ([]hierarchy, error) {
	type member struct {
		ctrls map[string]bool
		path  string
	}
	var v1 []member
	v2path := ""
	hasV2 := false
	for _, line := range strings.Split(selfCgroup, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q: want id:controllers:path", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			hasV2, v2path = true, parts[2]
			continue
		}
		m := member{ctrls: map[string]bool{}, path: parts[2]}
		for _, c := range strings.Split(parts[1], ",") {
			m.ctrls[c] = true
		}
		v1 = append(v1, m)
	}
	seen := map[string]bool{}
	var out []hierarchy
	for _, line := range strings.Split(mountinfo, "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		root, mp := unescapeMount(fields[3]), unescapeMount(fields[4])
		fstype, super := fields[sep+1], fields[sep+3]
		var h hierarchy
		var cgpath string
		switch fstype {
		case "cgroup2":
			if !hasV2 || seen["cgroup2"] {
				continue
			}
			seen["cgroup2"] = true
			h = hierarchy{MountPoint: mp, FSType: fstype}
			cgpath = v2path
		case "cgroup":
			opts := map[string]bool{}
			for _, o := range strings.Split(super, ",") {
				opts[o] = true
			}
			var found *member
			for i := range v1 {
				ok := true
				for c := range v1[i].ctrls {
					if !opts[c] {
						ok = false
					}
				}
				if ok {
					found = &v1[i]
					break
				}
			}
			if found == nil {
				continue
			}
			var keep []string
			onlyName := true
			for _, o := range strings.Split(super, ",") {
				switch {
				case o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent="):
					continue
				case strings.HasPrefix(o, "name="):
				case found.ctrls[o]:
					onlyName = false
				}
				keep = append(keep, o)
			}
			if onlyName {
				keep = append([]string{"none"}, keep...)
			}
			key := strings.Join(keep, ",")
			if seen[key] {
				continue
			}
			seen[key] = true
			h = hierarchy{MountPoint: mp, FSType: fstype, Options: key}
			cgpath = found.path
		default:
			continue
		}
		rel, ok := strings.CutPrefix(cgpath, strings.TrimSuffix(root, "/"))
		if !ok || strings.Contains(cgpath, "/..") {
			return nil, fmt.Errorf("cgroup %s (%s) lies outside the mount of %s rooted at %s: run the tests in the host cgroup namespace", cgpath, fstype, mp, root)
		}
		h.Own = filepath.Join(mp, rel)
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted: mount cgroup2 on /sys/fs/cgroup (or the v1 hierarchies)")
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space, ...) of
// /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hostHierarchies reads the calling process's cgroup hierarchies.
func hostHierarchies() ([]hierarchy, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w (is /proc mounted?)", err)
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w (is /proc mounted?)", err)
	}
	return parseHierarchies(string(mi), string(cg))
}

// createGroups makes a group called name below the caller's own group in every
// hierarchy and returns their directories. A v1 cpuset group starts with no
// CPUs and no memory nodes, so it gets its parent's.
func createGroups(hs []hierarchy, name string) ([]string, error) {
	var dirs []string
	for _, h := range hs {
		dir := filepath.Join(h.Own, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return dirs, fmt.Errorf("create cgroup %s: %w (needs root and a writable cgroup hierarchy)", dir, err)
		}
		dirs = append(dirs, dir)
		if h.FSType == "cgroup" && strings.Contains(","+h.Options+",", ",cpuset,") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h.Own, f))
				if err != nil {
					return dirs, fmt.Errorf("read parent %s for cgroup %s: %w", f, dir, err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return dirs, fmt.Errorf("copy %s into cgroup %s: %w", f, dir, err)
				}
			}
		}
	}
	return dirs, nil
}

// groupPIDs lists the processes in the cgroup trees rooted at dirs.
func groupPIDs(dirs []string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	sort.Ints(pids)
	return pids
}

// killGroups SIGKILLs every process in the cgroup trees rooted at dirs until
// none is left (cgroup.kill where the kernel has it, then process by process),
// giving up after timeout.
func killGroups(dirs []string, timeout time.Duration) error {
	for _, d := range dirs {
		// cgroup2 only: kills the whole subtree atomically, forks included.
		_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0o644)
	}
	deadline := time.Now().Add(timeout)
	for {
		pids := groupPIDs(dirs)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroups %v after %v: kill them by hand and rerun sdtest.GC", pids, dirs, timeout)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond) // let the kernel finish the exits
	}
}

// removeGroups removes the cgroup trees rooted at dirs, deepest first. Missing
// groups are fine (a concurrent GC may have been faster).
func removeGroups(dirs []string, timeout time.Duration) error {
	var errs []error
	for _, d := range dirs {
		var sub []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		sort.Slice(sub, func(i, j int) bool { return len(sub[i]) > len(sub[j]) })
		for _, s := range sub {
			deadline := time.Now().Add(timeout)
			for {
				err := syscall.Rmdir(s)
				if err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w (a process is still in it: kill it and rerun sdtest.GC)", s, err))
					break
				}
				time.Sleep(10 * time.Millisecond) // exiting tasks leave the group asynchronously
			}
		}
	}
	return errors.Join(errs...)
}

// findGroups walks every hierarchy (from its mount point, bounded in depth and
// entries) for groups whose name starts with prefix, without descending into
// them, and returns them by name.
func findGroups(hs []hierarchy, prefix string) map[string][]string {
	const maxDepth, maxEntries = 10, 50000
	out := map[string][]string{}
	entries := 0
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > maxDepth || entries > maxEntries {
			return
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, de := range des {
			entries++
			if !de.IsDir() {
				continue
			}
			p := filepath.Join(dir, de.Name())
			if strings.HasPrefix(de.Name(), prefix) {
				out[de.Name()] = append(out[de.Name()], p)
				continue
			}
			walk(p, depth+1)
		}
	}
	for _, h := range hs {
		walk(h.MountPoint, 0)
	}
	return out
}

// procStart returns a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), which with the PID identifies a process across PID
// reuse. ok is false when the process does not exist.
func procStart(pid int) (start uint64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	if f[0] == "Z" || f[0] == "X" {
		return start, false // a zombie is gone for our purposes
	}
	return start, true
}
