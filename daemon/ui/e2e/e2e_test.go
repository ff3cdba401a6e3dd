package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/internal/browsertest"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// spy runs in the page before the UI's own module (CDP-injected scripts are
// not subject to the page's CSP). It records the frames the UI sends and
// the agent events it receives, and keeps the sockets so the test can
// inject a frame.
const spy = `(() => {
  window.__sent = [];
  window.__agentEvents = [];
  window.__sockets = [];
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener("message", (ev) => {
        try { const f = JSON.parse(ev.data); if (f.type === "event" && f.event === "agent") window.__agentEvents.push(f.payload); } catch {}
      });
    }
    send(data) {
      try { window.__sent.push(JSON.parse(data)); } catch {}
      return super.send(data);
    }
  };
})();`

// browserLog collects what the page reports: uncaught exceptions and
// console/log entries. CSP violations are log entries from the "security"
// source (or mention the Content Security Policy).
type browserLog struct {
	exceptions *browsertest.Exceptions
	mu         sync.Mutex
	entries    []string
	violations []string
}

func (b *browserLog) watch(ctx context.Context) {
	b.exceptions = browsertest.WatchExceptions(ctx)
	entries := chromedp.Events(ctx, log.EntryAdded)
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			e := ev.Entry
			line := fmt.Sprintf("[%s/%s] %s %s", e.Source, e.Level, e.Text, e.URL)
			b.mu.Lock()
			b.entries = append(b.entries, line)
			if string(e.Source) == "security" || strings.Contains(e.Text, "Content Security Policy") {
				b.violations = append(b.violations, line)
			}
			b.mu.Unlock()
		}
	}()
}

func (b *browserLog) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entries {
		t.Logf("browser: %s", e)
	}
	if exc := b.exceptions.List(); len(exc) > 0 {
		t.Errorf("uncaught exceptions in the page:\n%s", strings.Join(exc, "\n"))
	}
	if len(b.violations) > 0 {
		t.Errorf("Content-Security-Policy violations (the UI must work under its own strict policy):\n%s", strings.Join(b.violations, "\n"))
	}
}

// page wraps the browser tab with waits that report the UI's state on
// failure.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\n%s", what, err, p.state())
	}
}

func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	return browsertest.Eval[T](p.t, p.ctx, expr, p.state)
}

// wait polls a JavaScript condition until it is truthy (bounded: 20 s).
func (p *tab) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\n%s", what, expr, err, p.state())
	}
}

