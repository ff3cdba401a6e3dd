package main

import (
	"testing"

	"github.com/gatewayd/gatewayd/internal/deptest"
)

// TestDeps pins that gatewayd links no test helpers, on Linux and on
// macOS.
func TestDeps(t *testing.T) {
	const helper = "a test helper: it does not ship in the daemon"
	bad := map[string]string{
		"testing":                                                  "test code does not ship",
		"github.com/chromedp/...":                                  "browser tests drive the UI from outside",
		"github.com/rogpeppe/go-internal/...":                      "testscript is for the CLI's tests",
		"github.com/gatewayd/gatewayd/daemon/client/...":           "the daemon serves the protocol; its client is gatewayctl's and the tests'",
		"github.com/gatewayd/gatewayd/internal/gatewaydtest":       helper,
		"github.com/gatewayd/gatewayd/internal/testutil":           helper,
		"github.com/gatewayd/gatewayd/daemon/internal/browsertest": helper,
		"github.com/gatewayd/gatewayd/daemon/config/configtest":    helper,
		"github.com/gatewayd/gatewayd/platform/notify/notifytest":  helper,
		"github.com/gatewayd/gatewayd/platform/procs/procstest":    helper,
		"github.com/gatewayd/gatewayd/platform/sdtest/...":         helper,
		"github.com/gatewayd/gatewayd/internal/testreport":         helper,
		"github.com/gatewayd/gatewayd/internal/deptest":            helper,
		"github.com/gatewayd/gatewayd/packaging/...":               "packaging builds and tests the packages; the daemon does not link it",
	}
	deptest.CheckGOOS(t, ".", bad, "linux", "darwin")
}
