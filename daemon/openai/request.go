package openai

import (
	"net/http"

	"github.com/gatewayd/gatewayd/daemon/agent"
)

// What /v1/chat/completions and /v1/responses share: the model check, the
// run a request asks for, running it to its end or streaming it, and the
// code and message of a failed run.

// modelAgent maps the request's model to an agent id. It answers 400 for
// a missing model and 404 for an unknown one itself, and then returns
// false.
func (a *API) modelAgent(w http.ResponseWriter, model string) (string, bool) {
	if model == "" {
		writeError(w, http.StatusBadRequest, "you must provide a model parameter (\"gateway\" or \"gateway/<agentId>\")", "invalid_request_error", "")
		return "", false
	}
	ac := a.m.Agents()
	agentID, ok := agent.AgentForModel(&ac, model)
	if !ok {
		modelNotFound(w, model)
		return "", false
	}
	return agentID, true
}

// agentRequest is the run a request asks for: ephemeral, or in the user's
// own session when the request names a user (OpenAI's "user" field).
func agentRequest(agentID, user, system string, history []agent.ChatMessage, message string) agent.Request {
	req := agent.Request{Message: message, AgentID: agentID, Ephemeral: true, History: history, SystemPrompt: system}
	if user != "" {
		req.Ephemeral, req.SessionKey = false, sessionFor(agentID, user)
	}
	return req
}

// runToEnd runs req and waits for its end: done writes the answer of a run
// that ended ok; a failed start or run is answered with its error, and a
// client that went away with nothing.
func (a *API) runToEnd(w http.ResponseWriter, r *http.Request, req agent.Request, done func(*agent.Result)) {
	res, perr := a.execute(r.Context(), runOpts{req: req}, nil)
	switch {
	case perr != nil:
		runStartError(w, perr)
	case res == nil: // client gone
	case res.Status != agent.StatusOK:
		runFailed(w, res)
	default:
		done(res)
	}
}

// runStreaming runs req streaming: begin is called once the run is
// accepted, onDelta with each assistant delta. It returns the result, or
// nil when the start failed (answered here) or the client went away.
func (a *API) runStreaming(w http.ResponseWriter, r *http.Request, req agent.Request, begin func(runID string), onDelta func(string)) *agent.Result {
	res, perr := a.execute(r.Context(), runOpts{req: req, stream: true, onStart: begin}, onDelta)
	if perr != nil {
		runStartError(w, perr)
		return nil
	}
	return res
}

// runFailure is the error code and message of a run that did not end ok:
// AGENT_TIMEOUT for a timeout, else code.
func runFailure(res *agent.Result, code string) (string, string) {
	if res.Status == agent.StatusTimeout {
		code = "AGENT_TIMEOUT"
	}
	msg := "agent run failed"
	if res.Error != nil {
		msg = res.Error.Message
	}
	return code, msg
}
