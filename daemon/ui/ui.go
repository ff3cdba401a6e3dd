// Package ui is the gateway's browser control UI: a small page (plain
// HTML, one JavaScript module and one stylesheet, no framework, no build
// step) embedded in the binary and served on the gateway's one port at
// GET /, with its assets under /ui/. The page needs no network access
// besides the gateway itself (no CDN): it connects back over the same
// WebSocket as client id "openclaw-control-ui", mode "ui", role operator,
// and shows health, presence, nodes, pairing requests, the log tail, a
// method console and agent chat.
//
// Serving the assets needs no authentication; the operator pastes the
// gateway token (or password) into the page once and the browser keeps it
// in localStorage. Every response carries a strict Content-Security-Policy
// (only same-origin scripts, styles and images; WebSocket connections only
// to the page's own host; no framing), X-Content-Type-Options nosniff and
// Referrer-Policy no-referrer. Assets have strong ETags derived from their
// content; the page links them with that hash in the URL so browsers may
// cache them for a year, while the page itself is revalidated on every
// load.
//
// When the UI is switched off (SetEnabled(false), driven by the config on
// Apply) its paths answer 404 and nothing else changes. The package uses no
// OS feature.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
)

//go:embed assets
var assetFS embed.FS

// ClientID is the protocol client id the page connects with.
const ClientID = "openclaw-control-ui"

// AssetPrefix is the URL path under which the page's assets are served.
const AssetPrefix = "/ui/"

// indexFile is the page's template among the assets; it is served at "/"
// only, never under AssetPrefix.
const indexFile = "index.html"

// contentTypes maps asset extensions to their Content-Type. It is fixed
// here rather than taken from the host's mime.types, so every host serves
// the same headers.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// Cache-Control values.
const (
	cacheRevalidate = "no-cache"
	cacheImmutable  = "public, max-age=31536000, immutable"
)

// asset is one file ready to serve.
type asset struct {
	name        string
	body        []byte
	contentType string
	hash        string // base64url of the first 12 bytes of SHA-256
	etag        string // strong ETag: the hash, quoted
}

// Options configure the control UI.
type Options struct {
	// Version is the gateway's version; the page reports it as its client
	// version and shows it.
	Version string
	// Logger receives the UI's log lines; nil discards them.
	Logger *slog.Logger
	// Enabled is the initial state; nil means enabled.
	Enabled *bool
}

// UI is the control UI feature: a gateway.Extension with HTTP routes and
// no protocol methods of its own.
type UI struct {
	log     *slog.Logger
	index   *asset
	assets  map[string]*asset
	enabled atomic.Bool
}

// New builds the control UI from the embedded assets. It fails only when
// the embedded files are broken (a build defect).
func New(o Options) (*UI, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "0.0.0-dev"
	}
	u := &UI{log: o.Logger, assets: map[string]*asset{}}
	u.enabled.Store(o.Enabled == nil || *o.Enabled)
	var tmpl []byte
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "assets/")
		if name == indexFile {
			tmpl = body
			return nil
		}
		a, err := newAsset(name, body)
		if err != nil {
			return err
		}
		u.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control ui: read embedded assets: %w (rebuild gatewayd from a complete source tree)", err)
	}
	if tmpl == nil {
		return nil, fmt.Errorf("control ui: embedded assets lack %s (rebuild gatewayd from a complete source tree)", indexFile)
	}
	page, err := u.renderIndex(tmpl, o.Version)
	if err != nil {
		return nil, err
	}
	if u.index, err = newAsset(indexFile, page); err != nil {
		return nil, err
	}
	return u, nil
}

func newAsset(name string, body []byte) (*asset, error) {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		return nil, fmt.Errorf("control ui: asset %s has no known content type (add its extension to contentTypes)", name)
	}
	sum := sha256.Sum256(body)
	h := base64.RawURLEncoding.EncodeToString(sum[:12])
	return &asset{name: name, body: body, contentType: ct, hash: h, etag: `"` + h + `"`}, nil
}

