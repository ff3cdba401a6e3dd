package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Extension is a feature package (agent runs, channels, nodes and pairing,
// the HTTP APIs, the control UI) plugged into the network core. An
// extension lives for the whole process; each server generation (an
// in-process restart makes a new one) binds it again through Bind.
//
// Besides Extension, an extension may implement any of HTTPRoutes,
// ConnObserver and Admitter.
type Extension interface {
	// Name is a short lower-case name for logs ("agent", "nodes").
	Name() string
	// Methods are the RPC methods the extension serves. Names must not
	// clash with the core's or another extension's (New panics: it is a
	// programming error).
	Methods() []Method
	// Events are the event names the extension emits; they are listed in
	// hello-ok's features.events.
	Events() []string
	// Bind hands the extension the current generation's Host. It is
	// called before the generation serves its first connection; keep the
	// latest Host (an atomic pointer) and use it for broadcasts.
	Bind(h Host)
}

// HTTPRoutes is implemented by extensions that serve HTTP on the gateway's
// port. Patterns use net/http.ServeMux syntax ("POST /v1/chat/completions",
// "GET /{$}"). The core's own paths (/healthz, /health, /readyz and the
// WebSocket upgrade on /) take precedence. An endpoint that is switched off
// in config answers 404 itself, so a hot reload can turn it on or off.
type HTTPRoutes interface {
	Routes() []Route
}

// Route is one HTTP pattern an extension serves.
type Route struct {
	Pattern string
	Handler http.Handler
}

// StatusReporter is implemented by extensions with a state of their own
// worth a clause in the one-line status (sd_notify STATUS=, the status
// method's statusText) and a part in health's components (the messaging
// channels' connections). An extension that changes state calls
// RefreshStatus on its Host (a *Server) to have STATUS= resent.
type StatusReporter interface {
	// StatusClause is a short clause like "telegram connected" ("" for
	// none). It must not block and must not carry secrets.
	StatusClause() string
	// HealthComponent is the extension's part of health's components,
	// under the extension's Name(). It must not block.
	HealthComponent() any
}

// CapabilityProvider is implemented by extensions that announce server
// capabilities in hello-ok's features.capabilities: OpenClaw's names for
// behaviours its clients check for before calling a method (its CLI's
// `models list` requires "published-model-catalog").
type CapabilityProvider interface {
	Capabilities() []string
}

// ConnObserver is told when a connection completes its handshake (after
// hello-ok is queued) and when it ends.
type ConnObserver interface {
	Connected(p *Peer)
	Disconnected(p *Peer)
}

// Admitter may refuse a connect after authentication and device
// verification and before hello-ok (for example an unpaired node). The
// returned error is sent as the connect response and the socket is closed
// with 1008 and the error's message as the reason.
type Admitter interface {
	Admit(p *Peer) *protocol.Error
}

// Authenticator accepts a per-device credential (a paired node's device
// token) in place of the shared secret. When the shared secret does not
// match and the connect carries a device whose signature verifies, the
// gateway asks each Authenticator with the token the client sent
// (auth.deviceToken, else auth.token). The check must be constant-time.
type Authenticator interface {
	AuthenticateDevice(deviceID, role, token string) bool
}

// Method is one RPC method served by an extension.
type Method struct {
	Name string
	// Scope is the scope a caller needs (protocol.ScopeRead, ScopeWrite,
	// ScopeAdmin, ScopePairing ...). Empty means any authenticated peer,
	// including nodes (node-only methods check Peer.Role themselves).
	Scope string
	// Async runs the handler on its own goroutine, so a slow method (one
	// that waits for a node or an upstream) does not hold up the
	// connection's other requests. At most MaxAsyncPerConn async calls run
	// per connection; more get UNAVAILABLE (retryable).
	Async bool
	// Handler answers the call. Its return value is the response payload
	// (or error). For two-stage methods (agent) return the first stage and
	// send the second later with Call.Peer.Respond(call.ID, ...).
	Handler func(ctx context.Context, call *Call) (any, *protocol.Error)
}

// MaxAsyncPerConn bounds the concurrently running Async calls of one
// connection.
const MaxAsyncPerConn = 64

// Call is one request handed to an extension method.
type Call struct {
	ID     string
	Method string
	Params json.RawMessage
	Peer   *Peer
}

// Decode validates the params against the committed protocol schema
// definition def (skipped when def is "") and decodes them strictly into v
// (unknown fields are errors). It returns the protocol's
// `invalid <method> params: …` error.
func (c *Call) Decode(def string, v any) *protocol.Error {
	if def != "" {
		return decode(c.Method, def, c.Params, v)
	}
	if err := protocol.DecodeParams(c.Params, v); err != nil {
		return paramsError(c.Method, err)
	}
	return nil
}

// Peer is an extension's view of one connection.
type Peer struct{ c *wsConn }

// ConnID is the connection's id (hello-ok server.connId).
func (p *Peer) ConnID() string { return p.c.id }

// Remote is the peer's address as host:port.
func (p *Peer) Remote() string { return p.c.remote }

// Role is the connect role: operator, node or worker.
func (p *Peer) Role() string { return p.c.role }

// Scopes are the granted scopes.
func (p *Peer) Scopes() []string { return slices.Clone(p.c.scopes) }

// HasScope reports whether the peer holds scope (admin implies every
// operator scope, write implies read).
func (p *Peer) HasScope(scope string) bool { return hasScope(p.c.scopes, scope) }

// Connect is the peer's verified connect params. Callers must not modify
// it.
func (p *Peer) Connect() *protocol.ConnectParams { return p.c.params }

// DeviceID is the verified device identity, or "" when the peer sent none.
func (p *Peer) DeviceID() string {
	if p.c.params == nil || p.c.params.Device == nil {
		return ""
	}
	return p.c.params.Device.ID
}

// Done is closed when the connection has ended.
func (p *Peer) Done() <-chan struct{} { return p.c.done }

// Closed reports whether the connection has ended.
func (p *Peer) Closed() bool {
	select {
	case <-p.c.done:
		return true
	default:
		return false
	}
}

// SendEvent queues an event for this peer (with its next seq). It returns
// false when the connection is gone or not yet attached.
func (p *Peer) SendEvent(event string, payload any) bool {
	if p.Closed() || !p.c.attached.Load() {
		return false
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		p.c.s.log.Error("event payload does not encode", "event", event, "err", err)
		return false
	}
	p.c.sendEvent(event, raw, nil)
	return true
}

// Respond sends a response frame for request id: the second stage of a
// two-stage method. It returns false when the connection is gone.
func (p *Peer) Respond(id string, payload any, perr *protocol.Error) bool {
	if p.Closed() {
		return false
	}
	p.c.respond(id, payload, perr)
	return true
}

// IssueDeviceToken puts a per-device credential into hello-ok's
// auth.deviceToken. Only an Admitter may call it (before hello-ok), and
// only for a credential an Authenticator accepts back.
func (p *Peer) IssueDeviceToken(token string) { p.c.deviceToken = token }

// Close closes the connection with a WebSocket close code and reason.
func (p *Peer) Close(code int, reason string) { p.c.close(code, reason) }

// Host is what a server generation offers its extensions.
type Host interface {
	// Broadcast sends an event to every attached peer holding scope
	// ("" = every peer).
	Broadcast(event string, payload any, scope string)
	// Peer finds an attached connection by id.
	Peer(connID string) (*Peer, bool)
	// Peers lists the attached connections.
	Peers() []*Peer
	// AuthorizeHTTP checks `Authorization: Bearer <gateway token or
	// password>` with the same failed-attempt rate limiting as connects. On
	// failure it has written 401 (or 429 with Retry-After) and returns
	// false. A shared-secret Bearer is a full operator.
	AuthorizeHTTP(w http.ResponseWriter, r *http.Request) bool
	// AuthorizeHTTPSecret is AuthorizeHTTP against another secret (the
	// hooks token): `Authorization: Bearer` or, when header is not "", that
	// header. A secret in the query string is never accepted.
	AuthorizeHTTPSecret(w http.ResponseWriter, r *http.Request, secret, header string) bool
	// Stopping reports whether this generation is shutting down.
	Stopping() bool
	// HealthReport and StatusReport are the payloads of the core's health
	// and status methods.
	HealthReport() any
	StatusReport() any
}

// peer returns the Peer handle of a connection, creating it once.
func (c *wsConn) peer() *Peer {
	if p := c.peerRef.Load(); p != nil {
		return p
	}
	p := &Peer{c: c}
	if c.peerRef.CompareAndSwap(nil, p) {
		return p
	}
	return c.peerRef.Load()
}

// Broadcast implements Host.
func (s *Server) Broadcast(event string, payload any, scope string) {
	raw, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("event payload does not encode", "event", event, "err", err)
		return
	}
	for _, c := range s.hub.all() {
		if scope == "" || hasScope(c.scopes, scope) {
			c.sendEvent(event, raw, nil)
		}
	}
}

