package main

import "strings"

// secretFlagsOnCommandLine returns the secret flags (--token, --password)
// given as command-line arguments: /proc/PID/cmdline and ps show them to
// every local user, unlike GATEWAY_TOKEN in the environment or a file.
func secretFlagsOnCommandLine(args []string) []string {
	var out []string
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "token" && name != "password") {
			continue
		}
		if f := "--" + name; len(out) == 0 || out[len(out)-1] != f {
			out = append(out, f)
		}
	}
	return out
}

// secretFlagWarning is the startup warning for secretFlagsOnCommandLine,
// or "" when there are none.
func secretFlagWarning(args []string) string {
	flags := secretFlagsOnCommandLine(args)
	if len(flags) == 0 {
		return ""
	}
	return strings.Join(flags, " and ") + " on the command line is visible to every local user (ps, /proc/PID/cmdline): " +
		"pass the secret as GATEWAY_TOKEN / GATEWAY_PASSWORD in the environment (a systemd EnvironmentFile= of mode 0600), " +
		"set gateway.auth.token in the config file, or leave it out and use the token gatewayd generates in its state directory"
}
