package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// healthRetryInterval is the pause between attempts of `health --wait`.
const healthRetryInterval = 100 * time.Millisecond

func (a *app) healthCommand() *ffcli.Command {
	fs := a.flagSet("health")
	wait := fs.Duration("wait", 0, "retry until healthy or this much time has passed (e.g. 5s); 0 tries once")
	return &ffcli.Command{
		Name:       "health",
		ShortUsage: "gatewayctl health [--wait D] [--json]",
		ShortHelp:  "Check that the gateway answers and reports itself healthy.",
		LongHelp: `Connects, calls the health method and prints "ok" with the timings: the
connect (TCP + WebSocket + handshake) time, the RPC round trip, and the
server's own durationMs. --json prints the health payload instead.

The first health after an install needs no --wait: the connection starts
a socket-activated gateway, which writes its token file while starting;
when it answers that no token was sent and none is configured, health
re-reads the token file (up to 3 s) and connects once more.

--wait D retries (every 100 ms) while the gateway is unreachable, starting,
or unhealthy, until it is healthy or D has passed. Authentication failures
are not retried, except a missing token while no secret is configured and
the gateway's token file does not exist yet (a gateway that is starting
writes it). Exit status 0 healthy, 1 unhealthy, 3 unreachable,
4 authentication failed.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("health takes no arguments, got %q", args))
			}
			return a.health(ctx, *wait)
		},
	}
}

type healthTimings struct {
	connect, rpc time.Duration
}

func (a *app) health(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		// Resolve on every attempt: a gateway that is starting writes its
		// token file only after it started listening.
		t, err := a.resolve()
		if err != nil {
			return err
		}
		payload, tm, err := a.healthOnce(ctx, t)
		if err == nil {
			return a.printHealth(t, payload, tm)
		}
		giveUp := wait <= 0 || !(retryable(err) || tokenNotWrittenYet(t, err)) || ctx.Err() != nil
		if !giveUp && time.Now().Add(healthRetryInterval).After(deadline) {
			giveUp = true
			err = fmt.Errorf("gave up after %d attempts in %s: %w", attempt, wait, err)
		}
		if giveUp {
			if payload != nil && a.g.json {
				_ = writeJSON(a.stdout, payload) // the unhealthy payload is the answer
			}
			return err
		}
		if a.g.verbose {
			fmt.Fprintf(a.stderr, "gatewayctl: attempt %d: %v; retrying\n", attempt, err)
		}
		timer := time.NewTimer(healthRetryInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// errUnhealthy is returned when the gateway answers health with ok:false.
type errUnhealthy struct {
	url     string
	payload json.RawMessage
}

func (e *errUnhealthy) Error() string {
	return fmt.Sprintf("gateway at %s reports unhealthy: %s (see gatewayctl logs, and gatewayctl status)", e.url, compactJSON(e.payload))
}

// tokenNotWrittenYet reports an auth failure that waiting can fix: no
// secret was configured and the gateway's token file did not exist yet.
func tokenNotWrittenYet(t *target, err error) bool {
	var de *client.DialError
	return t.SecretSource == "none" && errors.As(err, &de) && de.DetailCode() == protocol.DetailAuthTokenMissing
}

func retryable(err error) bool {
	var de *client.DialError
	if errors.As(err, &de) {
		return !de.IsAuth() && (de.IsUnreachable() || de.Server == nil)
	}
	var eu *errUnhealthy
	if errors.As(err, &eu) {
		return true
	}
	return errors.Is(err, client.ErrClosed)
}

func (a *app) healthOnce(ctx context.Context, t *target) (json.RawMessage, healthTimings, error) {
	var tm healthTimings
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	c, err := a.dial(cctx, t, readScopes)
	if err != nil {
		return nil, tm, err
	}
	defer c.Close()
	tm.connect = time.Since(t0)
	t1 := time.Now()
	raw, err := c.Call(cctx, "health", struct{}{})
	if err != nil {
		return nil, tm, err
	}
	tm.rpc = time.Since(t1)
	var h struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, tm, fmt.Errorf("health payload from %s is not a health object: %w", t.URL, err)
	}
	if !h.OK {
		return raw, tm, withCode(ExitProblem, &errUnhealthy{url: t.URL, payload: raw})
	}
	return raw, tm, nil
}

func (a *app) printHealth(t *target, raw json.RawMessage, tm healthTimings) error {
	if a.g.json {
		return writeJSON(a.stdout, raw)
	}
	var h struct {
		DurationMs float64 `json:"durationMs"`
	}
	_ = json.Unmarshal(raw, &h) // checked by healthOnce; durationMs is optional
	fmt.Fprintf(a.stdout, "ok: gateway at %s is healthy (connect %s, rpc %s, server %s)\n",
		t.URL, fmtMs(tm.connect), fmtMs(tm.rpc), fmtMs(time.Duration(h.DurationMs*float64(time.Millisecond))))
	return nil
}

func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// writeJSON prints raw JSON indented, with a final newline.
func writeJSON(w io.Writer, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("null")
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("gateway sent invalid JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// writeValue prints v as indented JSON.
func writeValue(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON output: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	s := b.String()
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
