package channels_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// tta is a running telegram-test-api, the independent Bot API emulator
// (npm telegram-test-api 4.x, installed by .ci/setup-telegram-test-api).
type tta struct {
	cmd  *exec.Cmd
	port int
	URL  string
	done chan struct{}
	out  *bytes.Buffer
}

func ttaPaths(t *testing.T) (node, module string) {
	t.Helper()
	module = filepath.Join(toolsDir(), "telegram-test-api", "node_modules", "telegram-test-api")
	if _, err := os.Stat(filepath.Join(module, "package.json")); err != nil {
		t.Skipf("SKIPPING: telegram-test-api is not installed at %s (run .ci/setup-telegram-test-api; it needs npm)", module)
	}
	node = filepath.Join(toolsDir(), "node24", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		p, lerr := exec.LookPath("node")
		if lerr != nil {
			t.Skipf("SKIPPING: no node to run telegram-test-api (run .ci/setup-openclaw for node 24, or apt-get install nodejs)")
		}
		node = p
	}
	return node, module
}

func startTTA(t *testing.T, port int) *tta {
	t.Helper()
	node, module := ttaPaths(t)
	if port == 0 {
		p, err := gatewaydtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		port = p
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "telegram-test-api.js"))
	s := &tta{port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{}), out: &bytes.Buffer{}}
	s.cmd = exec.Command(node, script, module, fmt.Sprint(port))
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start telegram-test-api: %v", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("telegram-test-api exited before listening: %s", s.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("telegram-test-api did not listen within 30s: %s", s.out)
	}
	return s
}

// stop ends the emulator (by its PID) and waits for it.
func (s *tta) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *tta) post(t *testing.T, path string, body any, out any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(s.URL+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("telegram-test-api %s: %v", path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("telegram-test-api %s: %v", path, err)
		}
	}
}

// userSays sends text as Telegram user id in a private chat (chat id =
// user id), or in group chat when group is not 0.
func (s *tta) userSays(t *testing.T, token string, user int64, group int64, text string) {
	t.Helper()
	chat := map[string]any{"id": user, "type": "private", "first_name": fmt.Sprint("user", user)}
	if group != 0 {
		chat = map[string]any{"id": group, "type": "group", "title": "team"}
	}
	msg := map[string]any{"botToken": token, "date": time.Now().Unix(), "text": text, "chat": chat,
		"from": map[string]any{"id": user, "is_bot": false, "first_name": fmt.Sprint("user", user), "username": fmt.Sprint("user", user)}}
	var res struct {
		OK bool `json:"ok"`
	}
	s.post(t, "/sendMessage", msg, &res)
	if !res.OK {
		t.Fatalf("telegram-test-api did not take the user's message")
	}
}

// botSaid returns the bot's messages to chat not read before.
func (s *tta) botSaid(t *testing.T, token string, chat int64) []string {
	t.Helper()
	var res struct {
		Result []struct {
			Message struct {
				Text string `json:"text"`
			} `json:"message"`
		} `json:"result"`
	}
	s.post(t, "/getUpdates", map[string]any{"token": token, "chatId": chat}, &res)
	var out []string
	for _, r := range res.Result {
		out = append(out, r.Message.Text)
	}
	return out
}

// waitBot collects the bot's messages to chat until n arrived (bounded).
func (s *tta) waitBot(t *testing.T, g *gatewaydtest.Gateway, token string, chat int64, n int, within time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(within)
	for len(got) < n {
		got = append(got, s.botSaid(t, token, chat)...)
		if len(got) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat %d: the bot said %q within %s, want %d messages\n%s", chat, got, within, n, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling the emulator; bounded by deadline
	}
	return got
}

func telegramConfig(apiURL, tokenFile string, extra map[string]any) map[string]any {
	tg := map[string]any{"tokenFile": tokenFile, "apiBaseUrl": apiURL, "allowFrom": []string{"1001"},
		"reconnect": map[string]any{"initialMs": 100, "maxMs": 1000}}
	for k, v := range extra {
		tg[k] = v
	}
	return map[string]any{"channels": map[string]any{"telegram": map[string]any{"tg": tg}}}
}

