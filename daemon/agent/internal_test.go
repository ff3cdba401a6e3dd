package agent

import (
	"context"
	"fmt"
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

// TestFinishedKeepsABoundedWindowCheaply: past maxRemembered ended runs
// the oldest are forgotten, the slice's backing array stays bounded, and
// the work per finished run does not grow with the window.
func TestFinishedKeepsABoundedWindowCheaply(t *testing.T) {
	m := &Manager{runs: map[string]*Run{}}
	const n = 3*maxRemembered + 7
	for i := range n {
		r := &Run{id: fmt.Sprintf("r%d", i), keyed: true}
		m.runs[r.id] = r
		m.active++
		m.finished(r)
		if c := cap(m.ended); c > 3*maxRemembered {
			t.Fatalf("after %d runs the window's array has room for %d", i+1, c)
		}
	}
	if len(m.ended) != maxRemembered || len(m.runs) != maxRemembered {
		t.Fatalf("remembered %d ended / %d runs, want %d", len(m.ended), len(m.runs), maxRemembered)
	}
	if m.ended[0].id != fmt.Sprintf("r%d", n-maxRemembered) || m.runs["r0"] != nil {
		t.Fatalf("oldest kept %s; r0 still known: %v", m.ended[0].id, m.runs["r0"] != nil)
	}
	// With the window full, one more finished run must not copy it.
	more := make([]*Run, 101)
	for i := range more {
		more[i] = &Run{id: fmt.Sprintf("m%d", i), keyed: true}
	}
	next := 0
	if a := testing.AllocsPerRun(100, func() {
		m.active++
		m.finished(more[next])
		next++
	}); a != 0 {
		t.Fatalf("finishing a run with a full window allocates %v times (copies the window)", a)
	}
}
