package main

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (a *app) dashboardCommand() *ffcli.Command {
	fs := a.flagSet("dashboard")
	open := fs.Bool("open", false, "also open the URL in the default browser (xdg-open; open on macOS)")
	return &ffcli.Command{
		Name:       "dashboard",
		ShortUsage: "gatewayctl dashboard [--open] [--json]",
		ShortHelp:  "Print (or --open) the control UI's URL, signed in with this host's token.",
		LongHelp: `Connects once (which starts a socket-activated gateway and lets it write
its token), then prints the control UI's URL with the token in the
fragment, http://HOST:PORT/#token=TOKEN, as OpenClaw's dashboard command
does. The fragment never reaches the server or its logs; the UI signs in
with it, keeps the token in the browser's storage and removes it from the
address bar. The URL holds the secret: do not paste it where others read.

With a password instead of a token the URL has no fragment (sign in by
hand). --open also opens it with xdg-open (open on macOS).

Exit status 0 printed (and opened), 3 gateway unreachable, 4
authentication failed, 1 the browser could not be started.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("dashboard takes no arguments, got %q", args))
			}
			return a.dashboard(ctx, *open)
		},
	}
}

func (a *app) dashboard(ctx context.Context, open bool) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	// The connect checks the secret and, after an install, starts the
	// gateway, which writes the token the URL carries (see firststart.go).
	err = a.withConnTarget(ctx, t)
	if err != nil {
		return err
	}
	u, err := dashboardURL(t.URL, t.Token)
	if err != nil {
		return err
	}
	if a.g.json {
		if err := writeValue(a.stdout, map[string]any{"url": u, "secretSource": t.SecretSource, "token": t.Token != ""}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.stdout, u)
		if t.Token == "" {
			fmt.Fprintf(a.stderr, "gatewayctl: the gateway uses a password (%s): sign in with it on the page\n", t.SecretSource)
		}
	}
	if open {
		return openBrowser(ctx, u)
	}
	return nil
}

// withConnTarget dials t once and closes the connection.
func (a *app) withConnTarget(ctx context.Context, t *target) error {
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	c, err := a.dial(cctx, t, readScopes)
	if err != nil {
		return err
	}
	return c.Close()
}

// dashboardURL turns the gateway's ws(s):// URL into the UI's http(s)://
// URL, with the token in the fragment when there is one.
func dashboardURL(wsURL, token string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("gateway URL %q: %w", wsURL, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("gateway URL %q is not ws:// or wss://: pass --url ws://HOST:PORT", wsURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	s := u.String()
	if token != "" {
		s += "#token=" + url.QueryEscape(token)
	}
	return s, nil
}

// openBrowser opens u with the desktop's opener (the URL is one argument,
// never through a shell). xdg-open may run the browser in the foreground,
// so it is waited for only briefly: a quick failure is reported, a
// browser that keeps running is left alone.
func openBrowser(ctx context.Context, u string) error {
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	}
	path, err := exec.LookPath(opener)
	if err != nil {
		return fmt.Errorf("cannot open a browser: %s not found (install xdg-utils, or open the printed URL by hand)", opener)
	}
	cmd := exec.Command(path, u) // not tied to ctx: the browser outlives gatewayctl
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w (open the printed URL by hand)", opener, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(openerWait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			// Its output may echo the URL, which holds the token: not shown.
			return fmt.Errorf("%s could not open the URL (%v): open the printed URL by hand", opener, err)
		}
	case <-timer.C: // still running: the browser itself, in the foreground
	case <-ctx.Done():
	}
	return nil
}

// openerWait bounds the wait for xdg-open's verdict.
const openerWait = 5 * time.Second
