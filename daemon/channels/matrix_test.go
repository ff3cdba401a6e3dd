package channels_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// dendrite is a real Matrix homeserver (github.com/matrix-org/dendrite
// v0.13.8, built by .ci/setup-dendrite) on loopback with its SQLite
// configuration, in a directory of the test's.
type dendrite struct {
	bin, dir, config string
	port             int
	URL              string
	mu               sync.Mutex
	cmd              *exec.Cmd
	done             chan struct{}
	out              *bytes.Buffer
}

func dendriteBin(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(toolsDir(), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPING: Dendrite's %s is not installed at %s (run .ci/setup-dendrite; it builds dendrite v0.13.8 with go and gcc)", name, p)
	}
	return p
}

func newDendrite(t *testing.T) *dendrite {
	t.Helper()
	d := &dendrite{bin: dendriteBin(t, "dendrite"), dir: t.TempDir()}
	port, err := gatewaydtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	d.port, d.URL = port, fmt.Sprintf("http://127.0.0.1:%d", port)
	run := func(name string, args ...string) {
		cmd := exec.Command(dendriteBin(t, name), args...)
		cmd.Dir = d.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("generate-keys", "--private-key", filepath.Join(d.dir, "matrix_key.pem"))
	cmd := exec.Command(dendriteBin(t, "generate-config"), "-ci", "-dir", d.dir, "-server", "localhost")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("generate-config: %v", err)
	}
	cfg := strings.ReplaceAll(string(raw), "level: trace", "level: warn")
	cfg = strings.ReplaceAll(cfg, "private_key: matrix_key.pem", "private_key: "+filepath.Join(d.dir, "matrix_key.pem"))
	d.config = filepath.Join(d.dir, "dendrite.yaml")
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	t.Cleanup(d.stop)
	return d
}

func (d *dendrite) start(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	d.out = &bytes.Buffer{}
	d.cmd = exec.Command(d.bin, "--config", d.config, "--http-bind-address", fmt.Sprintf("127.0.0.1:%d", d.port),
		"--https-bind-address", "", "--really-enable-open-registration")
	d.cmd.Dir = d.dir
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.done = make(chan struct{})
	if err := d.cmd.Start(); err != nil {
		d.mu.Unlock()
		t.Fatalf("start dendrite: %v", err)
	}
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(d.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("dendrite exited before it served: %s", d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dendrite did not serve within 90s: %s", d.output())
		}
		time.Sleep(100 * time.Millisecond) // waiting for the homeserver; bounded by deadline
	}
}

func (d *dendrite) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.out.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// stop ends the homeserver (by PID) and waits for it.
func (d *dendrite) stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// register creates an account with Dendrite's create-account tool (shared
// secret registration) and returns a logged-in mautrix client for it.
func (d *dendrite) register(t *testing.T, user, password string) *mautrix.Client {
	t.Helper()
	cmd := exec.Command(dendriteBin(t, "create-account"), "-config", d.config, "-username", user, "-password", password, "-url", d.URL)
	cmd.Dir = d.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-account %s: %v\n%s", user, err, out)
	}
	cli, err := mautrix.NewClient(d.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password: password, StoreCredentials: true}); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return cli
}

func mctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// openRoom creates a room with invitees (a DM when direct), has the
// joiners (invited test users) join, and waits until all invitees joined.
func openRoom(t *testing.T, g *gatewaydtest.Gateway, cli *mautrix.Client, direct bool, invite []id.UserID, joiners ...*mautrix.Client) id.RoomID {
	t.Helper()
	ctx, cancel := mctx()
	defer cancel()
	req := &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: invite, IsDirect: direct}
	if direct {
		req.Preset = "trusted_private_chat"
	}
	resp, err := cli.CreateRoom(ctx, req)
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	for _, j := range joiners {
		join(t, j, resp.RoomID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := cli.JoinedMembers(ctx, resp.RoomID)
		if err == nil && len(m.Joined) == len(invite)+1 {
			return resp.RoomID
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: invitees %v did not join within 30s (%v)\n%s", resp.RoomID, invite, err, g.Output())
		}
		time.Sleep(100 * time.Millisecond) // waiting for the joins; bounded by deadline
	}
}

func join(t *testing.T, cli *mautrix.Client, room id.RoomID) {
	t.Helper()
	ctx, cancel := mctx()
	defer cancel()
	if _, err := cli.JoinRoomByID(ctx, room); err != nil {
		t.Fatalf("join %s: %v", room, err)
	}
}

