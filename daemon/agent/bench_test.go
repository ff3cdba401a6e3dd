package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// The load of the echo-run benchmarks: echoConns connections with
// echoPerConn runs each, of a paced echo agent whose echoDeltas deltas are
// due echoDelay apart (delta k at the run's start + k×echoDelay).
const (
	echoConns, echoPerConn = 10, 10
	echoDeltas             = 4
	echoDelay              = 20 * time.Millisecond
	echoMessage            = "alpha beta gamma delta epsilon zeta eta theta"
	// echoIterTimeout bounds one iteration (100 runs of 60 ms of pacing).
	echoIterTimeout = 30 * time.Second
	// echoMaxMessages bounds the messages one connection reads per
	// iteration: 10 runs send 2 responses and a handful of events each.
	echoMaxMessages = 100_000
)

// BenchmarkConcurrentEchoRuns is the headline figure, the worst case: all
// 100 runs (10 connections × 10) are requested at the same instant, so
// (as far as the gateway lets them start together) every run's delta k
// falls due in the same millisecond and the gateway has a burst of up to
// 100 events to fan out at each pace tick, while the 10 observing clients
// share the machine's cores with it. What it measures is the added
// latency per delta: arrival(k) − arrival(0) − k×20 ms at the client, i.e.
// how much later than the backend's own schedule delta k got there
// (queueing behind the burst and behind other runs' transcript writes,
// event fan-out, the WebSocket write, and the client being scheduled to
// read it). Reported: p50 and p99 of that in ms, the number of deltas
// measured, and first-delta-spread-ms, how far apart the runs' first
// deltas arrived: the gateway writes each run's user message to the
// session transcript (one store commit each, fsync included) before it
// starts the run, which spreads the starts of the burst.
func BenchmarkConcurrentEchoRuns(b *testing.B) { benchEchoRuns(b, 0) }

// BenchmarkConcurrentEchoRunsStaggered is the same load with the 100 run
// starts spread evenly over one delta interval (20 ms, one start every
// 200 µs), as independent real streams would be: the gateway then sends
// about one delta every 200 µs instead of 100 at once, and the figures
// show the added latency of a steady stream rather than of a burst.
func BenchmarkConcurrentEchoRunsStaggered(b *testing.B) { benchEchoRuns(b, echoDelay) }

// benchEchoRuns runs b.N iterations of echoConns×echoPerConn paced echo
// runs, their starts spread evenly over spread (0: all at once), and
// reports the added latency per delta (see BenchmarkConcurrentEchoRuns).
//
// The observing side is kept lean so that it is the gateway being
// measured: each connection is a client.Pipe driven by one goroutine that
// writes its requests (pre-encoded, all that are due in one Write) and
// reads the answers itself, taking each delta's arrival time right after
// Read returns, before any JSON decoding.
func benchEchoRuns(b *testing.B, spread time.Duration) {
	g := startGateway(b, b.TempDir(), fmt.Sprintf(`{"agents":{"maxConcurrent":200,"list":{"paced":{"echo":{"delayMs":%d}}}}}`, echoDelay.Milliseconds()))
	pipes := make([]*client.Pipe, echoConns)
	for i := range pipes {
		pipes[i] = dialPipe(b, g.URL, g.Token)
	}
	var added []float64
	var startSpread time.Duration // sum over iterations of firstDeltaSpread
	b.ResetTimer()
	for n := range b.N {
		conns := make([]*echoConn, len(pipes))
		for ci := range conns {
			conns[ci] = newEchoConn(b, n, ci, spread)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for ci, p := range pipes {
			wg.Go(func() { conns[ci].err = conns[ci].drive(p, start) })
		}
		wg.Wait()
		for _, c := range conns {
			if c.err != nil {
				b.Fatalf("iteration %d, connection %d: %v", n, c.conn, c.err)
			}
			added = append(added, c.added...)
		}
		startSpread += firstDeltaSpread(conns)
	}
	b.StopTimer()
	if want := b.N * echoConns * echoPerConn * (echoDeltas - 1); len(added) != want {
		b.Fatalf("measured %d delta latencies, want %d", len(added), want)
	}
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "p50-added-ms/delta")
	b.ReportMetric(added[len(added)*99/100], "p99-added-ms/delta")
	b.ReportMetric(float64(len(added)), "deltas")
	b.ReportMetric(float64(startSpread)/float64(b.N)/float64(time.Millisecond), "first-delta-spread-ms")
}

