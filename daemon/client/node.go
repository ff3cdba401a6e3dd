package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Node-side defaults: what DialNode puts in zero Options fields.
const (
	DefaultNodeClientID = "node-host"
	DefaultNodeMode     = "node"
)

// Method and event names of the node protocol.
const (
	eventInvokeRequest = "node.invoke.request"
	methodInvokeResult = "node.invoke.result"
)

// NewDeviceKey generates a device identity: an Ed25519 key whose public
// half's SHA-256 (hex) is the device id, which is also the node id.
func NewDeviceKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate device key: %w", err)
	}
	return priv, nil
}

// DeviceID is the device id (and node id) of key.
func DeviceID(key ed25519.PrivateKey) string {
	return protocol.DeviceID(key.Public().(ed25519.PublicKey))
}

// LoadOrCreateDeviceKey reads the device key kept at path (the base64url
// 32-byte seed), or creates one there (mode 0600, directories 0700) when
// the file does not exist. A node keeps its key: a new key is a new device
// that has to be paired again.
func LoadOrCreateDeviceKey(path string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		seed, derr := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(raw)))
		if derr != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("device key %s is not a base64url 32-byte Ed25519 seed (move it aside to create a new device, which must be paired again)", path)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read device key %s: %w", path, err)
	}
	key, err := NewDeviceKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for device key %s: %w", path, err)
	}
	data := base64.RawURLEncoding.EncodeToString(key.Seed()) + "\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return nil, fmt.Errorf("write device key %s: %w", path, err)
	}
	return key, nil
}

// DialNode connects as a node: role "node", client id "node-host" and
// mode "node" unless o says otherwise, advertising o.Caps and o.Commands.
// o.Device is required (a node is known by its device identity). Pass the
// shared secret in o.Token for the first connect, and the credential the
// gateway issued (Conn.DeviceToken) in o.DeviceToken afterwards; with only
// a device token the shared secret is not needed.
//
// An unpaired node is refused: the error is a *DialError for which
// PairingRequired reports the pending request's id.
func DialNode(ctx context.Context, o Options) (*Conn, error) {
	if o.Device == nil {
		return nil, &DialError{URL: o.URL, Stage: StageConnect,
			Err: errors.New("a node needs a device identity: set Options.Device (see LoadOrCreateDeviceKey)")}
	}
	o.Role = protocol.RoleNode
	if o.ClientID == "" {
		o.ClientID = DefaultNodeClientID
	}
	if o.Mode == "" {
		o.Mode = DefaultNodeMode
	}
	return Dial(ctx, o)
}

// DeviceToken is the per-device credential the gateway issued in hello-ok
// (auth.deviceToken), "" when it issued none. A node stores it and sends
// it as Options.DeviceToken on later connects.
func (c *Conn) DeviceToken() string {
	if c.hello == nil {
		return ""
	}
	return c.hello.Auth.DeviceToken
}

// PairingRequired reports whether err is a connect refused because the
// node is not paired yet, and the id of its pending pairing request (which
// an operator approves with `gatewayctl pairing approve ID`).
func PairingRequired(err error) (requestID string, ok bool) {
	var de *DialError
	if !errors.As(err, &de) || de.Server == nil || de.Server.Code != protocol.ErrNotPaired {
		return "", false
	}
	if d, isMap := de.Server.Details.(map[string]any); isMap {
		requestID, _ = d["requestId"].(string)
	}
	return requestID, true
}

// NodeInvoke is one command the gateway forwards to this node
// (node.invoke.request).
type NodeInvoke struct {
	ID             string          // the invoke id, echoed in the result
	NodeID         string          // this node's id
	Command        string          // one of the commands the node advertised
	Params         json.RawMessage // the caller's params (nil when none)
	Timeout        time.Duration   // how long the caller waits
	IdempotencyKey string          // the caller's key, when given
}

// NodeError is an error a NodeHandler returns to give the caller a code
// with the message.
type NodeError struct {
	Code    string
	Message string
}