// Peer implements Host.
func (s *Server) Peer(connID string) (*Peer, bool) {
	for _, c := range s.hub.all() {
		if c.id == connID {
			return c.peer(), true
		}
	}
	return nil, false
}

// Peers implements Host.
func (s *Server) Peers() []*Peer {
	conns := s.hub.all()
	out := make([]*Peer, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.peer())
	}
	return out
}

// Stopping implements Host.
func (s *Server) Stopping() bool { return s.stopping.Load() }

// AuthorizeHTTP implements Host.
func (s *Server) AuthorizeHTTP(w http.ResponseWriter, r *http.Request) bool {
	return s.authorizeHTTP(w, r, kindGateway, func(st *Settings) bool {
		token, hasBearer := bearer(r)
		if !hasBearer && st.Auth.Mode == "none" {
			return true
		}
		return checkSecret(&st.Auth, token, token, true) == nil
	})
}

// AuthorizeHTTPSecret implements Host. Failures count against that secret
// alone (see kindSecret).
func (s *Server) AuthorizeHTTPSecret(w http.ResponseWriter, r *http.Request, secret, header string) bool {
	return s.authorizeHTTP(w, r, kindSecret(secret), func(*Settings) bool {
		got, ok := bearer(r)
		if !ok && header != "" {
			got = r.Header.Get(header)
		}
		return secret != "" && got != "" && secretEqual(got, secret)
	})
}

