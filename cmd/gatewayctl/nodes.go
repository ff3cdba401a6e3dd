package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// Scopes of the node and pairing commands.
var (
	nodeInvokeScopes = []string{protocol.ScopeRead, protocol.ScopeWrite}
	// Approving a node takes operator.pairing plus operator.admin when
	// the node offers commands that run programs (system.run …); OpenClaw
	// enforces that, and so does gatewayd (approvalScopes in
	// daemon/nodes). Asking for both works for every node.
	pairingScopes = []string{protocol.ScopePairing, protocol.ScopeAdmin}
)

// nodeInvokeMaxWait bounds an invoke without --timeout: the gateway's own
// maximum (nodes.maxInvokeTimeoutMs, 10 minutes by default) plus a margin.
const nodeInvokeMaxWait = 11 * time.Minute

func (a *app) nodesCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:       "nodes",
		ShortUsage: "gatewayctl nodes list|describe|invoke [flags] [args]",
		ShortHelp:  "List paired nodes, describe one, or invoke a command on it.",
		LongHelp: `Nodes are devices that connect to the gateway with role "node" and
advertise commands. A node must be paired first (see gatewayctl pairing).

NODE arguments take the full node id, a unique prefix of it (as shown by
nodes list) or a node's exact display name.`,
		FlagSet:     a.flagSet("nodes"),
		Subcommands: []*ffcli.Command{a.nodesListCommand(), a.nodesDescribeCommand(), a.nodesInvokeCommand()},
		Exec: func(context.Context, []string) error {
			return usageErr(errors.New("nodes needs a subcommand: list, describe or invoke"))
		},
	}
}

func (a *app) nodesListCommand() *ffcli.Command {
	fs := a.flagSet("nodes list")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "gatewayctl nodes list [--json]",
		ShortHelp:  "List the paired nodes: connected ones first.",
		LongHelp: `Prints one line per paired node: a short id, its name, platform, whether it
is connected, and the commands it advertises. --json prints the node.list
payload ({ts, nodes:[…]}).`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("nodes list takes no arguments, got %q", strings.Join(args, " ")))
			}
			return a.withConn(ctx, readScopes, func(cctx context.Context, c *client.Conn) error {
				return callPrint(a, cctx, c, nodeproto.MethodList, nil, func(l *nodeproto.NodeList) error {
					printNodeList(a.stdout, l.Nodes)
					return nil
				})
			})
		},
	}
}

func (a *app) nodesDescribeCommand() *ffcli.Command {
	fs := a.flagSet("nodes describe")
	return &ffcli.Command{
		Name:       "describe",
		ShortUsage: "gatewayctl nodes describe NODE [--json]",
		ShortHelp:  "Show one node: status, device, caps and commands.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			pos, err := positional(fs, args, 1, "nodes describe needs exactly one NODE", "")
			if err != nil {
				return err
			}
			return a.withConn(ctx, readScopes, func(cctx context.Context, c *client.Conn) error {
				id, err := resolveNode(cctx, c, pos[0])
				if err != nil {
					return err
				}
				return callPrint(a, cctx, c, nodeproto.MethodDescribe, map[string]string{"nodeId": id}, func(n *nodeproto.NodeInfo) error {
					printNodeInfo(a.stdout, n)
					return nil
				})
			})
		},
	}
}

func (a *app) nodesInvokeCommand() *ffcli.Command {
	fs := a.flagSet("nodes invoke")
	params := fs.String("params", "", "command params as a JSON `value` (omitted when empty)")
	key := fs.String("idempotency-key", "", "`key` passed to the node with the command (default: a new random one)")
	return &ffcli.Command{
		Name:       "invoke",
		ShortUsage: "gatewayctl nodes invoke NODE COMMAND [--params JSON] [--timeout DURATION] [--json]",
		ShortHelp:  "Run a command on a node and print its result.",
		LongHelp: `Sends node.invoke: the gateway forwards COMMAND (one the node advertises)
to the node and waits for its answer. The node's payload is printed as
indented JSON; --json prints the whole response ({ok, nodeId, command,
payload}).

--timeout, when given, is also how long the gateway waits for the node
(timeoutMs); without it the gateway's nodes.invokeTimeoutMs applies.

Exit status: 0 when the node answered ok; 1 when the node failed, timed
out, disconnected, is offline, busy or not paired, or does not advertise
COMMAND (the reason and its details go to stderr); 3 when the gateway is
unreachable; 4 on bad credentials.

Examples:
  gatewayctl nodes invoke kitchen-pi camera.snap --params '{"quality":80}'
  gatewayctl nodes invoke 7837d64b system.run --params '{"cmd":"uptime"}' --timeout 30s`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			pos, err := positional(fs, args, 2, "nodes invoke needs NODE and COMMAND", " (usage: gatewayctl nodes invoke NODE COMMAND [--params JSON])")
			if err != nil {
				return err
			}
			req := map[string]any{"command": pos[1]}
			p, err := jsonParams(*params, `{"x":1}`)
			if err != nil {
				return err
			}
			if p != nil {
				req["params"] = p
			}
			// OpenClaw requires an idempotency key (its node.invoke params
			// schema); one per invocation is what a retry-free CLI call
			// means.
			req["idempotencyKey"] = cmp.Or(*key, uuid.NewString())
			wait := nodeInvokeMaxWait
			if flagGiven(fs, "timeout") {
				if a.g.timeout < 100*time.Millisecond {
					return usageErr(fmt.Errorf("--timeout %s is shorter than the 100ms a node invoke can be given", a.g.timeout))
				}
				req["timeoutMs"] = a.g.timeout.Milliseconds()
				wait = a.g.timeout + 5*time.Second
			}
			return a.withConn(ctx, invokeScopes(pos[1]), func(cctx context.Context, c *client.Conn) error {
				id, err := resolveNode(cctx, c, pos[0])
				if err != nil {
					return err
				}
				req["nodeId"] = id
				ictx, cancel := context.WithTimeout(ctx, wait)
				defer cancel()
				return callPrint(a, ictx, c, nodeproto.MethodInvoke, req, func(res *nodeproto.InvokeResponse) error {
					return writeJSON(a.stdout, res.Payload)
				})
			})
		},
	}
}

