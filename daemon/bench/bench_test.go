package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// The real gatewayd, built once in TestMain, and a gateway process shared
// by the tests and throughput benchmarks (started on first use, stopped by
// PID after all of them).
var (
	gatewayd   string
	buildErr   error
	workDir    string
	sharedOnce sync.Once
	shared     *gatewaydtest.Gateway
	sharedErr  error
)

func TestMain(m *testing.M) {
	switch os.Getenv(echoServerEnv) {
	case "1":
		os.Exit(echoServerMain()) // a child of BenchmarkLoopbackFloor
	case "fanout":
		os.Exit(fanoutServerMain()) // a child of BenchmarkLoopbackFanoutFloor
	}
	var err error
	workDir, err = os.MkdirTemp("", "bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayd, buildErr = gatewaydtest.Build(workDir)
	raiseFileLimit() // for BenchmarkIdleConnsRSS; gatewayd children inherit it
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "shared gatewayd: %v\n%s", err, shared.Output())
		}
	}
	os.RemoveAll(workDir)
	os.Exit(code)
}

func skipWithoutBinary(tb testing.TB) {
	tb.Helper()
	if buildErr != nil {
		tb.Skipf("SKIPPING: cannot build the real gatewayd to measure (CI builds it from this checkout): %v", buildErr)
	}
}

func sharedGateway(tb testing.TB) *gatewaydtest.Gateway {
	tb.Helper()
	skipWithoutBinary(tb)
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		shared, sharedErr = gatewaydtest.Start(ctx, gatewayd, gatewaydtest.Options{Dir: workDir + "/shared"})
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// ownGateway starts a gateway for one test or benchmark alone.
func ownGateway(tb testing.TB) *gatewaydtest.Gateway {
	tb.Helper()
	skipWithoutBinary(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	g, err := gatewaydtest.Start(ctx, gatewayd, gatewaydtest.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Stop() })
	return g
}

func clientOptions(g *gatewaydtest.Gateway) client.Options {
	return client.Options{URL: g.URL, Token: g.Token,
		Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopeAdmin}}
}

