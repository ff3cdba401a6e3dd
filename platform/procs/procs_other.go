//go:build !linux

package procs

import (
	"fmt"
	"runtime"
)

// ListenersOnPort is not available on this system: it needs Linux's /proc.
func ListenersOnPort(port int) ([]Holder, error) {
	if err := checkPort(port); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("finding the process listening on port %d is not supported on %s; stop the other process yourself (lsof -nP -iTCP:%d -sTCP:LISTEN shows it)", port, runtime.GOOS, port)
}
