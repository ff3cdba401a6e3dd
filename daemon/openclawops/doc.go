// Package openclawops holds end-to-end tests of OpenClaw's own operator
// clients against the real gatewayd binary: OpenClaw's CLI (remote mode,
// in an isolated HOME), its Control UI in headless Chromium, and the
// comparison of OpenClaw's method scopes and params schemas with
// gatewayd's. They need Node 24 and openclaw@2026.9.6 under
// $GATEWAYD_TOOLS (.ci/setup-openclaw installs them) and, for the browser
// test, Debian's chromium; without them they skip with the reason.
package openclawops
