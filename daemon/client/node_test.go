package client

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

func TestLoadOrCreateDeviceKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "device.key")
	k1, err := LoadOrCreateDeviceKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, st.Mode().Perm())
	}
	k2, err := LoadOrCreateDeviceKey(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !k1.Equal(k2) || DeviceID(k1) != DeviceID(k2) || len(DeviceID(k1)) != 64 {
		t.Fatalf("reloaded key differs: %s vs %s", DeviceID(k1), DeviceID(k2))
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDeviceKey(path); err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("corrupt key file: got %v, want an error naming the fix", err)
	}
}

func TestPairingRequired(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		wantOK bool
		wantID string
	}{
		{"not paired", &DialError{Server: &protocol.Error{Code: protocol.ErrNotPaired, Details: map[string]any{"requestId": "r1"}}}, true, "r1"},
		{"not paired, no details", &DialError{Server: &protocol.Error{Code: protocol.ErrNotPaired}}, true, ""},
		{"auth", &DialError{Server: &protocol.Error{Code: protocol.ErrInvalidRequest}}, false, ""},
		{"other error", errors.New("boom"), false, ""},
		{"nil", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := PairingRequired(tt.err)
			if ok != tt.wantOK || id != tt.wantID {
				t.Errorf("PairingRequired = %q, %v; want %q, %v", id, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

func TestMarshalNodePayload(t *testing.T) {
	tests := []struct {
		in      any
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{json.RawMessage(nil), "", false},
		{json.RawMessage(`{"a":1}`), `{"a":1}`, false},
		{json.RawMessage(`{bad`), "", true},
		{map[string]int{"b": 2}, `{"b":2}`, false},
		{"text", `"text"`, false},
		{func() {}, "", true},
	}
	for _, tt := range tests {
		got, err := marshalPayload(tt.in)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("marshalPayload(%#v) = %s, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDialNodeNeedsDevice(t *testing.T) {
	_, err := DialNode(t.Context(), Options{URL: "ws://127.0.0.1:1"})
	var de *DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "device identity") {
		t.Fatalf("DialNode without a device: got %v", err)
	}
}
