package openclawops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// scriptDir is daemon/protocol/openclaw, where the Node scripts that read
// OpenClaw's dist live.
func scriptDir(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "protocol", "openclaw")
}

// runScript runs one of those scripts with Node 24 and decodes its JSON.
func runScript(t *testing.T, tl tools, script string, out any, args ...string) {
	t.Helper()
	cmd := tl.nodeCmd(append([]string{filepath.Join(scriptDir(t), script), tl.Dist}, args...)...)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("node %s printed %q: %v", script, b, err)
	}
}

// ourParams are the params types of the methods gatewayd shares with
// OpenClaw whose params are defined here: by def name in the committed
// protocol schema, or by Go value for a feature package's own type.
// send (the channels', with gatewayd's four fields) and the node.*
// methods (the node-pairing work's) are left to their owners.
var ourParams = map[string]any{
	"agent":                         "AgentParams",
	"agent.wait":                    "AgentWaitParams",
	"agents.list":                   "AgentsListParams",
	"models.list":                   "ModelsListParams",
	"chat.history":                  "ChatHistoryParams",
	"chat.startup":                  "ChatStartupParams",
	"chat.send":                     "ChatSendParams",
	"chat.abort":                    "ChatAbortParams",
	"sessions.list":                 "SessionsListParams",
	"sessions.messages.subscribe":   "SessionsMessagesSubscribeParams",
	"sessions.messages.unsubscribe": "SessionsMessagesUnsubscribeParams",
	"message.action":                "MessageActionParams",
	"config.get":                    "ConfigGetParams",
	"logs.tail":                     "LogsTailParams",
	"channels.status":               channelproto.StatusParams{},
}

// jsonSchema is the part of a JSON Schema the comparison reads.
type jsonSchema struct {
	Type                 any                    `json:"type"`
	Properties           map[string]*jsonSchema `json:"properties"`
	Required             []string               `json:"required"`
	AdditionalProperties any                    `json:"additionalProperties"`
	Items                *jsonSchema            `json:"items"`
	AnyOf                []*jsonSchema          `json:"anyOf"`
	Const                any                    `json:"const"`
}

// UnmarshalJSON accepts the boolean schemas (true: anything).
func (s *jsonSchema) UnmarshalJSON(b []byte) error {
	if string(b) == "true" || string(b) == "false" {
		*s = jsonSchema{}
		return nil
	}
	type plain jsonSchema
	return json.Unmarshal(b, (*plain)(s))
}

// kind is a property's type as compared: a scalar type, "array<string>",
// or "any" for what gatewayd keeps as raw JSON (objects, unions, arrays of
// objects).
func (s *jsonSchema) kind() string {
	if s == nil || len(s.AnyOf) > 0 {
		return "any"
	}
	switch t := s.Type.(type) {
	case string:
		if t == "array" {
			if s.Items != nil && s.Items.Type == "string" && len(s.Items.AnyOf) == 0 {
				return "array<string>"
			}
			return "any"
		}
		if t == "object" {
			return "any"
		}
		return t
	}
	return "any"
}

func (s *jsonSchema) closed() bool { return s.AdditionalProperties == false }

// flatten merges an anyOf of objects (OpenClaw's chat.startup) into one:
// the union of the properties, the required fields every variant has.
func (s *jsonSchema) flatten() *jsonSchema {
	if len(s.AnyOf) == 0 {
		return s
	}
	out := &jsonSchema{Properties: map[string]*jsonSchema{}, AdditionalProperties: false}
	for i, v := range s.AnyOf {
		for k, p := range v.Properties {
			out.Properties[k] = p
		}
		if i == 0 {
			out.Required = slices.Clone(v.Required)
		} else {
			out.Required = slices.DeleteFunc(out.Required, func(r string) bool { return !slices.Contains(v.Required, r) })
		}
		if !v.closed() {
			out.AdditionalProperties = nil
		}
	}
	return out
}

