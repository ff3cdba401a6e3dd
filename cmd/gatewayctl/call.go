package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
			pos, err := parseInterspersed(fs, args)
			if err != nil {
				return err
			}
			if len(pos) != 1 {
				return usageErr(fmt.Errorf("call needs exactly one METHOD, got %d arguments (usage: gatewayctl call METHOD [--params JSON])", len(pos)))
			}
			var raw json.RawMessage
			if p := strings.TrimSpace(*params); p != "" {
				if !json.Valid([]byte(p)) {
					return usageErr(fmt.Errorf("--params is not valid JSON: %q (quote it for the shell, e.g. --params '{\"limit\":5}')", p))
				}
				raw = json.RawMessage(p)
			}
			return a.call(ctx, pos[0], raw)
		},
	}
}

func (a *app) call(ctx context.Context, method string, params json.RawMessage) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	c, err := a.dial(cctx, t, allScopes)
	if err != nil {
		return err
	}
	defer c.Close()
	var p any
	if params != nil {
		p = params
	}
	raw, err := c.Call(cctx, method, p)
	if err != nil {
		var ce *client.CallError
		if errors.As(err, &ce) {
			return callErrorMessage(ce)
		}
		return err
	}
	return writeJSON(a.stdout, raw)
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
