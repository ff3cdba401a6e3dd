package service

import (
	"slices"
	"strings"
)

// secretFlags returns the names of the command-line options in argv that
// carry a secret (--token X, --password=X, -api-key X, …), and of secret
// variables set through env(1) before the command (env GATEWAY_TOKEN=X
// gatewayd). Values are never returned: they end up in messages.
func secretFlags(argv []string) []string {
	var out []string
	envPrefix := len(argv) > 0 && (argv[0] == "env" || strings.HasSuffix(argv[0], "/env"))
	for i, w := range argv {
		if i == 0 {
			continue
		}
		if envPrefix && !strings.HasPrefix(w, "-") {
			if k, v, ok := strings.Cut(w, "="); ok {
				if len(secretVars(map[string]string{k: v})) > 0 {
					out = append(out, k)
				}
				continue
			}
			envPrefix = false // the command itself
		}
		if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if !secretName(name) {
			continue
		}
		if hasVal && val != "" || !hasVal && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			out = append(out, strings.TrimSuffix(w, "="+val))
		}
	}
	return slices.Compact(out)
}

// secretName reports whether an option name names a secret.
func secretName(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	for _, s := range []string{"token", "password", "passwd", "secret", "api-key", "apikey"} {
		if n == s || strings.HasSuffix(n, "-"+s) || strings.HasPrefix(n, s+"-") {
			return !strings.HasSuffix(n, "-file") && !strings.HasSuffix(n, "-env")
		}
	}
	return false
}
