package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/client/gatewaytest"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// The real gatewayd, built once in TestMain, and a gateway process shared
// by the tests and throughput benchmarks (started on first use, stopped by
// PID after all of them).
var (
	gatewayd   string
	buildErr   error
	workDir    string
	sharedOnce sync.Once
	shared     *gatewaytest.Gateway
	sharedErr  error
)

func TestMain(m *testing.M) {
	var err error
	workDir, err = os.MkdirTemp("", "bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayd, buildErr = gatewaytest.Build(workDir)
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

func sharedGateway(tb testing.TB) *gatewaytest.Gateway {
	tb.Helper()
	skipWithoutBinary(tb)
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		shared, sharedErr = gatewaytest.Start(ctx, gatewayd, gatewaytest.Options{Dir: workDir + "/shared"})
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// ownGateway starts a gateway for one test or benchmark alone.
func ownGateway(tb testing.TB) *gatewaytest.Gateway {
	tb.Helper()
	skipWithoutBinary(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	g, err := gatewaytest.Start(ctx, gatewayd, gatewaytest.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Stop() })
	return g
}

func clientOptions(g *gatewaytest.Gateway) client.Options {
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
	port, err := gatewaytest.FreePort()
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
