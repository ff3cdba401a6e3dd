package config

import (
	"strings"
	"testing"
)

func TestAgentsConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantKey, wantMsg string
	}{
		{"ok", `{"agents":{"list":{"ops":{"backend":"exec","exec":{"command":"/bin/cat"}},"llm":{"backend":"openai","openai":{"baseUrl":"http://127.0.0.1:8080/v1","model":"m","apiKeyEnv":"KEY"}}}},"http":{"endpoints":{"chatCompletions":{"enabled":true}}}}`, "", ""},
		{"bad backend", `{"agents":{"list":{"a":{"backend":"gpt"}}}}`, "agents.list.a.backend", "is not one of echo, openai, exec"},
		{"openai missing", `{"agents":{"list":{"a":{"backend":"openai"}}}}`, "agents.list.a.openai", "is required"},
		{"bad url", `{"agents":{"list":{"a":{"backend":"openai","openai":{"baseUrl":"ftp://x","model":"m"}}}}}`, "agents.list.a.openai.baseUrl", "http(s) URL"},
		{"no model", `{"agents":{"list":{"a":{"backend":"openai","openai":{"baseUrl":"http://x","model":""}}}}}`, "agents.list.a.openai.model", "is required"},
		{"both keys", `{"agents":{"list":{"a":{"backend":"openai","openai":{"baseUrl":"http://x","model":"m","apiKeyEnv":"K","apiKeyFile":"/k"}}}}}`, "agents.list.a.openai.apiKeyFile", "not both"},
		{"exec relative", `{"agents":{"list":{"a":{"backend":"exec","exec":{"command":"bin/x"}}}}}`, "agents.list.a.exec.command", "relative path"},
		{"exec env", `{"agents":{"list":{"a":{"backend":"exec","exec":{"command":"x","env":["NOEQUALS"]}}}}}`, "agents.list.a.exec.env[0]", "KEY=VALUE"},
		{"bad id", `{"agents":{"list":{"Bad Id":{}}}}`, "agents.list.Bad Id", "lower-case"},
		{"default unknown", `{"agents":{"default":"ops"}}`, "agents.default", "not an agent"},
		{"negative", `{"agents":{"maxConcurrent":-1}}`, "agents.maxConcurrent", "out of range"},
		{"body", `{"http":{"maxBodyBytes":-5}}`, "http.maxBodyBytes", "out of range"},
		{"unknown key", `{"agents":{"list":{"a":{"exec":{"cmd":"x"}}}}}`, "agents.list.a.exec.cmd", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.json", []byte(tc.json))
			if tc.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ce, ok := err.(*Error)
			if !ok || ce.Key != tc.wantKey || !strings.Contains(ce.Msg, tc.wantMsg) || ce.Line == 0 {
				t.Fatalf("got %v, want key %s with %q", err, tc.wantKey, tc.wantMsg)
			}
		})
	}
}

func TestAgentsDefaultsRedactClone(t *testing.T) {
	c, err := Parse("c.json", []byte(`{"agents":{"list":{"x":{"backend":"exec","exec":{"command":"x","args":["a"],"env":["TOKEN=s3cret","EMPTY="]}},"o":{"backend":"openai","openai":{"baseUrl":"http://h","model":"m"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults()
	if d.Agents.Default != "main" || d.Agents.MaxConcurrent != DefaultMaxConcurrentRuns || d.HTTP.MaxBodyBytes != DefaultHTTPMaxBodyBytes ||
		d.Agents.List["o"].OpenAI.StallTimeoutMs != DefaultStallTimeoutMs || !d.Agents.List["o"].OpenAI.StreamEnabled() {
		t.Fatalf("defaults %+v", d.Agents)
	}
	if a, ok := d.Agents.Agent("main"); !ok || a.Backend != BackendEcho {
		t.Fatal("implicit main agent missing")
	}
	if ids := d.Agents.AgentIDs(); strings.Join(ids, ",") != "main,o,x" {
		t.Fatal(ids)
	}
	r := d.Redacted()
	if env := r.Agents.List["x"].Exec.Env; env[0] != "TOKEN="+RedactedValue || env[1] != "EMPTY=" {
		t.Fatalf("redacted env %v", env)
	}
	if d.Agents.List["x"].Exec.Env[0] != "TOKEN=s3cret" {
		t.Fatal("Redacted changed the original: clone is shallow")
	}
	if ch := Diff(c, r); len(ch) == 0 || ch[0].RestartInProcess {
		t.Fatalf("agents changes must be hot: %+v", ch)
	}
}
