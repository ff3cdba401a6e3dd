package nodes

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// liveNode is a paired node's live connection. gone is closed when the
// connection ends (Disconnected): the feature tracks that itself rather
// than relying on Peer.Done.
type liveNode struct {
	peer        *gateway.Peer
	connectedAt time.Time
	caps        []string
	commands    []string
	gone        chan struct{}

	// What the node published on this connection (node-role methods;
	// f.mu guards them).
	hostStats        json.RawMessage
	pluginTools      []nodeproto.PluginTool
	skills           []nodeproto.Skill
	workerHost       bool
	protocolFeatures []string
}

func newLiveNode(p *gateway.Peer, now time.Time, caps, commands []string) *liveNode {
	return &liveNode{peer: p, connectedAt: now, caps: nonNil(caps), commands: nonNil(commands), gone: make(chan struct{})}
}

func (ln *liveNode) ended() bool {
	select {
	case <-ln.gone:
		return true
	default:
		return false
	}
}

// invocation is a node.invoke waiting for its node.invoke.result.
// callerGone is closed when the calling connection ends.
type invocation struct {
	id, nodeID, connID, callerConn string
	result                         chan *nodeproto.InvokeResult // buffered 1: the first answer wins
	callerGone                     chan struct{}
}

// Connected implements gateway.ConnObserver. Admit already made a paired
// node's connection its live one (the newest wins); this closes it when
// the node was unpaired in between.
func (f *Feature) Connected(p *gateway.Peer) {
	if p.Role() != protocol.RoleNode || p.DeviceID() == "" {
		return
	}
	id, _ := normalizeNodeID(p.DeviceID())
	cp := p.Connect()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paired[id] == nil { // unpaired between admit and hello-ok
		p.Close(protocol.ClosePolicyViolation, closeReasonUnpaired)
		return
	}
	if f.conns[p.ConnID()] == nil {
		ln := newLiveNode(p, time.Now(), cp.Caps, cp.Commands)
		f.conns[p.ConnID()] = ln
		if cur := f.live[id]; cur == nil || cur.ended() {
			f.live[id] = ln
		}
	}
	f.log.Info("node connected", "nodeId", id, "conn", p.ConnID(), "commands", len(cp.Commands))
}

// Disconnected implements gateway.ConnObserver: invokes the connection
// made are abandoned; a node connection's invokes fail, the node goes
// offline (when this was its live connection) and its last-seen time is
// recorded.
func (f *Feature) Disconnected(p *gateway.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inv := range f.calls {
		if inv.callerConn == p.ConnID() {
			select {
			case <-inv.callerGone:
			default:
				close(inv.callerGone)
			}
		}
	}
	ln := f.conns[p.ConnID()]
	if ln == nil {
		return
	}
	delete(f.conns, p.ConnID())
	close(ln.gone)
	id, _ := normalizeNodeID(p.DeviceID())
	if f.live[id] != ln {
		return
	}
	delete(f.live, id)
	f.log.Info("node disconnected", "nodeId", id, "conn", p.ConnID())
	rec := f.paired[id]
	if rec == nil {
		return
	}
	next := *rec
	next.LastSeenMs = time.Now().UnixMilli()
	if err := f.st.Put(bucketPaired, id, &next); err != nil {
		f.log.Warn("recording node last-seen time failed", "nodeId", id, "err", err)
		return
	}
	f.paired[id] = &next
}

// infoLocked builds the NodeInfo of a paired node. f.mu is held.
func (f *Feature) infoLocked(rec *pairedRecord) nodeproto.NodeInfo {
	n := nodeproto.NodeInfo{
		NodeID: rec.NodeID, NodeMeta: rec.NodeMeta, RemoteIP: rec.RemoteIP,
		Caps: nonNil(rec.Caps), Commands: nonNil(rec.Commands), Paired: true,
		LastSeenMs: rec.LastSeenMs, ApprovedAtMs: rec.ApprovedAtMs, Inflight: f.busy[rec.NodeID],
	}
	if ln := f.live[rec.NodeID]; ln != nil && !ln.ended() {
		n.Connected = true
		n.ConnID = ln.peer.ConnID()
		n.ConnectedAtMs = ln.connectedAt.UnixMilli()
		n.LastSeenMs = time.Now().UnixMilli()
		n.Caps, n.Commands = slices.Clone(ln.caps), slices.Clone(ln.commands)
		n.HostStats = ln.hostStats
		for _, t := range ln.pluginTools {
			n.PluginTools = append(n.PluginTools, t.Name)
		}
		for _, sk := range ln.skills {
			n.Skills = append(n.Skills, sk.Name)
		}
		n.WorkerHost = ln.workerHost
	}
	return n
}

