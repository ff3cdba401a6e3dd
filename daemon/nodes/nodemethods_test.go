package nodes_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// TestDevicePairingAndNodeRoleMethods: device.pair.* is a view of the
// one pairing store (with its own events), the pairing refusal tells
// OpenClaw's node host to keep retrying, approving takes the scopes the
// node's commands call for, and a paired node's own methods are answered
// for role node only.
func TestDevicePairingAndNodeRoleMethods(t *testing.T) {
	g := startGateway(t, t.TempDir(), nil)
	op := operator(t, g, protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopePairing)
	admin := operator(t, g, protocol.ScopeAdmin)
	ctx := ctxT(t, 60*time.Second)
	key, _ := client.NewDeviceKey()
	nodeID := client.DeviceID(key)
	dial := func(devTok string) (*client.Conn, error) {
		return client.DialNode(ctx, client.Options{URL: g.URL, Token: g.Token, DeviceToken: devTok, Device: key,
			DisplayName: "runner", DeviceFamily: "Linux", Commands: []string{"system.run", "system.which"}})
	}

	// The refusal carries OpenClaw's pairing details.
	_, err := dial("")
	var de *client.DialError
	if !errors.As(err, &de) || de.Server == nil || de.Server.Code != protocol.ErrNotPaired {
		t.Fatalf("unpaired node: %v", err)
	}
	d, _ := de.Server.Details.(map[string]any)
	if d["code"] != nodeproto.DetailPairingRequired || d["recommendedNextStep"] != "wait_then_retry" || d["pauseReconnect"] != false ||
		d["deviceId"] != nodeID || d["requestedRole"] != "node" || d["reason"] != "not-paired" {
		t.Errorf("pairing details = %v", d)
	}
	rid, _ := d["requestId"].(string)
	ev := waitEvent(t, op, nodeproto.EventDevicePairRequest, nil)
	var evReq nodeproto.DevicePairingRequest
	if json.Unmarshal(ev, &evReq) != nil || evReq.RequestID != rid || evReq.DeviceID != nodeID || evReq.Role != "node" {
		t.Errorf("device.pair.requested = %s", ev)
	}

	var dl nodeproto.DevicePairList
	callInto(t, op, nodeproto.MethodDevicePairList, map[string]any{}, &dl)
	if len(dl.Pending) != 1 || dl.Pending[0].RequestID != rid || dl.Pending[0].DisplayName != "runner" || len(dl.Paired) != 0 {
		t.Fatalf("device.pair.list = %+v", dl)
	}
	var pl nodeproto.PairList
	callInto(t, op, nodeproto.MethodPairList, nil, &pl)
	if len(pl.Pending) != 1 || len(pl.Pending[0].RequiredApproveScopes) != 2 || pl.Pending[0].RequiredApproveScopes[1] != protocol.ScopeAdmin {
		t.Fatalf("node.pair.list = %+v", pl)
	}

	// system.run takes operator.admin to approve, through either family;
	// device.pair.approve answers with the message OpenClaw's CLI retries
	// with operator.admin on.
	wantErr(t, callErr(t, op, nodeproto.MethodPairApprove, map[string]any{"requestId": rid}), protocol.ErrForbidden, protocol.DetailMissingScope)
	e := callErr(t, op, nodeproto.MethodDevicePairApprove, map[string]any{"requestId": rid})
	wantErr(t, e, protocol.ErrInvalidRequest, nodeproto.DetailDeviceApprovalDenied)
	if !strings.Contains(e.Message, "device pairing approval denied") {
		t.Errorf("device.pair.approve without admin: %q", e.Message)
	}
	var ap struct {
		RequestID string                 `json:"requestId"`
		Device    nodeproto.PairedDevice `json:"device"`
	}
	callInto(t, admin, nodeproto.MethodDevicePairApprove, map[string]any{"requestId": rid}, &ap)
	if ap.RequestID != rid || ap.Device.DeviceID != nodeID || ap.Device.Role != "node" || ap.Device.Connected {
		t.Errorf("device.pair.approve = %+v", ap)
	}
	waitEvent(t, op, nodeproto.EventDevicePairResolved, func(p json.RawMessage) bool {
		var r map[string]any
		return json.Unmarshal(p, &r) == nil && r["deviceId"] == nodeID && r["decision"] == "approved"
	})

	n, err := dial("")
	if err != nil {
		t.Fatalf("paired node: %v", err)
	}
	defer n.Close()
	callInto(t, op, nodeproto.MethodDevicePairList, map[string]any{}, &dl)
	if len(dl.Pending) != 0 || len(dl.Paired) != 1 || !dl.Paired[0].Connected || len(dl.Paired[0].Tokens) != 1 {
		t.Fatalf("device.pair.list after approval = %+v", dl)
	}

	// The node's own methods.
	stats := `{"cpuCount":2,"loadAverage":[0.5,0.25,0.1],"memoryTotalBytes":1000,"memoryFreeBytes":400}`
	var evRes nodeproto.NodeEventResult
	callInto(t, n, nodeproto.MethodNodeEvent, map[string]any{"event": nodeproto.EventHostStats, "payloadJSON": stats}, &evRes)
	if !evRes.OK || !evRes.Handled || evRes.Event != nodeproto.EventHostStats {
		t.Errorf("node.event host stats = %+v", evRes)
	}
	callInto(t, n, nodeproto.MethodNodeEvent, map[string]any{"event": "exec.finished", "payloadJSON": nil}, &evRes)
	if !evRes.OK || evRes.Handled || evRes.Reason != "unsupported_event" {
		t.Errorf("node.event exec.finished = %+v", evRes)
	}
	callInto(t, n, nodeproto.MethodNodeEvent, map[string]any{"event": nodeproto.EventHostStats, "payload": map[string]any{"cpuCount": 0}}, &evRes)
	if evRes.Handled || evRes.Reason != "invalid_payload" {
		t.Errorf("node.event bad stats = %+v", evRes)
	}
	var res map[string]any
	callInto(t, n, nodeproto.MethodSkillsUpdate, map[string]any{"skills": []map[string]any{{"name": "grep-logs", "description": "d", "content": "c"}}}, &res)
	callInto(t, n, nodeproto.MethodPluginToolsUpdate, map[string]any{"tools": []map[string]any{{"pluginId": "p", "name": "lookup", "description": "d"}}}, &res)
	callInto(t, n, nodeproto.MethodRunnerInventoryUpdate, map[string]any{"protocolFeatures": []string{"node-worker-supervisor-v6"}, "workerHost": map[string]any{"enabled": false}}, &res)
	if res["nodeId"] != nodeID {
		t.Errorf("node.runnerInventory.update = %v", res)
	}
	callInto(t, n, nodeproto.MethodSkillsBins, map[string]any{}, &res)
	if b, ok := res["bins"].([]any); !ok || len(b) != 0 {
		t.Errorf("skills.bins = %v", res)
	}
	callInto(t, n, nodeproto.MethodPendingPull, map[string]any{}, &res)
	if a, ok := res["actions"].([]any); !ok || len(a) != 0 || res["nodeId"] != nodeID {
		t.Errorf("node.pending.pull = %v", res)
	}
	callInto(t, n, nodeproto.MethodPendingDrain, map[string]any{"maxItems": 5}, &res)
	if res["hasMore"] != false {
		t.Errorf("node.pending.drain = %v", res)
	}
	callInto(t, n, nodeproto.MethodInvokeProgress, map[string]any{"invokeId": "gone", "nodeId": nodeID, "seq": 0, "chunk": "x"}, &res)
	if res["ignored"] != true {
		t.Errorf("node.invoke.progress of an unknown invoke = %v", res)
	}
	wantErr(t, callErr(t, n, nodeproto.MethodInvokeProgress, map[string]any{"invokeId": "x", "nodeId": "other", "seq": 0, "chunk": "x"}), protocol.ErrInvalidRequest, "")
	var info nodeproto.NodeInfo
	callInto(t, op, nodeproto.MethodDescribe, map[string]any{"nodeId": nodeID}, &info)
	if string(info.HostStats) != stats || len(info.Skills) != 1 || info.Skills[0] != "grep-logs" || len(info.PluginTools) != 1 {
		t.Errorf("node.describe = %+v (hostStats %s)", info, info.HostStats)
	}

	// An invoke the node does not answer in time: progress counts while
	// it waits, then the node is told to cancel.
	errc := make(chan error, 1)
	go func() {
		_, err := op.Call(ctx, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "system.which", "timeoutMs": 1500})
		errc <- err
	}()
	var ir nodeproto.InvokeRequest
	if json.Unmarshal(waitEvent(t, n, nodeproto.EventInvokeRequest, nil), &ir) != nil || ir.Command != "system.which" {
		t.Fatalf("node.invoke.request = %+v", ir)
	}
	callInto(t, n, nodeproto.MethodInvokeProgress, map[string]any{"invokeId": ir.ID, "nodeId": nodeID, "seq": 0, "chunk": "working"}, &res)
	if res["ignored"] != false {
		t.Errorf("node.invoke.progress of a waiting invoke = %v", res)
	}
	waitEvent(t, n, nodeproto.EventInvokeCancel, func(p json.RawMessage) bool {
		var c map[string]string
		return json.Unmarshal(p, &c) == nil && c["invokeId"] == ir.ID && c["nodeId"] == nodeID
	})
	var ce *client.CallError
	if err := <-errc; !errors.As(err, &ce) || ce.Err.DetailCode() != nodeproto.DetailInvokeTimeout {
		t.Errorf("unanswered invoke = %v", err)
	}

	// Operators get OpenClaw's role error, not a scope error.
	for _, m := range []string{nodeproto.MethodNodeEvent, nodeproto.MethodSkillsBins, nodeproto.MethodInvokeResult} {
		e := callErr(t, admin, m, map[string]any{})
		if e.Code != protocol.ErrInvalidRequest || e.Message != "unauthorized role: operator" {
			t.Errorf("%s by an operator = %s %q", m, e.Code, e.Message)
		}
	}

	// device.pair.remove unpairs and disconnects the node.
	callInto(t, admin, nodeproto.MethodDevicePairRemove, map[string]any{"deviceId": nodeID}, &res)
	if res["deviceId"] != nodeID {
		t.Errorf("device.pair.remove = %v", res)
	}
	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("removed node still connected after 10s")
	}
}
