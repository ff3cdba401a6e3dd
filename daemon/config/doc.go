// Package config owns everything the daemon and the CLI need to agree on about
// where a gateway lives and how it is configured: profiles (default, --dev and
// named ones, each with its own port, unit names and launchd label), the
// user/system path layout (XDG for users, FHS and the directories systemd
// hands over in $CONFIGURATION_DIRECTORY, $STATE_DIRECTORY and
// $LOGS_DIRECTORY for system units), the strict JSON config file with
// file:line:column errors, every config default, the redaction of secrets
// for config.get and logs, the classification of config changes into
// hot-safe ones and ones that need an in-process restart, and the shared
// secret token file. The file watcher for hot reload is package
// configwatch.
//
// The config file has one section per top-level key (gateway.go,
// logging.go, agents.go, channels.go, …); Config.sections lists them.
// docs/config.md is the operator's reference of the keys and of what
// overrides what (flags, environment, file); docs/runbook.md describes the
// paths.
//
// The package touches no service manager. When the OS feature it reads is
// absent it falls back quietly: without the systemd directory variables the
// scope defaults apply, a missing config file means built-in defaults, and
// a missing token file is created by EnsureToken.
package config
