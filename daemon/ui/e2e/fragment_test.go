package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatewayd/gatewayd/daemon/internal/browsertest"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestControlUISignsInFromFragment opens the URL `gatewayctl dashboard`
// prints (http://HOST:PORT/#token=TOKEN) in headless Chromium: the UI signs
// in with the fragment's token without a paste, keeps it in localStorage,
// and removes it from the address bar and the history entry, keeping any
// other fragment parameters.
func TestControlUISignsInFromFragment(t *testing.T) {
	browsertest.Chromium(t) // skips now, before a gateway is started, when there is no browser
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	bin, err := gatewaydtest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bg, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	g, err := gatewaydtest.Start(bg, bin, gatewaydtest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()
	p, blog := openTab(t, bg)
	defer func() {
		if t.Failed() {
			p.screenshot("gatewayd-ui-fragment-failure.png")
		}
	}()

	p.do("load the dashboard URL", chromedp.Navigate(g.HTTPURL+"/?view=1#token="+url.QueryEscape(g.Token)+"&tab=logs"))
	p.wait("connected without a paste", `document.body.dataset.state === "connected"`)
	if got := eval[string](p, `JSON.parse(localStorage.getItem("gatewayd.controlUi.auth")).secret`); got != g.Token {
		t.Errorf("token in localStorage = %q, want the fragment's", got)
	}
	loc := eval[string](p, `location.href`)
	if strings.Contains(loc, g.Token) || strings.Contains(loc, "token=") {
		t.Errorf("the address bar still holds the token: %s", loc)
	}
	if want := g.HTTPURL + "/?view=1#tab=logs"; loc != want {
		t.Errorf("address after sign-in = %s, want %s (query and other fragment parameters kept)", loc, want)
	}
	if n := eval[int](p, `history.length`); n != 2 { // about:blank, then the page: replaced, not pushed
		t.Errorf("history.length = %d, want 2: the token entry must be replaced, not followed by a new one", n)
	}

	// A wrong token in the fragment is refused like a wrong paste.
	p.do("load a URL with a wrong token", chromedp.Navigate(g.HTTPURL+"/#token=not-the-token"))
	p.wait("auth failure", `document.body.dataset.state === "auth-failed"`)
	if loc := eval[string](p, `location.href`); strings.Contains(loc, "not-the-token") {
		t.Errorf("the address bar still holds the wrong token: %s", loc)
	}
	blog.check(t)
}
