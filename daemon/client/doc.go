// Package client is a well-behaved Go client of the Gateway WebSocket
// protocol, version 4: it is what gatewayctl, the bench load generator and
// the integration tests use to talk to gatewayd (or to any gateway of the
// OpenClaw family).
//
// Dial opens the WebSocket on path "/", waits for the server's
// connect.challenge before sending anything, sends the connect request
// (client id "cli", mode "cli" and role "operator" unless told otherwise,
// with a v2-signed device proof when a key is given) and returns once the
// server answered hello-ok. After hello the read limit follows the
// announced policy.maxPayload, and a connection that hears nothing (not even
// a tick) for twice the announced tick interval is closed as dead.
//
// Calls are multiplexed over one connection: each request gets an id of the
// form "<n>:<prefix>" (a counter and a per-connection random prefix) and a
// pending entry keyed by that id. Events go to a bounded channel; when it is
// full, or when the server's per-connection seq skips a number, the client
// counts a gap (Gaps) and delivers a synthetic Event{Name: "gap"} so the
// caller refreshes health and system-presence (events are never replayed).
//
// Failures to connect are *DialError values whose messages are meant for
// operators: they say what failed, at which stage, and what to do about it.
// The package does no logging of its own beyond debug lines on the given
// *slog.Logger (discarded when nil) and needs nothing from the OS but a TCP
// connection.
package client
