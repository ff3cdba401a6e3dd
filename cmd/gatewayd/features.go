package main

import (
	"log/slog"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/hooks"
	"github.com/gatewayd/gatewayd/daemon/lifecycle"
	"github.com/gatewayd/gatewayd/daemon/nodes"
	"github.com/gatewayd/gatewayd/daemon/openai"
	"github.com/gatewayd/gatewayd/daemon/tools"
	"github.com/gatewayd/gatewayd/daemon/ui"
)

// The feature contract lives in daemon/lifecycle, which runs the
// constructors at startup; these names keep the list below readable.
type (
	feature     = lifecycle.Feature
	featureDeps = lifecycle.FeatureDeps
)

// featureConstructors builds the features, in order. Each feature package
// adds its line here.
var featureConstructors = []func(d *featureDeps) (feature, error){
	func(d *featureDeps) (feature, error) {
		return ui.New(ui.Options{Version: d.Version, Logger: d.Log, Enabled: d.Config.Gateway.ControlUI.Enabled})
	},
	func(d *featureDeps) (feature, error) { return nodes.New(d.Config, d.Store, d.Log) },
	newAgentFeature,
	func(d *featureDeps) (feature, error) {
		return channels.New(channels.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: d.Getenv, Version: d.Version,
			StateDir: d.Paths.StateDir, Agents: func() agent.Runner { return d.Agents }})
	},
	func(d *featureDeps) (feature, error) {
		return tools.New(tools.Options{Config: d.Config, Log: d.Log, Builtins: tools.CoreBuiltins()}), nil
	},
	func(d *featureDeps) (feature, error) {
		return hooks.New(hooks.Options{Config: d.Config, Log: d.Log, Getenv: d.Getenv, Agents: func() agent.Runner { return d.Agents }}), nil
	},
}

// agentFeature is the agent feature as gatewayd runs it: the agent.Manager
// (runs, their protocol methods and events, the agent.Runner the later
// features get as featureDeps.Agents) plus the OpenAI-compatible HTTP API
// over its runs (package openai).
type agentFeature struct {
	*agent.Manager
	api *openai.API
}

// newAgentFeature builds the agent manager and the HTTP API over it, and
// hands the manager to the features after it.
func newAgentFeature(d *featureDeps) (feature, error) {
	m, err := agent.New(agent.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: d.Getenv})
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &agentFeature{Manager: m, api: openai.NewAPI(m, d.Config, log)}
	d.Agents = f
	return f, nil
}

// Apply takes a reloaded config: the agents and the endpoints' switches.
func (f *agentFeature) Apply(cfg *config.Config) {
	f.Manager.Apply(cfg)
	f.api.Apply(cfg)
}

// Bind hands the current server generation to the manager and the API.
func (f *agentFeature) Bind(h gateway.Host) {
	f.Manager.Bind(h)
	f.api.Bind(h)
}

// Routes implements gateway.HTTPRoutes: the OpenAI-compatible endpoints.
func (f *agentFeature) Routes() []gateway.Route { return f.api.Routes() }
