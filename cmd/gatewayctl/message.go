package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// sendScopes: send needs operator.write.
var sendScopes = []string{protocol.ScopeRead, protocol.ScopeWrite}

func (a *app) messageCommand() *ffcli.Command {
	send := a.messageSendCommand()
	return &ffcli.Command{
		Name:        "message",
		ShortUsage:  "gatewayctl message send --target T --message TEXT [--channel NAME] [--json]",
		ShortHelp:   "Send messages through the gateway's channels.",
		FlagSet:     a.flagSet("message"),
		Subcommands: []*ffcli.Command{send},
		Exec: func(context.Context, []string) error {
			return usageErr(errors.New("message needs a subcommand: send (run gatewayctl message send -h)"))
		},
	}
}

func (a *app) messageSendCommand() *ffcli.Command {
	fs := a.flagSet("message send")
	targetF := fs.String("target", "", "the `target` to deliver to, e.g. ops (required)")
	text := fs.String("message", "", "the message `text` (required)")
	channel := fs.String("channel", "", "deliver through this channel `name` instead of routing by target")
	key := fs.String("idempotency-key", "", "idempotency `key`; default a new UUID. A repeat with the same key is not delivered twice")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the delivery, retries included")
	return &ffcli.Command{
		Name:       "send",
		ShortUsage: "gatewayctl message send --target T --message TEXT [--channel NAME] [--idempotency-key K] [--json]",
		ShortHelp:  "Deliver one message through a channel (the send method).",
		LongHelp: `Calls the gateway's send method. The gateway picks the channel: --channel
if given, else the first channel whose targets match --target, else
channels.default. A webhook channel's receiver gets signed JSON, failed
attempts retried by the gateway with backoff; a Telegram channel's target
is a chat id (or @channelname), a Matrix channel's a room id (!room:server),
long text split at the provider's limit. This command waits for the
outcome (--wait). A Telegram or Matrix channel that is not connected
answers NOT_LINKED with the reason.

Every send carries an idempotency key (a new UUID unless you pass one). A
key that was delivered is not delivered again: repeating the command with
the same --idempotency-key prints the first delivery, marked as a repeat.

Exit status 0 delivered, 1 not delivered (NOT_LINKED: no channel can
deliver to the target; or the receiver kept failing), 2 usage,
3 unreachable, 4 authentication failed.

Examples:
  gatewayctl message send --target ops --message "deploy done"
  gatewayctl message send --target ops --message "deploy done" --channel pager --json
  gatewayctl message send --channel matrix --target '!room:example.org' --message "deploy done"`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("message send takes no arguments, got %q (quote the message: --message \"...\")", args))
			}
			if strings.TrimSpace(*targetF) == "" || *text == "" {
				return usageErr(errors.New("message send needs --target and --message (e.g. --target ops --message \"deploy done\")"))
			}
			k := *key
			if k == "" {
				k = uuid.NewString()
			}
			return a.messageSend(ctx, channelproto.SendParams{To: *targetF, Message: *text, Channel: *channel, IdempotencyKey: k}, *wait)
		},
	}
}

func (a *app) messageSend(ctx context.Context, p channelproto.SendParams, wait time.Duration) error {
	c, err := a.connect(ctx, sendScopes)
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, max(wait, a.g.timeout))
	defer cancel()
	raw, err := callRPC(sctx, c, "send", p)
	if err != nil {
		if !errors.Is(err, errRPC) && sctx.Err() != nil {
			return withCode(ExitProblem, fmt.Errorf("no outcome after %s; the gateway goes on delivering (repeat with --idempotency-key %s for the outcome, or raise --wait): %w", max(wait, a.g.timeout), p.IdempotencyKey, err))
		}
		return err
	}
	return printPayload(a, "send", raw, func(d *channelproto.Delivery) error {
		a.printDelivery(d)
		return nil
	})
}

// printDelivery says where the send went (or that it was a repeat).
func (a *app) printDelivery(d *channelproto.Delivery) {
	how := fmt.Sprintf("%d attempt%s", d.Attempts, map[bool]string{true: "", false: "s"}[d.Attempts == 1])
	if d.Status != 0 {
		how += fmt.Sprintf(", HTTP %d", d.Status)
	}
	if d.Deduplicated {
		fmt.Fprintf(a.stdout, "already sent to %s via %s (%s) at %s: idempotency key %s was delivered before, not sent again\n",
			d.To, d.Channel, d.Kind, time.UnixMilli(d.DeliveredAt).UTC().Format(time.RFC3339), d.IdempotencyKey)
		return
	}
	fmt.Fprintf(a.stdout, "sent to %s via %s (%s, %s, delivery %s, idempotency key %s)\n", d.To, d.Channel, d.Kind, how, d.DeliveryID, d.IdempotencyKey)
}