// compareParams lists how ours differs from OpenClaw's.
func compareParams(theirs, ours *jsonSchema) []string {
	theirs = theirs.flatten()
	var diffs []string
	for _, k := range sortedKeys(theirs.Properties) {
		op, ok := ours.Properties[k]
		if !ok {
			if ours.closed() {
				diffs = append(diffs, fmt.Sprintf("field %q: OpenClaw's clients may send it, gatewayd rejects it", k))
			}
			continue
		}
		tk, ok2 := theirs.Properties[k].kind(), op.kind()
		if tk != ok2 && !(ok2 == "any" && tk == "any") {
			diffs = append(diffs, fmt.Sprintf("field %q: OpenClaw's type %s, gatewayd's %s", k, tk, ok2))
		}
	}
	for _, k := range sortedKeys(ours.Properties) {
		if _, ok := theirs.Properties[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("field %q: gatewayd's own, not in OpenClaw's schema", k))
		}
	}
	tr, or := slices.Sorted(slices.Values(theirs.Required)), slices.Sorted(slices.Values(ours.Required))
	if !slices.Equal(tr, or) {
		diffs = append(diffs, fmt.Sprintf("required: OpenClaw %v, gatewayd %v", tr, or))
	}
	if theirs.closed() != ours.closed() {
		diffs = append(diffs, fmt.Sprintf("additionalProperties: OpenClaw closed=%v, gatewayd closed=%v", theirs.closed(), ours.closed()))
	}
	return diffs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOpenClawParamsSchemas compares, for every method gatewayd shares
// with OpenClaw (ourParams), OpenClaw's params schema (read from its own
// validators in the installed dist) with gatewayd's (the committed
// protocol schema, or the reflected type): the same fields, each of the
// same type, the same required fields, closed where OpenClaw's is closed
// and open where it is open. A new OpenClaw release that changes one fails
// here.
func TestOpenClawParamsSchemas(t *testing.T) {
	tl := openclaw(t)
	methods := sortedKeys(ourParams)
	var theirs map[string]*jsonSchema
	runScript(t, tl, "schemas.mjs", &theirs, methods...)
	var committed struct {
		Defs map[string]*jsonSchema `json:"$defs"`
	}
	if err := json.Unmarshal(protocol.CommittedSchema(), &committed); err != nil {
		t.Fatal(err)
	}
	for _, m := range methods {
		t.Run(m, func(t *testing.T) {
			th := theirs[m]
			if th == nil {
				t.Fatalf("OpenClaw has no params schema for %s (its validator is gone: the method changed or was removed)", m)
			}
			var ours *jsonSchema
			switch v := ourParams[m].(type) {
			case string:
				ours = committed.Defs[v]
				if ours == nil {
					t.Fatalf("the committed protocol schema has no %s (run make protocol)", v)
				}
			default:
				b, err := protocol.ReflectParams(v)
				if err != nil {
					t.Fatal(err)
				}
				ours = new(jsonSchema)
				if err := json.Unmarshal(b, ours); err != nil {
					t.Fatal(err)
				}
			}
			if diffs := compareParams(th, ours); len(diffs) > 0 {
				t.Errorf("%s params differ from OpenClaw's:\n  %s", m, strings.Join(diffs, "\n  "))
			}
		})
	}
}

// ourResults are result types of shared methods whose OpenClaw result
// schema the protocol package exports, by that schema's name (or that
// schemas.mjs finds unexported: ModelsListResultSchema).
var ourResults = map[string]struct {
	schema string
	value  any
}{
	"agents.list": {"AgentsListResultSchema", agent.AgentsListPayload{}},
	"logs.tail":   {"LogsTailResultSchema", logs.TailResult{}},
	"models.list": {"ModelsListResultSchema", agent.ModelsListPayload{}},
}

