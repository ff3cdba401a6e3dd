package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestPresenceBurstIsCoalescedAndSnapshotBounded opens more clients than
// the snapshot bound (lowered to 40 to keep the test light): the watcher's
// presence events are fewer than the connects and each a list within the
// bound, the last of them naming the last newcomer; the last hello-ok
// carries a bounded snapshot with the gateway's own entry, and
// system-presence still lists everyone.
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
	last, err := client.Dial(ctx, client.Options{URL: url, Token: testToken, EventBuffer: 2, InstanceID: "last", ClientID: "gateway-client", Mode: "backend"})
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
	// The watcher's events are whole lists within the bound (never a
	// delta), fewer than the connects; the last names the last newcomer.
	events := 0
	timeout := time.After(10 * time.Second)
	for sawLast := false; !sawLast; {
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
			if len(p.Presence) > limit {
				t.Fatalf("a presence event lists %d entries, more than the bound %d", len(p.Presence), limit)
			}
			hasGateway := false
			for _, e := range p.Presence {
				hasGateway = hasGateway || e.Mode == "gateway"
				sawLast = sawLast || e.InstanceID == "last"
			}
			if !hasGateway {
				t.Fatalf("a presence event without the gateway's own entry: not the whole list: %s", ev.Payload)
			}
		case <-timeout:
			t.Fatalf("watcher never saw the last newcomer in %d presence events", events)
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

// nextPresence is c's next presence event, checked for OpenClaw's shape:
// the payload is {"presence": [entries]} and nothing else, with a
// stateVersion whose presence counter is above after.
func nextPresence(t *testing.T, c *client.Conn, after int64) (list []protocol.PresenceEntry, version int64) {
	t.Helper()
	ev := waitEvent(t, c, "presence")
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(ev.Payload, &fields); err != nil {
		t.Fatalf("presence payload %s: %v", ev.Payload, err)
	}
	if len(fields) != 1 || fields["presence"] == nil {
		t.Fatalf("presence payload %s: want exactly {\"presence\": [...]}", ev.Payload)
	}
	if err := json.Unmarshal(fields["presence"], &list); err != nil {
		t.Fatalf("presence payload %s: %v", ev.Payload, err)
	}
	if ev.StateVersion == nil || ev.StateVersion.Presence <= after {
		t.Fatalf("presence event stateVersion %+v, want presence > %d", ev.StateVersion, after)
	}
	return list, ev.StateVersion.Presence
}

// instances lists the entries' instanceIds ("gateway" for the gateway's
// own), sorted.
func instances(list []protocol.PresenceEntry) []string {
	out := make([]string, 0, len(list))
	for _, e := range list {
		if e.Mode == "gateway" && e.Reason == "self" {
			out = append(out, "gateway")
		} else {
			out = append(out, e.InstanceID)
		}
	}
	slices.Sort(out)
	return out
}

// TestPresenceEventIsTheWholeList pins the presence event to OpenClaw's:
// its Control UI replaces its list with each event's payload.presence, so
// every event carries the whole list (the gateway's own entry included),
// the same as system-presence at that moment, and a client that went is
// simply absent from the next one.
func TestPresenceEventIsTheWholeList(t *testing.T) {
	url := startServer(t, &testExt{release: make(chan struct{})})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watcher := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, InstanceID: "watcher", ClientID: "gateway-client", Mode: "backend"})
	var before []protocol.PresenceEntry
	if err := watcher.CallInto(ctx, "system-presence", nil, &before); err != nil { // attached: it sees what follows
		t.Fatal(err)
	}
	if got := instances(before); !slices.Equal(got, []string{"gateway", "watcher"}) {
		t.Fatalf("system-presence before: %v", got)
	}
	v := watcher.Hello().Snapshot.StateVersion.Presence

	second := gatewaydtest.Dial(t, client.Options{URL: url, Token: testToken, InstanceID: "second", ClientID: "gateway-client", Mode: "backend"})
	list, v := nextPresence(t, watcher, v)
	if got := instances(list); !slices.Equal(got, []string{"gateway", "second", "watcher"}) {
		t.Fatalf("presence event after a second client connected lists %v, want the gateway, second and watcher", got)
	}
	var now []protocol.PresenceEntry
	if err := watcher.CallInto(ctx, "system-presence", nil, &now); err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(list)
	sp, _ := json.Marshal(now)
	if string(ev) != string(sp) {
		t.Fatalf("the presence event's list differs from system-presence:\nevent  %s\nmethod %s", ev, sp)
	}

	second.Close()
	list, _ = nextPresence(t, watcher, v)
	if got := instances(list); !slices.Equal(got, []string{"gateway", "watcher"}) {
		t.Fatalf("presence event after the second client went lists %v, want the gateway and watcher", got)
	}
}
