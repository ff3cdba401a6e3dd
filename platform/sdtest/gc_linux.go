package sdtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// GC garbage-collects the leftovers of killed test runs: every scratch dir
// /tmp/gatewayd-sdtest-* and every cgroup of that name (in any mounted
// hierarchy) whose test process is gone, or whose manager is gone while its
// test process is not tearing it down. It kills what still runs in such
// cgroups, removes them deepest first and removes the scratch dir. Managers of
// live test processes, in this process or another, are left alone. It writes
// one line per removed leftover to log. Without root it does nothing: it could
// not have created anything to collect.
func GC(log io.Writer) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var hs []hierarchy
	var errs []error
	if h, err := hostHierarchies(); err == nil {
		hs = h
	} else {
		errs = append(errs, fmt.Errorf("list cgroup hierarchies: %w", err))
	}
	groups := findGroups(hs, namePrefix)
	names := map[string]bool{}
	for n := range groups {
		names[n] = true
	}
	dirs, _ := filepath.Glob(filepath.Join(scratchBase, namePrefix+"*"))
	for _, d := range dirs {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			names[filepath.Base(d)] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		root := filepath.Join(scratchBase, n)
		stale, why := staleReason(root)
		if !stale {
			continue
		}
		cgs := groups[n]
		pids := groupPIDs(cgs)
		var gerrs []error
		if err := killGroups(cgs, 10*time.Second); err != nil {
			gerrs = append(gerrs, err)
		}
		if err := removeGroups(cgs, 5*time.Second); err != nil {
			gerrs = append(gerrs, err)
		}
		if err := os.RemoveAll(root); err != nil {
			gerrs = append(gerrs, fmt.Errorf("remove scratch dir %s: %w", root, err))
		}
		res := "removed"
		if len(gerrs) > 0 {
			res = "FAILED to remove"
			errs = append(errs, gerrs...)
		}
		fmt.Fprintf(log, "sdtest gc: %s leftover %s (%s): killed %d processes %v, %d cgroups %s\n",
			res, n, why, len(pids), pids, len(cgs), strings.Join(cgs, " "))
	}
	return errors.Join(errs...)
}

// staleReason says whether the scratch dir root (which may be gone already)
// belongs to a dead test run, and why.
func staleReason(root string) (bool, string) {
	fi, err := os.Stat(root)
	if err != nil {
		return true, "its scratch dir is gone"
	}
	st, err := readState(root)
	if err != nil {
		// A test process writes the state right after creating the dir.
		if time.Since(fi.ModTime()) > 2*time.Minute {
			return true, "no readable state.json for 2 minutes"
		}
		return false, ""
	}
	if start, ok := procStart(st.OwnerPID); !ok || start != st.OwnerStart {
		return true, fmt.Sprintf("its test process %d is gone", st.OwnerPID)
	}
	if st.ManagerPID != 0 && !st.Stopping {
		if start, ok := procStart(st.ManagerPID); !ok || start != st.ManagerStart {
			return true, fmt.Sprintf("its manager %d is gone", st.ManagerPID)
		}
	}
	return false, ""
}
