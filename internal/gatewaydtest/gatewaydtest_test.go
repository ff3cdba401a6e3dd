package gatewaydtest

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestDedupEnv(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, []string{}},
		{"distinct keys keep their order", []string{"A=1", "B=2"}, []string{"A=1", "B=2"}},
		{"the last value wins, at the first place", []string{"A=1", "B=2", "A=3"}, []string{"A=3", "B=2"}},
		{"a value may hold =", []string{"A=x=y", "A=z=w"}, []string{"A=z=w"}},
		{"a bare key counts as a key", []string{"A", "A=1"}, []string{"A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dedupEnv(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("dedupEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestStartTBareWithConfig starts the real gatewayd bare (no --bind, no
// --token: the token comes from GATEWAY_TOKEN in Env) with a config file.
func TestStartTBareWithConfig(t *testing.T) {
	const token = "gatewaytest-env-token-0123456789"
	cfg := `{"gateway":{"controlUi":{"enabled":false}}}`
	g := StartT(t, Options{Bare: true, Config: cfg, Env: []string{"GATEWAY_TOKEN=" + token}})
	if g.Token != "" {
		t.Errorf("Token = %q for a bare start, want \"\"", g.Token)
	}
	if slices.Contains(g.Cmd.Args, "--bind") || slices.Contains(g.Cmd.Args, "--token") {
		t.Errorf("bare start passed %q, want only --port", g.Cmd.Args)
	}
	if b, err := os.ReadFile(g.ConfigPath); err != nil || string(b) != cfg {
		t.Errorf("config file %s: %q, %v; want %q", g.ConfigPath, b, err, cfg)
	}
	if _, err := os.Stat(g.ConfigPath + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteConfig left its temporary file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The token from the environment is the one the gateway takes.
	c, err := client.Dial(ctx, client.Options{URL: g.URL, Token: token})
	if err != nil {
		t.Fatalf("Dial with the GATEWAY_TOKEN token: %v", err)
	}
	c.Close()
	var de *client.DialError
	if _, err := client.Dial(ctx, client.Options{URL: g.URL, Token: DefaultToken}); !errors.As(err, &de) || !de.IsAuth() {
		t.Errorf("Dial with DefaultToken on a bare start: %v, want an authentication failure", err)
	}
	if err := g.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, g.Output())
	}
	select {
	case <-g.Exited():
	default:
		t.Fatal("Exited is not closed after Stop")
	}
	if err := g.ExitErr(); err != nil {
		t.Errorf("ExitErr after SIGTERM = %v, want nil (clean exit)", err)
	}
}
