package nodes_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/nodeproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// startGateway runs gatewayd in dir with the given "nodes" config section.
func startGateway(t *testing.T, dir string, nodesCfg map[string]any) *gatewaydtest.Gateway {
	t.Helper()
	o := gatewaydtest.Options{Dir: dir}
	if nodesCfg != nil {
		raw, _ := json.Marshal(map[string]any{"nodes": nodesCfg})
		o.Config = string(raw)
	}
	return gatewaydtest.StartT(t, o)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func operator(t *testing.T, g *gatewaydtest.Gateway, scopes ...string) *client.Conn {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{protocol.ScopeRead, protocol.ScopeWrite, protocol.ScopePairing}
	}
	c, err := client.Dial(ctxT(t, 10*time.Second), client.Options{URL: g.URL, Token: g.Token, Scopes: scopes})
	if err != nil {
		t.Fatalf("operator dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var nodeCommands = []string{"echo", "fail", "hang", "slow"}

func dialNode(ctx context.Context, g *gatewaydtest.Gateway, key ed25519.PrivateKey, token, deviceToken string) (*client.Conn, error) {
	return client.DialNode(ctx, client.Options{URL: g.URL, Token: token, DeviceToken: deviceToken, Device: key,
		DisplayName: "test node", DeviceFamily: "server", ModelIdentifier: "test-model-1",
		Caps: []string{"test"}, Commands: nodeCommands})
}

// waitEvent reads c's events until one named name satisfies ok (nil: any),
// bounded by 10 s.
func waitEvent(t *testing.T, c *client.Conn, name string, ok func(json.RawMessage) bool) json.RawMessage {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev, open := <-c.Events():
			if !open {
				t.Fatalf("connection ended while waiting for %s", name)
			}
			if ev.Name == name && (ok == nil || ok(ev.Payload)) {
				return ev.Payload
			}
		case <-deadline.C:
			t.Fatalf("no %s event within 10s", name)
		}
	}
}

// callErr calls method and returns the protocol error (fails when the call
// succeeds).
func callErr(t *testing.T, c *client.Conn, method string, params any) *protocol.Error {
	t.Helper()
	_, err := c.Call(ctxT(t, 15*time.Second), method, params)
	var ce *client.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got %v, want an error response", method, err)
	}
	return ce.Err
}

func wantErr(t *testing.T, e *protocol.Error, code, detail string) {
	t.Helper()
	if e.Code != code || e.DetailCode() != detail {
		t.Errorf("error = %s %s (%q), want %s %s", e.Code, e.DetailCode(), e.Message, code, detail)
	}
}

