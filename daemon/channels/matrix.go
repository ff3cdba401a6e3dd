package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// KindMatrix is the Matrix channel's kind.
const KindMatrix = "matrix"

// MatrixMaxText is where long answers are split: well inside the 64 KiB
// event limit, with room for the JSON around the body.
const MatrixMaxText = 16000

// matrixSyncTimeout is /sync's long-poll timeout.
const matrixSyncTimeout = 30 * time.Second

// matrixSyncFilter raises the per-room timeline of a sync (servers default
// to 10 or 20 events); a room with more since the last sync comes back
// "limited" and the gap is fetched with /messages.
const matrixSyncFilter = `{"room":{"timeline":{"limit":100}},"presence":{"not_types":["*"]}}`

// matrixMaxBackfillPages bounds the /messages pages fetched to fill a
// limited timeline.
const matrixMaxBackfillPages = 20

// Matrix is a Matrix account: a /sync loop in (invites joined per
// autoJoin), m.room.message out, with maunium.net/go/mautrix.
type Matrix struct {
	*linkBase
	cfg       config.MatrixChannelConfig
	secret    string // access token or password
	password  bool
	tokenPath string // where a token from a password login is kept

	cmu     sync.Mutex
	client  *mautrix.Client
	members map[id.RoomID]int // joined member counts, for telling DMs from group rooms
}

// matrixSession is a token from a password login, kept in the state
// directory (mode 0600).
type matrixSession struct {
	UserID      string `json:"userId"`
	Homeserver  string `json:"homeserver"`
	AccessToken string `json:"accessToken"`
	DeviceID    string `json:"deviceId"`
}

// NewMatrix builds the Matrix channel name. stateDir holds the token of a
// password login.
func NewMatrix(name string, cfg config.MatrixChannelConfig, getenv func(string) string, stateDir string, log *slog.Logger) *Matrix {
	m := &Matrix{cfg: cfg, members: map[id.RoomID]int{}}
	key := "channels.matrix." + name
	var err error
	if cfg.PasswordEnv != "" || cfg.PasswordFile != "" {
		m.password = true
		m.secret, err = config.ResolveSecret(key+".password", "", cfg.PasswordEnv, cfg.PasswordFile, getenv)
		if stateDir != "" {
			m.tokenPath = filepath.Join(stateDir, "channels", name+".matrix-session.json")
		}
	} else {
		m.secret, err = config.ResolveSecret(key+".accessToken", "", cfg.AccessTokenEnv, cfg.AccessTokenFile, getenv)
	}
	conn := cfg
	conn.ChatConfig = config.ChatConfig{}
	m.linkBase = newLinkBase(KindMatrix, name, conn, cfg.ChatConfig, m.secret, err, log)
	return m
}

// Name implements Channel.
func (m *Matrix) Name() string { return m.name }

// Kind implements Channel.
func (m *Matrix) Kind() string { return KindMatrix }

// MaxText implements Link.
func (m *Matrix) MaxText() int { return MatrixMaxText }

// Start implements Link.
func (m *Matrix) Start(r Receiver) { m.start(r, func(ctx context.Context) { m.run(ctx, r) }) }

// connect returns a client with a working access token: the configured
// one, the one kept from an earlier password login, or a new login.
func (m *Matrix) connect(ctx context.Context) (*mautrix.Client, error) {
	token := m.secret
	var sess matrixSession
	if m.password {
		token = ""
		if raw, err := os.ReadFile(m.tokenPath); err == nil && json.Unmarshal(raw, &sess) == nil &&
			sess.UserID == m.cfg.UserID && sess.Homeserver == m.cfg.Homeserver {
			token = sess.AccessToken
		}
	}
	cli, err := mautrix.NewClient(m.cfg.Homeserver, id.UserID(m.cfg.UserID), token)
	if err != nil {
		return nil, fmt.Errorf("channels.matrix.%s.homeserver: %w", m.name, err)
	}
	cli.Client = &http.Client{Timeout: matrixSyncTimeout + 30*time.Second}
	cli.DefaultHTTPRetries = 0
	if m.password && token == "" {
		resp, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: m.cfg.UserID},
			Password:   m.secret, InitialDeviceDisplayName: "gatewayd", StoreCredentials: true})
		if err != nil {
			return nil, fmt.Errorf("logging in as %s: %s", m.cfg.UserID, matrixErr(err))
		}
		sess = matrixSession{UserID: m.cfg.UserID, Homeserver: m.cfg.Homeserver, AccessToken: resp.AccessToken, DeviceID: string(resp.DeviceID)}
		if err := writeSecretFile(m.tokenPath, sess); err != nil {
			m.log.Warn("matrix: the login's access token was not saved; the next start logs in again", "err", err)
		}
	}
	who, err := cli.Whoami(ctx)
	if err != nil {
		if m.password && errors.Is(err, mautrix.MUnknownToken) {
			_ = os.Remove(m.tokenPath) // log in again next time
		}
		return nil, fmt.Errorf("whoami: %s", matrixErr(err))
	}
	if string(who.UserID) != m.cfg.UserID {
		return nil, fmt.Errorf("the access token is for %s, not channels.matrix.%s.userId %s (fix the token or the userId)", who.UserID, m.name, m.cfg.UserID)
	}
	cli.DeviceID = who.DeviceID
	return cli, nil
}

