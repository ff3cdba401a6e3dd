package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// signDevice is written from docs/protocol.md ("Wire reference") alone,
// not from the gateway's code:
// v2|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce.
func signDevice(priv ed25519.PrivateKey, clientID, mode, role string, scopes []string, token, nonce string, at time.Time) frame {
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	id := hex.EncodeToString(sum[:])
	ms := at.UnixMilli()
	msg := strings.Join([]string{"v2", id, clientID, mode, role, strings.Join(scopes, ","), fmt.Sprint(ms), token, nonce}, "|")
	return frame{"id": id, "publicKey": base64.RawURLEncoding.EncodeToString(pub),
		"signature": base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg))), "signedAt": ms, "nonce": nonce}
}

// backendConnect is what openclaw-node sends.
func backendConnect(token string, device frame) frame {
	return frame{"type": "req", "id": "c1", "method": "connect", "params": frame{
		"minProtocol": 4, "maxProtocol": 4,
		"client": frame{"id": "gateway-client", "mode": "backend", "version": "1.4.0", "platform": "linux"},
		"role":   "operator", "scopes": []string{"operator.read", "operator.write"},
		"caps": []string{}, "commands": []string{}, "permissions": frame{},
		"auth": frame{"token": token}, "locale": "en-US", "userAgent": "openclaw-node/1.4.0", "device": device,
	}}
}

func TestRealClientsHandshake(t *testing.T) {
	g := startGW(t, gwOpts{})
	t.Run("cli", func(t *testing.T) {
		c := dialRaw(t, g.url(), nil)
		hello := c.hello(cliConnect(g.token))
		if hello["type"] != "hello-ok" || hello["protocol"] != float64(4) {
			t.Fatalf("hello: %v", hello)
		}
		pol := hello["policy"].(map[string]any)
		if pol["maxPayload"] != float64(26214400) || pol["maxBufferedBytes"] != float64(52428800) || pol["tickIntervalMs"] != float64(30000) {
			t.Fatalf("policy: %v", pol)
		}
		snap := hello["snapshot"].(map[string]any)
		for _, k := range []string{"presence", "health", "stateVersion", "uptimeMs"} {
			if _, ok := snap[k]; !ok {
				t.Fatalf("snapshot lacks %s: %v", k, snap)
			}
		}
		auth := hello["auth"].(map[string]any)
		if auth["role"] != "operator" || fmt.Sprint(auth["scopes"]) != "[operator.read]" {
			t.Fatalf("auth: %v", auth)
		}
		res := c.call("1:h", "health", nil)
		if res["ok"] != true || res["payload"].(map[string]any)["ok"] != true {
			t.Fatalf("health: %v", res)
		}
		res = c.call("1:s", "status", nil)
		if res["ok"] != true {
			t.Fatalf("status: %v", res)
		}
		// A read-only client may not write.
		res = c.call("1:w", "system-event", frame{"text": "x"})
		if code, d := errCode(res); code != "FORBIDDEN" || d != "MISSING_SCOPE" {
			t.Fatalf("write with read scope: %v", res)
		}
		// An unknown method is unknown for every client, whatever its
		// scopes: OpenClaw's message, and details saying so.
		res = c.call("1:u", "no.such.method", nil)
		if code, d := errCode(res); code != "INVALID_REQUEST" || d != "UNKNOWN_METHOD" || res["error"].(map[string]any)["message"] != "unknown method: no.such.method" {
			t.Fatalf("unknown method: %v", res)
		}
		// Invalid frame after hello: id "invalid".
		c.sendRaw([]byte(`{"type":"req","id":"x"`))
		res = c.readRes("invalid")
		if code, _ := errCode(res); code != "INVALID_REQUEST" || !strings.HasPrefix(res["error"].(map[string]any)["message"].(string), "invalid request frame: ") {
			t.Fatalf("invalid frame: %v", res)
		}
		res = c.call("1:l", "logs.tail", frame{"limit": "ten"})
		if code, _ := errCode(res); code != "INVALID_REQUEST" || !strings.Contains(fmt.Sprint(res["error"]), "invalid logs.tail params: at /limit") {
			t.Fatalf("bad params: %v", res)
		}
	})
	t.Run("gateway-client with v2 device", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		c := dialRaw(t, g.url(), nil)
		ch := c.mustRead()
		nonce := ch["payload"].(map[string]any)["nonce"].(string)
		dev := signDevice(priv, "gateway-client", "backend", "operator", []string{"operator.read", "operator.write"}, g.token, nonce, time.Now())
		c.send(backendConnect(g.token, dev))
		res := c.readRes("c1")
		if res["ok"] != true || res["payload"].(map[string]any)["type"] != "hello-ok" {
			t.Fatalf("backend connect: %v", res)
		}
		res = c.call("h1", "health", frame{})
		if res["ok"] != true {
			t.Fatalf("health: %v", res)
		}
		// system-event needs operator.admin, as in OpenClaw.
		res = c.call("e1", "system-event", frame{"text": "deploy done"})
		if code, d := errCode(res); code != "FORBIDDEN" || d != "MISSING_SCOPE" {
			t.Fatalf("system-event with write scope: %v", res)
		}
	})
}

