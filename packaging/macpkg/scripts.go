package macpkg

import (
	_ "embed"
)

//go:embed scripts/preinstall
var preinstallScript []byte

//go:embed scripts/postinstall
var postinstallScript []byte

// Scripts returns copies of gatewayd's preinstall and postinstall scripts
// (POSIX sh), ready for Options.Preinstall and Options.Postinstall.
// preinstall boots out a loaded system/org.gatewayd.gateway; postinstall
// creates the _gatewayd user and group, the state and log directories, and
// enables and bootstraps /Library/LaunchDaemons/org.gatewayd.gateway.plist.
func Scripts() (pre, post []byte) {
	return append([]byte(nil), preinstallScript...), append([]byte(nil), postinstallScript...)
}
