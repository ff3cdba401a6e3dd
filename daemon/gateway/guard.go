package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The HTTP guard runs before every route, the core's and the extensions'
// (hooks, tools, the OpenAI API, the control UI), so none of them needs
// its own checks against browsers:
//
//   - DNS rebinding: a connection that arrived on a loopback address must
//     name a loopback host (localhost, 127.0.0.0/8, [::1]) or one listed in
//     gateway.allowedHosts. A web page whose name was rebound to 127.0.0.1
//     sends its own name as Host and is refused with 421, WebSocket
//     upgrades included.
//   - Cross-site requests: a state-changing request (any method but GET,
//     HEAD and OPTIONS) carrying a foreign Origin (not the Host it was
//     sent to, and not in gateway.controlUi.allowedOrigins), Origin
//     "null", or Sec-Fetch-Site: cross-site is refused with 403.
//   - Content type: a state-changing request with a body must say
//     application/json (or a +json type); anything else is refused with
//     415. Browsers send cross-site text/plain and form posts without a
//     preflight; a JSON one needs CORS, which the gateway never grants.
//   - Slow bodies: a request body must arrive within BodyReadTimeout, or
//     the read fails and the connection closes.

// BodyReadTimeout bounds how long a request body may take to arrive (a
// variable for tests).
var BodyReadTimeout = 30 * time.Second

// guard answers r itself (and returns false) when it fails a check.
func (s *Server) guard(w http.ResponseWriter, r *http.Request, st *Settings) bool {
	if !hostAllowed(r, st.AllowedHosts) {
		s.logGuard("host", r, "add the name to gateway.allowedHosts if it is yours")
		writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": map[string]string{"type": "host_not_allowed",
			"message": fmt.Sprintf("host %q is not allowed on a loopback listener: use localhost or 127.0.0.1, or add the name to gateway.allowedHosts", hostName(r.Host))}})
		return false
	}
	if hasBody(r) {
		// Any method: even a body no handler reads is read (discarded)
		// by net/http before the connection is reused.
		s.limitBody(w, r)
	}
	if safeMethod(r.Method) {
		return true
	}
	if why := crossSite(r, st.AllowedOrigins); why != "" {
		s.logGuard("origin", r, "add the origin to gateway.controlUi.allowedOrigins if it is yours")
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"type": "origin_not_allowed",
			"message": why + ": cross-site requests are refused (add the origin to gateway.controlUi.allowedOrigins if it is yours)"}})
		return false
	}
	if hasBody(r) {
		ct := r.Header.Get("Content-Type")
		if !isJSON(ct) {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": map[string]string{"type": "unsupported_media_type",
				"message": fmt.Sprintf("request body must be JSON: send Content-Type: application/json (got %q)", ct)}})
			return false
		}
	}
	return true
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hasBody reports whether r may carry a body (a Content-Length above zero,
// or chunked).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// isJSON accepts application/json and application/*+json, with any
// parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// hostName is the Host header without its port, lower-case, without a
// trailing dot or IPv6 brackets.
func hostName(host string) string {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if strings.HasPrefix(h, "[") != strings.HasSuffix(h, "]") {
		return strings.ToLower(h) // malformed: matches nothing below
	}
	h = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
	return strings.ToLower(h)
}

// isLoopbackHost: localhost or a loopback IP literal.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// hostAllowed applies the DNS rebinding check to connections that arrived
// on a loopback address. A request without Host (HTTP/1.0) is not from a
// browser and passes.
func hostAllowed(r *http.Request, allowed []string) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, ok := local.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() || r.Host == "" {
		return true
	}
	h := hostName(r.Host)
	if isLoopbackHost(h) {
		return true
	}
	for _, a := range allowed {
		if a == "*" || hostName(a) == h {
			return true
		}
	}
	return false
}

// crossSite returns why r is a cross-site request, or "".
func crossSite(r *http.Request, allowed []string) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return "request from another site (Sec-Fetch-Site: cross-site)"
		}
		return ""
	}
	if origin == "null" {
		return `origin "null" (a sandboxed page or a local file)`
	}
	if originAllowed(r, allowed) {
		return ""
	}
	return fmt.Sprintf("origin %q is not this gateway", origin)
}

// limitBody makes the rest of r's body arrive within BodyReadTimeout; once
// it has all arrived the deadline is lifted again, so a long-running
// handler's connection is not cut (net/http watches it for the client
// going away).
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(BodyReadTimeout)); err != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil || b.done:
	case errors.Is(err, io.EOF):
		// All arrived: lift the deadline. After any other error (the
		// deadline passed) it stays, and the connection closes.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("request body did not arrive within %s: %w", BodyReadTimeout, err)
		}
	}
	return n, err
}

// logGuard logs a refused request at most once per guardLogEvery per
// check, so a flood does not flood the log.
func (s *Server) logGuard(check string, r *http.Request, fix string) {
	if !s.guardLog.allow(check, time.Now()) {
		return
	}
	s.log.Warn("http request refused", "check", check, "host", hostName(r.Host), "origin", r.Header.Get("Origin"),
		"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "fix", fix)
}
