package nodes

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// newToken mints a credential: 32 random bytes, base64url.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the stored form of a credential: hex SHA-256.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// tokenMatches compares a presented credential with a stored hash in
// constant time.
func tokenMatches(tok, storedHash string) bool {
	if tok == "" || storedHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashToken(tok)), []byte(storedHash)) == 1
}

// normalizeNodeID lower-cases a device id (hex) and reports whether it is
// one: 64 hex digits, the SHA-256 of the device's public key.
func normalizeNodeID(id string) (string, bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) != 64 {
		return id, false
	}
	_, err := hex.DecodeString(id)
	return id, err == nil
}

func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// AuthenticateDevice implements gateway.Authenticator: a paired node's
// credential stands in for the shared secret. Only role node qualifies.
func (f *Feature) AuthenticateDevice(deviceID, role, token string) bool {
	if role != protocol.RoleNode {
		return false
	}
	id, ok := normalizeNodeID(deviceID)
	if !ok {
		return false
	}
	f.mu.Lock()
	rec := f.paired[id]
	hash := ""
	if rec != nil {
		hash = rec.TokenHash
	}
	f.mu.Unlock()
	return tokenMatches(token, hash)
}

// Admit implements gateway.Admitter: a node must carry a device identity
// whose id is paired. An unpaired node leaves a pairing request behind and
// is refused with NOT_PAIRED. A paired node that did not present its
// credential gets a fresh one in hello-ok.
func (f *Feature) Admit(p *gateway.Peer) *protocol.Error {
	if p.Role() != protocol.RoleNode {
		return nil
	}
	cp := p.Connect()
	if cp.Device == nil {
		return &protocol.Error{Code: protocol.ErrNotPaired,
			Message: "node connect requires a signed device identity (device) to pair",
			Details: protocol.Details{"code": nodeproto.DetailDeviceRequired}}
	}
	id, _ := normalizeNodeID(cp.Device.ID)
	now := time.Now()

	f.mu.Lock()
	rec := f.paired[id]
	if rec == nil {
		req, created, perr := f.requestLocked(id, requestFromConnect(id, p), false, now)
		f.mu.Unlock()
		if perr != nil {
			return perr
		}
		if created {
			f.log.Info("pairing requested", "requestId", req.RequestID, "nodeId", id, "name", req.DisplayName, "remote", req.RemoteIP)
			f.announceRequested(*req)
		}
		return pairingRequired(req.RequestID, id)
	}
	next := *rec
	next.Caps, next.Commands = nonNil(cp.Caps), nonNil(cp.Commands)
	meta := clientMeta(cp)
	next.NodeMeta = metaOr(meta, rec.NodeMeta)
	next.Platform, next.Version = meta.Platform, meta.Version // as connected, even when empty
	next.ClientID = cp.Client.ID
	next.PublicKey = cp.Device.PublicKey
	next.RemoteIP = hostOf(p.Remote())
	next.LastConnectedAtMs = now.UnixMilli()
	next.LastSeenMs = now.UnixMilli()
	var issue string
	if !presentsCredential(cp, rec.TokenHash) {
		issue = newToken()
		next.TokenHash = hashToken(issue)
		next.TokenIssuedAtMs = now.UnixMilli()
	}
	err := f.st.Put(bucketPaired, id, &next)
	if err == nil {
		f.paired[id] = &next
	}
	// The node is live from here: hello-ok, which follows, must not race
	// with the operators' view (Connected only confirms it; a handshake
	// that fails after this ends the peer, which makes the entry dead).
	ln := newLiveNode(p, now, cp.Caps, cp.Commands)
	f.live[id] = ln
	f.conns[p.ConnID()] = ln
	f.mu.Unlock()
	if err != nil {
		// Let the node in on what it proved; it keeps its old credential.
		f.log.Error("recording node connect failed", "nodeId", id, "err", err)
		return nil
	}
	if issue != "" {
		p.IssueDeviceToken(issue)
		f.log.Info("node credential issued", "nodeId", id, "rotated", rec.TokenHash != "")
	}
	return nil
}

