package gateway

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Credential kinds: each has its own failure counters, so a success with
// one (the hooks token) does not reset the count of another (the gateway
// token), and a lockout of one does not refuse the others.
const (
	kindGateway = "gateway" // the shared token/password: connect and HTTP Bearer
	kindDevice  = "device"  // a device signature that does not verify
)

// kindSecret is the kind for AuthorizeHTTPSecret: a short digest of the
// secret, so every secret (the hooks token, ...) counts on its own.
func kindSecret(secret string) string {
	sum := sha256.Sum256([]byte("gatewayd-rate-limit-kind\x00" + secret))
	return "secret:" + hex.EncodeToString(sum[:6])
}

// rlMaxEntries bounds the limiter's table; past it the least recently
// used entry is dropped (O(1), no scan).
const rlMaxEntries = 10000

// rateLimiter counts failed authentications per (credential kind, client
// address). IPv6 clients are keyed by their /64 (one host usually owns a
// whole /64). The table is an LRU of at most max entries.
type rateLimiter struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *rlEntry
	lru     list.List                // front: most recently used
}

type rlEntry struct {
	key         string
	windowStart time.Time
	failures    int
	lockedUntil time.Time
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{max: rlMaxEntries, entries: map[string]*list.Element{}}
}

// hostOf is the host part of a host:port address.
func hostOf(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return h
}

// clientKey is the address a client is counted under: the IP, or for IPv6
// its /64 prefix.
func clientKey(remote string) string {
	h := hostOf(remote)
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return h
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// isLoopback reports whether remote (host:port) is a loopback address.
func isLoopback(remote string) bool {
	ip, err := netip.ParseAddr(hostOf(remote))
	return err == nil && ip.Unmap().IsLoopback()
}

func rlKey(kind, remote string) string { return kind + "|" + clientKey(remote) }

// get returns the entry for key (nil if none), marking it used. Under mu.
func (r *rateLimiter) get(key string) *rlEntry {
	el := r.entries[key]
	if el == nil {
		return nil
	}
	r.lru.MoveToFront(el)
	return el.Value.(*rlEntry)
}

// locked reports whether kind is locked out for remote and for how long.
func (r *rateLimiter) locked(kind, remote string, now time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.get(rlKey(kind, remote))
	if e == nil || !now.Before(e.lockedUntil) {
		return 0, false
	}
	return e.lockedUntil.Sub(now), true
}

// fail records a failure of kind from remote and reports whether kind is
// locked out for it now (by this failure or an earlier one).
func (r *rateLimiter) fail(kind, remote string, now time.Time, a *AuthSettings) (time.Duration, bool) {
	key := rlKey(kind, remote)
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.get(key)
	if e == nil {
		if r.lru.Len() >= r.max {
			old := r.lru.Back()
			r.lru.Remove(old)
			delete(r.entries, old.Value.(*rlEntry).key)
		}
		e = &rlEntry{key: key, windowStart: now}
		r.entries[key] = r.lru.PushFront(e)
	}
	if now.Before(e.lockedUntil) {
		return e.lockedUntil.Sub(now), true
	}
	if now.Sub(e.windowStart) > a.Window {
		e.windowStart, e.failures = now, 0
	}
	e.failures++
	if e.failures >= a.MaxAttempts {
		e.lockedUntil = now.Add(a.Lockout)
		e.failures = 0
		e.windowStart = now
		return a.Lockout, true
	}
	return 0, false
}

// success forgets the failures of kind from remote, unless it is locked
// out: a lockout runs its course whoever succeeds meanwhile (on loopback
// every local user shares the address).
func (r *rateLimiter) success(kind, remote string, now time.Time) {
	key := rlKey(kind, remote)
	r.mu.Lock()
	defer r.mu.Unlock()
	el := r.entries[key]
	if el == nil || now.Before(el.Value.(*rlEntry).lockedUntil) {
		return
	}
	r.lru.Remove(el)
	delete(r.entries, key)
}

// len is the number of entries (for tests).
func (r *rateLimiter) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}

// authenticate runs one authentication of kind from remote under the
// limiter. A client that is locked out is refused without check being
// called, except on loopback: there every local user shares the address,
// so anyone could lock the operator out; a loopback client presenting the
// right secret is let in during a lockout (wrong ones are still refused
// and counted). It returns whether check passed, and when it did not,
// whether the refusal is a lockout and for how long.
func (s *Server) authenticate(kind, remote string, a *AuthSettings, check func() bool) (ok bool, retry time.Duration, limited bool) {
	now := time.Now()
	retry, locked := s.limiter.locked(kind, remote, now)
	if locked && !isLoopback(remote) {
		return false, retry, true
	}
	if check() {
		s.limiter.success(kind, remote, now)
		return true, 0, false
	}
	retry, limited = s.limiter.fail(kind, remote, now, a)
	return false, retry, limited
}
