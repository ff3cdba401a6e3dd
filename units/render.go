package units

import (
	"bytes"
	"embed"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Scope says which systemd manager a unit is rendered for.
type Scope string

// The two scopes a unit can be rendered for.
const (
	// ScopeUser renders for `systemctl --user`: no User=, no sandboxing that
	// needs privileges, paths resolved by gatewayd from XDG.
	ScopeUser Scope = "user"
	// ScopeSystem renders for the system manager: a dedicated user,
	// StateDirectory=/LogsDirectory=/ConfigurationDirectory= and full
	// hardening.
	ScopeSystem Scope = "system"
)

// DefaultProfile is the name of the profile used when none is given.
const DefaultProfile = "default"

// DefaultUser is the account (and group) the system service runs as; the
// package creates it with systemd-sysusers.
const DefaultUser = "gatewayd"

// DefaultWatchdogSec is the WatchdogSec= used when Params.WatchdogSec is 0.
const DefaultWatchdogSec = 30

// Params describe one profile's pair of units.
type Params struct {
	// Profile is the profile name; "" or "default" mean the default profile.
	Profile string
	// Scope is ScopeUser or ScopeSystem.
	Scope Scope
	// Port is used when ListenAddrs is empty: the socket then listens on
	// 127.0.0.1:Port and [::1]:Port.
	Port int
	// ListenAddrs are the socket's addresses, "host:port" ("127.0.0.1:18789",
	// "[::1]:18789", "0.0.0.0:18789") or an absolute path for a Unix socket.
	ListenAddrs []string
	// ExecPath is the absolute path of the gatewayd binary.
	ExecPath string
	// Version is the gatewayctl/gatewayd version, written to the header and
	// to GATEWAY_SERVICE_VERSION.
	Version string
	// User and Group the system service runs as; default DefaultUser.
	// Ignored in user scope.
	User, Group string
	// WatchdogSec is the service's WatchdogSec=; 0 means
	// DefaultWatchdogSec, a negative value disables the watchdog.
	WatchdogSec int
}

// File is one rendered unit file.
type File struct {
	// Name is the unit name, e.g. "gatewayd.socket".
	Name string
	// Data is the file's content.
	Data []byte
}

// Marker environment carried by every rendered unit, so status and doctor can
// tell gatewayd's units (and their profiles) from look-alikes.
const (
	// EnvMarker is set to MarkerValue on every gatewayd unit and plist.
	EnvMarker = "GATEWAY_SERVICE_MARKER"
	// EnvKind is set to KindValue.
	EnvKind = "GATEWAY_SERVICE_KIND"
	// EnvVersion is set to the version that rendered the unit.
	EnvVersion = "GATEWAY_SERVICE_VERSION"
	// EnvProfile is set to the profile name ("default", "dev", ...).
	EnvProfile = "GATEWAY_PROFILE"
	// MarkerValue is the value of GATEWAY_SERVICE_MARKER.
	MarkerValue = "gatewayd"
	// KindValue is the value of GATEWAY_SERVICE_KIND.
	KindValue = "gateway"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.tmpl"))

var (
	profileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	accountRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
)

// Accounts returns the user and group a system-scope job runs as, for the
// systemd unit and the LaunchDaemon alike: an empty name takes def, and
// each must be a portable account name (a letter or underscore, then up to
// 31 letters, digits, '_', '.' or '-'). The error names the first invalid
// one; callers add what the account is for.
func Accounts(user, group, def string) (string, string, error) {
	if user == "" {
		user = def
	}
	if group == "" {
		group = def
	}
	for _, a := range []string{user, group} {
		if !accountRE.MatchString(a) {
			return "", "", fmt.Errorf("invalid user or group name %q", a)
		}
	}
	return user, group, nil
}

// ProfileName returns the canonical profile name: "default" for "" and
// "default", otherwise the name itself.
func ProfileName(profile string) string {
	if profile == "" {
		return DefaultProfile
	}
	return profile
}

// UnitBase returns the unit name without suffix for a profile: "gatewayd"
// for the default profile, "gatewayd-<profile>" otherwise. It is also the
// socket's FileDescriptorName= and the directory name under
// StateDirectory=/LogsDirectory=/ConfigurationDirectory=.
func UnitBase(profile string) string {
	if p := ProfileName(profile); p != DefaultProfile {
		return "gatewayd-" + p
	}
	return "gatewayd"
}

// ServiceName returns the profile's service unit name, e.g. "gatewayd.service".
func ServiceName(profile string) string { return UnitBase(profile) + ".service" }

// SocketName returns the profile's socket unit name, e.g. "gatewayd.socket".
func SocketName(profile string) string { return UnitBase(profile) + ".socket" }

// DefaultListenAddrs returns the loopback pair for a port:
// "127.0.0.1:PORT" and "[::1]:PORT".
func DefaultListenAddrs(port int) []string {
	p := strconv.Itoa(port)
	return []string{net.JoinHostPort("127.0.0.1", p), net.JoinHostPort("::1", p)}
}

// ValidateProfile reports whether a profile name can be used in unit names
// and launchd labels.
func ValidateProfile(profile string) error {
	if profile == "" {
		return nil
	}
	if !profileRE.MatchString(profile) {
		return fmt.Errorf("invalid profile name %q: use letters, digits, '-' and '_' (at most 64, starting with a letter or digit)", profile)
	}
	return nil
}

type renderData struct {
	Version, ProfileName, Base, Systemctl string
	Scope                                 Scope
	Listen                                []string
	FreeBind                              bool
	ExecStart                             string
	WatchdogSec                           int
	Environment                           []string
	User, Group                           string
}

// Render renders the profile's socket and service units, in that order. The
// output is deterministic: the same Params always give the same bytes.
func Render(p Params) ([]File, error) {
	d, err := prepare(p)
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, 2)
	for _, suffix := range []string{".socket", ".service"} {
		var buf bytes.Buffer
		if err := templates.ExecuteTemplate(&buf, "gatewayd"+suffix+".tmpl", d); err != nil {
			return nil, fmt.Errorf("render %s%s: %w", d.Base, suffix, err)
		}
		files = append(files, File{Name: d.Base + suffix, Data: buf.Bytes()})
	}
	return files, nil
}

func prepare(p Params) (*renderData, error) {
	if err := ValidateProfile(p.Profile); err != nil {
		return nil, err
	}
	d := &renderData{
		ProfileName: ProfileName(p.Profile),
		Base:        UnitBase(p.Profile),
		Scope:       p.Scope,
	}
	switch p.Scope {
	case ScopeSystem:
		d.Systemctl = "systemctl"
		var err error
		if d.User, d.Group, err = Accounts(p.User, p.Group, DefaultUser); err != nil {
			return nil, fmt.Errorf("%w for the system unit: use a POSIX account name such as %q", err, DefaultUser)
		}
	case ScopeUser:
		d.Systemctl = "systemctl --user"
	default:
		return nil, fmt.Errorf("invalid unit scope %q: use %q or %q", p.Scope, ScopeUser, ScopeSystem)
	}
	if p.Version == "" || strings.ContainsAny(p.Version, " \t\r\n\"'\\%$") {
		return nil, fmt.Errorf("invalid version %q for the unit marker: pass the build version (no spaces or quotes)", p.Version)
	}
	d.Version = p.Version
	if !filepath.IsAbs(p.ExecPath) || strings.ContainsAny(p.ExecPath, "\r\n") {
		return nil, fmt.Errorf("invalid gatewayd path %q for ExecStart=: pass an absolute path to the binary", p.ExecPath)
	}

	addrs := p.ListenAddrs
	if len(addrs) == 0 {
		if p.Port <= 0 || p.Port > 65535 {
			return nil, fmt.Errorf("no listen address for the socket unit: set ListenAddrs or a Port in 1-65535 (got %d)", p.Port)
		}
		addrs = DefaultListenAddrs(p.Port)
	}
	for _, a := range addrs {
		v, freeBind, err := listenValue(a)
		if err != nil {
			return nil, err
		}
		d.Listen = append(d.Listen, v)
		d.FreeBind = d.FreeBind || freeBind
	}

	args := []string{p.ExecPath}
	if d.ProfileName != DefaultProfile {
		args = append(args, "--profile", d.ProfileName)
	}
	args = append(args, "--listen", "systemd:"+d.Base)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = quoteExec(a)
	}
	d.ExecStart = strings.Join(quoted, " ")

	switch {
	case p.WatchdogSec == 0:
		d.WatchdogSec = DefaultWatchdogSec
	case p.WatchdogSec > 0:
		d.WatchdogSec = p.WatchdogSec
	}
	d.Environment = []string{
		EnvMarker + "=" + MarkerValue,
		EnvKind + "=" + KindValue,
		EnvVersion + "=" + d.Version,
		EnvProfile + "=" + d.ProfileName,
	}
	return d, nil
}

// listenValue checks one listen address and returns its ListenStream= value
// and whether it needs FreeBind= (a specific address that may not be
// configured yet at boot).
func listenValue(a string) (string, bool, error) {
	if strings.HasPrefix(a, "/") {
		if strings.ContainsAny(a, " \t\r\n%") {
			return "", false, fmt.Errorf("invalid unix socket path %q for ListenStream=: avoid spaces and '%%'", a)
		}
		return a, false, nil
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return "", false, fmt.Errorf("invalid listen address %q for ListenStream=: use IP:PORT such as 127.0.0.1:18789 or [::1]:18789: %w", a, err)
	}
	if ap.Port() == 0 {
		return "", false, fmt.Errorf("invalid listen address %q for ListenStream=: the port must not be 0", a)
	}
	ip := ap.Addr()
	if ip.Zone() != "" {
		return "", false, fmt.Errorf("invalid listen address %q for ListenStream=: zoned IPv6 addresses are not supported, use the interface's address", a)
	}
	return ap.String(), !ip.IsLoopback() && !ip.IsUnspecified(), nil
}

// quoteExec quotes one ExecStart= word: '%' and '$' are escaped so systemd
// does not expand them, and words with spaces or quotes are double-quoted.
func quoteExec(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}
