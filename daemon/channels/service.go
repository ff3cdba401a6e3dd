package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// State store buckets of this package.
const (
	BucketDedupe = "channels.dedupe" // idempotency key -> dedupeRecord
	BucketState  = "channels.state"  // channel name -> last delivery and error
)

// Limits of send params.
const (
	MaxTargetLength  = 256
	MaxKeyLength     = 256
	MaxMessageLength = 256 << 10
	probeTimeout     = 10 * time.Second
	sweepInterval    = time.Hour
)

type channelState struct {
	LastDelivery *channelproto.LastDelivery `json:"lastDelivery,omitempty"`
	LastError    *channelproto.LastError    `json:"lastError,omitempty"`
	LastInbound  *channelproto.LastInbound  `json:"lastInbound,omitempty"`
}

// dedupeRecord remembers one idempotency key.
type dedupeRecord struct {
	State       string                 `json:"state"` // pending | delivered | failed
	Fingerprint string                 `json:"fingerprint"`
	Channel     string                 `json:"channel"`
	Delivery    *channelproto.Delivery `json:"delivery,omitempty"`
	CreatedAt   int64                  `json:"createdAt"`
	ExpiresAt   int64                  `json:"expiresAt"`
}

// Options configure New.
type Options struct {
	Config  *config.Config // effective config, defaults filled in
	Store   *store.Store
	Log     *slog.Logger
	Getenv  func(string) string // secretEnv lookups; nil: os.Getenv is not used, nothing resolves
	Version string
	// StateDir keeps a Matrix password login's access token.
	StateDir string
	// Agents answers the chat channels' messages (nil: they wait).
	Agents func() agent.Runner
}

// statusRefresher is the Host's RefreshStatus (a *gateway.Server).
type statusRefresher interface{ RefreshStatus() }

// Service is the channels feature: the send and channels.status methods.
type Service struct {
	log     *slog.Logger
	store   *store.Store
	getenv  func(string) string
	version string
	set     atomic.Pointer[Set]
	ttl     atomic.Int64 // ms

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]*flight
	seq      int64           // last inbox sequence number
	busy     map[string]bool // chats being answered
	retryAt  map[string]time.Time
	tried    map[string]bool // answer pieces this process has sent (or tried to)

	agents   func() agent.Runner
	stateDir string
	host     atomic.Pointer[statusRefresher]
	wake     chan struct{}
	applyMu  sync.Mutex
	links    map[string]Link // running chat links by name
}

// flight is a send in progress for one idempotency key.
type flight struct {
	done chan struct{}
	fp   string
	res  channelproto.Delivery
	err  *protocol.Error
}