// TestTelegramEmulator runs the real gatewayd against telegram-test-api:
// a user's message reaches the echo agent and its answer comes back in the
// chat, long answers are split, an unknown sender is paired with
// `gatewayctl pairing approve CODE`, group messages need a mention,
// `gatewayctl message send` delivers, and an emulator outage shows in
// channels.status, STATUS= and health, sends fail NOT_LINKED, and the
// channel reconnects within the backoff bound.
func TestTelegramEmulator(t *testing.T) {
	emu := startTTA(t, 0)
	dir := t.TempDir()
	const token = "4242:test-bot-token"
	tokFile := writeSecret(t, dir, "telegram.token", token)
	writeConfig(t, dir, telegramConfig(emu.URL, tokFile, map[string]any{"groupPolicy": "open"}))
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dialAll(t, g)

	st := waitState(t, g, c, "tg", channelproto.StateConnected, 15*time.Second)
	if st.Link.Account != "@TestNameBot" || st.Kind != channels.KindTelegram || !st.Linked || st.DMPolicy != "pairing" {
		t.Errorf("status: %+v link %+v", st, st.Link)
	}
	if out, err := gatewayctl(t, g, "channels", "status", "--probe"); err != nil || !strings.Contains(out, "tg") || !strings.Contains(out, "connected") || !strings.Contains(out, "@TestNameBot") {
		t.Errorf("gatewayctl channels status --probe: %v\n%s", err, out)
	}

	// An allowed user: the echo agent's answer arrives in the chat.
	emu.userSays(t, token, 1001, 0, "hello agent")
	if got := emu.waitBot(t, g, token, 1001, 1, 20*time.Second); got[0] != "hello agent" {
		t.Errorf("answer: %q, want the echo of the message", got)
	}
	// A long answer is split at Telegram's 4096 characters.
	long := strings.Repeat("word ", 1000) + "end"
	emu.userSays(t, token, 1001, 0, long)
	parts := emu.waitBot(t, g, token, 1001, 2, 20*time.Second)
	if len(parts) != 2 || strings.Join(parts, "") != long || len([]rune(parts[0])) > channels.TelegramMaxText {
		t.Errorf("long answer came as %d parts of %d and %d characters; want 2 that join to the message", len(parts), len(parts[0]), len(parts[len(parts)-1]))
	}

	// An unknown user gets a pairing code and nothing reaches the agent
	// until an operator approves it.
	emu.userSays(t, token, 2002, 0, "let me in")
	got := emu.waitBot(t, g, token, 2002, 1, 20*time.Second)
	code := pairingCode(got[0])
	if code == "" {
		t.Fatalf("unknown sender's answer %q has no pairing code", got[0])
	}
	emu.userSays(t, token, 2002, 0, "not yet")
	waitPairingSeenAgain(t, g, c, "tg")
	out, err := gatewayctl(t, g, "pairing", "list")
	if err != nil || !strings.Contains(out, "CHANNEL REQUEST") || !strings.Contains(out, "2002") || strings.Contains(out, code) {
		t.Errorf("gatewayctl pairing list (the request listed, the code not): %v\n%s", err, out)
	}
	if out, err := gatewayctl(t, g, "pairing", "approve", strings.ToLower(code)); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("gatewayctl pairing approve %s: %v\n%s", code, err, out)
	}
	emu.userSays(t, token, 2002, 0, "now I am in")
	if got := emu.waitBot(t, g, token, 2002, 1, 20*time.Second); got[0] != "now I am in" {
		t.Errorf("after approval the first answer is %q, want the echo of the message after approval (the one before is not answered)", got)
	}
	if out, err := gatewayctl(t, g, "pairing", "approve", code); err == nil {
		t.Errorf("approving a resolved code again succeeded:\n%s", out)
	}
	// Another unknown user is rejected: the request is gone, no answers.
	emu.userSays(t, token, 2003, 0, "me too")
	rejected := pairingCode(emu.waitBot(t, g, token, 2003, 1, 20*time.Second)[0])
	if out, err := gatewayctl(t, g, "pairing", "reject", rejected); err != nil || !strings.Contains(out, "rejected") || !strings.Contains(out, "2003") {
		t.Errorf("gatewayctl pairing reject: %v\n%s", err, out)
	}
	if l, err := pairingList(t, c); err != nil || len(l.Requests) != 0 {
		t.Errorf("pending requests after reject: %+v %v", l, err)
	}

	// Group chats: only messages that mention the bot.
	emu.userSays(t, token, 1001, -500, "nobody asked you")
	emu.userSays(t, token, 1001, -500, "@TestNameBot status please")
	if got := emu.waitBot(t, g, token, -500, 1, 20*time.Second); got[0] != "status please" {
		t.Errorf("group answer %q, want only the mentioning message's echo", got)
	}

	// gatewayctl message send through the channel.
	if out, err := gatewayctl(t, g, "message", "send", "--channel", "tg", "--target", "1001", "--message", "deploy done"); err != nil || !strings.Contains(out, "via tg (telegram") {
		t.Errorf("gatewayctl message send: %v\n%s", err, out)
	}
	if got := emu.waitBot(t, g, token, 1001, 1, 10*time.Second); got[0] != "deploy done" {
		t.Errorf("sent message: %q", got)
	}

	// Outage: the emulator stops. The channel says so everywhere; the
	// gateway keeps serving; sends are NOT_LINKED with the reason.
	emu.stop()
	st = waitState(t, g, c, "tg", channelproto.StateDisconnected, 15*time.Second)
	if st.Linked || !strings.Contains(st.Link.Error, "unreachable") {
		t.Errorf("status while the emulator is down: linked %v, link %+v", st.Linked, st.Link)
	}
	if line := statusText(t, c); !strings.Contains(line, "tg disconnected") {
		t.Errorf("status line while the emulator is down: %q", line)
	}
	if h := healthChannels(t, c); h.OK || len(h.Channels) != 1 || h.Channels[0].State != channelproto.StateDisconnected || h.Channels[0].Error == "" {
		t.Errorf("health channels while the emulator is down: %+v", h)
	}
	out, err = gatewayctl(t, g, "message", "send", "--channel", "tg", "--target", "1001", "--message", "lost?")
	if err == nil || !strings.Contains(out, "NOT_LINKED") || !strings.Contains(out, "not connected") {
		t.Errorf("message send while disconnected: %v\n%s", err, out)
	}
	if strings.Contains(g.Output(), token) {
		t.Errorf("the bot token appears in the gateway's output")
	}

	// The emulator comes back on the same address: the channel reconnects
	// within the backoff bound (maxMs 1 s) and answers what arrives.
	emu = startTTA(t, emu.port)
	back := time.Now()
	emu.userSays(t, token, 1001, 0, "after the outage")
	waitState(t, g, c, "tg", channelproto.StateConnected, 5*time.Second)
	if took := time.Since(back); took > 3*time.Second {
		t.Errorf("reconnected %s after the emulator came back; the backoff bound is 1 s", took)
	}
	if got := emu.waitBot(t, g, token, 1001, 1, 20*time.Second); got[0] != "after the outage" {
		t.Errorf("answer after the outage: %q", got)
	}
}

