// Package config owns everything the daemon and the CLI need to agree on about
// where a gateway lives and how it is configured: profiles (default, --dev and
// named ones, each with its own port, unit names and launchd label), the
// user/system path layout (XDG for users, FHS and the directories systemd
// hands over in $CONFIGURATION_DIRECTORY, $STATE_DIRECTORY and
// $LOGS_DIRECTORY for system units), the strict JSON config file with
// file:line:column errors, the classification of config changes into hot-safe
// and restart-required ones, and the shared secret token file. The file
// watcher for hot reload is package configwatch.
//
// The package touches no service manager. When the OS feature it reads is
// absent it falls back quietly: without the systemd directory variables the
// scope defaults apply, a missing config file means built-in defaults, and a
// missing token file is created by EnsureToken.
package config
