package service

// Conflict is a process that competes with the installed service: it
// listens on the profile's port, or it is a gatewayd of the same profile
// and state directory, and it is neither the service's main process nor
// the service manager holding the socket.
type Conflict struct {
	// PID is the process id.
	PID int `json:"pid"`
	// Command is its command line.
	Command string `json:"command"`
	// Kind is "gatewayd" (a gatewayd the service manager did not start,
	// typically run by hand in the foreground) or "foreign" (another
	// program, such as another kind of gateway, on the port).
	Kind string `json:"kind"`
	// Reason says what it competes for: "port 18789 (127.0.0.2:18789)" or
	// "profile default (state /var/lib/gatewayd)".
	Reason string `json:"reason"`
	// Fix says how to resolve it.
	Fix string `json:"fix"`
}

// ConflictQuery describes the installed gateway FindConflicts compares
// running processes with.
type ConflictQuery struct {
	// Profile is the profile name ("" = default).
	Profile string
	// StateDir is the profile's state directory in the scope asked about.
	StateDir string
	// Ports are the profile's TCP ports.
	Ports []int
	// MainPID is the service's main process (0 when not running): never a
	// conflict.
	MainPID int
	// Stop is how the operator stops the service ("gatewayctl stop").
	Stop string
}
