package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// KindTelegram is the Telegram channel's kind.
const KindTelegram = "telegram"

// TelegramMaxText is sendMessage's text limit (characters).
const TelegramMaxText = 4096

// telegramMinPoll is the least time between two getUpdates calls that
// returned nothing: a Bot API server that does not hold long polls (an
// emulator) is not hammered.
const telegramMinPoll = 250 * time.Millisecond

// Telegram is a Telegram bot: getUpdates long polling in, sendMessage out,
// over net/http against channels.telegram.NAME.apiBaseUrl.
type Telegram struct {
	*linkBase
	cfg    config.TelegramChannelConfig
	token  string
	base   string
	client *http.Client

	botMu sync.Mutex
	bot   telegramUser
}

type telegramUser struct {
	ID       int64  `json:"id"`
	IsBot    bool   `json:"is_bot"`
	Username string `json:"username"`
	First    string `json:"first_name"`
}

type telegramChat struct {
	ID    json.Number `json:"id"`
	Type  string      `json:"type"` // private, group, supergroup, channel
	Title string      `json:"title"`
}

type telegramEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

type telegramMessage struct {
	MessageID int64            `json:"message_id"`
	From      *telegramUser    `json:"from"`
	Chat      telegramChat     `json:"chat"`
	Text      string           `json:"text"`
	Entities  []telegramEntity `json:"entities"`
	ReplyTo   *telegramMessage `json:"reply_to_message"`
}

type telegramUpdate struct {
	UpdateID int64            `json:"update_id"`
	Message  *telegramMessage `json:"message"`
}

// NewTelegram builds the Telegram channel name (config with defaults). The
// token is resolved now; without it the channel is unlinked and says why.
func NewTelegram(name string, cfg config.TelegramChannelConfig, getenv func(string) string, log *slog.Logger) *Telegram {
	tok, err := config.ResolveSecret("channels.telegram."+name+".token", "", cfg.TokenEnv, cfg.TokenFile, getenv)
	conn := cfg
	conn.ChatConfig = config.ChatConfig{}
	return &Telegram{linkBase: newLinkBase(KindTelegram, name, conn, cfg.ChatConfig, tok, err, log), cfg: cfg, token: tok,
		base: strings.TrimRight(cfg.APIBaseURL, "/"), client: &http.Client{Timeout: time.Duration(cfg.PollTimeoutS)*time.Second + 15*time.Second}}
}

// Name implements Channel.
func (t *Telegram) Name() string { return t.name }

// Kind implements Channel.
func (t *Telegram) Kind() string { return KindTelegram }

// MaxText implements Link.
func (t *Telegram) MaxText() int { return TelegramMaxText }

// Start implements Link.
func (t *Telegram) Start(r Receiver) { t.start(r, func(ctx context.Context) { t.run(ctx, r) }) }

// run is the polling loop: getMe until it answers, then getUpdates, each
// batch accepted durably before the offset moves past it.
func (t *Telegram) run(ctx context.Context, r Receiver) {
	b := newBackoff(t.cfg.Reconnect)
	fail := func(err error) bool { return t.retry(ctx, b, err) }
	for ctx.Err() == nil {
		if !t.state.isConnected() {
			me, err := t.getMe(ctx)
			if err != nil {
				if !fail(err) {
					return
				}
				continue
			}
			t.botMu.Lock()
			t.bot = me
			t.botMu.Unlock()
			t.state.setConnected("@" + me.Username)
			t.log.Info("telegram: connected", "bot", "@"+me.Username)
			b.reset()
		}
		t.botMu.Lock()
		key := t.name + "\x00" + strconv.FormatInt(t.bot.ID, 10)
		t.botMu.Unlock()
		cur, err := r.Cursor(key)
		if err != nil {
			if !fail(fmt.Errorf("reading the stored update offset: %w", err)) {
				return
			}
			continue
		}
		offset, _ := strconv.ParseInt(cur, 10, 64)
		start := time.Now()
		ups, err := t.getUpdates(ctx, offset)
		if err != nil {
			if !fail(err) {
				return
			}
			continue
		}
		if len(ups) == 0 {
			if time.Since(start) < telegramMinPoll && sleepCtx(ctx, telegramMinPoll) != nil {
				return
			}
			continue
		}
		next := offset
		var msgs []Inbound
		for _, u := range ups {
			next = max(next, u.UpdateID+1)
			if in, ok := t.inbound(u); ok {
				msgs = append(msgs, in)
			}
		}
		if err := r.Accept(t.name, key, msgs, strconv.FormatInt(next, 10)); err != nil {
			t.log.Error("telegram: storing received messages failed; they are fetched again", "err", err)
			if sleepCtx(ctx, time.Second) != nil {
				return
			}
		}
	}
}

func (t *Telegram) inbound(u telegramUpdate) (Inbound, bool) {
	m := u.Message
	if m == nil || m.Text == "" || m.From == nil || m.From.IsBot {
		return Inbound{}, false
	}
	t.botMu.Lock()
	bot := t.bot
	t.botMu.Unlock()
	in := Inbound{Channel: t.name, ChatID: m.Chat.ID.String(), MessageID: strconv.FormatInt(u.UpdateID, 10),
		SenderID: strconv.FormatInt(m.From.ID, 10), SenderName: m.From.Username, Text: m.Text, Direct: m.Chat.Type == "private"}
	if in.SenderName == "" {
		in.SenderName = m.From.First
	}
	if !in.Direct {
		at := "@" + strings.ToLower(bot.Username)
		in.Mentioned = bot.Username != "" && strings.Contains(strings.ToLower(m.Text), at) ||
			(m.ReplyTo != nil && m.ReplyTo.From != nil && m.ReplyTo.From.ID == bot.ID)
		if in.Mentioned && bot.Username != "" {
			in.Text = strings.TrimSpace(replaceFold(in.Text, at, ""))
		}
	}
	return in, true
}

