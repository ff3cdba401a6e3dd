package main

import (
	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/hooks"
	"github.com/gatewayd/gatewayd/daemon/lifecycle"
	"github.com/gatewayd/gatewayd/daemon/nodes"
	"github.com/gatewayd/gatewayd/daemon/openai"
	"github.com/gatewayd/gatewayd/daemon/tools"
	"github.com/gatewayd/gatewayd/daemon/ui"
)

// featureConstructors builds the features, in order. Each feature package
// adds its line here; the lifecycle package runs them at startup.
var featureConstructors = []lifecycle.FeatureConstructor{
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) {
		return ui.New(ui.Options{Version: d.Version, Logger: d.Log, Enabled: d.Config.Gateway.ControlUI.Enabled})
	},
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) { return nodes.New(d.Config, d.Store, d.Log) },
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) {
		f, err := openai.NewFeature(agent.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: d.Getenv})
		if err != nil {
			return nil, err
		}
		d.Agents = f
		return f, nil
	},
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) {
		return channels.New(channels.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: d.Getenv, Version: d.Version})
	},
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) {
		return tools.New(tools.Options{Config: d.Config, Log: d.Log, Builtins: tools.CoreBuiltins()}), nil
	},
	func(d *lifecycle.FeatureDeps) (lifecycle.Feature, error) {
		return hooks.New(hooks.Options{Config: d.Config, Log: d.Log, Getenv: d.Getenv, Agents: func() hooks.AgentRunner { return d.Agents }}), nil
	},
}