// authorizeHTTP runs check under the failed-attempt rate limiter for kind:
// a locked-out client gets 429, a failed check 401 (or 429 once it locks).
func (s *Server) authorizeHTTP(w http.ResponseWriter, r *http.Request, kind string, check func(*Settings) bool) bool {
	st := s.settings.Load()
	ok, retry, limited := s.authenticate(kind, r.RemoteAddr, &st.Auth, func() bool { return check(st) })
	switch {
	case ok:
		return true
	case limited:
		tooMany(w, retry)
	default:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"message": "Unauthorized", "type": "unauthorized"}})
	}
	return false
}

func tooMany(w http.ResponseWriter, retry time.Duration) {
	secs := int(retry.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]string{
		"message": "too many failed authentication attempts; retry after " + strconv.Itoa(secs) + "s", "type": "rate_limited"}})
}

// bearer returns the token of an `Authorization: Bearer <token>` header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// extensions is the server generation's view of its extensions.
type extensions struct {
	list      []Extension
	mux       *http.ServeMux
	hasRoutes bool
	observers []ConnObserver
	admitters []Admitter
	authers   []Authenticator
	events    []string
	caps      []string // features.capabilities
	// reporters and contributors are the extensions that add to health
	// and STATUS=, found once at install: health is polled.
	reporters    []namedReporter
	contributors []HealthContributor
}

type namedReporter struct {
	name string
	StatusReporter
}

// deviceAuthenticated reports whether a connect without the right shared
// secret carries a verified device whose token an Authenticator accepts.
func (s *Server) deviceAuthenticated(p *protocol.ConnectParams, role, nonce string, now time.Time) bool {
	if len(s.ext.authers) == 0 || p.Device == nil || p.Auth == nil {
		return false
	}
	tok := p.Auth.DeviceToken
	if tok == "" {
		tok = p.Auth.Token
	}
	if tok == "" || protocol.VerifyDevice(p, role, nonce, now) != nil {
		return false
	}
	for _, a := range s.ext.authers {
		if a.AuthenticateDevice(p.Device.ID, role, tok) {
			return true
		}
	}
	return false
}

func (s *Server) installExtensions(exts []Extension) {
	s.ext = extensions{list: exts, mux: http.NewServeMux()}
	seen := map[string]bool{}
	for _, e := range eventNames {
		seen[e] = true
	}
	s.ext.events = slices.Clone(eventNames)
	for _, e := range exts {
		for _, m := range e.Methods() {
			if _, dup := s.methods[m.Name]; dup || m.Name == "connect" {
				panic("gateway: extension " + e.Name() + " registers method " + m.Name + " twice")
			}
			h := m.Handler
			async := m.Async
			name := m.Name
			s.methods[name] = method{scope: m.Scope, async: async, ext: func(ctx context.Context, c *wsConn, id string, params json.RawMessage) (any, *protocol.Error) {
				return h(ctx, &Call{ID: id, Method: name, Params: params, Peer: c.peer()})
			}}
		}
		for _, ev := range e.Events() {
			if !seen[ev] {
				seen[ev] = true
				s.ext.events = append(s.ext.events, ev)
			}
		}
		if r, ok := e.(HTTPRoutes); ok {
			for _, rt := range r.Routes() {
				s.ext.mux.Handle(rt.Pattern, rt.Handler)
				s.ext.hasRoutes = true
			}
		}
		if o, ok := e.(ConnObserver); ok {
			s.ext.observers = append(s.ext.observers, o)
		}
		if a, ok := e.(Admitter); ok {
			s.ext.admitters = append(s.ext.admitters, a)
		}
		if a, ok := e.(Authenticator); ok {
			s.ext.authers = append(s.ext.authers, a)
		}
		if r, ok := e.(StatusReporter); ok {
			s.ext.reporters = append(s.ext.reporters, namedReporter{e.Name(), r})
		}
		if hc, ok := e.(HealthContributor); ok {
			s.ext.contributors = append(s.ext.contributors, hc)
		}
		if cp, ok := e.(CapabilityProvider); ok {
			for _, c := range cp.Capabilities() {
				if !slices.Contains(s.ext.caps, c) {
					s.ext.caps = append(s.ext.caps, c)
				}
			}
		}
	}
}
