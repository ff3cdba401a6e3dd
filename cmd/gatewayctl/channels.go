package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// probeWait bounds channels status --probe (the gateway bounds each probe
// to 10 s).
const probeWait = 20 * time.Second

func (a *app) channelsCommand() *ffcli.Command {
	fs := a.flagSet("channels status")
	probe := fs.Bool("probe", false, "check each linked channel's receiver live")
	status := &ffcli.Command{
		Name:       "status",
		ShortUsage: "gatewayctl channels status [--probe] [--json]",
		ShortHelp:  "Show the delivery channels: linked or not, last delivery and error.",
		LongHelp: `Calls channels.status and prints one line per configured channel: its
kind, its state (webhooks: ready; Telegram and Matrix: connecting,
connected as ACCOUNT, disconnected with the last error, disabled,
unlinked), whether it is linked (able to deliver) and if not why, the
targets routed to it, and its last delivery and last error. --probe also
checks each channel live (a HEAD request for webhooks, any answer below 500
counting as reachable; getMe for Telegram; whoami for Matrix). --json
prints the payload.

Exit status 0 when every channel is linked (and, with --probe, reachable),
1 when one is not, 3 unreachable, 4 authentication failed.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("channels status takes no arguments, got %q", args))
			}
			return a.channelsStatus(ctx, *probe)
		},
	}
	return &ffcli.Command{
		Name:        "channels",
		ShortUsage:  "gatewayctl channels status [--probe] [--json]",
		ShortHelp:   "Inspect the gateway's delivery channels.",
		FlagSet:     a.flagSet("channels"),
		Subcommands: []*ffcli.Command{status},
		Exec: func(context.Context, []string) error {
			return usageErr(errors.New("channels needs a subcommand: status (run gatewayctl channels status -h)"))
		},
	}
}

func (a *app) channelsStatus(ctx context.Context, probe bool) error {
	c, err := a.connect(ctx, readScopes)
	if err != nil {
		return err
	}
	defer c.Close()
	wait := a.g.timeout
	if probe {
		wait = max(wait, probeWait)
	}
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	raw, err := callRPC(cctx, c, "channels.status", channelproto.StatusParams{Probe: probe})
	if err != nil {
		return err
	}
	st, err := decodePayload[channelproto.StatusPayload]("channels.status", raw)
	if err != nil {
		return err
	}
	problems := 0
	for _, ch := range st.Channels {
		if !ch.Linked || (ch.Probe != nil && !ch.Probe.OK) {
			problems++
		}
	}
	if a.g.json {
		if err := writeJSON(a.stdout, raw); err != nil {
			return err
		}
	} else {
		printChannels(a, st)
	}
	if problems > 0 {
		return withCode(ExitProblem, fmt.Errorf("%d of %d channels cannot deliver (see the reasons above)", problems, len(st.Channels)))
	}
	return nil
}

func printChannels(a *app, st *channelproto.StatusPayload) {
	if len(st.Channels) == 0 {
		fmt.Fprintln(a.stdout, "no channels configured: send answers NOT_LINKED (add one under channels.webhooks, channels.telegram or channels.matrix in the config file)")
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tKIND\tSTATE\tLINKED\tTARGETS\tLAST DELIVERY\tLAST ERROR")
	for _, ch := range st.Channels {
		linked := "yes"
		if !ch.Linked {
			linked = "no"
		}
		targets := strings.Join(ch.Targets, ",")
		if ch.Default {
			targets = strings.TrimPrefix(targets+",(default)", ",")
		}
		if targets == "" {
			targets = "-"
		}
		last, lastErr := "-", "-"
		if d := ch.LastDelivery; d != nil {
			last = fmt.Sprintf("%s to %s", ago(d.TS), d.To)
		}
		if e := ch.LastError; e != nil {
			lastErr = fmt.Sprintf("%s to %s", ago(e.TS), e.To)
		}
		state := ch.State
		if ch.Link != nil && ch.Link.Account != "" && ch.State == channelproto.StateConnected {
			state += " as " + ch.Link.Account
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ch.Name, ch.Kind, state, linked, targets, last, lastErr)
	}
	tw.Flush()
	for _, ch := range st.Channels {
		if !ch.Linked {
			fmt.Fprintf(a.stdout, "%s: not linked: %s\n", ch.Name, ch.Reason)
		}
		if e := ch.LastError; e != nil && (ch.LastDelivery == nil || e.TS > ch.LastDelivery.TS) {
			fmt.Fprintf(a.stdout, "%s: last error: %s\n", ch.Name, e.Message)
		}
		if ch.Link != nil && ch.Pending > 0 {
			fmt.Fprintf(a.stdout, "%s: %d pending pairing request(s) (gatewayctl pairing list)\n", ch.Name, ch.Pending)
		}
		if ch.Link != nil && ch.Inbox > 0 {
			fmt.Fprintf(a.stdout, "%s: %d received message(s) waiting for an answer\n", ch.Name, ch.Inbox)
		}
		if p := ch.Probe; p != nil {
			switch {
			case p.OK && p.Account != "":
				fmt.Fprintf(a.stdout, "%s: probe ok (%s, %d ms)\n", ch.Name, p.Account, p.LatencyMs)
			case p.OK:
				fmt.Fprintf(a.stdout, "%s: probe ok (HTTP %d, %d ms)\n", ch.Name, p.Status, p.LatencyMs)
			default:
				fmt.Fprintf(a.stdout, "%s: probe FAILED: %s\n", ch.Name, p.Error)
			}
		}
	}
}

// ago renders a unix-ms time as "3m ago" (UTC time when older than a day).
func ago(ms int64) string {
	t := time.UnixMilli(ms)
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.UTC().Format(time.RFC3339)
}
