package channels

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// State store buckets of the chat channels.
const (
	BucketInbox  = "channels.inbox"  // channel \0 chat \0 seq -> inboxRecord: received, not yet answered
	BucketCursor = "channels.cursor" // channel \0 account -> the provider's cursor (Telegram offset, Matrix sync token)
)

// Inbox record states.
const (
	inboxNew   = "new"   // received; the agent has not answered
	inboxReply = "reply" // the answer is known; Reply[Sent:] are still to send
)

// inboxRecord is a received message until its answer is delivered. It is
// written in the transaction that moves the provider's cursor past it, so
// a message acknowledged to the provider is answered also after a crash.
type inboxRecord struct {
	Inbound
	State      string   `json:"state"`
	ReceivedAt int64    `json:"receivedAt"`
	Reply      []string `json:"reply,omitempty"`
	Sent       int      `json:"sent,omitempty"`
}

// SessionKey is the agent session of a chat: "<channel>:<chat id>".
func SessionKey(channel, chat string) string { return channel + ":" + chat }

func chatKey(channel, chat string) string { return channel + "\x00" + chat + "\x00" }

// Accept implements Receiver.
func (s *Service) Accept(channel, cursorKey string, msgs []Inbound, cursor string) error {
	now := time.Now()
	err := s.store.Update(func(tx *store.Tx) error {
		for _, m := range msgs {
			s.mu.Lock()
			s.seq = max(s.seq+1, now.UnixNano())
			seq := s.seq
			s.mu.Unlock()
			key := chatKey(channel, m.ChatID) + fmt.Sprintf("%020d", seq)
			if err := tx.Put(BucketInbox, key, inboxRecord{Inbound: m, State: inboxNew, ReceivedAt: now.UnixMilli()}); err != nil {
				return err
			}
		}
		return tx.Put(BucketCursor, cursorKey, cursor)
	})
	if err != nil {
		return err
	}
	if len(msgs) > 0 {
		s.log.Debug("messages received", "channel", channel, "count", len(msgs))
		s.wakeInbox()
	}
	return nil
}

// Cursor implements Receiver.
func (s *Service) Cursor(cursorKey string) (string, error) {
	var c string
	_, err := s.store.Get(BucketCursor, cursorKey, &c)
	return c, err
}

// StateChanged implements Receiver: STATUS= follows the links' states.
func (s *Service) StateChanged(string) {
	if h := s.host.Load(); h != nil {
		(*h).RefreshStatus()
	}
	s.wakeInbox()
}

func (s *Service) wakeInbox() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatcher hands each chat with waiting messages to a worker; messages
// of one chat are answered in order, chats in parallel.
func (s *Service) dispatcher() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.dispatch()
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

