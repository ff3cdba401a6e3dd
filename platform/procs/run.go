package procs

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits are resource limits on the processes of one run (setrlimit on the
// command before it starts; its children inherit them). Zero leaves a
// limit as gatewayd's own.
type Limits struct {
	// CPUSeconds is RLIMIT_CPU: CPU time per process; past it the process
	// gets SIGXCPU, then SIGKILL.
	CPUSeconds uint64
	// MemoryBytes is RLIMIT_AS: the address space per process (virtual,
	// not resident memory; runtimes that reserve much address space, like
	// Node, Java or Go, need a generous value).
	MemoryBytes uint64
	// OpenFiles is RLIMIT_NOFILE: file descriptors per process.
	OpenFiles uint64
	// Processes is RLIMIT_NPROC: processes and threads of the user the run
	// runs as, counted over all of that user's processes (gatewayd's own
	// threads included); root is exempt.
	Processes uint64
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// encode is the limits as one command-line word ("cpu=1,as=0,nofile=0,nproc=0").
func (l Limits) encode() string {
	return fmt.Sprintf("cpu=%d,as=%d,nofile=%d,nproc=%d", l.CPUSeconds, l.MemoryBytes, l.OpenFiles, l.Processes)
}

func decodeLimits(s string) (Limits, error) {
	var l Limits
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return l, fmt.Errorf("bad limit %q", kv)
		}
		switch k {
		case "cpu":
			l.CPUSeconds = n
		case "as":
			l.MemoryBytes = n
		case "nofile":
			l.OpenFiles = n
		case "nproc":
			l.Processes = n
		default:
			return l, fmt.Errorf("unknown limit %q", k)
		}
	}
	return l, nil
}
