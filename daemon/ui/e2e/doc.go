// Package e2e holds the control UI's acceptance test: headless Chromium
// (Debian's chromium package, driven with chromedp) loads the UI from a
// real gatewayd built from this tree, pastes the token, and checks what an
// operator sees: health, live presence, the log tail, the method console,
// nodes and pairing (or their "unavailable" notes), agent chat with
// streaming, the refresh after a seq gap, and reconnection after an
// in-process restart and after a stop and start on the same port. It saves
// a screenshot and logs its path.
//
// The package has no non-test code. Without /usr/bin/chromium (or
// $CHROMIUM) the test skips with a loud reason; CI installs chromium.
package e2e
