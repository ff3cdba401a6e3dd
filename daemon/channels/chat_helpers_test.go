package channels_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// toolsDir is where .ci/setup installs the test servers.
func toolsDir() string {
	if d := os.Getenv("GATEWAYD_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "gatewayd-tools")
}

var gatewayctlBin struct {
	once sync.Once
	path string
	err  error
}

// gatewayctl runs the real gatewayctl (built once) against g.
func gatewayctl(t *testing.T, g *gatewaydtest.Gateway, args ...string) (string, error) {
	t.Helper()
	gatewayctlBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "gatewayctl-")
		if err != nil {
			gatewayctlBin.err = err
			return
		}
		gatewayctlBin.path = filepath.Join(dir, "gatewayctl")
		out, err := exec.Command("go", "build", "-o", gatewayctlBin.path, "github.com/gatewayd/gatewayd/cmd/gatewayctl").CombinedOutput()
		if err != nil {
			gatewayctlBin.err = err
			t.Logf("go build gatewayctl: %s", out)
		}
	})
	if gatewayctlBin.err != nil {
		t.Fatalf("building gatewayctl: %v", gatewayctlBin.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayctlBin.path, append([]string{"--url", g.URL, "--token", g.Token}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// dialAll connects with every operator scope (pairing included).
func dialAll(t *testing.T, g *gatewaydtest.Gateway) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token,
		Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopePairing, protocol.ScopeAdmin}})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, g.Output())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func channelStatus(t *testing.T, c *client.Conn, name string) channelproto.ChannelStatus {
	t.Helper()
	st, ok := findChannel(t, c, name)
	if !ok {
		t.Fatalf("channels.status has no channel %q", name)
	}
	return st
}

// findChannel is channel name's channels.status entry, if it is listed.
func findChannel(t *testing.T, c *client.Conn, name string) (channelproto.ChannelStatus, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st channelproto.StatusPayload
	if err := c.CallInto(ctx, "channels.status", channelproto.StatusParams{}, &st); err != nil {
		t.Fatalf("channels.status: %v", err)
	}
	for _, ch := range st.Channels {
		if ch.Name == name {
			return ch, true
		}
	}
	return channelproto.ChannelStatus{}, false
}

// waitState waits (bounded) until the channel's state is want.
func waitState(t *testing.T, g *gatewaydtest.Gateway, c *client.Conn, name, want string, within time.Duration) channelproto.ChannelStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, _ := findChannel(t, c, name)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s: state %q after %s, want %q (link %+v)\n%s", name, st.State, within, want, st.Link, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling channels.status; bounded by deadline
	}
}

// statusText is the status method's one-line status (what STATUS= says).
func statusText(t *testing.T, c *client.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st struct {
		StatusText string `json:"statusText"`
	}
	if err := c.CallInto(ctx, "status", nil, &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.StatusText
}

func healthChannels(t *testing.T, c *client.Conn) channelproto.HealthChannels {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var h struct {
		OK         bool `json:"ok"`
		Components struct {
			Channels channelproto.HealthChannels `json:"channels"`
		} `json:"components"`
	}
	if err := c.CallInto(ctx, "health", nil, &h); err != nil {
		t.Fatalf("health: %v", err)
	}
	if !h.OK {
		t.Errorf("health ok is false: the gateway must keep serving while a channel is down")
	}
	return h.Components.Channels
}

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pairingCode finds the code in the bot's pairing answer.
func pairingCode(text string) string {
	const marker = "pairing code is "
	i := strings.Index(text, marker)
	if i < 0 || len(text) < i+len(marker)+8 {
		return ""
	}
	return text[i+len(marker) : i+len(marker)+8]
}

// waitInboxEmpty waits until the channel answered (or dropped) every
// message it took.
func waitInboxEmpty(t *testing.T, g *gatewaydtest.Gateway, c *client.Conn, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for channelStatus(t, c, name).Inbox > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("channel %s still has unanswered messages after %s\n%s", name, within, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling channels.status; bounded by deadline
	}
}

func pairingList(t *testing.T, c *client.Conn) (*channelproto.PairingList, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var l channelproto.PairingList
	err := c.CallInto(ctx, channelproto.MethodPairingList, nil, &l)
	return &l, err
}

// waitPairingSeenAgain waits until the one pending pairing request was
// refreshed by a later message of its sender and that message left the
// inbox unanswered: then an approval cannot overtake it.
func waitPairingSeenAgain(t *testing.T, g *gatewaydtest.Gateway, c *client.Conn, channel string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := pairingList(t, c)
		if err == nil && len(l.Requests) == 1 && l.Requests[0].LastSeenAt != l.Requests[0].CreatedAt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not see the sender's second message: %+v %v\n%s", l, err, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling channels.pairing.list; bounded by deadline
	}
	waitInboxEmpty(t, g, c, channel, 20*time.Second)
}