// New builds the channels feature and removes expired idempotency records.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("channels: no state store (the daemon opens it before the features)")
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Agents == nil {
		o.Agents = func() agent.Runner { return nil }
	}
	s := &Service{log: o.Log.With("feature", "channels"), store: o.Store, getenv: o.Getenv, version: o.Version,
		inflight: map[string]*flight{}, busy: map[string]bool{}, retryAt: map[string]time.Time{}, tried: map[string]bool{}, agents: o.Agents,
		stateDir: o.StateDir, wake: make(chan struct{}, 1), links: map[string]Link{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Apply(o.Config)
	if n, err := s.sweep(time.Now()); err != nil {
		s.log.Warn("removing expired idempotency records", "err", err)
	} else if n > 0 {
		s.log.Debug("removed expired idempotency records", "count", n)
	}
	s.wg.Add(2)
	go s.sweeper()
	go s.dispatcher()
	return s, nil
}

// Name implements gateway.Extension.
func (s *Service) Name() string { return "channels" }

// Events implements gateway.Extension.
func (s *Service) Events() []string { return nil }

// Bind implements gateway.Extension: the Host refreshes STATUS= when a
// channel's state changes.
func (s *Service) Bind(h gateway.Host) {
	if r, ok := h.(statusRefresher); ok {
		s.host.Store(&r)
	}
}

// Methods implements gateway.Extension.
func (s *Service) Methods() []gateway.Method {
	return []gateway.Method{
		{Name: "send", Scope: protocol.ScopeWrite, Async: true, Handler: s.mSend},
		{Name: "channels.status", Scope: protocol.ScopeRead, Async: true, Handler: s.mStatus},
		{Name: channelproto.MethodPairingList, Scope: protocol.ScopePairing, Handler: s.mPairingList},
		{Name: channelproto.MethodPairingApprove, Scope: protocol.ScopePairing, Async: true, Handler: s.mPairingResolve(true)},
		{Name: channelproto.MethodPairingDismiss, Scope: protocol.ScopePairing, Handler: s.mPairingResolve(false)},
		{Name: "message.action", Scope: protocol.ScopeWrite, Async: true, Handler: s.mMessageAction},
	}
}

// Apply takes a reloaded config: the channel set is rebuilt; sends in
// progress finish on the channels they started with. Chat links whose
// config and secret are unchanged keep their connection; changed ones are
// reconnected, removed ones stopped, new ones started.
func (s *Service) Apply(cfg *config.Config) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	c := cfg.Channels
	var chs []Channel
	targets := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Webhooks)) {
		w := c.Webhooks[name]
		chs = append(chs, NewWebhook(name, w, s.getenv, s.version, s.log))
		targets[name] = slices.Clone(w.Targets)
	}
	var fresh []Link
	for _, name := range slices.Sorted(maps.Keys(c.Telegram)) {
		t := c.Telegram[name]
		fresh = append(fresh, NewTelegram(name, t, s.getenv, s.log))
		targets[name] = slices.Clone(t.Targets)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Matrix)) {
		m := c.Matrix[name]
		fresh = append(fresh, NewMatrix(name, m, s.getenv, s.stateDir, s.log))
		targets[name] = slices.Clone(m.Targets)
	}
	keep := map[string]Link{}
	var start []Link
	for _, l := range fresh {
		if old, ok := s.links[l.Name()]; ok && old.Kind() == l.Kind() && old.Fingerprint() == l.Fingerprint() {
			old.SetChat(l.Chat())
			keep[l.Name()] = old
			chs = append(chs, old)
			continue
		}
		keep[l.Name()] = l
		chs = append(chs, l)
		start = append(start, l)
	}
	var stop []Link
	for name, old := range s.links {
		if k, ok := keep[name]; !ok || k != old {
			stop = append(stop, old)
		}
	}
	for _, l := range stop {
		s.log.Info("channel stopped (removed or reconfigured)", "channel", l.Name(), "kind", l.Kind())
		l.Stop()
	}
	s.links = keep
	set := NewSet(chs, targets, c.Default)
	s.set.Store(set)
	for _, l := range start {
		s.log.Info("channel starting", "channel", l.Name(), "kind", l.Kind())
		l.Start(s)
	}
	if len(start) > 0 || len(stop) > 0 {
		s.StateChanged("")
	}
	ttl := c.DedupeTTLMs
	if ttl <= 0 {
		ttl = config.DefaultDedupeTTLMs
	}
	s.ttl.Store(int64(ttl))
	for _, ch := range chs {
		if ok, why := ch.Linked(); !ok {
			s.log.Warn("channel is not linked", "channel", ch.Name(), "reason", why)
		}
	}
}

