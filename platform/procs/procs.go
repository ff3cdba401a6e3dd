// Package procs finds which processes listen on a TCP port and stops them
// politely; gatewayd --force uses it to take over its port.
//
// On Linux it reads /proc (/proc/net/tcp, /proc/net/tcp6 and the
// /proc/PID/fd links), so no lsof is needed. On other systems
// ListenersOnPort reports that it is not supported and asks the operator to
// stop the other process; Terminate works on every unix system.
package procs

import "fmt"

// Holder is a process holding a listening socket.
type Holder struct {
	// PID is the process id.
	PID int
	// Cmdline is the process's command line, arguments separated by spaces.
	Cmdline string
	// Addr is the local address the socket listens on ("127.0.0.1:18789",
	// "[::]:18789").
	Addr string
}

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("invalid port %d: want a number between 1 and 65535", port)
	}
	return nil
}
