package nodes

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// Store buckets (prefixed with the feature's name).
const (
	bucketPaired  = "nodes.paired"  // nodeId → pairedRecord
	bucketPending = "nodes.pending" // requestId → PairingRequest
)

// sweepInterval is how often expired pairing requests are looked for.
const sweepInterval = 250 * time.Millisecond

// Feature is the nodes-and-pairing gateway extension. It implements
// gateway.Extension, Admitter, Authenticator and ConnObserver. Create it
// with New; it is safe for concurrent use.
type Feature struct {
	log  *slog.Logger
	st   *store.Store
	cfg  atomic.Pointer[config.NodesConfig]
	host atomic.Pointer[hostRef]

	// mu guards the maps below. Mutations write the store first and change
	// the maps only when the transaction committed.
	mu      sync.Mutex
	paired  map[string]*pairedRecord             // nodeId →
	pending map[string]*nodeproto.PairingRequest // requestId →
	live    map[string]*liveNode                 // nodeId → its newest live connection
	conns   map[string]*liveNode                 // connId → every live node connection
	calls   map[string]*invocation               // invoke id →
	busy    map[string]int                       // nodeId → calls in flight

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type hostRef struct{ h gateway.Host }

// New loads the pairing state from st and starts the expiry of pending
// requests. cfg is the effective (defaulted, validated) config.
func New(cfg *config.Config, st *store.Store, log *slog.Logger) (*Feature, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Feature{
		log:     log.With("feature", "nodes"),
		st:      st,
		paired:  map[string]*pairedRecord{},
		pending: map[string]*nodeproto.PairingRequest{},
		live:    map[string]*liveNode{},
		conns:   map[string]*liveNode{},
		calls:   map[string]*invocation{},
		busy:    map[string]int{},
		stop:    make(chan struct{}),
	}
	f.Apply(cfg)
	if err := f.load(); err != nil {
		return nil, err
	}
	f.wg.Add(1)
	go f.sweepLoop()
	return f, nil
}

// load reads paired nodes and pending requests from the store.
func (f *Feature) load() error {
	err := f.st.View(func(tx *store.Tx) error {
		if err := tx.List(bucketPaired, "", func(key string, raw []byte) error {
			var r pairedRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("paired node %s: %w", key, err)
			}
			f.paired[key] = &r
			return nil
		}); err != nil {
			return err
		}
		return tx.List(bucketPending, "", func(key string, raw []byte) error {
			var r nodeproto.PairingRequest
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("pairing request %s: %w", key, err)
			}
			f.pending[key] = &r
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("nodes: load pairing state from %s (move the file aside to start with no paired nodes): %w", f.st.Path(), err)
	}
	f.log.Info("pairing state loaded", "paired", len(f.paired), "pending", len(f.pending))
	return nil
}

// Name implements gateway.Extension.
func (f *Feature) Name() string { return "nodes" }

// Events implements gateway.Extension.
func (f *Feature) Events() []string {
	return []string{nodeproto.EventPairRequested, nodeproto.EventPairResolved, nodeproto.EventInvokeRequest, nodeproto.EventInvokeCancel, nodeproto.EventDevicePairRequest, nodeproto.EventDevicePairResolved}
}

// Bind implements gateway.Extension.
func (f *Feature) Bind(h gateway.Host) { f.host.Store(&hostRef{h: h}) }

// Apply takes a reloaded config (hot: the next request, connect or sweep
// uses it; requests already pending keep their expiry).
func (f *Feature) Apply(cfg *config.Config) {
	n := cfg.WithDefaults().Nodes
	f.cfg.Store(&n)
}

// Close stops the expiry sweep and fails the invokes in flight.
func (f *Feature) Close() error {
	f.closeOnce.Do(func() { close(f.stop) })
	f.wg.Wait()
	return nil
}

// Methods implements gateway.Extension.
func (f *Feature) Methods() []gateway.Method {
	return append([]gateway.Method{
		{Name: nodeproto.MethodList, Scope: protocol.ScopeRead, Handler: f.handleList},
		{Name: nodeproto.MethodDescribe, Scope: protocol.ScopeRead, Handler: f.handleDescribe},
		{Name: nodeproto.MethodInvoke, Scope: protocol.ScopeWrite, Async: true, Handler: f.handleInvoke},
		{Name: nodeproto.MethodInvokeResult, Scope: "", Handler: nodeOnly(f.handleInvokeResult)},
		{Name: nodeproto.MethodPairRequest, Scope: "", Handler: f.handlePairRequest},
		{Name: nodeproto.MethodPairList, Scope: protocol.ScopePairing, Handler: f.handlePairList},
		{Name: nodeproto.MethodPairApprove, Scope: protocol.ScopePairing, Handler: f.handlePairApprove},
		{Name: nodeproto.MethodPairReject, Scope: protocol.ScopePairing, Handler: f.handlePairReject},
		{Name: nodeproto.MethodPairVerify, Scope: protocol.ScopePairing, Handler: f.handlePairVerify},
		{Name: nodeproto.MethodPairRemove, Scope: protocol.ScopePairing, Handler: f.handlePairRemove},
	}, append(f.nodeRoleMethods(), f.devicePairMethods()...)...)
}

// broadcast sends an event to the peers holding scope, when bound.
func (f *Feature) broadcast(event string, payload any, scope string) {
	if r := f.host.Load(); r != nil {
		r.h.Broadcast(event, payload, scope)
	}
}

func (f *Feature) config() *config.NodesConfig { return f.cfg.Load() }

// sweepLoop expires pending requests.
func (f *Feature) sweepLoop() {
	defer f.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			f.expire(now)
		}
	}
}

// expire drops the pending requests whose time is up and tells the
// operators.
func (f *Feature) expire(now time.Time) {
	f.mu.Lock()
	var gone []*nodeproto.PairingRequest
	for _, r := range f.pending {
		if now.UnixMilli() >= r.ExpiresAtMs {
			gone = append(gone, r)
		}
	}
	if len(gone) == 0 {
		f.mu.Unlock()
		return
	}
	err := f.st.Update(func(tx *store.Tx) error {
		for _, r := range gone {
			if err := tx.Delete(bucketPending, r.RequestID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.mu.Unlock()
		f.log.Error("expiring pairing requests failed; will retry", "err", err)
		return
	}
	for _, r := range gone {
		delete(f.pending, r.RequestID)
	}
	f.mu.Unlock()
	for _, r := range gone {
		f.log.Info("pairing request expired", "requestId", r.RequestID, "nodeId", r.NodeID)
		f.announceResolved(nodeproto.Resolved{RequestID: r.RequestID, NodeID: r.NodeID, Decision: nodeproto.DecisionExpired, TS: now.UnixMilli()})
	}
}

// storeError is the error of a method whose store write failed.
func storeError(what string, err error) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
		Message: what + ": the state store write failed, nothing was changed: " + err.Error(),
		Details: protocol.Details{"code": nodeproto.DetailStoreFailed}}
}
