package protocol

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"testing"
	"time"
)

// TestDeviceV3Normalized: OpenClaw's client signs platform and deviceFamily
// trimmed and A-Z lowered (normalizeDeviceMetadataForAuth), whatever the
// connect's client block says; the literal string below is what it signs.
func TestDeviceV3Normalized(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub := priv.Public().(ed25519.PublicKey)
	id := DeviceID(pub)
	now := time.Now()
	p := &ConnectParams{MinProtocol: 3, MaxProtocol: 4, Role: RoleNode,
		Client: ClientInfo{ID: "node-host", Version: "1", Platform: "  Linux ", Mode: "node", DeviceFamily: "Ünix PC"},
		Auth:   &ConnectAuth{DeviceToken: "dtok"}}
	at := now.UnixMilli()
	msg := "v3|" + id + "|node-host|node|node||" + itoa(at) + "|dtok|n1|linux|Ünix pc"
	p.Device = &DeviceAuth{ID: id, PublicKey: base64.RawURLEncoding.EncodeToString(pub), SignedAt: at, Nonce: "n1",
		Signature: base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg)))}
	if err := VerifyDevice(p, RoleNode, "n1", now); err != nil {
		t.Fatalf("v3 signature over normalized platform/deviceFamily rejected: %v", err)
	}
	// The payload as sent (not normalized) is not what OpenClaw signs.
	raw := "v3|" + id + "|node-host|node|node||" + itoa(at) + "|dtok|n1|  Linux |Ünix PC"
	p.Device.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(raw)))
	if err := VerifyDevice(p, RoleNode, "n1", now); err == nil {
		t.Fatal("v3 signature over the raw platform accepted")
	}
	// v2 stays accepted; auth.token wins over auth.deviceToken as the signed token.
	p.Auth = &ConnectAuth{Token: "shared", DeviceToken: "dtok"}
	v2 := "v2|" + id + "|node-host|node|node||" + itoa(at) + "|shared|n1"
	p.Device.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(v2)))
	if err := VerifyDevice(p, RoleNode, "n1", now); err != nil {
		t.Fatalf("v2 signature rejected: %v", err)
	}
	for in, want := range map[string]string{"": "", "  ": "", " macOS 14 ": "macos 14", "iPadOS": "ipados", "ÄB": "Äb"} {
		if got := NormalizeDeviceMetadata(in); got != want {
			t.Errorf("NormalizeDeviceMetadata(%q) = %q, want %q", in, got, want)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
