package ui

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/gateway"
)

var _ gateway.HTTPRoutes = (*UI)(nil)

func newTestUI(t *testing.T) (*UI, *httptest.Server) {
	t.Helper()
	u, err := New(Options{Version: "1.2.3-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	t.Cleanup(srv.Close)
	return u, srv
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// checkSecurityHeaders asserts the headers every UI response carries.
func checkSecurityHeaders(t *testing.T, resp *http.Response, host string) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		directives[f[0]] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"default-src":     "'self'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self' ws://" + host + " wss://" + host,
		"frame-ancestors": "'none'",
		"object-src":      "'none'",
		"base-uri":        "'none'",
		"form-action":     "'none'",
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("CSP %s = %q, want %q (full policy: %s)", k, directives[k], v, csp)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
		t.Errorf("CSP allows inline code, eval or wildcards: %s", csp)
	}
	for k, v := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestIndex(t *testing.T) {
	u, srv := newTestUI(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	resp, body := do(t, "GET", srv.URL+"/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d %s", resp.StatusCode, body)
	}
	checkSecurityHeaders(t, resp, host)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("page Cache-Control = %q, want no-cache (revalidate every load)", cc)
	}
	if !regexp.MustCompile(`^"[A-Za-z0-9_-]{16}"$`).MatchString(resp.Header.Get("ETag")) {
		t.Errorf("page ETag = %q, want a strong content hash", resp.Header.Get("ETag"))
	}
	if !strings.Contains(body, `<meta name="gatewayd-version" content="1.2.3-test">`) {
		t.Error("page does not carry the gateway version")
	}
	// Every asset is linked by its hashed URL, and nothing comes from
	// elsewhere (no CDN) or inline.
	for _, name := range []string{"app.js", "app.css", "favicon.svg"} {
		if !strings.Contains(body, `"`+u.AssetURL(name)+`"`) {
			t.Errorf("page does not link %s as %s", name, u.AssetURL(name))
		}
	}
	for _, bad := range []string{"http://", "https://", "//cdn", "style=", "<style", "onclick", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q: everything must be same-origin and nothing inline", bad)
		}
	}
	if n := strings.Count(body, "<script"); n != 1 || !strings.Contains(body, `<script type="module" src="/ui/app.js?v=`) {
		t.Errorf("page must load exactly one external module script, has %d <script> tags", n)
	}
	// The UI's JS never builds markup from strings and never evals.
	js, ok := u.assets["app.js"]
	if !ok {
		t.Fatal("no app.js asset")
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"} {
		if strings.Contains(string(js.body), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	for _, want := range []string{`"openclaw-control-ui"`, `mode: "ui"`, `role: "operator"`, "localStorage"} {
		if !strings.Contains(string(js.body), want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
}

func TestAssets(t *testing.T) {
	u, srv := newTestUI(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		name, contentType, contains string
	}{
		{"app.js", "text/javascript; charset=utf-8", "openclaw-control-ui"},
		{"app.css", "text/css; charset=utf-8", "body"},
		{"favicon.svg", "image/svg+xml", "<svg"},
	}
	if len(u.AssetNames()) != len(cases) {
		t.Errorf("assets %v, the test covers %d: add the new ones here", u.AssetNames(), len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := u.assets[c.name]
			// Hashed URL: cached for a year.
			resp, body := do(t, "GET", srv.URL+u.AssetURL(c.name), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d", u.AssetURL(c.name), resp.StatusCode)
			}
			checkSecurityHeaders(t, resp, host)
			if got := resp.Header.Get("Content-Type"); got != c.contentType {
				t.Errorf("Content-Type = %q, want %q", got, c.contentType)
			}
			if got := resp.Header.Get("Cache-Control"); got != cacheImmutable {
				t.Errorf("hashed URL Cache-Control = %q, want %q", got, cacheImmutable)
			}
			if body != string(a.body) || !strings.Contains(body, c.contains) {
				t.Errorf("body of %s differs from the embedded file", c.name)
			}
			etag := resp.Header.Get("ETag")
			if etag != a.etag || etag == "" {
				t.Errorf("ETag = %q, want %q", etag, a.etag)
			}
			// Plain or stale URL: same content, but revalidated.
			for _, url := range []string{AssetPrefix + c.name, AssetPrefix + c.name + "?v=stale"} {
				resp, body = do(t, "GET", srv.URL+url, nil)
				if resp.StatusCode != 200 || body != string(a.body) {
					t.Errorf("GET %s = %d", url, resp.StatusCode)
				}
				if got := resp.Header.Get("Cache-Control"); got != cacheRevalidate {
					t.Errorf("GET %s Cache-Control = %q, want %q", url, got, cacheRevalidate)
				}
			}
		})
	}
}

func TestConditionalAndHead(t *testing.T) {
	u, srv := newTestUI(t)
	for _, path := range []string{"/", u.AssetURL("app.js"), AssetPrefix + "app.css"} {
		t.Run(path, func(t *testing.T) {
			get, body := do(t, "GET", srv.URL+path, nil)
			etag := get.Header.Get("ETag")
			if get.StatusCode != 200 || etag == "" || body == "" {
				t.Fatalf("GET = %d, ETag %q", get.StatusCode, etag)
			}

			head, hbody := do(t, "HEAD", srv.URL+path, nil)
			if head.StatusCode != 200 || hbody != "" {
				t.Errorf("HEAD = %d with %d body bytes, want 200 and none", head.StatusCode, len(hbody))
			}
			if head.Header.Get("ETag") != etag || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") ||
				head.Header.Get("Content-Length") != get.Header.Get("Content-Length") || head.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("HEAD headers differ from GET's:\nGET  %v\nHEAD %v", get.Header, head.Header)
			}

			for _, tc := range []struct {
				name, inm string
				code      int
			}{
				{"matching", etag, http.StatusNotModified},
				{"matching in a list", `"other", ` + etag, http.StatusNotModified},
				{"wildcard", "*", http.StatusNotModified},
				{"stale", `"stale-etag"`, http.StatusOK},
			} {
				for _, m := range []string{"GET", "HEAD"} {
					resp, b := do(t, m, srv.URL+path, map[string]string{"If-None-Match": tc.inm})
					if resp.StatusCode != tc.code {
						t.Errorf("%s If-None-Match %s (%s) = %d, want %d", m, tc.inm, tc.name, resp.StatusCode, tc.code)
					}
					if tc.code == http.StatusNotModified && (b != "" || resp.Header.Get("ETag") != etag) {
						t.Errorf("%s 304 has a body or lacks the ETag", m)
					}
				}
			}
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	u, srv := newTestUI(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{AssetPrefix + "nope.js", AssetPrefix + "index.html", AssetPrefix + "app.js.map", AssetPrefix + "..%2fui.go"} {
		resp, body := do(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
		if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s 404 headers: %v", path, resp.Header)
		}
		if path == AssetPrefix+"nope.js" {
			checkSecurityHeaders(t, resp, host)
			if !strings.Contains(body, "no such control UI asset") {
				t.Errorf("404 body %q", body)
			}
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		for _, path := range []string{"/", u.AssetURL("app.js")} {
			resp, _ := do(t, m, srv.URL+path, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", m, path, resp.StatusCode)
			}
		}
	}
}

func TestDisabled(t *testing.T) {
	off := false
	u, err := New(Options{Enabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	for _, path := range []string{"/", u.AssetURL("app.js")} {
		resp, body := do(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "gateway.controlUi.enabled") {
			t.Errorf("disabled: GET %s = %d %q, want 404 naming the setting", path, resp.StatusCode, body)
		}
	}
	u.SetEnabled(true)
	if !u.Enabled() {
		t.Fatal("SetEnabled(true) did not enable")
	}
	if resp, _ := do(t, "GET", srv.URL+"/", nil); resp.StatusCode != 200 {
		t.Errorf("re-enabled: GET / = %d", resp.StatusCode)
	}
}

func TestContentSecurityPolicyHost(t *testing.T) {
	for _, tc := range []struct {
		host, connect string
	}{
		{"127.0.0.1:18789", "connect-src 'self' ws://127.0.0.1:18789 wss://127.0.0.1:18789;"},
		{"[::1]:18789", "connect-src 'self' ws://[::1]:18789 wss://[::1]:18789;"},
		{"gw.example", "connect-src 'self' ws://gw.example wss://gw.example;"},
		// A Host that is not a plain host[:port] is never echoed.
		{"evil.example; script-src *", "connect-src 'self';"},
		{"a b", "connect-src 'self';"},
		{"", "connect-src 'self';"},
	} {
		if csp := ContentSecurityPolicy(tc.host); !strings.Contains(csp, tc.connect) {
			t.Errorf("host %q: CSP %q lacks %q", tc.host, csp, tc.connect)
		}
	}
}

// TestThroughGateway serves the UI from a real gateway server generation:
// its routes are reached through the core's router, the WebSocket upgrade
// on "/" still goes to the protocol, and unknown paths stay the core's
// JSON 404.
func TestThroughGateway(t *testing.T) {
	u, err := New(Options{Version: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	s := gateway.New(gateway.Options{Extensions: []gateway.Extension{u}, Version: "9.9.9",
		Settings: gateway.Settings{Auth: gateway.AuthSettings{Mode: "token", Token: "t"}}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, body := do(t, "GET", srv.URL+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "gatewayd control") {
		t.Fatalf("GET / through the gateway = %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", srv.URL+u.AssetURL("app.js"), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET app.js through the gateway = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	for k, v := range map[string]string{"Upgrade": "websocket", "Connection": "Upgrade",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
		req.Header.Set(k, v)
	}
	up, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	up.Body.Close() // the upgraded connection: do not wait for its frames
	if up.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("WebSocket upgrade on / = %d, want 101 (the core, not the UI)", up.StatusCode)
	}
	resp, body = do(t, "GET", srv.URL+"/elsewhere", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not_found") {
		t.Errorf("GET /elsewhere = %d %q, want the core's 404", resp.StatusCode, body)
	}
}
