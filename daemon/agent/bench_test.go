package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// The load of the agent-run benchmarks: benchConns connections with
// benchPerConn runs each, of a paced agent whose benchDeltas deltas are
// due benchPace apart (delta k at the run's start + k×benchPace).
const (
	benchConns, benchPerConn = 10, 10
	benchDeltas              = 4
	benchPace                = 20 * time.Millisecond
	echoMessage              = "alpha beta gamma delta epsilon zeta eta theta"
	// benchIterTimeout bounds one iteration (100 runs of 60 ms of pacing).
	benchIterTimeout = 30 * time.Second
	// benchMaxMessages bounds the messages one connection reads per
	// iteration: 10 runs send 2 responses and a handful of events each.
	benchMaxMessages = 100_000
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
//
// The echo backend paces its deltas with Go timers, so this figure
// includes how late the runtime fires a timer on this machine:
// BenchmarkTimerFloor measures that alone, and BenchmarkConcurrentUpstreamRuns
// measures the gateway's own share without it.
func BenchmarkConcurrentEchoRuns(b *testing.B) { benchEchoRuns(b, 0) }

// BenchmarkConcurrentEchoRunsStaggered is the same load with the 100 run
// starts spread evenly over one delta interval (20 ms, one start every
// 200 µs), as independent real streams would be: the gateway then sends
// about one delta every 200 µs instead of 100 at once, and the figures
// show the added latency of a steady stream rather than of a burst.
func BenchmarkConcurrentEchoRunsStaggered(b *testing.B) { benchEchoRuns(b, benchPace) }

// benchEchoRuns runs the echo load, its starts spread evenly over spread
// (0: all at once); see BenchmarkConcurrentEchoRuns.
func benchEchoRuns(b *testing.B, spread time.Duration) {
	g := startGateway(b, b.TempDir(), fmt.Sprintf(`{"agents":{"maxConcurrent":200,"list":{"paced":{"echo":{"delayMs":%d}}}}}`, benchPace.Milliseconds()))
	benchRuns(b, runLoad{
		url: g.URL, token: g.Token, agent: "paced", spread: spread,
		message: func(string) string { return echoMessage },
		answer:  func(string) string { return echoMessage },
		perRun:  benchDeltas - 1,
		added: func(r *benchRun) ([]float64, error) {
			added := make([]float64, 0, len(r.arrivals)-1)
			for k := 1; k < len(r.arrivals); k++ {
				late := r.arrivals[k].Sub(r.arrivals[0]) - time.Duration(k)*benchPace
				added = append(added, ms(max(late, 0)))
			}
			return added, nil
		},
	})
}

// BenchmarkConcurrentUpstreamRuns is BenchmarkConcurrentEchoRuns' load
// (100 runs requested at the same instant, 10 connections × 10) on an
// agent with the openai backend, whose upstream is an OpenAI-compatible
// server in the benchmark process on loopback: it streams each run's
// answer as 4 SSE chunks 20 ms apart, flushing each and recording when it
// wrote it. The added latency per delta is the client's arrival time of
// delta k minus the upstream's write time of chunk k. Both clocks are the
// benchmark process's monotonic clock, and no timer of the gateway's is
// involved, so this is exactly what the gateway adds to a delta: reading
// the SSE line, parsing it, emitting the event and writing it to the
// client (plus the client being scheduled to read it, and the upstream's
// own write of the chunk: the write time is taken before it). How late
// the upstream's own timers fire does not count, as each delta is
// measured from the chunk's actual write.
//
// Reported: p50 and p99 of that in ms over all 4 deltas of every run, the
// number of deltas, first-delta-spread-ms as in BenchmarkConcurrentEchoRuns,
// and p99-added-ms/later-delta, the p99 over deltas 1..3 only: the
// figure comparable with the echo benchmarks', which measure those alone
// (relative to delta 0). In the burst delta 0 competes with the start of
// the other runs (transcript write, connecting to the upstream, sending
// the request), which is what spreads the starts.
func BenchmarkConcurrentUpstreamRuns(b *testing.B) { benchUpstreamRuns(b, 0) }

// BenchmarkConcurrentUpstreamRunsStaggered is BenchmarkConcurrentUpstreamRuns
// with the run starts spread evenly over 20 ms, as in
// BenchmarkConcurrentEchoRunsStaggered: the added latency of a steady
// stream of deltas rather than of a burst.
func BenchmarkConcurrentUpstreamRunsStaggered(b *testing.B) { benchUpstreamRuns(b, benchPace) }

// benchUpstreamRuns runs the upstream load, its starts spread evenly over
// spread (0: all at once); see BenchmarkConcurrentUpstreamRuns.
func benchUpstreamRuns(b *testing.B, spread time.Duration) {
	u := &upstream{release: make(chan struct{}), pace: benchPace, written: map[string][]time.Time{}}
	srv := httptest.NewServer(u.handler(b))
	b.Cleanup(func() { close(u.release); srv.Close() })
	g := startGateway(b, b.TempDir(), fmt.Sprintf(`{"agents":{"maxConcurrent":200,"list":{"up":{"backend":"openai","openai":{"baseUrl":"%s/paced/v1","model":"bench"}}}}}`, srv.URL))
	var later []float64 // the added latencies of deltas 1..pacedChunks-1
	benchRuns(b, runLoad{
		url: g.URL, token: g.Token, agent: "up", spread: spread,
		// The run's key is its message: the upstream's marker.
		message: func(key string) string { return key },
		answer:  pacedAnswer,
		perRun:  pacedChunks,
		added: func(r *benchRun) ([]float64, error) {
			wrote := u.wroteAt(r.key)
			if len(wrote) != len(r.arrivals) {
				return nil, fmt.Errorf("run %s: the upstream wrote %d chunks, the client got %d deltas", r.key, len(wrote), len(r.arrivals))
			}
			added := make([]float64, len(wrote))
			for k, w := range wrote {
				d := r.arrivals[k].Sub(w)
				if d < 0 {
					return nil, fmt.Errorf("run %s: delta %d arrived %s before the upstream wrote it (deltas matched to the wrong chunks?)", r.key, k, -d)
				}
				added[k] = ms(d)
			}
			later = append(later, added[1:]...)
			return added, nil
		},
	})
	slices.Sort(later)
	b.ReportMetric(percentile(later, 99), "p99-added-ms/later-delta")
}

// BenchmarkTimerFloor measures the runtime's timer precision alone, in
// the benchmark process, with no gateway: benchConns×benchPerConn
// goroutines each wait for a timer due at its start + k×20 ms, k = 1..3,
// as the echo backend does for its deltas, and the lateness of each wake
// (wake − due) is reported as p50-late-ms, p99-late-ms and max-late-ms.
// That is the floor any timer-paced stream inherits on this machine: no
// gateway can deliver a delta earlier than its timer fires, so
// BenchmarkConcurrentEchoRuns' added latency cannot be below it.
func BenchmarkTimerFloor(b *testing.B) {
	const goroutines, waits = benchConns * benchPerConn, benchDeltas - 1
	late := make([]float64, 0, b.N*goroutines*waits)
	round := make([][waits]time.Duration, goroutines)
	for range b.N {
		var wg sync.WaitGroup
		for gi := range round {
			wg.Go(func() {
				start := time.Now()
				t := time.NewTimer(time.Hour)
				defer t.Stop()
				for k := 1; k <= waits; k++ {
					due := start.Add(time.Duration(k) * benchPace)
					t.Reset(time.Until(due))
					<-t.C
					round[gi][k-1] = time.Since(due)
				}
			})
		}
		wg.Wait()
		for _, r := range round {
			for _, l := range r {
				late = append(late, ms(l))
			}
		}
	}
	b.StopTimer()
	slices.Sort(late)
	b.ReportMetric(percentile(late, 50), "p50-late-ms")
	b.ReportMetric(percentile(late, 99), "p99-late-ms")
	b.ReportMetric(late[len(late)-1], "max-late-ms")
	b.ReportMetric(float64(len(late)), "waits")
}

// ms is d in (fractional) milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the p-th percentile of the sorted, non-empty xs.
func percentile(xs []float64, p int) float64 { return xs[len(xs)*p/100] }

// runLoad is a load benchRuns drives: the gateway, the agent, the runs'
// messages and how a run's added latency is computed.
type runLoad struct {
	url, token string
	agent      string
	// spread is the time over which the runs' starts are spread evenly
	// (0: all at once).
	spread time.Duration
	// message is the user message of the run with idempotency key key,
	// answer the text its deltas must make.
	message, answer func(key string) string
	// added is the added latency in ms of each delta of a run that ended
	// ok with the answer in benchDeltas deltas, perRun figures; it is
	// called once the iteration's runs all ended.
	added  func(r *benchRun) ([]float64, error)
	perRun int
}

// benchRuns runs b.N iterations of benchConns×benchPerConn runs of load,
// checks that each run was accepted, got its answer in benchDeltas deltas
// in order and ended ok, and reports p50 and p99 of the added latency per
// delta (load.added), the number of deltas measured and
// first-delta-spread-ms (see firstDeltaSpread).
//
// The observing side is kept lean so that it is the gateway being
// measured: each connection is a client.Pipe driven by one goroutine that
// writes its requests (pre-encoded, all that are due in one Write) and
// reads the answers itself, taking each delta's arrival time right after
// Read returns, before any JSON decoding.
func benchRuns(b *testing.B, load runLoad) {
	pipes := make([]*client.Pipe, benchConns)
	for i := range pipes {
		pipes[i] = dialPipe(b, load.url, load.token)
	}
	var added []float64
	var startSpread time.Duration // sum over iterations of firstDeltaSpread
	b.ResetTimer()
	for n := range b.N {
		conns := make([]*benchConn, len(pipes))
		for ci := range conns {
			conns[ci] = newBenchConn(b, n, ci, load)
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
			for _, r := range c.runs {
				a, err := load.added(r)
				if err != nil {
					b.Fatalf("iteration %d, connection %d: %v", n, c.conn, err)
				}
				added = append(added, a...)
			}
		}
		startSpread += firstDeltaSpread(conns)
	}
	b.StopTimer()
	if want := b.N * benchConns * benchPerConn * load.perRun; len(added) != want {
		b.Fatalf("measured %d delta latencies, want %d", len(added), want)
	}
	slices.Sort(added)
	b.ReportMetric(percentile(added, 50), "p50-added-ms/delta")
	b.ReportMetric(percentile(added, 99), "p99-added-ms/delta")
	b.ReportMetric(float64(len(added)), "deltas")
	b.ReportMetric(float64(startSpread)/float64(b.N)/float64(time.Millisecond), "first-delta-spread-ms")
}

// firstDeltaSpread is the time between the first and the last arrival of
// a run's first delta in one iteration: how close together the gateway
// really started the runs (the synchronized variant asks for 0, the
// staggered one for about benchPace).
func firstDeltaSpread(conns []*benchConn) time.Duration {
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

// benchConn is one connection's share of an iteration: its runs, in the
// order they are due, and what came of them.
type benchConn struct {
	conn  int
	runs  []*benchRun
	byKey map[string]*benchRun // by idempotency key = request id = runId
	err   error
}

// benchRun is one agent run as the client sees it.
type benchRun struct {
	key      string
	frame    []byte        // the encoded agent request
	answer   string        // the text its deltas must make
	offset   time.Duration // when it is due after the iteration's start
	accepted bool
	final    bool
	arrivals []time.Time // of the assistant deltas
	text     []byte      // the deltas, concatenated
}

// newBenchConn encodes connection ci's requests of iteration n of load.
// Run j of connection ci is start number j×benchConns+ci of the
// iteration, so with a spread the connections take turns and the starts
// are evenly spaced.
func newBenchConn(b *testing.B, n, ci int, load runLoad) *benchConn {
	c := &benchConn{conn: ci, byKey: make(map[string]*benchRun, benchPerConn)}
	for j := range benchPerConn {
		key := fmt.Sprintf("b%d-%d-%d", n, ci, j)
		params, err := json.Marshal(client.AgentParams{Message: load.message(key), IdempotencyKey: key, AgentID: load.agent, SessionKey: fmt.Sprintf("bench-%d-%d", ci, j)})
		if err != nil {
			b.Fatal(err)
		}
		frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, ID: key, Method: "agent", Params: params})
		if err != nil {
			b.Fatal(err)
		}
		r := &benchRun{key: key, frame: frame, answer: load.answer(key), offset: load.spread * time.Duration(j*benchConns+ci) / (benchConns * benchPerConn)}
		c.runs = append(c.runs, r)
		c.byKey[key] = r
	}
	return c
}

