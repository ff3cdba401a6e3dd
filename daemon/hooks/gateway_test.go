package hooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client/gatewaytest"
)

const hookToken = "real-daemon-hook-token-0123456789"

func writeConfig(t *testing.T, path, cfg string) {
	t.Helper()
	if err := gatewaytest.WriteConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, url string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json") // the gateway refuses other bodies (415)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s answered non-JSON %q", url, raw)
	}
	return resp.StatusCode, m
}

func TestMain(m *testing.M) { os.Exit(gatewaytest.Main(m)) }

// TestGatewayHooks runs the hooks on the real gatewayd: off by default,
// switched on by editing the config file (hot reload, no restart), then
// authentication and the agent hook.
func TestGatewayHooks(t *testing.T) {
	g := gatewaytest.StartT(t, gatewaytest.Options{})
	good := map[string]string{"Authorization": "Bearer " + hookToken}
	if code, _ := post(t, g.HTTPURL+"/hooks/wake", good, `{"text":"x"}`); code != 404 {
		t.Fatalf("hooks off by default: %d, want 404", code)
	}
	if code, _ := post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"x"}`); code != 404 {
		t.Fatalf("agent hook off by default: %d, want 404", code)
	}
	pid := g.Cmd.Process.Pid
	writeConfig(t, g.ConfigPath, `{"hooks": {"enabled": true, "token": "`+hookToken+`"}}`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := post(t, g.HTTPURL+"/hooks/wake", good, `{"text":"deploy finished"}`)
		if code == 200 {
			if body["ok"] != true || body["mode"] != "now" {
				t.Errorf("wake: %v", body)
			}
			break
		}
		if code != 404 || time.Now().After(deadline) {
			t.Fatalf("wake after enabling hooks: %d %v\n%s", code, body, g.Output())
		}
		time.Sleep(50 * time.Millisecond) // the config watcher's debounce; bounded by deadline
	}
	if g.Cmd.Process.Pid != pid {
		t.Fatal("the gateway restarted; hooks must apply hot")
	}
	checks := []struct {
		name    string
		url     string
		headers map[string]string
		code    int
	}{
		{"x-gateway-token header", "/hooks/wake", map[string]string{"x-gateway-token": hookToken}, 200},
		{"gateway token is not the hooks token", "/hooks/wake", map[string]string{"Authorization": "Bearer " + g.Token}, 401},
		{"bad token", "/hooks/wake", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"query-string token", "/hooks/wake?token=" + hookToken, nil, 400},
	}
	for _, c := range checks {
		if code, body := post(t, g.HTTPURL+c.url, c.headers, `{"text":"x"}`); code != c.code {
			t.Errorf("%s: %d %v, want %d", c.name, code, body, c.code)
		}
	}

	code, body := post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"nightly report","waitForCompletion":true}`)
	if code == 503 && strings.Contains(body["error"].(map[string]any)["message"].(string), "not available") {
		t.Skip("SKIPPING the /hooks/agent part: this gatewayd has no agent feature yet (daemon/agent registers featureDeps.Agents); the rest passed")
	}
	if code != 200 || body["ok"] != true || body["runId"] == "" || body["status"] != "ok" {
		t.Errorf("agent hook with the default (echo) agent: %d %v", code, body)
	}
	code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"fire and forget"}`)
	if code != 200 || body["ok"] != true || body["runId"] == "" {
		t.Errorf("agent hook without waiting: %d %v", code, body)
	}
}
