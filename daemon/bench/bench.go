// Package bench is the load generator behind `gatewayctl bench` and `make
// bench`: it opens N protocol connections to a gateway and drives each as a
// closed loop of sequential calls for a fixed time, recording every call's
// latency exactly.
//
// Latencies go into a preallocated slice per worker (no locks on the hot
// path), merged and sorted once at the end, so percentiles are exact rather
// than estimated. A run is always bounded in time: connecting is bounded by
// the client's handshake timeout, the loop by Warmup+Duration, and each
// call by CallTimeout. The package needs nothing from the OS beyond TCP.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// Defaults applied by Run to zero Options fields.
const (
	DefaultConns       = 1
	DefaultDuration    = 10 * time.Second
	DefaultMethod      = "health"
	DefaultCallTimeout = 10 * time.Second
	// MaxConns bounds Conns so a typo cannot exhaust the host.
	MaxConns = 100_000
	// dialParallelism bounds concurrent handshakes while connecting.
	dialParallelism = 64
)

// Options configure Run.
type Options struct {
	Client      client.Options // how to connect (URL, secret, scopes…)
	Conns       int            // connections, each one closed-loop worker; default 1
	Duration    time.Duration  // measured time; default 10s
	Method      string         // default "health"
	Params      any            // nil: no params; json.RawMessage is sent as is
	Warmup      time.Duration  // calls before measuring, not recorded
	CallTimeout time.Duration  // per call; default 10s
}

// Result is what a run measured. Latencies are of successful and failed
// calls alike; Requests counts both.
type Result struct {
	Conns      int
	Duration   time.Duration // measured wall time
	Requests   int64
	Errors     int64
	RPS        float64 // Requests / Duration
	P50        time.Duration
	P99        time.Duration
	P999       time.Duration
	Max        time.Duration
	FirstError string // the first call error seen, "" when none
}

type worker struct {
	lat        []time.Duration
	errors     int64
	firstError string
}

// Run connects o.Conns clients, then runs each as a closed loop of
// o.Method calls for o.Warmup (unrecorded) and o.Duration (recorded). A
// connection that fails to open fails the run; call errors are counted.
// ctx cancels the run early; the result then covers the time actually run.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Conns > MaxConns {
		return nil, fmt.Errorf("bench: %d connections is more than the limit of %d (lower --conns)", o.Conns, MaxConns)
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Method == "" {
		o.Method = DefaultMethod
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	params, err := encodeParams(o.Params)
	if err != nil {
		return nil, err
	}

	conns, err := dialAll(ctx, o.Client, o.Conns)
	if err != nil {
		return nil, err
	}
	defer func() {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
		wg.Wait()
	}()

	// Each worker preallocates room for its share of a generous guess of
	// the total (100,000 calls/s); append grows it past that without locking.
	guess := int(min(max(int64((o.Warmup+o.Duration)/(10*time.Microsecond))/int64(o.Conns), 1024), 1<<20))
	workers := make([]*worker, len(conns))
	for i := range workers {
		workers[i] = &worker{lat: make([]time.Duration, 0, guess)}
	}

	runCtx, cancel := context.WithTimeout(ctx, o.Warmup+o.Duration+o.CallTimeout)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	end := measureFrom.Add(o.Duration)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i].loop(runCtx, c, o.Method, params, measureFrom, end, o.CallTimeout)
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	if elapsed > o.Duration {
		elapsed = o.Duration
	}
	if elapsed <= 0 {
		elapsed = time.Nanosecond
	}
	return merge(workers, len(conns), elapsed), nil
}