// writeSecretFile writes v as JSON to path, mode 0600, atomically.
func writeSecretFile(path string, v any) error {
	if path == "" {
		return errors.New("no state directory")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// matrixErr renders a mautrix error without the request URL's noise.
func matrixErr(err error) string {
	var he mautrix.HTTPError
	if errors.As(err, &he) {
		if he.RespError != nil {
			return fmt.Sprintf("%s: %s (HTTP %d)", he.RespError.ErrCode, he.RespError.Err, he.Response.StatusCode)
		}
		if he.WrappedError != nil {
			return cause(he.WrappedError).Error()
		}
	}
	return cause(err).Error()
}

// run is the sync loop: connect, then /sync with the stored token; each
// response's messages and its next_batch are accepted in one transaction.
func (m *Matrix) run(ctx context.Context, r Receiver) {
	b := newBackoff(m.cfg.Reconnect)
	fail := func(err error) bool { return m.retry(ctx, b, err) }
	var cli *mautrix.Client
	for ctx.Err() == nil {
		if cli == nil || !m.state.isConnected() {
			c, err := m.connect(ctx)
			if err != nil {
				if !fail(err) {
					return
				}
				continue
			}
			cli = c
			m.cmu.Lock()
			m.client = c
			m.members = map[id.RoomID]int{}
			m.cmu.Unlock()
			m.state.setConnected(m.cfg.UserID)
			m.log.Info("matrix: connected", "user", m.cfg.UserID, "device", cli.DeviceID)
			b.reset()
		}
		key := m.name + "\x00" + m.cfg.UserID
		since, err := r.Cursor(key)
		if err != nil {
			if !fail(fmt.Errorf("reading the stored sync token: %w", err)) {
				return
			}
			continue
		}
		timeout := int(matrixSyncTimeout / time.Millisecond)
		if since == "" {
			timeout = 0
		}
		resp, err := cli.SyncRequest(ctx, timeout, since, matrixSyncFilter, false, event.PresenceOffline)
		if err != nil {
			if !fail(fmt.Errorf("sync: %s", matrixErr(err))) {
				return
			}
			continue
		}
		msgs := m.handleSync(ctx, cli, resp, since)
		if err := r.Accept(m.name, key, msgs, resp.NextBatch); err != nil {
			m.log.Error("matrix: storing received messages failed; they are synced again", "err", err)
			if sleepCtx(ctx, time.Second) != nil {
				return
			}
		}
	}
}

// handleSync joins invited rooms (per autoJoin) and collects the text
// messages of others. The first sync of an account (no stored token) only
// takes the token: history from before the gateway is not answered.
func (m *Matrix) handleSync(ctx context.Context, cli *mautrix.Client, resp *mautrix.RespSync, since string) []Inbound {
	initial := since == ""
	for roomID, inv := range resp.Rooms.Invite {
		inviter := ""
		for _, ev := range inv.State.Events {
			if ev.Type == event.StateMember && ev.StateKey != nil && *ev.StateKey == m.cfg.UserID {
				inviter = string(ev.Sender)
			}
		}
		if !m.joinAllowed(roomID, inviter) {
			m.log.Info("matrix: invite not accepted (autoJoin)", "room", roomID, "inviter", inviter, "autoJoin", m.cfg.AutoJoin)
			continue
		}
		if _, err := cli.JoinRoomByID(ctx, roomID); err != nil {
			m.log.Warn("matrix: joining an invited room failed", "room", roomID, "inviter", inviter, "err", matrixErr(err))
			continue
		}
		m.log.Info("matrix: joined room by invite", "room", roomID, "inviter", inviter)
	}
	if initial {
		return nil
	}
	var out []Inbound
	for _, roomID := range slices.Sorted(func(yield func(id.RoomID) bool) {
		for k := range resp.Rooms.Join {
			if !yield(k) {
				return
			}
		}
	}) {
		room := resp.Rooms.Join[roomID]
		for _, ev := range append(slices.Clone(room.State.Events), room.Timeline.Events...) {
			if ev.Type == event.StateMember {
				m.cmu.Lock()
				delete(m.members, roomID)
				m.cmu.Unlock()
			}
		}
		timeline := room.Timeline.Events
		if room.Timeline.Limited && room.Timeline.PrevBatch != "" {
			timeline = append(m.backfill(ctx, cli, roomID, room.Timeline.PrevBatch, since), timeline...)
		}
		for _, ev := range timeline {
			if ev.Type != event.EventMessage || string(ev.Sender) == m.cfg.UserID {
				continue
			}
			if err := ev.Content.ParseRaw(ev.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
				continue
			}
			msg := ev.Content.AsMessage()
			if msg == nil || (msg.MsgType != event.MsgText && msg.MsgType != event.MsgEmote) || msg.Body == "" ||
				msg.RelatesTo != nil && msg.RelatesTo.Type == event.RelReplace {
				continue
			}
			in := Inbound{Channel: m.name, ChatID: string(roomID), MessageID: string(ev.ID), SenderID: string(ev.Sender),
				Text: msg.Body, Direct: m.isDirect(ctx, cli, roomID)}
			if !in.Direct {
				in.Mentioned = m.mentioned(msg)
			}
			out = append(out, in)
		}
	}
	return out
}

// backfill fetches the events of a limited timeline between the last
// sync (since) and the timeline's start (from), oldest first.
func (m *Matrix) backfill(ctx context.Context, cli *mautrix.Client, roomID id.RoomID, from, since string) []*event.Event {
	var older []*event.Event
	for page := 0; page < matrixMaxBackfillPages && from != ""; page++ {
		resp, err := cli.Messages(ctx, roomID, from, since, mautrix.DirectionBackward, nil, 100)
		if err != nil {
			m.log.Warn("matrix: fetching the messages a limited sync left out failed; some may go unanswered", "room", roomID, "err", matrixErr(err))
			break
		}
		older = append(older, resp.Chunk...)
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	slices.Reverse(older)
	m.log.Info("matrix: filled a limited sync's gap", "room", roomID, "events", len(older))
	return older
}

func (m *Matrix) joinAllowed(roomID id.RoomID, inviter string) bool {
	switch m.cfg.AutoJoin {
	case config.MatrixAutoJoinOff:
		return false
	case config.MatrixAutoJoinAllowlist:
		chat := m.Chat()
		if r, ok := chat.Rooms[string(roomID)]; ok && !r.Disabled {
			return true
		}
		return slices.Contains(chat.AllowFrom, inviter)
	}
	return true
}

// isDirect reports whether the room has two members (the account and one
// other), asking the homeserver once per membership change.
func (m *Matrix) isDirect(ctx context.Context, cli *mautrix.Client, roomID id.RoomID) bool {
	m.cmu.Lock()
	n, ok := m.members[roomID]
	m.cmu.Unlock()
	if !ok {
		resp, err := cli.JoinedMembers(ctx, roomID)
		if err != nil {
			m.log.Warn("matrix: listing room members failed; treating the room as a group room", "room", roomID, "err", matrixErr(err))
			return false
		}
		n = len(resp.Joined)
		m.cmu.Lock()
		m.members[roomID] = n
		m.cmu.Unlock()
	}
	return n <= 2
}

// mentioned reports whether msg mentions the account: m.mentions, a
// matrix.to link, the user id or "localpart:" at the start.
func (m *Matrix) mentioned(msg *event.MessageEventContent) bool {
	me := id.UserID(m.cfg.UserID)
	if msg.Mentions != nil && slices.Contains(msg.Mentions.UserIDs, me) {
		return true
	}
	if strings.Contains(msg.FormattedBody, "matrix.to/#/"+m.cfg.UserID) || strings.Contains(msg.Body, m.cfg.UserID) {
		return true
	}
	local := strings.ToLower(strings.TrimPrefix(strings.SplitN(m.cfg.UserID, ":", 2)[0], "@"))
	body := strings.ToLower(strings.TrimSpace(msg.Body))
	if strings.HasPrefix(body, local+":") || strings.HasPrefix(body, local+",") {
		return true
	}
	rest, ok := strings.CutPrefix(body, "@"+local)
	return ok && (rest == "" || !isWordByte(rest[0]))
}

func isWordByte(b byte) bool {
	return b == '_' || b == '-' || b == '.' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func (m *Matrix) currentClient() *mautrix.Client {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	return m.client
}

// SendText implements Link: an m.room.message (m.text) with a
// transaction id derived from key, so a retry after a crash is
// deduplicated by the homeserver.
func (m *Matrix) SendText(ctx context.Context, chat, text, key string) error {
	if ok, why := m.Linked(); !ok {
		return &DeliveryError{Channel: m.name, Retryable: true, Msg: fmt.Sprintf("channel %s cannot deliver: %s", m.name, why)}
	}
	cli := m.currentClient()
	txn := matrixTxnID(key)
	content := map[string]any{"msgtype": event.MsgText, "body": text, matrixKeyField: txn}
	_, err := cli.SendMessageEvent(ctx, id.RoomID(chat), event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: txn})
	if err == nil {
		return nil
	}
	var he mautrix.HTTPError
	status := 0
	if errors.As(err, &he) && he.Response != nil {
		status = he.Response.StatusCode
	}
	retry := status == 0 || status >= 500 || status == http.StatusTooManyRequests
	if status == 0 {
		m.state.setFailed(fmt.Errorf("send: %s", matrixErr(err)), time.Now())
	}
	return &DeliveryError{Channel: m.name, Status: status, Retryable: retry, Msg: fmt.Sprintf("channel %s: sending to %s: %s", m.name, chat, matrixErr(err)), Err: err}
}

// matrixKeyField marks the gateway's messages with their transaction id,
// so WasSent can find one that went out just before a crash.
const matrixKeyField = "org.gatewayd.txn"

func matrixTxnID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "gw" + hex.EncodeToString(sum[:12])
}

// WasSent implements sentChecker: whether a message with key's transaction
// id is among the account's recent messages in chat. The homeserver's own
// transaction-id deduplication does not cover a request cut off by a
// crash, nor a restart of the homeserver.
func (m *Matrix) WasSent(ctx context.Context, chat, key string) (bool, error) {
	cli := m.currentClient()
	if cli == nil {
		return false, errors.New("not connected")
	}
	txn := matrixTxnID(key)
	resp, err := cli.Messages(ctx, id.RoomID(chat), "", "", mautrix.DirectionBackward, nil, 200)
	if err != nil {
		return false, errors.New(matrixErr(err))
	}
	for _, ev := range resp.Chunk {
		if string(ev.Sender) == m.cfg.UserID && ev.Type == event.EventMessage {
			if v, _ := ev.Content.Raw[matrixKeyField].(string); v == txn {
				return true, nil
			}
		}
	}
	return false, nil
}

// Send implements Channel: m.To is a room id (!room:server).
func (m *Matrix) Send(ctx context.Context, msg Message) (channelproto.Delivery, error) {
	if !strings.HasPrefix(msg.To, "!") {
		return channelproto.Delivery{}, &DeliveryError{Channel: m.name, Msg: fmt.Sprintf("channel %s: %q is not a Matrix room id (like !abc:example.org)", m.name, msg.To)}
	}
	return sendChunks(ctx, m, KindMatrix, msg)
}

// Probe implements Channel: a live whoami.
func (m *Matrix) Probe(ctx context.Context) channelproto.Probe {
	cli := m.currentClient()
	if cli == nil {
		_, why := m.Linked()
		return channelproto.Probe{Error: "not linked: " + why}
	}
	start := time.Now()
	who, err := cli.Whoami(ctx)
	p := channelproto.Probe{LatencyMs: time.Since(start).Milliseconds()}
	if err != nil {
		p.Error = "whoami: " + matrixErr(err)
		return p
	}
	p.OK, p.Account = true, string(who.UserID)
	return p
}
