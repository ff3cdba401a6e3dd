package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// system-event posts a note into the presence list. Notes are bounded: the
// params at most MaxSystemEventBytes, the text at most
// MaxSystemEventText bytes, at most MaxSystemNotes notes (the oldest goes
// first), each expiring SystemNoteTTL after its last update; and the
// method is rate-limited per connection and in total. The text is not
// logged (only its size).
const (
	MaxSystemEventBytes = 8 << 10
	MaxSystemEventText  = 4 << 10
	MaxSystemNotes      = 256

	sysEventConnBurst  = 20
	sysEventConnRate   = 5.0 // per second
	sysEventTotalBurst = 200
	sysEventTotalRate  = 100.0
)

// SystemNoteTTL is how long a note lives after its last update.
const SystemNoteTTL = 5 * time.Minute

// bucket is a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// take takes a token if there is one; else it returns how long until
// there is.
func (b *bucket) take(now time.Time, burst, rate float64) (time.Duration, bool) {
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

// systemEvents tracks the notes system-event created and the method's
// rate limits.
type systemEvents struct {
	mu    sync.Mutex
	total bucket
	notes map[string]time.Time // presence key → last update
	ttl   time.Duration
}

func newSystemEvents() *systemEvents {
	return &systemEvents{notes: map[string]time.Time{}, ttl: SystemNoteTTL}
}

// allow applies the rate limits for connection c.
func (e *systemEvents) allow(c *wsConn, now time.Time) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if wait, ok := c.sysEvents.take(now, sysEventConnBurst, sysEventConnRate); !ok {
		return wait, false
	}
	return e.total.take(now, sysEventTotalBurst, sysEventTotalRate)
}

// noted records an update of key and returns the keys to drop to stay
// within MaxSystemNotes (the oldest).
func (e *systemEvents) noted(key string, now time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notes[key] = now
	var drop []string
	for len(e.notes) > MaxSystemNotes { // at most one pass per call in practice
		oldK, oldT := "", now
		for k, t := range e.notes {
			if k != key && !t.After(oldT) {
				oldK, oldT = k, t
			}
		}
		if oldK == "" {
			break
		}
		delete(e.notes, oldK)
		drop = append(drop, oldK)
	}
	return drop
}

// expired removes and returns the notes older than SystemNoteTTL.
func (e *systemEvents) expired(now time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for k, t := range e.notes {
		if now.Sub(t) > e.ttl {
			delete(e.notes, k)
			out = append(out, k)
		}
	}
	return out
}

func (s *Server) systemEvent(c *wsConn, raw json.RawMessage) (any, *protocol.Error) {
	now := time.Now()
	if len(raw) > MaxSystemEventBytes {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest,
			fmt.Sprintf("invalid system-event params: %d bytes, at most %d (shorten text and tags)", len(raw), MaxSystemEventBytes))
	}
	if wait, ok := s.events.allow(c, now); !ok {
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, RetryAfterMs: max(1, wait.Milliseconds()),
			Message: "too many system events; slow down"}
	}
	var p protocol.SystemEventParams
	if perr := decode("system-event", "SystemEventParams", raw, &p); perr != nil {
		return nil, perr
	}
	if len(p.Text) > MaxSystemEventText {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest,
			fmt.Sprintf("invalid system-event params: text is %d bytes, at most %d", len(p.Text), MaxSystemEventText))
	}
	e := protocol.PresenceEntry{TS: now.UnixMilli(), Host: p.Host, IP: p.IP, Version: p.Version, Platform: p.Platform,
		DeviceFamily: p.DeviceFamily, ModelIdentifier: p.ModelIdentifier, Mode: p.Mode, LastInputSeconds: p.LastInputSeconds,
		Reason: p.Reason, Text: p.Text, Tags: p.Tags, InstanceID: p.InstanceID}
	if e.Reason == "" {
		e.Reason = "system-event"
	}
	key := "instance:" + p.InstanceID
	if p.InstanceID == "" {
		sum := sha256.Sum256([]byte(c.presence))
		key = "note:" + hex.EncodeToString(sum[:8])
	}
	s.postNote(key, e, now)
	s.log.Info("system event", "conn", c.id, "reason", e.Reason, "textBytes", len(p.Text))
	s.log.Debug("system event text", "conn", c.id, "text", truncate(p.Text, 200))
	return map[string]any{"ok": true}, nil
}

// postNote puts a note into presence and drops the oldest past
// MaxSystemNotes.
func (s *Server) postNote(key string, e protocol.PresenceEntry, now time.Time) {
	s.hub.upsertNote(key, e)
	for _, k := range s.events.noted(key, now) {
		s.hub.dropNote(k)
	}
}

// expireNotes drops the notes past their TTL (from the hub's loop).
func (s *Server) expireNotes(now time.Time) {
	for _, k := range s.events.expired(now) {
		s.hub.dropNote(k)
	}
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
