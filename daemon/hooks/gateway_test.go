package hooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

const hookToken = "real-daemon-hook-token-0123456789"

func post(t *testing.T, url string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	resp, raw := testutil.PostJSON(t, context.Background(), url, headers, body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s answered non-JSON %q", url, raw)
	}
	return resp.StatusCode, m
}

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// TestGatewayHooks runs the hooks on the real gatewayd: off by default,
// switched on by editing the config file (hot reload, no restart), then
// authentication and the agent hook.
func TestGatewayHooks(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{})
	good := map[string]string{"Authorization": "Bearer " + hookToken}
	if code, _ := post(t, g.HTTPURL+"/hooks/wake", good, `{"text":"x"}`); code != 404 {
		t.Fatalf("hooks off by default: %d, want 404", code)
	}
	if code, _ := post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"x"}`); code != 404 {
		t.Fatalf("agent hook off by default: %d, want 404", code)
	}
	pid := g.Cmd.Process.Pid
	gatewaydtest.WriteConfigT(t, g.ConfigPath, `{"hooks": {"enabled": true, "token": "`+hookToken+`"}}`)
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
	if code != 200 || body["ok"] != true || body["runId"] == "" || body["status"] != "ok" {
		t.Errorf("agent hook with the default (echo) agent: %d %v", code, body)
	}
	code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"fire and forget"}`)
	if code != 200 || body["ok"] != true || body["runId"] == "" {
		t.Errorf("agent hook without waiting: %d %v", code, body)
	}
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// TestGatewayHooksReach checks on the real gatewayd what the hooks token
// can reach: an earlier build ran any agent, wrote into any
// session including agent:main:main, and by reusing an operator's run id
// as Idempotency-Key it joined that run and got its answer.
func TestGatewayHooksReach(t *testing.T) {
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{
		"hooks": {"enabled": true, "token": "` + hookToken + `"},
		"agents": {"list": {"main": {}, "ops": {"backend": "echo"}}}}`})
	good := map[string]string{"Authorization": "Bearer " + hookToken}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead, protocol.ScopeWrite}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// An operator's run in the main session.
	_, ts, err := c.CallTwoStage(ctx, "agent", map[string]any{"message": "operator secret", "idempotencyKey": "op-run-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Final(ctx); err != nil {
		t.Fatal(err)
	}

	// Reusing its run id as Idempotency-Key starts a run of the hooks' own.
	h := map[string]string{"Authorization": "Bearer " + hookToken, "Idempotency-Key": "op-run-1"}
	code, body := post(t, g.HTTPURL+"/hooks/agent", h, `{"message":"hook message","waitForCompletion":true}`)
	if code != 200 || body["runId"] != "hook:op-run-1" || body["summary"] != "hook message" {
		t.Errorf("hooks reusing an operator's run id: %d %v, want a run hook:op-run-1 of its own", code, body)
	}
	if strings.Contains(fmt.Sprint(body), "operator secret") {
		t.Errorf("the hooks caller read the operator's run: %v", body)
	}

	// Sessions: only hook:*; the default is the run's own.
	for _, sk := range []string{"agent:main:main", "main", "hook:"} {
		code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"hook wrote here","sessionKey":"`+sk+`"}`)
		if code != 400 || !strings.Contains(errMessage(body), `does not start with "hook:"`) {
			t.Errorf("sessionKey %q: %d %v, want 400", sk, code, body)
		}
	}
	code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"threaded","sessionKey":"hook:pr-42","waitForCompletion":true}`)
	if code != 200 || body["status"] != "ok" {
		t.Errorf("sessionKey hook:pr-42: %d %v", code, body)
	}
	var hist struct {
		Messages []struct{ Text string } `json:"messages"`
	}
	for sk, want := range map[string]string{"agent:main:main": "operator secret", "hook:pr-42": "threaded", "hook:op-run-1": "hook message"} {
		if err := c.CallInto(ctx, "chat.history", map[string]any{"sessionKey": sk}, &hist); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, m := range hist.Messages {
			texts = append(texts, m.Text)
		}
		if len(texts) != 2 || texts[0] != want {
			t.Errorf("session %s holds %q, want only the %q exchange", sk, texts, want)
		}
	}

	// Agents: only the default one unless hooks.allowedAgentIds says more.
	code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"x","agentId":"ops"}`)
	if code != 403 || !strings.Contains(errMessage(body), "hooks.allowedAgentIds is unset") {
		t.Errorf("agent ops with allowedAgentIds unset: %d %v, want 403", code, body)
	}
	gatewaydtest.WriteConfigT(t, g.ConfigPath, `{"hooks": {"enabled": true, "token": "`+hookToken+`", "allowedAgentIds": ["ops"]},
		"agents": {"list": {"main": {}, "ops": {"backend": "echo"}}}}`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"x","agentId":"ops"}`)
		if code == 200 {
			break
		}
		if code != 403 || time.Now().After(deadline) {
			t.Fatalf("agent ops after allowing it: %d %v", code, body)
		}
		time.Sleep(50 * time.Millisecond) // the config watcher's debounce; bounded by deadline
	}
	if code, body = post(t, g.HTTPURL+"/hooks/agent", good, `{"message":"x"}`); code != 403 || !strings.Contains(errMessage(body), "hooks.allowedAgentIds is ops") {
		t.Errorf("the default agent once allowedAgentIds lists only ops: %d %v, want 403", code, body)
	}
}
