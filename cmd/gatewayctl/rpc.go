package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// The scaffolding the RPC commands share: connect, call a method, print
// its payload as JSON (--json) or for humans, and map an error response to
// gatewayctl's exit codes.

// connect resolves the target and dials it with scopes; --timeout bounds
// the dial only.
func (a *app) connect(ctx context.Context, scopes []string) (*client.Conn, error) {
	t, err := a.resolve()
	if err != nil {
		return nil, err
	}
	dctx, cancel := a.callCtx(ctx)
	defer cancel()
	return a.dial(dctx, t, scopes)
}

// withConn resolves the target, dials it with scopes and runs fn; one
// --timeout bounds the dial and the context fn is given.
func (a *app) withConn(ctx context.Context, scopes []string, fn func(ctx context.Context, c *client.Conn) error) error {
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	c, err := a.connect(cctx, scopes)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(cctx, c)
}

// rpcError returns gatewayctl's RPC error (the message with details and
// retry hint, exit status 1) when err is an error response of the gateway,
// and nil when it is not.
func rpcError(err error) error {
	var ce *client.CallError
	if errors.As(err, &ce) {
		return callErrorMessage(ce)
	}
	return nil
}

// callRPC calls method; an error response becomes gatewayctl's RPC error
// (see rpcError), other errors pass unchanged.
func callRPC(ctx context.Context, c *client.Conn, method string, params any) (json.RawMessage, error) {
	raw, err := c.Call(ctx, method, params)
	if err != nil {
		if rerr := rpcError(err); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	return raw, nil
}

// decodePayload decodes the payload of method into a T.
func decodePayload[T any](method string, raw json.RawMessage) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decode %s payload: %w", method, err)
	}
	return v, nil
}

// callDecode calls method (see callRPC) and decodes its payload into a T.
func callDecode[T any](ctx context.Context, c *client.Conn, method string, params any) (*T, error) {
	raw, err := callRPC(ctx, c, method, params)
	if err != nil {
		return nil, err
	}
	return decodePayload[T](method, raw)
}

// printPayload prints the payload of method: as indented JSON with --json,
// else decoded into a T and handed to human.
func printPayload[T any](a *app, method string, raw json.RawMessage, human func(*T) error) error {
	if a.g.json {
		return writeJSON(a.stdout, raw)
	}
	v, err := decodePayload[T](method, raw)
	if err != nil {
		return err
	}
	return human(v)
}

// callPrint calls method (see callRPC) and prints its payload (see
// printPayload).
func callPrint[T any](a *app, ctx context.Context, c *client.Conn, method string, params any, human func(*T) error) error {
	raw, err := callRPC(ctx, c, method, params)
	if err != nil {
		return err
	}
	return printPayload(a, method, raw, human)
}

// positional parses fs over args (flags may follow the arguments) and
// returns the positional arguments when there are n of them; another count
// is the usage error "need, got N arguments" followed by hint.
func positional(fs *flag.FlagSet, args []string, n int, need, hint string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != n {
		return nil, usageErr(fmt.Errorf("%s, got %d arguments%s", need, len(pos), hint))
	}
	return pos, nil
}

// jsonParams validates a --params value: empty (after trimming) is nil,
// else it must be JSON; example is a valid value for the error message.
func jsonParams(s, example string) (json.RawMessage, error) {
	p := strings.TrimSpace(s)
	if p == "" {
		return nil, nil
	}
	if !json.Valid([]byte(p)) {
		return nil, usageErr(fmt.Errorf("--params is not valid JSON: %q (quote it for the shell, e.g. --params '%s')", p, example))
	}
	return json.RawMessage(p), nil
}

// flagGiven reports whether the flag name was given on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
