package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
)

// nodeRoleMethods are the node-only methods. Their Scope is "" (every
// authenticated peer passes the core's scope check); nodeOnly refuses
// other roles with OpenClaw's error.
func (f *Feature) nodeRoleMethods() []gateway.Method {
	m := func(name string, h func(context.Context, *gateway.Call) (any, *protocol.Error)) gateway.Method {
		return gateway.Method{Name: name, Scope: "", Handler: nodeOnly(h)}
	}
	return []gateway.Method{
		m(nodeproto.MethodNodeEvent, f.handleNodeEvent),
		m(nodeproto.MethodInvokeProgress, f.handleInvokeProgress),
		m(nodeproto.MethodPluginToolsUpdate, f.handlePluginToolsUpdate),
		m(nodeproto.MethodSkillsUpdate, f.handleSkillsUpdate),
		m(nodeproto.MethodRunnerInventoryUpdate, f.handleRunnerInventoryUpdate),
		m(nodeproto.MethodPluginSurfaceRefresh, f.handlePluginSurfaceRefresh),
		m(nodeproto.MethodPendingPull, f.handlePendingPull),
		m(nodeproto.MethodPendingAck, f.handlePendingAck),
		m(nodeproto.MethodPendingDrain, f.handlePendingDrain),
		m(nodeproto.MethodSkillsBins, f.handleSkillsBins),
	}
}

// nodeOnly answers a caller of another role as OpenClaw does
// (server-methods.ts authorizeGatewayMethod, role-policy.ts).
func nodeOnly(h func(context.Context, *gateway.Call) (any, *protocol.Error)) func(context.Context, *gateway.Call) (any, *protocol.Error) {
	return func(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
		if call.Peer.Role() != protocol.RoleNode {
			return nil, &protocol.Error{Code: protocol.ErrInvalidRequest,
				Message: "unauthorized role: " + call.Peer.Role(),
				Details: protocol.Details{"code": nodeproto.DetailNodeRoleRequired,
					"hint": call.Method + " is called by node hosts on their own connection (role \"node\")"}}
		}
		return h(ctx, call)
	}
}

// updateCaller applies set to the calling connection's live node entry
// under f.mu and returns the node id, or unknownCaller when the
// connection is not a paired node's (it connected without a device, or
// was unpaired).
func (f *Feature) updateCaller(call *gateway.Call, set func(ln *liveNode)) (string, *protocol.Error) {
	id, _ := normalizeNodeID(call.Peer.DeviceID())
	f.mu.Lock()
	defer f.mu.Unlock()
	ln := f.conns[call.Peer.ConnID()]
	if ln == nil {
		return "", unknownCaller()
	}
	set(ln)
	return id, nil
}

// unknownCaller is OpenClaw's answer when the calling node is not
// registered (it connected without a device, or was unpaired).
func unknownCaller() *protocol.Error {
	return protocol.Errorf(protocol.ErrInvalidRequest, "unknown nodeId")
}

