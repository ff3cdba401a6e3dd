package config

import "fmt"

// NodesConfig is the "nodes" section: pairing of remote nodes (devices
// connecting with role "node") and the forwarding of node.invoke calls to
// them. Every key is hot-reloadable; zero values mean the default.
type NodesConfig struct {
	// PendingTTLMs is how long a pairing request waits for an operator's
	// approve or reject before it expires (default 300000, 5 minutes).
	PendingTTLMs int `json:"pendingTtlMs,omitempty"`
	// MaxPending bounds the pairing requests waiting at once; a new node
	// over the bound is refused (retryable) until one is resolved or
	// expires (default 64).
	MaxPending int `json:"maxPending,omitempty"`
	// InvokeTimeoutMs is how long node.invoke waits for the node's answer
	// when the call names no timeoutMs (default 30000).
	InvokeTimeoutMs int `json:"invokeTimeoutMs,omitempty"`
	// MaxInvokeTimeoutMs caps a call's timeoutMs (default 600000, 10
	// minutes); larger values are lowered to it.
	MaxInvokeTimeoutMs int `json:"maxInvokeTimeoutMs,omitempty"`
	// MaxConcurrentInvokes bounds the node.invoke calls in flight to one
	// node; more are refused with UNAVAILABLE (retryable) (default 8).
	MaxConcurrentInvokes int `json:"maxConcurrentInvokes,omitempty"`
}

// Defaults and bounds of the "nodes" section.
const (
	DefaultNodesPendingTTLMs         = 5 * 60 * 1000
	DefaultNodesMaxPending           = 64
	DefaultNodesInvokeTimeoutMs      = 30000
	DefaultNodesMaxInvokeTimeoutMs   = 10 * 60 * 1000
	DefaultNodesMaxConcurrentInvokes = 8

	minNodesTTLMs       = 1000
	maxNodesTTLMs       = 7 * 24 * 60 * 60 * 1000
	maxNodesPending     = 100000
	minNodesInvokeMs    = 100
	maxNodesInvokeMs    = 24 * 60 * 60 * 1000
	maxNodesConcurrency = 1024
)

func (x *NodesConfig) withDefaults() {
	setDefault(&x.PendingTTLMs, DefaultNodesPendingTTLMs)
	setDefault(&x.MaxPending, DefaultNodesMaxPending)
	// A maximum set below the default timeout lowers the default; a
	// timeout set above the default maximum raises the maximum.
	if x.InvokeTimeoutMs == 0 {
		x.InvokeTimeoutMs = DefaultNodesInvokeTimeoutMs
		if x.MaxInvokeTimeoutMs != 0 && x.MaxInvokeTimeoutMs < x.InvokeTimeoutMs {
			x.InvokeTimeoutMs = x.MaxInvokeTimeoutMs
		}
	}
	if x.MaxInvokeTimeoutMs == 0 {
		x.MaxInvokeTimeoutMs = max(DefaultNodesMaxInvokeTimeoutMs, x.InvokeTimeoutMs)
	}
	setDefault(&x.MaxConcurrentInvokes, DefaultNodesMaxConcurrentInvokes)
}

// unshare: every field is a value.
func (x *NodesConfig) unshare() {}

func (x *NodesConfig) validate() *Error {
	return firstError(
		func() *Error {
			return nodesRange("nodes.pendingTtlMs", x.PendingTTLMs, minNodesTTLMs, maxNodesTTLMs, "milliseconds")
		},
		func() *Error { return nodesRange("nodes.maxPending", x.MaxPending, 1, maxNodesPending, "requests") },
		func() *Error {
			return nodesRange("nodes.invokeTimeoutMs", x.InvokeTimeoutMs, minNodesInvokeMs, maxNodesInvokeMs, "milliseconds")
		},
		func() *Error {
			return nodesRange("nodes.maxInvokeTimeoutMs", x.MaxInvokeTimeoutMs, minNodesInvokeMs, maxNodesInvokeMs, "milliseconds")
		},
		func() *Error {
			if x.InvokeTimeoutMs != 0 && x.MaxInvokeTimeoutMs != 0 && x.InvokeTimeoutMs > x.MaxInvokeTimeoutMs {
				return &Error{Key: "nodes.invokeTimeoutMs", Msg: fmt.Sprintf("%d is larger than nodes.maxInvokeTimeoutMs %d (lower it, or raise the maximum)", x.InvokeTimeoutMs, x.MaxInvokeTimeoutMs)}
			}
			return nil
		},
		func() *Error {
			return nodesRange("nodes.maxConcurrentInvokes", x.MaxConcurrentInvokes, 1, maxNodesConcurrency, "calls per node")
		},
	)
}

// nodesRange checks an optional positive setting: 0 (left out) is the
// default, anything else must lie in lo..hi.
func nodesRange(key string, v, lo, hi int, unit string) *Error {
	if v == 0 || (v >= lo && v <= hi) {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (%d to %d %s; leave it out for the default)", v, lo, hi, unit)}
}