// Close stops the chat links and deliveries in progress (they end with an
// error) and waits for them. Unanswered messages stay in the inbox for the
// next start.
func (s *Service) Close() error {
	s.applyMu.Lock()
	for _, l := range s.links {
		l.Stop()
	}
	s.links = map[string]Link{}
	s.applyMu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// link returns the running chat link called name.
func (s *Service) link(name string) (Link, bool) {
	ch, ok := s.set.Load().Get(name)
	if !ok {
		return nil, false
	}
	l, ok := ch.(Link)
	return l, ok
}

func (s *Service) mSend(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p channelproto.SendParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	d, perr := s.Send(ctx, p)
	if perr != nil {
		return nil, perr
	}
	return d, nil
}

// Send validates p, picks the channel and delivers, at most once per
// idempotency key. It returns when the delivery ended (retries included)
// or ctx ended; in the latter case the delivery goes on in the background
// and its outcome is what a repeated send with the same key gets.
func (s *Service) Send(ctx context.Context, p channelproto.SendParams) (channelproto.Delivery, *protocol.Error) {
	if err := checkSend(p); err != nil {
		return channelproto.Delivery{}, protocol.InvalidParams("send", err)
	}
	fp := fingerprint(p)
	s.mu.Lock()
	if f, ok := s.inflight[p.IdempotencyKey]; ok {
		s.mu.Unlock()
		if f.fp != fp {
			return channelproto.Delivery{}, reusedKey(p.IdempotencyKey)
		}
		return s.await(ctx, f, true)
	}
	f := &flight{done: make(chan struct{}), fp: fp}
	s.inflight[p.IdempotencyKey] = f
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f.res, f.err = s.deliverOnce(p, fp)
		s.mu.Lock()
		delete(s.inflight, p.IdempotencyKey)
		s.mu.Unlock()
		close(f.done)
	}()
	return s.await(ctx, f, false)
}

func (s *Service) await(ctx context.Context, f *flight, joined bool) (channelproto.Delivery, *protocol.Error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return channelproto.Delivery{}, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
			Message: "send: the request ended before the delivery did; it goes on in the background (send again with the same idempotencyKey for its outcome)"}
	}
	if f.err != nil {
		return channelproto.Delivery{}, f.err
	}
	d := f.res
	if joined {
		d.Deduplicated = true
	}
	return d, nil
}

// deliverOnce consults and updates the idempotency record around the
// delivery itself.
func (s *Service) deliverOnce(p channelproto.SendParams, fp string) (channelproto.Delivery, *protocol.Error) {
	now := time.Now()
	var rec dedupeRecord
	found, err := s.store.Get(BucketDedupe, p.IdempotencyKey, &rec)
	if err != nil {
		return channelproto.Delivery{}, storeError(err)
	}
	if found && rec.ExpiresAt > now.UnixMilli() {
		if rec.Fingerprint != fp {
			return channelproto.Delivery{}, reusedKey(p.IdempotencyKey)
		}
		if rec.State == "delivered" && rec.Delivery != nil {
			d := *rec.Delivery
			d.Deduplicated = true
			return d, nil
		}
	}
	ch, perr := s.pick(p)
	if perr != nil {
		return channelproto.Delivery{}, perr
	}
	ttl := time.Duration(s.ttl.Load()) * time.Millisecond
	rec = dedupeRecord{State: "pending", Fingerprint: fp, Channel: ch.Name(), CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(ttl).UnixMilli()}
	if err := s.store.Put(BucketDedupe, p.IdempotencyKey, rec); err != nil {
		return channelproto.Delivery{}, storeError(err)
	}
	d, err := ch.Send(s.ctx, Message{To: p.To, Text: p.Message, IdempotencyKey: p.IdempotencyKey})
	done := time.Now()
	if err != nil {
		rec.State = "failed"
		perr := deliveryError(err)
		s.log.Warn("send failed", "channel", ch.Name(), "to", p.To, "idempotencyKey", p.IdempotencyKey, "err", err)
		s.record(ch.Name(), func(st *channelState) {
			st.LastError = &channelproto.LastError{TS: done.UnixMilli(), To: p.To, IdempotencyKey: p.IdempotencyKey, Message: err.Error()}
		})
		if err := s.store.Put(BucketDedupe, p.IdempotencyKey, rec); err != nil {
			s.log.Warn("recording a failed send", "err", err)
		}
		return channelproto.Delivery{}, perr
	}
	rec.State, rec.Delivery, rec.ExpiresAt = "delivered", &d, done.Add(ttl).UnixMilli()
	if err := s.store.Put(BucketDedupe, p.IdempotencyKey, rec); err != nil {
		// Delivered but not remembered: say so loudly, the caller got it.
		s.log.Error("message delivered but its idempotency record was not saved; a repeat of this key would deliver again",
			"channel", ch.Name(), "idempotencyKey", p.IdempotencyKey, "err", err)
	}
	s.record(ch.Name(), func(st *channelState) {
		st.LastDelivery = &channelproto.LastDelivery{TS: d.DeliveredAt, To: p.To, IdempotencyKey: p.IdempotencyKey, Attempts: d.Attempts, Status: d.Status}
	})
	s.log.Info("message sent", "channel", ch.Name(), "to", p.To, "attempts", d.Attempts, "idempotencyKey", p.IdempotencyKey)
	return d, nil
}

