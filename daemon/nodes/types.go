package nodes

import (
	"cmp"
	"encoding/json"

	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// closeReasonUnpaired is the close reason of a node that was unpaired.
const closeReasonUnpaired = "node unpaired"

// metaOr returns m with each empty field taken from old.
func metaOr(m, old nodeproto.NodeMeta) nodeproto.NodeMeta {
	return nodeproto.NodeMeta{
		DisplayName:     cmp.Or(m.DisplayName, old.DisplayName),
		Platform:        cmp.Or(m.Platform, old.Platform),
		Version:         cmp.Or(m.Version, old.Version),
		DeviceFamily:    cmp.Or(m.DeviceFamily, old.DeviceFamily),
		ModelIdentifier: cmp.Or(m.ModelIdentifier, old.ModelIdentifier),
	}
}

// pairedRecord is what the store holds for a paired node: the public view
// plus the hex SHA-256 of its current credential ("" until one is issued).
type pairedRecord struct {
	nodeproto.PairedNode
	TokenHash string `json:"tokenHash,omitempty"`
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
func (in *pairRequestParams) meta() nodeproto.NodeMeta {
	return nodeproto.NodeMeta{DisplayName: in.DisplayName, Platform: in.Platform, Version: in.Version,
		DeviceFamily: in.DeviceFamily, ModelIdentifier: in.ModelIdentifier}
}
