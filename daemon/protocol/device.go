package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// DeviceSkew is how far device.signedAt may be from the gateway's clock.
const DeviceSkew = 120 * time.Second

// DevicePayloadV2 builds the string a device signs (protocol "v2"):
// v2|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce.
func DevicePayloadV2(deviceID, clientID, clientMode, role string, scopes []string, signedAtMs int64, token, nonce string) string {
	return strings.Join([]string{"v2", deviceID, clientID, clientMode, role,
		strings.Join(scopes, ","), strconv.FormatInt(signedAtMs, 10), token, nonce}, "|")
}

// DevicePayloadV3 is v2 with "v3" and |platform|deviceFamily appended,
// both normalized (NormalizeDeviceMetadata) as OpenClaw's client does
// before signing: a node host that says platform "Linux" signs "linux".
func DevicePayloadV3(deviceID, clientID, clientMode, role string, scopes []string, signedAtMs int64, token, nonce, platform, deviceFamily string) string {
	return strings.Join([]string{"v3", deviceID, clientID, clientMode, role,
		strings.Join(scopes, ","), strconv.FormatInt(signedAtMs, 10), token, nonce,
		NormalizeDeviceMetadata(platform), NormalizeDeviceMetadata(deviceFamily)}, "|")
}

// NormalizeDeviceMetadata is OpenClaw's normalizeDeviceMetadataForAuth
// (packages/gateway-client/src/device-auth.ts): trimmed of white space,
// then A-Z lowered; other letters are left alone.
func NormalizeDeviceMetadata(s string) string {
	s = strings.TrimSpace(s)
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// deviceSignatureToken is the token a device signs: OpenClaw's
// resolveSignatureToken takes auth.token, else auth.deviceToken, else
// auth.bootstrapToken.
func deviceSignatureToken(a *ConnectAuth) string {
	if a == nil {
		return ""
	}
	switch {
	case a.Token != "":
		return a.Token
	case a.DeviceToken != "":
		return a.DeviceToken
	}
	return a.BootstrapToken
}

// DeviceID is the hex SHA-256 of a raw 32-byte Ed25519 public key.
func DeviceID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// decodeB64 accepts base64url with or without padding (and, leniently,
// standard base64), as clients differ.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// VerifyDevice checks a device proof against the connect params and the
// challenge nonce. It returns nil or an *Error whose details carry one of
// the DEVICE_AUTH_* codes. role is the effective role (default operator).
func VerifyDevice(p *ConnectParams, role, challengeNonce string, now time.Time) *Error {
	d := p.Device
	fail := func(code, msg string) *Error {
		return &Error{Code: ErrInvalidRequest, Message: "device auth failed: " + msg, Details: Details{"code": code}}
	}
	if d.Nonce != challengeNonce {
		return fail(DetailDeviceNonceMismatch, "nonce does not match the connect.challenge nonce")
	}
	skew := now.Sub(time.UnixMilli(d.SignedAt))
	if skew > DeviceSkew || skew < -DeviceSkew {
		return fail(DetailDeviceSignatureExpired, "signedAt is more than 120 s from the gateway's clock (check the device's time)")
	}
	raw, err := decodeB64(d.PublicKey)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return fail(DetailDevicePublicKeyInvalid, "publicKey is not a base64url raw 32-byte Ed25519 key")
	}
	pub := ed25519.PublicKey(raw)
	if !strings.EqualFold(d.ID, DeviceID(pub)) {
		return fail(DetailDeviceIDMismatch, "device id is not the SHA-256 of its public key")
	}
	sig, err := decodeB64(d.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fail(DetailDeviceSignatureInvalid, "signature is not a base64url Ed25519 signature")
	}
	token := deviceSignatureToken(p.Auth)
	v2 := DevicePayloadV2(d.ID, p.Client.ID, p.Client.Mode, role, p.Scopes, d.SignedAt, token, d.Nonce)
	if ed25519.Verify(pub, []byte(v2), sig) {
		return nil
	}
	v3 := DevicePayloadV3(d.ID, p.Client.ID, p.Client.Mode, role, p.Scopes, d.SignedAt, token, d.Nonce, p.Client.Platform, p.Client.DeviceFamily)
	if ed25519.Verify(pub, []byte(v3), sig) {
		return nil
	}
	return fail(DetailDeviceSignatureInvalid, "signature does not verify (v2 or v3 payload)")
}

// SignDevice produces a v2 device proof; clients (gatewayctl, tests) use it.
func SignDevice(priv ed25519.PrivateKey, p *ConnectParams, role string, token, nonce string, now time.Time) *DeviceAuth {
	pub := priv.Public().(ed25519.PublicKey)
	id := DeviceID(pub)
	at := now.UnixMilli()
	msg := DevicePayloadV2(id, p.Client.ID, p.Client.Mode, role, p.Scopes, at, token, nonce)
	return &DeviceAuth{ID: id, PublicKey: base64.RawURLEncoding.EncodeToString(pub),
		Signature: base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg))), SignedAt: at, Nonce: nonce}
}
