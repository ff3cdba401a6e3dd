package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// Follow-mode timing.
const (
	logsPollInterval   = 500 * time.Millisecond
	logsFollowBatch    = 1000             // lines per poll
	logsCatchUpPolls   = 50               // immediate re-polls while the server says more is waiting
	logsReconnectLimit = 60 * time.Second // give up when the gateway stays away this long
)

// tailResult is the payload of logs.tail.
type tailResult struct {
	File      string   `json:"file"`
	Cursor    int64    `json:"cursor"`
	Size      int64    `json:"size"`
	Lines     []string `json:"lines"`
	Truncated bool     `json:"truncated,omitempty"`
	Reset     bool     `json:"reset,omitempty"`
}

// tailParams are the params of logs.tail.
type tailParams struct {
	Cursor *int64 `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

func (a *app) logsCommand() *ffcli.Command {
	fs := a.flagSet("logs")
	follow := fs.Bool("follow", false, "keep printing new lines as the gateway writes them (Ctrl-C to stop)")
	limit := fs.Int("limit", 200, "print at most the last `N` lines first (1-5000)")
	return &ffcli.Command{
		Name:       "logs",
		ShortUsage: "gatewayctl logs [--follow] [--limit N] [--json]",
		ShortHelp:  "Print the gateway's log (its JSON-lines file, over the protocol).",
		LongHelp: `Prints the last --limit lines of the gateway's JSON-lines log, fetched with
the logs.tail method, as "TIME LEVEL msg key=value …" (local time), or the
raw JSON lines with --json.

--follow keeps one connection open and polls logs.tail by byte cursor every
500 ms, printing lines as they come; "log rotated" is noted on stderr when
the file was rotated or truncated. When the gateway shuts down or restarts
(a shutdown event, or the connection closes), --follow says so on stderr and
reconnects, continuing from the same cursor; it gives up with exit status 3
if the gateway stays unreachable for 60 s. Ctrl-C (SIGINT) or SIGTERM ends
it with status 0.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("logs takes no arguments, got %q", args))
			}
			if *limit < 1 || *limit > 5000 {
				return usageErr(fmt.Errorf("--limit %d is out of range (use 1-5000)", *limit))
			}
			return a.logs(ctx, *follow, *limit)
		},
	}
}

func (a *app) logs(ctx context.Context, follow bool, limit int) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	c, err := a.dialBounded(ctx, t)
	if err != nil {
		return err
	}
	defer func() { c.Close() }()
	res, err := a.tail(ctx, c, nil, limit)
	if err != nil {
		return err
	}
	a.printLines(res.Lines)
	if !follow {
		return nil
	}

	cursor := res.Cursor
	ticker := time.NewTicker(logsPollInterval)
	defer ticker.Stop()
	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil // the connection ended; c.Done() handles it
				continue
			}
			if ev.Name == "shutdown" {
				var sd struct {
					Reason string `json:"reason"`
				}
				_ = json.Unmarshal(ev.Payload, &sd) // the notice works without a reason
				fmt.Fprintf(a.stderr, "gatewayctl: gateway is shutting down (%s)\n", orDash(sd.Reason))
			}
		case <-c.Done():
			code, reason := c.CloseStatus()
			fmt.Fprintf(a.stderr, "gatewayctl: connection closed (%d %s); reconnecting\n", code, reason)
			nc, err := a.reconnect(ctx, t)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			c, events = nc, nc.Events()
			fmt.Fprintf(a.stderr, "gatewayctl: reconnected to %s\n", t.URL)
		case <-ticker.C:
			for range logsCatchUpPolls {
				res, err := a.tail(ctx, c, &cursor, logsFollowBatch)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if errors.Is(err, client.ErrClosed) {
						break // c.Done() is ready: reconnect there
					}
					return err
				}
				if res.Reset {
					fmt.Fprintf(a.stderr, "gatewayctl: log rotated; reading %s from the start\n", res.File)
				}
				a.printLines(res.Lines)
				cursor = res.Cursor
				if !res.Truncated || len(res.Lines) == 0 {
					break
				}
			}
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dialBounded dials with the --timeout bound on the handshake only: the
// returned connection lives on.
func (a *app) dialBounded(ctx context.Context, t *target) (*client.Conn, error) {
	return a.dial(ctx, t, readScopes) // Options.HandshakeTimeout is --timeout
}

// reconnect dials again with backoff until it works, authentication fails,
// ctx ends, or logsReconnectLimit passes.
func (a *app) reconnect(ctx context.Context, t *target) (*client.Conn, error) {
	deadline := time.Now().Add(logsReconnectLimit)
	backoff := 250 * time.Millisecond
	for {
		c, err := a.dialBounded(ctx, t)
		if err == nil {
			return c, nil
		}
		var de *client.DialError
		if errors.As(err, &de) && de.IsAuth() {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("gateway stayed unreachable for %s: %w", logsReconnectLimit, err)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (a *app) tail(ctx context.Context, c *client.Conn, cursor *int64, limit int) (*tailResult, error) {
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	var res tailResult
	if err := c.CallInto(cctx, "logs.tail", tailParams{Cursor: cursor, Limit: limit}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (a *app) printLines(lines []string) {
	for _, l := range lines {
		if a.g.json {
			fmt.Fprintln(a.stdout, l)
		} else {
			fmt.Fprintln(a.stdout, renderLogLine(l))
		}
	}
}