func callInto(t *testing.T, c *client.Conn, method string, params, out any) {
	t.Helper()
	if err := c.CallInto(ctxT(t, 15*time.Second), method, params, out); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

// TestPairInvokeFlow is the acceptance flow with two real protocol clients
// against the real daemon, then every invoke failure case.
func TestPairInvokeFlow(t *testing.T) {
	g := startGateway(t, t.TempDir(), map[string]any{"maxConcurrentInvokes": 2, "invokeTimeoutMs": 5000})
	op := operator(t, g)
	key, err := client.NewDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	nodeID := client.DeviceID(key)

	// 1. An unpaired node: NOT_PAIRED, then close 1008 "pairing required".
	_, err = dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	rid, ok := client.PairingRequired(err)
	if !ok || rid == "" {
		t.Fatalf("unpaired node: got %v, want NOT_PAIRED with details.requestId", err)
	}
	var de *client.DialError
	errors.As(err, &de)
	if de.Server.Message != "pairing required" || de.DetailCode() != nodeproto.DetailPairingRequired {
		t.Errorf("refusal = %q [%s], want \"pairing required\" [%s]", de.Server.Message, de.DetailCode(), nodeproto.DetailPairingRequired)
	}
	if de.CloseCode != protocol.ClosePolicyViolation || de.CloseReason != "pairing required" {
		t.Errorf("close = %d %q, want 1008 \"pairing required\"", de.CloseCode, de.CloseReason)
	}

	// 2. The operator sees node.pair.requested with the connect's details.
	var req nodeproto.PairingRequest
	raw := waitEvent(t, op, nodeproto.EventPairRequested, nil)
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	if req.RequestID != rid || req.NodeID != nodeID || req.DisplayName != "test node" || req.ModelIdentifier != "test-model-1" ||
		req.DeviceFamily != "server" || !slices.Equal(req.Commands, nodeCommands) || !slices.Equal(req.Caps, []string{"test"}) ||
		req.RemoteIP != "127.0.0.1" || req.PublicKey == "" || req.IsRepair || req.ExpiresAtMs <= req.TS {
		t.Errorf("node.pair.requested = %+v", req)
	}
	// A retry refreshes the same request (no new event, same id).
	_, err = dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	if again, _ := client.PairingRequired(err); again != rid {
		t.Errorf("second attempt got request %q, want the same %q", again, rid)
	}
	var list nodeproto.PairList
	callInto(t, op, nodeproto.MethodPairList, nil, &list)
	if len(list.Pending) != 1 || list.Pending[0].RequestID != rid || len(list.Paired) != 0 {
		t.Fatalf("node.pair.list = %+v, want the one pending request", list)
	}
	// Not paired yet: invoke and describe say NOT_PAIRED.
	wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo"}), protocol.ErrNotPaired, nodeproto.DetailNodeNotPaired)
	wantErr(t, callErr(t, op, nodeproto.MethodDescribe, map[string]any{"nodeId": nodeID}), protocol.ErrNotPaired, nodeproto.DetailNodeNotPaired)

	// 3. Approve: node.pair.resolved, and the node is paired.
	var appr struct {
		RequestID string               `json:"requestId"`
		Node      nodeproto.PairedNode `json:"node"`
	}
	callInto(t, op, nodeproto.MethodPairApprove, map[string]string{"requestId": rid}, &appr)
	if appr.RequestID != rid || appr.Node.NodeID != nodeID || appr.Node.ApprovedAtMs == 0 {
		t.Errorf("approve = %+v", appr)
	}
	var res nodeproto.Resolved
	json.Unmarshal(waitEvent(t, op, nodeproto.EventPairResolved, nil), &res)
	if res.RequestID != rid || res.NodeID != nodeID || res.Decision != nodeproto.DecisionApproved {
		t.Errorf("node.pair.resolved = %+v", res)
	}
	wantErr(t, callErr(t, op, nodeproto.MethodPairApprove, map[string]string{"requestId": rid}), protocol.ErrInvalidRequest, nodeproto.DetailRequestNotFound)

	// 4. The node reconnects and gets its credential in hello-ok.
	node, err := dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	if err != nil {
		t.Fatalf("paired node dial: %v", err)
	}
	cred := node.DeviceToken()
	if len(cred) < 40 {
		t.Fatalf("hello-ok auth.deviceToken = %q, want a credential", cred)
	}
	var ver struct {
		OK bool `json:"ok"`
	}
	callInto(t, op, nodeproto.MethodPairVerify, map[string]string{"nodeId": nodeID, "token": cred}, &ver)
	if !ver.OK {
		t.Error("node.pair.verify rejects the issued credential")
	}
	callInto(t, op, nodeproto.MethodPairVerify, map[string]string{"nodeId": nodeID, "token": cred + "x"}, &ver)
	if ver.OK {
		t.Error("node.pair.verify accepts a wrong credential")
	}
	// The store holds the credential only hashed.
	stateDB, _ := os.ReadFile(filepath.Join(g.StateDir, "state.db"))
	if len(stateDB) == 0 {
		t.Error("state.db is empty or missing")
	}
	if bytes.Contains(stateDB, []byte(cred)) {
		t.Error("state.db contains the plain credential")
	}

	// The node serves commands.
	release := make(chan struct{})
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- node.ServeNode(serveCtx, func(ctx context.Context, inv client.NodeInvoke) (any, error) {
			switch inv.Command {
			case "echo":
				return map[string]any{"command": inv.Command, "params": inv.Params, "nodeId": inv.NodeID}, nil
			case "fail":
				return nil, &client.NodeError{Code: "E_TEST", Message: "it failed on purpose"}
			case "slow":
				select {
				case <-release:
					return "done", nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			<-ctx.Done() // hang
			return nil, ctx.Err()
		}, nil)
	}()
	defer stopServe()

	// 5. node.list / node.describe show it paired and connected.
	var nl nodeproto.NodeList
	callInto(t, op, nodeproto.MethodList, nil, &nl)
	if len(nl.Nodes) != 1 || !nl.Nodes[0].Connected || !nl.Nodes[0].Paired || !slices.Equal(nl.Nodes[0].Commands, nodeCommands) ||
		nl.Nodes[0].ModelIdentifier != "test-model-1" || nl.Nodes[0].DeviceFamily != "server" || nl.Nodes[0].ConnectedAtMs == 0 {
		t.Fatalf("node.list = %+v", nl)
	}
	var info nodeproto.NodeInfo
	callInto(t, op, nodeproto.MethodDescribe, map[string]string{"nodeId": nodeID}, &info)
	if info.NodeID != nodeID || !info.Connected || info.Platform == "" || info.Version == "" || !slices.Equal(info.Caps, []string{"test"}) {
		t.Errorf("node.describe = %+v", info)
	}

	// 6. The operator invokes; the node answers; the operator gets it.
	var out struct {
		OK      bool   `json:"ok"`
		NodeID  string `json:"nodeId"`
		Command string `json:"command"`
		Payload struct {
			Command string         `json:"command"`
			Params  map[string]int `json:"params"`
			NodeID  string         `json:"nodeId"`
		} `json:"payload"`
	}
	callInto(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo", "params": map[string]int{"x": 42}}, &out)
	if !out.OK || out.NodeID != nodeID || out.Payload.Command != "echo" || out.Payload.Params["x"] != 42 || out.Payload.NodeID != nodeID {
		t.Errorf("node.invoke echo = %+v", out)
	}

	t.Run("failures", func(t *testing.T) {
		other := make([]byte, 32)
		rand.Read(other)
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": hex.EncodeToString(other), "command": "echo"}), protocol.ErrInvalidRequest, nodeproto.DetailNodeNotFound)
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "rm-rf"}), protocol.ErrInvalidRequest, nodeproto.DetailCommandNotAdvertised)
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID}), protocol.ErrInvalidRequest, "")
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo", "bogus": 1}), protocol.ErrInvalidRequest, "")
		e := callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "fail"})
		wantErr(t, e, protocol.ErrUnavailable, nodeproto.DetailInvokeFailed)
		if d, _ := e.Details.(map[string]any); d == nil || fmt.Sprint(d["nodeError"]) != "map[code:E_TEST message:it failed on purpose]" {
			t.Errorf("node failure details = %v", e.Details)
		}
		start := time.Now()
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "hang", "timeoutMs": 300}), protocol.ErrUnavailable, nodeproto.DetailInvokeTimeout)
		if el := time.Since(start); el < 300*time.Millisecond || el > 5*time.Second {
			t.Errorf("timeout took %v, want about 300ms", el)
		}
		// An operator cannot answer invokes.
		wantErr(t, callErr(t, op, nodeproto.MethodInvokeResult, map[string]any{"id": "x", "nodeId": nodeID, "ok": true}), protocol.ErrInvalidRequest, nodeproto.DetailNodeRoleRequired)
		// A read-only operator cannot invoke.
		ro := operator(t, g, protocol.ScopeRead)
		wantErr(t, callErr(t, ro, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo"}), protocol.ErrForbidden, protocol.DetailMissingScope)
		wantErr(t, callErr(t, ro, nodeproto.MethodPairList, nil), protocol.ErrForbidden, protocol.DetailMissingScope)

		// Per-node concurrency: two slow calls run, the third is refused.
		var wg sync.WaitGroup
		results := make(chan error, 2)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := op.Call(context.Background(), nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "slow"})
				results <- err
			}()
		}
		testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "two invokes in flight", func() (bool, string) {
			var i nodeproto.NodeInfo
			callInto(t, op, nodeproto.MethodDescribe, map[string]string{"nodeId": nodeID}, &i)
			return i.Inflight == 2, fmt.Sprintf("%d in flight", i.Inflight)
		})
		wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo"}), protocol.ErrUnavailable, nodeproto.DetailNodeBusy)
		close(release)
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				t.Errorf("slow invoke: %v", err)
			}
		}
	})

	// 7. The node disconnects mid-call.
	mid := make(chan error, 1)
	go func() {
		_, err := op.Call(context.Background(), nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "hang", "timeoutMs": 20000})
		mid <- err
	}()
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "the hang invoke in flight", func() (bool, string) {
		var i nodeproto.NodeInfo
		callInto(t, op, nodeproto.MethodDescribe, map[string]string{"nodeId": nodeID}, &i)
		return i.Inflight == 1, fmt.Sprintf("%d in flight", i.Inflight)
	})
	node.Close()
	stopServe()
	<-served
	var ce *client.CallError
	if err := <-mid; !errors.As(err, &ce) || ce.Err.DetailCode() != nodeproto.DetailNodeDisconnected {
		t.Errorf("invoke during disconnect: got %v, want %s", err, nodeproto.DetailNodeDisconnected)
	}
	// Now offline.
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "node offline", func() (bool, string) {
		var i nodeproto.NodeInfo
		callInto(t, op, nodeproto.MethodDescribe, map[string]string{"nodeId": nodeID}, &i)
		return !i.Connected && i.LastSeenMs > 0, fmt.Sprintf("connected %v, lastSeenMs %d", i.Connected, i.LastSeenMs)
	})
	wantErr(t, callErr(t, op, nodeproto.MethodInvoke, map[string]any{"nodeId": nodeID, "command": "echo"}), protocol.ErrUnavailable, nodeproto.DetailNodeOffline)

	// 8. The credential alone (no shared token) admits the node, without a
	// new credential.
	n2, err := dialNode(ctxT(t, 10*time.Second), g, key, "", cred)
	if err != nil {
		t.Fatalf("dial with the device credential only: %v", err)
	}
	if n2.DeviceToken() != "" {
		t.Errorf("a node presenting its credential got a new one")
	}
	n2.Close()
	// ... also sent as auth.token in place of the shared secret.
	n3, err := dialNode(ctxT(t, 10*time.Second), g, key, cred, "")
	if err != nil {
		t.Fatalf("dial with the credential as auth.token: %v", err)
	}
	n3.Close()
	// A wrong credential, or another device with this credential: refused.
	if _, err := dialNode(ctxT(t, 10*time.Second), g, key, "", cred+"x"); !errors.As(err, &de) || !de.IsAuth() {
		t.Errorf("wrong credential: got %v, want an auth failure", err)
	}
	stranger, _ := client.NewDeviceKey()
	if _, err := dialNode(ctxT(t, 10*time.Second), g, stranger, "", cred); !errors.As(err, &de) || !de.IsAuth() {
		t.Errorf("credential on another device: got %v, want an auth failure", err)
	}
	// An operator cannot use a node credential.
	if _, err := client.Dial(ctxT(t, 10*time.Second), client.Options{URL: g.URL, DeviceToken: cred, Device: key}); !errors.As(err, &de) || !de.IsAuth() {
		t.Errorf("operator with a node credential: got %v, want an auth failure", err)
	}

	// 9. Rotation: a connect with the shared token only gets a new
	// credential and the old one stops working.
	n4, err := dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	cred2 := n4.DeviceToken()
	if cred2 == "" || cred2 == cred {
		t.Errorf("rotation: new credential %q (old %q)", cred2, cred)
	}
	if _, err := dialNode(ctxT(t, 10*time.Second), g, key, "", cred); err == nil {
		t.Error("the rotated-out credential still works")
	}

	// 10. Unpairing closes the node's connection and voids its credential.
	callInto(t, op, nodeproto.MethodPairRemove, map[string]string{"nodeId": nodeID}, nil)
	select {
	case <-n4.Done():
		if code, reason := n4.CloseStatus(); code != protocol.ClosePolicyViolation || reason != "node unpaired" {
			t.Errorf("unpaired node closed %d %q", code, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unpaired node not disconnected")
	}
	if _, err := dialNode(ctxT(t, 10*time.Second), g, key, "", cred2); err == nil {
		t.Error("an unpaired node's credential still works")
	}
	callInto(t, op, nodeproto.MethodList, nil, &nl)
	if len(nl.Nodes) != 0 {
		t.Errorf("node.list after unpairing = %+v", nl.Nodes)
	}
}

// TestPairingLifecycle covers reject, expiry, the pending limit, refusal of
// a node without a device identity and operator-made requests.
func TestPairingLifecycle(t *testing.T) {
	g := startGateway(t, t.TempDir(), map[string]any{"pendingTtlMs": 1000, "maxPending": 2})
	op := operator(t, g)

	// No device identity: refused, no request.
	_, err := client.Dial(ctxT(t, 10*time.Second), client.Options{URL: g.URL, Token: g.Token, Role: protocol.RoleNode, Mode: "node", ClientID: "node-host"})
	var de *client.DialError
	if !errors.As(err, &de) || de.Server == nil || de.Server.Code != protocol.ErrNotPaired || de.DetailCode() != nodeproto.DetailDeviceRequired {
		t.Errorf("node without device: got %v, want NOT_PAIRED %s", err, nodeproto.DetailDeviceRequired)
	}

	// Reject.
	key, _ := client.NewDeviceKey()
	_, err = dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	rid, _ := client.PairingRequired(err)
	waitEvent(t, op, nodeproto.EventPairRequested, nil)
	var rej map[string]string
	callInto(t, op, nodeproto.MethodPairReject, map[string]string{"requestId": rid}, &rej)
	if rej["nodeId"] != client.DeviceID(key) {
		t.Errorf("reject = %v", rej)
	}
	var res nodeproto.Resolved
	json.Unmarshal(waitEvent(t, op, nodeproto.EventPairResolved, nil), &res)
	if res.RequestID != rid || res.Decision != nodeproto.DecisionRejected {
		t.Errorf("resolved = %+v, want rejected %s", res, rid)
	}
	wantErr(t, callErr(t, op, nodeproto.MethodPairReject, map[string]string{"requestId": rid}), protocol.ErrInvalidRequest, nodeproto.DetailRequestNotFound)
	wantErr(t, callErr(t, op, nodeproto.MethodPairApprove, map[string]string{}), protocol.ErrInvalidRequest, "")

	// Asking again makes a new request, which expires.
	_, err = dialNode(ctxT(t, 10*time.Second), g, key, g.Token, "")
	rid2, _ := client.PairingRequired(err)
	if rid2 == "" || rid2 == rid {
		t.Fatalf("second request id %q (first %q)", rid2, rid)
	}
	// The pending limit (2): one more device fits, a third does not.
	key2, _ := client.NewDeviceKey()
	_, err = dialNode(ctxT(t, 10*time.Second), g, key2, g.Token, "")
	if _, ok := client.PairingRequired(err); !ok {
		t.Fatalf("second device: %v", err)
	}
	key3, _ := client.NewDeviceKey()
	_, err = dialNode(ctxT(t, 10*time.Second), g, key3, g.Token, "")
	if !errors.As(err, &de) || de.Server == nil || de.Server.Code != protocol.ErrUnavailable || de.DetailCode() != nodeproto.DetailTooManyPending {
		t.Errorf("third device over maxPending: got %v, want UNAVAILABLE %s", err, nodeproto.DetailTooManyPending)
	}
	json.Unmarshal(waitEvent(t, op, nodeproto.EventPairResolved, func(r json.RawMessage) bool {
		var x nodeproto.Resolved
		json.Unmarshal(r, &x)
		return x.RequestID == rid2
	}), &res)
	if res.Decision != nodeproto.DecisionExpired {
		t.Errorf("resolved = %+v, want expired", res)
	}
	wantErr(t, callErr(t, op, nodeproto.MethodPairApprove, map[string]string{"requestId": rid2}), protocol.ErrInvalidRequest, nodeproto.DetailRequestNotFound)
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "every request expired", func() (bool, string) {
		var l nodeproto.PairList
		callInto(t, op, nodeproto.MethodPairList, nil, &l)
		return len(l.Pending) == 0, fmt.Sprintf("%d pending", len(l.Pending))
	})

	// An operator registers a node by id ahead of its first connect.
	idKey, _ := client.NewDeviceKey()
	var pr struct {
		Status  string                   `json:"status"`
		Created bool                     `json:"created"`
		Request nodeproto.PairingRequest `json:"request"`
	}
	callInto(t, op, nodeproto.MethodPairRequest, map[string]any{"nodeId": client.DeviceID(idKey), "displayName": "pre", "commands": []string{"echo"}}, &pr)
	if pr.Status != "pending" || !pr.Created || pr.Request.DisplayName != "pre" {
		t.Errorf("node.pair.request = %+v", pr)
	}
	callInto(t, op, nodeproto.MethodPairRequest, map[string]any{"nodeId": client.DeviceID(idKey)}, &pr)
	if pr.Created || pr.Request.DisplayName != "pre" || !slices.Equal(pr.Request.Commands, []string{"echo"}) {
		t.Errorf("repeated node.pair.request = %+v, want the same request, merged", pr)
	}
	wantErr(t, callErr(t, op, nodeproto.MethodPairRequest, map[string]any{"nodeId": "laptop"}), protocol.ErrInvalidRequest, "")
	callInto(t, op, nodeproto.MethodPairApprove, map[string]string{"requestId": pr.Request.RequestID}, nil)
	n, err := dialNode(ctxT(t, 10*time.Second), g, idKey, g.Token, "")
	if err != nil {
		t.Fatalf("pre-approved node: %v", err)
	}
	defer n.Close()
	if n.DeviceToken() == "" {
		t.Error("pre-approved node got no credential")
	}
	// A paired node may ask for a repair request for itself.
	var own struct {
		Request nodeproto.PairingRequest `json:"request"`
	}
	if err := n.CallInto(ctxT(t, 10*time.Second), nodeproto.MethodPairRequest, map[string]any{"commands": []string{"echo", "new"}}, &own); err != nil {
		t.Fatalf("node's own pair request: %v", err)
	}
	if !own.Request.IsRepair || own.Request.NodeID != client.DeviceID(idKey) {
		t.Errorf("repair request = %+v", own.Request)
	}
	if _, err := n.Call(ctxT(t, 10*time.Second), nodeproto.MethodPairRequest, map[string]any{"nodeId": client.DeviceID(key)}); err == nil {
		t.Error("a node could request pairing for another node")
	}
	// A node holds no operator scopes.
	if _, err := n.Call(ctxT(t, 10*time.Second), nodeproto.MethodPairList, nil); err == nil {
		t.Error("a node could list pairing requests")
	}
}