func (w *worker) loop(ctx context.Context, c *client.Conn, method string, params json.RawMessage, measureFrom, end time.Time, callTimeout time.Duration) {
	for {
		t0 := time.Now()
		if !t0.Before(end) || ctx.Err() != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		var err error
		if params == nil {
			_, err = c.Call(cctx, method, nil)
		} else {
			_, err = c.Call(cctx, method, params)
		}
		cancel()
		d := time.Since(t0)
		if ctx.Err() != nil && err != nil {
			return // the run was canceled mid-call: not the gateway's error
		}
		if t0.Before(measureFrom) {
			continue
		}
		w.lat = append(w.lat, d)
		if err != nil {
			w.errors++
			if w.firstError == "" {
				w.firstError = err.Error()
			}
			if errors.Is(err, client.ErrClosed) {
				return // the connection is gone; every further call would fail at once
			}
		}
	}
}

func merge(workers []*worker, conns int, elapsed time.Duration) *Result {
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	all := make([]time.Duration, 0, n)
	r := &Result{Conns: conns, Duration: elapsed}
	for _, w := range workers {
		all = append(all, w.lat...)
		r.Errors += w.errors
		if r.FirstError == "" {
			r.FirstError = w.firstError
		}
	}
	slices.Sort(all)
	r.Requests = int64(len(all))
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	r.P50 = Percentile(all, 0.50)
	r.P99 = Percentile(all, 0.99)
	r.P999 = Percentile(all, 0.999)
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	return r
}

// Percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method: the smallest value with at least q of the values at
// or below it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func encodeParams(p any) (json.RawMessage, error) {
	switch v := p.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, errors.New("bench: params are not valid JSON (pass a JSON object, e.g. --params '{}')")
		}
		return v, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("bench: encode params: %w", err)
	}
	return b, nil
}

// dialAll opens n connections, at most dialParallelism at a time. On the
// first failure it closes what it opened and returns that error.
func dialAll(ctx context.Context, o client.Options, n int) ([]*client.Conn, error) {
	conns := make([]*client.Conn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, dialParallelism)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-dctx.Done():
				errs[i] = dctx.Err()
				return
			}
			defer func() { <-sem }()
			c, err := client.Dial(dctx, o)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	var first error
	for i, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = fmt.Errorf("bench: connection %d of %d: %w", i+1, n, err)
		}
	}
	if first != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, first
	}
	return conns, nil
}

// String renders the result as a small human table.
func (r *Result) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "connections\t%d\n", r.Conns)
	fmt.Fprintf(tw, "duration\t%s\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(tw, "requests\t%d\n", r.Requests)
	fmt.Fprintf(tw, "errors\t%d\n", r.Errors)
	fmt.Fprintf(tw, "req/s\t%.0f\n", r.RPS)
	fmt.Fprintf(tw, "latency p50\t%s\n", fmtLatency(r.P50))
	fmt.Fprintf(tw, "latency p99\t%s\n", fmtLatency(r.P99))
	fmt.Fprintf(tw, "latency p99.9\t%s\n", fmtLatency(r.P999))
	fmt.Fprintf(tw, "latency max\t%s\n", fmtLatency(r.Max))
	if r.FirstError != "" {
		fmt.Fprintf(tw, "first error\t%s\n", r.FirstError)
	}
	tw.Flush()
	return b.String()
}

func fmtLatency(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// resultJSON is the stable JSON form of Result (durations in milliseconds).
type resultJSON struct {
	Conns      int     `json:"conns"`
	DurationMs float64 `json:"durationMs"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	RPS        float64 `json:"rps"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	P999Ms     float64 `json:"p999Ms"`
	MaxMs      float64 `json:"maxMs"`
	FirstError string  `json:"firstError,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MarshalJSON encodes the result with durations as milliseconds:
// {conns, durationMs, requests, errors, rps, p50Ms, p99Ms, p999Ms, maxMs,
// firstError?}. `gatewayctl bench --json` prints this.
func (r *Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{
		Conns: r.Conns, DurationMs: ms(r.Duration), Requests: r.Requests, Errors: r.Errors,
		RPS: math.Round(r.RPS*10) / 10, P50Ms: ms(r.P50), P99Ms: ms(r.P99), P999Ms: ms(r.P999),
		MaxMs: ms(r.Max), FirstError: r.FirstError,
	})
}