func say(t *testing.T, cli *mautrix.Client, room id.RoomID, text string) {
	t.Helper()
	ctx, cancel := mctx()
	defer cancel()
	if _, err := cli.SendText(ctx, room, text); err != nil {
		t.Fatalf("send to %s: %v", room, err)
	}
}

// said returns the m.text bodies from sender in room, oldest first.
func said(t *testing.T, cli *mautrix.Client, room id.RoomID, sender id.UserID) []string {
	t.Helper()
	ctx, cancel := mctx()
	defer cancel()
	resp, err := cli.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatalf("messages of %s: %v", room, err)
	}
	var out []string
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		ev := resp.Chunk[i]
		if ev.Type != event.EventMessage || ev.Sender != sender {
			continue
		}
		_ = ev.Content.ParseRaw(ev.Type)
		if m := ev.Content.AsMessage(); m != nil {
			out = append(out, m.Body)
		}
	}
	return out
}

// waitSaid waits until sender said at least n messages in room.
func waitSaid(t *testing.T, g *gatewaydtest.Gateway, cli *mautrix.Client, room id.RoomID, sender id.UserID, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := said(t, cli, room, sender)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: %s said %q within %s, want %d messages\n%s", room, sender, got, within, n, g.Output())
		}
		time.Sleep(100 * time.Millisecond) // polling the room; bounded by deadline
	}
}

func matrixConfig(hs, passwordFile string, extra map[string]any) map[string]any {
	mx := map[string]any{"homeserver": hs, "userId": "@gw:localhost", "passwordFile": passwordFile,
		"groupPolicy": "open", "reconnect": map[string]any{"initialMs": 100, "maxMs": 1000}}
	for k, v := range extra {
		mx[k] = v
	}
	return map[string]any{"channels": map[string]any{"matrix": map[string]any{"mx": mx}}}
}

// TestMatrixDendrite runs the real gatewayd against a real Dendrite: the
// bot logs in with a password once (the token kept 0600), a human's DM
// gets the echo agent's answer, an unknown user is paired with gatewayctl,
// an unmentioned group message is ignored, message send delivers, and a
// homeserver outage shows everywhere and heals within the backoff bound.
func TestMatrixDendrite(t *testing.T) {
	hs := newDendrite(t)
	hs.register(t, "gw", "gw-password-1")
	alice := hs.register(t, "alice", "alice-password-1")
	eve := hs.register(t, "eve", "eve-password-1")
	const bot = id.UserID("@gw:localhost")

	dir := t.TempDir()
	pw := writeSecret(t, dir, "matrix.password", "gw-password-1")
	writeConfig(t, dir, matrixConfig(hs.URL, pw, map[string]any{"allowFrom": []string{"@alice:localhost"}}))
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dialAll(t, g)
	st := waitState(t, g, c, "mx", channelproto.StateConnected, 30*time.Second)
	if st.Link.Account != string(bot) || st.Kind != channels.KindMatrix {
		t.Errorf("status: %+v link %+v", st, st.Link)
	}
	sess := filepath.Join(g.StateDir, "channels", "mx.matrix-session.json")
	if fi, err := os.Stat(sess); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the password login's token file %s: %v, mode %v; want 0600", sess, err, fi)
	}
	if out, err := gatewayctl(t, g, "channels", "status", "--probe"); err != nil || !strings.Contains(out, "connected as @gw:localhost") || !strings.Contains(out, "probe ok (@gw:localhost") {
		t.Errorf("gatewayctl channels status --probe: %v\n%s", err, out)
	}

	// Alice (allowed) DMs the bot: it joins by invite and answers.
	dm := openRoom(t, g, alice, true, []id.UserID{bot})
	say(t, alice, dm, "hello matrix")
	if got := waitSaid(t, g, alice, dm, bot, 1, 30*time.Second); got[0] != "hello matrix" {
		t.Errorf("answer in the DM: %q", got)
	}

	// Eve is unknown: a pairing code, nothing for the agent until approved.
	eveDM := openRoom(t, g, eve, true, []id.UserID{bot})
	say(t, eve, eveDM, "can I talk?")
	got := waitSaid(t, g, eve, eveDM, bot, 1, 30*time.Second)
	code := pairingCode(got[0])
	if code == "" {
		t.Fatalf("eve's answer %q has no pairing code", got[0])
	}
	say(t, eve, eveDM, "still waiting")
	waitPairingSeenAgain(t, g, c, "mx")
	if out, err := gatewayctl(t, g, "pairing", "approve", code); err != nil || !strings.Contains(out, "@eve:localhost") {
		t.Fatalf("gatewayctl pairing approve: %v\n%s", err, out)
	}
	say(t, eve, eveDM, "approved now")
	if got := waitSaid(t, g, eve, eveDM, bot, 2, 30*time.Second); len(got) != 2 || got[1] != "approved now" {
		t.Errorf("eve after approval: %q, want the code and then only the echo of the message after approval", got)
	}

	// A group room: only a message that mentions the bot is answered.
	group := openRoom(t, g, alice, false, []id.UserID{bot, "@eve:localhost"}, eve)
	say(t, alice, group, "just chatting, no bot here")
	say(t, alice, group, "gw: are you there?")
	if got := waitSaid(t, g, alice, group, bot, 1, 30*time.Second); got[0] != "gw: are you there?" {
		t.Errorf("group answers: %q, want only the mention's", got)
	}

	// gatewayctl message send to a room.
	if out, err := gatewayctl(t, g, "message", "send", "--channel", "mx", "--target", string(dm), "--message", "deploy done"); err != nil {
		t.Errorf("gatewayctl message send: %v\n%s", err, out)
	}
	if got := waitSaid(t, g, alice, dm, bot, 2, 20*time.Second); got[len(got)-1] != "deploy done" {
		t.Errorf("sent message: %q", got)
	}

	// Outage: the homeserver stops.
	hs.stop()
	st = waitState(t, g, c, "mx", channelproto.StateDisconnected, 60*time.Second)
	if st.Link.Error == "" {
		t.Errorf("no error while the homeserver is down: %+v", st.Link)
	}
	if line := statusText(t, c); !strings.Contains(line, "mx disconnected") {
		t.Errorf("status line while the homeserver is down: %q", line)
	}
	if h := healthChannels(t, c); h.OK || h.Channels[0].State != channelproto.StateDisconnected {
		t.Errorf("health while the homeserver is down: %+v", h)
	}
	out, err := gatewayctl(t, g, "message", "send", "--channel", "mx", "--target", string(dm), "--message", "lost?")
	if err == nil || !strings.Contains(out, "NOT_LINKED") {
		t.Errorf("message send while disconnected: %v\n%s", err, out)
	}
	hs.start(t)
	back := time.Now()
	say(t, alice, dm, "after the outage")
	waitState(t, g, c, "mx", channelproto.StateConnected, 10*time.Second)
	if took := time.Since(back); took > 5*time.Second {
		t.Errorf("reconnected %s after the homeserver came back; the backoff bound is 1 s", took)
	}
	if got := waitSaid(t, g, alice, dm, bot, 3, 30*time.Second); got[len(got)-1] != "after the outage" {
		t.Errorf("answer after the outage: %q", got)
	}
	if strings.Contains(g.Output(), "gw-password-1") {
		t.Errorf("the bot's password appears in the gateway's output")
	}
}