// pairingRequired is the refusal of an unpaired node's connect. Besides
// gatewayd's own details (requestId, nodeId) it carries OpenClaw's pairing
// details (connect-error-details.ts), with recommendedNextStep
// "wait_then_retry" and pauseReconnect false: OpenClaw's node host then
// keeps reconnecting with backoff (re-asking, which keeps the request
// alive) and comes up on its own once an operator approves, instead of
// pausing until it is restarted.
func pairingRequired(requestID, nodeID string) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrNotPaired, Message: "pairing required",
		Details: protocol.Details{"code": nodeproto.DetailPairingRequired, "requestId": requestID, "nodeId": nodeID,
			"reason": "not-paired", "deviceId": nodeID, "requestedRole": protocol.RoleNode, "requestedScopes": []string{},
			"remediationHint":     "Approve the pending request (gatewayctl pairing approve " + requestID + "); the node retries on its own.",
			"recommendedNextStep": "wait_then_retry", "retryable": true, "pauseReconnect": false}}
}

// presentsCredential reports whether the connect carries the node's
// current credential (auth.deviceToken or auth.token).
func presentsCredential(cp *protocol.ConnectParams, hash string) bool {
	if cp.Auth == nil {
		return false
	}
	return tokenMatches(cp.Auth.DeviceToken, hash) || tokenMatches(cp.Auth.Token, hash)
}

// clientMeta is what a connect says about the node.
func clientMeta(cp *protocol.ConnectParams) nodeproto.NodeMeta {
	return nodeproto.NodeMeta{DisplayName: cp.Client.DisplayName, Platform: cp.Client.Platform, Version: cp.Client.Version,
		DeviceFamily: cp.Client.DeviceFamily, ModelIdentifier: cp.Client.ModelIdentifier}
}

// requestFromConnect builds a pairing request from a node's connect.
func requestFromConnect(id string, p *gateway.Peer) nodeproto.PairingRequest {
	cp := p.Connect()
	return nodeproto.PairingRequest{
		NodeID: id, NodeMeta: clientMeta(cp),
		ClientID: cp.Client.ID, ClientMode: cp.Client.Mode, PublicKey: cp.Device.PublicKey,
		Caps: nonNil(cp.Caps), Commands: nonNil(cp.Commands), RemoteIP: hostOf(p.Remote()),
	}
}

// requestLocked creates, or refreshes, the pending request of node id with
// the fields of in. A refresh keeps the request id and creation time,
// takes the new fields (empty ones keep the old value) and pushes the
// expiry back. merge keeps the old caps/commands when in has none. f.mu
// is held.
func (f *Feature) requestLocked(id string, in nodeproto.PairingRequest, merge bool, now time.Time) (*nodeproto.PairingRequest, bool, *protocol.Error) {
	cfg := f.config()
	var old *nodeproto.PairingRequest
	for _, r := range f.pending {
		if r.NodeID == id && now.UnixMilli() < r.ExpiresAtMs {
			old = r
			break
		}
	}
	req := in
	req.NodeID = id
	req.IsRepair = f.paired[id] != nil
	req.ExpiresAtMs = now.Add(time.Duration(cfg.PendingTTLMs) * time.Millisecond).UnixMilli()
	if old != nil {
		req.RequestID, req.TS = old.RequestID, old.TS
		req.NodeMeta = metaOr(req.NodeMeta, old.NodeMeta)
		req.ClientID = cmp.Or(req.ClientID, old.ClientID)
		req.ClientMode = cmp.Or(req.ClientMode, old.ClientMode)
		req.PublicKey = cmp.Or(req.PublicKey, old.PublicKey)
		req.RemoteIP = cmp.Or(req.RemoteIP, old.RemoteIP)
		if merge && len(req.Caps) == 0 {
			req.Caps = old.Caps
		}
		if merge && len(req.Commands) == 0 {
			req.Commands = old.Commands
		}
	} else {
		if live := f.countPendingLocked(now); live >= cfg.MaxPending {
			return nil, false, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, RetryAfterMs: int64(cfg.PendingTTLMs),
				Message: fmt.Sprintf("too many pending pairing requests (%d, nodes.maxPending); approve or reject some (gatewayctl pairing list), or raise nodes.maxPending", live),
				Details: protocol.Details{"code": nodeproto.DetailTooManyPending, "limit": cfg.MaxPending}}
		}
		req.RequestID, req.TS = uuid.NewString(), now.UnixMilli()
	}
	req.Caps, req.Commands = nonNil(req.Caps), nonNil(req.Commands)
	if err := f.st.Put(bucketPending, req.RequestID, &req); err != nil {
		return nil, false, storeError("recording the pairing request", err)
	}
	f.pending[req.RequestID] = &req
	return &req, old == nil, nil
}