// firstDeltaSpread is the time between the first and the last arrival of
// a run's first delta in one iteration: how close together the gateway
// really started the runs (the synchronized variant asks for 0, the
// staggered one for about echoDelay).
func firstDeltaSpread(conns []*echoConn) time.Duration {
	var first, last time.Time
	for _, c := range conns {
		for _, r := range c.runs {
			a := r.arrivals[0]
			if first.IsZero() || a.Before(first) {
				first = a
			}
			if a.After(last) {
				last = a
			}
		}
	}
	return last.Sub(first)
}

// dialPipe opens a Pipe with read and write scopes, closed at the end of
// the benchmark.
func dialPipe(t testing.TB, url, token string) *client.Pipe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := client.DialPipe(ctx, client.Options{URL: url, Token: token, Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite}})
	if err != nil {
		t.Fatalf("DialPipe %s: %v", url, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// echoConn is one connection's share of an iteration: its runs, in the
// order they are due, and what came of them.
type echoConn struct {
	conn  int
	runs  []*echoRun
	byKey map[string]*echoRun // by idempotency key = request id = runId
	added []float64           // ms per delta k >= 1, filled as runs end
	err   error
}

// echoRun is one agent run as the client sees it.
type echoRun struct {
	key      string
	frame    []byte        // the encoded agent request
	offset   time.Duration // when it is due after the iteration's start
	accepted bool
	final    bool
	arrivals []time.Time // of the assistant deltas
	text     []byte      // the deltas, concatenated
}

// newEchoConn encodes connection ci's requests of iteration n. Run j of
// connection ci is start number j×echoConns+ci of the iteration, so with
// a spread the connections take turns and the starts are evenly spaced.
func newEchoConn(b *testing.B, n, ci int, spread time.Duration) *echoConn {
	c := &echoConn{conn: ci, byKey: make(map[string]*echoRun, echoPerConn), added: make([]float64, 0, echoPerConn*(echoDeltas-1))}
	for j := range echoPerConn {
		key := fmt.Sprintf("b%d-%d-%d", n, ci, j)
		params, err := json.Marshal(client.AgentParams{Message: echoMessage, IdempotencyKey: key, AgentID: "paced", SessionKey: fmt.Sprintf("bench-%d-%d", ci, j)})
		if err != nil {
			b.Fatal(err)
		}
		frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, ID: key, Method: "agent", Params: params})
		if err != nil {
			b.Fatal(err)
		}
		r := &echoRun{key: key, frame: frame, offset: spread * time.Duration(j*echoConns+ci) / (echoConns * echoPerConn)}
		c.runs = append(c.runs, r)
		c.byKey[key] = r
	}
	return c
}

// echoFrame is the part of a frame the benchmark reads, decoded in one
// pass (every decode costs CPU the gateway would otherwise have): the
// fields of the agent responses' and agent events' payloads that routing
// and the checks need.
type echoFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	OK      bool   `json:"ok"`
	Event   string `json:"event"`
	Payload struct {
		RunID  string `json:"runId"`
		Status string `json:"status"` // responses
		Stream string `json:"stream"` // events
		Data   struct {
			Delta string `json:"delta"`
		} `json:"data"`
	} `json:"payload"`
}

