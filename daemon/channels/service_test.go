package channels

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/daemon/store"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func serviceConfig(webhooks map[string]config.WebhookChannelConfig, def string) *config.Config {
	c := &config.Config{Channels: config.ChannelsConfig{Default: def, Webhooks: webhooks}}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c.WithDefaults()
}

func newService(t *testing.T, cfg *config.Config, st *store.Store) *Service {
	t.Helper()
	s, err := New(Options{Config: cfg, Store: st, Log: testutil.Logger(t), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hook(url, secret string, targets ...string) config.WebhookChannelConfig {
	return config.WebhookChannelConfig{URL: url, Secret: secret, Targets: targets,
		Retry: config.RetryConfig{MaxAttempts: 3, InitialBackoffMs: 10, MaxBackoffMs: 20, MaxElapsedMs: 5000}}
}

func TestSendIdempotentAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, "sec", 200)
	path := filepath.Join(t.TempDir(), "state.db")
	cfg := serviceConfig(map[string]config.WebhookChannelConfig{"ops": hook(rcv.srv.URL, "sec", "ops")}, "")
	st := openStore(t, path)
	s := newService(t, cfg, st)
	p := channelproto.SendParams{To: "ops", Message: "deploy done", IdempotencyKey: "key-1"}
	d1, perr := s.Send(context.Background(), p)
	if perr != nil {
		t.Fatalf("first send: %v", perr)
	}
	if d1.Deduplicated || d1.Channel != "ops" {
		t.Errorf("first send: %+v", d1)
	}
	d2, perr := s.Send(context.Background(), p)
	if perr != nil || !d2.Deduplicated || d2.DeliveryID != d1.DeliveryID {
		t.Fatalf("repeat: %+v, %v; want the first delivery marked deduplicated", d2, perr)
	}
	// A gateway restart: the service and the store are closed and opened again.
	s.Close()
	st.Close()
	st = openStore(t, path)
	defer st.Close()
	s = newService(t, cfg, st)
	defer s.Close()
	d3, perr := s.Send(context.Background(), p)
	if perr != nil || !d3.Deduplicated || d3.DeliveryID != d1.DeliveryID {
		t.Fatalf("repeat after restart: %+v, %v", d3, perr)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d deliveries for one idempotency key, want 1", n)
	}
	// The same key with another message is refused, not delivered.
	_, perr = s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "something else", IdempotencyKey: "key-1"})
	if perr == nil || perr.Code != protocol.ErrInvalidRequest || !strings.Contains(perr.Message, "already used for a different message") {
		t.Errorf("reused key: %v", perr)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("receiver got %d deliveries, want 1", n)
	}
}

func TestSendConcurrentSameKeyDeliversOnce(t *testing.T) {
	rcv := newReceiver(t, "sec", 200)
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	s := newService(t, serviceConfig(map[string]config.WebhookChannelConfig{"ops": hook(rcv.srv.URL, "sec", "ops")}, ""), st)
	defer s.Close()
	var wg sync.WaitGroup
	results := make([]channelproto.Delivery, 8)
	errs := make([]*protocol.Error, 8)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "same"})
		})
	}
	wg.Wait()
	fresh := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		if !results[i].Deduplicated {
			fresh++
		}
		if results[i].DeliveryID != results[0].DeliveryID {
			t.Errorf("send %d has delivery %s, send 0 %s", i, results[i].DeliveryID, results[0].DeliveryID)
		}
	}
	if n := len(rcv.requests()); n != 1 || fresh != 1 {
		t.Fatalf("8 concurrent sends with one key: %d deliveries, %d not marked deduplicated; want 1 and 1", n, fresh)
	}
}

func TestSendRouting(t *testing.T) {
	a := newReceiver(t, "sa", 200)
	b := newReceiver(t, "sb", 200)
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	cfg := serviceConfig(map[string]config.WebhookChannelConfig{
		"alpha": hook(a.srv.URL, "sa", "ops", "team-*"),
		"beta":  hook(b.srv.URL, "sb"),
	}, "")
	s := newService(t, cfg, st)
	defer s.Close()
	tests := []struct {
		to, channel string
		want        string // channel, or "" for NOT_LINKED
		msg         string
	}{
		{to: "ops", want: "alpha"},
		{to: "team-db", want: "alpha"},
		{to: "ops", channel: "beta", want: "beta"},
		{to: "elsewhere", msg: `no channel delivers to target "elsewhere"`},
		{to: "ops", channel: "gamma", msg: `channel "gamma" is not configured (configured: alpha, beta`},
	}
	for i, tt := range tests {
		d, perr := s.Send(context.Background(), channelproto.SendParams{To: tt.to, Channel: tt.channel, Message: "m", IdempotencyKey: "r" + string(rune('a'+i))})
		if tt.want == "" {
			if perr == nil || perr.Code != protocol.ErrNotLinked || !strings.Contains(perr.Message, tt.msg) {
				t.Errorf("send to %q via %q: %+v, %v; want NOT_LINKED %q", tt.to, tt.channel, d, perr, tt.msg)
			}
			continue
		}
		if perr != nil || d.Channel != tt.want {
			t.Errorf("send to %q via %q: %+v, %v; want channel %s", tt.to, tt.channel, d, perr, tt.want)
		}
	}
	// Hot reload: make beta the default; "elsewhere" now goes there.
	s.Apply(serviceConfig(map[string]config.WebhookChannelConfig{
		"alpha": hook(a.srv.URL, "sa", "ops"), "beta": hook(b.srv.URL, "sb")}, "beta"))
	if d, perr := s.Send(context.Background(), channelproto.SendParams{To: "elsewhere", Message: "m", IdempotencyKey: "after-reload"}); perr != nil || d.Channel != "beta" {
		t.Errorf("after reload: %+v, %v; want channel beta (the default)", d, perr)
	}
	if n := len(b.requests()); n != 2 {
		t.Errorf("beta got %d messages, want 2", n)
	}
}

