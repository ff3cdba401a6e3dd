package agent

import (
	"context"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// gatewayd's models are its agents. The OpenAI-compatible API (package
// openai: GET /v1/models, the "model" of a request) and models.list (the
// catalog OpenClaw's clients read) name them alike: ModelPrefix is the
// default agent, ModelPrefix+"/<agentId>" each agent.

// ModelPrefix is the model name of the default agent, and (with a slash)
// the prefix of each agent's: "gateway", "gateway/ops".
const ModelPrefix = "gateway"

// ModelName is the model name of the agent id.
func ModelName(id string) string { return ModelPrefix + "/" + id }

// ModelNames are the model names of the agents: ModelPrefix (the default
// agent) first, then ModelName of each agent in id order.
func ModelNames(ac *config.AgentsConfig) []string {
	ids := ac.AgentIDs()
	out := make([]string, 0, len(ids)+1)
	out = append(out, ModelPrefix)
	for _, id := range ids {
		out = append(out, ModelName(id))
	}
	return out
}

// AgentForModel maps a model name to its agent's id; false for a name
// that is not one of ModelNames.
func AgentForModel(ac *config.AgentsConfig, model string) (string, bool) {
	if model == ModelPrefix {
		return ac.Default, true
	}
	id, ok := strings.CutPrefix(model, ModelPrefix+"/")
	if !ok {
		return "", false
	}
	_, known := ac.Agent(id)
	return id, known
}

// CapModelCatalog is the server capability of a gateway whose models.list
// answers its published catalog (OpenClaw's "published-model-catalog"):
// gatewayd's is its configured agents, with nothing to discover. OpenClaw's
// CLI (`openclaw models list`) requires it.
const CapModelCatalog = "published-model-catalog"

// Capabilities implements gateway.CapabilityProvider.
func (m *Manager) Capabilities() []string { return []string{CapModelCatalog} }

// ModelsListPayload is models.list's answer (OpenClaw's models.list
// result): the catalog, one entry per agent.
type ModelsListPayload struct {
	Models []ModelChoice `json:"models"`
}

// ModelChoice is one model in models.list: OpenClaw's model choice, with
// only the fields gatewayd knows (its schema is closed; context windows,
// availability and the like are left out rather than made up).
type ModelChoice struct {
	// ID is the agent's model name (ModelName). With Provider
	// ModelPrefix, OpenClaw's canonical key "<provider>/<id>" is that same
	// name, the one the OpenAI-compatible API takes.
	ID       string `json:"id"`
	Name     string `json:"name"`     // the agent id
	Provider string `json:"provider"` // ModelPrefix
	// Alias is ModelPrefix on the default agent's entry (it answers to
	// both names).
	Alias string   `json:"alias,omitempty"`
	Tags  []string `json:"tags,omitempty"` // "default" on the default agent's entry
	// Input is what a run takes: text.
	Input []string `json:"input"`
}

// modelsList is the catalog, filtered to provider when one is given.
func modelsList(ac *config.AgentsConfig, provider string) ModelsListPayload {
	out := ModelsListPayload{Models: []ModelChoice{}}
	if provider != "" && !strings.EqualFold(strings.TrimSpace(provider), ModelPrefix) {
		return out
	}
	for _, id := range ac.AgentIDs() {
		mc := ModelChoice{ID: ModelName(id), Name: id, Provider: ModelPrefix, Input: []string{"text"}}
		if id == ac.Default {
			mc.Alias, mc.Tags = ModelPrefix, []string{"default"}
		}
		out.Models = append(out.Models, mc)
	}
	return out
}

func (m *Manager) mModelsList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.ModelsListParams
	if perr := call.Decode("ModelsListParams", &p); perr != nil {
		return nil, perr
	}
	// The constraints of OpenClaw's schema that a struct cannot state.
	if p.SessionKey != "" && p.AuthProfileID != "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid models.list params: sessionKey and authProfileId exclude each other")
	}
	if p.PreparedOnly != nil && *p.PreparedOnly && p.Refresh != nil && *p.Refresh {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid models.list params: preparedOnly and refresh exclude each other")
	}
	if len(p.View) > 0 {
		switch strings.TrimSpace(string(p.View)) {
		case `"default"`, `"configured"`, `"provider-config"`, `"all"`:
		default:
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, `invalid models.list params: at /view: must be "default", "configured", "provider-config" or "all"`)
		}
	}
	ac := m.cfg.Load()
	if p.AgentID != "" {
		if _, ok := ac.Agent(p.AgentID); !ok {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, `unknown agent id "`+p.AgentID+`"`)
		}
	}
	return modelsList(ac, p.Provider), nil
}