// drive writes c's requests as they fall due (every request due by now in
// one Write) and reads until each run's final response came, or
// echoIterTimeout after start. Between writes Read waits with the next
// request's due time as its deadline: a Read cut short by it loses
// nothing and is resumed after the write.
func (c *echoConn) drive(p *client.Pipe, start time.Time) error {
	end := start.Add(echoIterTimeout)
	next, finals := 0, 0
	var batch [][]byte
	var readDeadline time.Time
	for range echoMaxMessages {
		now := time.Now()
		batch = batch[:0]
		for next < len(c.runs) && !start.Add(c.runs[next].offset).After(now) {
			batch = append(batch, c.runs[next].frame)
			next++
		}
		if err := p.Write(batch...); err != nil {
			return err
		}
		rd := end
		if next < len(c.runs) {
			rd = start.Add(c.runs[next].offset)
		}
		if !rd.Equal(readDeadline) {
			if err := p.SetReadDeadline(rd); err != nil {
				return err
			}
			readDeadline = rd
		}
		msg, err := p.Read()
		arrived := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && next < len(c.runs) {
				continue // the next request is due
			}
			return fmt.Errorf("%d of %d runs ended: %w", finals, len(c.runs), err)
		}
		done, err := c.handle(msg, arrived)
		if err != nil {
			return err
		}
		if done {
			if finals++; finals == len(c.runs) {
				return nil
			}
		}
	}
	return fmt.Errorf("%d of %d runs ended after %d messages (the gateway sends far more than 10 runs need)", finals, len(c.runs), echoMaxMessages)
}

// handle processes one message that arrived at arrived, and reports
// whether it was a run's final response.
func (c *echoConn) handle(msg []byte, arrived time.Time) (final bool, err error) {
	var f echoFrame
	// Other events' payloads may not fit echoFrame: only agent frames'
	// decode errors count.
	derr := json.Unmarshal(msg, &f)
	agentEvent := f.Type == protocol.TypeEvent && f.Event == "agent"
	if derr != nil && (agentEvent || f.Type == protocol.TypeRes) {
		return false, fmt.Errorf("decode frame: %w: %s", derr, msg)
	}
	pl := &f.Payload
	switch {
	case agentEvent:
		r := c.byKey[pl.RunID]
		if r == nil || r.final {
			return false, fmt.Errorf("agent event for run %q, which is not a running run of this connection: %s", pl.RunID, msg)
		}
		if pl.Stream == "assistant" && pl.Data.Delta != "" {
			r.arrivals = append(r.arrivals, arrived)
			r.text = append(r.text, pl.Data.Delta...)
		}
		return false, nil
	case f.Type != protocol.TypeRes:
		return false, nil // presence, health, ticks: not this benchmark's
	}
	r := c.byKey[f.ID]
	switch {
	case r == nil:
		return false, fmt.Errorf("response to unknown request %q: %s", f.ID, msg)
	case !f.OK:
		return false, fmt.Errorf("agent %s failed: %s", r.key, msg)
	case !r.accepted:
		if pl.Status != "accepted" || pl.RunID != r.key {
			return false, fmt.Errorf("agent %s: first response is not {runId:%q, status:accepted}: %s", r.key, r.key, msg)
		}
		r.accepted = true
		return false, nil
	case r.final:
		return false, fmt.Errorf("agent %s: a third response: %s", r.key, msg)
	}
	if pl.Status != "ok" || pl.RunID != r.key {
		return false, fmt.Errorf("agent %s: final response is not {runId:%q, status:ok}: %s", r.key, r.key, msg)
	}
	r.final = true
	if len(r.arrivals) != echoDeltas || string(r.text) != echoMessage {
		return false, fmt.Errorf("agent %s: %d deltas %q before the final response, want %d making %q", r.key, len(r.arrivals), r.text, echoDeltas, echoMessage)
	}
	for k := 1; k < len(r.arrivals); k++ {
		late := r.arrivals[k].Sub(r.arrivals[0]) - time.Duration(k)*echoDelay
		c.added = append(c.added, float64(max(late, 0))/float64(time.Millisecond))
	}
	return true, nil
}
