// Package nodeproto holds the wire types of the node.* methods (and of
// OpenClaw's device.pair.* view of node pairing): method and event names,
// error detail codes, params and payloads, shared by the gateway
// (daemon/nodes) and its clients (gatewayctl). It imports nothing of the
// server, so a client links only these types.
package nodeproto

import "encoding/json"

// Method and event names of the nodes feature (daemon/nodes).
const (
	MethodList         = "node.list"
	MethodDescribe     = "node.describe"
	MethodInvoke       = "node.invoke"
	MethodInvokeResult = "node.invoke.result"
	MethodPairRequest  = "node.pair.request"
	MethodPairList     = "node.pair.list"
	MethodPairApprove  = "node.pair.approve"
	MethodPairReject   = "node.pair.reject"
	MethodPairVerify   = "node.pair.verify"
	MethodPairRemove   = "node.pair.remove"
	EventPairRequested = "node.pair.requested"
	EventPairResolved  = "node.pair.resolved"
	EventInvokeRequest = "node.invoke.request"
	EventInvokeCancel  = "node.invoke.cancel"
	DecisionApproved   = "approved"
	DecisionRejected   = "rejected"
	DecisionExpired    = "expired"
)

// Detail codes (error.details.code) of the nodes feature's errors.
const (
	DetailPairingRequired      = "PAIRING_REQUIRED"
	DetailDeviceRequired       = "DEVICE_IDENTITY_REQUIRED"
	DetailTooManyPending       = "PAIRING_PENDING_LIMIT"
	DetailRequestNotFound      = "PAIRING_REQUEST_NOT_FOUND"
	DetailNodeNotFound         = "NODE_NOT_FOUND"
	DetailNodeNotPaired        = "NODE_NOT_PAIRED"
	DetailNodeOffline          = "NODE_OFFLINE"
	DetailCommandNotAdvertised = "NODE_COMMAND_NOT_ADVERTISED"
	DetailNodeBusy             = "NODE_BUSY"
	DetailInvokeTimeout        = "NODE_INVOKE_TIMEOUT"
	DetailNodeDisconnected     = "NODE_DISCONNECTED"
	DetailInvokeFailed         = "NODE_INVOKE_FAILED"
	DetailNodeRoleRequired     = "NODE_ROLE_REQUIRED"
	DetailStoreFailed          = "STATE_STORE_FAILED"
	DetailDeviceApprovalDenied = "DEVICE_PAIR_APPROVAL_DENIED"
)

// NodeMeta is what a node says about itself (the client fields of its
// connect, or of a pairing request). PairingRequest, PairedNode and
// NodeInfo embed it: its fields stand in their JSON objects as their own.
type NodeMeta struct {
	DisplayName     string `json:"displayName,omitempty"`
	Platform        string `json:"platform,omitempty"`
	Version         string `json:"version,omitempty"`
	DeviceFamily    string `json:"deviceFamily,omitempty"`
	ModelIdentifier string `json:"modelIdentifier,omitempty"`
}

// PairingRequest is a pending pairing request: the payload of
// node.pair.requested and an element of node.pair.list's pending.
type PairingRequest struct {
	RequestID string `json:"requestId"`
	NodeID    string `json:"nodeId"`
	NodeMeta
	ClientID   string   `json:"clientId,omitempty"`
	ClientMode string   `json:"clientMode,omitempty"`
	PublicKey  string   `json:"publicKey,omitempty"`
	Caps       []string `json:"caps"`
	Commands   []string `json:"commands"`
	RemoteIP   string   `json:"remoteIp,omitempty"`
	// RequiredApproveScopes are the scopes an operator needs to approve
	// the request (as OpenClaw lists them): operator.pairing, plus
	// operator.write or operator.admin depending on the node's commands.
	RequiredApproveScopes []string `json:"requiredApproveScopes,omitempty"`
	// IsRepair is true when the node is already paired (a request to
	// update what was approved).
	IsRepair bool `json:"isRepair"`
	// TS is when the request was created (unix ms); ExpiresAtMs when it
	// expires unless the node asks again (which pushes it back).
	TS          int64 `json:"ts"`
	ExpiresAtMs int64 `json:"expiresAtMs"`
}

