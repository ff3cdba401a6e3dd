// Package procstest has what tests of runs need to show that no process
// of a run outlives it: a script that starts children trying to escape
// (a background job, one in a new session via setsid, a double-forked
// orphan), and a check that they are gone. Linux only in effect: it reads
// /proc.
package procstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Script is a POSIX shell script; run it as `sh -c Script sh MODE` with
// $DIR set to a directory. It starts three children that try to outlive
// it, each writing its pid to $DIR/NAME (Names), waits (bounded) until
// all three have written, then exits 0, or with MODE "wait" waits for
// them. It prints "started" when the children are up.
const Script = `
sleep 300 & echo $! > "$DIR/bg"
setsid sh -c 'echo $$ > "$DIR/setsid"; exec sleep 300' &
(sh -c 'echo $$ > "$DIR/orphan"; exec sleep 300' &)
i=0
while [ ! -s "$DIR/bg" ] || [ ! -s "$DIR/setsid" ] || [ ! -s "$DIR/orphan" ]; do
  i=$((i+1)); [ $i -gt 3000 ] && exit 9
  sleep 0.01
done
echo started
[ "$1" = wait ] && wait
exit 0
`

// Names are the children Script starts.
var Names = []string{"bg", "setsid", "orphan"}

// PIDs returns the pids Script's children wrote to dir, waiting up to
// limit for them.
func PIDs(t testing.TB, dir string, limit time.Duration) map[string]int {
	t.Helper()
	out := map[string]int{}
	deadline := time.Now().Add(limit)
	for _, name := range Names {
		for {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && strings.HasSuffix(string(b), "\n") {
				out[name] = pid
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the script did not record its %s child within %s", name, limit)
			}
			time.Sleep(10 * time.Millisecond) // polling a file; bounded by deadline
		}
	}
	return out
}

// Alive reports whether pid runs; a zombie (exited, not reaped) does not.
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// CheckGone fails t for each of Script's children (pids) still alive
// within limit, and kills it (the test started it).
func CheckGone(t testing.TB, what string, pids map[string]int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, name := range Names {
		WaitGone(t, fmt.Sprintf("the %s child (pid %d) outlived %s", name, pids[name], what), pids[name], time.Until(deadline))
	}
}

// WaitGone waits up to limit for pid to end; if it does not, it fails t
// with msg and kills pid (the test started it).
func WaitGone(t testing.TB, msg string, pid int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // bounded by deadline
	}
	if Alive(pid) {
		t.Error(msg)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