type nodeEventParams struct {
	Event       string          `json:"event"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	PayloadJSON *string         `json:"payloadJSON,omitempty"` // a string, or null (node hosts send null without a payload)
}

// hostStats is a node.host.stats payload (OpenClaw's
// NodeHostStatsPayloadSchema).
type hostStats struct {
	CPUCount           int       `json:"cpuCount"`
	LoadAverage        []float64 `json:"loadAverage,omitempty"`
	MemoryTotalBytes   int64     `json:"memoryTotalBytes"`
	MemoryFreeBytes    int64     `json:"memoryFreeBytes"`
	DiskTotalBytes     *int64    `json:"diskTotalBytes,omitempty"`
	DiskAvailableBytes *int64    `json:"diskAvailableBytes,omitempty"`
}

func (s *hostStats) valid() bool {
	if s.CPUCount < 1 || s.CPUCount > 4096 || s.MemoryTotalBytes < 0 || s.MemoryFreeBytes < 0 || s.MemoryFreeBytes > s.MemoryTotalBytes {
		return false
	}
	if s.LoadAverage != nil && len(s.LoadAverage) != 3 {
		return false
	}
	if (s.DiskTotalBytes == nil) != (s.DiskAvailableBytes == nil) {
		return false
	}
	return s.DiskTotalBytes == nil || (*s.DiskAvailableBytes >= 0 && *s.DiskAvailableBytes <= *s.DiskTotalBytes)
}

// handleNodeEvent takes an event a node reports. node.host.stats is kept
// (node.describe shows it); other events are acknowledged as unsupported,
// as OpenClaw answers events it has no handler for.
func (f *Feature) handleNodeEvent(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in nodeEventParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if strings.TrimSpace(in.Event) == "" {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /event: required"))
	}
	raw := []byte(nil)
	switch {
	case in.PayloadJSON != nil:
		raw = []byte(*in.PayloadJSON)
	case len(in.Payload) > 0:
		raw = in.Payload
	}
	res := nodeproto.NodeEventResult{OK: true, Event: in.Event}
	if in.Event != nodeproto.EventHostStats {
		res.Reason = "unsupported_event"
		return res, nil
	}
	var st hostStats
	if err := json.Unmarshal(raw, &st); err != nil || !st.valid() {
		res.Reason = "invalid_payload"
		return res, nil
	}
	clean, _ := json.Marshal(&st)
	if _, perr := f.updateCaller(call, func(ln *liveNode) { ln.hostStats = clean }); perr != nil {
		res.Reason = "stale_connection"
		return res, nil
	}
	res.Handled, res.Reason = true, "updated"
	return res, nil
}

type invokeProgressParams struct {
	InvokeID string `json:"invokeId"`
	NodeID   string `json:"nodeId"`
	Seq      int64  `json:"seq"`
	Chunk    string `json:"chunk"`
}

// maxProgressChunk is OpenClaw's bound on one node.invoke.progress chunk.
const maxProgressChunk = 16384

// handleInvokeProgress takes output a node streams while it runs a
// command. node.invoke answers with the final result only, so progress is
// acknowledged (ignored:false while the invoke is waiting) and dropped.
func (f *Feature) handleInvokeProgress(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in invokeProgressParams
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	id, _ := normalizeNodeID(call.Peer.DeviceID())
	switch {
	case in.InvokeID == "" || in.NodeID == "":
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /: invokeId and nodeId are required"))
	case !strings.EqualFold(in.NodeID, id):
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "nodeId mismatch")
	case len(in.Chunk) > maxProgressChunk:
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "progress chunk too large")
	}
	f.mu.Lock()
	inv := f.calls[in.InvokeID]
	f.mu.Unlock()
	live := inv != nil && inv.connID == call.Peer.ConnID()
	return map[string]any{"ok": true, "ignored": !live}, nil
}

func (f *Feature) handlePluginToolsUpdate(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		Tools []nodeproto.PluginTool `json:"tools"`
	}
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	for i, t := range in.Tools {
		if t.PluginID == "" || t.Name == "" || t.Description == "" || len(t.Name) > 64 {
			return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /tools/%d: pluginId, name (at most 64 characters) and description are required", i))
		}
	}
	tools := nonNilTools(in.Tools)
	id, perr := f.updateCaller(call, func(ln *liveNode) { ln.pluginTools = tools })
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"nodeId": id, "tools": tools}, nil
}

func (f *Feature) handleSkillsUpdate(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		Skills []nodeproto.Skill `json:"skills"`
	}
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if len(in.Skills) > 64 {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /skills: %d skills, at most 64", len(in.Skills)))
	}
	for i, s := range in.Skills {
		if s.Name == "" || len(s.Name) > 64 || s.Description == "" || len(s.Description) > 1024 || s.Content == "" || len(s.Content) > 65536 {
			return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /skills/%d: name (1-64), description (1-1024) and content (1-65536) are required", i))
		}
	}
	skills := in.Skills
	if skills == nil {
		skills = []nodeproto.Skill{}
	}
	id, perr := f.updateCaller(call, func(ln *liveNode) { ln.skills = skills })
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"nodeId": id, "skills": skills}, nil
}

// runnerInventory is node.runnerInventory.update's params: the node's
// worker-hosting declaration. gatewayd runs no workers on nodes; it keeps
// the declaration to show it.
type runnerInventory struct {
	ProtocolFeatures []string        `json:"protocolFeatures"`
	WorkerHost       json.RawMessage `json:"workerHost"`
}

func (f *Feature) handleRunnerInventoryUpdate(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in runnerInventory
	if err := json.Unmarshal(call.Params, &in); err != nil || len(in.WorkerHost) == 0 || in.WorkerHost[0] != '{' {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid node runner inventory")
	}
	var wh struct {
		Enabled bool `json:"enabled"`
	}
	_ = json.Unmarshal(in.WorkerHost, &wh)
	id, perr := f.updateCaller(call, func(ln *liveNode) {
		ln.workerHost = wh.Enabled
		ln.protocolFeatures = slices.Clone(in.ProtocolFeatures)
	})
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"nodeId": id}, nil
}

// handlePluginSurfaceRefresh: gatewayd hosts no plugin surfaces (canvas,
// browser), so there is none to refresh; OpenClaw answers the same way
// for a surface it does not have.
func (f *Feature) handlePluginSurfaceRefresh(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		Surface string `json:"surface"`
	}
	_ = json.Unmarshal(call.Params, &in)
	if strings.TrimSpace(in.Surface) == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "surface required")
	}
	return nil, protocol.Errorf(protocol.ErrUnavailable, in.Surface+" plugin surface unavailable")
}

// The pending-work queue: OpenClaw queues work for nodes that are asleep
// (iOS background). gatewayd queues none, so the node always finds its
// queue empty.
func (f *Feature) handlePendingPull(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	if perr := call.Decode("", &struct{}{}); perr != nil {
		return nil, perr
	}
	id, _ := normalizeNodeID(call.Peer.DeviceID())
	if id == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "nodeId required")
	}
	return map[string]any{"nodeId": id, "actions": []any{}}, nil
}

func (f *Feature) handlePendingAck(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		IDs []string `json:"ids"`
	}
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if len(in.IDs) == 0 {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /ids: at least one id is required"))
	}
	id, _ := normalizeNodeID(call.Peer.DeviceID())
	if id == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "nodeId required")
	}
	return map[string]any{"nodeId": id, "ackedIds": in.IDs, "remainingCount": 0}, nil
}

func (f *Feature) handlePendingDrain(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var in struct {
		MaxItems int `json:"maxItems,omitempty"`
	}
	if perr := call.Decode("", &in); perr != nil {
		return nil, perr
	}
	if in.MaxItems < 0 || in.MaxItems > 10 {
		return nil, protocol.InvalidParams(call.Method, fmt.Errorf("at /maxItems: %d is outside 1-10", in.MaxItems))
	}
	id, _ := normalizeNodeID(call.Peer.DeviceID())
	if id == "" {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "nodeId required")
	}
	return map[string]any{"nodeId": id, "revision": 0, "items": []any{}, "hasMore": false}, nil
}

// handleSkillsBins: the executables the gateway's agents' skills need, so
// the node host can trust them for system.run. gatewayd's agents have no
// skills, so there are none.
func (f *Feature) handleSkillsBins(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	if perr := call.Decode("", &struct{}{}); perr != nil {
		return nil, perr
	}
	return map[string]any{"bins": []string{}}, nil
}

func nonNilTools(t []nodeproto.PluginTool) []nodeproto.PluginTool {
	if t == nil {
		return []nodeproto.PluginTool{}
	}
	return t
}
