package protocol

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	invschema "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// SchemaFile is the committed schema's path, relative to the repository root.
const SchemaFile = "daemon/protocol/schema/protocol.schema.json"

const schemaID = "https://gatewayd.invalid/protocol/v4/protocol.schema.json"

//go:embed schema/protocol.schema.json
var committedSchema []byte

// CommittedSchema returns the schema compiled into the binary.
func CommittedSchema() []byte { return committedSchema }

// document gathers every protocol type so one reflection yields one schema
// document with a $defs entry per type.
type document struct {
	Request     RequestFrame      `json:"request"`
	Response    ResponseFrame     `json:"response"`
	Event       EventFrame        `json:"event"`
	Connect     ConnectParams     `json:"connect"`
	HelloOK     HelloOK           `json:"helloOk"`
	Challenge   ChallengePayload  `json:"challenge"`
	Presence    PresenceEvent     `json:"presence"`
	Shutdown    ShutdownEvent     `json:"shutdown"`
	Tick        TickEvent         `json:"tick"`
	SystemEvent SystemEventParams `json:"systemEvent"`
	LogsTail    LogsTailParams    `json:"logsTail"`
	Empty       EmptyParams       `json:"empty"`

	Agent                       AgentParams                       `json:"agent"`
	AgentWait                   AgentWaitParams                   `json:"agentWait"`
	ChatHistory                 ChatHistoryParams                 `json:"chatHistory"`
	ChatSend                    ChatSendParams                    `json:"chatSend"`
	ChatAbort                   ChatAbortParams                   `json:"chatAbort"`
	ChatStartup                 ChatStartupParams                 `json:"chatStartup"`
	SessionsList                SessionsListParams                `json:"sessionsList"`
	SessionsMessagesSubscribe   SessionsMessagesSubscribeParams   `json:"sessionsMessagesSubscribe"`
	SessionsMessagesUnsubscribe SessionsMessagesUnsubscribeParams `json:"sessionsMessagesUnsubscribe"`
	AgentsList                  AgentsListParams                  `json:"agentsList"`
	ModelsList                  ModelsListParams                  `json:"modelsList"`
	MessageAction               MessageActionParams               `json:"messageAction"`
	ConfigGet                   ConfigGetParams                   `json:"configGet"`
}

// GenerateSchema reflects the Go protocol types into a JSON Schema
// (draft 2020-12) document, formatted deterministically.
func GenerateSchema() ([]byte, error) {
	r := &invschema.Reflector{
		BaseSchemaID: schemaID,
		Anonymous:    true,
		Mapper: func(t reflect.Type) *invschema.Schema {
			if t == reflect.TypeOf(json.RawMessage{}) {
				return &invschema.Schema{} // any JSON value
			}
			return nil
		},
	}
	s := r.Reflect(&document{})
	s.ID = schemaID
	s.Title = "Gateway WebSocket protocol v4"
	s.Description = "Generated from the Go types in daemon/protocol by `make protocol`. Do not edit."
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("marshal protocol schema: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent protocol schema: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ReflectParams returns the JSON Schema of one params type, reflected as
// GenerateSchema reflects the protocol's own (for params types that live in
// feature packages, such as channels.status's).
func ReflectParams(v any) ([]byte, error) {
	r := &invschema.Reflector{
		Anonymous:      true,
		ExpandedStruct: true,
		DoNotReference: true,
		Mapper: func(t reflect.Type) *invschema.Schema {
			if t == reflect.TypeOf(json.RawMessage{}) {
				return &invschema.Schema{}
			}
			return nil
		},
	}
	return json.Marshal(r.Reflect(v))
}

var enPrinter = message.NewPrinter(language.English)

var (
	compileOnce sync.Once
	compiler    *jsonschema.Compiler
	compileErr  error
	compiledMu  sync.Mutex
	compiled    = map[string]*jsonschema.Schema{}
)

// schemaFor returns the compiled schema of one $defs entry of the committed
// schema (compiled on first use).
func schemaFor(def string) (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(committedSchema))
		if err != nil {
			compileErr = fmt.Errorf("committed protocol schema is not JSON (run `make protocol`): %w", err)
			return
		}
		compiler = jsonschema.NewCompiler()
		if err := compiler.AddResource(schemaID, doc); err != nil {
			compileErr = fmt.Errorf("load protocol schema: %w", err)
		}
	})
	if compileErr != nil {
		return nil, compileErr
	}
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if s, ok := compiled[def]; ok {
		return s, nil
	}
	var defs struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(committedSchema, &defs); err != nil || defs.Defs[def] == nil {
		return nil, fmt.Errorf("protocol schema has no definition %q", def)
	}
	s, err := compiler.Compile(schemaID + "#/$defs/" + def)
	if err != nil {
		return nil, fmt.Errorf("compile protocol schema %s: %w", def, err)
	}
	compiled[def] = s
	return s, nil
}

// ValidateParams validates raw params against the named $defs entry of the
// committed schema. Absent params validate as {}. The error reads
// "at /path: message" for the first failing location.
func ValidateParams(def string, raw json.RawMessage) error {
	sch, err := schemaFor(def)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = []byte("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("at /: not valid JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if ok := asValidationError(err, &ve); ok {
			return fmt.Errorf("%s", describe(ve))
		}
		return err
	}
	return nil
}

func asValidationError(err error, out **jsonschema.ValidationError) bool {
	ve, ok := err.(*jsonschema.ValidationError)
	if ok {
		*out = ve
	}
	return ok
}

// describe flattens a validation error tree into its leaf causes, most
// specific first: "at /client/id: value must be one of …".
func describe(ve *jsonschema.ValidationError) string {
	var leaves []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(leaves, func(i, j int) bool {
		return len(leaves[i].InstanceLocation) > len(leaves[j].InstanceLocation)
	})
	parts := make([]string, 0, len(leaves))
	for i, l := range leaves {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("(and %d more)", len(leaves)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("at /%s: %s", strings.Join(l.InstanceLocation, "/"), l.ErrorKind.LocalizedString(enPrinter)))
	}
	return strings.Join(parts, "; ")
}