// TestTelegramCrashExactlyOnce kills gatewayd with SIGKILL while the
// messages the emulator handed over (acknowledged: getUpdates took them)
// wait for their answers; after the restart each gets exactly one.
func TestTelegramCrashExactlyOnce(t *testing.T) {
	emu := startTTA(t, 0)
	dir := t.TempDir()
	const token = "4343:crash-bot-token"
	tokFile := writeSecret(t, dir, "telegram.token", token)
	cfg := telegramConfig(emu.URL, tokFile, map[string]any{"dmPolicy": "open"})
	// A slow echo agent: the answers take a while, so the kill finds the
	// messages received and not yet answered.
	cfg["agents"] = map[string]any{"list": map[string]any{"main": map[string]any{"echo": map[string]any{"delayMs": 400}}}}
	writeConfig(t, dir, cfg)
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dialAll(t, g)
	waitState(t, g, c, "tg", channelproto.StateConnected, 15*time.Second)

	const users = 6
	const per = 3
	for i := range per {
		for u := range users {
			emu.userSays(t, token, int64(3000+u), 0, fmt.Sprintf("u%d-m%d", u, i))
		}
	}
	// Wait until the gateway took them all (they are in its inbox), then
	// kill it before it could answer them all.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := channelStatus(t, c, "tg")
		if st.Inbox >= users*per-users { // at most one per chat may be answered already
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not take the messages: inbox %d\n%s", st.Inbox, g.Output())
		}
		time.Sleep(20 * time.Millisecond) // polling channels.status; bounded by deadline
	}
	_ = g.Cmd.Process.Kill()
	<-g.Exited()
	c.Close()

	g = gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c = dialAll(t, g)
	for u := range users {
		got := emu.waitBot(t, g, token, int64(3000+u), per, 60*time.Second)
		for i := range per {
			want := fmt.Sprintf("u%d-m%d", u, i)
			if n := strings.Count(strings.Join(got, "\n")+"\n", want+"\n"); n != 1 {
				t.Errorf("chat %d: %q answered %d times (answers %q), want exactly once", 3000+u, want, n, got)
			}
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for channelStatus(t, c, "tg").Inbox > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // the inbox drains; bounded by deadline
	}
	for u := range users {
		if extra := emu.botSaid(t, token, int64(3000+u)); len(extra) > 0 {
			t.Errorf("chat %d: answers beyond one per message: %q", 3000+u, extra)
		}
	}
}