// Error returns "CODE: message".
func (e *NodeError) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// NodeHandler answers one command: a payload (any JSON-encodable value, or
// a json.RawMessage sent as is) or an error (a *NodeError keeps its code).
// Its ctx ends at the invoke's timeout or when the connection ends; an
// error returned after that is not sent (the gateway has answered the
// caller with a timeout already).
type NodeHandler func(ctx context.Context, inv NodeInvoke) (any, error)

// nodeInvokeRequest is the event's payload.
type nodeInvokeRequest struct {
	ID             string `json:"id"`
	NodeID         string `json:"nodeId"`
	Command        string `json:"command"`
	ParamsJSON     string `json:"paramsJSON,omitempty"`
	Params         any    `json:"params,omitempty"`
	TimeoutMs      int64  `json:"timeoutMs,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// nodeInvokeResult is the node.invoke.result params.
type nodeInvokeResult struct {
	ID      string          `json:"id"`
	NodeID  string          `json:"nodeId"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *NodeError      `json:"error,omitempty"`
}

// MarshalJSON encodes a NodeError as the protocol's {code?, message}.
func (e *NodeError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Code    string `json:"code,omitempty"`
		Message string `json:"message"`
	}{e.Code, e.Message})
}

// ServeNode answers every node.invoke.request arriving on c with h (each
// on its own goroutine) by calling node.invoke.result, until ctx ends
// (it returns nil) or the connection ends (it returns why). It consumes
// c.Events(); other events go to onEvent when it is not nil (called on
// ServeNode's goroutine). It waits for running handlers before it
// returns.
func (c *Conn) ServeNode(ctx context.Context, h NodeHandler, onEvent func(Event)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-c.events:
			if !ok {
				return c.closedError("serve node")
			}
			if ev.Name != eventInvokeRequest {
				if onEvent != nil {
					onEvent(ev)
				}
				continue
			}
			var req nodeInvokeRequest
			if err := json.Unmarshal(ev.Payload, &req); err != nil || req.ID == "" {
				c.log.Warn("ignoring undecodable node.invoke.request", "err", err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.answerInvoke(ctx, &req, h)
			}()
		}
	}
}

func (c *Conn) answerInvoke(ctx context.Context, req *nodeInvokeRequest, h NodeHandler) {
	inv := NodeInvoke{ID: req.ID, NodeID: req.NodeID, Command: req.Command, IdempotencyKey: req.IdempotencyKey,
		Timeout: time.Duration(req.TimeoutMs) * time.Millisecond}
	switch {
	case req.ParamsJSON != "":
		inv.Params = json.RawMessage(req.ParamsJSON)
	case req.Params != nil:
		inv.Params, _ = json.Marshal(req.Params)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if inv.Timeout > 0 {
		hctx, cancel = context.WithTimeout(hctx, inv.Timeout)
		defer cancel()
	}
	go func() { // the connection ending ends the handler's context
		select {
		case <-c.done:
			cancel()
		case <-hctx.Done():
		}
	}()
	res := nodeInvokeResult{ID: req.ID, NodeID: req.NodeID}
	payload, err := h(hctx, inv)
	if err != nil && hctx.Err() != nil {
		// The invoke's time is up (the gateway answers the caller with a
		// timeout itself) or the connection ended: nobody waits for this.
		c.log.Debug("node handler ended without an answer", "id", req.ID, "command", req.Command, "err", err)
		return
	}
	if err == nil {
		raw, merr := marshalPayload(payload)
		if merr != nil {
			err = merr
		} else {
			res.OK, res.Payload = true, raw
		}
	}
	if err != nil {
		var ne *NodeError
		if !errors.As(err, &ne) {
			ne = &NodeError{Message: err.Error()}
		}
		res.Error = ne
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer ccancel()
	if _, err := c.Call(cctx, methodInvokeResult, res); err != nil {
		c.log.Warn("sending node.invoke.result failed", "id", req.ID, "err", err)
	}
}

func marshalPayload(v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(p) == 0 {
			return nil, nil
		}
		if !json.Valid(p) {
			return nil, errors.New("handler payload is not valid JSON")
		}
		return p, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode handler payload: %w", err)
	}
	return b, nil
}
