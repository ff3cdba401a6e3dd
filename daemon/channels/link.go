package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// Inbound is one message received from a chat network.
type Inbound struct {
	Channel    string `json:"channel"`
	ChatID     string `json:"chatId"`    // Telegram chat id, Matrix room id
	MessageID  string `json:"messageId"` // unique in the channel: Telegram update id, Matrix event id
	SenderID   string `json:"senderId"`  // Telegram user id, Matrix user id
	SenderName string `json:"senderName,omitempty"`
	Text       string `json:"text"`
	Direct     bool   `json:"direct"`    // a one-to-one chat
	Mentioned  bool   `json:"mentioned"` // the account was mentioned (group rooms)
}

// Receiver takes what a link receives. Accept stores msgs and the link's
// new cursor (Telegram's update offset, Matrix's sync token) under
// cursorKey in one durable transaction; a link advances its cursor at the
// provider only after Accept returned nil, so a crash neither loses nor
// repeats messages. The cursor key names the channel and the account (a
// new bot token or user id starts afresh).
type Receiver interface {
	Accept(channel, cursorKey string, msgs []Inbound, cursor string) error
	Cursor(cursorKey string) (string, error)
	// StateChanged is called after the link's state changed.
	StateChanged(channel string)
}

// Link is a chat-network channel (Telegram, Matrix): a Channel that keeps
// a connection, receives messages and sends text to a chat.
type Link interface {
	Channel
	// Start connects in the background, reconnecting with backoff until
	// Stop, and hands received messages to r.
	Start(r Receiver)
	// Stop disconnects and waits for the background work to end.
	Stop()
	// Status is the link's connection state.
	Status() channelproto.LinkStatus
	// Chat is the channel's routing and access config.
	Chat() config.ChatConfig
	// SetChat takes a reloaded routing and access config; the connection
	// stays (a change of it makes another Fingerprint).
	SetChat(c config.ChatConfig)
	// SendText posts text to chat. key identifies this message across
	// retries (providers that dedupe by transaction id use it).
	SendText(ctx context.Context, chat, text, key string) error
	// MaxText is the provider's message length limit in characters.
	MaxText() int
	// Fingerprint changes when a reload changes how the link connects
	// (server, account, secret, reconnect policy), so Apply reconnects only
	// those links; other changes go through SetChat.
	Fingerprint() string
}

// linkState is the state shared by the chat links.
type linkState struct {
	mu     sync.Mutex
	st     channelproto.LinkStatus
	notify func()
}

func newLinkState(state string) *linkState {
	return &linkState{st: channelproto.LinkStatus{State: state, Since: time.Now().UnixMilli()}}
}

func (l *linkState) get() channelproto.LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *linkState) isConnected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.State == channelproto.StateConnected
}

func (l *linkState) set(fn func(st *channelproto.LinkStatus)) {
	l.mu.Lock()
	before := l.st
	fn(&l.st)
	changed := before.State != l.st.State || before.Error != l.st.Error || before.Account != l.st.Account
	if before.State != l.st.State {
		l.st.Since = time.Now().UnixMilli()
	}
	n := l.notify
	l.mu.Unlock()
	if changed && n != nil {
		n()
	}
}

func (l *linkState) setConnected(account string) {
	l.set(func(st *channelproto.LinkStatus) {
		st.State, st.Account, st.Error, st.ErrorAt, st.NextRetryAt, st.Failures = channelproto.StateConnected, account, "", 0, 0, 0
	})
}

func (l *linkState) setFailed(err error, next time.Time) {
	l.set(func(st *channelproto.LinkStatus) {
		st.State, st.Error, st.ErrorAt, st.NextRetryAt = channelproto.StateDisconnected, err.Error(), time.Now().UnixMilli(), next.UnixMilli()
		st.Failures++
	})
}

// backoff is a reconnect policy: exponential with equal jitter between
// initial and max.
type backoff struct {
	initial, max time.Duration
	cur          time.Duration
}

func newBackoff(r config.ReconnectConfig) *backoff {
	return &backoff{initial: time.Duration(max(r.InitialMs, 1)) * time.Millisecond, max: time.Duration(max(r.MaxMs, r.InitialMs, 1)) * time.Millisecond}
}