func TestHandshakeRejections(t *testing.T) {
	g := startGW(t, gwOpts{config: `{"gateway":{"auth":{"rateLimit":{"maxAttempts":50}},"controlUi":{"allowedOrigins":["https://ok.example"]}}}`})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	type tc struct {
		name      string
		build     func(nonce string) any // frame or raw []byte
		code      string
		detail    string
		closeCode websocket.StatusCode
	}
	withParams := func(f func(p frame)) func(string) any {
		return func(string) any {
			c := cliConnect(g.token)
			f(c["params"].(frame))
			return c
		}
	}
	devCase := func(mut func(d frame, nonce string)) func(string) any {
		return func(nonce string) any {
			d := signDevice(priv, "gateway-client", "backend", "operator", []string{"operator.read", "operator.write"}, g.token, nonce, time.Now())
			mut(d, nonce)
			return backendConnect(g.token, d)
		}
	}
	cases := []tc{
		{"first request not connect", func(string) any { return frame{"type": "req", "id": "1", "method": "health"} }, "INVALID_REQUEST", "", 1008},
		{"protocol mismatch", withParams(func(p frame) { p["minProtocol"], p["maxProtocol"] = 5, 6 }), "INVALID_REQUEST", "PROTOCOL_MISMATCH", 1002},
		{"protocol 3 for an operator", withParams(func(p frame) { p["minProtocol"], p["maxProtocol"] = 3, 3 }), "INVALID_REQUEST", "PROTOCOL_MISMATCH", 1002},
		{"wrong token", withParams(func(p frame) { p["auth"] = frame{"token": "nope"} }), "INVALID_REQUEST", "AUTH_TOKEN_MISMATCH", 1008},
		{"missing token", withParams(func(p frame) { delete(p, "auth") }), "INVALID_REQUEST", "AUTH_TOKEN_MISSING", 1008},
		{"unknown connect field", withParams(func(p frame) { p["extra"] = true }), "INVALID_REQUEST", "", 1008},
		{"bad client id", withParams(func(p frame) { p["client"].(frame)["id"] = "evil" }), "INVALID_REQUEST", "", 1008},
		{"device nonce", devCase(func(d frame, _ string) { d["nonce"] = "other" }), "INVALID_REQUEST", "DEVICE_AUTH_NONCE_MISMATCH", 1008},
		{"device signature", devCase(func(d frame, _ string) {
			d["signature"] = base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		}), "INVALID_REQUEST", "DEVICE_AUTH_SIGNATURE_INVALID", 1008},
		{"device expired", func(nonce string) any {
			d := signDevice(priv, "gateway-client", "backend", "operator", []string{"operator.read", "operator.write"}, g.token, nonce, time.Now().Add(-5*time.Minute))
			return backendConnect(g.token, d)
		}, "INVALID_REQUEST", "DEVICE_AUTH_SIGNATURE_EXPIRED", 1008},
		{"device id", devCase(func(d frame, _ string) { d["id"] = strings.Repeat("ab", 32) }), "INVALID_REQUEST", "DEVICE_AUTH_DEVICE_ID_MISMATCH", 1008},
		{"device key", devCase(func(d frame, _ string) { d["publicKey"] = "AAAA" }), "INVALID_REQUEST", "DEVICE_AUTH_PUBLIC_KEY_INVALID", 1008},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, g.url(), nil)
			ch := rc.mustRead()
			nonce := ch["payload"].(map[string]any)["nonce"].(string)
			req := c.build(nonce)
			rc.send(req)
			res := rc.mustRead()
			if res["type"] != "res" || res["ok"] != false {
				t.Fatalf("want an error response, got %v", res)
			}
			if code, detail := errCode(res); code != c.code || detail != c.detail {
				t.Fatalf("error = %s/%s, want %s/%s: %v", code, detail, c.code, c.detail, res["error"])
			}
			if code, reason := rc.expectClose(); code != c.closeCode {
				t.Fatalf("close = %d %q, want %d", code, reason, c.closeCode)
			}
		})
	}
	t.Run("invalid frame before hello closes", func(t *testing.T) {
		rc := dialRaw(t, g.url(), nil)
		rc.mustRead()
		rc.sendRaw([]byte("{not json"))
		if code, _ := rc.expectClose(); code != 1008 {
			t.Fatalf("close = %d, want 1008", code)
		}
	})
	t.Run("oversize frame before hello", func(t *testing.T) {
		rc := dialRaw(t, g.url(), nil)
		rc.mustRead()
		rc.sendRaw([]byte(`{"type":"req","id":"1","method":"connect","params":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`))
		if code, _ := rc.expectClose(); code != 1009 {
			t.Fatalf("close = %d, want 1009", code)
		}
	})
	t.Run("origin not allowed", func(t *testing.T) {
		rc := dialRaw(t, g.url(), http.Header{"Origin": {"https://evil.example"}})
		if code, _ := rc.expectClose(); code != 1008 {
			t.Fatalf("close = %d, want 1008", code)
		}
		ok := dialRaw(t, g.url(), http.Header{"Origin": {"https://ok.example"}})
		ok.hello(cliConnect(g.token))
	})
	t.Run("password mode", func(t *testing.T) {
		pg := startGW(t, gwOpts{token: "-", args: []string{"--password", "s3cret"}})
		rc := dialRaw(t, pg.url(), nil)
		rc.mustRead()
		c := cliConnect("")
		c["params"].(frame)["auth"] = frame{"password": "wrong"}
		rc.send(c)
		if code, d := errCode(rc.mustRead()); code != "INVALID_REQUEST" || d != "AUTH_PASSWORD_MISMATCH" {
			t.Fatalf("got %s/%s", code, d)
		}
		ok := dialRaw(t, pg.url(), nil)
		c = cliConnect("")
		c["params"].(frame)["auth"] = frame{"password": "s3cret"}
		ok.hello(c)
	})
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	g := startGW(t, gwOpts{})
	rc := dialRaw(t, g.url(), nil)
	rc.mustRead()
	start := time.Now()
	code, reason := rc.expectClose()
	if code != 1000 || !strings.Contains(reason, "handshake timeout") {
		t.Fatalf("close = %d %q, want 1000 handshake timeout", code, reason)
	}
	if d := time.Since(start); d < 14*time.Second || d > 20*time.Second {
		t.Fatalf("closed after %s, want about 15 s", d)
	}
}

