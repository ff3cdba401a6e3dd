package config

import (
	"fmt"

	"github.com/gatewayd/gatewayd/platform/procs"
)

// ProcessLimits is the "limits" block of an exec tool (tools.exec.NAME)
// or exec agent (agents.list.ID.exec): resource limits set with setrlimit
// on the command before it starts, inherited by everything it starts.
// Zero or absent leaves a limit as the gateway's own. Applied on Linux.
type ProcessLimits struct {
	CPUSeconds  uint64 `json:"cpuSeconds,omitempty"`  // RLIMIT_CPU: CPU seconds per process (then SIGXCPU/SIGKILL)
	MemoryBytes uint64 `json:"memoryBytes,omitempty"` // RLIMIT_AS: address space per process (virtual, not resident)
	OpenFiles   uint64 `json:"openFiles,omitempty"`   // RLIMIT_NOFILE: file descriptors per process
	Processes   uint64 `json:"processes,omitempty"`   // RLIMIT_NPROC: processes of the gateway's user in all (root is exempt)
}

// minLimitMemoryBytes is the least memoryBytes accepted: below it almost
// no program starts.
const minLimitMemoryBytes = 16 << 20

func (l *ProcessLimits) validate(key string) *Error {
	if l == nil {
		return nil
	}
	if l.MemoryBytes != 0 && l.MemoryBytes < minLimitMemoryBytes {
		return &Error{Key: key + ".memoryBytes", Msg: fmt.Sprintf("%d is below %d (16 MiB): almost nothing starts with less address space; leave it out for no limit", l.MemoryBytes, minLimitMemoryBytes)}
	}
	if l.OpenFiles != 0 && l.OpenFiles < 3 {
		return &Error{Key: key + ".openFiles", Msg: fmt.Sprintf("%d leaves no room for stdin, stdout and stderr (use at least 3, or leave it out)", l.OpenFiles)}
	}
	return nil
}

// Procs is l for procs.CommandContext (nil: no limits).
func (l *ProcessLimits) Procs() procs.Limits {
	if l == nil {
		return procs.Limits{}
	}
	return procs.Limits{CPUSeconds: l.CPUSeconds, MemoryBytes: l.MemoryBytes, OpenFiles: l.OpenFiles, Processes: l.Processes}
}
