// Package bench is the load generator behind `gatewayctl bench` and `make
// bench`: it opens N protocol connections to a gateway and drives each for
// a fixed time with Pipeline requests in flight (1: a closed loop of
// sequential calls, the honest latency figure), recording every call's
// latency exactly.
//
// Each connection is a client.Pipe driven by one goroutine: requests are
// pre-encoded (only the id changes), written several per syscall, and
// matched to responses by id with a byte-level check for "ok":true, so
// the generator's own CPU cost per request stays small next to the
// gateway's on a shared machine. Latencies go into a preallocated slice per
// connection (no locks on the hot path), merged and sorted once at the
// end, so percentiles are exact rather than estimated. A run is always
// bounded in time: connecting by the client's handshake timeout, the loop
// by Warmup+Duration, and each call by CallTimeout. The package needs
// nothing from the OS beyond TCP.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Defaults applied by Run to zero Options fields.
const (
	DefaultConns       = 1
	DefaultPipeline    = 1
	DefaultDuration    = 10 * time.Second
	DefaultMethod      = "health"
	DefaultCallTimeout = 10 * time.Second
	// MaxConns bounds Conns so a typo cannot exhaust the host.
	MaxConns = 100_000
	// MaxPipeline bounds Pipeline (requests in flight per connection).
	MaxPipeline = 1024
	// dialParallelism bounds concurrent handshakes while connecting.
	dialParallelism = 64
)

// Options configure Run.
type Options struct {
	Client   client.Options // how to connect (URL, secret, scopes…)
	Conns    int            // connections, each driven by one goroutine; default 1
	Pipeline int            // requests in flight per connection; default 1 (closed loop)
	Duration time.Duration  // measured time; default 10s
	Method   string         // default "health"
	Params   any            // nil: no params; json.RawMessage is sent as is
	Warmup   time.Duration  // calls before measuring, not recorded
	// CallTimeout bounds each call: a response that has not come this long
	// after its request was written is an error, and ends that connection's
	// loop. Default 10s.
	CallTimeout time.Duration
}

// Result is what a run measured. Latencies are of successful and failed
// calls alike; Requests counts both. A pipelined call's latency runs from
// the write that carried its request to the arrival of its response.
type Result struct {
	Conns      int
	Pipeline   int
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

// Run connects o.Conns clients, then drives each with o.Pipeline o.Method
// calls in flight for o.Warmup (unrecorded) and o.Duration (recorded); calls
// written before the end are awaited and recorded. A connection that fails
// to open fails the run; call errors are counted. ctx cancels the run
// early; the result then covers the time actually run.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Conns > MaxConns {
		return nil, fmt.Errorf("bench: %d connections is more than the limit of %d (lower --conns)", o.Conns, MaxConns)
	}
	if o.Pipeline <= 0 {
		o.Pipeline = DefaultPipeline
	}
	if o.Pipeline > MaxPipeline {
		return nil, fmt.Errorf("bench: pipeline %d is more than the limit of %d (lower --pipeline)", o.Pipeline, MaxPipeline)
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
	prefix, suffix, err := requestTemplate(o.Method, params)
	if err != nil {
		return nil, err
	}

	pipes, err := dialAll(ctx, o.Conns, func(ctx context.Context) (*client.Pipe, error) {
		return client.DialPipe(ctx, o.Client)
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(pipes)

	// Each worker preallocates room for its share of a generous guess of
	// the total (100,000 calls/s); append grows it past that without locking.
	guess := int(min(max(int64((o.Warmup+o.Duration)/(10*time.Microsecond))/int64(o.Conns), 1024), 1<<20))
	workers := make([]*worker, len(pipes))
	for i := range workers {
		workers[i] = &worker{lat: make([]time.Duration, 0, guess)}
	}

	runCtx, cancel := context.WithTimeout(ctx, o.Warmup+o.Duration+o.CallTimeout)
	defer cancel()
	start := time.Now()
	l := &loop{method: o.Method, prefix: prefix, suffix: suffix, pipeline: o.Pipeline,
		measureFrom: start.Add(o.Warmup), callTimeout: o.CallTimeout}
	l.end = l.measureFrom.Add(o.Duration)
	var wg sync.WaitGroup
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i].run(runCtx, p, l)
		}()
	}
	wg.Wait()
	elapsed := time.Since(l.measureFrom)
	if elapsed > o.Duration {
		elapsed = o.Duration
	}
	if elapsed <= 0 {
		elapsed = time.Nanosecond
	}
	return merge(workers, len(pipes), o.Pipeline, elapsed), nil
}