// adminInvokeCommands are the node commands OpenClaw lets only
// operator.admin invoke (node-commands.ts: isAdminOnlyNodeInvokeCommand).
var adminInvokeCommands = []string{"browser.proxy", "browser.proxy.upload.v1", "fs.listDir", "terminal.upload"}

// invokeScopes are the scopes nodes invoke asks for to run command.
func invokeScopes(command string) []string {
	if slices.Contains(adminInvokeCommands, command) {
		return append(slices.Clone(nodeInvokeScopes), protocol.ScopeAdmin)
	}
	return nodeInvokeScopes
}

// nodesIsID reports whether s is a full node id (64 hex digits).
func nodesIsID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// resolveNode turns a NODE argument (full id, unique id prefix, or exact
// display name) into a node id, asking node.list when it is not a full id.
func resolveNode(ctx context.Context, c *client.Conn, arg string) (string, error) {
	if nodesIsID(strings.ToLower(arg)) {
		return strings.ToLower(arg), nil
	}
	l, err := callDecode[nodeproto.NodeList](ctx, c, nodeproto.MethodList, nil)
	if err != nil {
		return "", err
	}
	var byName, byPrefix []string
	for _, n := range l.Nodes {
		if n.DisplayName == arg {
			byName = append(byName, n.NodeID)
		}
		if arg != "" && strings.HasPrefix(n.NodeID, strings.ToLower(arg)) {
			byPrefix = append(byPrefix, n.NodeID)
		}
	}
	for _, m := range [][]string{byName, byPrefix} {
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0], nil
		}
		return "", withCode(ExitProblem, fmt.Errorf("%q matches %d nodes (%s); give more of the node id", arg, len(m), strings.Join(nodesShortIDs(m), ", ")))
	}
	return "", withCode(ExitProblem, fmt.Errorf("no paired node matches %q (see gatewayctl nodes list; unpaired nodes are in gatewayctl pairing list)", arg))
}

func nodesShortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = nodesShortID(id)
	}
	return out
}

// nodesShortID is the first 12 characters of an id, as list output shows it.
func nodesShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// nodesTime renders a unix-ms time for humans ("-" when unset).
func nodesTime(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format(time.RFC3339)
}

func nodesDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nodesListDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func printNodeList(w io.Writer, list []nodeproto.NodeInfo) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no paired nodes (a node asks to pair when it connects: see gatewayctl pairing list)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAME\tPLATFORM\tSTATUS\tCOMMANDS")
	for _, n := range list {
		status := "offline"
		if n.Connected {
			status = "connected"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", nodesShortID(n.NodeID), nodesDash(n.DisplayName), nodesDash(n.Platform), status, nodesListDash(n.Commands))
	}
	tw.Flush()
}

func printNodeInfo(w io.Writer, n *nodeproto.NodeInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := "offline, last seen " + nodesTime(n.LastSeenMs)
	if n.Connected {
		status = "connected since " + nodesTime(n.ConnectedAtMs)
	}
	rows := [][2]string{
		{"node", n.NodeID},
		{"name", nodesDash(n.DisplayName)},
		{"status", status},
		{"platform", nodesDash(n.Platform)},
		{"version", nodesDash(n.Version)},
		{"device family", nodesDash(n.DeviceFamily)},
		{"model", nodesDash(n.ModelIdentifier)},
		{"address", nodesDash(n.RemoteIP)},
		{"caps", nodesListDash(n.Caps)},
		{"commands", nodesListDash(n.Commands)},
		{"approved", nodesTime(n.ApprovedAtMs)},
		{"invokes running", fmt.Sprint(n.Inflight)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
}