func TestRun(t *testing.T) {
	g := sharedGateway(t)
	r, err := Run(context.Background(), Options{Client: clientOptions(g), Conns: 2, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 2 || r.Requests == 0 || r.Errors != 0 || r.FirstError != "" {
		t.Errorf("result %+v: want 2 conns, requests > 0 and no errors", r)
	}
	if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
		t.Errorf("percentiles not ordered: p50 %v p99 %v p99.9 %v max %v", r.P50, r.P99, r.P999, r.Max)
	}
	if r.Duration > 300*time.Millisecond || r.Duration < 200*time.Millisecond {
		t.Errorf("measured duration %v, want about 300ms (warmup excluded)", r.Duration)
	}
	if want := float64(r.Requests) / r.Duration.Seconds(); r.RPS != want {
		t.Errorf("RPS %v, want requests/duration = %v", r.RPS, want)
	}
	for _, s := range []string{"connections", "requests", "req/s", "latency p99.9"} {
		if !strings.Contains(r.String(), s) {
			t.Errorf("String() lacks %q:\n%s", s, r)
		}
	}
	var j map[string]any
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j["requests"].(float64) != float64(r.Requests) || j["p99Ms"] == nil || j["conns"].(float64) != 2 {
		t.Errorf("JSON form %s", b)
	}
}

func TestRunWithParams(t *testing.T) {
	g := sharedGateway(t)
	r, err := Run(context.Background(), Options{Client: clientOptions(g), Duration: 100 * time.Millisecond,
		Method: "logs.tail", Params: json.RawMessage(`{"limit":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 {
		t.Errorf("logs.tail bench: %+v", r)
	}
}

func TestRunCountsErrors(t *testing.T) {
	g := sharedGateway(t)
	r, err := Run(context.Background(), Options{Client: clientOptions(g), Duration: 100 * time.Millisecond, Method: "bogus.method"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != r.Requests || !strings.Contains(r.FirstError, "unknown method: bogus.method") {
		t.Errorf("bogus.method bench: requests %d errors %d first %q", r.Requests, r.Errors, r.FirstError)
	}
}

func TestRunDialFailure(t *testing.T) {
	skipWithoutBinary(t)
	port, err := gatewaydtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Options{Client: client.Options{URL: fmt.Sprintf("ws://127.0.0.1:%d", port)}, Conns: 3, Duration: time.Second})
	var de *client.DialError
	if !errors.As(err, &de) || !de.IsUnreachable() {
		t.Fatalf("Run against a closed port: %v, want an unreachable DialError", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	g := sharedGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := Run(ctx, Options{Client: clientOptions(g), Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v after its context ended", took)
	}
	if r.Errors != 0 {
		t.Errorf("a canceled run counted %d errors (%s)", r.Errors, r.FirstError)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(7), 0.999, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.99, 4 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.999, 100 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(tt.sorted), tt.q, got, tt.want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	if _, err := Run(context.Background(), Options{Conns: MaxConns + 1}); err == nil || !strings.Contains(err.Error(), "--conns") {
		t.Errorf("too many conns: %v", err)
	}
	if _, err := Run(context.Background(), Options{Params: json.RawMessage(`{`)}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad params: %v", err)
	}
}

func TestRunPipelineAgainstGatewayd(t *testing.T) {
	g := sharedGateway(t)
	tests := []struct {
		pipeline int
		method   string
		wantErr  string // every call fails with this; "" none does
	}{
		{1, "health", ""},
		{8, "health", ""},
		{1, "bogus.method", "bogus.method: INVALID_REQUEST: unknown method: bogus.method"},
		{8, "bogus.method", "bogus.method: INVALID_REQUEST: unknown method: bogus.method"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/pipeline=%d", tt.method, tt.pipeline), func(t *testing.T) {
			r, err := Run(context.Background(), Options{Client: clientOptions(g), Conns: 2, Pipeline: tt.pipeline,
				Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond, Method: tt.method})
			if err != nil {
				t.Fatal(err)
			}
			if r.Pipeline != tt.pipeline || r.Conns != 2 || r.Requests == 0 {
				t.Fatalf("result %+v: want pipeline %d, 2 conns, requests > 0", r, tt.pipeline)
			}
			if tt.wantErr == "" && (r.Errors != 0 || r.FirstError != "") {
				t.Errorf("%d errors, first %q; want none", r.Errors, r.FirstError)
			}
			if tt.wantErr != "" && (r.Errors != r.Requests || r.FirstError != tt.wantErr) {
				t.Errorf("%d errors of %d requests, first %q; want all, with %q", r.Errors, r.Requests, r.FirstError, tt.wantErr)
			}
			if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
				t.Errorf("percentiles not ordered: p50 %v p99 %v p99.9 %v max %v", r.P50, r.P99, r.P999, r.Max)
			}
			if !strings.Contains(r.String(), fmt.Sprintf("pipeline       %d\n", tt.pipeline)) {
				t.Errorf("String() lacks the pipeline:\n%s", r)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), fmt.Sprintf(`"pipeline":%d,`, tt.pipeline)) {
				t.Errorf("JSON form lacks the pipeline: %s", b)
			}
		})
	}
	if _, err := Run(context.Background(), Options{Client: clientOptions(g), Pipeline: MaxPipeline + 1}); err == nil || !strings.Contains(err.Error(), "--pipeline") {
		t.Errorf("pipeline over the limit: %v", err)
	}
}

// fakeGateway is a scripted gateway on a loopback socket for what the real
// one cannot be made to do on demand: hold requests, answer out of order,
// never answer. It accepts one connection, completes a minimal v4
// handshake and then, after every read syscall, answers what that read
// brought (in reverse order, an event in between, in one write) through
// answer, which returns the response frame or nil to never answer.
type fakeGateway struct {
	url string
	// Counted by the peer; read them after Run returned (done is closed).
	batches  []int // requests per read syscall
	answered int   // responses sent
	failed   int   // of which ok:false
	done     chan error
	once     sync.Once
	err      error
}

// wait returns how serving ended (bounded: 10s).
func (f *fakeGateway) wait() error {
	f.once.Do(func() {
		select {
		case f.err = <-f.done:
		case <-time.After(10 * time.Second):
			f.err = errors.New("still running 10s after the test")
		}
	})
	return f.err
}

func startFakeGateway(t *testing.T, answer func(id string) []byte) *fakeGateway {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeGateway{url: "ws://" + l.Addr().String(), done: make(chan error, 1)}
	go func() {
		defer l.Close()
		f.done <- f.serve(l, answer)
	}()
	t.Cleanup(func() {
		l.Close()
		if err := f.wait(); err != nil {
			t.Errorf("fake gateway: %v", err)
		}
	})
	return f
}

func (f *fakeGateway) serve(l net.Listener, answer func(id string) []byte) error {
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r, err := gatewaydtest.AcceptFake(conn, 0)
	if err != nil {
		return err
	}
	var in []byte
	buf := make([]byte, 64<<10)
	for range 1_000_000 {
		n, err := r.Read(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		in = append(in, buf[:n]...)
		var ids []string
		for {
			h, err := ws.ReadHeader(bytes.NewReader(in))
			if err != nil || int64(len(in)) < int64(ws.HeaderSize(h))+h.Length {
				break // the rest of the frame is still on its way
			}
			payload := in[ws.HeaderSize(h) : int64(ws.HeaderSize(h))+h.Length]
			ws.Cipher(payload, h.Mask, 0)
			in = in[int64(ws.HeaderSize(h))+h.Length:]
			if h.OpCode == ws.OpClose {
				return wsutil.WriteServerMessage(conn, ws.OpClose, payload)
			}
			var r protocol.RequestFrame
			if err := json.Unmarshal(payload, &r); err != nil || r.Type != protocol.TypeReq || r.Method != "health" {
				return fmt.Errorf("frame %q is not a health request (%v)", payload, err)
			}
			ids = append(ids, r.ID)
		}
		if len(ids) == 0 {
			continue
		}
		f.batches = append(f.batches, len(ids))
		var out bytes.Buffer
		for i, id := range slices.Backward(ids) {
			if i == len(ids)/2 {
				wsutil.WriteServerText(&out, []byte(`{"type":"event","event":"tick","payload":{"ts":1},"seq":1}`))
			}
			res := answer(id)
			if res == nil {
				continue
			}
			f.answered++
			if !bytes.Contains(res, []byte(`"ok":true`)) {
				f.failed++
			}
			wsutil.WriteServerText(&out, res)
		}
		// An event after the last answer: the client must not take the
		// buffered event for more answers and leave its window empty.
		wsutil.WriteServerText(&out, []byte(`{"type":"event","event":"health","payload":{"ok":true},"seq":2}`))
		if _, err := conn.Write(out.Bytes()); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return errors.New("more than a million reads")
}

// TestRunPipelineWindow checks the window against a gateway that answers
// out of order, fails every fifth call and interleaves events (one after
// the last answer of every batch): the first
// write carries the whole window, no read ever brings more than the
// window, and every answer is counted once, errors with their message.
func TestRunPipelineWindow(t *testing.T) {
	for _, pipeline := range []int{1, 8} {
		t.Run(fmt.Sprint("pipeline=", pipeline), func(t *testing.T) {
			f := startFakeGateway(t, func(id string) []byte {
				if n, _ := strconv.Atoi(id); n%5 == 0 {
					return []byte(`{"type":"res","id":"` + id + `","ok":false,"error":{"code":"UNAVAILABLE","message":"every fifth"}}`)
				}
				return []byte(`{"type":"res","id":"` + id + `","ok":true,"payload":{"ok":true}}`)
			})
			r, err := Run(context.Background(), Options{Client: client.Options{URL: f.url, Token: "t"},
				Pipeline: pipeline, Duration: 150 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.wait(); err != nil {
				t.Fatalf("fake gateway: %v", err)
			}
			if len(f.batches) == 0 || f.batches[0] != pipeline {
				t.Errorf("first read brought %v requests, want the whole window of %d in one write", f.batches[:min(1, len(f.batches))], pipeline)
			}
			if m := slices.Max(f.batches); m > pipeline {
				t.Errorf("a read brought %d requests, more than the window of %d", m, pipeline)
			}
			if r.Requests != int64(f.answered) || r.Errors != int64(f.failed) || r.Requests < 10 {
				t.Errorf("counted %d requests and %d errors; the gateway answered %d (want at least 10), %d of them errors",
					r.Requests, r.Errors, f.answered, f.failed)
			}
			if r.Duration < 140*time.Millisecond {
				t.Errorf("measured %v of 150ms: the loop ended early", r.Duration)
			}
			if r.FirstError != "health: UNAVAILABLE: every fifth" {
				t.Errorf("first error %q", r.FirstError)
			}
		})
	}
}

// TestRunCallTimeout: requests after the fourth are never answered. Each
// connection's loop must end at CallTimeout, counting the calls that
// timed out, not wait for the end of Duration.
func TestRunCallTimeout(t *testing.T) {
	for _, pipeline := range []int{1, 4} {
		t.Run(fmt.Sprint("pipeline=", pipeline), func(t *testing.T) {
			f := startFakeGateway(t, func(id string) []byte {
				if n, _ := strconv.Atoi(id); n > 4 {
					return nil
				}
				return []byte(`{"type":"res","id":"` + id + `","ok":true,"payload":{}}`)
			})
			start := time.Now()
			r, err := Run(context.Background(), Options{Client: client.Options{URL: f.url, Token: "t"},
				Pipeline: pipeline, Duration: time.Minute, CallTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Run took %v with a 200ms call timeout", took)
			}
			// Pipeline 1: call 5 times out. Pipeline 4: calls 5-8 are in
			// flight; the first written (at least) time out.
			if r.Errors < 1 || r.Errors > int64(pipeline) || r.Requests != 4+r.Errors {
				t.Errorf("%d requests, %d errors; want 4 answered plus 1..%d timed out", r.Requests, r.Errors, pipeline)
			}
			if r.FirstError != "health: no response within 200ms" {
				t.Errorf("first error %q", r.FirstError)
			}
			if r.Max < 200*time.Millisecond {
				t.Errorf("max latency %v, want the timed-out calls' ≥ 200ms", r.Max)
			}
		})
	}
}
