package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gobwas/ws"
)

// hub tracks connected clients and presence, and fans events out. Events
// are never replayed: a client that misses one sees a seq gap and refreshes.
type hub struct {
	s        *Server
	mu       sync.RWMutex
	conns    map[*wsConn]struct{}
	presence map[string]protocol.PresenceEntry
	owners   map[string]*wsConn // presence key → the connection that owns it

	// Presence changes are coalesced: the first change after a quiet
	// period goes out at once, later ones within presenceCoalesce are
	// batched into one event (a burst of connects is then one event per
	// window instead of one per connect). Each event carries the whole
	// (bounded) list, as OpenClaw's does.
	pmu         sync.Mutex
	dirty       bool // presence changed since the last event
	flushArmed  bool
	lastFlush   time.Time
	tokens      float64   // immediate flushes available (token bucket)
	refilled    time.Time // when tokens was last topped up
	statusArmed atomic.Bool
	connects    atomic.Int64 // handshakes completed, ever
	lastConnect atomic.Int64 // unix ms of the last one
	presenceVer atomic.Int64
	healthVer   atomic.Int64
	lastBeat    atomic.Int64
	n           atomic.Int64
}

func newHub(s *Server) *hub {
	h := &hub{s: s, conns: map[*wsConn]struct{}{}, presence: map[string]protocol.PresenceEntry{}, owners: map[string]*wsConn{}}
	self := s.selfPresence()
	h.presence["gateway:"+s.o.BootID] = self
	h.presenceVer.Store(1)
	h.healthVer.Store(1)
	h.lastBeat.Store(time.Now().UnixMilli())
	return h
}

func (h *hub) count() int { return int(h.n.Load()) }

func (h *hub) stateVersion() *protocol.StateVersion {
	return &protocol.StateVersion{Presence: h.presenceVer.Load(), Health: h.healthVer.Load()}
}

func (h *hub) all() []*wsConn {
	h.mu.RLock()
	out := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c)
	}
	h.mu.RUnlock()
	return out
}

func (h *hub) presenceList() []protocol.PresenceEntry {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]protocol.PresenceEntry, 0, len(h.presence))
	for _, k := range sortedKeys(h.presence) {
		out = append(out, h.presence[k])
	}
	return out
}

// MaxSnapshotPresence is the default bound (Options.MaxSnapshotPresence) on
// the presence entries in a hello-ok snapshot and in a presence event:
// past it the list carries the gateway's own entry and the most
// recently changed others (system-presence always returns all). Without
// the bound every connect would cost O(clients) bytes, and opening n
// connections O(n²).
const MaxSnapshotPresence = 500

// snapshotPresence is the presence list for hello-ok and presence events:
// all entries (by key) up to MaxSnapshotPresence, else the gateway and the
// newest others.
func (h *hub) snapshotPresence() []protocol.PresenceEntry {
	h.mu.RLock()
	limit := h.s.o.MaxSnapshotPresence
	if len(h.presence) <= limit {
		h.mu.RUnlock()
		return h.presenceList()
	}
	self := h.presence["gateway:"+h.s.o.BootID]
	all := make([]protocol.PresenceEntry, 0, len(h.presence))
	for k, e := range h.presence {
		if k != "gateway:"+h.s.o.BootID {
			all = append(all, e)
		}
	}
	h.mu.RUnlock()
	slices.SortFunc(all, func(a, b protocol.PresenceEntry) int { return cmp.Compare(b.TS, a.TS) })
	return append([]protocol.PresenceEntry{self}, all[:limit-1]...)
}

