package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Defaults applied by Dial to zero Options fields.
const (
	DefaultClientID         = "cli"
	DefaultMode             = "cli"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultEventBuffer      = 256
)

// writeTimeout bounds one frame write; a peer that does not take a frame
// for this long is dead, and the library then closes the connection.
const writeTimeout = 30 * time.Second

// EventGap is the Name of the synthetic event Dial's connection delivers
// when events were lost: the buffer was full, or the server's seq skipped.
// A caller that sees it refreshes health and system-presence.
const EventGap = "gap"

// Options configure Dial. Only URL is required.
type Options struct {
	URL          string // ws://host:port (http:// and https:// are accepted and converted); empty path means "/"
	Token        string // shared token (auth.token)
	Password     string // shared password (auth.password)
	ClientID     string // client.id, default "cli"
	Mode         string // client.mode, default "cli"
	Version      string // client.version, default this build's version
	Platform     string // client.platform, default runtime.GOOS
	DeviceFamily string // client.deviceFamily, optional
	InstanceID   string // client.instanceId, default a random UUID per Dial
	DisplayName  string // client.displayName, optional
	Role         string // role, default "operator"
	// ModelIdentifier is client.modelIdentifier, optional (nodes send it).
	ModelIdentifier string
	// DeviceToken is a per-device credential the gateway issued earlier
	// (hello-ok auth.deviceToken), sent as auth.deviceToken; with Device
	// set it stands in for the shared secret.
	DeviceToken string
	Scopes      []string
	Caps        []string
	Commands    []string
	// Device, when set, adds a v2-signed device proof over the challenge
	// nonce (protocol.SignDevice).
	Device ed25519.PrivateKey
	// Origin, when set, is sent as the HTTP Origin header (browser-like
	// clients; the gateway checks it against gateway.controlUi.allowedOrigins).
	Origin string
	// HandshakeTimeout bounds Dial from TCP connect to hello-ok; default 10s.
	HandshakeTimeout time.Duration
	// MinProtocol and MaxProtocol are the range offered; default 4 and 4.
	MinProtocol, MaxProtocol int
	// EventBuffer is the capacity of the Events channel (minimum 2);
	// default 256. One slot is kept for the gap marker.
	EventBuffer int
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.Mode == "" {
		o.Mode = DefaultMode
	}
	if o.Version == "" {
		o.Version = buildinfo.Get().Version
	}
	if o.Platform == "" {
		o.Platform = runtime.GOOS
	}
	if o.InstanceID == "" {
		o.InstanceID = uuid.NewString()
	}
	if o.Role == "" {
		o.Role = protocol.RoleOperator
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MinProtocol <= 0 {
		o.MinProtocol = protocol.Version
	}
	if o.MaxProtocol <= 0 {
		o.MaxProtocol = protocol.Version
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	if o.EventBuffer < 2 {
		o.EventBuffer = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// NormalizeURL turns what an operator types into the WebSocket URL Dial
// uses: http → ws, https → wss, a bare host:port gets ws://, and an empty
// path becomes "/".
func NormalizeURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("gateway URL is empty (pass --url ws://HOST:PORT)")
	}
	if !strings.Contains(s, "://") {
		s = "ws://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("gateway URL %q: %w (expected ws://HOST:PORT)", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("gateway URL %q: scheme %q is not ws, wss, http or https (expected ws://HOST:PORT)", raw, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("gateway URL %q has no host (expected ws://HOST:PORT)", raw)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

// displayURL drops the lone "/" path NormalizeURL adds, for messages:
// ws://127.0.0.1:18789 rather than ws://127.0.0.1:18789/.
func displayURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.Path == "/" && p.RawQuery == "" {
		return strings.TrimSuffix(u, "/")
	}
	return u
}

// Event is one server-pushed event after hello (connect.challenge is
// consumed by Dial), or the synthetic EventGap.
type Event struct {
	Name         string                 // the event name, e.g. "presence", "tick", "shutdown", or EventGap
	Seq          int64                  // the per-connection sequence number (0 when absent)
	Payload      json.RawMessage        // the payload as sent, nil when absent
	StateVersion *protocol.StateVersion // on presence and health events
}

// inFrame is any frame the server sends: a response or an event.
type inFrame struct {
	Type         string                 `json:"type"`
	ID           string                 `json:"id,omitempty"`
	OK           bool                   `json:"ok,omitempty"`
	Payload      json.RawMessage        `json:"payload,omitempty"`
	Error        *protocol.Error        `json:"error,omitempty"`
	Event        string                 `json:"event,omitempty"`
	Seq          int64                  `json:"seq,omitempty"`
	StateVersion *protocol.StateVersion `json:"stateVersion,omitempty"`
}

// pending is a request waiting for its response(s). deliver is called by the
// read loop with each response frame carrying the request's id and reports
// whether it was the final one (the entry is then removed).
//
// This is the seam for methods answered twice on one id (the "agent"
// method: first {status:"accepted"}, later the final result). A future
// CallStream registers a pending whose deliver forwards the first response
// to the caller and returns false, keeping the entry until the final one;
// Call's deliver always returns true.
type pending struct {
	method  string
	deliver func(*inFrame) (final bool)
}

// Conn is an authenticated connection to a gateway. Its methods are safe for
// concurrent use.
type Conn struct {
	ws       *websocket.Conn
	url      string
	log      *slog.Logger
	hello    *protocol.HelloOK
	idPrefix string
	nextID   atomic.Int64

	mu      sync.Mutex
	pending map[string]*pending
	closed  bool

	challenge chan protocol.ChallengePayload
	events    chan Event
	gaps      atomic.Int64
	// read loop only:
	gapPending bool
	lastSeq    int64
	sent       int64 // events put into the channel
	markerAt   int64 // sent count just after the last gap marker; 0 = none

	lastRecv    atomic.Int64 // unix nanos of the last frame received
	localClose  atomic.Value // string: why this side closed ("" = not us)
	done        chan struct{}
	closeOnce   sync.Once
	closeErr    error
	closeCode   int
	closeReason string
}

// Dial connects to the gateway at o.URL and completes the v4 handshake: it
// waits for connect.challenge, sends connect and returns after hello-ok.
// The whole handshake is bounded by o.HandshakeTimeout and ctx. Errors are
// *DialError.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	o = o.withDefaults()
	u, err := NormalizeURL(o.URL)
	if err != nil {
		return nil, &DialError{URL: o.URL, Stage: StageConnect, Err: err}
	}
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()

	hdr := http.Header{}
	if o.Origin != "" {
		hdr.Set("Origin", o.Origin)
	}
	ws, resp, err := websocket.Dial(hctx, u, &websocket.DialOptions{
		HTTPHeader:      hdr,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		de := &DialError{URL: displayURL(u), Stage: StageConnect, Err: err, timeout: o.HandshakeTimeout}
		if resp != nil {
			de.HTTPStatus = resp.StatusCode
		}
		return nil, de
	}
	// hello-ok carries a snapshot that can pass the library's 32 KiB default;
	// until the server announces its limit, accept what the protocol allows.
	ws.SetReadLimit(protocol.MaxPayload)

	c := &Conn{
		ws:        ws,
		url:       u,
		log:       o.Logger.With("gateway", u),
		idPrefix:  strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		pending:   map[string]*pending{},
		challenge: make(chan protocol.ChallengePayload, 1),
		events:    make(chan Event, o.EventBuffer),
		done:      make(chan struct{}),
	}
	c.lastRecv.Store(time.Now().UnixNano())
	go c.readLoop()

	hello, derr := c.handshake(hctx, o)
	if derr != nil {
		c.abort()
		return nil, derr
	}
	c.hello = hello
	if hello.Policy.MaxPayload > 0 {
		ws.SetReadLimit(hello.Policy.MaxPayload)
	}
	if hello.Policy.TickIntervalMs > 0 {
		go c.watchdog(time.Duration(hello.Policy.TickIntervalMs) * time.Millisecond)
	}
	c.log.Debug("connected", "connId", hello.Server.ConnID, "serverVersion", hello.Server.Version)
	return c, nil
}

// handshake waits for the challenge, sends connect and decodes hello-ok.
func (c *Conn) handshake(ctx context.Context, o Options) (*protocol.HelloOK, *DialError) {
	fail := func(stage string, err error) *DialError {
		de := &DialError{URL: displayURL(c.url), Stage: stage, Err: err, timeout: o.HandshakeTimeout,
			minProto: o.MinProtocol, maxProto: o.MaxProtocol}
		select {
		case <-c.done:
			de.CloseCode, de.CloseReason = c.CloseStatus()
		default:
		}
		return de
	}
	var ch protocol.ChallengePayload
	select {
	case ch = <-c.challenge:
	case <-c.done:
		return nil, fail(StageChallenge, errConnClosed)
	case <-ctx.Done():
		return nil, fail(StageChallenge, ctx.Err())
	}

	params := connectParams(o, ch.Nonce, time.Now())

	f, err := c.roundTrip(ctx, "connect", params)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail(StageHandshake, ctx.Err())
		}
		// A failed send usually means the server is closing (1012 while
		// it stops): give its close frame a moment so the error names it
		// (and says whether a retry helps).
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		return nil, fail(StageHandshake, err)
	}
	hello, rejected, err := decodeHello(f, o)
	if rejected != nil {
		// The server closes right after a rejected connect (1002 or 1008);
		// give the close frame a moment to arrive so the error can name it.
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		de := fail(StageHandshake, nil)
		de.Server = rejected
		return nil, de
	}
	if err != nil {
		return nil, fail(StageHandshake, err)
	}
	return hello, nil
}

// connectParams builds the connect request's params from o (defaults
// applied) for the challenge nonce: client identity, role, scopes, the
// offered protocol range, the shared secret or device token, and the
// signed device proof when o.Device is set. Dial and DialPipe share it.
func connectParams(o Options, nonce string, now time.Time) *protocol.ConnectParams {
	params := &protocol.ConnectParams{
		MinProtocol: o.MinProtocol,
		MaxProtocol: o.MaxProtocol,
		Client: protocol.ClientInfo{
			ID: o.ClientID, Version: o.Version, Platform: o.Platform, Mode: o.Mode,
			DisplayName: o.DisplayName, DeviceFamily: o.DeviceFamily, InstanceID: o.InstanceID,
			ModelIdentifier: o.ModelIdentifier,
		},
		Caps:     o.Caps,
		Commands: o.Commands,
		Role:     o.Role,
		Scopes:   o.Scopes,
	}
	if o.Token != "" || o.Password != "" || o.DeviceToken != "" {
		params.Auth = &protocol.ConnectAuth{Token: o.Token, Password: o.Password, DeviceToken: o.DeviceToken}
	}
	if o.Device != nil {
		// The proof covers the token the gateway checks it against:
		// auth.token, else auth.deviceToken.
		signed := o.Token
		if signed == "" {
			signed = o.DeviceToken
		}
		params.Device = protocol.SignDevice(o.Device, params, o.Role, signed, nonce, now)
	}
	return params
}

// decodeHello reads the response to connect: rejected is the server's
// error when it refused (never nil then), err says why an ok:true answer
// is not a usable hello-ok (undecodable, wrong payload type, a protocol
// outside the range o offered). Dial and DialPipe share it.
func decodeHello(f *inFrame, o Options) (hello *protocol.HelloOK, rejected *protocol.Error, err error) {
	if !f.OK {
		if f.Error == nil {
			return nil, &protocol.Error{Code: protocol.ErrInvalidRequest, Message: "connect rejected without an error"}, nil
		}
		return nil, f.Error, nil
	}
	var h protocol.HelloOK
	if err := json.Unmarshal(f.Payload, &h); err != nil {
		return nil, nil, fmt.Errorf("decode hello-ok: %w", err)
	}
	if h.Type != "hello-ok" {
		return nil, nil, fmt.Errorf("connect answered with payload type %q, not \"hello-ok\"", h.Type)
	}
	if h.Protocol < o.MinProtocol || h.Protocol > o.MaxProtocol {
		return nil, nil, fmt.Errorf("gateway chose protocol %d, outside the offered %d..%d", h.Protocol, o.MinProtocol, o.MaxProtocol)
	}
	return &h, nil, nil
}

// Hello returns the server's hello-ok payload.
func (c *Conn) Hello() *protocol.HelloOK { return c.hello }

// URL returns the normalized WebSocket URL of the gateway.
func (c *Conn) URL() string { return c.url }

// Events returns the channel of server events. It is closed when the
// connection ends. The channel is bounded (Options.EventBuffer) and the
// read loop never blocks on it: when the caller falls behind, events are
// dropped and counted in Gaps, and an Event{Name: EventGap} is queued at
// once in the slot kept free for it (one marker covers every drop until the
// caller reads it). A gap in the server's seq is reported the same way.
// On EventGap, refresh health and system-presence: events are not replayed.
func (c *Conn) Events() <-chan Event { return c.events }

// Gaps returns how many events this connection knows it missed: events
// dropped because the Events channel was full, plus sequence numbers the
// server skipped.
func (c *Conn) Gaps() int64 { return c.gaps.Load() }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseStatus returns the WebSocket close code and reason once the
// connection has ended: the server's, or 1000 when this side closed it; -1
// when it ended without a close frame; 0 while it is open.
func (c *Conn) CloseStatus() (code int, reason string) {
	select {
	case <-c.done:
		return c.closeCode, c.closeReason
	default:
		return 0, ""
	}
}

// Err returns why the connection ended (nil while it is open).
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// Close closes the connection with status 1000 and waits (at most about 5 s)
// for the read loop to end. Closing a closed connection returns nil.
func (c *Conn) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	c.localClose.CompareAndSwap(nil, "closed by client")
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	t := time.NewTimer(6 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		c.ws.CloseNow()
	}
	if err != nil {
		return fmt.Errorf("close gateway connection %s: %w", c.url, err)
	}
	return nil
}

// abort drops the connection without a close handshake (Dial failures).
func (c *Conn) abort() {
	c.localClose.CompareAndSwap(nil, "handshake failed")
	c.ws.CloseNow()
	<-c.done
}

// watchdog closes the connection when nothing at all arrived for twice the
// tick interval: the protocol's rule for a dead gateway.
func (c *Conn) watchdog(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			idle := time.Since(time.Unix(0, c.lastRecv.Load()))
			if idle > 2*tick {
				c.log.Warn("gateway silent for more than two tick intervals; closing", "idle", idle.Round(time.Millisecond))
				c.localClose.CompareAndSwap(nil, fmt.Sprintf("no frame from the gateway for %s (twice the tick interval)", idle.Round(time.Second)))
				c.ws.CloseNow()
				return
			}
		}
	}
}