// compareResult lists how our result type differs from OpenClaw's result
// schema: a field OpenClaw's closed schema does not have, a shared field
// of another type, a field OpenClaw requires that ours may omit; arrays
// of objects are compared item by item.
func compareResult(path string, theirs, ours *jsonSchema) []string {
	var diffs []string
	for _, k := range sortedKeys(ours.Properties) {
		tp, ok := theirs.Properties[k]
		if !ok {
			if theirs.closed() {
				diffs = append(diffs, fmt.Sprintf("%s%s: gatewayd's own field, OpenClaw's result has none", path, k))
			}
			continue
		}
		op := ours.Properties[k]
		if tk, ok := tp.kind(), op.kind(); tk != "any" && ok != "any" && tk != ok {
			diffs = append(diffs, fmt.Sprintf("%s%s: OpenClaw's type %s, gatewayd's %s", path, k, tk, ok))
		}
		if tp.Items != nil && op.Items != nil && len(tp.Items.Properties) > 0 {
			diffs = append(diffs, compareResult(path+k+"[].", tp.Items, op.Items)...)
		}
		if len(tp.Properties) > 0 && len(op.Properties) > 0 {
			diffs = append(diffs, compareResult(path+k+".", tp, op)...)
		}
	}
	for _, r := range theirs.Required {
		if !slices.Contains(ours.Required, r) {
			diffs = append(diffs, fmt.Sprintf("%s%s: OpenClaw requires it, gatewayd may omit it", path, r))
		}
	}
	return diffs
}

// TestOpenClawResultSchemas compares the results OpenClaw's clients read
// (ourResults) with OpenClaw's result schemas.
func TestOpenClawResultSchemas(t *testing.T) {
	tl := openclaw(t)
	var names []string
	for _, r := range ourResults {
		names = append(names, r.schema)
	}
	var theirs map[string]*jsonSchema
	runScript(t, tl, "schemas.mjs", &theirs, append([]string{"--exports"}, names...)...)
	for _, m := range sortedKeys(ourResults) {
		t.Run(m, func(t *testing.T) {
			r := ourResults[m]
			th := theirs[r.schema]
			if th == nil {
				t.Fatalf("OpenClaw's protocol no longer exports %s", r.schema)
			}
			b, err := protocol.ReflectParams(r.value)
			if err != nil {
				t.Fatal(err)
			}
			ours := new(jsonSchema)
			if err := json.Unmarshal(b, ours); err != nil {
				t.Fatal(err)
			}
			if diffs := compareResult("", th, ours); len(diffs) > 0 {
				t.Errorf("%s result differs from OpenClaw's:\n  %s", m, strings.Join(diffs, "\n  "))
			}
		})
	}
}

// TestOpenClawResultPayloads: real answers of gatewayd (two agents, so
// the default agent's entry and another's) validate against OpenClaw's
// own result schemas, compiled as JSON Schema: what OpenClaw's clients
// get is what OpenClaw's gateway could have sent.
func TestOpenClawResultPayloads(t *testing.T) {
	tl := openclaw(t)
	calls := []struct {
		method, schema string
		params         map[string]any
	}{
		{"models.list", "ModelsListResultSchema", map[string]any{"view": "default", "includeDetails": true}},
		{"agents.list", "AgentsListResultSchema", map[string]any{}},
	}
	var names []string
	for _, c := range calls {
		names = append(names, c.schema)
	}
	var theirs map[string]json.RawMessage
	runScript(t, tl, "schemas.mjs", &theirs, append([]string{"--exports"}, names...)...)
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: `{"agents":{"list":{"ops":{}}}}`})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, cl := range calls {
		t.Run(cl.method, func(t *testing.T) {
			raw := theirs[cl.schema]
			if len(raw) == 0 || string(raw) == "null" {
				t.Fatalf("OpenClaw has no %s any more (schemas.mjs found none)", cl.schema)
			}
			payload, err := c.Call(ctx, cl.method, cl.params)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateJSON(raw, payload); err != nil {
				t.Errorf("%s answer %s does not validate against OpenClaw's %s: %v", cl.method, payload, cl.schema, err)
			}
		})
	}
}

// validateJSON validates doc against the JSON Schema schema.
func validateJSON(schema, doc []byte) error {
	s, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return err
	}
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource("openclaw-result.json", s); err != nil {
		return err
	}
	sch, err := comp.Compile("openclaw-result.json")
	if err != nil {
		return err
	}
	return sch.Validate(d)
}

