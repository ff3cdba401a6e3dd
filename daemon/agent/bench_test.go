package agent_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// BenchmarkConcurrentEchoRuns runs 100 echo runs at once over the protocol
// (10 connections, 10 runs each) and measures how late each delta arrives
// against the backend's own schedule. The echo agent paces its deltas
// delayMs apart, so delta k (k >= 1) is due delayMs*k after delta 0; what
// the client sees beyond that is latency the gateway added (event fan-out,
// queueing, the WebSocket write) under the load of 100 runs. Reported:
// p50 and p99 of that added latency per delta, in ms.
func BenchmarkConcurrentEchoRuns(b *testing.B) {
	const (
		conns, perConn = 10, 10
		delay          = 20 * time.Millisecond
		message        = "alpha beta gamma delta epsilon zeta eta theta"
	)
	g := startGateway(b, b.TempDir(), fmt.Sprintf(`{"agents":{"maxConcurrent":200,"list":{"paced":{"echo":{"delayMs":%d}}}}}`, delay.Milliseconds()))
	cs := make([]*client.Conn, conns)
	for i := range cs {
		cs[i] = dial(b, g)
	}
	var mu sync.Mutex
	var added []float64
	b.ResetTimer()
	for n := range b.N {
		var wg sync.WaitGroup
		for ci, c := range cs {
			// One reader per connection routes events to their runs.
			arrivals := map[string]*[]time.Time{}
			var amu sync.Mutex
			for j := range perConn {
				arr := []time.Time{}
				arrivals[fmt.Sprintf("b%d-%d-%d", n, ci, j)] = &arr
			}
			stop := make(chan struct{})
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				for {
					select {
					case ev := <-c.Events():
						now := time.Now()
						if ev.Name != "agent" {
							continue
						}
						var ae client.AgentEvent
						if json.Unmarshal(ev.Payload, &ae) != nil || ae.Delta() == "" {
							continue
						}
						amu.Lock()
						if a := arrivals[ae.RunID]; a != nil {
							*a = append(*a, now)
						}
						amu.Unlock()
					case <-stop:
						return
					}
				}
			}()
			var cwg sync.WaitGroup
			for j := range perConn {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					_, ts, err := c.CallTwoStage(ctxT(b, 30*time.Second), "agent", client.AgentParams{Message: message, IdempotencyKey: fmt.Sprintf("b%d-%d-%d", n, ci, j), AgentID: "paced", SessionKey: fmt.Sprintf("bench-%d-%d", ci, j)})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := ts.Final(ctxT(b, 30*time.Second)); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cwg.Wait()
				close(stop)
				<-readerDone
				// Deltas the reader had not taken yet when the finals came.
				amu.Lock()
				defer amu.Unlock()
				for id, a := range arrivals {
					if len(*a) != 4 {
						b.Errorf("run %s: %d deltas arrived, want 4", id, len(*a))
						continue
					}
					mu.Lock()
					for k := 1; k < len(*a); k++ {
						late := (*a)[k].Sub((*a)[0]) - time.Duration(k)*delay
						added = append(added, float64(max(late, 0))/float64(time.Millisecond))
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	if len(added) == 0 {
		return
	}
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "p50-added-ms/delta")
	b.ReportMetric(added[len(added)*99/100], "p99-added-ms/delta")
	b.ReportMetric(float64(len(added)), "deltas")
}
