package sdtest

import "time"

// UserManager is a running `systemd --user` in its own cgroup subtree and
// mount namespace, with private HOME and XDG directories under Root. Where
// systemd is absent (not Linux) StartUser skips, so none is ever running.
type UserManager struct {
	// Root is the scratch directory holding everything of this manager
	// (/tmp/gatewayd-sdtest-<test pid>-<random>); it is removed on Stop.
	Root string
	// Home is the manager's $HOME.
	Home string
	// RuntimeDir is $XDG_RUNTIME_DIR: the private socket, the notify
	// socket and the user bus live here.
	RuntimeDir string
	// ConfigHome is $XDG_CONFIG_HOME; user units go to UnitDir below it.
	ConfigHome string
	// StateHome is $XDG_STATE_HOME.
	StateHome string
	// BusAddress is the user bus, unix:path=$XDG_RUNTIME_DIR/bus, usable
	// from outside the manager's namespaces.
	BusAddress string
	// PID is the manager's process id, as seen from the host (there is no
	// PID namespace).
	PID int

	fixture
}

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

	fixture
}
