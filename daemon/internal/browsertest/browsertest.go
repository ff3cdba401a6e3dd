// Package browsertest starts Debian's Chromium headless for end-to-end
// tests of web UIs served on loopback, with the flags this machine needs
// (no sandbox as root, no background networking).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium finds the browser: $CHROMIUM, else Debian's /usr/bin/chromium;
// without one it skips tb with the reason and the fix.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Skip("SKIPPING the browser test: no chromium (/usr/bin/chromium or $CHROMIUM); " +
		"install Debian's chromium package (.ci/setup installs it)")
	return ""
}

// Start launches a headless Chromium (Chromium(tb)) with a fresh profile
// and returns a tab's context; the browser ends with tb or parent.
func Start(tb testing.TB, parent context.Context, width, height int) context.Context {
	tb.Helper()
	chrome := Chromium(tb)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(width, height),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	tb.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(alloc)
	tb.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this first call
		tb.Fatalf("start chromium %s: %v", chrome, err)
	}
	return ctx
}

// Inject runs src in every page of the tab ctx before the page's own
// scripts (CDP-injected scripts are not subject to the page's CSP): a spy
// on the page's WebSockets, say.
func Inject(tb testing.TB, ctx context.Context, src string) {
	tb.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		tb.Fatalf("inject a script into the page: %v", err)
	}
}

// Eval evaluates the JavaScript expr in the tab ctx, bounded by 10 s. A
// failure fails tb with state(), the test's description of the page.
func Eval[T any](tb testing.TB, ctx context.Context, expr string, state func() string) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("evaluate %s: %v\n%s", expr, err, state())
	}
	return v
}

// Exceptions collects the uncaught exceptions of a tab's pages.
type Exceptions struct {
	mu   sync.Mutex
	list []string
}

// WatchExceptions starts collecting the uncaught exceptions of the tab
// ctx's pages, as "text: description (url:line)", until ctx ends.
func WatchExceptions(ctx context.Context) *Exceptions {
	e := &Exceptions{}
	evs := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range evs {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += ": " + d.Exception.Description
			}
			e.mu.Lock()
			e.list = append(e.list, fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber+1))
			e.mu.Unlock()
		}
	}()
	return e
}

// List returns the exceptions so far.
func (e *Exceptions) List() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}