// readLoop is the only reader of the socket. It routes responses to their
// pending requests and events to the Events channel, and tears the
// connection down when the socket ends.
func (c *Conn) readLoop() {
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.finish(err)
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			c.log.Debug("ignoring binary frame", "bytes", len(data))
			continue
		}
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.log.Debug("ignoring undecodable frame", "err", err)
			continue
		}
		switch f.Type {
		case protocol.TypeRes:
			c.deliverResponse(&f)
		case protocol.TypeEvent:
			c.deliverEvent(&f)
		default:
			c.log.Debug("ignoring frame of unknown type", "type", f.Type)
		}
	}
}

func (c *Conn) deliverResponse(f *inFrame) {
	c.mu.Lock()
	p := c.pending[f.ID]
	c.mu.Unlock()
	if p == nil {
		if f.ID == "invalid" && f.Error != nil {
			c.log.Warn("gateway rejected a frame from this client", "error", f.Error.Message)
		} else {
			c.log.Debug("response for no pending request", "id", f.ID)
		}
		return
	}
	if p.deliver(f) {
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
	}
}

func (c *Conn) deliverEvent(f *inFrame) {
	if f.Event == "connect.challenge" {
		var ch protocol.ChallengePayload
		if err := json.Unmarshal(f.Payload, &ch); err == nil {
			select {
			case c.challenge <- ch:
			default: // only the first challenge counts
			}
		}
		return
	}
	if f.Seq > 0 {
		if want := c.lastSeq + 1; f.Seq > want {
			c.gaps.Add(f.Seq - want)
			c.gapPending = true
		}
		c.lastSeq = f.Seq
	}
	c.emit(Event{Name: f.Event, Seq: f.Seq, Payload: f.Payload, StateVersion: f.StateVersion})
}