// pick chooses the channel for p or explains why none can deliver.
func (s *Service) pick(p channelproto.SendParams) (Channel, *protocol.Error) {
	set := s.set.Load()
	var ch Channel
	if p.Channel != "" {
		c, ok := set.Get(p.Channel)
		if !ok {
			return nil, notLinked(fmt.Sprintf("channel %q is not configured (configured: %s; add it under channels.webhooks, channels.telegram or channels.matrix)", p.Channel, names(set)), p)
		}
		ch = c
	} else {
		c, ok := set.Route(p.To)
		if !ok {
			return nil, notLinked(fmt.Sprintf("no channel delivers to target %q (add it to a channel's targets, like channels.webhooks.NAME.targets, set channels.default, or pass a channel; configured: %s)", p.To, names(set)), p)
		}
		ch = c
	}
	if ok, why := ch.Linked(); !ok {
		return nil, notLinked(fmt.Sprintf("channel %q is not linked: %s", ch.Name(), why), p)
	}
	return ch, nil
}

func notLinked(msg string, p channelproto.SendParams) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrNotLinked, Message: msg, Details: protocol.Details{"to": p.To, "channel": p.Channel}}
}

func names(set *Set) string {
	n := set.Names()
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

func reusedKey(key string) *protocol.Error {
	return protocol.Errorf(protocol.ErrInvalidRequest,
		fmt.Sprintf("idempotencyKey %q was already used for a different message (use a new key for a new message)", key))
}

func storeError(err error) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, Message: "send: " + err.Error()}
}

func deliveryError(err error) *protocol.Error {
	var de *DeliveryError
	if !errors.As(err, &de) {
		return &protocol.Error{Code: protocol.ErrUnavailable, Message: err.Error()}
	}
	return &protocol.Error{Code: protocol.ErrUnavailable, Message: de.Msg, Retryable: de.Retryable,
		Details: protocol.Details{"code": "DELIVERY_FAILED", "channel": de.Channel, "attempts": de.Attempts, "status": de.Status}}
}

func checkSend(p channelproto.SendParams) error {
	switch {
	case strings.TrimSpace(p.To) == "":
		return errors.New("at /to: required (the target, like \"ops\")")
	case len(p.To) > MaxTargetLength:
		return fmt.Errorf("at /to: longer than %d bytes", MaxTargetLength)
	case p.Message == "":
		return errors.New("at /message: required (the text to send)")
	case len(p.Message) > MaxMessageLength:
		return fmt.Errorf("at /message: %d bytes is over the limit of %d", len(p.Message), MaxMessageLength)
	case strings.TrimSpace(p.IdempotencyKey) == "":
		return errors.New("at /idempotencyKey: required (a unique key per message, e.g. a UUID; repeats are not delivered twice)")
	case len(p.IdempotencyKey) > MaxKeyLength:
		return fmt.Errorf("at /idempotencyKey: longer than %d bytes", MaxKeyLength)
	}
	return nil
}