// List returns the paired nodes, connected ones first, then by name and
// id.
func (f *Feature) List() nodeproto.NodeList {
	f.mu.Lock()
	out := nodeproto.NodeList{TS: time.Now().UnixMilli(), Nodes: make([]nodeproto.NodeInfo, 0, len(f.paired))}
	for _, rec := range f.paired {
		out.Nodes = append(out.Nodes, f.infoLocked(rec))
	}
	f.mu.Unlock()
	slices.SortFunc(out.Nodes, func(a, b nodeproto.NodeInfo) int {
		if a.Connected != b.Connected {
			if a.Connected {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(a.DisplayName, b.DisplayName), strings.Compare(a.NodeID, b.NodeID))
	})
	return out
}

func (f *Feature) handleList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	if perr := call.Decode("", &struct{}{}); perr != nil {
		return nil, perr
	}
	return f.List(), nil
}

func (f *Feature) handleDescribe(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in nodeIDParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if strings.TrimSpace(in.NodeID) == "" {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /nodeId: required (see gatewayctl nodes list)"))
	}
	id, _ := normalizeNodeID(in.NodeID)
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.paired[id]
	if rec == nil {
		return nil, f.notPairedLocked(in.NodeID, id)
	}
	return f.infoLocked(rec), nil
}

// notPairedLocked is the error for a node id that is not paired: NOT_PAIRED
// when a pairing request of it is pending, else unknown node. f.mu is held.
func (f *Feature) notPairedLocked(raw, id string) *protocol.Error {
	now := time.Now().UnixMilli()
	for _, r := range f.pending {
		if r.NodeID == id && now < r.ExpiresAtMs {
			return &protocol.Error{Code: protocol.ErrNotPaired,
				Message: fmt.Sprintf("node %s is not paired: its pairing request %s is pending (approve it: gatewayctl pairing approve %s)", id, r.RequestID, r.RequestID),
				Details: protocol.Details{"code": nodeproto.DetailNodeNotPaired, "nodeId": id, "requestId": r.RequestID}}
		}
	}
	return unknownNode(raw)
}

