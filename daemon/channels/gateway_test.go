package channels_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// sink is a webhook receiver on loopback that verifies every signature
// with its own HMAC computation.
type sink struct {
	secret string
	status int
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []channels.WebhookPayload
	badSig int
}

func newSink(t *testing.T, secret string, status int) *sink {
	s := &sink{secret: secret, status: status}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(s.secret))
		mac.Write(body)
		var p channels.WebhookPayload
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
		if !hmac.Equal([]byte("sha256="+hex.EncodeToString(mac.Sum(nil))), []byte(r.Header.Get("X-Gateway-Signature"))) {
			s.badSig++
		}
		s.bodies = append(s.bodies, p)
		s.mu.Unlock()
		w.WriteHeader(s.status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) count() (n, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies), s.badSig
}

func writeConfig(t *testing.T, dir string, cfg any) {
	t.Helper()
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	gatewaydtest.WriteConfigT(t, gatewaydtest.ConfigPath(dir), string(raw))
}

func start(t *testing.T, dir string) *gatewaydtest.Gateway {
	t.Helper()
	return gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
}

// dial connects an operator (read and write) to g.
func dial(t *testing.T, g *gatewaydtest.Gateway) *client.Conn {
	t.Helper()
	return gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite}})
}

func send(t *testing.T, c *client.Conn, p channelproto.SendParams) (channelproto.Delivery, *protocol.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d channelproto.Delivery
	err := c.CallInto(ctx, "send", p, &d)
	var ce *client.CallError
	if errors.As(err, &ce) {
		return d, ce.Err
	}
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return d, nil
}

func TestGatewaySendWebhook(t *testing.T) {
	good := newSink(t, "good-secret", http.StatusOK)
	failing := newSink(t, "flaky-secret", http.StatusInternalServerError)
	dir := t.TempDir()
	retry := map[string]int{"maxAttempts": 3, "initialBackoffMs": 20, "maxBackoffMs": 50, "maxElapsedMs": 10000}
	writeConfig(t, dir, map[string]any{"channels": map[string]any{"webhooks": map[string]any{
		"ops":   map[string]any{"url": good.srv.URL + "/hook", "secret": "good-secret", "targets": []string{"ops"}, "retry": retry},
		"flaky": map[string]any{"url": failing.srv.URL, "secretEnv": "FLAKY_SECRET", "targets": []string{"flaky-*"}, "retry": retry},
	}}})
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir, Env: []string{"FLAKY_SECRET=flaky-secret"}})
	c := dial(t, g)

	d, perr := send(t, c, channelproto.SendParams{To: "ops", Message: "deploy done", IdempotencyKey: "deploy-42"})
	if perr != nil {
		t.Fatalf("send: %v\n%s", perr, g.Output())
	}
	if d.Channel != "ops" || d.Kind != "webhook" || d.Attempts != 1 || d.Status != 200 || d.Deduplicated {
		t.Errorf("delivery: %+v", d)
	}
	if n, bad := good.count(); n != 1 || bad != 0 {
		t.Fatalf("receiver got %d messages, %d with a bad signature; want 1 and 0", n, bad)
	}
	if p := good.bodies[0]; p.Message != "deploy done" || p.To != "ops" || p.IdempotencyKey != "deploy-42" {
		t.Errorf("receiver payload: %+v", p)
	}
	// The same key again: not delivered.
	if d2, perr := send(t, c, channelproto.SendParams{To: "ops", Message: "deploy done", IdempotencyKey: "deploy-42"}); perr != nil || !d2.Deduplicated {
		t.Errorf("repeat: %+v, %v; want deduplicated", d2, perr)
	}

	// A receiver that keeps failing: retried, then a clear error.
	_, perr = send(t, c, channelproto.SendParams{To: "flaky-1", Message: "m", IdempotencyKey: "f-1"})
	if perr == nil || perr.Code != protocol.ErrUnavailable || !strings.Contains(perr.Message, "channel flaky: delivery to http://127.0.0.1:") ||
		!strings.Contains(perr.Message, "failed after 3 attempts") || !strings.Contains(perr.Message, "500 Internal Server Error") {
		t.Errorf("send to a failing receiver: %v", perr)
	}
	if n, bad := failing.count(); n != 3 || bad != 0 {
		t.Errorf("failing receiver got %d requests (%d badly signed), want 3 and 0", n, bad)
	}

	// No channel for the target.
	_, perr = send(t, c, channelproto.SendParams{To: "nobody", Message: "m", IdempotencyKey: "n-1"})
	if perr == nil || perr.Code != protocol.ErrNotLinked {
		t.Errorf("send to an unrouted target: %v, want NOT_LINKED", perr)
	}

	// channels.status reports the last delivery and error, and probes.
	var st channelproto.StatusPayload
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.CallInto(ctx, "channels.status", channelproto.StatusParams{Probe: true}, &st); err != nil {
		t.Fatal(err)
	}
	byName := map[string]channelproto.ChannelStatus{}
	for _, ch := range st.Channels {
		byName[ch.Name] = ch
	}
	if ch := byName["ops"]; !ch.Linked || ch.LastDelivery == nil || ch.LastDelivery.IdempotencyKey != "deploy-42" || ch.Probe == nil || !ch.Probe.OK {
		t.Errorf("ops status: %+v", ch)
	}
	if ch := byName["flaky"]; !ch.Linked || ch.LastError == nil || !strings.Contains(ch.LastError.Message, "500") {
		t.Errorf("flaky status: %+v", ch)
	}

	// Restart the gateway: the idempotency record survives.
	c.Close()
	if err := g.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, g.Output())
	}
	g = start(t, dir)
	c = dial(t, g)
	if d3, perr := send(t, c, channelproto.SendParams{To: "ops", Message: "deploy done", IdempotencyKey: "deploy-42"}); perr != nil || !d3.Deduplicated || d3.DeliveryID != d.DeliveryID {
		t.Errorf("repeat after restart: %+v, %v; want the first delivery, deduplicated", d3, perr)
	}
	if n, _ := good.count(); n != 1 {
		t.Errorf("receiver got %d messages for one idempotency key across a restart, want 1", n)
	}
}

func TestGatewayChannelsHotReload(t *testing.T) {
	rcv := newSink(t, "reload-secret-1", http.StatusNoContent)
	dir := t.TempDir()
	writeConfig(t, dir, map[string]any{})
	g := start(t, dir)
	c := dial(t, g)
	if _, perr := send(t, c, channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "before"}); perr == nil || perr.Code != protocol.ErrNotLinked {
		t.Fatalf("send with no channels: %v, want NOT_LINKED", perr)
	}
	writeConfig(t, dir, map[string]any{"channels": map[string]any{"default": "late", "webhooks": map[string]any{
		"late": map[string]any{"url": rcv.srv.URL, "secret": "reload-secret-1"}}}})
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, perr := send(t, c, channelproto.SendParams{To: "ops", Message: "m", IdempotencyKey: "after"})
		if perr == nil {
			if d.Channel != "late" {
				t.Errorf("delivery after reload: %+v", d)
			}
			break
		}
		if perr.Code != protocol.ErrNotLinked || time.Now().After(deadline) {
			t.Fatalf("send after adding a channel: %v\n%s", perr, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // waiting for the file watcher; bounded by deadline
	}
	if n, bad := rcv.count(); n != 1 || bad != 0 {
		t.Errorf("receiver got %d (%d badly signed), want 1", n, bad)
	}
}
