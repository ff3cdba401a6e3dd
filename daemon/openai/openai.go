// Package openai serves the OpenAI-compatible HTTP API on the gateway's
// port: POST /v1/chat/completions (JSON, or SSE with stream:true), GET
// /v1/models and POST /v1/responses (text in, text out, SSE with
// stream:true). Every request is an agent run (package agent); the model
// is "gateway" (the default agent) or "gateway/<agentId>" (agent.ModelNames;
// models.list names them alike). Response shapes follow OpenAI's API so
// existing client libraries work unchanged.
//
// The endpoints are off until enabled in the "http" config section: while
// off they answer 404, and a hot reload turns them on or off. Requests
// need `Authorization: Bearer <gateway token or password>` (401 without,
// 429 after repeated failures); bodies over http.maxBodyBytes get 413 and
// bad JSON 400, both as OpenAI-style error objects.
//
// Requests are stateless (the conversation comes in the request) unless
// they carry OpenAI's "user" field, which selects a per-user session
// transcript. Nothing here touches the OS.
package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Authorizer checks a request's credentials, writing 401/429 itself when
// they fail (gateway.Host.AuthorizeHTTP).
type Authorizer interface {
	AuthorizeHTTP(w http.ResponseWriter, r *http.Request) bool
}

// API is the HTTP handlers. It is a gateway extension with routes and
// no methods or events; gatewayd runs it as part of the agent feature
// (cmd/gatewayd/features.go), over that feature's agent.Manager.
type API struct {
	m    *agent.Manager
	log  *slog.Logger
	cfg  atomic.Pointer[config.HTTPConfig]
	auth atomic.Value // Authorizer
}

// NewAPI returns the handlers over m, configured by cfg.
func NewAPI(m *agent.Manager, cfg *config.Config, log *slog.Logger) *API {
	a := &API{m: m, log: log.With("feature", "openai")}
	a.Apply(cfg)
	return a
}

// Apply takes a reloaded config.
func (a *API) Apply(cfg *config.Config) {
	if cfg == nil {
		cfg = config.Default()
	}
	h := cfg.WithDefaults().HTTP
	a.cfg.Store(&h)
}

// Name implements gateway.Extension.
func (a *API) Name() string { return "openai" }

// Methods implements gateway.Extension: the API serves HTTP only.
func (a *API) Methods() []gateway.Method { return nil }

// Events implements gateway.Extension: the API emits none.
func (a *API) Events() []string { return nil }

// Bind takes the current server generation, which checks credentials.
func (a *API) Bind(h gateway.Host) {
	var auth Authorizer = h
	a.auth.Store(&auth)
}

// Routes are the API's patterns.
func (a *API) Routes() []gateway.Route {
	return []gateway.Route{
		{Pattern: "POST /v1/chat/completions", Handler: a.endpoint(func(c *config.HTTPConfig) bool { return c.Endpoints.ChatCompletions.Enabled }, a.chatCompletions)},
		{Pattern: "GET /v1/models", Handler: a.endpoint(func(c *config.HTTPConfig) bool {
			return c.Endpoints.ChatCompletions.Enabled || c.Endpoints.Responses.Enabled
		}, a.models)},
		{Pattern: "GET /v1/models/{id...}", Handler: a.endpoint(func(c *config.HTTPConfig) bool {
			return c.Endpoints.ChatCompletions.Enabled || c.Endpoints.Responses.Enabled
		}, a.model)},
		{Pattern: "POST /v1/responses", Handler: a.endpoint(func(c *config.HTTPConfig) bool { return c.Endpoints.Responses.Enabled }, a.responses)},
	}
}

// endpoint wraps a handler with the on/off switch (404 when off), the
// credentials check and the body limit.
func (a *API) endpoint(on func(*config.HTTPConfig) bool, h func(w http.ResponseWriter, r *http.Request, cfg *config.HTTPConfig)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := a.cfg.Load()
		if !on(cfg) {
			http.NotFound(w, r)
			return
		}
		authp, _ := a.auth.Load().(*Authorizer)
		if authp == nil {
			writeError(w, http.StatusServiceUnavailable, "the gateway is starting; retry", "server_error", "")
			return
		}
		if !(*authp).AuthorizeHTTP(w, r) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, int64(cfg.MaxBodyBytes))
		h(w, r, cfg)
	})
}

// errorBody is OpenAI's error object.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	d := errorDetail{Message: msg, Type: typ}
	if code != "" {
		d.Code = &code
	}
	writeJSON(w, status, errorBody{Error: d})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b = append(b, '\n')
	_, _ = w.Write(b)
}

// readBody decodes the JSON request body into v, answering 413 or 400
// itself on failure.
func readBody(w http.ResponseWriter, r *http.Request, cfg *config.HTTPConfig, v any) bool {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes (http.maxBodyBytes)", cfg.MaxBodyBytes), "invalid_request_error", "request_too_large")
			return false
		}
		writeError(w, http.StatusBadRequest, "cannot read the request body: "+err.Error(), "invalid_request_error", "")
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error()+" (the body must be a JSON object)", "invalid_request_error", "invalid_json")
		return false
	}
	return true
}

func modelNotFound(w http.ResponseWriter, model string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist (use %q or %q; GET /v1/models lists them)", model, agent.ModelPrefix, agent.ModelPrefix+"/<agentId>"), "invalid_request_error", "model_not_found")
}

// runError writes a failed start (INVALID_REQUEST 400, busy 429, else 503).
func runStartError(w http.ResponseWriter, perr *protocol.Error) {
	switch {
	case perr.Code == protocol.ErrInvalidRequest:
		writeError(w, http.StatusBadRequest, perr.Message, "invalid_request_error", "")
	case perr.DetailCode() == "TOO_MANY_RUNS":
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, perr.Message, "rate_limit_error", "rate_limit_exceeded")
	default:
		writeError(w, http.StatusServiceUnavailable, perr.Message, "server_error", "")
	}
}

// runFailed writes the error of a run that ended badly (504 on timeout).
func runFailed(w http.ResponseWriter, res *agent.Result) {
	if res.Status == agent.StatusTimeout {
		writeError(w, http.StatusGatewayTimeout, res.Error.Message, "server_error", protocol.ErrAgentTimeout)
		return
	}
	msg := "agent run failed"
	if res.Error != nil {
		msg = res.Error.Message
	}
	writeError(w, http.StatusBadGateway, msg, "server_error", "agent_error")
}

// modelObject is one entry of /v1/models.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelsCreated is the fixed "created" of the gateway's models.
const modelsCreated = 1767225600 // 2026-01-01

func (a *API) modelList() []modelObject {
	ac := a.m.Agents()
	names := agent.ModelNames(&ac)
	out := make([]modelObject, len(names))
	for i, n := range names {
		out[i] = modelObject{ID: n, Object: "model", Created: modelsCreated, OwnedBy: "gatewayd"}
	}
	return out
}

func (a *API) models(w http.ResponseWriter, _ *http.Request, _ *config.HTTPConfig) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": a.modelList()})
}

func (a *API) model(w http.ResponseWriter, r *http.Request, _ *config.HTTPConfig) {
	id := r.PathValue("id")
	for _, m := range a.modelList() {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	modelNotFound(w, id)
}
