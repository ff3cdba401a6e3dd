package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/bench"
	"github.com/gatewayd/gatewayd/daemon/client"
)

func (a *app) benchCommand() *ffcli.Command {
	fs := a.flagSet("bench")
	conns := fs.Int("conns", bench.DefaultConns, "connections, each driven by its own loop")
	pipeline := fs.Int("pipeline", bench.DefaultPipeline, fmt.Sprintf("requests in flight per connection (1-%d); 1 is a closed loop, the honest latency figure", bench.MaxPipeline))
	duration := fs.Duration("duration", bench.DefaultDuration, "how long to measure")
	warmup := fs.Duration("warmup", 0, "calls before measuring, not recorded")
	method := fs.String("method", bench.DefaultMethod, "the `method` to call")
	params := fs.String("params", "", "request params as a JSON `object` (omitted when empty)")
	return &ffcli.Command{
		Name:       "bench",
		ShortUsage: "gatewayctl bench [--conns N] [--pipeline N] [--duration D] [--method M] [--params JSON] [--json]",
		ShortHelp:  "Load-test the gateway: requests, errors, req/s and latency percentiles.",
		LongHelp: `Opens --conns connections (with all operator scopes) and drives each with
--pipeline --method calls in flight for --duration, after an unrecorded
--warmup. With --pipeline 1 (the default) each connection is a closed loop
of sequential calls: the latency figure to quote. A larger --pipeline keeps
that many requests outstanding per connection, written together, to
measure the gateway's throughput rather than the round trip; a call's
latency then runs from the write that carried it to its response. Every
call's latency is recorded; the report gives requests, errors, req/s, and
exact p50/p99/p99.9/max latency. --json prints {conns, pipeline,
durationMs, requests, errors, rps, p50Ms, p99Ms, p999Ms, maxMs,
firstError?}.

Exit status 1 when any call failed (the first error is shown).`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("bench takes no arguments, got %q", args))
			}
			if *conns < 1 || *conns > bench.MaxConns {
				return usageErr(fmt.Errorf("--conns %d is out of range (use 1-%d)", *conns, bench.MaxConns))
			}
			if *pipeline < 1 || *pipeline > bench.MaxPipeline {
				return usageErr(fmt.Errorf("--pipeline %d is out of range (use 1-%d)", *pipeline, bench.MaxPipeline))
			}
			if *duration <= 0 || *warmup < 0 {
				return usageErr(fmt.Errorf("--duration must be positive and --warmup not negative"))
			}
			var p any
			if s := strings.TrimSpace(*params); s != "" {
				if !json.Valid([]byte(s)) {
					return usageErr(fmt.Errorf("--params is not valid JSON: %q", s))
				}
				p = json.RawMessage(s)
			}
			return a.bench(ctx, bench.Options{Conns: *conns, Pipeline: *pipeline, Duration: *duration, Warmup: *warmup,
				Method: *method, Params: p, CallTimeout: a.g.timeout})
		},
	}
}

func (a *app) bench(ctx context.Context, o bench.Options) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	o.Client = client.Options{URL: t.URL, Token: t.Token, Password: t.Password, Scopes: allScopes,
		HandshakeTimeout: a.g.timeout, Logger: a.logger()}
	r, err := bench.Run(ctx, o)
	if err != nil {
		var de *client.DialError
		if errors.As(err, &de) && de.IsAuth() {
			de.Fix = a.authFix(t, de)
		}
		return err
	}
	if a.g.json {
		if err := writeValue(a.stdout, r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "%s %s against %s\n", o.Method, r.Duration.Round(time.Millisecond), t.URL)
		fmt.Fprint(a.stdout, r.String())
	}
	if r.Errors > 0 {
		return withCode(ExitProblem, fmt.Errorf("%d of %d calls failed; first error: %s", r.Errors, r.Requests, r.FirstError))
	}
	return nil
}
