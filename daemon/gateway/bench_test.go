package gateway_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// BenchmarkHealthInProcess is one client calling health in a loop against
// an in-process server: the per-request cost of the whole path (client
// included), for profiling. The figures the issue asks for come from
// daemon/bench against the real binary.
func BenchmarkHealthInProcess(b *testing.B) {
	url := startServer(b, &testExt{release: make(chan struct{})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: url, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Call(ctx, "health", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkConnectInProcess opens and keeps connections against an
// in-process server: the connect path's cost, and (with -memprofile,
// inuse_space) what an idle connection holds.
func BenchmarkConnectInProcess(b *testing.B) {
	url := startServer(b, &testExt{release: make(chan struct{})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]*client.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := client.Dial(ctx, client.Options{URL: url, Token: testToken, EventBuffer: 2})
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	runtime.GC()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conn/s")
}

// BenchmarkHealth64InProcess is 64 clients calling health concurrently
// against an in-process server (for profiling the server under load).
func BenchmarkHealth64InProcess(b *testing.B) {
	url := startServer(b, &testExt{release: make(chan struct{})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]*client.Conn, 64)
	for i := range conns {
		c, err := client.Dial(ctx, client.Options{URL: url, Token: testToken})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := c.Call(ctx, "health", nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