func (f *Feature) countPendingLocked(now time.Time) int {
	n := 0
	for _, r := range f.pending {
		if now.UnixMilli() < r.ExpiresAtMs {
			n++
		}
	}
	return n
}

// handlePairRequest: a node asks for itself (a repair request: it is
// paired, or it could not have connected), or an operator with
// operator.pairing asks on behalf of a node (pre-registration by node id).
func (f *Feature) handlePairRequest(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in pairRequestParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	p := call.Peer
	var req nodeproto.PairingRequest
	var id string
	switch {
	case p.Role() == protocol.RoleNode:
		id, _ = normalizeNodeID(p.DeviceID())
		if in.NodeID != "" && !strings.EqualFold(in.NodeID, id) {
			return nil, protocol.Errorf(protocol.ErrInvalidRequest, "a node may request pairing only for itself: nodeId must be its device id or left out")
		}
		req = requestFromConnect(id, p)
		if len(in.Caps) > 0 || len(in.Commands) > 0 {
			req.Caps, req.Commands = nonNil(in.Caps), nonNil(in.Commands)
		}
		req.DisplayName = cmp.Or(in.DisplayName, req.DisplayName)
	case p.HasScope(protocol.ScopePairing):
		var ok bool
		if id, ok = normalizeNodeID(in.NodeID); !ok {
			return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /nodeId: %q is not a node id (the node's device id: 64 hex digits, the SHA-256 of its public key)", in.NodeID))
		}
		req = nodeproto.PairingRequest{NodeID: id, NodeMeta: in.meta(), Caps: in.Caps, Commands: in.Commands, RemoteIP: in.RemoteIP}
	default:
		return nil, protocol.MissingScope(protocol.ScopePairing, []string{protocol.ScopePairing})
	}
	f.mu.Lock()
	r, created, perr := f.requestLocked(id, req, true, time.Now())
	var out nodeproto.PairingRequest
	if r != nil {
		out = *r
	}
	f.mu.Unlock()
	if perr != nil {
		return nil, perr
	}
	if created {
		f.log.Info("pairing requested", "requestId", out.RequestID, "nodeId", id, "by", p.ConnID())
		f.announceRequested(out)
	}
	return map[string]any{"status": "pending", "created": created, "request": out}, nil
}

// handlePairList: pending (oldest first) and paired (by node id).
func (f *Feature) handlePairList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	if perr := call.Decode("", &struct{}{}); perr != nil {
		return nil, perr
	}
	return f.PairList(), nil
}

