package config

import (
	"errors"
	"strings"
	"testing"
)

func TestNodesDefaults(t *testing.T) {
	tests := []struct {
		name               string
		in                 NodesConfig
		timeout, maxTimout int
	}{
		{"zero", NodesConfig{}, DefaultNodesInvokeTimeoutMs, DefaultNodesMaxInvokeTimeoutMs},
		{"max below default timeout", NodesConfig{MaxInvokeTimeoutMs: 1000}, 1000, 1000},
		{"timeout above default max", NodesConfig{InvokeTimeoutMs: 900000}, 900000, 900000},
		{"both set", NodesConfig{InvokeTimeoutMs: 200, MaxInvokeTimeoutMs: 300}, 200, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := (&Config{Nodes: tt.in}).WithDefaults()
			n := c.Nodes
			if n.InvokeTimeoutMs != tt.timeout || n.MaxInvokeTimeoutMs != tt.maxTimout {
				t.Errorf("timeouts = %d/%d, want %d/%d", n.InvokeTimeoutMs, n.MaxInvokeTimeoutMs, tt.timeout, tt.maxTimout)
			}
			if n.PendingTTLMs != DefaultNodesPendingTTLMs || n.MaxPending != DefaultNodesMaxPending || n.MaxConcurrentInvokes != DefaultNodesMaxConcurrentInvokes {
				t.Errorf("defaults not filled in: %+v", n)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("defaulted config does not validate: %v", err)
			}
		})
	}
}

func TestNodesValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      NodesConfig
		wantKey string
		wantMsg string
	}{
		{"zero", NodesConfig{}, "", ""},
		{"all set", NodesConfig{PendingTTLMs: 1000, MaxPending: 1, InvokeTimeoutMs: 100, MaxInvokeTimeoutMs: 100, MaxConcurrentInvokes: 1024}, "", ""},
		{"ttl small", NodesConfig{PendingTTLMs: 999}, "nodes.pendingTtlMs", "999 is out of range (1000 to"},
		{"ttl negative", NodesConfig{PendingTTLMs: -1}, "nodes.pendingTtlMs", "out of range"},
		{"max pending", NodesConfig{MaxPending: -3}, "nodes.maxPending", "out of range (1 to"},
		{"timeout small", NodesConfig{InvokeTimeoutMs: 99}, "nodes.invokeTimeoutMs", "out of range"},
		{"max timeout huge", NodesConfig{MaxInvokeTimeoutMs: 24*60*60*1000 + 1}, "nodes.maxInvokeTimeoutMs", "out of range"},
		{"timeout over max", NodesConfig{InvokeTimeoutMs: 5000, MaxInvokeTimeoutMs: 4000}, "nodes.invokeTimeoutMs", "larger than nodes.maxInvokeTimeoutMs"},
		{"concurrency", NodesConfig{MaxConcurrentInvokes: 1025}, "nodes.maxConcurrentInvokes", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Config{Nodes: tt.in}).Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v, want *Error", err)
			}
			if ce.Key != tt.wantKey || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("Validate() = %q: %q, want %q containing %q", ce.Key, ce.Msg, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

func TestNodesParseStrict(t *testing.T) {
	if _, err := Parse("c.json", []byte(`{"nodes":{"pendingTtlMs":2000,"maxConcurrentInvokes":2}}`)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	_, err := Parse("c.json", []byte("{\n  \"nodes\": {\"pendingTTL\": 5}\n}"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "nodes.pendingTTL" || ce.Line != 2 {
		t.Fatalf("unknown key: got %v, want an *Error at line 2 naming nodes.pendingTTL", err)
	}
	_, err = Parse("c.json", []byte("{\"nodes\": {\n \"maxPending\": -1}}"))
	if !errors.As(err, &ce) || ce.Key != "nodes.maxPending" || ce.Line != 2 {
		t.Fatalf("bad value: got %v, want an *Error at line 2 naming nodes.maxPending", err)
	}
}
