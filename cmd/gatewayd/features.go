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
	func(d *featureDeps) (feature, error) {
		f, err := openai.NewFeature(agent.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: d.Getenv})
		if err != nil {
			return nil, err
		}
		d.Agents = f
		return f, nil
	},
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