// TestTelegramHotReload adds, reconfigures and removes a Telegram channel
// by editing the config file of a running gateway.
func TestTelegramHotReload(t *testing.T) {
	emu := startTTA(t, 0)
	dir := t.TempDir()
	const token = "4444:reload-bot-token"
	tokFile := writeSecret(t, dir, "telegram.token", token)
	writeConfig(t, dir, map[string]any{})
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Dir: dir})
	c := dialAll(t, g)

	// Added: it connects and answers an allowed user.
	writeConfig(t, dir, telegramConfig(emu.URL, tokFile, nil))
	waitState(t, g, c, "tg", channelproto.StateConnected, 20*time.Second)
	emu.userSays(t, token, 1001, 0, "added")
	if got := emu.waitBot(t, g, token, 1001, 1, 20*time.Second); got[0] != "added" {
		t.Errorf("answer after adding: %q", got)
	}

	// Reconfigured: dmPolicy open lets an unknown user in without pairing,
	// and the connection stays.
	since := channelStatus(t, c, "tg").Link.Since
	writeConfig(t, dir, telegramConfig(emu.URL, tokFile, map[string]any{"dmPolicy": "open"}))
	deadline := time.Now().Add(20 * time.Second)
	for channelStatus(t, c, "tg").DMPolicy != "open" {
		if time.Now().After(deadline) {
			t.Fatalf("dmPolicy did not change to open\n%s", g.Output())
		}
		time.Sleep(50 * time.Millisecond) // waiting for the file watcher; bounded by deadline
	}
	if st := waitState(t, g, c, "tg", channelproto.StateConnected, 20*time.Second); st.Link.Since != since {
		t.Errorf("a dmPolicy change reconnected the bot (connected since %d, was %d)", st.Link.Since, since)
	}
	emu.userSays(t, token, 7007, 0, "open now")
	if got := emu.waitBot(t, g, token, 7007, 1, 20*time.Second); got[0] != "open now" {
		t.Errorf("answer to an unknown user under dmPolicy open: %q", got)
	}

	// A new token file path (same token) is a connection change: reconnect.
	tok2 := writeSecret(t, dir, "telegram2.token", token)
	writeConfig(t, dir, telegramConfig(emu.URL, tok2, map[string]any{"dmPolicy": "open"}))
	deadline = time.Now().Add(20 * time.Second)
	for {
		st, _ := findChannel(t, c, "tg")
		if st.State == channelproto.StateConnected && st.Link.Since != since {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changing tokenFile did not reconnect: %+v\n%s", st.Link, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // waiting for the file watcher; bounded by deadline
	}

	// Removed: channels.status no longer lists it and send is NOT_LINKED.
	writeConfig(t, dir, map[string]any{})
	deadline = time.Now().Add(20 * time.Second)
	for {
		var st channelproto.StatusPayload
		if err := c.CallInto(t.Context(), "channels.status", channelproto.StatusParams{}, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Channels) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed channel is still listed: %+v", st.Channels)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the file watcher; bounded by deadline
	}
	if _, perr := send(t, c, channelproto.SendParams{Channel: "tg", To: "1001", Message: "gone?", IdempotencyKey: "r-1"}); perr == nil || perr.Code != "NOT_LINKED" {
		t.Errorf("send through a removed channel: %v, want NOT_LINKED", perr)
	}
}