// benchFrame is the part of a frame the benchmark reads, decoded in one
// pass (every decode costs CPU the gateway would otherwise have): the
// fields of the agent responses' and agent events' payloads that routing
// and the checks need.
type benchFrame struct {
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
// benchIterTimeout after start. Between writes Read waits with the next
// request's due time as its deadline: a Read cut short by it loses
// nothing and is resumed after the write.
func (c *benchConn) drive(p *client.Pipe, start time.Time) error {
	end := start.Add(benchIterTimeout)
	next, finals := 0, 0
	var batch [][]byte
	var readDeadline time.Time
	for range benchMaxMessages {
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
	return fmt.Errorf("%d of %d runs ended after %d messages (the gateway sends far more than 10 runs need)", finals, len(c.runs), benchMaxMessages)
}

// handle processes one message that arrived at arrived, and reports
// whether it was a run's final response.
func (c *benchConn) handle(msg []byte, arrived time.Time) (final bool, err error) {
	var f benchFrame
	// Other events' payloads may not fit benchFrame: only agent frames'
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
	if len(r.arrivals) != benchDeltas || string(r.text) != r.answer {
		return false, fmt.Errorf("agent %s: %d deltas %q before the final response, want %d making %q", r.key, len(r.arrivals), r.text, benchDeltas, r.answer)
	}
	return true, nil
}
