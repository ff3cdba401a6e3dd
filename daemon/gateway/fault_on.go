//go:build faultinject

package gateway

import "os"

// faultWedged simulates a wedged gateway for watchdog tests: a binary built
// with -tags faultinject stops passing its liveness check while the file
// named by GATEWAY_FAULT_WEDGE_FILE exists.
func faultWedged() bool {
	p := os.Getenv("GATEWAY_FAULT_WEDGE_FILE")
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}
