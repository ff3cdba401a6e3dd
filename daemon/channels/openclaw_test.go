package channels_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestMessageActionAndOpenClawStatus: OpenClaw's message.action sends
// through the channel it names (action send; other actions are refused as
// not supported), and channels.status takes OpenClaw's params and answers
// its fields.
func TestMessageActionAndOpenClawStatus(t *testing.T) {
	recv := newSink(t, "oc-secret", http.StatusOK)
	dir := t.TempDir()
	writeConfig(t, dir, map[string]any{"channels": map[string]any{"webhooks": map[string]any{
		"telegram": map[string]any{"url": recv.srv.URL + "/hook", "secret": "oc-secret", "targets": []string{"*"}},
	}}})
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dial(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var res map[string]any
	err := c.CallInto(ctx, "message.action", map[string]any{"channel": "telegram", "action": "send",
		"params": map[string]any{"target": "12345", "message": "from message.action", "dryRun": false}, "idempotencyKey": "ma-1",
		"senderIsOwner": true, "conversationReadOrigin": "direct-operator"}, &res)
	if err != nil {
		t.Fatal(err)
	}
	if n, bad := recv.count(); n != 1 || bad != 0 {
		t.Fatalf("receiver got %d deliveries (%d badly signed), want 1", n, bad)
	}
	recv.mu.Lock()
	got := recv.bodies[0]
	recv.mu.Unlock()
	if got.Message != "from message.action" || got.To != "12345" || got.Channel != "telegram" || res["ok"] != true {
		t.Errorf("delivered %+v, answered %v", got, res)
	}

	err = c.CallInto(ctx, "message.action", map[string]any{"channel": "telegram", "action": "react", "params": map[string]any{}, "idempotencyKey": "ma-2"}, nil)
	var ce *client.CallError
	if !errors.As(err, &ce) || ce.Err.Code != protocol.ErrInvalidRequest || ce.Err.DetailCode() != "ACTION_NOT_SUPPORTED" {
		t.Errorf("message.action react: %v, want ACTION_NOT_SUPPORTED", err)
	}

	var st channelproto.StatusPayload
	if err := c.CallInto(ctx, "channels.status", map[string]any{"probe": true, "timeoutMs": 10000}, &st); err != nil {
		t.Fatal(err)
	}
	acc := st.ChannelAccounts["telegram"]
	if len(st.ChannelOrder) != 1 || st.ChannelOrder[0] != "telegram" || len(acc) != 1 || acc[0].AccountID != "default" ||
		!acc[0].Linked || acc[0].Probe == nil || acc[0].LastOutboundAt == nil || st.ChannelDefaultAccountID["telegram"] != "default" {
		t.Errorf("channels.status OpenClaw fields %+v", st.OpenClawStatus)
	}
	if err := c.CallInto(ctx, "channels.status", map[string]any{"channel": "nope"}, &st); err != nil || len(st.Channels) != 0 || len(st.ChannelOrder) != 0 {
		t.Errorf("channels.status for an unknown channel: %+v %v", st, err)
	}
}
