package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

func (a *app) pairingCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:       "pairing",
		ShortUsage: "gatewayctl pairing list|approve|reject|remove [flags] [args]",
		ShortHelp:  "Approve or reject nodes and chat senders asking to pair; list or unpair paired nodes.",
		LongHelp: `A node that connects without being paired is refused ("pairing required")
and leaves a pending request, which expires after nodes.pendingTtlMs (5
minutes by default) unless the node asks again. Approving it pairs the
node: on its next connect it receives its own credential.

A chat channel (Telegram, Matrix) with dmPolicy "pairing" answers an
unknown sender with a pairing code and leaves a pending request (listed
under CHANNEL REQUEST, expiring after an hour). approve CODE lets that
sender's messages reach the agent; reject CODE dismisses the request.
Channel requests are named by the code the sender got or the request id.

REQUEST arguments take the request id, a unique prefix of it, or a unique
prefix of the node id of a pending request. These commands ask for
operator.pairing and operator.admin: approving a node takes operator.admin
when it offers commands that run programs or reach the host (system.run,
system.which, fs.listDir, browser.proxy …), on gatewayd as on an OpenClaw
gateway (a shared-secret operator is granted both).`,
		FlagSet: a.flagSet("pairing"),
		Subcommands: []*ffcli.Command{a.pairingListCommand(), a.pairingResolveCommand(true), a.pairingResolveCommand(false),
			a.pairingRemoveCommand()},
		Exec: func(context.Context, []string) error {
			return usageErr(errors.New("pairing needs a subcommand: list, approve, reject or remove"))
		},
	}
}

func (a *app) pairingListCommand() *ffcli.Command {
	fs := a.flagSet("pairing list")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "gatewayctl pairing list [--json]",
		ShortHelp:  "List pending pairing requests and paired nodes.",
		LongHelp:   `--json prints the node.pair.list payload ({pending:[…], paired:[…]}).`,
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("pairing list takes no arguments, got %q", strings.Join(args, " ")))
			}
			return a.withConn(ctx, pairingScopes, func(cctx context.Context, c *client.Conn) error {
				if a.g.json {
					return callPrint(a, cctx, c, nodeproto.MethodPairList, nil, func(l *nodeproto.PairList) error { return nil })
				}
				if err := callPrint(a, cctx, c, nodeproto.MethodPairList, nil, func(l *nodeproto.PairList) error {
					printPairList(a.stdout, l)
					return nil
				}); err != nil {
					return err
				}
				return printChannelPairing(cctx, a.stdout, c)
			})
		},
	}
}

func (a *app) pairingResolveCommand(approve bool) *ffcli.Command {
	name, method, verb := "reject", nodeproto.MethodPairReject, "rejected"
	help := "Reject a pending pairing request (the node stays unpaired)."
	if approve {
		name, method, verb = "approve", nodeproto.MethodPairApprove, "approved"
		help = "Approve a pending pairing request: the node is paired."
	}
	fs := a.flagSet("pairing " + name)
	return &ffcli.Command{
		Name:       name,
		ShortUsage: "gatewayctl pairing " + name + " REQUEST [--json]",
		ShortHelp:  help,
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			pos, err := positional(fs, args, 1, "pairing "+name+" needs exactly one REQUEST id", " (see gatewayctl pairing list)")
			if err != nil {
				return err
			}
			return a.withConn(ctx, pairingScopes, func(cctx context.Context, c *client.Conn) error {
				if done, err := a.resolveChannelPairing(cctx, c, pos[0], approve); done {
					return err
				}
				req, err := resolveRequest(cctx, c, pos[0])
				if err != nil {
					return err
				}
				return callPrint(a, cctx, c, method, map[string]string{"requestId": req.RequestID}, func(*json.RawMessage) error {
					who := req.NodeID
					if req.DisplayName != "" {
						who += " (" + req.DisplayName + ")"
					}
					fmt.Fprintf(a.stdout, "%s pairing request %s of node %s\n", verb, req.RequestID, who)
					return nil
				})
			})
		},
	}
}

