package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
)

func (a *app) callCommand() *ffcli.Command {
	fs := a.flagSet("call")
	params := fs.String("params", "", "request params as a JSON `object` (omitted when empty)")
	return &ffcli.Command{
		Name:       "call",
		ShortUsage: "gatewayctl call METHOD [--params JSON]",
		ShortHelp:  "Call one gateway method and print its payload as JSON.",
		LongHelp: `Connects with all operator scopes, sends one request and prints the
response payload as indented JSON on stdout. Without --params the request
has no params field (as the OpenClaw CLI sends status).

An error response goes to stderr as "METHOD: CODE: message" with its
details, and the exit status is 1. Invalid --params JSON is a usage error
(exit status 2).

Examples:
  gatewayctl call system-presence
  gatewayctl call logs.tail --params '{"limit":10}'
  gatewayctl call system-event --params '{"text":"deploy finished"}'`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			pos, err := positional(fs, args, 1, "call needs exactly one METHOD", " (usage: gatewayctl call METHOD [--params JSON])")
			if err != nil {
				return err
			}
			raw, err := jsonParams(*params, `{"limit":5}`)
			if err != nil {
				return err
			}
			return a.call(ctx, pos[0], raw)
		},
	}
}

func (a *app) call(ctx context.Context, method string, params json.RawMessage) error {
	return a.withConn(ctx, allScopes, func(cctx context.Context, c *client.Conn) error {
		var p any
		if params != nil {
			p = params
		}
		raw, err := callRPC(cctx, c, method, p)
		if err != nil {
			return err
		}
		return writeJSON(a.stdout, raw)
	})
}

// callErrorMessage renders an RPC error with its details and retry hint.
func callErrorMessage(ce *client.CallError) error {
	msg := ce.Error()
	if ce.Err.Details != nil {
		if b, err := json.Marshal(ce.Err.Details); err == nil {
			msg += " (details: " + string(b) + ")"
		}
	}
	if ce.Err.Retryable {
		msg += " (retryable"
		if ce.Err.RetryAfterMs > 0 {
			msg += fmt.Sprintf(": retry after %d ms", ce.Err.RetryAfterMs)
		}
		msg += ")"
	}
	return &exitError{code: ExitProblem, err: fmt.Errorf("%s: %w", msg, errRPC)}
}

// errRPC marks errors that are the gateway's answer to a call.
var errRPC = errors.New("the gateway returned an error")
