// Package channels delivers messages for the gateway's `send` method and
// reports on the delivery channels (`channels.status`).
//
// A Channel is one configured destination: today the webhook kind (signed
// JSON POSTed to a URL, retried with backoff), and the interface is what a
// messaging provider (a chat network, SMS, mail) implements to plug in. A
// send names a target ("ops") and optionally a channel; the channel is the
// named one, else the first (by name) whose targets patterns match, else
// channels.default. When none can deliver, send fails with NOT_LINKED.
//
// Every send carries an idempotency key. A key that was delivered is
// remembered in the gateway's state store (channels.dedupeTtlMs, default
// 24 h), so a repeated send, also after a restart, returns the first result
// and is not delivered again. Nothing here depends on the operating system;
// with no channels configured every send is NOT_LINKED.
//
// The params and payloads of send, channels.status and
// channels.pairing.*, and the link states, are in
// daemon/protocol/channelproto, so clients use them without linking this
// package.
package channels

import (
	"context"
	"path"
	"slices"

	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// Message is one message to deliver.
type Message struct {
	To             string // the target, e.g. "ops"
	Text           string // the message text
	IdempotencyKey string // the send's key; receivers can dedupe by it too
}

// Channel is a configured delivery channel. Implementations are safe for
// concurrent use.
type Channel interface {
	// Name is the configured name, unique across kinds.
	Name() string
	// Kind is the provider kind: "webhook", "telegram", "matrix".
	Kind() string
	// Linked reports whether the channel can deliver now (enabled, secret
	// and credentials present) and, when not, why and what to do.
	Linked() (ok bool, reason string)
	// Send delivers m, retrying as the channel's policy says. A failure
	// is a *DeliveryError.
	Send(ctx context.Context, m Message) (channelproto.Delivery, error)
	// Probe checks that the channel's far end is reachable, without
	// delivering anything.
	Probe(ctx context.Context) channelproto.Probe
}

// DeliveryError is a failed Send.
type DeliveryError struct {
	Channel   string
	Attempts  int
	Status    int  // last HTTP status, 0 when there was no answer
	Retryable bool // a later send with the same key may succeed
	Msg       string
	Err       error // the last cause
}

// Error describes the failure, the attempts and the fix.
func (e *DeliveryError) Error() string { return e.Msg }

// Unwrap returns the last cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Set is the configured channels with their routing.
type Set struct {
	channels map[string]Channel
	targets  map[string][]string // channel -> target patterns
	order    []string            // channel names, sorted
	def      string
}

// NewSet builds a Set. targets maps a channel name to the target patterns
// it claims; def is the channel for unclaimed targets ("" for none).
func NewSet(chs []Channel, targets map[string][]string, def string) *Set {
	s := &Set{channels: map[string]Channel{}, targets: targets, def: def}
	for _, c := range chs {
		s.channels[c.Name()] = c
		s.order = append(s.order, c.Name())
	}
	slices.Sort(s.order)
	return s
}

// Names lists the channel names, sorted.
func (s *Set) Names() []string { return slices.Clone(s.order) }

// Get returns the channel called name.
func (s *Set) Get(name string) (Channel, bool) {
	c, ok := s.channels[name]
	return c, ok
}

// Route picks the channel for target to: the first channel (by name) with
// a matching target pattern, else the default. ok is false when none.
func (s *Set) Route(to string) (Channel, bool) {
	for _, name := range s.order {
		for _, pat := range s.targets[name] {
			if m, _ := path.Match(pat, to); m {
				return s.channels[name], true
			}
		}
	}
	if s.def != "" {
		c, ok := s.channels[s.def]
		return c, ok
	}
	return nil, false
}

// Targets returns the target patterns of channel name.
func (s *Set) Targets(name string) []string { return slices.Clone(s.targets[name]) }