// requestTemplate encodes the request frame once, with an empty id, and
// splits it around the id: a request is prefix + id + suffix. The id is
// the second field of the frame, so the first `"id":""` is it.
func requestTemplate(method string, params json.RawMessage) (prefix, suffix []byte, err error) {
	frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, Method: method, Params: params})
	if err != nil {
		return nil, nil, fmt.Errorf("bench: encode %s request: %w", method, err)
	}
	i := bytes.Index(frame, []byte(`"id":""`))
	if i < 0 {
		return nil, nil, fmt.Errorf("bench: encoded %s request %s has no id field", method, frame)
	}
	i += len(`"id":"`)
	return frame[:i:i], frame[i:], nil
}

// loop is what every connection's worker shares (read-only).
type loop struct {
	method           string
	prefix, suffix   []byte
	pipeline         int
	measureFrom, end time.Time
	callTimeout      time.Duration
}

// run drives one connection until the end of the run, an unusable
// connection, a call timeout or ctx.
//
// It writes Pipeline requests in one Write, then reads responses. Each
// response frees a slot, and the freed slots are refilled with one Write as
// soon as the next Read would wait on the network (p.Buffered() is false):
// responses that arrived together are answered with one batch, so the
// syscalls per request fall as the load grows, and the connection never
// waits for the network with fewer than Pipeline requests in flight (nor
// ends its loop while time remains: an empty window is refilled at once,
// even when an event is still buffered). With Pipeline 1 this is a closed
// loop of single calls.
//
// Call timeouts cost no timer per request: the read deadline is set to the
// oldest request in flight plus CallTimeout, and only moved when it fires
// (a deadline interrupts nothing that a later Read cannot resume). ctx
// ends the loop by moving the deadline to the past.
func (w *worker) run(ctx context.Context, p *client.Pipe, l *loop) {
	if !time.Now().Before(l.end) || ctx.Err() != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { p.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	inflight := make(map[uint64]time.Time, l.pipeline)
	buf := make([]byte, 0, l.pipeline*(len(l.prefix)+len(l.suffix)+20))
	frames := make([][]byte, 0, l.pipeline)
	var nextID uint64
	send := func(k int) error {
		buf, frames = buf[:0], frames[:0]
		for range k {
			nextID++
			s := len(buf)
			buf = append(buf, l.prefix...)
			buf = strconv.AppendUint(buf, nextID, 10)
			buf = append(buf, l.suffix...)
			frames = append(frames, buf[s:])
		}
		t := time.Now()
		for id := nextID - uint64(k) + 1; id <= nextID; id++ {
			inflight[id] = t
		}
		return p.Write(frames...)
	}
	// failAll ends the loop on an error that takes every request in flight
	// with it.
	failAll := func(now time.Time, why string) {
		for _, t0 := range inflight {
			w.record(t0, now, l.measureFrom, why)
		}
	}

	if err := send(l.pipeline); err != nil {
		failAll(time.Now(), fmt.Sprintf("%s: %v", l.method, err))
		return
	}
	if err := p.SetReadDeadline(time.Now().Add(l.callTimeout)); err != nil || ctx.Err() != nil {
		return
	}
	refill := 0
	for len(inflight) > 0 {
		msg, err := p.Read()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return // the run was canceled or ran out of time: not the gateway's error
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				failAll(now, fmt.Sprintf("%s: %v", l.method, err))
				return
			}
			oldest := now
			for _, t0 := range inflight {
				if t0.Before(oldest) {
					oldest = t0
				}
			}
			if now.Sub(oldest) >= l.callTimeout {
				why := fmt.Sprintf("%s: no response within %s", l.method, l.callTimeout)
				for _, t0 := range inflight {
					if now.Sub(t0) >= l.callTimeout {
						w.record(t0, now, l.measureFrom, why)
					}
				}
				return
			}
			if err := p.SetReadDeadline(oldest.Add(l.callTimeout)); err != nil || ctx.Err() != nil {
				return // ctx: its deadline move may have run before ours
			}
			continue
		}
		if id, isRes, why := parseResponse(msg, l.method); isRes { // else an event: skipped
			t0, ok := inflight[id]
			if !ok {
				if why == "" {
					why = fmt.Sprintf("%s: response for a request this connection did not send: %.200s", l.method, msg)
				}
				failAll(now, why)
				return
			}
			delete(inflight, id)
			w.record(t0, now, l.measureFrom, why)
			if now.Before(l.end) {
				refill++
			}
		}
		if refill > 0 && (len(inflight) == 0 || !p.Buffered()) {
			if err := send(refill); err != nil {
				failAll(time.Now(), fmt.Sprintf("%s: %v", l.method, err))
				return
			}
			refill = 0
		}
	}
}