// TestApprovalsSurviveKill approves nodes in a loop, kills gatewayd with
// SIGKILL in the middle, restarts it on the same state directory and
// checks that every acknowledged approval is still there.
func TestApprovalsSurviveKill(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, map[string]any{"maxPending": 5000, "pendingTtlMs": 3600000})
	op := operator(t, g)
	const n = 400
	rids := make([]string, 0, n)
	ridNode := map[string]string{}
	for range n {
		b := make([]byte, 32)
		rand.Read(b)
		var pr struct {
			Request nodeproto.PairingRequest `json:"request"`
		}
		callInto(t, op, nodeproto.MethodPairRequest, map[string]any{"nodeId": hex.EncodeToString(b)}, &pr)
		rids = append(rids, pr.Request.RequestID)
		ridNode[pr.Request.RequestID] = pr.Request.NodeID
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	work := make(chan string, n)
	for _, r := range rids {
		work <- r
	}
	close(work)
	var wg sync.WaitGroup
	for range 4 {
		c := operator(t, g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.Call(ctx, nodeproto.MethodPairApprove, map[string]string{"requestId": r})
				cancel()
				if err != nil {
					return // the gateway is gone
				}
				mu.Lock()
				acked[ridNode[r]] = true
				mu.Unlock()
			}
		}()
	}
	testutil.WaitFor(t, 10*time.Second, 10*time.Millisecond, "50 acknowledged approvals", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50, fmt.Sprintf("%d acknowledged", len(acked))
	})
	if err := g.Cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	<-g.Exited()
	wg.Wait()
	t.Logf("%d of %d approvals acknowledged before SIGKILL", len(acked), n)
	if len(acked) == n {
		t.Log("every approval finished before the kill; the test still checks they survived")
	}

	g2 := startGateway(t, dir, nil)
	op2 := operator(t, g2)
	var list nodeproto.PairList
	callInto(t, op2, nodeproto.MethodPairList, nil, &list)
	paired := map[string]bool{}
	for _, p := range list.Paired {
		paired[p.NodeID] = true
	}
	for id := range acked {
		if !paired[id] {
			t.Errorf("approved node %s lost after SIGKILL", id)
		}
	}
	if len(list.Paired)+len(list.Pending) != n {
		t.Errorf("after restart: %d paired + %d pending, want %d in all (an approval is all or nothing)", len(list.Paired), len(list.Pending), n)
	}
}
