// Package nodes is the gateway's nodes-and-pairing feature: remote devices
// that connect with role "node", advertise caps and commands, and answer
// commands the operators send them.
//
// # Pairing
//
// A node connects with the shared secret (or its own credential, below)
// and a signed device identity (protocol.SignDevice). The feature's
// Admitter lets it in only when its device id is paired. An unpaired node
// gets a pending pairing request (created, or refreshed when one exists for
// the same device: fields updated, expiry pushed back), operators holding
// operator.pairing get the event node.pair.requested (on creation only, so
// a node retrying in a loop does not flood them), and the connect is
// refused with NOT_PAIRED "pairing required" (details {code:
// "PAIRING_REQUIRED", requestId, nodeId}); the core then closes 1008.
// node.pair.approve / node.pair.reject resolve a request (event
// node.pair.resolved, decision "approved", "rejected" or "expired": pending
// requests expire after nodes.pendingTtlMs). The refusal also carries
// OpenClaw's pairing details (recommendedNextStep "wait_then_retry"), so
// OpenClaw's node host keeps retrying and comes up once approved.
//
// Approving takes the scopes OpenClaw asks for the node's commands
// (approvalScopes). OpenClaw's device.pair.* methods are a second view of
// the same store (devicepair.go), with their own events.
//
// # Credentials
//
// A paired node's credential is 32 random bytes (base64url); only its
// SHA-256 is stored. It is minted and handed over in hello-ok's
// auth.deviceToken whenever a paired node connects without presenting a
// valid credential (its first connect after approval, or after it lost
// it), which rotates it: the old one stops working. A node that presents
// its credential (auth.deviceToken, or auth.token in place of the shared
// secret) is accepted by the Authenticator and gets no new one.
// node.pair.verify checks a credential; node.pair.remove unpairs a node
// and disconnects it.
//
// # Invoking
//
// node.invoke {nodeId, command, params?, timeoutMs?} sends the event
// node.invoke.request {id, nodeId, command, paramsJSON?, timeoutMs} to the
// node's live connection and waits for the node's method call
// node.invoke.result {id, nodeId, ok, payload? | payloadJSON?, error?}.
// Unknown, unpaired, offline and busy nodes, commands the node did not
// advertise, timeouts, a node that disconnects mid-call and a node that
// reports failure each end the call with a distinct error (details.code).
//
// # Node-role methods
//
// A paired node host publishes on its own connection: node.event (host
// stats are kept for node.describe), node.invoke.progress, its plugin
// tools, skills and runner inventory, and asks for pending work and skill
// binaries (nodemethods.go). Only role node may call them; others get
// OpenClaw's "unauthorized role" error. A node.invoke that times out or
// loses its caller sends the node node.invoke.cancel.
//
// # Durability
//
// Pairing requests and paired nodes live in the state store (bbolt): an
// approval is acknowledged only after its transaction is committed, so a
// gateway killed mid-write keeps every acknowledged approval. The package
// needs nothing from the operating system beyond that store.
//
// # Wire types
//
// The method and event names, detail codes, params and payloads are in
// daemon/protocol/nodeproto, so clients use them without linking this
// package.
package nodes
