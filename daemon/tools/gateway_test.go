package tools_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// TestGatewayToolsInvoke runs /tools/invoke on the real gatewayd binary.
func TestGatewayToolsInvoke(t *testing.T) {
	cfg := `{"tools": {"maxBodyBytes": 2048, "exec": {
	  "greet": {"command": ["/bin/sh", "-c", "cat"], "description": "echoes its args",
	            "argsSchema": {"type": "object", "properties": {"who": {"type": "string", "minLength": 1}}, "required": ["who"]}},
	  "hang":  {"command": ["/bin/sleep", "60"], "timeoutMs": 200}
	}}}`
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Config: cfg})
	tests := []struct {
		name, auth, body string
		code             int
		want             string
	}{
		{"good args", "Bearer " + g.Token, `{"tool":"greet","args":{"who":"ops"}}`, 200, `{"ok":true,"result":{"who":"ops"}}`},
		{"bad args", "Bearer " + g.Token, `{"tool":"greet","args":{"who":""}}`, 400, `"type":"invalid_request"`},
		{"builtin", "Bearer " + g.Token, `{"tool":"gateway.status"}`, 200, `"profile":"default"`},
		{"unknown tool", "Bearer " + g.Token, `{"tool":"nope"}`, 404, `"type":"not_found"`},
		{"no auth", "", `{"tool":"greet","args":{"who":"ops"}}`, 401, `{"error":{"message":"Unauthorized","type":"unauthorized"}}`},
		{"oversized", "Bearer " + g.Token, `{"tool":"greet","args":{"who":"` + strings.Repeat("x", 4096) + `"}}`, 413, `"type":"payload_too_large"`},
		{"timeout", "Bearer " + g.Token, `{"tool":"hang"}`, 408, `"type":"timeout"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.HTTPURL+"/tools/invoke", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s; want %d containing %s", resp.StatusCode, body, tt.code, tt.want)
			}
			if !json.Valid(body) {
				t.Errorf("body is not JSON: %s", body)
			}
		})
	}
}
