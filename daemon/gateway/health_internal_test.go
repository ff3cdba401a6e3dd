package gateway

import (
	"encoding/json"
	"testing"
)

// The extensions' components sit beside hub, config and server, and an
// extension cannot replace a core component by taking its name.
func TestHealthComponentsJSON(t *testing.T) {
	core := HealthComponents{Hub: HubHealth{OK: true, Goroutines: 7}, Server: ServerHealth{OK: true, Restarts: 2}}
	plain, err := json.Marshal(core)
	if err != nil {
		t.Fatal(err)
	}
	with := core
	with.Extensions = map[string]any{"channels": map[string]int{"linked": 1}, "hub": "impostor"}
	b, err := json.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(plain, &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if string(got[k]) != string(v) {
			t.Errorf("%s: got %s, want %s (the core component)", k, got[k], v)
		}
	}
	if string(got["channels"]) != `{"linked":1}` || len(got) != len(want)+1 {
		t.Errorf("extensions beside the core: %s", b)
	}
}
