package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestRunChecksPanicBecomesFailed(t *testing.T) {
	checks := []check[int]{
		{"first", "", func(context.Context, int) CheckResult { return CheckResult{Message: "fine"} }},
		{"boom", "", func(context.Context, int) CheckResult {
			var m map[string]int
			//lint:ignore SA5000 the check must panic
			m["x"] = 1
			return CheckResult{}
		}},
		{"last", "", func(_ context.Context, n int) CheckResult {
			return CheckResult{Severity: SeverityWarning, Message: fmt.Sprint(n)}
		}},
	}
	res := runChecks(context.Background(), discard(nil), checks, 7)
	if len(res) != 3 {
		t.Fatalf("got %d results", len(res))
	}
	if res[0].Name != "first" || res[0].Severity != SeverityOK {
		t.Errorf("first: %+v", res[0])
	}
	if res[1].Name != "boom" || res[1].Severity != SeverityFailed || !strings.Contains(res[1].Message, "nil map") {
		t.Errorf("boom: %+v", res[1])
	}
	if res[2].Severity != SeverityWarning || res[2].Message != "7" {
		t.Errorf("last: %+v", res[2])
	}
	rep := finish(res)
	if rep.Remaining != 2 {
		t.Errorf("Remaining = %d, want 2", rep.Remaining)
	}
}

func TestSelectChecks(t *testing.T) {
	checks := []check[int]{{name: "a"}, {name: "b"}, {name: "c"}}
	tests := []struct {
		only    []string
		want    []string
		wantErr string
	}{
		{nil, []string{"a", "b", "c"}, ""},
		{[]string{"c", "a", "c"}, []string{"a", "c"}, ""},
		{[]string{"a", "nope"}, nil, "unknown doctor check nope"},
	}
	for _, tt := range tests {
		got, err := selectChecks(checks, tt.only)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.only, err, tt.wantErr)
			}
			continue
		}
		var names []string
		for _, c := range got {
			names = append(names, c.name)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("%v: %v, %v; want %v", tt.only, names, err, tt.want)
		}
	}
}

func TestSecretVars(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"GATEWAY_SERVICE_MARKER": "gatewayd", "GATEWAY_SERVICE_VERSION": "1.2.3", "GATEWAY_PROFILE": "default"}, nil},
		{map[string]string{"GATEWAY_TOKEN": ""}, []string{"GATEWAY_TOKEN"}},
		{map[string]string{"GATEWAY_PASSWORD": "hunter2"}, []string{"GATEWAY_PASSWORD"}},
		{map[string]string{"OPENAI_API_KEY": "x", "MY_SECRET": "y", "EMPTY_TOKEN": ""}, []string{"MY_SECRET", "OPENAI_API_KEY"}},
		{map[string]string{"UPSTREAM": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"}, []string{"UPSTREAM"}},
		{map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin", "URL": "https://example.com/abcdefghijk12345678"}, nil},
		{map[string]string{"GATEWAY_LOG_LEVEL": "debug"}, nil},
	}
	for _, tt := range tests {
		if got := secretVars(tt.env); !slices.Equal(got, tt.want) {
			t.Errorf("secretVars(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestMarkerProblems(t *testing.T) {
	tg := Target{Profile: "work", Version: "2.0.0"}
	good := map[string]string{"GATEWAY_SERVICE_MARKER": "gatewayd", "GATEWAY_SERVICE_KIND": "gateway", "GATEWAY_SERVICE_VERSION": "2.0.0", "GATEWAY_PROFILE": "work"}
	if p := markerProblems(good, tg); len(p) != 0 {
		t.Fatalf("good marker: %v", p)
	}
	bad := map[string]string{"GATEWAY_SERVICE_KIND": "gateway", "GATEWAY_SERVICE_VERSION": "1.0.0", "GATEWAY_PROFILE": "work"}
	p := markerProblems(bad, tg)
	if len(p) != 2 || !strings.Contains(p[0], "GATEWAY_SERVICE_MARKER is missing") || !strings.Contains(p[1], `"1.0.0"`) {
		t.Fatalf("bad marker: %v", p)
	}
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestProbe runs the port probe against a closed port, a plain TCP server
// and a server that sends the protocol's connect.challenge.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	closed := fmt.Sprintf("127.0.0.1:%d", freeLocalPort(t))
	if p := probe(ctx, closed); p.open {
		t.Fatalf("closed port reported open")
	}

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	if p := probe(ctx, plain.Addr().String()); !p.open || p.gateway {
		t.Fatalf("plain server: %+v", p)
	}

	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		_ = ws.Write(r.Context(), websocket.MessageText, []byte(`{"type":"event","event":"connect.challenge","payload":{"nonce":"n","ts":1}}`))
		ws.Close(websocket.StatusNormalClosure, "")
	}))
	defer gw.Close()
	if p := probe(ctx, gw.Listener.Addr().String()); !p.open || !p.gateway {
		t.Fatalf("gateway: %+v", p)
	}
}

func dump(rep *Report) string {
	if rep == nil {
		return "<no report>"
	}
	var b strings.Builder
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "  %-22s %-8s fixed=%-5v %s", c.Name, c.Severity, c.Fixed, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(&b, " [fix: %s]", c.Fix)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  fixed=%d remaining=%d\n", rep.Fixed, rep.Remaining)
	return b.String()
}

func assertClean(t *testing.T, rep *Report) {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Problem() {
			t.Fatalf("doctor not clean: %s is %s\n%s", c.Name, c.Severity, dump(rep))
		}
	}
	if rep.Remaining != 0 {
		t.Fatalf("Remaining = %d, want 0\n%s", rep.Remaining, dump(rep))
	}
}

func assertCheck(t *testing.T, rep *Report, name, severity string) CheckResult {
	t.Helper()
	c, ok := rep.Result(name)
	if !ok {
		t.Fatalf("check %s did not run\n%s", name, dump(rep))
	}
	if c.Severity != severity {
		t.Fatalf("check %s: severity %s, want %s\n%s", name, c.Severity, severity, dump(rep))
	}
	return c
}
