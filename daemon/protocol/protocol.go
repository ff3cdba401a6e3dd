// Package protocol holds the Go types of the Gateway WebSocket protocol,
// version 4 (the OpenClaw family's), the error codes and close codes, the
// strict frame decoder, device-signature verification, and the JSON Schema
// generated from these types.
//
// The types are the single source of truth: `make protocol` regenerates
// schema/protocol.schema.json from them, the server validates connect
// params against that schema, and a test fails when the committed schema and
// the types differ. The package does no I/O.
package protocol

import (
	"encoding/json"
)

// Version is the protocol version this gateway speaks.
const Version = 4

// MinCompatVersion is the oldest protocol version accepted from node and
// probe clients (docs/protocol.md, "Wire reference": "Role node and probe
// clients may connect with protocol 3").
const MinCompatVersion = 3

// Frame type discriminators.
const (
	TypeReq   = "req"
	TypeRes   = "res"
	TypeEvent = "event"
)

// Policy defaults announced in hello-ok.
const (
	MaxPayload        = 25 << 20 // 26214400
	MaxBufferedBytes  = 50 << 20 // 52428800
	PreHelloMaxFrame  = 64 << 10
	HandshakeTimeoutS = 15
	PingIntervalS     = 25
	MaxCloseReason    = 120
	MaxTraceparentLen = 128
)

// Close codes used by the gateway.
const (
	CloseNormal          = 1000
	CloseProtocolError   = 1002
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTryAgainLater   = 1013
)

// Top-level error codes.
const (
	ErrInvalidRequest = "INVALID_REQUEST"
	ErrForbidden      = "FORBIDDEN"
	ErrUnavailable    = "UNAVAILABLE"
	ErrNotPaired      = "NOT_PAIRED"
	ErrNotLinked      = "NOT_LINKED"
	ErrAgentTimeout   = "AGENT_TIMEOUT"
)

// Detail codes carried in Error.Details.code.
const (
	DetailProtocolMismatch       = "PROTOCOL_MISMATCH"
	DetailAuthTokenMismatch      = "AUTH_TOKEN_MISMATCH"
	DetailAuthTokenMissing       = "AUTH_TOKEN_MISSING"
	DetailAuthPasswordMismatch   = "AUTH_PASSWORD_MISMATCH"
	DetailAuthRequired           = "AUTH_REQUIRED"
	DetailAuthRateLimited        = "AUTH_RATE_LIMITED"
	DetailMissingScope           = "MISSING_SCOPE"
	DetailDeviceNonceMismatch    = "DEVICE_AUTH_NONCE_MISMATCH"
	DetailDeviceSignatureInvalid = "DEVICE_AUTH_SIGNATURE_INVALID"
	DetailDeviceSignatureExpired = "DEVICE_AUTH_SIGNATURE_EXPIRED"
	DetailDeviceIDMismatch       = "DEVICE_AUTH_DEVICE_ID_MISMATCH"
	DetailDevicePublicKeyInvalid = "DEVICE_AUTH_PUBLIC_KEY_INVALID"
)

// Scopes.
const (
	ScopeRead      = "operator.read"
	ScopeWrite     = "operator.write"
	ScopeAdmin     = "operator.admin"
	ScopeApprovals = "operator.approvals"
	ScopePairing   = "operator.pairing"
)

// Roles.
const (
	RoleOperator = "operator"
	RoleNode     = "node"
	RoleWorker   = "worker"
)

// ClientIDs lists every client.id the protocol accepts.
var ClientIDs = []string{
	"webchat-ui", "openclaw-control-ui", "openclaw-browser-copilot", "openclaw-tui",
	"webchat", "cli", "gateway-client", "openclaw-macos", "openclaw-linux",
	"openclaw-ios", "openclaw-watchos", "openclaw-android", "node-host",
	"openclaw-worker", "test", "fingerprint", "openclaw-probe",
}

// ClientModes lists every client.mode the protocol accepts.
var ClientModes = []string{"webchat", "cli", "ui", "backend", "node", "worker", "probe", "test"}

// RequestFrame is a client request. Params stays raw: each method decodes
// (and validates) its own params.
type RequestFrame struct {
	Type        string          `json:"type" jsonschema:"enum=req"`
	ID          string          `json:"id" jsonschema:"minLength=1"`
	Method      string          `json:"method" jsonschema:"minLength=1"`
	Params      json.RawMessage `json:"params,omitempty"`
	Traceparent string          `json:"traceparent,omitempty" jsonschema:"maxLength=128"`
}