// TestCompareParamsCatchesDrift: the comparison itself finds each kind of
// difference.
func TestCompareParamsCatchesDrift(t *testing.T) {
	parse := func(s string) *jsonSchema {
		var v jsonSchema
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return &v
	}
	theirs := parse(`{"type":"object","required":["a"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{"type":"object"}},"additionalProperties":false}`)
	for _, tc := range []struct{ ours, want string }{
		{`{"required":["a"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{}},"additionalProperties":false}`, ""},
		{`{"required":["a"],"properties":{"a":{"type":"string"},"c":{}},"additionalProperties":false}`, `field "b": OpenClaw's clients may send it`},
		{`{"required":["a"],"properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{}},"additionalProperties":false}`, `OpenClaw's type integer, gatewayd's string`},
		{`{"required":["a","b"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{}},"additionalProperties":false}`, `required:`},
		{`{"required":["a"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{}}}`, `additionalProperties`},
		{`{"required":["a"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{},"d":{}},"additionalProperties":false}`, `"d": gatewayd's own`},
	} {
		got := strings.Join(compareParams(theirs, parse(tc.ours)), "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("ours %s: diffs %q, want %q", tc.ours, got, tc.want)
		}
	}
}

// TestOpenClawMethodScopes: for every method the real gatewayd offers that
// OpenClaw's gateway classifies as an operator method, gatewayd requires
// the scope OpenClaw's own method-scopes table requires. A read-only
// operator calls each: where OpenClaw needs operator.read it must not be
// refused for a scope; elsewhere it must be refused naming OpenClaw's
// scope. And an unknown method is unknown, for any scopes, not forbidden.
func TestOpenClawMethodScopes(t *testing.T) {
	tl := openclaw(t)
	g := gatewaydtest.StartT(t, gatewaydtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	read, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, ClientID: "gateway-client", Mode: "backend", Scopes: []string{protocol.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	methods := read.Hello().Features.Methods
	var theirs map[string]struct {
		Scopes     []string `json:"scopes"`
		Node       bool     `json:"node"`
		Classified bool     `json:"classified"`
	}
	runScript(t, tl, "scopes.mjs", &theirs, methods...)
	checked := 0
	for _, m := range methods {
		oc := theirs[m]
		if !oc.Classified || oc.Node || len(oc.Scopes) != 1 {
			t.Logf("%s: not an operator method of OpenClaw's (classified=%v node=%v scopes=%v); gatewayd's own policy", m, oc.Classified, oc.Node, oc.Scopes)
			continue
		}
		want := oc.Scopes[0]
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := read.Call(cctx, m, map[string]any{})
		ccancel()
		missing := missingScope(err)
		switch {
		case want == protocol.ScopeRead && missing != "":
			t.Errorf("%s: OpenClaw requires operator.read, gatewayd refuses a read-only operator: %v", m, err)
		case want != protocol.ScopeRead && missing != want:
			t.Errorf("%s: OpenClaw requires %s, gatewayd answers a read-only operator with %v", m, want, err)
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("compared only %d methods with OpenClaw's table; expected the core, agent, chat and channel methods", checked)
	}

	for _, scopes := range [][]string{{protocol.ScopeRead}, {protocol.ScopeAdmin}} {
		c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Call(ctx, "no.such.method", map[string]any{})
		c.Close()
		var pe *protocol.Error
		if !asProtocolError(err, &pe) || pe.Code != protocol.ErrInvalidRequest || pe.Message != "unknown method: no.such.method" ||
			pe.DetailCode() != protocol.DetailUnknownMethod || !strings.Contains(fmt.Sprint(pe.Details), "not implemented by this gateway") {
			t.Errorf("unknown method with scopes %v: %v, want INVALID_REQUEST unknown method (not implemented by this gateway)", scopes, err)
		}
	}
}

func asProtocolError(err error, out **protocol.Error) bool {
	var ce *client.CallError
	if errors.As(err, &ce) && ce.Err != nil {
		*out = ce.Err
		return true
	}
	return errors.As(err, out)
}

// missingScope is the scope a FORBIDDEN MISSING_SCOPE error names, or "".
func missingScope(err error) string {
	var pe *protocol.Error
	if !asProtocolError(err, &pe) || pe.DetailCode() != protocol.DetailMissingScope {
		return ""
	}
	if d, ok := pe.Details.(map[string]any); ok {
		s, _ := d["missingScope"].(string)
		return s
	}
	return ""
}
