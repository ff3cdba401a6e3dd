package lifecycle

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// Feature is a feature package (agent runs, channels, nodes, HTTP APIs,
// the control UI) as the daemon sees it: a gateway extension that lives
// for the whole process, takes hot config changes and is closed at exit.
type Feature interface {
	gateway.Extension
	// Apply takes a new effective config after a successful reload. The
	// config has been validated; Apply must not fail.
	Apply(cfg *config.Config)
	// Close stops background work (runs, retries) at process exit.
	Close() error
}

// FeatureConstructor builds one feature.
type FeatureConstructor func(d *FeatureDeps) (Feature, error)

// FeatureDeps is what feature constructors get. Constructors run in order
// and may fill in fields for later ones (the agent manager for the hooks,
// say).
type FeatureDeps struct {
	Config  *config.Config
	Store   *store.Store
	Log     *slog.Logger
	Paths   config.Paths
	Profile string
	Version string
	Getenv  func(string) string
	// Agents starts and waits for agent runs; set by the agent feature for
	// the features after it (hooks, the HTTP APIs).
	Agents agent.Runner
}

// storeOpenTimeout bounds the wait for a previous gateway (on --force, or a
// systemd restart) to release the state store's lock.
const storeOpenTimeout = 10 * time.Second

// startFeatures opens the state store and builds every feature.
func (d *Daemon) startFeatures() error {
	st, err := store.Open(filepath.Join(d.paths.StateDir, store.FileName), storeOpenTimeout)
	if err != nil {
		return err
	}
	deps := &FeatureDeps{Config: d.cfg, Store: st, Log: d.log, Paths: d.paths, Profile: d.o.Profile.Name(), Version: d.o.Version, Getenv: d.getenv}
	d.store = st
	for _, build := range d.o.Features {
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
func (d *Daemon) applyFeatures(cfg *config.Config) {
	for _, f := range d.features {
		f.Apply(cfg)
	}
}

// closeFeatures closes the features (last first) and the state store.
func (d *Daemon) closeFeatures() {
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