func (a *app) pairingRemoveCommand() *ffcli.Command {
	fs := a.flagSet("pairing remove")
	return &ffcli.Command{
		Name:       "remove",
		ShortUsage: "gatewayctl pairing remove NODE [--json]",
		ShortHelp:  "Unpair a node: its credential stops working and it is disconnected.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			pos, err := positional(fs, args, 1, "pairing remove needs exactly one NODE", " (see gatewayctl nodes list)")
			if err != nil {
				return err
			}
			return a.withConn(ctx, append([]string{protocol.ScopeRead}, pairingScopes...), func(cctx context.Context, c *client.Conn) error {
				id, err := resolveNode(cctx, c, pos[0])
				if err != nil {
					return err
				}
				return callPrint(a, cctx, c, nodeproto.MethodPairRemove, map[string]string{"nodeId": id}, func(*json.RawMessage) error {
					fmt.Fprintf(a.stdout, "unpaired node %s\n", id)
					return nil
				})
			})
		},
	}
}

// resolveRequest finds the pending request an argument names: its id, a
// unique prefix of it, or a unique prefix of its node id.
func resolveRequest(ctx context.Context, c *client.Conn, arg string) (*nodeproto.PairingRequest, error) {
	l, err := callDecode[nodeproto.PairList](ctx, c, nodeproto.MethodPairList, nil)
	if err != nil {
		return nil, err
	}
	low := strings.ToLower(arg)
	var exact, prefix []*nodeproto.PairingRequest
	for i := range l.Pending {
		r := &l.Pending[i]
		switch {
		case r.RequestID == arg:
			exact = append(exact, r)
		case arg != "" && (strings.HasPrefix(r.RequestID, low) || strings.HasPrefix(r.NodeID, low)):
			prefix = append(prefix, r)
		}
	}
	if len(exact) == 1 {
		return exact[0], nil
	}
	switch len(prefix) {
	case 1:
		return prefix[0], nil
	case 0:
		return nil, withCode(ExitProblem, fmt.Errorf("no pending pairing request matches %q: it was resolved, expired or never existed (see gatewayctl pairing list; the node asks again when it reconnects)", arg))
	}
	ids := make([]string, len(prefix))
	for i, r := range prefix {
		ids[i] = r.RequestID
	}
	return nil, withCode(ExitProblem, fmt.Errorf("%q matches %d pending requests (%s); give the full request id", arg, len(prefix), strings.Join(ids, ", ")))
}

// pendingRow is one pending request as gatewayctl pairing list prints
// it, whatever asks: today a node asking to pair (node.pair.list); other
// kinds (a channel's DM pairing) add their rows with their own Kind.
type pendingRow struct {
	ID, Kind, Who, Name, Platform, Address, Detail string
	ExpiresAtMs                                    int64
}

// nodePendingRows are the node pairing requests of l.
func nodePendingRows(l *nodeproto.PairList) []pendingRow {
	rows := make([]pendingRow, 0, len(l.Pending))
	for _, r := range l.Pending {
		name := nodesDash(r.DisplayName)
		if r.IsRepair {
			name += " (repair)"
		}
		rows = append(rows, pendingRow{ID: r.RequestID, Kind: "node", Who: nodesShortID(r.NodeID), Name: name,
			Platform: nodesDash(r.Platform), Address: nodesDash(r.RemoteIP), Detail: nodesListDash(r.Commands), ExpiresAtMs: r.ExpiresAtMs})
	}
	return rows
}

// printPending prints pending requests of every kind in one table.
func printPending(tw io.Writer, rows []pendingRow) {
	if len(rows) == 0 {
		fmt.Fprintln(tw, "no pending pairing requests")
		return
	}
	fmt.Fprintln(tw, "PENDING REQUEST\tKIND\tWHO\tNAME\tPLATFORM\tADDRESS\tCOMMANDS\tEXPIRES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.Who, r.Name, r.Platform, r.Address, r.Detail, nodesTime(r.ExpiresAtMs))
	}
}

func printPairList(w io.Writer, l *nodeproto.PairList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printPending(tw, nodePendingRows(l))
	fmt.Fprintln(tw)
	if len(l.Paired) == 0 {
		fmt.Fprintln(tw, "no paired nodes")
	} else {
		fmt.Fprintln(tw, "PAIRED NODE\tNAME\tPLATFORM\tAPPROVED\tLAST SEEN")
		for _, n := range l.Paired {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", nodesShortID(n.NodeID), nodesDash(n.DisplayName), nodesDash(n.Platform), nodesTime(n.ApprovedAtMs), nodesTime(n.LastSeenMs))
		}
	}
	tw.Flush()
}