// PairedNode is an approved node as node.pair.list, node.pair.approve and
// node.pair.verify show it (never with its credential).
type PairedNode struct {
	NodeID string `json:"nodeId"`
	NodeMeta
	ClientID          string   `json:"clientId,omitempty"`
	PublicKey         string   `json:"publicKey,omitempty"`
	Caps              []string `json:"caps"`
	Commands          []string `json:"commands"`
	RemoteIP          string   `json:"remoteIp,omitempty"`
	CreatedAtMs       int64    `json:"createdAtMs"`
	ApprovedAtMs      int64    `json:"approvedAtMs"`
	TokenIssuedAtMs   int64    `json:"tokenIssuedAtMs,omitempty"`
	LastConnectedAtMs int64    `json:"lastConnectedAtMs,omitempty"`
	LastSeenMs        int64    `json:"lastSeenMs,omitempty"`
}

// PairList is node.pair.list's payload.
type PairList struct {
	Pending []PairingRequest `json:"pending"`
	Paired  []PairedNode     `json:"paired"`
}

// Resolved is node.pair.resolved's payload.
type Resolved struct {
	RequestID string `json:"requestId"`
	NodeID    string `json:"nodeId"`
	Decision  string `json:"decision"` // approved | rejected | expired
	TS        int64  `json:"ts"`
}

// NodeInfo is one node in node.list and node.describe: a paired node,
// with what its live connection advertises when it is connected (else what
// it advertised last).
type NodeInfo struct {
	NodeID string `json:"nodeId"`
	NodeMeta
	RemoteIP      string   `json:"remoteIp,omitempty"`
	Caps          []string `json:"caps"`
	Commands      []string `json:"commands"`
	Paired        bool     `json:"paired"`
	Connected     bool     `json:"connected"`
	ConnID        string   `json:"connId,omitempty"`
	ConnectedAtMs int64    `json:"connectedAtMs,omitempty"`
	LastSeenMs    int64    `json:"lastSeenMs,omitempty"`
	ApprovedAtMs  int64    `json:"approvedAtMs,omitempty"`
	// Inflight is the number of node.invoke calls waiting on the node.
	Inflight int `json:"inflight"`
	// What a connected node published with the node-role methods: its
	// last node.host.stats, the names of its plugin tools and skills, and
	// whether it offers to host workers.
	HostStats   json.RawMessage `json:"hostStats,omitempty"`
	PluginTools []string        `json:"pluginTools,omitempty"`
	Skills      []string        `json:"skills,omitempty"`
	WorkerHost  bool            `json:"workerHost,omitempty"`
}

// NodeList is node.list's payload.
type NodeList struct {
	TS    int64      `json:"ts"`
	Nodes []NodeInfo `json:"nodes"`
}

// InvokeRequest is the payload of the node.invoke.request event a node
// receives. ParamsJSON is the caller's params as a JSON text (absent when
// the call had none).
type InvokeRequest struct {
	ID             string `json:"id"`
	NodeID         string `json:"nodeId"`
	Command        string `json:"command"`
	ParamsJSON     string `json:"paramsJSON,omitempty"`
	TimeoutMs      int64  `json:"timeoutMs"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// InvokeResult is the params of node.invoke.result, the node's answer.
// A node sends payload (any JSON) or payloadJSON (a JSON text).
type InvokeResult struct {
	ID          string          `json:"id"`
	NodeID      string          `json:"nodeId"`
	OK          bool            `json:"ok"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	PayloadJSON string          `json:"payloadJSON,omitempty"`
	Error       *InvokeError    `json:"error,omitempty"`
}

