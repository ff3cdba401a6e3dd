// Package browsertest starts Debian's Chromium headless for end-to-end
// tests of web UIs served on loopback, with the flags this machine needs
// (no sandbox as root, no background networking).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

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
