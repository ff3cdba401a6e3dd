package openclawops

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/debugger"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/internal/browsertest"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// spy runs in the page before OpenClaw's Control UI: it records every
// frame the UI sends and receives, so failures can say what went wrong.
const spy = `(() => {
  window.__sent = [];
  window.__recv = [];
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (ev) => {
        try { const f = JSON.parse(ev.data); window.__recv.push(f); if (window.__recv.length > 2000) window.__recv.shift(); } catch {}
      });
    }
    send(data) {
      try { window.__sent.push(JSON.parse(data)); } catch {}
      return super.send(data);
    }
  };
})();`

// serveControlUI serves OpenClaw's built Control UI (its dist/control-ui)
// on a loopback port, as a single-page app: unknown paths get index.html.
func serveControlUI(t *testing.T, dir string) string {
	t.Helper()
	fs := http.FileServer(http.Dir(dir))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(dir, filepath.FromSlash(filepath.Clean("/"+r.URL.Path)))
		if st, err := os.Stat(p); err != nil || st.IsDir() && r.URL.Path != "/" {
			r.URL.Path = "/"
		}
		fs.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

type tab struct {
	t   *testing.T
	ctx context.Context
}

func evalIn[T any](p *tab, expr string) T {
	p.t.Helper()
	return browsertest.Eval[T](p.t, p.ctx, expr, p.state)
}

// wait polls a JavaScript condition until it is truthy, for at most d
// (evaluation errors while the page navigates count as not yet).
func (p *tab) wait(what, expr string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		select {
		case <-tick.C:
		case <-p.ctx.Done():
			p.t.Fatalf("waiting for %s: %v", what, p.ctx.Err())
		}
	}
	p.t.Fatalf("waiting for %s (%s): not within %s (last error %v)\n%s", what, expr, d, lastErr, p.state())
}