// PairList returns the pending requests (oldest first, expired ones left
// out) and the paired nodes (by node id).
func (f *Feature) PairList() nodeproto.PairList {
	now := time.Now().UnixMilli()
	out := nodeproto.PairList{Pending: []nodeproto.PairingRequest{}, Paired: []nodeproto.PairedNode{}}
	f.mu.Lock()
	for _, r := range f.pending {
		if now < r.ExpiresAtMs {
			req := *r
			req.RequiredApproveScopes = approvalScopes(r.Commands)
			out.Pending = append(out.Pending, req)
		}
	}
	for _, r := range f.paired {
		out.Paired = append(out.Paired, r.PairedNode)
	}
	f.mu.Unlock()
	slices.SortFunc(out.Pending, func(a, b nodeproto.PairingRequest) int {
		return cmp.Or(cmp.Compare(a.TS, b.TS), strings.Compare(a.RequestID, b.RequestID))
	})
	slices.SortFunc(out.Paired, func(a, b nodeproto.PairedNode) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

// pendingLocked finds a live pending request or returns the not-found
// error. f.mu is held.
func (f *Feature) pendingLocked(requestID string, now time.Time) (*nodeproto.PairingRequest, *protocol.Error) {
	r := f.pending[requestID]
	if r == nil || now.UnixMilli() >= r.ExpiresAtMs {
		return nil, &protocol.Error{Code: protocol.ErrInvalidRequest,
			Message: fmt.Sprintf("unknown pairing request %q: it was resolved, expired or never existed (see gatewayctl pairing list; the node asks again when it reconnects)", requestID),
			Details: protocol.Details{"code": nodeproto.DetailRequestNotFound, "requestId": requestID}}
	}
	return r, nil
}

// lockPending decodes the requestId params of call and finds that live
// pending request. It returns with f.mu held, unless it fails.
func (f *Feature) lockPending(call *gateway.Call) (string, *nodeproto.PairingRequest, time.Time, *protocol.Error) {
	rid, perr := decodeRequestID(call)
	if perr != nil {
		return "", nil, time.Time{}, perr
	}
	now := time.Now()
	f.mu.Lock()
	req, perr := f.pendingLocked(rid, now)
	if perr != nil {
		f.mu.Unlock()
		return "", nil, time.Time{}, perr
	}
	return rid, req, now, nil
}

func decodeRequestID(call *gateway.Call) (string, *protocol.Error) {
	var in requestIDParams
	if perr := call.Decode("", &in); perr != nil {
		return "", perr
	}
	if strings.TrimSpace(in.RequestID) == "" {
		return "", protocol.InvalidParams(call.Method, fmt.Errorf("at /requestId: required (see gatewayctl pairing list)"))
	}
	return strings.TrimSpace(in.RequestID), nil
}

// handlePairApprove pairs the node of a pending request. The answer comes
// only after the store committed the approval.
func (f *Feature) handlePairApprove(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	res, perr := f.approve(call)
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"requestId": res.RequestID, "node": res.Node}, nil
}

// approved is what approve did: the request and the node it paired.
type approved struct {
	RequestID, NodeID string
	Node              nodeproto.PairedNode
}

// approve pairs the node of the pending request call names
// ({requestId}), for node.pair.approve and device.pair.approve. The
// caller needs the scopes OpenClaw asks for the node's commands
// (approvalScopes).
func (f *Feature) approve(call *gateway.Call) (*approved, *protocol.Error) {
	rid, req, now, perr := f.lockPending(call)
	if perr != nil {
		return nil, perr
	}
	if perr := checkApprovalScopes(call.Peer, req.Commands); perr != nil {
		f.mu.Unlock()
		return nil, perr
	}
	rec := &pairedRecord{}
	if old := f.paired[req.NodeID]; old != nil {
		*rec = *old // a repair keeps the credential
	}
	rec.NodeID = req.NodeID
	rec.NodeMeta = metaOr(req.NodeMeta, rec.NodeMeta)
	rec.ClientID = cmp.Or(req.ClientID, rec.ClientID)
	rec.PublicKey = cmp.Or(req.PublicKey, rec.PublicKey)
	rec.RemoteIP = cmp.Or(req.RemoteIP, rec.RemoteIP)
	rec.Caps, rec.Commands = nonNil(req.Caps), nonNil(req.Commands)
	rec.CreatedAtMs = req.TS
	rec.ApprovedAtMs = now.UnixMilli()
	err := f.st.Update(func(tx *store.Tx) error {
		if err := tx.Put(bucketPaired, rec.NodeID, rec); err != nil {
			return err
		}
		return tx.Delete(bucketPending, rid)
	})
	if err != nil {
		f.mu.Unlock()
		return nil, storeError("approving "+rid, err)
	}
	f.paired[rec.NodeID] = rec
	delete(f.pending, rid)
	out := rec.PairedNode
	f.mu.Unlock()
	f.log.Info("node paired", "requestId", rid, "nodeId", out.NodeID, "name", out.DisplayName, "by", call.Peer.ConnID())
	f.announceResolved(nodeproto.Resolved{RequestID: rid, NodeID: out.NodeID, Decision: nodeproto.DecisionApproved, TS: now.UnixMilli()})
	return &approved{RequestID: rid, NodeID: out.NodeID, Node: out}, nil
}

// handlePairReject drops a pending request (a paired node stays paired
// when its repair request is rejected).
func (f *Feature) handlePairReject(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	rid, nodeID, perr := f.reject(call)
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"requestId": rid, "nodeId": nodeID}, nil
}

