package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/units"
)

// secretKeys are environment variables that carry the gateway's secrets.
var secretKeys = []string{"GATEWAY_TOKEN", "GATEWAY_PASSWORD"}

// secretVars returns the names of the variables in env that hold a secret:
// GATEWAY_TOKEN/GATEWAY_PASSWORD, any *TOKEN*/*PASSWORD*/*SECRET* name with a
// value, and values that look like a generated token (long, random-looking).
// The marker variables never count.
func secretVars(env map[string]string) []string {
	var out []string
	for k, v := range env {
		switch k {
		case units.EnvMarker, units.EnvKind, units.EnvVersion, units.EnvProfile:
			continue
		}
		up := strings.ToUpper(k)
		switch {
		case slices.Contains(secretKeys, up):
		case v != "" && (strings.Contains(up, "TOKEN") || strings.Contains(up, "PASSWORD") ||
			strings.Contains(up, "PASSWD") || strings.Contains(up, "SECRET") || strings.HasSuffix(up, "API_KEY")):
		case looksLikeToken(v):
		default:
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// looksLikeToken reports whether a value looks like a generated secret: at
// least 24 characters of base64/hex alphabet, mixing letters and digits, and
// not a path or URL.
func looksLikeToken(v string) bool {
	if len(v) < 24 || strings.ContainsAny(v, "/:. ") {
		return false
	}
	var letters, digits int
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		case r >= '0' && r <= '9':
			digits++
		case r == '-' || r == '_' || r == '+' || r == '=':
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}

// markerProblems compares a unit's or plist's environment with the marker
// the target expects and returns one line per difference.
func markerProblems(env map[string]string, t Target) []string {
	want := []struct{ key, val string }{
		{units.EnvMarker, units.MarkerValue},
		{units.EnvKind, units.KindValue},
		{units.EnvVersion, t.Version},
		{units.EnvProfile, units.ProfileName(t.Profile)},
	}
	var out []string
	for _, w := range want {
		got, ok := env[w.key]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s is missing (want %q)", w.key, w.val))
		case got != w.val:
			out = append(out, fmt.Sprintf("%s=%q, want %q", w.key, got, w.val))
		}
	}
	return out
}

// checkConfig is the config-invalid check, shared by both managers.
func checkConfig(t Target) CheckResult {
	if t.ConfigPath == "" {
		return CheckResult{Severity: SeveritySkipped, Message: "no config path given"}
	}
	l, err := config.Load(t.ConfigPath)
	if err != nil {
		return CheckResult{
			Severity: SeverityError,
			Message:  err.Error(),
			Fix:      manual(fmt.Sprintf("edit %s (the error names the line and column), then `gatewayctl restart`", t.ConfigPath)),
		}
	}
	if !l.Exists {
		return CheckResult{Severity: SeverityInfo, Message: fmt.Sprintf("no config file at %s: built-in defaults apply", t.ConfigPath)}
	}
	return CheckResult{Message: fmt.Sprintf("config %s is valid", t.ConfigPath)}
}

// logTail returns up to n of the last lines of a JSON-lines (or plain) log
// file that report errors or warnings, or the last n lines when none does.
func logTail(path string, n int) []string {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if len(data) > 256<<10 {
		data = data[len(data)-256<<10:]
	}
	var all, bad []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		all = append(all, line)
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level != "" {
			if l := strings.ToUpper(rec.Level); l == "ERROR" || l == "WARN" {
				bad = append(bad, line)
			}
		} else if strings.Contains(strings.ToLower(line), "error") {
			bad = append(bad, line)
		}
	}
	pick := bad
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) > n {
		pick = pick[len(pick)-n:]
	}
	return pick
}

// probeResult is what a connect to an address found.
type probeResult struct {
	addr    string
	open    bool // something accepts TCP connections
	gateway bool // it sent a connect.challenge: a gateway of our protocol
}

// probe connects to addr ("host:port") and, when that works, opens a
// WebSocket on "/" and waits briefly for the protocol's connect.challenge.
func probe(ctx context.Context, addr string) probeResult {
	r := probeResult{addr: addr}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return r
	}
	c.Close()
	r.open = true
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return r
	}
	defer ws.CloseNow()
	_, msg, err := ws.Read(ctx)
	if err != nil {
		return r
	}
	var ev struct {
		Type  string `json:"type"`
		Event string `json:"event"`
	}
	if json.Unmarshal(msg, &ev) == nil && ev.Type == "event" && ev.Event == "connect.challenge" {
		r.gateway = true
	}
	return r
}

// portHolders probes the addresses skip does not rule out and returns
// those something listens on, and who: another process, or another gateway
// when one answers the protocol.
func portHolders(ctx context.Context, addrs []string, skip func(string) bool) (taken []string, who string) {
	gateway := false
	for _, a := range addrs {
		if skip != nil && skip(a) {
			continue
		}
		if p := probe(ctx, a); p.open {
			taken = append(taken, a)
			gateway = gateway || p.gateway
		}
	}
	who = "another process"
	if gateway {
		who = "another gateway (it answers the protocol's connect.challenge)"
	}
	return taken, who
}

// normAddr canonicalizes "host:port" so "[::1]:80" and "[0:0::1]:80" compare
// equal; other strings (Unix paths) are returned as they are.
func normAddr(a string) string {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return ap.String()
	}
	return a
}

// ports returns the TCP ports of addresses.
func ports(addrs []string) []uint16 {
	var out []uint16
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && !slices.Contains(out, ap.Port()) {
			out = append(out, ap.Port())
		}
	}
	return out
}

// sameAddrs reports whether two address lists hold the same addresses.
func sameAddrs(a, b []string) bool {
	na := make([]string, len(a))
	for i, x := range a {
		na[i] = normAddr(x)
	}
	nb := make([]string, len(b))
	for i, x := range b {
		nb[i] = normAddr(x)
	}
	slices.Sort(na)
	slices.Sort(nb)
	return slices.Equal(slices.Compact(na), slices.Compact(nb))
}

// readIfExists reads a file; a missing file gives nil, nil.
func readIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