// handleInvoke forwards a command to a node and waits for its answer.
func (f *Feature) handleInvoke(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in invokeParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	switch {
	case strings.TrimSpace(in.NodeID) == "":
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /nodeId: required (see gatewayctl nodes list)"))
	case strings.TrimSpace(in.Command) == "":
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /command: required (one of the node's commands: gatewayctl nodes describe NODE)"))
	case in.TimeoutMs < 0:
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /timeoutMs: %d is negative (leave it out for the default)", in.TimeoutMs))
	}
	cfg := f.config()
	timeout := in.TimeoutMs
	if timeout == 0 {
		timeout = int64(cfg.InvokeTimeoutMs)
	}
	timeout = min(timeout, int64(cfg.MaxInvokeTimeoutMs))
	id, _ := normalizeNodeID(in.NodeID)

	f.mu.Lock()
	rec := f.paired[id]
	if rec == nil {
		perr := f.notPairedLocked(in.NodeID, id)
		f.mu.Unlock()
		return nil, perr
	}
	ln := f.live[id]
	if ln == nil || ln.ended() {
		f.mu.Unlock()
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
			Message: fmt.Sprintf("node %s is paired but not connected (check the node; gatewayctl nodes list shows when it was last seen)", id),
			Details: protocol.Details{"code": nodeproto.DetailNodeOffline, "nodeId": id, "lastSeenMs": rec.LastSeenMs}}
	}
	if !slices.Contains(ln.commands, in.Command) {
		f.mu.Unlock()
		return nil, &protocol.Error{Code: protocol.ErrInvalidRequest,
			Message: fmt.Sprintf("node %s does not advertise command %q (it offers: %s)", id, in.Command, strings.Join(ln.commands, ", ")),
			Details: protocol.Details{"code": nodeproto.DetailCommandNotAdvertised, "nodeId": id, "command": in.Command, "commands": ln.commands}}
	}
	if f.busy[id] >= cfg.MaxConcurrentInvokes {
		f.mu.Unlock()
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
			Message: fmt.Sprintf("node %s already runs %d invokes (nodes.maxConcurrentInvokes); retry when one finishes", id, cfg.MaxConcurrentInvokes),
			Details: protocol.Details{"code": nodeproto.DetailNodeBusy, "nodeId": id, "limit": cfg.MaxConcurrentInvokes}}
	}
	inv := &invocation{id: uuid.NewString(), nodeID: id, connID: ln.peer.ConnID(), callerConn: call.Peer.ConnID(),
		result: make(chan *nodeproto.InvokeResult, 1), callerGone: make(chan struct{})}
	f.calls[inv.id] = inv
	f.busy[id]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, inv.id)
		if f.busy[id]--; f.busy[id] <= 0 {
			delete(f.busy, id)
		}
		f.mu.Unlock()
	}()

	ev := nodeproto.InvokeRequest{ID: inv.id, NodeID: id, Command: in.Command, TimeoutMs: timeout, IdempotencyKey: in.IdempotencyKey}
	if len(in.Params) > 0 && string(in.Params) != "null" {
		ev.ParamsJSON = string(in.Params)
	}
	disconnected := &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
		Message: fmt.Sprintf("node %s disconnected before it answered %q", id, in.Command),
		Details: protocol.Details{"code": nodeproto.DetailNodeDisconnected, "nodeId": id, "command": in.Command}}
	if !ln.peer.SendEvent(nodeproto.EventInvokeRequest, ev) {
		return nil, disconnected
	}
	start := time.Now()
	timer := time.NewTimer(time.Duration(timeout) * time.Millisecond)
	defer timer.Stop()
	var res *nodeproto.InvokeResult
	select {
	case res = <-inv.result:
	case <-ln.gone:
		select {
		case res = <-inv.result: // answered, then left
		default:
			return nil, disconnected
		}
	case <-timer.C:
		f.log.Warn("node invoke timed out", "nodeId", id, "command", in.Command, "timeoutMs", timeout)
		cancelInvoke(ln, inv)
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
			Message: fmt.Sprintf("node %s did not answer %q within %d ms", id, in.Command, timeout),
			Details: protocol.Details{"code": nodeproto.DetailInvokeTimeout, "nodeId": id, "command": in.Command, "timeoutMs": timeout}}
	case <-inv.callerGone:
		cancelInvoke(ln, inv)
		return nil, protocol.Errorf(protocol.ErrUnavailable, "caller disconnected")
	case <-f.stop:
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, Message: "gateway is shutting down"}
	case <-ctx.Done():
		return nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true, Message: "gateway is shutting down"}
	}
	f.log.Debug("node invoke answered", "nodeId", id, "command", in.Command, "ok", res.OK, "ms", time.Since(start).Milliseconds())
	if !res.OK {
		nodeErr := res.Error
		if nodeErr == nil {
			nodeErr = &nodeproto.InvokeError{}
		}
		msg := cmp.Or(nodeErr.Message, "node reported failure without a message")
		return nil, &protocol.Error{Code: protocol.ErrUnavailable,
			Message: fmt.Sprintf("node %s failed %q: %s", id, in.Command, msg),
			Details: protocol.Details{"code": nodeproto.DetailInvokeFailed, "nodeId": id, "command": in.Command, "nodeError": nodeErr}}
	}
	out := nodeproto.InvokeResponse{OK: true, NodeID: id, Command: in.Command, Payload: res.Payload}
	if len(out.Payload) == 0 && res.PayloadJSON != "" {
		if json.Valid([]byte(res.PayloadJSON)) {
			out.Payload = json.RawMessage(res.PayloadJSON)
		} else {
			out.Payload, _ = json.Marshal(res.PayloadJSON) // not JSON: pass it on as a string
		}
	}
	return out, nil
}

// cancelInvoke tells the node that nobody waits for inv any more
// (node.invoke.cancel, as OpenClaw sends it: its node host then stops the
// command, e.g. kills the process system.run started).
func cancelInvoke(ln *liveNode, inv *invocation) {
	ln.peer.SendEvent(nodeproto.EventInvokeCancel, map[string]string{"invokeId": inv.id, "nodeId": inv.nodeID})
}

// handleInvokeResult takes a node's answer to node.invoke.request. A late
// answer (the call timed out or its caller left) is acknowledged with
// ignored:true.
func (f *Feature) handleInvokeResult(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in nodeproto.InvokeResult
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if in.ID == "" {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /id: required (the id of the node.invoke.request)"))
	}
	f.mu.Lock()
	inv := f.calls[in.ID]
	f.mu.Unlock()
	if inv == nil {
		return map[string]any{"ok": true, "ignored": true}, nil
	}
	if inv.connID != call.Peer.ConnID() || (in.NodeID != "" && !strings.EqualFold(in.NodeID, inv.nodeID)) {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, fmt.Sprintf("invoke %s was not sent to this node connection", in.ID))
	}
	select {
	case inv.result <- &in:
	default: // a second answer to the same id: the first one counts
		return map[string]any{"ok": true, "ignored": true}, nil
	}
	return map[string]any{"ok": true}, nil
}