// ResponseFrame answers a request with the same id.
type ResponseFrame struct {
	Type    string `json:"type" jsonschema:"enum=res"`
	ID      string `json:"id"`
	OK      bool   `json:"ok"`
	Payload any    `json:"payload,omitempty"`
	Error   *Error `json:"error,omitempty"`
}

// EventFrame is a server-pushed event.
type EventFrame struct {
	Type         string        `json:"type" jsonschema:"enum=event"`
	Event        string        `json:"event"`
	Payload      any           `json:"payload,omitempty"`
	Seq          int64         `json:"seq,omitempty"`
	StateVersion *StateVersion `json:"stateVersion,omitempty"`
}

// StateVersion counts presence and health changes; it rides on presence and
// health events and in the hello-ok snapshot.
type StateVersion struct {
	Presence int64 `json:"presence"`
	Health   int64 `json:"health"`
}

// Error is the error shape of a failed response.
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Details      any    `json:"details,omitempty"`
	Retryable    bool   `json:"retryable,omitempty"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

// Error implements the error interface, so handlers can return *Error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// DetailCode returns details.code when details is a map carrying one.
func (e *Error) DetailCode() string {
	switch d := e.Details.(type) {
	case map[string]any:
		s, _ := d["code"].(string)
		return s
	}
	return ""
}

// Details is a convenience type for Error.Details.
type Details = map[string]any

// Errorf builds an *Error with a code and message.
func Errorf(code, message string) *Error { return &Error{Code: code, Message: message} }

// ChallengePayload is the payload of the connect.challenge event.
type ChallengePayload struct {
	Nonce string `json:"nonce"`
	TS    int64  `json:"ts"`
}

// ConnectParams are the params of the first request, method "connect". The
// object is closed: unknown fields are rejected.
type ConnectParams struct {
	MinProtocol int             `json:"minProtocol" jsonschema:"minimum=1"`
	MaxProtocol int             `json:"maxProtocol" jsonschema:"minimum=1"`
	Client      ClientInfo      `json:"client"`
	Caps        []string        `json:"caps,omitempty"`
	Commands    []string        `json:"commands,omitempty"`
	Permissions map[string]bool `json:"permissions,omitempty"`
	PathEnv     string          `json:"pathEnv,omitempty"`
	Role        string          `json:"role,omitempty" jsonschema:"enum=operator,enum=node,enum=worker"`
	Scopes      []string        `json:"scopes,omitempty"`
	Device      *DeviceAuth     `json:"device,omitempty"`
	Auth        *ConnectAuth    `json:"auth,omitempty"`
	Locale      string          `json:"locale,omitempty"`
	UserAgent   string          `json:"userAgent,omitempty"`
}

// ClientInfo identifies the connecting client. The object is closed.
type ClientInfo struct {
	ID              string `json:"id" jsonschema:"enum=webchat-ui,enum=openclaw-control-ui,enum=openclaw-browser-copilot,enum=openclaw-tui,enum=webchat,enum=cli,enum=gateway-client,enum=openclaw-macos,enum=openclaw-linux,enum=openclaw-ios,enum=openclaw-watchos,enum=openclaw-android,enum=node-host,enum=openclaw-worker,enum=test,enum=fingerprint,enum=openclaw-probe"`
	Version         string `json:"version" jsonschema:"minLength=1"`
	Platform        string `json:"platform" jsonschema:"minLength=1"`
	Mode            string `json:"mode" jsonschema:"enum=webchat,enum=cli,enum=ui,enum=backend,enum=node,enum=worker,enum=probe,enum=test"`
	DisplayName     string `json:"displayName,omitempty"`
	BuildID         string `json:"buildId,omitempty"`
	DeviceFamily    string `json:"deviceFamily,omitempty"`
	ModelIdentifier string `json:"modelIdentifier,omitempty"`
	TimeZone        string `json:"timeZone,omitempty"`
	InstanceID      string `json:"instanceId,omitempty"`
}

// ConnectAuth carries shared-secret or token credentials.
type ConnectAuth struct {
	Token          string `json:"token,omitempty"`
	Password       string `json:"password,omitempty"`
	DeviceToken    string `json:"deviceToken,omitempty"`
	BootstrapToken string `json:"bootstrapToken,omitempty"`
}

// DeviceAuth is an Ed25519 device identity proof over the challenge nonce.
type DeviceAuth struct {
	ID        string `json:"id" jsonschema:"minLength=1"`
	PublicKey string `json:"publicKey" jsonschema:"minLength=1"`
	Signature string `json:"signature" jsonschema:"minLength=1"`
	SignedAt  int64  `json:"signedAt"`
	Nonce     string `json:"nonce" jsonschema:"minLength=1"`
}

// HelloOK is the payload of a successful connect response.
type HelloOK struct {
	Type     string      `json:"type" jsonschema:"enum=hello-ok"`
	Protocol int         `json:"protocol"`
	Server   ServerInfo  `json:"server"`
	Features Features    `json:"features"`
	Snapshot Snapshot    `json:"snapshot"`
	Auth     HelloAuth   `json:"auth"`
	Policy   HelloPolicy `json:"policy"`
}

// ServerInfo describes the gateway process.
type ServerInfo struct {
	Version string `json:"version"`
	ConnID  string `json:"connId"`
	BuildID string `json:"buildId,omitempty"`
	BootID  string `json:"bootId,omitempty"`
}

// Features lists the methods and events the gateway offers, and the
// server capabilities (OpenClaw's names) its extensions announce.
type Features struct {
	Methods      []string `json:"methods"`
	Events       []string `json:"events"`
	Capabilities []string `json:"capabilities,omitempty"`
}

// Snapshot is the state a client renders from right after hello-ok.
type Snapshot struct {
	Presence     []PresenceEntry `json:"presence"`
	Health       any             `json:"health"`
	StateVersion StateVersion    `json:"stateVersion"`
	UptimeMs     int64           `json:"uptimeMs"`
	ConfigPath   string          `json:"configPath,omitempty"`
	StateDir     string          `json:"stateDir,omitempty"`
	AuthMode     string          `json:"authMode,omitempty"`
}

// HelloAuth is what the connection was granted.
type HelloAuth struct {
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	// DeviceToken is a per-device credential (a paired node's), issued
	// only because the gateway accepts it back in auth.token or
	// auth.deviceToken in place of the shared secret.
	DeviceToken string `json:"deviceToken,omitempty"`
}

// HelloPolicy announces the connection's limits.
type HelloPolicy struct {
	MaxPayload       int64 `json:"maxPayload"`
	MaxBufferedBytes int64 `json:"maxBufferedBytes"`
	TickIntervalMs   int64 `json:"tickIntervalMs"`
}

// PresenceEntry is one member of system presence: the gateway itself, or a
// connected client.
type PresenceEntry struct {
	TS               int64    `json:"ts"`
	Host             string   `json:"host,omitempty"`
	IP               string   `json:"ip,omitempty"`
	Version          string   `json:"version,omitempty"`
	Platform         string   `json:"platform,omitempty"`
	DeviceFamily     string   `json:"deviceFamily,omitempty"`
	ModelIdentifier  string   `json:"modelIdentifier,omitempty"`
	Mode             string   `json:"mode,omitempty"`
	LastInputSeconds *int64   `json:"lastInputSeconds,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	Text             string   `json:"text,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	InstanceID       string   `json:"instanceId,omitempty"`
}

