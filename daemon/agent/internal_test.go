package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config"
)

func TestSplitDeltas(t *testing.T) {
	for _, s := range []string{"a", "hi", "héllo wörld", "one two three four five six seven", "日本語のテキスト", "trailing space "} {
		parts := splitDeltas(s, 4)
		if strings.Join(parts, "") != s || len(parts) > 4 || len(parts) == 0 {
			t.Errorf("%q -> %q", s, parts)
		}
		if len([]rune(s)) >= 4 && len(parts) < 2 {
			t.Errorf("%q came in %d delta(s), want several", s, len(parts))
		}
		for _, p := range parts {
			if strings.ToValidUTF8(p, "?") != p {
				t.Errorf("%q: delta %q splits a character", s, p)
			}
		}
	}
}

type collect struct{ deltas []string }

func (c *collect) Delta(s string) error { c.deltas = append(c.deltas, s); return nil }
func (c *collect) Tool(map[string]any)  {}

// TestDeltaWriterUTF8: a character split across writes is held back until
// it is complete.
func TestDeltaWriterUTF8(t *testing.T) {
	c := &collect{}
	w := &deltaWriter{out: c}
	in := []byte("aé日🙂z")
	for i := range in {
		if _, err := w.Write(in[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	w.flush()
	if strings.Join(c.deltas, "") != string(in) {
		t.Fatalf("got %q", c.deltas)
	}
	for _, d := range c.deltas {
		if strings.ToValidUTF8(d, "?") != d {
			t.Fatalf("delta %q is not valid UTF-8", d)
		}
	}
}

func TestCutUTF8(t *testing.T) {
	if got := cutUTF8("aé", 2); got != "a" {
		t.Fatalf("%q", got)
	}
	if got := cutUTF8("abc", 5); got != "abc" {
		t.Fatalf("%q", got)
	}
}

type collectSink struct{ text strings.Builder }

func (c *collectSink) Delta(s string) error { c.text.WriteString(s); return nil }
func (c *collectSink) Tool(map[string]any)  {}

// TestExecBackendGetsNoGatewaySecrets: an exec agent sees a minimal
// environment plus its configured env, never the gateway's own.
func TestExecBackendGetsNoGatewaySecrets(t *testing.T) {
	t.Setenv("GATEWAY_TOKEN", "gateway-secret")
	t.Setenv("OPENAI_API_KEY", "upstream-secret")
	e := &execBackend{id: "env", cfg: config.ExecBackendConfig{Command: "/usr/bin/env", Env: []string{"WANTED=yes"}}}
	out := &collectSink{}
	if _, err := e.run(context.Background(), input{RunID: "r1", AgentID: "env"}, out); err != nil {
		t.Fatal(err)
	}
	got := out.text.String()
	if strings.Contains(got, "secret") || !strings.Contains(got, "WANTED=yes") || !strings.Contains(got, "GATEWAY_RUN_ID=r1") || !strings.Contains(got, "PATH=") {
		t.Fatalf("exec backend environment:\n%s", got)
	}
}
