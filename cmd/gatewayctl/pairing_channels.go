package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// printChannelPairing lists the chat channels' pending DM pairing
// requests (channels.pairing.list). A gateway without chat channels (or an
// older one) lists none.
func printChannelPairing(ctx context.Context, w io.Writer, c *client.Conn) error {
	l, err := callDecode[channelproto.PairingList](ctx, c, channelproto.MethodPairingList, nil)
	if err != nil {
		return nil // node pairing was listed; a gateway without channel pairing lists none
	}
	if len(l.Accounts) == 0 && len(l.Requests) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw)
	if len(l.Requests) == 0 {
		fmt.Fprintln(tw, "no pending channel pairing requests")
		return tw.Flush()
	}
	fmt.Fprintln(tw, "CHANNEL REQUEST\tCHANNEL\tSENDER\tNAME\tLAST SEEN\tEXPIRES")
	for _, r := range l.Requests {
		name := "-"
		if n := r.Metadata["name"]; n != "" {
			name = n
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\n", r.RequestID, r.Channel, r.ChannelLabel, r.SenderID, name, rfcAgo(r.LastSeenAt), rfcAgo(r.ExpiresAt))
	}
	fmt.Fprintln(tw, "approve with: gatewayctl pairing approve CODE (the code the sender got)")
	return tw.Flush()
}

func rfcAgo(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("2006-01-02 15:04")
}

// resolveChannelPairing approves or dismisses a channel pairing request
// named by its code or request id. done is false when arg names none (then
// it may be a node request).
func (a *app) resolveChannelPairing(ctx context.Context, c *client.Conn, arg string, approve bool) (done bool, err error) {
	l, err := callDecode[channelproto.PairingList](ctx, c, channelproto.MethodPairingList, nil)
	if err != nil {
		return false, nil
	}
	var match *channelproto.PairingRequest
	for i := range l.Requests {
		if l.Requests[i].RequestID == arg {
			match = &l.Requests[i]
		}
	}
	p := channelproto.PairingResolveParams{RequestID: arg}
	if match == nil {
		// Not a request id: a code, if it looks like one (codes are not
		// listed, the gateway checks them).
		code := strings.ToUpper(strings.TrimSpace(arg))
		if len(code) != 8 || len(l.Requests) == 0 {
			return false, nil
		}
		p = channelproto.PairingResolveParams{Code: code}
	}
	method, verb := channelproto.MethodPairingDismiss, "rejected"
	if approve {
		method, verb = channelproto.MethodPairingApprove, "approved"
	}
	res, err := callDecode[channelproto.PairingResolved](ctx, c, method, p)
	if err != nil {
		if match == nil && strings.Contains(err.Error(), "no longer exists") {
			return false, nil // not a channel code: maybe a node request
		}
		return true, err
	}
	if a.g.json {
		return true, writeValue(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "%s pairing request %s: sender %s on channel %s\n", verb, res.RequestID, res.SenderID, res.Channel)
	return true, nil
}
