package nodes

import (
	"cmp"
	"encoding/json"
)

// Method and event names of the feature.
const (
	MethodList          = "node.list"
	MethodDescribe      = "node.describe"
	MethodInvoke        = "node.invoke"
	MethodInvokeResult  = "node.invoke.result"
	MethodPairRequest   = "node.pair.request"
	MethodPairList      = "node.pair.list"
	MethodPairApprove   = "node.pair.approve"
	MethodPairReject    = "node.pair.reject"
	MethodPairVerify    = "node.pair.verify"
	MethodPairRemove    = "node.pair.remove"
	EventPairRequested  = "node.pair.requested"
	EventPairResolved   = "node.pair.resolved"
	EventInvokeRequest  = "node.invoke.request"
	EventInvokeCancel   = "node.invoke.cancel"
	DecisionApproved    = "approved"
	DecisionRejected    = "rejected"
	DecisionExpired     = "expired"
	closeReasonUnpaired = "node unpaired"
)

// Detail codes (error.details.code) of the feature's errors.
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

// or returns m with each empty field taken from old.
func (m NodeMeta) or(old NodeMeta) NodeMeta {
	return NodeMeta{
		DisplayName:     cmp.Or(m.DisplayName, old.DisplayName),
		Platform:        cmp.Or(m.Platform, old.Platform),
		Version:         cmp.Or(m.Version, old.Version),
		DeviceFamily:    cmp.Or(m.DeviceFamily, old.DeviceFamily),
		ModelIdentifier: cmp.Or(m.ModelIdentifier, old.ModelIdentifier),
	}
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

// pairedRecord is what the store holds for a paired node: the public view
// plus the hex SHA-256 of its current credential ("" until one is issued).
type pairedRecord struct {
	PairedNode
	TokenHash string `json:"tokenHash,omitempty"`
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

// params of the methods (decoded strictly).
type (
	nodeIDParams struct {
		NodeID string `json:"nodeId"`
	}
	requestIDParams struct {
		RequestID string `json:"requestId"`
	}
	verifyParams struct {
		NodeID string `json:"nodeId"`
		Token  string `json:"token"`
	}
	invokeParams struct {
		NodeID         string          `json:"nodeId"`
		Command        string          `json:"command"`
		Params         json.RawMessage `json:"params,omitempty"`
		TimeoutMs      int64           `json:"timeoutMs,omitempty"`
		IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	}
	// pairRequestParams lists NodeMeta's fields itself: a decode error in
	// an embedded struct names the field by its Go path (NodeMeta.version),
	// not by the JSON path of the params.
	pairRequestParams struct {
		NodeID          string   `json:"nodeId,omitempty"`
		DisplayName     string   `json:"displayName,omitempty"`
		Platform        string   `json:"platform,omitempty"`
		Version         string   `json:"version,omitempty"`
		DeviceFamily    string   `json:"deviceFamily,omitempty"`
		ModelIdentifier string   `json:"modelIdentifier,omitempty"`
		Caps            []string `json:"caps,omitempty"`
		Commands        []string `json:"commands,omitempty"`
		RemoteIP        string   `json:"remoteIp,omitempty"`
	}
)

// meta is what the params say about the node.
func (in *pairRequestParams) meta() NodeMeta {
	return NodeMeta{DisplayName: in.DisplayName, Platform: in.Platform, Version: in.Version,
		DeviceFamily: in.DeviceFamily, ModelIdentifier: in.ModelIdentifier}
}
