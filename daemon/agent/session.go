package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gatewayd/gatewayd/daemon/store"
)

// Store buckets of the agent feature.
const (
	bucketMessages = "agent.sessions"    // "<sessionKey>\x00<index>" -> Message
	bucketMeta     = "agent.sessionmeta" // sessionKey -> sessionMeta
	bucketInflight = "agent.inflight"    // message key -> runId, for answers still streaming
)

// Message statuses in a transcript.
const (
	StatusStreaming   = "streaming"   // the run is still producing this answer
	StatusInterrupted = "interrupted" // the gateway stopped (or was killed) before the run ended
)

// Message is one transcript entry.
type Message struct {
	Role      string `json:"role"` // "user" or "assistant"
	Text      string `json:"text"`
	TS        int64  `json:"ts"` // unix ms when the message was started
	RunID     string `json:"runId"`
	AgentID   string `json:"agentId,omitempty"`
	Status    string `json:"status,omitempty"` // assistant only: streaming, ok, error, timeout, interrupted
	Error     string `json:"error,omitempty"`  // assistant only: why the run failed
	Truncated bool   `json:"truncated,omitempty"`
}

type sessionMeta struct {
	Messages int   `json:"messages"`
	Bytes    int   `json:"bytes"`
	Next     int   `json:"next"`
	Updated  int64 `json:"updatedAt"`
}

// SessionFullError says a transcript reached a size limit.
type SessionFullError struct {
	SessionKey string
	What       string // "messages" or "bytes"
	Have, Max  int
}

func (e *SessionFullError) Error() string {
	key := "agents.maxSessionMessages"
	if e.What == "bytes" {
		key = "agents.maxSessionBytes"
	}
	return fmt.Sprintf("session %q is full (%d %s, limit %d): use a new session key or raise %s", e.SessionKey, e.Have, e.What, e.Max, key)
}

// sessions is the transcript store. A per-session lock serializes the
// read-modify-write of a session's counters; every message write is its
// own transaction (bbolt commits are atomic and survive kill -9).
type sessions struct {
	st    *store.Store
	mu    sync.Mutex
	locks map[string]*sessionLock
}

type sessionLock struct {
	mu   sync.Mutex
	refs int
}

func newSessions(st *store.Store) *sessions {
	return &sessions{st: st, locks: map[string]*sessionLock{}}
}

func (s *sessions) lock(key string) func() {
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &sessionLock{}
		s.locks[key] = l
	}
	l.refs++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

func messageKey(session string, index int) string {
	return session + "\x00" + fmt.Sprintf("%010d", index)
}

// checkSessionKey rejects keys the store layout cannot hold.
func checkSessionKey(k string) error {
	if len(k) > 256 {
		return errors.New("is longer than 256 bytes")
	}
	if strings.IndexFunc(k, unicode.IsControl) >= 0 {
		return errors.New("contains control characters")
	}
	return nil
}

type limits struct {
	messages, bytes int
}

// appendUser adds the user message of a run, refusing when the session
// cannot take it and the answer (two more messages).
func (s *sessions) appendUser(session string, m Message, lim limits) error {
	unlock := s.lock(session)
	defer unlock()
	// Batch: runs starting together share one commit and one fsync.
	return s.st.Batch(func(tx *store.Tx) error {
		var meta sessionMeta
		if _, err := tx.Get(bucketMeta, session, &meta); err != nil {
			return err
		}
		if meta.Messages+2 > lim.messages {
			return &SessionFullError{SessionKey: session, What: "messages", Have: meta.Messages, Max: lim.messages}
		}
		if meta.Bytes+len(m.Text) > lim.bytes {
			return &SessionFullError{SessionKey: session, What: "bytes", Have: meta.Bytes, Max: lim.bytes}
		}
		if err := tx.Put(bucketMessages, messageKey(session, meta.Next), m); err != nil {
			return err
		}
		meta.Next++
		meta.Messages++
		meta.Bytes += len(m.Text)
		meta.Updated = m.TS
		return tx.Put(bucketMeta, session, meta)
	})
}

// answer is a run's assistant message in the transcript, written first
// at the first flush and rewritten in place at later flushes and at the end.
type answer struct {
	s       *sessions
	session string
	index   int // -1 until created
	written int // bytes of text stored
}

// write stores m (creating the entry on first use). done clears the
// in-flight mark. The text is cut to what the session's byte limit leaves.
// Concurrent runs' writes share commits (Store.Batch), so the closure
// changes nothing outside the transaction; a takes the result after.
func (a *answer) write(m Message, done bool, lim limits) error {
	unlock := a.s.lock(a.session)
	defer unlock()
	var index, written int
	err := a.s.st.Batch(func(tx *store.Tx) error {
		var meta sessionMeta
		if _, err := tx.Get(bucketMeta, a.session, &meta); err != nil {
			return err
		}
		m := m
		room := lim.bytes - (meta.Bytes - a.written)
		if room < 0 {
			room = 0
		}
		if len(m.Text) > room {
			m.Text = cutUTF8(m.Text, room)
			m.Truncated = true
		}
		index = a.index
		created := index < 0
		if created {
			index = meta.Next
			meta.Next++
			meta.Messages++
		}
		key := messageKey(a.session, index)
		if err := tx.Put(bucketMessages, key, m); err != nil {
			return err
		}
		meta.Bytes += len(m.Text) - a.written
		meta.Updated = time.Now().UnixMilli()
		if err := tx.Put(bucketMeta, a.session, meta); err != nil {
			return err
		}
		if done {
			if err := tx.Delete(bucketInflight, key); err != nil {
				return err
			}
		} else if created {
			if err := tx.Put(bucketInflight, key, m.RunID); err != nil {
				return err
			}
		}
		written = len(m.Text)
		return nil
	})
	if err != nil {
		return err
	}
	a.index, a.written = index, written
	return nil
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// recover marks answers that were streaming when the gateway stopped as
// interrupted, keeping the text flushed so far. It returns how many.
func (s *sessions) recover() (int, error) {
	n := 0
	err := s.st.Update(func(tx *store.Tx) error {
		var keys []string
		if err := tx.List(bucketInflight, "", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			var m Message
			found, err := tx.Get(bucketMessages, k, &m)
			if err != nil {
				return err
			}
			if found && m.Status == StatusStreaming {
				m.Status = StatusInterrupted
				m.Error = "the gateway stopped before the run ended"
				if err := tx.Put(bucketMessages, k, m); err != nil {
					return err
				}
				n++
			}
			if err := tx.Delete(bucketInflight, k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// history returns the last limit messages of session (all when limit <=
// 0) and the session's total message count.
func (s *sessions) history(session string, limit int) ([]Message, int, error) {
	var out []Message
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		var meta sessionMeta
		if _, err := tx.Get(bucketMeta, session, &meta); err != nil {
			return err
		}
		total = meta.Messages
		skip := 0
		if limit > 0 && total > limit {
			skip = total - limit
		}
		i := 0
		return tx.List(bucketMessages, session+"\x00", func(k string, raw []byte) error {
			if _, err := strconv.Atoi(k[len(session)+1:]); err != nil {
				return nil // not ours
			}
			i++
			if i <= skip {
				return nil
			}
			var m Message
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("state store: decode transcript %s: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	if out == nil {
		out = []Message{}
	}
	return out, total, err
}