// next is the wait before the next attempt; never more than max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.initial
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// splitText cuts text into pieces of at most limit characters, at a
// paragraph, line or word boundary in the second half of a piece where
// there is one.
func splitText(text string, limit int) []string {
	if limit <= 0 || utf8.RuneCountInString(text) <= limit {
		return []string{text}
	}
	var out []string
	for utf8.RuneCountInString(text) > limit {
		// Byte offset of the limit-th rune.
		end := 0
		for i := 0; i < limit; i++ {
			_, n := utf8.DecodeRuneInString(text[end:])
			end += n
		}
		cut := end
		for _, sep := range []string{"\n\n", "\n", " "} {
			if i := strings.LastIndex(text[:end], sep); i > end/2 {
				cut = i + len(sep)
				break
			}
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

// linkBase is what the chat links share: name and kind, the connection
// state, the fingerprint and the background loop's start and stop.
type linkBase struct {
	name, kind string
	fp         string
	state      *linkState
	log        *slog.Logger
	chat       atomic.Pointer[config.ChatConfig]

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// newLinkBase starts a link's state: disabled, unlinked (secretErr) or
// connecting. conn (the connection settings) and secret make the
// fingerprint; chat is the routing and access config.
func newLinkBase(kind, name string, conn any, chat config.ChatConfig, secret string, secretErr error, log *slog.Logger) *linkBase {
	disabled := chat.Disabled
	b, _ := json.Marshal(struct {
		Conn      any
		Reconnect config.ReconnectConfig
		Disabled  bool
	}{conn, chat.Reconnect, disabled})
	h := sha256.New()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(secret))
	l := &linkBase{name: name, kind: kind, fp: hex.EncodeToString(h.Sum(nil)), log: log.With("channel", name, "kind", kind)}
	l.chat.Store(&chat)
	switch {
	case disabled:
		l.state = newLinkState(channelproto.StateDisabled)
	case secretErr != nil:
		l.state = newLinkState(channelproto.StateUnlinked)
		l.state.st.Error = secretErr.Error()
	default:
		l.state = newLinkState(channelproto.StateConnecting)
	}
	return l
}

// Name implements Channel.
func (l *linkBase) Name() string { return l.name }

// Kind implements Channel.
func (l *linkBase) Kind() string { return l.kind }

// Status implements Link.
func (l *linkBase) Status() channelproto.LinkStatus { return l.state.get() }

// Fingerprint implements Link.
func (l *linkBase) Fingerprint() string { return l.fp }

// Chat implements Link.
func (l *linkBase) Chat() config.ChatConfig { return *l.chat.Load() }

// SetChat implements Link.
func (l *linkBase) SetChat(c config.ChatConfig) { l.chat.Store(&c) }

// Linked implements Channel: only a connected link delivers.
func (l *linkBase) Linked() (bool, string) {
	st := l.state.get()
	switch st.State {
	case channelproto.StateConnected:
		return true, ""
	case channelproto.StateDisabled:
		return false, fmt.Sprintf("disabled in config (remove channels.%s.%s.disabled to connect)", l.kind, l.name)
	case channelproto.StateUnlinked:
		return false, st.Error
	case channelproto.StateConnecting:
		return false, "not connected yet: the first connection attempt is under way"
	case channelproto.StateStopped:
		return false, "stopped (the gateway is stopping or the channel was removed)"
	}
	why := "not connected"
	if st.Error != "" {
		why += ": " + st.Error
	}
	if st.NextRetryAt > 0 {
		wait := max(time.Until(time.UnixMilli(st.NextRetryAt)), 0).Round(time.Second)
		why += fmt.Sprintf(" (it reconnects by itself; next attempt in %s)", wait)
	}
	return false, why
}

// start runs loop in the background unless the link is disabled or
// unlinked; state changes are reported to r.
func (l *linkBase) start(r Receiver, loop func(ctx context.Context)) {
	l.state.notify = func() { r.StateChanged(l.name) }
	if st := l.state.get().State; st == channelproto.StateDisabled || st == channelproto.StateUnlinked {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.cancel, l.done = cancel, make(chan struct{})
	l.mu.Unlock()
	go func() {
		defer close(l.done)
		loop(ctx)
	}()
}

// Stop implements Link.
func (l *linkBase) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	l.state.set(func(st *channelproto.LinkStatus) { st.State = channelproto.StateStopped })
}

// retry records a failed attempt and waits out the backoff; false when ctx
// ended.
func (l *linkBase) retry(ctx context.Context, b *backoff, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	wait := b.next()
	l.state.setFailed(err, time.Now().Add(wait))
	l.log.Warn(l.kind+": not connected; retrying", "err", err, "wait", wait.Round(time.Millisecond))
	return sleepCtx(ctx, wait) == nil
}
