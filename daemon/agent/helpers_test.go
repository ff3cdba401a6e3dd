package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// startGateway runs a fresh gatewayd in dir with config cfg ("" = none)
// and stops it (by PID) at the end of the test.
func startGateway(t testing.TB, dir, cfg string) *gatewaydtest.Gateway {
	t.Helper()
	return gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir, Config: cfg})
}

// dial connects an operator (read and write) to g.
func dial(t testing.TB, g *gatewaydtest.Gateway) *client.Conn {
	t.Helper()
	return gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite}, EventBuffer: 4096})
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// run is one finished agent call as the client saw it.
type run struct {
	accepted client.AgentAccepted
	events   []client.AgentEvent
	result   *client.AgentResult
	err      error
}

func (r *run) text() string {
	var b strings.Builder
	for _, ev := range r.events {
		b.WriteString(ev.Delta())
	}
	return b.String()
}

func runAgent(t testing.TB, c *client.Conn, p client.AgentParams, d time.Duration) *run {
	t.Helper()
	r := &run{}
	r.result, r.err = c.Agent(ctxT(t, d), p, func(a client.AgentAccepted) { r.accepted = a }, func(ev client.AgentEvent) { r.events = append(r.events, ev) })
	return r
}

func call(t testing.TB, c *client.Conn, method string, params, out any) error {
	t.Helper()
	raw, err := c.Call(ctxT(t, 10*time.Second), method, params)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v: %s", method, err, raw)
		}
	}
	return nil
}

type history struct {
	SessionKey string `json:"sessionKey"`
	Total      int    `json:"total"`
	Messages   []struct {
		Role   string `json:"role"`
		Text   string `json:"text"`
		TS     int64  `json:"ts"`
		RunID  string `json:"runId"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"messages"`
}

func errCode(err error) (code, detail string) {
	var ce *client.CallError
	if !errors.As(err, &ce) {
		return "", ""
	}
	return ce.Err.Code, ce.Err.DetailCode()
}