func fingerprint(p channelproto.SendParams) string {
	h := sha256.New()
	for _, s := range []string{p.To, p.Message, p.Channel} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// record updates a channel's last delivery or error in the store.
func (s *Service) record(name string, fn func(st *channelState)) {
	err := s.store.Update(func(tx *store.Tx) error {
		var st channelState
		if _, err := tx.Get(BucketState, name, &st); err != nil {
			return err
		}
		fn(&st)
		return tx.Put(BucketState, name, st)
	})
	if err != nil {
		s.log.Warn("recording channel state", "channel", name, "err", err)
	}
}

func (s *Service) mStatus(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p channelproto.StatusParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	return s.Status(ctx, p.Probe, p.Channel), nil
}

// Status reports every configured channel, or only the one named only
// (none when no channel has that name); with probe, each reported channel
// is checked live (concurrently, bounded by 10 s).
func (s *Service) Status(ctx context.Context, probe bool, only string) *channelproto.StatusPayload {
	set := s.set.Load()
	out := &channelproto.StatusPayload{TS: time.Now().UnixMilli(), Default: set.def, Channels: []channelproto.ChannelStatus{}}
	for _, name := range set.Names() {
		if only != "" && name != only {
			continue
		}
		ch, _ := set.Get(name)
		linked, why := ch.Linked()
		cs := channelproto.ChannelStatus{Name: name, Kind: ch.Kind(), Configured: true, Linked: linked, Reason: why,
			Targets: set.Targets(name), Default: name == set.def}
		if l, ok := ch.(Link); ok {
			st := l.Status()
			cs.State, cs.Link, cs.DMPolicy, cs.Inbox = st.State, &st, l.Chat().DMPolicy, s.inboxCount(name)
		} else {
			cs.State = webhookState(ch, linked)
		}
		if cs.Targets == nil {
			cs.Targets = []string{}
		}
		var st channelState
		if _, err := s.store.Get(BucketState, name, &st); err != nil {
			s.log.Warn("reading channel state", "channel", name, "err", err)
		}
		cs.LastDelivery, cs.LastError, cs.LastInbound = st.LastDelivery, st.LastError, st.LastInbound
		out.Channels = append(out.Channels, cs)
	}
	if reqs, err := s.pendingRequests(); err == nil {
		for i := range out.Channels {
			for _, r := range reqs {
				if r.Channel == out.Channels[i].Name {
					out.Channels[i].Pending++
				}
			}
		}
	}
	if probe {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for i := range out.Channels {
			ch, _ := set.Get(out.Channels[i].Name)
			wg.Go(func() {
				pr := ch.Probe(pctx)
				out.Channels[i].Probe = &pr
			})
		}
		wg.Wait()
	}
	fillOpenClaw(out)
	return out
}

// sweeper removes expired idempotency records every hour.
func (s *Service) sweeper() {
	defer s.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if _, err := s.sweep(now); err != nil {
				s.log.Warn("removing expired idempotency records", "err", err)
			}
		}
	}
}

// sweep deletes the idempotency records that expired before now.
func (s *Service) sweep(now time.Time) (int, error) {
	var expired []string
	err := s.store.View(func(tx *store.Tx) error {
		return tx.List(BucketDedupe, "", func(key string, raw []byte) error {
			var r struct {
				ExpiresAt int64 `json:"expiresAt"`
			}
			if json.Unmarshal(raw, &r) != nil || r.ExpiresAt <= now.UnixMilli() {
				expired = append(expired, key)
			}
			return nil
		})
	})
	if err != nil || len(expired) == 0 {
		return 0, err
	}
	err = s.store.Update(func(tx *store.Tx) error {
		for _, k := range expired {
			if err := tx.Delete(BucketDedupe, k); err != nil {
				return err
			}
		}
		return nil
	})
	return len(expired), err
}
