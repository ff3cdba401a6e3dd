package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// agentScopes: a run is a side effect (write); agent.wait is a read.
var agentScopes = []string{protocol.ScopeRead, protocol.ScopeWrite}

// agentWaitGrace is how long past the run's own timeout gatewayctl waits
// for the final answer before giving up on the gateway.
const agentWaitGrace = 15 * time.Second

func (a *app) agentCommand() *ffcli.Command {
	fs := a.flagSet("agent")
	message := fs.String("message", "", "the `text` to send to the agent (required)")
	agentID := fs.String("agent", "", "agent `id` (default: the gateway's agents.default)")
	session := fs.String("session", "", "session `key` whose transcript the run joins (default agent:<id>:main)")
	key := fs.String("idempotency-key", "", "run `id`; repeating one within 5 minutes joins that run (default: a new UUID)")
	return &ffcli.Command{
		Name:       "agent",
		ShortUsage: "gatewayctl agent --message TEXT [--agent ID] [--session KEY] [--json] [--timeout DURATION]",
		ShortHelp:  "Run an agent: stream its answer to stdout and wait for the end.",
		LongHelp: `Sends the "agent" method and prints the answer's text to stdout as it
streams in, then waits for the run's final status. With --json nothing is
streamed: the final result ({runId, status, summary, …}) is printed as JSON.

--timeout, when given, is also the run's timeout on the gateway (whole
seconds); without it the agent's configured timeout applies and gatewayctl
waits for as long as the run takes.

Exit status: 0 when the run ended ok; 1 when it ended with an error or timed
out (the reason goes to stderr), or the gateway refused it; 3 when the
gateway is unreachable or the connection was lost; 4 on bad credentials.

Examples:
  gatewayctl agent --message "summarise the last deploy"
  gatewayctl agent --agent ops --session deploys --message "status?" --timeout 2m
  gatewayctl agent --message hi --json`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("agent takes no arguments, got %q (pass the text with --message)", strings.Join(args, " ")))
			}
			if strings.TrimSpace(*message) == "" {
				return usageErr(errors.New("agent needs --message TEXT"))
			}
			return a.agent(ctx, client.AgentParams{Message: *message, AgentID: *agentID, SessionKey: *session, IdempotencyKey: *key}, flagGiven(fs, "timeout"))
		},
	}
}

func (a *app) agent(ctx context.Context, p client.AgentParams, timeoutSet bool) error {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = uuid.NewString()
	}
	var wait time.Duration
	if timeoutSet {
		if a.g.timeout < time.Second {
			return usageErr(fmt.Errorf("--timeout %s is shorter than the 1s a run can be given", a.g.timeout))
		}
		p.Timeout = int((a.g.timeout + time.Second - 1) / time.Second)
		wait = time.Duration(p.Timeout)*time.Second + agentWaitGrace
	}
	c, err := a.connect(ctx, agentScopes)
	if err != nil {
		return err
	}
	defer c.Close()

	rctx := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	var streamed strings.Builder
	onEvent := func(ev client.AgentEvent) {
		if a.g.json {
			return
		}
		if d := ev.Delta(); d != "" {
			streamed.WriteString(d)
			fmt.Fprint(a.stdout, d)
		}
	}
	res, err := c.Agent(rctx, p, nil, onEvent)
	if !a.g.json && streamed.Len() > 0 && !strings.HasSuffix(streamed.String(), "\n") {
		fmt.Fprintln(a.stdout)
	}
	if err != nil {
		if rerr := rpcError(err); rerr != nil {
			return rerr
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return withCode(ExitUnreachable, fmt.Errorf("no final answer from the gateway within %s (the run %s may still be going: gatewayctl call agent.wait --params '{\"runId\":\"%s\"}')", wait, p.IdempotencyKey, p.IdempotencyKey))
		}
		return err
	}
	if a.g.json {
		raw, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if err := writeJSON(a.stdout, raw); err != nil {
			return err
		}
	} else if streamed.Len() == 0 && res.Summary != "" {
		// Joined a run that had already streamed: print what it said.
		fmt.Fprint(a.stdout, res.Summary)
		if !strings.HasSuffix(res.Summary, "\n") {
			fmt.Fprintln(a.stdout)
		}
	}
	if res.Status != "ok" {
		msg := "agent run " + res.RunID + " ended " + res.Status
		if res.Error != nil {
			msg += ": " + res.Error.Message
		}
		if a.g.json {
			return silent(withCode(ExitProblem, errors.New(msg)))
		}
		return withCode(ExitProblem, errors.New(msg))
	}
	return nil
}