// renderIndex fills the page template: the version and each asset's URL
// carrying its content hash.
func (u *UI) renderIndex(tmpl []byte, version string) ([]byte, error) {
	t, err := template.New(indexFile).Funcs(template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := u.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return u.AssetURL(a.name), nil
		},
	}).Parse(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("control ui: parse %s: %w", indexFile, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]string{"Version": version}); err != nil {
		return nil, fmt.Errorf("control ui: render %s: %w", indexFile, err)
	}
	return buf.Bytes(), nil
}

// AssetURL is the cache-busting URL of an asset ("/ui/app.js?v=HASH"), or
// "" when there is no such asset.
func (u *UI) AssetURL(name string) string {
	a, ok := u.assets[name]
	if !ok {
		return ""
	}
	return AssetPrefix + a.name + "?v=" + a.hash
}

// AssetNames lists the served asset file names (without the page itself).
func (u *UI) AssetNames() []string {
	out := make([]string, 0, len(u.assets))
	for n := range u.assets {
		out = append(out, n)
	}
	return out
}

// Name implements gateway.Extension.
func (u *UI) Name() string { return "ui" }

// Methods implements gateway.Extension: the UI adds no protocol methods.
func (u *UI) Methods() []gateway.Method { return nil }

// Events implements gateway.Extension: the UI emits no events.
func (u *UI) Events() []string { return nil }

// Bind implements gateway.Extension; the UI needs nothing from the Host.
func (u *UI) Bind(gateway.Host) {}

// Routes implements gateway.HTTPRoutes: the page at "/" and its assets.
// (The core answers the WebSocket upgrade on "/" before these.)
func (u *UI) Routes() []gateway.Route {
	return []gateway.Route{
		{Pattern: "GET /{$}", Handler: http.HandlerFunc(u.serveIndex)},
		{Pattern: "GET " + AssetPrefix + "{file}", Handler: http.HandlerFunc(u.serveAsset)},
	}
}

// Handler serves the UI's routes alone (for tests and embedding).
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range u.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// Apply implements the daemon's hot reload. The config does not yet carry
// an on/off switch for the UI (gateway.controlUi.enabled), so the UI keeps
// its current state; allowed origins are enforced by the core.
func (u *UI) Apply(cfg *config.Config) {
	u.SetEnabled(cfg.Gateway.ControlUI.Enabled == nil || *cfg.Gateway.ControlUI.Enabled)
}

// SetEnabled switches the UI on or off; off, its paths answer 404.
func (u *UI) SetEnabled(on bool) {
	if u.enabled.Swap(on) != on {
		u.log.Info("control ui switched", "enabled", on)
	}
}

// Enabled reports whether the UI is served.
func (u *UI) Enabled() bool { return u.enabled.Load() }

// Close implements the daemon's feature interface; the UI holds nothing.
func (u *UI) Close() error { return nil }

func (u *UI) serveIndex(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w, r)
	if !u.enabled.Load() {
		notFound(w, "the control UI is disabled on this gateway (gateway.controlUi.enabled is false)")
		return
	}
	serve(w, r, u.index, cacheRevalidate)
}

func (u *UI) serveAsset(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w, r)
	if !u.enabled.Load() {
		notFound(w, "the control UI is disabled on this gateway (gateway.controlUi.enabled is false)")
		return
	}
	a, ok := u.assets[r.PathValue("file")]
	if !ok {
		notFound(w, "no such control UI asset")
		return
	}
	cache := cacheRevalidate
	if r.URL.Query().Get("v") == a.hash {
		cache = cacheImmutable
	}
	serve(w, r, a, cache)
}

// serve writes an asset with its ETag; http.ServeContent answers HEAD,
// If-None-Match (304) and ranges.
func serve(w http.ResponseWriter, r *http.Request, a *asset, cache string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", cache)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

func notFound(w http.ResponseWriter, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = fmt.Fprintln(w, msg)
}

// hostRe is what we accept as a Host header when naming it in the CSP:
// a DNS name, IPv4 or bracketed IPv6 address, and an optional port.
var hostRe = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)

// ContentSecurityPolicy is the policy for a page served to a request for
// host (the Host header): everything from the page's own origin only, the
// WebSocket to the same host only, nothing inline, no plugins, no framing,
// no form submissions.
func ContentSecurityPolicy(host string) string {
	connect := "'self'"
	if hostRe.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + connect,
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func setSecurityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy(r.Host))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}
