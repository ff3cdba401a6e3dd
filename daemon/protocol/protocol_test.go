package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommittedSchemaMatchesTypes(t *testing.T) {
	gen, err := GenerateSchema()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join("schema", "protocol.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gen, onDisk) || !bytes.Equal(gen, CommittedSchema()) {
		t.Fatalf("%s is out of date with the Go protocol types: run `make protocol` and commit the result", SchemaFile)
	}
}

func TestDecodeRequest(t *testing.T) {
	cases := []struct {
		in      string
		wantErr string
	}{
		{`{"type":"req","id":"1","method":"status"}`, ""},
		{`{"type":"req","id":"1:abc","method":"health","params":{}}`, ""},
		{`{"type":"req","id":"1","method":"x","params":[1,2]}`, ""},
		{`{"type":"req","id":"1","method":"x","traceparent":"00-aa"}`, ""},
		{`not json`, "not valid JSON"},
		{``, "empty frame"},
		{`{"type":"req","id":"1","method":"status"`, "unexpected end"},
		{`{"type":"res","id":"1","method":"status"}`, `"res" is not "req"`},
		{`{"id":"1","method":"status"}`, "at /type: missing"},
		{`{"type":"req","id":"","method":"status"}`, "at /id"},
		{`{"type":"req","id":"1","method":""}`, "at /method"},
		{`{"type":"req","id":1,"method":"status"}`, "at /id: expected string"},
		{`{"type":"req","id":"1","method":"status","extra":1}`, `unexpected property "extra"`},
		{`{"type":"req","id":"1","method":"status"} {}`, "trailing data"},
		{`{"type":"req","id":"1","method":"s","traceparent":"` + strings.Repeat("a", 129) + `"}`, "traceparent"},
		{`[]`, "expected"},
	}
	for _, c := range cases {
		f, err := DecodeRequest([]byte(c.in))
		if c.wantErr == "" {
			if err != nil || f == nil {
				t.Errorf("DecodeRequest(%q) = %v, want ok", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("DecodeRequest(%q) error = %v, want containing %q", c.in, err, c.wantErr)
		}
	}
}

func validConnect() map[string]any {
	return map[string]any{
		"minProtocol": 4, "maxProtocol": 4,
		"client": map[string]any{"id": "cli", "version": "1.0", "platform": "linux", "mode": "cli"},
		"scopes": []string{"operator.read"},
		"auth":   map[string]any{"token": "t"},
	}
}

func TestValidateConnect(t *testing.T) {
	mutate := func(f func(m map[string]any)) json.RawMessage {
		m := validConnect()
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name    string
		raw     json.RawMessage
		wantErr string
	}{
		{"valid", mutate(func(m map[string]any) {}), ""},
		{"all optional fields", mutate(func(m map[string]any) {
			m["caps"] = []string{}
			m["commands"] = []string{}
			m["permissions"] = map[string]bool{"x": true}
			m["role"] = "operator"
			m["locale"] = "en"
			m["userAgent"] = "ua"
			m["pathEnv"] = "/bin"
			m["client"].(map[string]any)["instanceId"] = "i"
			m["client"].(map[string]any)["deviceFamily"] = "Linux"
		}), ""},
		{"unknown top-level", mutate(func(m map[string]any) { m["bogus"] = 1 }), "bogus"},
		{"unknown client field", mutate(func(m map[string]any) { m["client"].(map[string]any)["x"] = 1 }), "/client"},
		{"bad client id", mutate(func(m map[string]any) { m["client"].(map[string]any)["id"] = "nope" }), "at /client/id"},
		{"bad mode", mutate(func(m map[string]any) { m["client"].(map[string]any)["mode"] = "nope" }), "at /client/mode"},
		{"missing client", mutate(func(m map[string]any) { delete(m, "client") }), "client"},
		{"protocol zero", mutate(func(m map[string]any) { m["minProtocol"] = 0 }), "at /minProtocol"},
		{"bad role", mutate(func(m map[string]any) { m["role"] = "root" }), "at /role"},
		{"scopes not array", mutate(func(m map[string]any) { m["scopes"] = "operator.read" }), "at /scopes"},
		{"absent", nil, "missing properties"},
	}
	for _, c := range cases {
		err := ValidateParams("ConnectParams", c.raw)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error = %v, want containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestVerifyDevice(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_ = pub
	now := time.Now()
	base := func() *ConnectParams {
		return &ConnectParams{MinProtocol: 4, MaxProtocol: 4,
			Client: ClientInfo{ID: "gateway-client", Version: "1", Platform: "linux", Mode: "backend"},
			Role:   "operator", Scopes: []string{ScopeRead, ScopeWrite}, Auth: &ConnectAuth{Token: "tok"}}
	}
	good := base()
	good.Device = SignDevice(priv, good, "operator", "tok", "n1", now)
	if err := VerifyDevice(good, "operator", "n1", now); err != nil {
		t.Fatalf("valid v2 device rejected: %v", err)
	}
	check := func(name string, p *ConnectParams, nonce string, at time.Time, want string) {
		t.Helper()
		err := VerifyDevice(p, "operator", nonce, at)
		if err == nil || err.DetailCode() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
	check("nonce", good, "other", now, DetailDeviceNonceMismatch)
	check("expired", good, "n1", now.Add(3*time.Minute), DetailDeviceSignatureExpired)
	check("future", good, "n1", now.Add(-3*time.Minute), DetailDeviceSignatureExpired)
	tampered := base()
	tampered.Device = SignDevice(priv, tampered, "operator", "tok", "n1", now)
	tampered.Scopes = append(tampered.Scopes, ScopeAdmin) // escalation after signing
	check("scopes changed", tampered, "n1", now, DetailDeviceSignatureInvalid)
	badID := base()
	badID.Device = SignDevice(priv, badID, "operator", "tok", "n1", now)
	badID.Device.ID = strings.Repeat("0", 64)
	check("id", badID, "n1", now, DetailDeviceIDMismatch)
	badKey := base()
	badKey.Device = SignDevice(priv, badKey, "operator", "tok", "n1", now)
	badKey.Device.PublicKey = "AAAA"
	check("key", badKey, "n1", now, DetailDevicePublicKeyInvalid)
	// v3 payload is accepted too.
	v3 := base()
	v3.Client.DeviceFamily = "Linux"
	id := DeviceID(priv.Public().(ed25519.PublicKey))
	msg := DevicePayloadV3(id, v3.Client.ID, v3.Client.Mode, "operator", v3.Scopes, now.UnixMilli(), "tok", "n1", "linux", "Linux")
	v3.Device = SignDevice(priv, v3, "operator", "tok", "n1", now)
	v3.Device.Signature = b64(ed25519.Sign(priv, []byte(msg)))
	if err := VerifyDevice(v3, "operator", "n1", now); err != nil {
		t.Fatalf("valid v3 device rejected: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"req","id":"1","method":"status"}`,
		`{"type":"req","id":"1","method":"health","params":{"probe":true}}`,
		`{"type":"req","id":"","method":"x"}`, `{}`, `[]`, `null`, `"s"`, `{"type":"req"`,
		`{"type":"req","id":"1","method":"x","params":null,"traceparent":"00"}`,
		`{"type":"req","id":"1","method":"x","extra":1}`, `{"type":"req","id":"1","method":"x","params":{"a":{"b":"}"}}}`,
		`{"ID":"1","type":"req","method":"x"}`, `{"type":"req","id":"1","method":"x","\u0069d":"2"}`,
		`{"type":"req","id":"1","method":"x"} {}`, `{"type":"req","id":"a\"b","method":"x","params":["x",{"y":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeRequest(data)
		// The fast path and the strict Decoder path agree.
		strict, serr := decodeRequestStrict(data)
		if (err == nil) != (serr == nil) {
			t.Fatalf("paths disagree on %q: fast %v, strict %v", data, err, serr)
		}
		if err == nil && (fr.ID != strict.ID || fr.Method != strict.Method || string(fr.Params) != string(strict.Params) || fr.Traceparent != strict.Traceparent) {
			t.Fatalf("paths decode %q differently: %+v vs %+v", data, fr, strict)
		}
		if err == nil {
			if fr.Type != TypeReq || fr.ID == "" || fr.Method == "" {
				t.Fatalf("accepted an invalid frame: %+v", fr)
			}
			// A frame we accept re-encodes and decodes to the same thing.
			b, _ := json.Marshal(fr)
			again, err := DecodeRequest(b)
			if err != nil || again.ID != fr.ID || again.Method != fr.Method {
				t.Fatalf("round trip failed: %v", err)
			}
		} else if err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}

func FuzzValidateConnect(f *testing.F) {
	b, _ := json.Marshal(validConnect())
	f.Add(b)
	f.Add([]byte(`{"minProtocol":3,"maxProtocol":4,"client":{"id":"node-host","version":"1","platform":"x","mode":"node"},"role":"node"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"client":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := ValidateParams("ConnectParams", data)
		if err != nil {
			return
		}
		// Whatever the schema accepts must decode strictly into the Go type.
		var p ConnectParams
		if derr := DecodeParams(data, &p); derr != nil {
			t.Fatalf("schema accepted %q but the strict decoder rejects it: %v", data, derr)
		}
	})
}