// state describes the UI for failure messages.
func (p *tab) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({state: document.body.dataset.state,
	  detail: document.getElementById("conn-detail")?.textContent, loginError: document.getElementById("login-error")?.textContent,
	  connId: document.body.dataset.connId, sent: (window.__sent || []).map(f => f.method)})`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return "page state: " + s
}

// set sets a form field's value as a user's edit does (input and change
// events fire).
func (p *tab) set(id, value string) {
	p.t.Helper()
	i, _ := json.Marshal(id)
	v, _ := json.Marshal(value)
	if !eval[bool](p, fmt.Sprintf(`(() => { const el = document.getElementById(%s); if (!el) return false; el.value = %s;
	  el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); return el.value === %s })()`, i, v, v)) {
		p.t.Fatalf("cannot set #%s to %s\n%s", id, value, p.state())
	}
}

func (p *tab) text(sel string) string {
	p.t.Helper()
	b, err := json.Marshal(sel)
	if err != nil {
		p.t.Fatal(err)
	}
	return eval[string](p, `document.querySelector(`+string(b)+`)?.textContent ?? ""`)
}

// screenshot saves a full-page PNG under $GATEWAYD_E2E_ARTIFACTS (default
// the system temp dir) and logs its path.
func (p *tab) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Errorf("screenshot: %v", err)
		return ""
	}
	dir := os.Getenv("GATEWAYD_E2E_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Errorf("screenshot dir: %v", err)
		return ""
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Errorf("save screenshot: %v", err)
		return ""
	}
	p.t.Logf("screenshot of the control UI saved to %s (%d bytes)", path, len(buf))
	return path
}

// sentSince counts requests of method the UI sent after index from.
func sentSince(p *tab, method string, from int) int {
	b, _ := json.Marshal(method)
	return eval[int](p, fmt.Sprintf(`window.__sent.slice(%d).filter(f => f.method === %s).length`, from, b))
}

func TestControlUIInChromium(t *testing.T) {
	browsertest.Chromium(t) // skips now, before a gateway is started, when there is no browser
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	bin, err := gatewaydtest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bg, stop := context.WithTimeout(context.Background(), 4*time.Minute)
	defer stop()
	g, err := gatewaydtest.Start(bg, bin, gatewaydtest.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()

	p, blog := openTab(t, bg)
	defer func() { // before the tab closes
		if t.Failed() {
			p.t = t
			p.screenshot("gatewayd-ui-e2e-failure.png")
			t.Logf("gatewayd output:\n%s", g.Output())
		}
	}()

	p.do("load the UI", chromedp.Navigate(g.HTTPURL+"/"))
	p.wait("the login form", `document.body.dataset.state === "login" && !document.getElementById("login").hidden`)

	t.Run("wrong token is refused", func(t *testing.T) {
		p.t = t
		p.do("paste a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.ID("connect-btn")))
		p.wait("auth failure", `document.body.dataset.state === "auth-failed"`)
		if msg := p.text("#login-error"); !strings.Contains(msg, "token mismatch") {
			t.Errorf("login error %q does not say the token is wrong", msg)
		}
	})

	t.Run("token pasted, authenticated", func(t *testing.T) {
		p.t = t
		p.do("paste the token", chromedp.SendKeys(chromedp.ID("token"), g.Token), chromedp.Click(chromedp.ID("connect-btn")))
		p.wait("connected", `document.body.dataset.state === "connected"`)
		if got := eval[string](p, `JSON.parse(localStorage.getItem("gatewayd.controlUi.auth")).secret`); got != g.Token {
			t.Errorf("token in localStorage = %q, want the pasted one", got)
		}
		var connect struct {
			MinProtocol, MaxProtocol int
			Client                   struct{ ID, Mode, InstanceID string }
			Role                     string
			Scopes                   []string
		}
		raw := eval[string](p, `JSON.stringify(window.__sent.filter(f => f.method === "connect").at(-1).params)`)
		if err := json.Unmarshal([]byte(raw), &connect); err != nil {
			t.Fatal(err)
		}
		if connect.Client.ID != "openclaw-control-ui" || connect.Client.Mode != "ui" || connect.Role != "operator" ||
			connect.MinProtocol != 4 || connect.MaxProtocol != 4 || connect.Client.InstanceID == "" {
			t.Errorf("connect params %s: want client openclaw-control-ui, mode ui, role operator, protocol 4, an instanceId", raw)
		}
	})

	t.Run("health", func(t *testing.T) {
		p.t = t
		p.wait("health ok", `document.getElementById("health-ok").textContent === "ok"`)
		if pid := p.text(`#health dd[data-key="pid"]`); pid != strconv.Itoa(g.Cmd.Process.Pid) {
			t.Errorf("health shows pid %q, the gateway is %d", pid, g.Cmd.Process.Pid)
		}
		if got := p.text(`#health dd[data-key="listeners"]`); !strings.Contains(got, fmt.Sprintf("127.0.0.1:%d", g.Port)) {
			t.Errorf("health listeners %q lack 127.0.0.1:%d", got, g.Port)
		}
	})

	t.Run("presence is live", func(t *testing.T) {
		p.t = t
		p.wait("the gateway's and this browser's presence", `document.querySelector('#presence tr[data-mode="gateway"]') && document.querySelector('#presence tr.self[data-mode="ui"]')`)
		before := eval[int](p, `window.__sent.length`)
		cctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		other, err := client.Dial(cctx, client.Options{URL: g.URL, Token: g.Token, DisplayName: "e2e-second-client", ClientID: "gateway-client", Mode: "backend"})
		if err != nil {
			t.Fatal(err)
		}
		p.wait("the second client in presence", `[...document.querySelectorAll("#presence td")].some(td => td.textContent.includes("e2e-second-client"))`)
		if err := other.Close(); err != nil {
			t.Logf("close second client: %v", err)
		}
		p.wait("the second client gone from presence", `![...document.querySelectorAll("#presence td")].some(td => td.textContent.includes("e2e-second-client"))`)
		if n := sentSince(p, "system-presence", before); n != 0 {
			t.Errorf("the UI polled system-presence %d times; presence must come live from presence events", n)
		}
	})

	methods := eval[[]string](p, `[...document.querySelectorAll("#console-method option")].map(o => o.value)`)
	t.Logf("gateway offers: %s", strings.Join(methods, " "))

	t.Run("log tail", func(t *testing.T) {
		p.t = t
		p.wait("log lines", `[...document.querySelectorAll("#logs .log")].some(l => l.textContent.includes("client connected"))`)
		first := sentSince(p, "logs.tail", 0)
		p.wait("log polling by cursor", fmt.Sprintf(`window.__sent.filter(f => f.method === "logs.tail").length > %d`, first+1))
		if eval[int](p, `window.__sent.filter(f => f.method === "logs.tail" && f.params && typeof f.params.cursor === "number").length`) == 0 {
			t.Error("logs.tail is not polled with a cursor")
		}
	})

	t.Run("method console", func(t *testing.T) {
		p.t = t
		p.set("console-method", "status")
		p.set("console-params", "")
		p.do("call status", chromedp.Click(chromedp.ID("console-send")))
		p.wait("status result", `document.getElementById("console-out").dataset.state === "ok"`)
		if out := p.text("#console-out"); !strings.Contains(out, `"statusText"`) || !strings.Contains(out, strconv.Itoa(g.Cmd.Process.Pid)) {
			t.Errorf("status output lacks statusText or the pid:\n%s", out)
		}
		p.set("console-method", "health")
		p.set("console-params", `{"bogus": 1}`)
		p.do("call health with bad params", chromedp.Click(chromedp.ID("console-send")))
		p.wait("an error result", `document.getElementById("console-out").dataset.state === "error"`)
		if out := p.text("#console-out"); !strings.Contains(out, "INVALID_REQUEST") {
			t.Errorf("bad params output lacks INVALID_REQUEST:\n%s", out)
		}
	})

	t.Run("nodes and pairing", func(t *testing.T) {
		p.t = t
		for _, c := range []struct{ box, method string }{{"nodes", "node.list"}, {"pairing", "node.pair.list"}} {
			if slices.Contains(methods, c.method) {
				p.wait(c.box+" rendered from "+c.method, fmt.Sprintf(`document.querySelector("#%s table, #%s p.muted:not(.unavailable)")`, c.box, c.box))
				if errText := p.text("#" + c.box + " .error"); errText != "" {
					t.Errorf("%s shows an error: %s", c.box, errText)
				}
			} else {
				t.Logf("%s is not offered (the nodes feature has not landed); checking the UI degrades", c.method)
				p.wait(c.box+" unavailable note", fmt.Sprintf(`document.querySelector('#%s .unavailable[data-method="%s"]')`, c.box, c.method))
			}
		}
	})

	t.Run("pairing approve and reject from the UI", func(t *testing.T) {
		p.t = t
		for _, m := range []string{"node.list", "node.pair.list", "node.pair.approve", "node.pair.reject"} {
			if !slices.Contains(methods, m) {
				t.Fatal("this gateway does not offer " + m + ": the nodes feature is missing from cmd/gatewayd/features.go")
			}
		}
		// request starts a node that is refused NOT_PAIRED and returns the
		// pending request's id.
		request := func(name string) (ed25519.PrivateKey, string) {
			key, err := client.NewDeviceKey()
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(bg, 10*time.Second)
			defer cancel()
			_, err = client.DialNode(cctx, client.Options{URL: g.URL, Token: g.Token, Device: key, DisplayName: name, Commands: []string{"echo"}})
			rid, ok := client.PairingRequired(err)
			if !ok || rid == "" {
				t.Fatalf("unpaired node %s: got %v, want NOT_PAIRED with a requestId", name, err)
			}
			return key, rid
		}
		key, rid := request("e2e-node-approved")
		row := fmt.Sprintf(`#pairing tr[data-request=%q]`, rid)
		p.wait("the pairing request in the UI", `document.querySelector('`+row+` button.approve')`)
		p.do("approve", chromedp.Click(chromedp.CSS(row+" button.approve")))
		p.wait("the request resolved", `!document.querySelector('`+row+`')`)
		node := fmt.Sprintf(`#nodes tr[data-node=%q]`, client.DeviceID(key))
		p.wait("the approved node listed as paired", `document.querySelector('`+node+`')?.textContent.includes("e2e-node-approved")`)

		cctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		nc, err := client.DialNode(cctx, client.Options{URL: g.URL, Token: g.Token, Device: key, DisplayName: "e2e-node-approved", Commands: []string{"echo"}})
		if err != nil {
			t.Fatalf("approved node connects: %v", err)
		}
		defer nc.Close()
		p.wait("the node shown connected", `[...document.querySelectorAll('`+node+` td')].map(td => td.textContent).join("|").includes("yes|yes")`)
		p.wait("the node in presence", `document.querySelector('#presence tr[data-mode="node"]')`)

		_, rid2 := request("e2e-node-rejected")
		row2 := fmt.Sprintf(`#pairing tr[data-request=%q]`, rid2)
		p.wait("the second request in the UI", `document.querySelector('`+row2+` button.reject')`)
		p.do("reject", chromedp.Click(chromedp.CSS(row2+" button.reject")))
		p.wait("the rejected request gone", `!document.querySelector('`+row2+`')`)
		if txt := p.text("#pairing .error"); txt != "" {
			t.Errorf("pairing shows an error: %s", txt)
		}
	})

	t.Run("agent chat streams", func(t *testing.T) {
		p.t = t
		if !slices.Contains(methods, "agent") {
			t.Fatal("this gateway does not offer the `agent` method: the agent feature is missing from cmd/gatewayd/features.go")
		}
		const msg = "hello from headless chromium"
		p.do("type and send a chat message", chromedp.SendKeys(chromedp.ID("chat-input"), msg), chromedp.Click(chromedp.ID("chat-send")))
		p.wait("the streamed answer to finish", `document.querySelector('#chat-log .msg.assistant[data-status="ok"]')`)
		answer := p.text(`#chat-log .msg.assistant[data-status="ok"]`)
		if !strings.Contains(answer, msg) {
			t.Errorf("echo answer %q does not contain the message %q", answer, msg)
		}
		deltas := eval[int](p, `window.__agentEvents.filter(e => e.stream === "assistant" && e.data && typeof e.data.delta === "string").length`)
		joined := eval[string](p, `window.__agentEvents.filter(e => e.stream === "assistant" && e.data && typeof e.data.delta === "string").map(e => e.data.delta).join("")`)
		if deltas == 0 || !strings.HasPrefix(answer, joined) || joined == "" {
			t.Errorf("the answer was not streamed: %d assistant deltas %q, bubble %q", deltas, joined, answer)
		}
	})

	t.Run("seq gap refreshes state", func(t *testing.T) {
		p.t = t
		before := eval[int](p, `window.__sent.length`)
		eval[bool](p, `(() => { const s = window.__sockets.at(-1);
		  s.dispatchEvent(new MessageEvent("message", {data: JSON.stringify({type: "event", event: "tick", payload: {ts: Date.now()}, seq: 1000000})}));
		  return true })()`)
		p.wait("health and system-presence after the gap", fmt.Sprintf(
			`window.__sent.slice(%d).some(f => f.method === "health") && window.__sent.slice(%d).some(f => f.method === "system-presence") && (document.body.dataset.refreshed || "").startsWith("missed events")`, before, before))
	})

	t.Run("in-process restart (SIGUSR1)", func(t *testing.T) {
		p.t = t
		oldConn := eval[string](p, `document.body.dataset.connId`)
		if err := g.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		p.wait("a new connection after the restart", fmt.Sprintf(`document.body.dataset.state === "connected" && document.body.dataset.connId && document.body.dataset.connId !== %q`, oldConn))
		p.wait("fresh health (restarts 1)", `document.querySelector('#health dd[data-key="restarts"]')?.textContent === "1"`)
		p.wait("own presence again", `document.querySelector('#presence tr.self[data-mode="ui"]')`)
		if n := eval[int](p, `document.querySelectorAll('#presence tr.self').length`); n != 1 {
			t.Errorf("%d presence rows for this browser after the reconnect, want 1", n)
		}
	})

	t.Run("stop and start on the same port", func(t *testing.T) {
		p.t = t
		oldPid := g.Cmd.Process.Pid
		if err := g.Stop(); err != nil {
			t.Fatalf("stop gatewayd: %v", err)
		}
		p.wait("the UI notices", `document.body.dataset.state === "reconnecting"`)
		g2, err := gatewaydtest.Start(bg, bin, gatewaydtest.Options{Dir: dir, Port: g.Port, Token: g.Token})
		if err != nil {
			t.Fatal(err)
		}
		g = g2
		p.wait("reconnected to the new process", fmt.Sprintf(`document.body.dataset.state === "connected" && document.querySelector('#health dd[data-key="pid"]')?.textContent === "%d"`, g.Cmd.Process.Pid))
		if g.Cmd.Process.Pid == oldPid {
			t.Fatal("the gateway kept its pid")
		}
		p.wait("presence from the new snapshot", `document.querySelector('#presence tr[data-mode="gateway"]') && document.querySelector('#presence tr.self')`)
	})

	t.Run("reload keeps the token", func(t *testing.T) {
		p.t = t
		p.do("reload", chromedp.Reload())
		p.wait("connected without pasting again", `document.body.dataset.state === "connected"`)
		if slices.Contains(methods, "chat.history") && slices.Contains(methods, "agent") {
			p.wait("the chat transcript restored from chat.history", `[...document.querySelectorAll("#chat-log .msg.assistant")].some(m => m.textContent.includes("hello from headless chromium"))`)
		}
	})

	p.t = t
	p.wait("log lines after the reload", `document.querySelectorAll("#logs .log").length > 0`)
	p.screenshot("gatewayd-ui-e2e.png")
	blog.check(t)
}

// openTab starts headless Chromium (stopped when bg ends or the test
// cleans up) with the WebSocket spy injected into every page, and returns
// its tab and the page's log.
func openTab(t *testing.T, bg context.Context) (*tab, *browserLog) {
	t.Helper()
	ctx := browsertest.Start(t, bg, 1280, 1100)
	blog := &browserLog{}
	blog.watch(ctx)
	browsertest.Inject(t, ctx, spy)
	return &tab{t: t, ctx: ctx}, blog
}
