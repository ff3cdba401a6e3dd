package service

import (
	"slices"
	"testing"
)

func TestSecretFlags(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want []string
	}{
		{[]string{"/usr/bin/gatewayd"}, nil},
		{[]string{"/usr/bin/gatewayd", "--token", "abc"}, []string{"--token"}},
		{[]string{"/usr/bin/gatewayd", "--password=hunter2", "--port", "1"}, []string{"--password"}},
		{[]string{"/usr/bin/gatewayd", "-token=x", "--verbose"}, []string{"-token"}},
		{[]string{"gw", "--hooks-token", "x", "--openai-api-key", "y"}, []string{"--hooks-token", "--openai-api-key"}},
		// A file or variable name is where the secret is, not the secret.
		{[]string{"gw", "--token-file", "/var/lib/t", "--token-env", "T"}, nil},
		// A flag with no value given is not a secret.
		{[]string{"gw", "--token", "--verbose"}, nil},
		{[]string{"gw", "--password="}, nil},
		{[]string{"/usr/bin/env", "GATEWAY_TOKEN=x", "LANG=C", "gw", "--profile", "p"}, []string{"GATEWAY_TOKEN"}},
		{[]string{"env", "GATEWAY_PORT=1", "gw", "KEY=not-env"}, nil},
	} {
		if got := secretFlags(c.argv); !slices.Equal(got, c.want) {
			t.Errorf("secretFlags(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}
