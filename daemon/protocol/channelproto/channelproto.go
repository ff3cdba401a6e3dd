// Package channelproto holds the wire types of the send, channels.* and
// channels.pairing.* methods and of the channels component of health:
// params, payloads, link states and method names, shared by the gateway
// (daemon/channels) and its clients (gatewayctl). It imports nothing of
// the server, so a client links only these types.
package channelproto

// SendParams are the params of the send method.
type SendParams struct {
	To             string `json:"to"`
	Message        string `json:"message"`
	Channel        string `json:"channel,omitempty"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// StatusParams are the params of channels.status (OpenClaw's: its CLI
// sends timeoutMs, and channel to ask about one).
type StatusParams struct {
	Probe     bool   `json:"probe,omitempty"`
	TimeoutMs *int64 `json:"timeoutMs,omitempty"`
	Channel   string `json:"channel,omitempty"`
}

// StatusPayload is the channels.status payload. The fields after Channels
// are OpenClaw's (OpenClawStatus), so its CLI and Control UI show the
// channels too.
type StatusPayload struct {
	TS       int64           `json:"ts"`
	Default  string          `json:"default,omitempty"`
	Channels []ChannelStatus `json:"channels"`
	OpenClawStatus
}

// ChannelStatus is one channel in channels.status.
type ChannelStatus struct {
	Name         string        `json:"name"`
	Kind         string        `json:"kind"`
	Configured   bool          `json:"configured"`
	Linked       bool          `json:"linked"`
	Reason       string        `json:"reason,omitempty"` // why not linked, and the fix
	Targets      []string      `json:"targets"`
	Default      bool          `json:"default,omitempty"`
	LastDelivery *LastDelivery `json:"lastDelivery,omitempty"`
	LastError    *LastError    `json:"lastError,omitempty"`
	Probe        *Probe        `json:"probe,omitempty"`
	// State is the connection state: ready (webhooks), connecting,
	// connected, disconnected, disabled, unlinked.
	State string `json:"state"`
	// Link is a chat channel's connection: account, since, last error and
	// next retry.
	Link *LinkStatus `json:"link,omitempty"`
	// DMPolicy, Pending (pairing requests) and Inbox (received messages
	// not answered yet) are for chat channels.
	DMPolicy    string       `json:"dmPolicy,omitempty"`
	Pending     int          `json:"pendingPairing,omitempty"`
	Inbox       int          `json:"inbox,omitempty"`
	LastInbound *LastInbound `json:"lastInbound,omitempty"`
}

// LastInbound is a chat channel's most recent answered message.
type LastInbound struct {
	TS        int64  `json:"ts"`
	Chat      string `json:"chat"`
	Sender    string `json:"sender"`
	LatencyMs int64  `json:"latencyMs"` // from receipt to the answer's delivery
}

// LastDelivery is a channel's most recent successful delivery.
type LastDelivery struct {
	TS             int64  `json:"ts"`
	To             string `json:"to"`
	IdempotencyKey string `json:"idempotencyKey"`
	Attempts       int    `json:"attempts"`
	Status         int    `json:"status,omitempty"`
}

// LastError is a channel's most recent failed delivery.
type LastError struct {
	TS             int64  `json:"ts"`
	To             string `json:"to"`
	IdempotencyKey string `json:"idempotencyKey"`
	Message        string `json:"message"`
}

// Delivery is the result of a successful Send.
type Delivery struct {
	Channel        string `json:"channel"`
	Kind           string `json:"kind"`
	To             string `json:"to"`
	IdempotencyKey string `json:"idempotencyKey"`
	DeliveryID     string `json:"deliveryId"`           // the gateway's id of this delivery
	Attempts       int    `json:"attempts"`             // requests made, 1 when the first one worked
	Status         int    `json:"status,omitempty"`     // the receiver's HTTP status, for webhooks
	DeliveredAt    int64  `json:"deliveredAt"`          // unix ms
	Deduplicated   bool   `json:"deduplicated"`         // true: an earlier send with this key delivered it
	DurationMs     int64  `json:"durationMs,omitempty"` // from the first attempt to the answer
}

// Probe is the result of a live check of a channel.
type Probe struct {
	OK        bool   `json:"ok"`
	LatencyMs int64  `json:"latencyMs"`
	Status    int    `json:"status,omitempty"`  // HTTP status, for webhooks
	Account   string `json:"account,omitempty"` // who the channel is connected as, for chat channels
	Error     string `json:"error,omitempty"`
}

// Link states, as channels.status, health and STATUS= show them.
const (
	StateReady        = "ready"        // a webhook: nothing to connect, it delivers per send
	StateConnecting   = "connecting"   // the first attempt is under way
	StateConnected    = "connected"    // receiving and able to send
	StateDisconnected = "disconnected" // the last attempt failed; retrying with backoff
	StateDisabled     = "disabled"     // configured with disabled: true
	StateUnlinked     = "unlinked"     // cannot start: a secret is missing (see the reason)
	StateStopped      = "stopped"      // the gateway is stopping or the channel was removed
)

// LinkStatus is a channel's connection state.
type LinkStatus struct {
	State       string `json:"state"`
	Account     string `json:"account,omitempty"`     // who the channel is connected as: @gw:example.org, @gw_bot
	Since       int64  `json:"since,omitempty"`       // unix ms of the last state change
	Error       string `json:"error,omitempty"`       // the last connection error, when not connected
	ErrorAt     int64  `json:"errorAt,omitempty"`     // unix ms
	NextRetryAt int64  `json:"nextRetryAt,omitempty"` // unix ms, when disconnected
	Failures    int    `json:"failures,omitempty"`    // attempts failed in a row
}

// OpenClawStatus are OpenClaw's fields of channels.status.
type OpenClawStatus struct {
	ChannelOrder            []string                   `json:"channelOrder"`
	ChannelLabels           map[string]string          `json:"channelLabels"`
	ChannelAccounts         map[string][]AccountStatus `json:"channelAccounts"`
	ChannelDefaultAccountID map[string]string          `json:"channelDefaultAccountId"`
	ChannelMeta             []map[string]string        `json:"channelMeta"`
}

// AccountStatus is a channel's account in OpenClaw's channels.status.
type AccountStatus struct {
	AccountID      string  `json:"accountId"`
	Name           string  `json:"name"`
	Enabled        bool    `json:"enabled"`
	Configured     bool    `json:"configured"`
	Linked         bool    `json:"linked"`
	Running        bool    `json:"running"`
	Mode           string  `json:"mode"` // the channel's kind
	LastError      *string `json:"lastError"`
	LastOutboundAt *int64  `json:"lastOutboundAt"`
	LastProbeAt    *int64  `json:"lastProbeAt,omitempty"`
	Probe          *Probe  `json:"probe,omitempty"`
}

// HealthChannels is the channels component of health: every chat link's
// state and last error. OK is false while a link is not connected (the
// gateway itself keeps serving; health's own ok does not change).
type HealthChannels struct {
	OK       bool            `json:"ok"`
	Channels []HealthChannel `json:"channels"`
}

// HealthChannel is one channel in health.
type HealthChannel struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Account string `json:"account,omitempty"`
	Since   int64  `json:"since,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Method names of DM pairing.
const (
	MethodPairingList    = "channels.pairing.list"
	MethodPairingApprove = "channels.pairing.approve"
	MethodPairingDismiss = "channels.pairing.dismiss"
)

// PairingRequest is a pending DM pairing request (channels.pairing.list).
// The code is what the sender was told; it is not listed, so an operator
// approving by code has it from the sender.
type PairingRequest struct {
	RequestID    string            `json:"requestId"`
	Channel      string            `json:"channel"`
	ChannelLabel string            `json:"channelLabel"`
	AccountID    string            `json:"accountId"`
	SenderID     string            `json:"senderId"`
	SenderLabel  string            `json:"senderLabel"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	CreatedAt    string            `json:"createdAt"`
	LastSeenAt   string            `json:"lastSeenAt"`
	ExpiresAt    string            `json:"expiresAt"`
	Code         string            `json:"-"`
	Chat         string            `json:"-"`
	NotifySup    bool              `json:"notifySupported"`
}

// PairingAccount is a channel that uses DM pairing.
type PairingAccount struct {
	Channel      string `json:"channel"`
	ChannelLabel string `json:"channelLabel"`
	AccountID    string `json:"accountId"`
	AccountLabel string `json:"accountLabel,omitempty"`
	NotifySup    bool   `json:"notifySupported"`
}

// PairingList is the channels.pairing.list payload.
type PairingList struct {
	Accounts               []PairingAccount `json:"accounts"`
	Requests               []PairingRequest `json:"requests"`
	CommandOwnerConfigured bool             `json:"commandOwnerConfigured"`
	Limits                 PairingLimits    `json:"limits"`
}

// PairingLimits are channels.pairing.list's limits.
type PairingLimits struct {
	PendingPerAccount int   `json:"pendingPerAccount"`
	TTLMs             int64 `json:"ttlMs"`
}

// PairingListParams are channels.pairing.list's params.
type PairingListParams struct {
	Channel   string `json:"channel,omitempty"`
	AccountID string `json:"accountId,omitempty"`
}

// PairingResolveParams are channels.pairing.approve's and dismiss's
// params: the request by requestId or by the code the sender got.
type PairingResolveParams struct {
	Channel               string `json:"channel,omitempty"`
	AccountID             string `json:"accountId,omitempty"`
	RequestID             string `json:"requestId,omitempty"`
	Code                  string `json:"code,omitempty"`
	Notify                bool   `json:"notify,omitempty"`
	BootstrapCommandOwner bool   `json:"bootstrapCommandOwner,omitempty"`
}

// PairingResolved is the approve/dismiss payload.
type PairingResolved struct {
	RequestID    string `json:"requestId"`
	Channel      string `json:"channel"`
	SenderID     string `json:"senderId"`
	Notification string `json:"notification,omitempty"` // approve: not-requested | sent | failed
}
