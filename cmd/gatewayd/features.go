package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/buildinfo"
	"github.com/gatewayd/gatewayd/daemon/channels"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/hooks"
	"github.com/gatewayd/gatewayd/daemon/nodes"
	"github.com/gatewayd/gatewayd/daemon/openai"
	"github.com/gatewayd/gatewayd/daemon/store"
	"github.com/gatewayd/gatewayd/daemon/tools"
	"github.com/gatewayd/gatewayd/daemon/ui"
)

// feature is a feature package (agent runs, channels, nodes, HTTP APIs,
// the control UI) as the daemon sees it: a gateway extension that lives
// for the whole process, takes hot config changes and is closed at exit.
type feature interface {
	gateway.Extension
	// Apply takes a new effective config after a successful reload. The
	// config has been validated; Apply must not fail.
	Apply(cfg *config.Config)
	// Close stops background work (runs, retries) at process exit.
	Close() error
}

// featureDeps is what feature constructors get. Constructors run in the
// order of featureConstructors and may fill in fields for later ones (the
// agent manager for the hooks, say).
type featureDeps struct {
	Config  *config.Config
	Store   *store.Store
	Log     *slog.Logger
	Paths   config.Paths
	Profile string
	Version string
	// Agents starts and waits for agent runs; set by the agent feature for
	// the features after it (hooks, the HTTP APIs).
	Agents AgentRunner
}

// AgentRunner is the agent feature's Go API for other features: start (or
// join, by idempotency key) a run, and wait for its end.
type AgentRunner interface {
	// StartAgent starts a run (or joins the run with the same
	// idempotencyKey within 5 minutes) and returns its runId.
	StartAgent(ctx context.Context, message, agentID, sessionKey, idempotencyKey string) (runID string, err error)
	// WaitAgent waits for the run's end: status "ok", "error" or
	// "timeout", and the run's summary (the assistant's text) or error.
	WaitAgent(ctx context.Context, runID string) (status, summary string, err error)
}

// featureConstructors builds the features, in order. Each feature package
// adds its line here.
var featureConstructors = []func(d *featureDeps) (feature, error){
	func(d *featureDeps) (feature, error) {
		return ui.New(ui.Options{Version: d.Version, Logger: d.Log, Enabled: d.Config.Gateway.ControlUI.Enabled})
	},
	func(d *featureDeps) (feature, error) { return nodes.New(d.Config, d.Store, d.Log) },
	func(d *featureDeps) (feature, error) {
		f, err := openai.NewFeature(agent.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: os.Getenv})
		if err != nil {
			return nil, err
		}
		d.Agents = f
		return f, nil
	},
	func(d *featureDeps) (feature, error) {
		return channels.New(channels.Options{Config: d.Config, Store: d.Store, Log: d.Log, Getenv: os.Getenv, Version: d.Version,
			StateDir: d.Paths.StateDir, Agents: func() channels.AgentRunner { return d.Agents }})
	},
	func(d *featureDeps) (feature, error) {
		return tools.New(tools.Options{Config: d.Config, Log: d.Log, Builtins: tools.CoreBuiltins()}), nil
	},
	func(d *featureDeps) (feature, error) {
		return hooks.New(hooks.Options{Config: d.Config, Log: d.Log, Getenv: os.Getenv, Agents: func() hooks.AgentRunner { return d.Agents }}), nil
	},
}

// storeOpenTimeout bounds the wait for a previous gateway (on --force, or a
// systemd restart) to release the state store's lock.
const storeOpenTimeout = 10 * time.Second

// startFeatures opens the state store and builds every feature.
func (d *daemon) startFeatures() error {
	st, err := store.Open(filepath.Join(d.paths.StateDir, store.FileName), storeOpenTimeout)
	if err != nil {
		return err
	}
	deps := &featureDeps{Config: d.cfg, Store: st, Log: d.log, Paths: d.paths, Profile: d.profile.Name(), Version: buildinfo.Get().Version}
	d.store = st
	for _, build := range featureConstructors {
		f, err := build(deps)
		if err != nil {
			d.closeFeatures()
			return fmt.Errorf("starting features: %w", err)
		}
		d.features = append(d.features, f)
		d.exts = append(d.exts, f)
	}
	return nil
}

// applyFeatures hands a reloaded config to every feature.
func (d *daemon) applyFeatures(cfg *config.Config) {
	for _, f := range d.features {
		f.Apply(cfg)
	}
}

// closeFeatures closes the features (last first) and the state store.
func (d *daemon) closeFeatures() {
	var errs []error
	for i := len(d.features) - 1; i >= 0; i-- {
		if err := d.features[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.features[i].Name(), err))
		}
	}
	d.features, d.exts = nil, nil
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			errs = append(errs, err)
		}
		d.store = nil
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("closing features", "err", err)
	}
}
