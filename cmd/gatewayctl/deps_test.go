package main

import (
	"testing"

	"github.com/gatewayd/gatewayd/internal/deptest"
)

// TestDeps pins that gatewayctl is a client: it speaks the protocol
// through daemon/protocol and its wire-type subpackages and links none of
// the server, on Linux and on macOS.
func TestDeps(t *testing.T) {
	const server = "server code: gatewayctl speaks the protocol, the wire types are in daemon/protocol/..."
	bad := map[string]string{
		"go.etcd.io/bbolt/...":                          "the state store is the daemon's",
		"github.com/fsnotify/fsnotify/...":              "the config watcher is the daemon's (daemon/config/configwatch)",
		"maunium.net/go/mautrix/...":                    "the Matrix channel is the daemon's",
		"github.com/openai/openai-go/...":               "the agent backend is the daemon's",
		"github.com/gatewayd/gatewayd/daemon/gateway":   server,
		"github.com/gatewayd/gatewayd/daemon/store":     server,
		"github.com/gatewayd/gatewayd/daemon/lifecycle": server + " (config validate uses daemon/startcheck)",
		"github.com/gatewayd/gatewayd/daemon/channels":  server + " (daemon/protocol/channelproto)",
		"github.com/gatewayd/gatewayd/daemon/nodes":     server + " (daemon/protocol/nodeproto)",
		"github.com/gatewayd/gatewayd/daemon/agent":     server,
		"github.com/gatewayd/gatewayd/daemon/openai":    server,
		"github.com/gatewayd/gatewayd/daemon/hooks":     server,
		"github.com/gatewayd/gatewayd/daemon/tools":     server,
		"github.com/gatewayd/gatewayd/daemon/ui/...":    server,
		"testing": "test code does not ship",
	}
	deptest.CheckGOOS(t, ".", bad, "linux", "darwin")
}