// record counts one finished call (why is its error, "" when it succeeded)
// unless it was written during the warmup.
func (w *worker) record(t0, now, measureFrom time.Time, why string) {
	if t0.Before(measureFrom) {
		return
	}
	w.lat = append(w.lat, now.Sub(t0))
	if why != "" {
		w.errors++
		if w.firstError == "" {
			w.firstError = why
		}
	}
}

var (
	resPrefix   = []byte(`{"type":"res","id":"`)
	okMark      = []byte(`","ok":true`)
	eventPrefix = []byte(`{"type":"event"`)
)

// parseResponse classifies one message: an event (isRes false), or a
// response with the numeric id this package sent (0 when the id is not
// one) and why it failed ("" when ok). The common shape,
// {"type":"res","id":"N","ok":true,…}, is recognized from its bytes; any
// other message is decoded in full, so a response that is not clearly ok
// is counted with the gateway's error message.
func parseResponse(msg []byte, method string) (id uint64, isRes bool, why string) {
	if rest, ok := bytes.CutPrefix(msg, resPrefix); ok {
		if n, digits := parseID(rest); digits > 0 && bytes.HasPrefix(rest[digits:], okMark) {
			return n, true, ""
		}
	} else if bytes.HasPrefix(msg, eventPrefix) {
		return 0, false, ""
	}
	var f struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		OK    bool            `json:"ok"`
		Error *protocol.Error `json:"error"`
	}
	if err := json.Unmarshal(msg, &f); err != nil {
		return 0, true, fmt.Sprintf("%s: undecodable frame from the gateway (%v): %.200s", method, err, msg)
	}
	if f.Type != protocol.TypeRes {
		return 0, false, ""
	}
	if n, digits := parseID([]byte(f.ID)); digits == len(f.ID) {
		id = n
	}
	if f.OK {
		return id, true, ""
	}
	e := f.Error
	if e == nil {
		e = &protocol.Error{Code: protocol.ErrInvalidRequest, Message: "request failed without an error object"}
	}
	return id, true, (&client.CallError{Method: method, Err: e}).Error()
}

// parseID reads the decimal id at the start of b: its value and how many
// digits it had (0: none, or too many to be one of ours).
func parseID(b []byte) (n uint64, digits int) {
	for digits < len(b) && digits < 19 && '0' <= b[digits] && b[digits] <= '9' {
		n = n*10 + uint64(b[digits]-'0')
		digits++
	}
	if digits < len(b) && '0' <= b[digits] && b[digits] <= '9' {
		return 0, 0
	}
	return n, digits
}

func merge(workers []*worker, conns, pipeline int, elapsed time.Duration) *Result {
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	all := make([]time.Duration, 0, n)
	r := &Result{Conns: conns, Pipeline: pipeline, Duration: elapsed}
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

// dialAll opens n connections with dial, at most dialParallelism at a
// time. On the first failure it closes what it opened and returns that
// error.
func dialAll[C interface{ Close() error }](ctx context.Context, n int, dial func(context.Context) (C, error)) ([]C, error) {
	conns := make([]C, n)
	opened := make([]bool, n)
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
			c, err := dial(dctx)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			conns[i], opened[i] = c, true
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
		var open []C
		for i, c := range conns {
			if opened[i] {
				open = append(open, c)
			}
		}
		closeAll(open)
		return nil, first
	}
	return conns, nil
}

// closeAll closes conns in parallel (a close waits for the gateway's
// answer, about one round trip).
func closeAll[C interface{ Close() error }](conns []C) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
}

// String renders the result as a small human table.
func (r *Result) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "connections\t%d\n", r.Conns)
	fmt.Fprintf(tw, "pipeline\t%d\n", r.Pipeline)
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
	Pipeline   int     `json:"pipeline"`
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
// {conns, pipeline, durationMs, requests, errors, rps, p50Ms, p99Ms, p999Ms, maxMs,
// firstError?}. `gatewayctl bench --json` prints this.
func (r *Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{
		Conns: r.Conns, Pipeline: r.Pipeline, DurationMs: ms(r.Duration), Requests: r.Requests, Errors: r.Errors,
		RPS: math.Round(r.RPS*10) / 10, P50Ms: ms(r.P50), P99Ms: ms(r.P99), P999Ms: ms(r.P999),
		MaxMs: ms(r.Max), FirstError: r.FirstError,
	})
}
