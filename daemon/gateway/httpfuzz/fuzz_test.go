package httpfuzz_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/hooks"
	"github.com/gatewayd/gatewayd/daemon/openai"
	"github.com/gatewayd/gatewayd/daemon/store"
	"github.com/gatewayd/gatewayd/daemon/tools"
	"github.com/gatewayd/gatewayd/daemon/ui"
)

const (
	token     = "fuzz-gateway-token-0123456789"
	hookToken = "fuzz-hooks-token-0123456789"
	port      = "18789"
)

const cfgJSON = `{
  "gateway": {"auth": {"mode": "token", "token": "` + token + `"}, "allowedHosts": ["gw.example.lan"],
              "controlUi": {"allowedOrigins": ["https://ui.example"]}},
  "agents": {"default": "main", "list": {"main": {"backend": "echo"}}},
  "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}, "maxBodyBytes": 65536},
  "hooks": {"enabled": true, "token": "` + hookToken + `", "requestsPerMinute": 1000000, "maxBodyBytes": 65536, "waitTimeoutMs": 2000},
  "tools": {"maxBodyBytes": 65536}
}`

// server wires the core and the features with HTTP routes as gatewayd
// does, for ServeHTTP calls without a socket.
func server(tb testing.TB) *gateway.Server {
	tb.Helper()
	cfg, err := config.Parse("fuzz.json", []byte(cfgJSON))
	if err != nil {
		tb.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	ai, err := agent.New(agent.Options{Config: cfg, Store: st, Log: log, Getenv: func(string) string { return "" }})
	if err != nil {
		tb.Fatal(err)
	}
	api := openai.NewAPI(ai, cfg, log)
	u, err := ui.New(ui.Options{Version: "fuzz", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tl := tools.New(tools.Options{Config: cfg, Log: log, Builtins: tools.CoreBuiltins()})
	hk := hooks.New(hooks.Options{Config: cfg, Log: log, Agents: func() agent.Runner { return ai }})
	s := gateway.New(gateway.Options{Logger: log, Version: "fuzz",
		Settings: gateway.Settings{
			Auth:           gateway.AuthSettings{Mode: "token", Token: token, MaxAttempts: 1 << 30},
			AllowedHosts:   cfg.Gateway.AllowedHosts,
			AllowedOrigins: cfg.Gateway.ControlUI.AllowedOrigins,
		},
		Extensions: []gateway.Extension{u, ai, api, tl, hk}})
	s.Serve(nil)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx, "fuzz over", 0)
		hk.Close()
		tl.Close()
		ai.Close()
		st.Close()
	})
	return s
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func loopbackHost(h string) bool {
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "localhost" || h == "gw.example.lan" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// FuzzHTTPRoutes feeds raw HTTP requests to every route through the guard.
// Whatever the bytes: no panic, an answer within the bound, and the
// guard's promises hold: a non-loopback Host on the loopback listener gets
// 421; no state-changing request succeeds with a foreign Origin or a body
// not declared JSON; a JSON error answer is valid JSON.
func FuzzHTTPRoutes(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/requests/*.http")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	}
	s := server(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 18789}
		ctx, cancel := context.WithTimeout(context.WithValue(req.Context(), http.LocalAddrContextKey, local), 10*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer within 20s to %q", raw)
		}
		code := rec.Code
		safe := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions
		origin := req.Header.Get("Origin")
		switch {
		case req.Host != "" && !loopbackHost(req.Host):
			if code != http.StatusMisdirectedRequest {
				t.Fatalf("Host %q on a loopback listener answered %d, want 421", req.Host, code)
			}
		case !safe && code < 300:
			if origin != "" && origin != "https://ui.example" && !strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://"), req.Host) {
				t.Fatalf("%s with Origin %q (Host %q) succeeded: %d", req.Method, origin, req.Host, code)
			}
			if len(body) > 0 && !isJSONType(req.Header.Get("Content-Type")) {
				t.Fatalf("%s with a %q body succeeded: %d", req.Method, req.Header.Get("Content-Type"), code)
			}
		}
		if ct := rec.Header().Get("Content-Type"); code >= 400 && strings.HasPrefix(ct, "application/json") {
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%d answer with Content-Type %s is not JSON: %q", code, ct, rec.Body.String())
			}
		}
	})
}

// TestSeedsReachRoutes checks that the seed corpus reaches the handlers
// (the fuzzer starts from requests that pass the guard as well as ones it
// refuses), so the target exercises the routes' decoding, not only the
// guard.
func TestSeedsReachRoutes(t *testing.T) {
	s := server(t)
	want := map[string]int{
		"tools-invoke.http": 200, "tools-invoke-cross-site.http": 403, "tools-invoke-args.http": 200,
		"hooks-agent.http": 200, "chat.http": 400, "chat-stream-chunked.http": 200, "responses.http": 200,
		"models.http": 200, "ws-rebind.http": 421, "ui-asset.http": 200, "form-post.http": 415,
	}
	for name, code := range want {
		raw, err := os.ReadFile(filepath.Join("testdata/requests", name))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n")))))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		req.RemoteAddr = "127.0.0.1:40000"
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 18789}))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != code {
			t.Errorf("%s: %d %s, want %d", name, rec.Code, rec.Body.String(), code)
		}
	}
}