// snapshotFor is hello-ok's presence snapshot for a peer with scopes: the
// gateway's own entry alone without operator.read.
func (h *hub) snapshotFor(scopes []string) []protocol.PresenceEntry {
	if hasScope(scopes, protocol.ScopeRead) {
		return h.snapshotPresence()
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return []protocol.PresenceEntry{h.presence["gateway:"+h.s.o.BootID]}
}

// healthFor is hello-ok's health snapshot for a peer with scopes: the
// whole health (with this connection counted) for operator.read; without
// it only whether the gateway is ok (no config error, no listeners), and
// the extensions' parts (a store read for the agents' sessions) are not
// built for a peer that would not see them.
func (s *Server) healthFor(scopes []string) any {
	if hasScope(scopes, protocol.ScopeRead) {
		h := s.health()
		h.Connections++ // this one, attached right after
		return h
	}
	now := time.Now()
	ok, _, _ := s.healthOK(now)
	return map[string]any{"ok": ok, "ts": now.UnixMilli()}
}

// add records a connection's presence and announces it to the others. The
// connection itself starts receiving events only after attach, so its
// hello-ok is the first frame after the challenge.
func (h *hub) add(c *wsConn, entry protocol.PresenceEntry) {
	if !c.listed {
		return
	}
	h.mu.Lock()
	h.presence[c.presence] = entry
	h.owners[c.presence] = c
	h.mu.Unlock()
	h.presenceChanged()
}

// attach starts event delivery to a connection (after its hello-ok).
func (h *hub) attach(c *wsConn) {
	if cc, ok := c.t.conn.(*capConn); ok {
		cc.authenticated()
	}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	c.attached.Store(true)
	h.mu.Unlock()
	h.n.Add(1)
	h.connects.Add(1)
	h.lastConnect.Store(time.Now().UnixMilli())
	h.statusChanged()
}

// remove unregisters a connection; its presence entry goes unless a newer
// connection with the same instanceId took it over.
func (h *hub) remove(c *wsConn) {
	h.mu.Lock()
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.n.Add(-1)
	}
	gone := c.listed && h.owners[c.presence] == c
	if gone {
		delete(h.presence, c.presence)
		delete(h.owners, c.presence)
	}
	h.mu.Unlock()
	if gone && !h.s.stopping.Load() {
		h.presenceChanged()
	}
	h.statusChanged()
}

// upsertNote posts a presence/system note (system-event).
func (h *hub) upsertNote(key string, e protocol.PresenceEntry) {
	h.mu.Lock()
	h.presence[key] = e
	h.mu.Unlock()
	h.presenceChanged()
}

// dropNote removes a system-event note (expired, or evicted past
// MaxSystemNotes) and announces it gone; an entry a live connection owns
// stays (its note text was only an update of the connection's presence).
func (h *hub) dropNote(key string) {
	h.mu.Lock()
	_, ok := h.presence[key]
	if _, owned := h.owners[key]; owned || !ok {
		h.mu.Unlock()
		return
	}
	delete(h.presence, key)
	h.mu.Unlock()
	h.presenceChanged()
}

// After a burst of at least trimAfterConnects connects, once none came for
// trimQuiet, the hub returns freed memory to the OS (at most every
// trimEvery).
const (
	trimAfterConnects = 200
	trimQuiet         = 2 * time.Second
	trimEvery         = 10 * time.Second
)

// Presence events go out at once while changes are occasional (a token
// bucket of presenceBurst, refilled at presenceRate per second); in a burst
// (many connects at once) the changes are batched into one event per
// presenceCoalesce window.
const (
	presenceCoalesce = 50 * time.Millisecond
	presenceBurst    = 10
	presenceRate     = 20
)

// statusEvery bounds how often the status line (sd_notify STATUS=) is
// recomputed while clients come and go.
const statusEvery = 250 * time.Millisecond

// presenceChanged notes that the presence list changed (the caller
// changed h.presence first) and sends the presence event now, or at the
// end of the current window.
func (h *hub) presenceChanged() {
	h.pmu.Lock()
	h.dirty = true
	if h.flushArmed {
		h.pmu.Unlock()
		return
	}
	h.flushArmed = true
	now := time.Now()
	h.tokens = min(presenceBurst, h.tokens+now.Sub(h.refilled).Seconds()*presenceRate)
	h.refilled = now
	wait := presenceCoalesce - now.Sub(h.lastFlush)
	if h.tokens >= 1 {
		h.tokens-- // an isolated change goes out at once
		wait = 0
	}
	h.pmu.Unlock()
	if wait <= 0 {
		h.flushPresence()
		return
	}
	time.AfterFunc(wait, h.flushPresence)
}

