package nodes

import (
	"strings"
	"testing"
)

func TestNormalizeNodeID(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{hex64, hex64, true},
		{strings.ToUpper(hex64), hex64, true},
		{" " + hex64 + "\n", hex64, true},
		{hex64[:63], hex64[:63], false},
		{strings.Repeat("zz", 32), strings.Repeat("zz", 32), false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeNodeID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeNodeID(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenHashing(t *testing.T) {
	a, b := newToken(), newToken()
	if a == b || len(a) != 43 {
		t.Fatalf("tokens %q %q: want two distinct 43-character base64url strings", a, b)
	}
	h := hashToken(a)
	if len(h) != 64 || strings.Contains(h, a) {
		t.Fatalf("hash %q", h)
	}
	tests := []struct {
		tok, hash string
		want      bool
	}{
		{a, h, true},
		{b, h, false},
		{"", h, false},
		{a, "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := tokenMatches(tt.tok, tt.hash); got != tt.want {
			t.Errorf("tokenMatches(%q, %q) = %v, want %v", tt.tok, tt.hash, got, tt.want)
		}
	}
}