// state describes what the UI did: the methods it called and the errors
// it got.
func (p *tab) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
	  sent: (window.__sent || []).map(f => f.method),
	  errors: (window.__recv || []).filter(f => f.type === "res" && !f.ok).map(f => ({id: f.id, error: f.error})),
	  text: document.body.innerText.slice(0, 1500)})`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return "page state: " + s
}

// screenshot saves a PNG of the page into dir and returns its path.
func (p *tab) screenshot(dir, name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot: %v", err)
		return ""
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return ""
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

type pageLog struct {
	exceptions *browsertest.Exceptions
	mu         sync.Mutex
	console    []string
}

func (l *pageLog) watch(ctx context.Context) {
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ConsoleAPICalled) {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			l.mu.Lock()
			l.console = append(l.console, string(ev.Type)+": "+strings.Join(parts, " "))
			l.mu.Unlock()
		}
	}()
	l.exceptions = browsertest.WatchExceptions(ctx)
}

func startBrowser(t *testing.T, bg context.Context) *tab {
	ctx := browsertest.Start(t, bg, 1280, 900)
	browsertest.Inject(t, ctx, spy)
	return &tab{t: t, ctx: ctx}
}

// controlUI is OpenClaw's Control UI in headless Chromium, on a gatewayd
// of its own.
type controlUI struct {
	*tab
	g         *gatewaydtest.Gateway
	url       string // where the test serves the UI
	artifacts string // where screenshots go
	log       *pageLog
	bg        context.Context
}

// openControlUI serves OpenClaw's Control UI from its dist, starts
// gatewayd and Chromium, and opens page (one path segment: the pages load
// ./assets from the root) pointed at gatewayd with ?gatewayUrl=, accepting
// the UI's prompt to switch to it. When the test fails, a screenshot
// named failShot goes to the artifacts.
func openControlUI(t *testing.T, page, failShot string) *controlUI {
	tl := openclaw(t)
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	bg, stop := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(stop)
	uiURL := serveControlUI(t, filepath.Join(tl.Dist, "control-ui"))
	cfg := fmt.Sprintf(`{"gateway":{"controlUi":{"allowedOrigins":[%q]}}}`, uiURL)
	ui := &controlUI{g: gatewaydtest.StartT(t, gatewaydtest.Options{Config: cfg}), url: uiURL, artifacts: t.TempDir(), log: &pageLog{}, bg: bg}
	ui.tab = startBrowser(t, bg)
	ui.log.watch(ui.ctx)
	if d := os.Getenv("OPENCLAW_E2E_ARTIFACTS"); d != "" {
		ui.artifacts = d // kept after the test, to look at
	}
	t.Cleanup(func() {
		if t.Failed() {
			ui.screenshot(ui.artifacts, failShot)
		}
	})
	if os.Getenv("OPENCLAW_E2E_DEBUG") != "" {
		debugExceptions(t, ui.tab)
	}
	u := uiURL + page + "?gatewayUrl=" + ui.g.URL + "#token=" + ui.g.Token
	if _, err := chromedp.Run(ui.ctx, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	// The UI asks before it switches to a gateway a link names.
	ui.wait("the switch-gateway prompt", `[...document.querySelectorAll("button")].some(b => b.textContent.trim().startsWith("Switch to"))`, 90*time.Second)
	evalIn[bool](ui.tab, `(() => { [...document.querySelectorAll("button")].find(b => b.textContent.trim().startsWith("Switch to")).click(); return true })()`)
	return ui
}

// TestControlUIChat: OpenClaw's own Control UI, served from its dist by
// the test and pointed at the real gatewayd with ?gatewayUrl=, connects,
// sends a chat message, renders the echo agent's streamed reply, and after
// a reload shows both in the history.
func TestControlUIChat(t *testing.T) {
	ui := openControlUI(t, "/chat", "openclaw-control-ui-failure.png")
	p, uiURL, artifacts, plog := ui.tab, ui.url, ui.artifacts, ui.log

	composer := `textarea[aria-label="Chat composer"]`
	p.wait("the chat composer", `document.querySelector('`+composer+`') && !document.querySelector('`+composer+`').disabled`, 90*time.Second)
	msg := fmt.Sprintf("ping from the control ui %d", time.Now().UnixNano())
	if _, err := chromedp.Run(p.ctx, chromedp.SendKeys(composer, msg)); err != nil {
		t.Fatal(err)
	}
	evalIn[bool](p, `(() => { document.querySelector(".chat-send-btn--send").click(); return true })()`)
	js, _ := json.Marshal(msg)
	rendered := `[...document.querySelectorAll(".chat-group.user")].some(e => e.textContent.includes(` + string(js) + `)) &&
	  [...document.querySelectorAll(".chat-group.assistant")].some(e => e.textContent.includes(` + string(js) + `))`
	p.wait("the echo agent's reply rendered", rendered, 60*time.Second)
	if n := evalIn[int](p, `window.__sent.filter(f => f.method === "chat.send").length`); n != 1 {
		t.Errorf("the UI sent chat.send %d times, want once", n)
	}
	// The reply streamed as chat events to the end (final).
	final := evalIn[bool](p, `window.__recv.some(f => f.type === "event" && f.event === "chat" && f.payload.state === "final" &&
	  f.payload.message.content[0].text === `+string(js)+`)`)
	if !final {
		t.Errorf("no final chat event with the reply\n%s", p.state())
	}
	p.screenshot(artifacts, "openclaw-control-ui-chat.png")

	// After a new page load the conversation comes back from gatewayd's
	// transcript (chat.startup / chat.history).
	if _, err := chromedp.Run(p.ctx, chromedp.Navigate(uiURL+"/chat")); err != nil {
		t.Fatal(err)
	}
	p.wait("the history after a reload", rendered, 90*time.Second)
	if n := evalIn[int](p, `window.__sent.filter(f => f.method === "chat.send").length`); n != 0 {
		t.Errorf("after the reload the UI sent chat.send %d times, want none (the history is gatewayd's)", n)
	}
	p.screenshot(artifacts, "openclaw-control-ui-history.png")

	// Every method the UI called that gatewayd implements succeeded (the
	// others answer unknown method, which the UI tolerates).
	failed := evalIn[string](p, `(() => {
	  const byId = new Map(window.__sent.map(f => [f.id, f.method]));
	  const hello = window.__recv.find(f => f.type === "res" && f.ok && f.payload && f.payload.type === "hello-ok");
	  const ours = new Set(hello ? hello.payload.features.methods : []);
	  return JSON.stringify(window.__recv.filter(f => f.type === "res" && !f.ok && ours.has(byId.get(f.id)))
	    .map(f => byId.get(f.id) + ": " + f.error.message));
	})()`)
	if failed != "[]" {
		t.Errorf("calls the UI made to methods gatewayd implements failed: %s", failed)
	}
	for _, m := range []string{"agents.list", "sessions.list", "chat.startup", "sessions.messages.subscribe"} {
		if n := evalIn[int](p, `window.__sent.filter(f => f.method === "`+m+`").length`); n == 0 {
			t.Errorf("the UI did not call %s after the page load", m)
		}
	}
	for _, e := range plog.exceptions.List() {
		t.Logf("page exception: %s", e)
	}
}

// debugExceptions (OPENCLAW_E2E_DEBUG=1) logs every exception the page
// throws, caught or not, with where: OpenClaw's UI shows some caught ones
// only as a short message.
func debugExceptions(t *testing.T, p *tab) {
	go func() {
		for ev, err := range chromedp.Events(p.ctx, debugger.Paused) {
			if err != nil {
				return
			}
			var fr []string
			for _, f := range ev.CallFrames[:min(4, len(ev.CallFrames))] {
				fr = append(fr, fmt.Sprintf("%s@%s:%d:%d", f.FunctionName, f.Location.ScriptID, f.Location.LineNumber+1, *f.Location.ColumnNumber+1))
			}
			t.Logf("paused %s %s: %s", ev.Reason, string(ev.Data), strings.Join(fr, " < "))
			go func() { _, _ = chromedp.Call(p.ctx, debugger.Resume, debugger.ResumeParams{}) }()
		}
	}()
	if _, err := chromedp.Call(p.ctx, debugger.Enable, debugger.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(p.ctx, debugger.SetPauseOnExceptions, debugger.SetPauseOnExceptionsParams{State: "caught"}); err != nil {
		t.Fatal(err)
	}
}

// uiPresence is a JavaScript expression for the presence list OpenClaw's
// Control UI holds on its devices page (the openclaw-devices-page
// element's presence, which the UI replaces with each presence event's
// payload.presence): the entries it shows as online (not reason
// "disconnect"), as sorted instanceIds; null until the page has a list.
const uiPresence = `(() => {
  const deep = (root) => {
    const el = root.querySelector("openclaw-devices-page");
    if (el) return el;
    for (const e of root.querySelectorAll("*")) if (e.shadowRoot) { const f = deep(e.shadowRoot); if (f) return f; }
    return null;
  };
  const page = deep(document);
  if (!page || !Array.isArray(page.presence) || page.presence.length === 0) return null;
  return JSON.stringify(page.presence.filter(e => e.reason !== "disconnect").map(e => e.instanceId || "?").sort());
})()`

// TestControlUIPresence: OpenClaw's Control UI, on its devices page, keeps
// a presence list that matches the connected clients (gatewayd's
// system-presence) while a second client connects and then goes. The UI
// puts each presence event's list in place of its own, so an event that
// carried only the changed entries made it show just those.
func TestControlUIPresence(t *testing.T) {
	// The devices page, by its one-segment alias /nodes.
	ui := openControlUI(t, "/nodes", "openclaw-control-ui-presence-failure.png")
	p, g, bg := ui.tab, ui.g, ui.bg
	p.wait("the devices page's presence list", uiPresence+` !== null`, 90*time.Second)

	// A cli-mode client reads what gatewayd lists; it is not listed itself.
	cli := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token})
	const second = "e2e-presence-second"
	// matches waits until the UI's list is gatewayd's, with or without
	// the second client.
	matches := func(what string, withSecond bool) {
		t.Helper()
		var ui, want string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
			var list []struct {
				InstanceID string `json:"instanceId"`
			}
			if err := cli.CallInto(bg, "system-presence", nil, &list); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, 0, len(list))
			for _, e := range list {
				ids = append(ids, cmp.Or(e.InstanceID, "?"))
			}
			slices.Sort(ids)
			b, _ := json.Marshal(ids)
			want = string(b)
			ui = evalIn[string](p, `String(`+uiPresence+`)`)
			if ui == want && slices.Contains(ids, second) == withSecond {
				return
			}
		}
		t.Fatalf("%s: the Control UI's presence list is %s, gatewayd's %s\n%s", what, ui, want, p.state())
	}
	matches("before the second client", false)

	c, err := client.Dial(bg, client.Options{URL: g.URL, Token: g.Token, InstanceID: second, DisplayName: second,
		ClientID: "gateway-client", Mode: "backend", Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	matches("the second client connected", true)
	c.Close()
	matches("the second client gone", false)
	// The list came from presence events: the last one the UI got is it.
	last := evalIn[string](p, `JSON.stringify(window.__recv.filter(f => f.type === "event" && f.event === "presence").at(-1).payload.presence
	  .map(e => e.instanceId || "?").sort())`)
	if ui := evalIn[string](p, uiPresence); last != ui {
		t.Errorf("the last presence event lists %s, the UI %s", last, ui)
	}
}
