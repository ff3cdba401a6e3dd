package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestMessageSendAndChannelsStatus runs `message send` and `channels
// status` in-process against the real gatewayd with a webhook channel to a
// loopback receiver that checks the signature.
func TestMessageSendAndChannelsStatus(t *testing.T) {
	bin := buildGatewayd(t)
	const secret = "ctl-test-secret"
	var mu sync.Mutex
	var got, badSig int
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		mu.Lock()
		got++
		if "sha256="+hex.EncodeToString(mac.Sum(nil)) != r.Header.Get("X-Gateway-Signature") {
			badSig++
		}
		mu.Unlock()
	}))
	defer rcv.Close()
	dir := t.TempDir()
	cfg := map[string]any{"channels": map[string]any{"webhooks": map[string]any{
		"ops":  map[string]any{"url": rcv.URL, "secret": secret, "targets": []string{"ops"}},
		"dead": map[string]any{"url": "http://127.0.0.1:1/", "secretEnv": "UNSET_SECRET_FOR_TEST"},
	}}}
	raw, _ := json.Marshal(cfg)
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "config.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := gatewaydtest.Start(context.Background(), bin, gatewaydtest.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	// gatewayctl reads config and token files from these: keep it off the host's.
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "ctl", "config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "ctl", "state"))
	for _, k := range []string{"GATEWAY_URL", "GATEWAY_TOKEN", "GATEWAY_PASSWORD", "GATEWAY_PROFILE", "GATEWAY_PORT", "GATEWAY_CONFIG_PATH", "GATEWAY_STATE_DIR"} {
		t.Setenv(k, "")
	}
	ctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runContext(context.Background(), append(args, "--url", g.URL, "--token", g.Token), &out, &errb)
		return code, out.String(), errb.String()
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // regexp
		stderr     string // regexp
		deliveries int    // total at the receiver afterwards
	}{
		{name: "send", args: []string{"message", "send", "--target", "ops", "--message", "deploy done", "--idempotency-key", "k1"},
			stdout: `^sent to ops via ops \(webhook, 1 attempt, HTTP 200, delivery [0-9a-f-]+, idempotency key k1\)\n$`, deliveries: 1},
		{name: "repeat is not delivered", args: []string{"message", "send", "--target", "ops", "--message", "deploy done", "--idempotency-key", "k1"},
			stdout: `^already sent to ops via ops \(webhook\) at .*: idempotency key k1 was delivered before, not sent again\n$`, deliveries: 1},
		{name: "json", args: []string{"message", "send", "--target", "ops", "--message", "again", "--json"},
			stdout: `"deduplicated": false`, deliveries: 2},
		{name: "not linked", args: []string{"message", "send", "--target", "nowhere", "--message", "x"}, code: 1,
			stderr: `send: NOT_LINKED: no channel delivers to target "nowhere"`, deliveries: 2},
		{name: "channel not linked", args: []string{"message", "send", "--target", "ops", "--channel", "dead", "--message", "x"}, code: 1,
			stderr: `NOT_LINKED: channel "dead" is not linked: .*UNSET_SECRET_FOR_TEST is not set`, deliveries: 2},
		{name: "usage", args: []string{"message", "send", "--message", "x"}, code: 2, stderr: `needs --target and --message`, deliveries: 2},
		{name: "status", args: []string{"channels", "status"}, code: 1,
			stdout: `(?s)CHANNEL +KIND +STATE +LINKED +TARGETS.*dead +webhook +unlinked +no +- .*ops +webhook +ready +yes +ops +[0-9]+s ago to ops.*dead: not linked: `,
			stderr: `1 of 2 channels cannot deliver`, deliveries: 2},
		{name: "status probe json", args: []string{"channels", "status", "--probe", "--json"}, code: 1,
			stdout: `(?s)"name": "ops".*"probe": \{\s*"ok": true`, deliveries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := ctl(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(out) {
				t.Errorf("stdout %q does not match %q", out, tt.stdout)
			}
			if tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(errs) {
				t.Errorf("stderr %q does not match %q", errs, tt.stderr)
			}
			mu.Lock()
			n, bad := got, badSig
			mu.Unlock()
			if n != tt.deliveries || bad != 0 {
				t.Errorf("receiver has %d deliveries (%d badly signed), want %d", n, bad, tt.deliveries)
			}
		})
	}
	if !strings.Contains(g.Output(), "message sent") {
		t.Errorf("the gateway did not log the delivery:\n%s", g.Output())
	}
}