// emit hands ev to the Events channel without ever blocking the read loop.
// The read loop is the only sender, so len() checks are reliable. Normal
// events may fill all but the last slot, which stays free for the gap
// marker: a drop (or a seq jump noted by deliverEvent) puts a marker in at
// once, unless the previous marker is still unread, which covers it (the
// caller refreshes after reading it).
func (c *Conn) emit(ev Event) {
	if c.gapPending {
		c.gapPending = false
		c.markGap(ev.Seq)
	}
	if len(c.events) >= cap(c.events)-1 {
		c.gaps.Add(1)
		c.markGap(ev.Seq)
		return
	}
	c.send(ev)
}

func (c *Conn) markGap(seq int64) {
	if c.markerUnread() {
		return
	}
	if len(c.events) < cap(c.events) {
		c.send(Event{Name: EventGap, Seq: seq})
		c.markerAt = c.sent
		return
	}
	c.gapPending = true // unreachable while the last slot is kept free; safe anyway
}

func (c *Conn) send(ev Event) {
	c.events <- ev
	c.sent++
}

// markerUnread reports whether the last gap marker is still in the channel:
// the consumer has taken sent-len(events) events, fewer than the marker's
// position.
func (c *Conn) markerUnread() bool {
	return c.markerAt > 0 && c.sent-int64(len(c.events)) < c.markerAt
}

