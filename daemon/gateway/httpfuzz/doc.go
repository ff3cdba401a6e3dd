// Package httpfuzz holds the fuzz target for the gateway's HTTP routes:
// arbitrary request bytes go through the core's guard and every feature's
// route (tools, hooks, the OpenAI API, the control UI) as gatewayd wires
// them. It has no code of its own; see fuzz_test.go.
package httpfuzz