// flushPresence broadcasts the presence list as it is now, if it changed
// since the last event: OpenClaw's clients (its Control UI) replace their
// list with each event's, so the event carries the whole list, bounded
// like hello-ok's snapshot (snapshotPresence). A connection that went is
// simply no longer in it. The list is built and encoded once per event,
// not per recipient.
func (h *hub) flushPresence() {
	h.pmu.Lock()
	dirty := h.dirty
	h.dirty = false
	h.flushArmed = false
	h.lastFlush = time.Now()
	if dirty {
		// Under pmu, so versions and events go out in the same order, and
		// the list is read after every change that armed this flush.
		h.presenceVer.Add(1)
		payload, _ := json.Marshal(protocol.PresenceEvent{Presence: h.snapshotPresence()})
		h.broadcast("presence", payload, h.stateVersion(), protocol.ScopeRead)
	}
	h.pmu.Unlock()
}

// statusChanged recomputes the status line now, or once at the end of the
// current statusEvery window when changes come in a burst.
func (h *hub) statusChanged() {
	if !h.statusArmed.CompareAndSwap(false, true) {
		return
	}
	h.s.updateStatus()
	time.AfterFunc(statusEvery, func() {
		h.statusArmed.Store(false)
		h.s.updateStatus()
	})
}

// broadcast sends one event to every client holding scope ("" = every
// client), the payload encoded once. Presence and health go to
// operator.read only: a node has no business with operator notes or the
// config's last error.
func (h *hub) broadcast(name string, payload []byte, sv *protocol.StateVersion, scope string) {
	h.mu.RLock()
	for c := range h.conns {
		if scope == "" || hasScope(c.scopes, scope) {
			c.sendEvent(name, payload, sv)
		}
	}
	h.mu.RUnlock()
}

func (h *hub) broadcastHealth() {
	h.healthVer.Add(1)
	payload, _ := json.Marshal(h.s.health())
	h.broadcast("health", payload, h.stateVersion(), protocol.ScopeRead)
}

// loop is the hub's heartbeat: it proves liveness for the watchdog, sends
// tick and periodic health events, and pings clients.
func (h *hub) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	lastTick, lastHealth, lastPing := time.Now(), time.Now(), time.Now()
	var trimmedAt time.Time
	var trimmedConnects int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-beat.C:
			h.lastBeat.Store(now.UnixMilli())
			if n := h.connects.Load(); n-trimmedConnects >= trimAfterConnects && now.UnixMilli()-h.lastConnect.Load() > trimQuiet.Milliseconds() && now.Sub(trimmedAt) > trimEvery {
				// A burst of connects is over: return its garbage (hello-ok
				// frames, handshake buffers) to the OS now rather than over
				// minutes, so RSS tracks what the idle connections hold.
				trimmedAt, trimmedConnects = now, n
				go debug.FreeOSMemory()
			}
			h.s.expireNotes(now)
			st := h.s.settings.Load()
			if now.Sub(lastTick) >= st.TickInterval {
				lastTick = now
				payload, _ := json.Marshal(protocol.TickEvent{TS: now.UnixMilli()})
				h.broadcast("tick", payload, nil, "")
			}
			if now.Sub(lastHealth) >= st.HealthInterval {
				lastHealth = now
				h.broadcastHealth()
			}
			if now.Sub(lastPing) >= protocol.PingIntervalS*time.Second {
				lastPing = now
				go h.pingAll(ctx)
			}
		}
	}
}

// pongWait is how long a client has to answer a ping (a variable for tests).
var pongWait = 10 * time.Second

// pingAll pings every client; one whose pong has not come back within
// pongWait is closed. Pings go through the outbound queue, so a client
// that stopped reading (its writer stuck on a full socket) gets none and
// is closed too.
func (h *hub) pingAll(ctx context.Context) {
	sent := time.Now().UnixNano()
	conns := h.all()
	ping := controlFrame(ws.OpPing, nil)
	for _, c := range conns {
		c.sendControl(ping)
	}
	t := time.NewTimer(pongWait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return
	}
	for _, c := range conns {
		if c.t.lastPong.Load() < sent {
			c.close(protocol.ClosePolicyViolation, "ping timeout")
		}
	}
}