func (c *Conn) finish(err error) {
	c.closeOnce.Do(func() {
		code, reason := int(websocket.CloseStatus(err)), ""
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		if why, _ := c.localClose.Load().(string); why != "" && code == -1 {
			code, reason = int(websocket.StatusNormalClosure), why
		}
		c.mu.Lock()
		c.closed = true
		c.closeErr, c.closeCode, c.closeReason = err, code, reason
		c.pending = map[string]*pending{}
		c.mu.Unlock()
		close(c.events)
		close(c.done)
		c.log.Debug("connection ended", "code", code, "reason", reason, "err", err)
	})
}

// errConnClosed is wrapped by every error caused by the connection ending.
var errConnClosed = errors.New("gateway connection closed")

// ErrClosed is returned (wrapped) by Call once the connection has ended.
var ErrClosed = errConnClosed

func (c *Conn) closedError(method string) error {
	code, reason := c.closeCode, c.closeReason
	switch {
	case code > 0 && reason != "":
		return fmt.Errorf("%s: %w (%d %s)", method, errConnClosed, code, reason)
	case code > 0:
		return fmt.Errorf("%s: %w (%d)", method, errConnClosed, code)
	}
	return fmt.Errorf("%s: %w", method, errConnClosed)
}

func (c *Conn) newID() string {
	return strconv.FormatInt(c.nextID.Add(1), 10) + ":" + c.idPrefix
}

