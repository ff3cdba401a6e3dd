package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SET": "from-env"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		value, env, file, want, err string
	}{
		{value: "v", want: "v"},
		{env: "SET", want: "from-env"},
		{env: "UNSET", err: "hooks.tokenEnv: environment variable UNSET is not set"},
		{file: file, want: "from-file"},
		{file: filepath.Join(dir, "nope"), err: "does not exist (create it"},
		{file: empty, err: "is empty"},
		{err: "hooks.token is not set"},
	}
	for _, tt := range tests {
		got, err := ResolveSecret("hooks.token", tt.value, tt.env, tt.file, getenv)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ResolveSecret(%q, %q, %q) = %q, %v; want %q, %q", tt.value, tt.env, tt.file, got, err, tt.want, tt.err)
		}
	}
}
