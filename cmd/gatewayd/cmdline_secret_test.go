package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestSecretFlagsOnCommandLine(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "1", "--token", "x"}, "--token"},
		{[]string{"-token=x", "--password=y"}, "--token --password"},
		{[]string{"--port", "1", "--verbose"}, ""},
		{[]string{"--profile", "token"}, ""}, // a value, not a flag
		{[]string{"--", "--token"}, ""},
	} {
		if got := strings.Join(secretFlagsOnCommandLine(tt.args), " "); got != tt.want {
			t.Errorf("secretFlagsOnCommandLine(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestTokenFlagWarning: the real gatewayd warns at startup when its token
// is on its command line, and names the alternatives; from the
// environment it does not.
func TestTokenFlagWarning(t *testing.T) {
	const warning = "--token on the command line is visible to every local user"
	g := gatewaydtest.StartT(t, gatewaydtest.Options{Bare: true, Args: []string{"--bind", "loopback", "--token", "cmdline-token-0123456789"}})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Output(), warning) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about --token on the command line:\n%s", g.Output())
		}
		time.Sleep(20 * time.Millisecond) // the log line is written at startup; bounded by deadline
	}
	if out := g.Output(); !strings.Contains(out, "GATEWAY_TOKEN") || !strings.Contains(out, "EnvironmentFile=") || strings.Contains(out, "cmdline-token-0123456789") {
		t.Errorf("the warning does not name the alternatives, or echoes the token:\n%s", out)
	}
	g2 := gatewaydtest.StartT(t, gatewaydtest.Options{Bare: true, Args: []string{"--bind", "loopback"}, Env: []string{"GATEWAY_TOKEN=env-token-0123456789"}})
	if strings.Contains(g2.Output(), "on the command line is visible") {
		t.Errorf("warned with the token in the environment:\n%s", g2.Output())
	}
}