// marshalParams encodes params for the frame; nil means "no params field".
func marshalParams(method string, params any) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(bytes.TrimSpace(p)) == 0 {
			return nil, nil
		}
		if !json.Valid(p) {
			return nil, fmt.Errorf("%s params are not valid JSON", method)
		}
		return p, nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode %s params: %w", method, err)
	}
	return b, nil
}

// roundTrip sends one request and waits for its (single) response frame.
func (c *Conn) roundTrip(ctx context.Context, method string, params any) (*inFrame, error) {
	raw, err := marshalParams(method, params)
	if err != nil {
		return nil, err
	}
	id := c.newID()
	ch := make(chan *inFrame, 1)
	p := &pending{method: method, deliver: func(f *inFrame) bool { ch <- f; return true }}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, c.closedError(method)
	}
	c.pending[id] = p
	c.mu.Unlock()

	frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, ID: id, Method: method, Params: raw})
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("encode %s request: %w", method, err)
	}
	// The library closes the whole connection when the context of a write
	// ends mid-write, so a caller's canceled or short deadline must not
	// reach it: check it first, then write under our own stuck-peer bound.
	if err := ctx.Err(); err != nil {
		c.forget(id)
		return nil, fmt.Errorf("%s: not sent: %w", method, err)
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	err = c.ws.Write(wctx, websocket.MessageText, frame)
	wcancel()
	if err != nil {
		c.forget(id)
		select {
		case <-c.done:
			return nil, c.closedError(method)
		default:
		}
		return nil, fmt.Errorf("%s: send request: %w", method, err)
	}
	select {
	case f := <-ch:
		return f, nil
	case <-c.done:
		select {
		case f := <-ch: // answered just before the end
			return f, nil
		default:
		}
		return nil, c.closedError(method)
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("%s: no response: %w", method, ctx.Err())
	}
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Call sends a request and waits for its response. params nil leaves the
// params field out of the frame; a json.RawMessage is sent as is; anything
// else is JSON-encoded. A response with ok:false is returned as *CallError.
func (c *Conn) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	f, err := c.roundTrip(ctx, method, params)
	if err != nil {
		return nil, err
	}
	return frameResult(method, f)
}

// CallInto is Call, decoding the payload into out (when out is not nil).
func (c *Conn) CallInto(ctx context.Context, method string, params, out any) error {
	raw, err := c.Call(ctx, method, params)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s payload: %w", method, err)
	}
	return nil
}

// CallError is a response with ok:false.
type CallError struct {
	Method string
	Err    *protocol.Error
}

// Error returns "METHOD: CODE: message".
func (e *CallError) Error() string {
	return e.Method + ": " + e.Err.Code + ": " + e.Err.Message
}

// Unwrap returns the protocol error.
func (e *CallError) Unwrap() error { return e.Err }
