package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// A secret that is not in the config file itself is configured as three
// keys: NAME (the value), NAMEEnv (an environment variable) and NAMEFile (a
// file). Webhook secrets, the hooks token and the chat channels' tokens
// and passwords work this way.

// ResolveSecret returns a secret configured as a value, an environment
// variable (looked up with getenv) or a file (white space trimmed). key
// names the config key in errors, like "hooks.token".
func ResolveSecret(key, value, env, file string, getenv func(string) string) (string, error) {
	switch {
	case value != "":
		return value, nil
	case env != "":
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return "", fmt.Errorf("%sEnv: environment variable %s is not set or empty (set it in the service's environment, e.g. a systemd drop-in Environment= or EnvironmentFile=)", key, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%sFile: %s does not exist (create it with the secret, mode 0600): %w", key, file, err)
		}
		if err != nil {
			return "", fmt.Errorf("%sFile: read %s: %w (make it readable by the gateway's user)", key, file, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%sFile: %s is empty (write the secret into it)", key, file)
		}
		return v, nil
	}
	return "", fmt.Errorf("%s is not set (set %s, %sEnv or %sFile)", key, key, key, key)
}

// checkSecretSource checks that at most one (exactly one when required) of
// a secret's value, env and file is set.
func checkSecretSource(prefix, name, value, env, file string, required bool) *Error {
	key := prefix + "." + name
	n := 0
	for _, s := range []string{value, env, file} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return &Error{Key: key, Msg: fmt.Sprintf("set only one of %s, %sEnv and %sFile", name, name, name)}
	case n == 0 && required:
		return &Error{Key: key, Msg: fmt.Sprintf("is required (set %s, %sEnv or %sFile)", name, name, name)}
	}
	if err := checkSecret(key, value); err != nil {
		return err
	}
	if file != "" && !strings.HasPrefix(file, "/") {
		return &Error{Key: key + "File", Msg: fmt.Sprintf("%q is not an absolute path", file)}
	}
	return nil
}
