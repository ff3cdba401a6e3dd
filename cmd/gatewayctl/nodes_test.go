package main

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// TestNodesAndPairingCommands drives `gatewayctl pairing …` and `gatewayctl
// nodes …` against the real gatewayd, with a real node client on the other
// side.
func TestNodesAndPairingCommands(t *testing.T) {
	g, _ := startGatewayd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctl := ctlAgainst(t, ctx, g.URL, g.Token)
	dialNode := func(key []byte, token, devTok string) (*client.Conn, error) {
		return client.DialNode(ctx, client.Options{URL: g.URL, Token: token, DeviceToken: devTok, Device: key,
			DisplayName: "kitchen-pi", Commands: []string{"echo", "hang"}})
	}

	key, _ := client.NewDeviceKey()
	nodeID := client.DeviceID(key)
	_, err := dialNode(key, g.Token, "")
	rid, ok := client.PairingRequired(err)
	if !ok {
		t.Fatalf("unpaired node: %v", err)
	}
	key2, _ := client.NewDeviceKey()
	_, err = dialNode(key2, g.Token, "")
	rid2, _ := client.PairingRequired(err)

	code, out, _ := ctl("pairing", "list", "--json")
	var pl nodeproto.PairList
	if code != 0 || json.Unmarshal([]byte(out), &pl) != nil || len(pl.Pending) != 2 {
		t.Fatalf("pairing list --json = %d %s", code, out)
	}

	steps := []struct {
		args    []string
		code    int
		stdout  string // regexp
		stderr  string // regexp
		connect bool   // connect and serve the node before this step
	}{
		{args: []string{"pairing", "list"}, stdout: `(?m)^PENDING REQUEST +KIND +WHO .*\n` + rid + ` +node +` + nodeID[:12] + ` +kitchen-pi +\S+ +127\.0\.0\.1 +echo, hang `},
		{args: []string{"nodes", "list"}, stdout: `^no paired nodes`},
		{args: []string{"pairing", "approve", "zzz"}, code: 1, stderr: `no pending pairing request matches "zzz"`},
		{args: []string{"pairing", "approve"}, code: 2, stderr: `needs exactly one REQUEST`},
		{args: []string{"pairing", "approve", nodeID[:10]}, stdout: `^approved pairing request ` + rid + ` of node ` + nodeID + ` \(kitchen-pi\)\n$`},
		{args: []string{"pairing", "reject", rid2}, stdout: `^rejected pairing request ` + rid2},
		{args: []string{"pairing", "reject", rid2}, code: 1, stderr: `no pending pairing request matches`},
		{args: []string{"pairing", "list"}, stdout: `(?s)no pending pairing requests.*PAIRED NODE.*\n` + nodeID[:12] + ` +kitchen-pi `},
		{args: []string{"nodes", "list"}, stdout: nodeID[:12] + ` +kitchen-pi +\S+ +offline +echo, hang`},
		{args: []string{"nodes", "list"}, connect: true, stdout: `(?m)^NODE +NAME +PLATFORM +STATUS +COMMANDS\n` + nodeID[:12] + ` +kitchen-pi +\S+ +connected +echo, hang`},
		{args: []string{"nodes", "describe", "kitchen-pi"}, stdout: `(?m)^node +` + nodeID + `\n(.*\n)*status +connected since `},
		{args: []string{"nodes", "describe", nodeID, "--json"}, stdout: `"connected": true`},
		{args: []string{"nodes", "invoke", nodeID[:8], "echo", "--params", `{"x":1}`}, stdout: `^\{\n  "x": 1\n\}\n$`},
		{args: []string{"nodes", "invoke", "kitchen-pi", "echo", "--json"}, stdout: `"command": "echo"`},
		{args: []string{"nodes", "invoke", "kitchen-pi", "rm"}, code: 1, stderr: `NODE_COMMAND_NOT_ADVERTISED`},
		{args: []string{"nodes", "invoke", "kitchen-pi", "hang", "--timeout", "300ms"}, code: 1, stderr: `did not answer "hang" within 300 ms.*NODE_INVOKE_TIMEOUT`},
		{args: []string{"nodes", "invoke", "kitchen-pi", "echo", "--params", "{bad"}, code: 2, stderr: `not valid JSON`},
		{args: []string{"nodes", "invoke", "nobody", "echo"}, code: 1, stderr: `no paired node matches "nobody"`},
		{args: []string{"nodes", "invoke", "kitchen-pi"}, code: 2, stderr: `needs NODE and COMMAND`},
		{args: []string{"nodes"}, code: 2, stderr: `needs a subcommand`},
		{args: []string{"pairing", "remove", "kitchen-pi"}, stdout: `^unpaired node ` + nodeID},
		{args: []string{"nodes", "list"}, stdout: `^no paired nodes`},
	}
	for _, s := range steps {
		if s.connect {
			n, err := dialNode(key, g.Token, "")
			if err != nil {
				t.Fatalf("paired node: %v", err)
			}
			defer n.Close()
			go n.ServeNode(ctx, func(ctx context.Context, inv client.NodeInvoke) (any, error) {
				if inv.Command == "hang" {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return inv.Params, nil
			}, nil)
		}
		code, out, errOut := ctl(s.args...)
		if code != s.code {
			t.Errorf("gatewayctl %q: exit %d, want %d\nstdout: %s\nstderr: %s", s.args, code, s.code, out, errOut)
			continue
		}
		if s.stdout != "" && !regexp.MustCompile(s.stdout).MatchString(out) {
			t.Errorf("gatewayctl %q stdout:\n%s\nwant match for %s", s.args, out, s.stdout)
		}
		if s.stderr != "" && !regexp.MustCompile(s.stderr).MatchString(errOut) {
			t.Errorf("gatewayctl %q stderr:\n%s\nwant match for %s", s.args, errOut, s.stderr)
		}
	}
}