func (s *Service) dispatch() {
	var chats []string
	err := s.store.View(func(tx *store.Tx) error {
		return tx.List(BucketInbox, "", func(key string, _ []byte) error {
			i := strings.LastIndexByte(key, 0)
			if ck := key[:i+1]; len(chats) == 0 || chats[len(chats)-1] != ck {
				chats = append(chats, ck)
			}
			return nil
		})
	})
	if err != nil {
		s.log.Warn("reading the inbox", "err", err)
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ck := range chats {
		if s.busy[ck] || now.Before(s.retryAt[ck]) {
			continue
		}
		s.busy[ck] = true
		s.wg.Add(1)
		go s.work(ck)
	}
}

// work answers the waiting messages of one chat, oldest first, until none
// is left or one cannot be answered now (then it is retried later).
func (s *Service) work(ck string) {
	defer s.wg.Done()
	retry := time.Duration(0)
	for s.ctx.Err() == nil {
		key, rec, ok := s.oldest(ck)
		if !ok {
			break
		}
		if wait, done := s.handle(key, rec); !done {
			retry = wait
			break
		}
	}
	s.mu.Lock()
	delete(s.busy, ck)
	if retry > 0 {
		s.retryAt[ck] = time.Now().Add(retry)
	} else {
		delete(s.retryAt, ck)
	}
	s.mu.Unlock()
}

func (s *Service) oldest(ck string) (string, *inboxRecord, bool) {
	var key string
	var rec inboxRecord
	err := s.store.View(func(tx *store.Tx) error {
		return tx.List(BucketInbox, ck, func(k string, _ []byte) error {
			if key == "" {
				key = k
				_, err := tx.Get(BucketInbox, k, &rec)
				return err
			}
			return nil
		})
	})
	if err != nil {
		s.log.Warn("reading the inbox", "err", err)
		return "", nil, false
	}
	return key, &rec, key != ""
}

// verdict is what happens to a received message.
type verdict int

const (
	verdictIgnore verdict = iota
	verdictRun
	verdictPair
)

// decide applies the channel's policies to a received message.
func (s *Service) decide(chat config.ChatConfig, in *Inbound) (verdict, string) {
	room, listed := chat.Rooms[in.ChatID]
	if listed && room.Disabled {
		return verdictIgnore, "the room is disabled in config"
	}
	if !in.Direct {
		switch {
		case chat.GroupPolicy == config.GroupPolicyDisabled:
			return verdictIgnore, "groupPolicy is disabled"
		case chat.GroupPolicy == config.GroupPolicyAllowlist && !listed:
			return verdictIgnore, "the room is not listed under rooms (groupPolicy allowlist)"
		case chat.MentionRequired(in.ChatID) && !in.Mentioned:
			return verdictIgnore, "the account was not mentioned (requireMention)"
		}
		return verdictRun, ""
	}
	switch chat.DMPolicy {
	case config.DMPolicyDisabled:
		return verdictIgnore, "dmPolicy is disabled"
	case config.DMPolicyOpen:
		return verdictRun, ""
	}
	if slices.Contains(chat.AllowFrom, in.SenderID) || s.approved(in.Channel, in.SenderID) {
		return verdictRun, ""
	}
	if chat.DMPolicy == config.DMPolicyAllowlist {
		return verdictIgnore, "the sender is not in allowFrom (dmPolicy allowlist)"
	}
	return verdictPair, ""
}

// handle answers one inbox record. done is false when it has to wait
// (the channel is disconnected, the agent is unavailable) for wait.
func (s *Service) handle(key string, rec *inboxRecord) (wait time.Duration, done bool) {
	link, ok := s.link(rec.Channel)
	if !ok {
		s.log.Warn("dropping a received message: its channel is no longer configured", "channel", rec.Channel, "chat", rec.ChatID)
		s.dropInbox(key, rec)
		return 0, true
	}
	if rec.State == inboxNew {
		chat := link.Chat()
		v, why := s.decide(chat, &rec.Inbound)
		switch v {
		case verdictIgnore:
			s.log.Debug("message ignored", "channel", rec.Channel, "chat", rec.ChatID, "sender", rec.SenderID, "why", why)
			s.dropInbox(key, rec)
			return 0, true
		case verdictPair:
			text, err := s.pairingReply(link, &rec.Inbound)
			if err != nil {
				s.log.Warn("pairing request not stored", "channel", rec.Channel, "err", err)
				return 5 * time.Second, false
			}
			if text == "" {
				s.dropInbox(key, rec)
				return 0, true
			}
			rec.Reply = []string{text}
		case verdictRun:
			answer, err := s.runAgent(chat, &rec.Inbound, key)
			if err != nil {
				s.log.Warn("agent run for a received message failed; retrying", "channel", rec.Channel, "chat", rec.ChatID, "err", err)
				return 5 * time.Second, false
			}
			if answer == "" {
				s.log.Info("the agent's answer is empty; nothing sent", "channel", rec.Channel, "chat", rec.ChatID)
				s.dropInbox(key, rec)
				return 0, true
			}
			rec.Reply = splitText(answer, link.MaxText())
		}
		rec.State = inboxReply
		// Answered by this process: no earlier one can have sent it.
		for i := range rec.Reply {
			s.triedHere(fmt.Sprintf("reply/%s/%d", key, i))
		}
		if err := s.store.Put(BucketInbox, key, rec); err != nil {
			s.log.Warn("saving an answer before sending it", "err", err)
		}
	}
	for rec.Sent < len(rec.Reply) {
		if ok, _ := link.Linked(); !ok {
			return time.Second, false
		}
		pieceKey := fmt.Sprintf("reply/%s/%d", key, rec.Sent)
		if sc, ok := link.(sentChecker); ok && !s.triedHere(pieceKey) {
			// An answer stored before this process started may have gone
			// out just before a crash: look before sending it again.
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			sent, err := sc.WasSent(ctx, rec.ChatID, pieceKey)
			cancel()
			if err != nil {
				s.log.Info("cannot tell whether an answer went out before a restart; retrying", "channel", rec.Channel, "chat", rec.ChatID, "err", err)
				return 2 * time.Second, false
			}
			if sent {
				s.log.Info("an answer had gone out before the restart; not sending it again", "channel", rec.Channel, "chat", rec.ChatID)
				rec.Sent++
				continue
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		err := link.SendText(ctx, rec.ChatID, rec.Reply[rec.Sent], pieceKey)
		cancel()
		if err != nil {
			if de, ok := err.(*DeliveryError); ok && !de.Retryable {
				s.log.Warn("answer refused by the provider; dropped", "channel", rec.Channel, "chat", rec.ChatID, "err", err)
				s.record(rec.Channel, func(st *channelState) {
					st.LastError = &channelproto.LastError{TS: time.Now().UnixMilli(), To: rec.ChatID, Message: err.Error()}
				})
				s.dropInbox(key, rec)
				return 0, true
			}
			s.log.Info("answer not sent yet; retrying", "channel", rec.Channel, "chat", rec.ChatID, "err", err)
			return 2 * time.Second, false
		}
		rec.Sent++
		if rec.Sent < len(rec.Reply) {
			if err := s.store.Put(BucketInbox, key, rec); err != nil {
				s.log.Warn("saving answer progress", "err", err)
			}
		}
	}
	s.dropInbox(key, rec)
	now := time.Now().UnixMilli()
	s.record(rec.Channel, func(st *channelState) {
		st.LastInbound = &channelproto.LastInbound{TS: now, Chat: rec.ChatID, Sender: rec.SenderID, LatencyMs: now - rec.ReceivedAt}
	})
	return 0, true
}

// sentChecker is a link that can tell whether a message it sent with key
// reached the chat (Matrix); others are at-least-once across a crash.
type sentChecker interface {
	WasSent(ctx context.Context, chat, key string) (bool, error)
}

// triedHere records that this process sends the piece key, and reports
// whether it did before.
func (s *Service) triedHere(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tried[key] {
		return true
	}
	s.tried[key] = true
	return false
}

// dropInbox ends rec: it leaves the inbox, and this process forgets that
// it sent (or tried) its pieces.
func (s *Service) dropInbox(key string, rec *inboxRecord) {
	if err := s.store.Delete(BucketInbox, key); err != nil {
		s.log.Warn("removing an answered message from the inbox", "err", err)
	}
	// Whatever ended the record (answered, refused for good, its channel
	// gone), this process will not send its pieces again: forget them, or
	// tried grows with every refused answer for the life of the daemon.
	s.mu.Lock()
	for i := range rec.Reply {
		delete(s.tried, fmt.Sprintf("reply/%s/%d", key, i))
	}
	s.mu.Unlock()
}

// runAgent runs the chat's agent on the message in the chat's session and
// returns its final text.
func (s *Service) runAgent(chat config.ChatConfig, in *Inbound, key string) (string, error) {
	agents := s.agents()
	if agents == nil {
		return "", fmt.Errorf("no agent feature")
	}
	agentID := chat.AgentID
	if r, ok := chat.Rooms[in.ChatID]; ok && r.AgentID != "" {
		agentID = r.AgentID
	}
	runID, err := agents.StartAgent(s.ctx, in.Text, agentID, SessionKey(in.Channel, in.ChatID), "channel:"+strings.ReplaceAll(key, "\x00", ":"))
	if err != nil {
		return "", err
	}
	status, summary, err := agents.WaitAgent(s.ctx, runID)
	if err != nil {
		return "", err
	}
	if status != "ok" {
		s.log.Warn("agent run for a received message did not end ok", "channel", in.Channel, "chat", in.ChatID, "run", runID, "status", status)
		if summary == "" {
			return fmt.Sprintf("Sorry, the agent could not answer (run %s ended with %s).", runID, status), nil
		}
	}
	return summary, nil
}

// inboxCount is the number of messages of channel waiting for an answer.
func (s *Service) inboxCount(channel string) int {
	n := 0
	_ = s.store.View(func(tx *store.Tx) error {
		n = tx.Count(BucketInbox, channel+"\x00")
		return nil
	})
	return n
}