func TestAuthRateLimit(t *testing.T) {
	g := startGW(t, gwOpts{config: `{"gateway":{"auth":{"rateLimit":{"maxAttempts":3,"windowMs":60000,"lockoutMs":300000}}}}`})
	for i := 0; i < 3; i++ {
		rc := dialRaw(t, g.url(), nil)
		rc.mustRead()
		rc.send(cliConnect("wrong"))
		res := rc.mustRead()
		_, d := errCode(res)
		want := "AUTH_TOKEN_MISMATCH"
		if i == 2 {
			want = "AUTH_RATE_LIMITED"
		}
		if d != want {
			t.Fatalf("attempt %d: %s, want %s", i+1, d, want)
		}
	}
	// Locked out: a wrong token is refused with a retry hint; the right
	// one still gets in, because on loopback every local user shares the
	// address and could otherwise lock the operator out.
	rc := dialRaw(t, g.url(), nil)
	rc.mustRead()
	rc.send(cliConnect("wrong"))
	res := rc.mustRead()
	e := res["error"].(map[string]any)
	if _, d := errCode(res); d != "AUTH_RATE_LIMITED" || e["retryable"] != true || e["retryAfterMs"].(float64) <= 0 {
		t.Fatalf("locked out: %v", res)
	}
	rc = dialRaw(t, g.url(), nil)
	rc.mustRead()
	rc.send(cliConnect(g.token))
	if res := rc.mustRead(); res["ok"] != true || res["payload"].(map[string]any)["type"] != "hello-ok" {
		t.Fatalf("the right token on loopback during a lockout: %v", res)
	}
}
