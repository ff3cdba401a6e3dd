// Package sdtest starts real systemd managers as Go test fixtures, so tests of
// gatewayctl install/status/doctor and end-to-end tests of gatewayd run against
// the real service manager instead of a mock of it.
//
// StartUser runs `systemd --user` in a world of its own (see
// docs/development.md, "Test fixtures: a real systemd manager"): its own cgroup subtree in every
// mounted hierarchy plus a cgroup namespace, so it never adopts the host's
// root cgroup; a private mount namespace with a tmpfs on /run, a scratch file
// bound over /dev/console and a FIFO bound over /dev/kmsg (drained into a log
// file), so it never writes to the host's console; private HOME and XDG
// directories; and a clean environment. Tests reach it over D-Bus from outside
// (Dial, DialBus) or run commands inside its namespaces (Exec, Systemctl).
// Teardown is registered with t.Cleanup and always runs; GC removes what a
// killed test run left behind.
//
// BootSystem boots a real systemd system manager for package tests: the
// host's root as the read-only lower dir of an overlay with a tmpfs upper dir,
// in a private mount namespace and its own cgroup subtree, run by
// `systemd-nspawn --register=no --keep-unit --private-network -b` with its own
// /run. Exec enters it with nsenter -a, CopyIn writes files into it, and the
// host's files (dpkg database included) stay untouched.
//
// When the OS feature is absent (not Linux, not root, or systemd,
// dbus-user-session, systemd-container or util-linux missing) StartUser and
// BootSystem skip the test with a loud reason instead of failing: CI runs as
// root and installs those packages, so there the tests always run. GC is a no-op where there is nothing to collect.
package sdtest