// InvokeError is a node's description of a failed command.
type InvokeError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// InvokeResponse is node.invoke's payload on success.
type InvokeResponse struct {
	OK      bool            `json:"ok"`
	NodeID  string          `json:"nodeId"`
	Command string          `json:"command"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// OpenClaw's device-pairing methods (`openclaw devices list|approve|
// reject|remove` call them). In OpenClaw every pairing is a device's; a
// node is a device that asked for role "node". gatewayd pairs only nodes
// (operators authenticate with the shared secret), so device.pair.* is a
// second view of the one pairing store behind node.pair.*: a request
// approved through either is approved for both, and both sets of events
// are sent.
const (
	MethodDevicePairList    = "device.pair.list"
	MethodDevicePairApprove = "device.pair.approve"
	MethodDevicePairReject  = "device.pair.reject"
	MethodDevicePairRemove  = "device.pair.remove"
	EventDevicePairRequest  = "device.pair.requested"
	EventDevicePairResolved = "device.pair.resolved"
)

// DeviceIdentity is what device.pair.list says of a device, pending or
// paired. The requests and devices embed it: its fields stand in their
// JSON objects as their own.
type DeviceIdentity struct {
	DeviceID     string   `json:"deviceId"`
	PublicKey    string   `json:"publicKey,omitempty"`
	DisplayName  string   `json:"displayName,omitempty"`
	Platform     string   `json:"platform,omitempty"`
	DeviceFamily string   `json:"deviceFamily,omitempty"`
	ClientID     string   `json:"clientId,omitempty"`
	ClientMode   string   `json:"clientMode,omitempty"`
	Role         string   `json:"role"`
	Roles        []string `json:"roles"`
	Scopes       []string `json:"scopes"`
	RemoteIP     string   `json:"remoteIp,omitempty"`
}

// DevicePairingRequest is a pending request as device.pair.list shows it
// (OpenClaw's pending device pairing record).
type DevicePairingRequest struct {
	RequestID string `json:"requestId"`
	DeviceIdentity
	IsRepair bool  `json:"isRepair"`
	TS       int64 `json:"ts"`
}

// DeviceToken summarizes one credential of a paired device (never the
// token itself).
type DeviceToken struct {
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	CreatedAtMs int64    `json:"createdAtMs"`
}

// PairedDevice is a paired device as device.pair.list shows it.
type PairedDevice struct {
	DeviceIdentity
	CreatedAtMs  int64         `json:"createdAtMs"`
	ApprovedAtMs int64         `json:"approvedAtMs"`
	Tokens       []DeviceToken `json:"tokens"`
	Connected    bool          `json:"connected"`
}

// DevicePairList is device.pair.list's payload.
type DevicePairList struct {
	Pending []DevicePairingRequest `json:"pending"`
	Paired  []PairedDevice         `json:"paired"`
}

// The methods a node host calls on its own connection (OpenClaw's core
// methods of scope "node": see its src/gateway/methods/core-descriptors.ts).
// OpenClaw lets only role "node" call them and checks no operator scope;
// an operator gets INVALID_REQUEST "unauthorized role: operator".
const (
	MethodNodeEvent             = "node.event"
	MethodInvokeProgress        = "node.invoke.progress"
	MethodPluginToolsUpdate     = "node.pluginTools.update"
	MethodSkillsUpdate          = "node.skills.update"
	MethodRunnerInventoryUpdate = "node.runnerInventory.update"
	MethodPluginSurfaceRefresh  = "node.pluginSurface.refresh"
	MethodPendingPull           = "node.pending.pull"
	MethodPendingAck            = "node.pending.ack"
	MethodPendingDrain          = "node.pending.drain"
	MethodSkillsBins            = "skills.bins"

	// EventHostStats is the node.event a node host sends every minute with
	// its CPU, memory and disk figures.
	EventHostStats = "node.host.stats"
)

// NodeEventResult is node.event's payload (OpenClaw's NodeEventResultSchema).
type NodeEventResult struct {
	OK      bool   `json:"ok"`
	Event   string `json:"event"`
	Handled bool   `json:"handled"`
	Reason  string `json:"reason,omitempty"`
}

// PluginTool is an agent-visible tool a node advertises
// (NodePluginToolDescriptorSchema).
type PluginTool struct {
	PluginID    string          `json:"pluginId"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Command     string          `json:"command,omitempty"`
	MCP         *struct {
		Server string `json:"server"`
		Tool   string `json:"tool"`
	} `json:"mcp,omitempty"`
}

// Skill is an agent-visible skill a node advertises
// (NodeSkillDescriptorSchema).
type Skill struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Content     string `json:"content"`
}