// PresenceEvent is the payload of a presence event: the whole (bounded)
// presence list, which clients put in place of theirs, as OpenClaw's do.
type PresenceEvent struct {
	Presence []PresenceEntry `json:"presence"`
}

// ShutdownEvent is the payload of the shutdown event.
type ShutdownEvent struct {
	Reason            string `json:"reason"`
	RestartExpectedMs int64  `json:"restartExpectedMs,omitempty"`
}

// TickEvent is the payload of the tick event.
type TickEvent struct {
	TS int64 `json:"ts"`
}

// SystemEventParams are the params of system-event.
type SystemEventParams struct {
	Text             string   `json:"text" jsonschema:"minLength=1"`
	Host             string   `json:"host,omitempty"`
	IP               string   `json:"ip,omitempty"`
	Mode             string   `json:"mode,omitempty"`
	Version          string   `json:"version,omitempty"`
	Platform         string   `json:"platform,omitempty"`
	DeviceFamily     string   `json:"deviceFamily,omitempty"`
	ModelIdentifier  string   `json:"modelIdentifier,omitempty"`
	LastInputSeconds *int64   `json:"lastInputSeconds,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	InstanceID       string   `json:"instanceId,omitempty"`
}

// LogsTailParams are the params of logs.tail.
type LogsTailParams struct {
	Cursor   *int64 `json:"cursor,omitempty" jsonschema:"minimum=0"`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=5000"`
	MaxBytes int    `json:"maxBytes,omitempty" jsonschema:"minimum=1,maximum=1000000"`
}

// EmptyParams are the params of methods that take none.
type EmptyParams struct {
	Probe bool `json:"probe,omitempty"`
}
