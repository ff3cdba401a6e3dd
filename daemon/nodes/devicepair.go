package nodes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// nodeIdentity is a node's DeviceIdentity: role node, no operator scopes.
func nodeIdentity(id, publicKey, clientID, clientMode, remoteIP string, m nodeproto.NodeMeta) nodeproto.DeviceIdentity {
	return nodeproto.DeviceIdentity{DeviceID: id, PublicKey: publicKey, DisplayName: m.DisplayName, Platform: m.Platform,
		DeviceFamily: m.DeviceFamily, ClientID: clientID, ClientMode: clientMode, Role: protocol.RoleNode,
		Roles: []string{protocol.RoleNode}, Scopes: []string{}, RemoteIP: remoteIP}
}

func (f *Feature) devicePairMethods() []gateway.Method {
	return []gateway.Method{
		{Name: nodeproto.MethodDevicePairList, Scope: protocol.ScopePairing, Handler: f.handleDevicePairList},
		{Name: nodeproto.MethodDevicePairApprove, Scope: protocol.ScopePairing, Handler: f.handleDevicePairApprove},
		{Name: nodeproto.MethodDevicePairReject, Scope: protocol.ScopePairing, Handler: f.handleDevicePairReject},
		{Name: nodeproto.MethodDevicePairRemove, Scope: protocol.ScopePairing, Handler: f.handleDevicePairRemove},
	}
}

func deviceRequest(r nodeproto.PairingRequest) nodeproto.DevicePairingRequest {
	return nodeproto.DevicePairingRequest{RequestID: r.RequestID, IsRepair: r.IsRepair, TS: r.TS,
		DeviceIdentity: nodeIdentity(r.NodeID, r.PublicKey, r.ClientID, r.ClientMode, r.RemoteIP, r.NodeMeta)}
}

// devicePairedLocked is rec as a paired device. f.mu is held.
func (f *Feature) devicePairedLocked(rec *pairedRecord) nodeproto.PairedDevice {
	d := nodeproto.PairedDevice{DeviceIdentity: nodeIdentity(rec.NodeID, rec.PublicKey, rec.ClientID, "node", rec.RemoteIP, rec.NodeMeta),
		CreatedAtMs: rec.CreatedAtMs, ApprovedAtMs: rec.ApprovedAtMs, Tokens: []nodeproto.DeviceToken{}}
	if rec.TokenHash != "" {
		d.Tokens = append(d.Tokens, nodeproto.DeviceToken{Role: protocol.RoleNode, Scopes: []string{}, CreatedAtMs: rec.TokenIssuedAtMs})
	}
	if ln := f.live[rec.NodeID]; ln != nil && !ln.ended() {
		d.Connected = true
	}
	return d
}

func (f *Feature) handleDevicePairList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	if perr := call.Decode("", &struct{}{}); perr != nil {
		return nil, perr
	}
	l := f.PairList()
	out := nodeproto.DevicePairList{Pending: make([]nodeproto.DevicePairingRequest, 0, len(l.Pending)), Paired: make([]nodeproto.PairedDevice, 0, len(l.Paired))}
	for _, r := range l.Pending {
		out.Pending = append(out.Pending, deviceRequest(r))
	}
	f.mu.Lock()
	for _, n := range l.Paired {
		if rec := f.paired[n.NodeID]; rec != nil {
			out.Paired = append(out.Paired, f.devicePairedLocked(rec))
		}
	}
	f.mu.Unlock()
	return out, nil
}

func (f *Feature) handleDevicePairApprove(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	// OpenClaw lets only operator.admin approve a device asking for a
	// role other than operator (every request here is a node's), with
	// this message: its CLI (openclaw devices approve) retries with
	// operator.admin when it sees it.
	if !call.Peer.HasScope(protocol.ScopeAdmin) {
		return nil, &protocol.Error{Code: protocol.ErrInvalidRequest,
			Message: "device pairing approval denied: approving a node's device takes operator.admin (or use node.pair.approve: gatewayctl pairing approve)",
			Details: protocol.Details{"code": nodeproto.DetailDeviceApprovalDenied, "reason": "role-management-requires-admin",
				"requiredScopes": []string{protocol.ScopePairing, protocol.ScopeAdmin}}}
	}
	res, perr := f.approve(call)
	if perr != nil {
		return nil, perr
	}
	f.mu.Lock()
	var dev nodeproto.PairedDevice
	if rec := f.paired[res.NodeID]; rec != nil {
		dev = f.devicePairedLocked(rec)
	}
	f.mu.Unlock()
	return map[string]any{"requestId": res.RequestID, "device": dev}, nil
}

func (f *Feature) handleDevicePairReject(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	rid, nodeID, perr := f.reject(call)
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"requestId": rid, "deviceId": nodeID}, nil
}

func (f *Feature) handleDevicePairRemove(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		DeviceID string `json:"deviceId"`
	}
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if strings.TrimSpace(in.DeviceID) == "" {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /deviceId: required (see openclaw devices list)"))
	}
	id, perr := f.unpair(call, in.DeviceID)
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"deviceId": id}, nil
}

// Approval scopes: OpenClaw (src/infra/node-pairing-authz.ts) lets an
// operator approve a node only with the scopes the node's commands will
// need: operator.pairing, plus operator.write when the node declares any
// command, or operator.admin when it declares one that runs programs or
// reaches the host's files or browser.
var adminPairCommands = []string{"system.run.prepare", "system.run", "system.which",
	"system.execApprovals.get", "system.execApprovals.set", "fs.listDir", "terminal.upload",
	"browser.proxy", "browser.proxy.upload.v1"}

// approvalScopes is what approving a node with commands takes.
func approvalScopes(commands []string) []string {
	for _, c := range commands {
		if slices.Contains(adminPairCommands, c) {
			return []string{protocol.ScopePairing, protocol.ScopeAdmin}
		}
	}
	if len(commands) > 0 {
		return []string{protocol.ScopePairing, protocol.ScopeWrite}
	}
	return []string{protocol.ScopePairing}
}

// checkApprovalScopes returns the missing-scope error when p may not
// approve a node with these commands.
func checkApprovalScopes(p *gateway.Peer, commands []string) *protocol.Error {
	need := approvalScopes(commands)
	for _, s := range need {
		if !p.HasScope(s) {
			perr := protocol.MissingScope(s, need)
			perr.Message += fmt.Sprintf(" (approving a node that offers %s takes %s)", strings.Join(commands, ", "), strings.Join(need, " + "))
			return perr
		}
	}
	return nil
}
