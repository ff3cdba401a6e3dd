package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestPresenceBurstIsCoalescedAndSnapshotBounded opens more clients than
// the snapshot bound (lowered to 40 to keep the test light): a watcher sees every newcomer's presence in fewer
// events than connects, the last hello-ok carries a bounded snapshot with
// the gateway's own entry, and system-presence still lists everyone.
func TestPresenceBurstIsCoalescedAndSnapshotBounded(t *testing.T) {
	const limit = 40
	url := startServerWith(t, &testExt{release: make(chan struct{})}, gateway.Options{MaxSnapshotPresence: limit})
	watcher := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, EventBuffer: 4096, InstanceID: "watcher", ClientID: "gateway-client", Mode: "backend"})
	n := limit + 60
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A burst: all but the last connect together (8 at a time), so the
	// connects come faster than the immediate-flush budget (20/s) even on
	// a loaded machine; the last one then sees them all in its snapshot.
	conns := make([]*client.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n - 1 {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			c, err := client.Dial(ctx, client.Options{URL: url, Token: testToken, EventBuffer: 2, ClientID: "gateway-client", Mode: "backend"})
			conns[i] = c
			if err != nil {
				err = fmt.Errorf("connect %d: %w", i, err)
			}
			errs <- err
		}()
	}
	for range n - 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	last, err := client.Dial(ctx, client.Options{URL: url, Token: testToken, EventBuffer: 2, ClientID: "gateway-client", Mode: "backend"})
	if err != nil {
		t.Fatalf("connect %d: %v", n-1, err)
	}
	conns[n-1] = last
	for _, c := range conns {
		defer c.Close()
	}
	snap := last.Hello().Snapshot.Presence
	if len(snap) != limit || snap[0].Mode != "gateway" {
		t.Fatalf("last snapshot: %d entries, first %+v; want %d starting with the gateway", len(snap), snap[0], limit)
	}
	var all []protocol.PresenceEntry
	if err := watcher.CallInto(ctx, "system-presence", nil, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != n+2 { // the clients, the watcher, the gateway
		t.Fatalf("system-presence lists %d entries, want %d", len(all), n+2)
	}
	// A one-off cli connection is not a presence entry.
	cli := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, InstanceID: "one-off-cli"})
	var again []protocol.PresenceEntry
	if err := cli.CallInto(ctx, "system-presence", nil, &again); err != nil {
		t.Fatal(err)
	}
	for _, e := range again {
		if e.InstanceID == "one-off-cli" {
			t.Fatalf("a cli-mode client is listed in presence: %+v", e)
		}
	}
	// The watcher's events name every newcomer, in fewer events.
	seen := map[string]bool{}
	events := 0
	timeout := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case ev := <-watcher.Events():
			if ev.Name != "presence" {
				continue
			}
			events++
			var p protocol.PresenceEvent
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Presence {
				if e.Reason == "connect" && e.InstanceID != "watcher" {
					seen[e.InstanceID] = true
				}
			}
		case <-timeout:
			t.Fatalf("watcher saw %d of %d newcomers in %d events", len(seen), n, events)
		}
	}
	if watcher.Gaps() != 0 {
		t.Fatalf("watcher missed events: %d gaps", watcher.Gaps())
	}
	if events >= n {
		t.Fatalf("%d connects gave %d presence events: not coalesced", n, events)
	}
	t.Logf("%d connects announced in %d presence events", n, events)
}
