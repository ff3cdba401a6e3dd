//go:build !faultinject

package gateway

// faultWedged is false in every normal build: fault injection exists only
// in binaries built with -tags faultinject (tests of the watchdog path).
func faultWedged() bool { return false }