func TestSendParamsChecked(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	s := newService(t, serviceConfig(nil, ""), st)
	defer s.Close()
	for _, tt := range []struct {
		p    channelproto.SendParams
		want string
	}{
		{channelproto.SendParams{Message: "m", IdempotencyKey: "k"}, "at /to: required"},
		{channelproto.SendParams{To: "ops", IdempotencyKey: "k"}, "at /message: required"},
		{channelproto.SendParams{To: "ops", Message: "m"}, "at /idempotencyKey: required"},
		{channelproto.SendParams{To: "ops", Message: strings.Repeat("x", MaxMessageLength+1), IdempotencyKey: "k"}, "at /message: 262145 bytes is over the limit of 262144"},
	} {
		_, perr := s.Send(context.Background(), tt.p)
		if perr == nil || perr.Code != protocol.ErrInvalidRequest || !strings.Contains(perr.Message, "invalid send params: "+tt.want) {
			t.Errorf("%+v: %v, want INVALID_REQUEST %q", tt.p.To, perr, tt.want)
		}
	}
	// No channels at all: NOT_LINKED.
	_, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "k"})
	if perr == nil || perr.Code != protocol.ErrNotLinked || !strings.Contains(perr.Message, "configured: none") {
		t.Errorf("no channels: %v, want NOT_LINKED", perr)
	}
}

func TestStatusAndFailureRecorded(t *testing.T) {
	bad := newReceiver(t, "sec", http.StatusInternalServerError)
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	disabled := hook("http://127.0.0.1:1/", "sec")
	disabled.Disabled = true
	s := newService(t, serviceConfig(map[string]config.WebhookChannelConfig{"bad": hook(bad.srv.URL, "sec", "ops"), "off": disabled}, "bad"), st)
	defer s.Close()
	_, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "fail-1"})
	if perr == nil || perr.Code != protocol.ErrUnavailable || !perr.Retryable || !strings.Contains(perr.Message, "failed after 3 attempts") {
		t.Fatalf("send to a failing receiver: %v", perr)
	}
	if _, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Channel: "off", Message: "m", IdempotencyKey: "k2"}); perr == nil || perr.Code != protocol.ErrNotLinked {
		t.Errorf("send via a disabled channel: %v, want NOT_LINKED", perr)
	}
	stat := s.Status(context.Background(), true, "")
	if len(stat.Channels) != 2 || stat.Default != "bad" {
		t.Fatalf("status: %+v", stat)
	}
	b, off := stat.Channels[0], stat.Channels[1]
	if !b.Linked || !b.Default || b.LastError == nil || b.LastError.IdempotencyKey != "fail-1" || b.LastDelivery != nil {
		t.Errorf("bad channel status: %+v", b)
	}
	if b.Probe == nil || !b.Probe.OK || b.Probe.Status != http.StatusMethodNotAllowed {
		t.Errorf("bad channel probe: %+v", b.Probe)
	}
	if off.Linked || !strings.Contains(off.Reason, "disabled") || off.Probe == nil || off.Probe.OK {
		t.Errorf("disabled channel status: %+v probe %+v", off, off.Probe)
	}
	// health says what channels.status says of each channel's state.
	hc := s.HealthComponent().(channelproto.HealthChannels)
	if len(hc.Channels) != 2 || hc.Channels[0].State != b.State || hc.Channels[1].State != channelproto.StateDisabled || off.State != channelproto.StateDisabled {
		t.Errorf("states: status %q/%q, health %+v; want ready/disabled in both", b.State, off.State, hc.Channels)
	}
	// Asking for one channel reports (and probes) that one only.
	one := s.Status(context.Background(), true, "off")
	if len(one.Channels) != 1 || one.Channels[0].Name != "off" || one.Channels[0].Probe == nil {
		t.Errorf("status of channel off: %+v", one.Channels)
	}
	if none := s.Status(context.Background(), false, "nope"); len(none.Channels) != 0 {
		t.Errorf("status of an unknown channel: %+v", none.Channels)
	}
	// A failed key may be sent again (nothing was delivered).
	bad.mu.Lock()
	bad.statuses = []int{200}
	bad.mu.Unlock()
	if d, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "fail-1"}); perr != nil || d.Deduplicated {
		t.Errorf("resend of a failed key: %+v, %v; want a fresh delivery", d, perr)
	}
}

func TestSweepRemovesExpired(t *testing.T) {
	rcv := newReceiver(t, "sec", 200)
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	s := newService(t, serviceConfig(map[string]config.WebhookChannelConfig{"ops": hook(rcv.srv.URL, "sec", "ops")}, ""), st)
	defer s.Close()
	if _, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "old"}); perr != nil {
		t.Fatal(perr)
	}
	if n, err := s.sweep(time.Now()); err != nil || n != 0 {
		t.Fatalf("sweep now: %d, %v; want nothing removed", n, err)
	}
	if n, err := s.sweep(time.Now().Add(25 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep after the TTL: %d, %v; want 1 removed", n, err)
	}
	if d, perr := s.Send(context.Background(), channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "old"}); perr != nil || d.Deduplicated {
		t.Errorf("send after expiry: %+v, %v; want a new delivery", d, perr)
	}
}