// TestMatrixCrashExactlyOnce kills gatewayd with SIGKILL while a user's
// messages arrive; after the restart every message the homeserver
// acknowledged gets exactly one answer.
func TestMatrixCrashExactlyOnce(t *testing.T) {
	hs := newDendrite(t)
	hs.register(t, "gw", "gw-password-1")
	alice := hs.register(t, "alice", "alice-password-1")
	const bot = id.UserID("@gw:localhost")
	dir := t.TempDir()
	pw := writeSecret(t, dir, "matrix.password", "gw-password-1")
	writeConfig(t, dir, matrixConfig(hs.URL, pw, map[string]any{"dmPolicy": "open"}))
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dialAll(t, g)
	waitState(t, g, c, "mx", channelproto.StateConnected, 30*time.Second)
	dm := openRoom(t, g, alice, true, []id.UserID{bot})

	const n = 30
	for i := range n {
		say(t, alice, dm, fmt.Sprintf("m-%02d", i))
		if i == n/3 {
			_ = g.Cmd.Process.Kill()
			<-g.Exited()
		}
	}
	g = gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	waitSaid(t, g, alice, dm, bot, n, 60*time.Second)
	// A moment more for a duplicate to show up, then count.
	c = dialAll(t, g)
	deadline := time.Now().Add(10 * time.Second)
	for channelStatus(t, c, "mx").Inbox > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the inbox drains; bounded by deadline
	}
	got := said(t, alice, dm, bot)
	count := map[string]int{}
	for _, s := range got {
		count[s]++
	}
	for i := range n {
		if k := fmt.Sprintf("m-%02d", i); count[k] != 1 {
			t.Errorf("%s answered %d times, want exactly once", k, count[k])
		}
	}
	if len(got) != n {
		t.Errorf("%d answers for %d messages: %q", len(got), n, got)
	}
}