// replaceFold removes every case-insensitive occurrence of old (ASCII).
func replaceFold(s, old, repl string) string {
	low := strings.ToLower(s)
	var b strings.Builder
	for {
		i := strings.Index(low, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, low = s[i+len(old):], low[i+len(old):]
	}
}

// telegramError is a Bot API error answer.
type telegramError struct {
	Method      string
	Status      int
	Code        int
	Description string
	RetryAfter  int
}

func (e *telegramError) Error() string {
	return fmt.Sprintf("telegram %s: %s (HTTP %d)", e.Method, e.Description, e.Status)
}

// call POSTs params as JSON to the Bot API method and decodes result.
func (t *Telegram) call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	// The token is part of the URL: errors must not carry the URL.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/bot"+t.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram %s: building the request failed (check channels.telegram.%s.apiBaseUrl)", method, t.name)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %s is unreachable: %w", method, t.base, cause(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: reading the answer: %w", method, cause(err))
	}
	var env struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("telegram %s: HTTP %d with an answer that is not Bot API JSON (is apiBaseUrl %s a Bot API server?)", method, resp.StatusCode, t.base)
	}
	if !env.OK {
		if env.Description == "" {
			env.Description = "request failed"
		}
		return &telegramError{Method: method, Status: resp.StatusCode, Code: env.ErrorCode, Description: env.Description, RetryAfter: env.Parameters.RetryAfter}
	}
	if result != nil {
		if err := json.Unmarshal(env.Result, result); err != nil {
			return fmt.Errorf("telegram %s: unexpected result: %w", method, err)
		}
	}
	return nil
}

func (t *Telegram) getMe(ctx context.Context) (telegramUser, error) {
	var me telegramUser
	err := t.call(ctx, "getMe", struct{}{}, &me)
	var te *telegramError
	if errors.As(err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusNotFound) {
		return me, fmt.Errorf("%w: the bot token was refused (check channels.telegram.%s.tokenEnv/tokenFile)", err, t.name)
	}
	return me, err
}

func (t *Telegram) getUpdates(ctx context.Context, offset int64) ([]telegramUpdate, error) {
	p := map[string]any{"timeout": t.cfg.PollTimeoutS, "allowed_updates": []string{"message"}}
	if offset > 0 {
		p["offset"] = offset
	}
	var ups []telegramUpdate
	err := t.call(ctx, "getUpdates", p, &ups)
	return ups, err
}

// SendText implements Link: one sendMessage. The Bot API has no
// idempotency key; key is unused.
func (t *Telegram) SendText(ctx context.Context, chat, text, _ string) error {
	if ok, why := t.Linked(); !ok {
		return &DeliveryError{Channel: t.name, Retryable: true, Msg: fmt.Sprintf("channel %s cannot deliver: %s", t.name, why)}
	}
	var sent telegramMessage
	err := t.call(ctx, "sendMessage", map[string]any{"chat_id": chat, "text": text}, &sent)
	if err == nil {
		return nil
	}
	var te *telegramError
	if errors.As(err, &te) {
		retry := te.Status >= 500 || te.Status == http.StatusTooManyRequests
		return &DeliveryError{Channel: t.name, Status: te.Status, Retryable: retry, Msg: fmt.Sprintf("channel %s: %v", t.name, err), Err: err}
	}
	t.state.setFailed(err, time.Now())
	return &DeliveryError{Channel: t.name, Retryable: true, Msg: fmt.Sprintf("channel %s: %v", t.name, err), Err: err}
}

// Send implements Channel: m.To is the chat id (or @channelname); long
// text goes out as several messages.
func (t *Telegram) Send(ctx context.Context, m Message) (channelproto.Delivery, error) {
	return sendChunks(ctx, t, KindTelegram, m)
}

// Probe implements Channel: a live getMe.
func (t *Telegram) Probe(ctx context.Context) channelproto.Probe {
	if st := t.state.get().State; st == channelproto.StateDisabled || st == channelproto.StateUnlinked {
		_, why := t.Linked()
		return channelproto.Probe{Error: "not linked: " + why}
	}
	start := time.Now()
	me, err := t.getMe(ctx)
	p := channelproto.Probe{LatencyMs: time.Since(start).Milliseconds()}
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.OK, p.Account = true, "@"+me.Username
	return p
}

// sendChunks is Send for links: the text split at the provider's limit,
// each piece sent in order.
func sendChunks(ctx context.Context, l Link, kind string, m Message) (channelproto.Delivery, error) {
	start := time.Now()
	parts := splitText(m.Text, l.MaxText())
	for i, p := range parts {
		if err := l.SendText(ctx, m.To, p, fmt.Sprintf("send/%s/%d", m.IdempotencyKey, i)); err != nil {
			var de *DeliveryError
			if errors.As(err, &de) {
				de.Attempts = 1
				if i > 0 {
					de.Msg += fmt.Sprintf(" (after %d of %d parts were delivered)", i, len(parts))
				}
			}
			return channelproto.Delivery{}, err
		}
	}
	return channelproto.Delivery{Channel: l.Name(), Kind: kind, To: m.To, IdempotencyKey: m.IdempotencyKey, DeliveryID: m.IdempotencyKey,
		Attempts: 1, DeliveredAt: time.Now().UnixMilli(), DurationMs: time.Since(start).Milliseconds()}, nil
}
