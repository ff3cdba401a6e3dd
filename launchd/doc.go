// Package launchd is the single source of truth for gatewayd's launchd job on
// macOS: it renders the LaunchAgent (user scope) or LaunchDaemon (system
// scope) property list for a profile, compares an installed plist with the
// rendered one key by key (using the drift vocabulary of package units), and
// parses the output of `launchctl print` leniently.
//
// The package is pure: it never runs launchctl and works the same on every
// OS, so Linux CI tests it and `make package` renders plists for the macOS
// package on Linux. On a host without launchd the plists are still valid
// files, they just have no one to load them; launchctl output it cannot
// understand yields zero fields ("unknown"), never guesses.
package launchd