// reject drops the pending request call names, for node.pair.reject and
// device.pair.reject.
func (f *Feature) reject(call *gateway.Call) (string, string, *protocol.Error) {
	rid, req, now, perr := f.lockPending(call)
	if perr != nil {
		return "", "", perr
	}
	if err := f.st.Delete(bucketPending, rid); err != nil {
		f.mu.Unlock()
		return "", "", storeError("rejecting "+rid, err)
	}
	delete(f.pending, rid)
	nodeID := req.NodeID
	f.mu.Unlock()
	f.log.Info("pairing rejected", "requestId", rid, "nodeId", nodeID, "by", call.Peer.ConnID())
	f.announceResolved(nodeproto.Resolved{RequestID: rid, NodeID: nodeID, Decision: nodeproto.DecisionRejected, TS: now.UnixMilli()})
	return rid, nodeID, nil
}

// handlePairVerify checks a node credential: {ok:false} when the node is
// not paired or the token is not its current credential.
func (f *Feature) handlePairVerify(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in verifyParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	id, _ := normalizeNodeID(in.NodeID)
	if id == "" || in.Token == "" {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /: nodeId and token are required"))
	}
	f.mu.Lock()
	rec := f.paired[id]
	var node nodeproto.PairedNode
	hash := ""
	if rec != nil {
		node, hash = rec.PairedNode, rec.TokenHash
	}
	f.mu.Unlock()
	if !tokenMatches(in.Token, hash) {
		return map[string]any{"ok": false, "nodeId": id}, nil
	}
	return map[string]any{"ok": true, "nodeId": id, "node": node}, nil
}

// handlePairRemove unpairs a node (its credential stops working) and
// closes its live connection with 1008.
func (f *Feature) handlePairRemove(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in nodeIDParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	id, perr := f.unpair(call, in.NodeID)
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"nodeId": id, "removed": true}, nil
}

// unpair removes the paired node raw names, for node.pair.remove and
// device.pair.remove.
func (f *Feature) unpair(call *gateway.Call, raw string) (string, *protocol.Error) {
	id, _ := normalizeNodeID(raw)
	f.mu.Lock()
	if f.paired[id] == nil {
		f.mu.Unlock()
		return "", unknownNode(raw)
	}
	if err := f.st.Delete(bucketPaired, id); err != nil {
		f.mu.Unlock()
		return "", storeError("unpairing "+id, err)
	}
	delete(f.paired, id)
	ln := f.live[id]
	f.mu.Unlock()
	if ln != nil {
		ln.peer.Close(protocol.ClosePolicyViolation, closeReasonUnpaired)
	}
	f.log.Info("node unpaired", "nodeId", id, "by", call.Peer.ConnID())
	return id, nil
}

// announceRequested tells operators holding operator.pairing about a new
// request, as node.pair.requested and device.pair.requested.
func (f *Feature) announceRequested(req nodeproto.PairingRequest) {
	f.broadcast(nodeproto.EventPairRequested, req, protocol.ScopePairing)
	f.broadcast(nodeproto.EventDevicePairRequest, deviceRequest(req), protocol.ScopePairing)
}

// announceResolved sends node.pair.resolved and device.pair.resolved.
func (f *Feature) announceResolved(r nodeproto.Resolved) {
	f.broadcast(nodeproto.EventPairResolved, r, protocol.ScopePairing)
	f.broadcast(nodeproto.EventDevicePairResolved, map[string]any{"requestId": r.RequestID, "deviceId": r.NodeID, "decision": r.Decision, "ts": r.TS}, protocol.ScopePairing)
}

// unknownNode is the error for a node id that is neither paired nor
// pending.
func unknownNode(id string) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrInvalidRequest,
		Message: fmt.Sprintf("unknown node %q: it is not paired (see gatewayctl nodes list and gatewayctl pairing list)", id),
		Details: protocol.Details{"code": nodeproto.DetailNodeNotFound, "nodeId": id}}
}
