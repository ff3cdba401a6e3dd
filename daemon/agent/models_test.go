package agent_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

// TestModelsList: models.list, as OpenClaw's clients call it (its CLI's
// params; a read-only operator), answers one model per agent in
// OpenClaw's model-choice form, named as the OpenAI-compatible API names
// them; the provider filter and agentId act as in OpenClaw; params
// OpenClaw's schema refuses are refused.
func TestModelsList(t *testing.T) {
	g := startGateway(t, t.TempDir(), `{"agents":{"list":{"ops":{"echo":{"delayMs":1}}}}}`)
	c := gatewaydtest.Dial(t, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead}})
	// OpenClaw's CLI calls models.list only on a gateway that announces
	// the capability.
	if caps := c.Hello().Features.Capabilities; !slices.Equal(caps, []string{agent.CapModelCatalog}) {
		t.Errorf("hello-ok features.capabilities %v, want [%s]", caps, agent.CapModelCatalog)
	}

	raw, err := c.Call(ctxT(t, 10*time.Second), "models.list", map[string]any{"view": "default", "includeDetails": true})
	if err != nil {
		t.Fatal(err)
	}
	// Exactly OpenClaw's fields: its model-choice schema is closed, and
	// id, name and provider are required.
	want := `{"models":[` +
		`{"id":"gateway/main","name":"main","provider":"gateway","alias":"gateway","tags":["default"],"input":["text"]},` +
		`{"id":"gateway/ops","name":"ops","provider":"gateway","input":["text"]}]}`
	var got bytes.Buffer
	if err := json.Compact(&got, raw); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Fatalf("models.list\n got %s\nwant %s", got.String(), want)
	}

	// Each id is a model name of the OpenAI-compatible API, for its agent.
	var ml agent.ModelsListPayload
	if err := json.Unmarshal(raw, &ml); err != nil {
		t.Fatal(err)
	}
	ac := config.AgentsConfig{Default: "main", List: map[string]config.AgentConfig{"main": {}, "ops": {}}}
	for _, m := range ml.Models {
		if id, ok := agent.AgentForModel(&ac, m.ID); !ok || id != m.Name {
			t.Errorf("model %q: AgentForModel = %q, %v; want agent %q", m.ID, id, ok, m.Name)
		}
	}
	if id, ok := agent.AgentForModel(&ac, ml.Models[0].Alias); !ok || id != "main" {
		t.Errorf("alias %q: AgentForModel = %q, %v; want the default agent", ml.Models[0].Alias, id, ok)
	}

	for _, tc := range []struct {
		params map[string]any
		n      int
	}{
		{map[string]any{"provider": "gateway", "view": "all"}, 2},
		{map[string]any{"provider": "openai"}, 0},
		{map[string]any{"agentId": "ops", "refresh": true}, 2},
		{map[string]any{"sessionKey": "agent:ops:main", "preparedOnly": true, "view": "configured"}, 2},
	} {
		var out agent.ModelsListPayload
		if err := call(t, c, "models.list", tc.params, &out); err != nil {
			t.Errorf("models.list %v: %v", tc.params, err)
		} else if out.Models == nil || len(out.Models) != tc.n {
			t.Errorf("models.list %v: %+v, want %d models", tc.params, out, tc.n)
		}
	}
	for _, p := range []map[string]any{
		{"agentId": "nobody"},
		{"sessionKey": "agent:main:main", "authProfileId": "p"},
		{"preparedOnly": true, "refresh": true},
		{"view": "everything"},
		{"bogus": 1},
	} {
		if code, _ := errCode(call(t, c, "models.list", p, nil)); code != protocol.ErrInvalidRequest {
			t.Errorf("models.list %v: %q, want INVALID_REQUEST", p, code)
		}
	}
}
