// Package listen decides where gatewayd's listening sockets come from.
//
// A socket can be handed over by systemd socket activation (LISTEN_FDS,
// matched by FileDescriptorName=), by launchd (launch_activate_socket, macOS
// only), or bound by the daemon itself (TCP host:port or a unix socket path).
// Listen addresses are written as "systemd:NAME", "launchd:NAME",
// "unix:/path" or "HOST:PORT" (see ParseSpec). With no address given, Acquire
// auto-detects: systemd activation fds if present, else the launchd socket
// "Listeners" on macOS, else it binds the fallback addresses.
//
// When the OS feature is absent the package degrades quietly: without
// LISTEN_FDS there are simply no systemd sockets, outside launchd
// launch_activate_socket reports ESRCH, on other systems than macOS launchd
// lookups fail with "only available on macOS", and auto-detection falls
// through to plain binding. Asking explicitly for a systemd or launchd socket
// that is not there is an error that names what is available.
package listen

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec kinds and listener sources.
const (
	// KindSystemd is a socket passed by systemd socket activation.
	KindSystemd = "systemd"
	// KindLaunchd is a socket passed by launchd.
	KindLaunchd = "launchd"
	// KindUnix is a unix stream socket bound by the daemon.
	KindUnix = "unix"
	// KindTCP is a TCP socket bound by the daemon.
	KindTCP = "tcp"

	// SourceBind marks listeners the daemon bound itself.
	SourceBind = "bind"
	// SourceMixed is what Set.Source reports when listeners came from
	// more than one source.
	SourceMixed = "mixed"
)

// Spec is one parsed listen address.
type Spec struct {
	// Kind is "systemd", "launchd", "unix" or "tcp".
	Kind string
	// Name is the systemd FileDescriptorName= or launchd socket key
	// (systemd and launchd kinds only).
	Name string
	// Addr is the socket path (unix) or host:port (tcp).
	Addr string
}

// maxUnixPath is the longest unix socket path the kernel accepts (sun_path
// minus the terminating NUL).
func maxUnixPath() int {
	switch runtime.GOOS {
	case "darwin", "freebsd", "netbsd", "openbsd", "dragonfly":
		return 103
	default:
		return 107
	}
}

const specForms = `systemd:NAME, launchd:NAME, unix:/path or HOST:PORT (for example 127.0.0.1:18789 or [::1]:18789)`

// ParseSpec parses a listen address: "systemd:NAME", "launchd:NAME",
// "unix:/path", "HOST:PORT" or "[IPv6]:PORT" (an optional "tcp:" prefix is
// accepted). HOST must be an IP address, "localhost" or empty (all
// interfaces); PORT must be numeric.
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Spec{}, fmt.Errorf("empty listen address: want %s", specForms)
	}
	kind, rest, found := strings.Cut(s, ":")
	if found {
		switch kind {
		case KindSystemd:
			if err := checkName(rest); err != nil {
				return Spec{}, fmt.Errorf("invalid listen address %q: systemd socket name %w (it must match FileDescriptorName= of the socket unit)", s, err)
			}
			return Spec{Kind: KindSystemd, Name: rest}, nil
		case KindLaunchd:
			if err := checkName(rest); err != nil {
				return Spec{}, fmt.Errorf("invalid listen address %q: launchd socket name %w (it must match a key under Sockets in the plist)", s, err)
			}
			return Spec{Kind: KindLaunchd, Name: rest}, nil
		case KindUnix:
			if rest == "" {
				return Spec{}, fmt.Errorf("invalid listen address %q: empty unix socket path; write unix:/path/to/gatewayd.sock", s)
			}
			if strings.ContainsRune(rest, 0) {
				return Spec{}, fmt.Errorf("invalid listen address %q: unix socket path contains a NUL byte", s)
			}
			if n, limit := len(rest), maxUnixPath(); n > limit {
				return Spec{}, fmt.Errorf("invalid listen address %q: unix socket path is %d bytes, the limit on %s is %d; choose a shorter path", s, n, runtime.GOOS, limit)
			}
			return Spec{Kind: KindUnix, Addr: rest}, nil
		case KindTCP:
			s = rest
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Spec{}, fmt.Errorf("invalid listen address %q: %w; want %s", s, err, specForms)
	}
	if _, err := parsePort(port); err != nil {
		return Spec{}, fmt.Errorf("invalid listen address %q: %w; want %s", s, err, specForms)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return Spec{}, fmt.Errorf("invalid listen address %q: host %q is not an IP address or localhost; want %s", s, host, specForms)
		}
	}
	return Spec{Kind: KindTCP, Addr: net.JoinHostPort(host, port)}, nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("is empty")
	}
	if len(name) > 255 {
		return errors.New("is longer than 255 bytes")
	}
	for _, r := range name {
		if r == ':' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains ':' or a control character", name)
		}
	}
	return nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 || strings.HasPrefix(p, "+") {
		return 0, fmt.Errorf("port %q is not a number between 0 and 65535", p)
	}
	return n, nil
}

// BoundByDaemon reports whether the daemon binds the socket itself (unix,
// tcp). For those, String is also the address the auth checks judge
// (IsLoopbackOnly); an activation socket's address is its unit's.
func (s Spec) BoundByDaemon() bool { return s.Kind == KindUnix || s.Kind == KindTCP }

// String renders the Spec in the form ParseSpec accepts.
func (s Spec) String() string {
	switch s.Kind {
	case KindSystemd, KindLaunchd:
		return s.Kind + ":" + s.Name
	case KindUnix:
		return KindUnix + ":" + s.Addr
	default:
		return s.Addr
	}
}

// Listener is one listening socket together with where it came from.
type Listener struct {
	net.Listener
	// Source is "systemd", "launchd" or "bind".
	Source string
	// Name is the systemd fd name, the launchd socket key, or for bound
	// sockets the listen address it was bound from.
	Name string
}

// Set is every listener the gateway serves on.
type Set struct {
	// Listeners in the order they were acquired.
	Listeners []Listener
}

// Source reports where the listeners came from: "systemd", "launchd",
// "bind", or "mixed" when more than one source contributed. An empty set
// reports "".
func (s *Set) Source() string {
	src := ""
	for _, l := range s.Listeners {
		switch src {
		case "":
			src = l.Source
		case l.Source:
		default:
			return SourceMixed
		}
	}
	return src
}

// Addrs returns the address of every listener: "host:port" for TCP and
// "unix:/path" for unix sockets, in the form ParseSpec accepts.
func (s *Set) Addrs() []string {
	out := make([]string, 0, len(s.Listeners))
	for _, l := range s.Listeners {
		out = append(out, addrString(l.Addr()))
	}
	return out
}

func addrString(a net.Addr) string {
	if a.Network() == "unix" || a.Network() == "unixpacket" {
		return KindUnix + ":" + a.String()
	}
	return a.String()
}

// Close closes every listener and returns the joined errors. Sockets that
// came from systemd or launchd stay open in the process's activation cache,
// so a later Acquire hands them out again.
func (s *Set) Close() error {
	var errs []error
	for _, l := range s.Listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close listener %s: %w", addrString(l.Addr()), err))
		}
	}
	return errors.Join(errs...)
}

// AddrInUseError reports that an address could not be bound because
// something else already listens on it. errors.Is(err, syscall.EADDRINUSE)
// holds for it.
type AddrInUseError struct {
	// Addr is the address that was busy ("host:port" or "unix:/path").
	Addr string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *AddrInUseError) Error() string {
	return fmt.Sprintf("cannot listen on %s: %v (another process holds the address: stop it, choose another port, or start with --force)", e.Addr, e.Err)
}

// Unwrap returns the underlying error.
func (e *AddrInUseError) Unwrap() error { return e.Err }

// BindAddrs turns a gateway.bind value and a port into the addresses to bind
// when no socket is handed over. "loopback" gives the IPv4 and IPv6 loopback
// pair, "lan" gives "0.0.0.0:PORT" (Go listens dual-stack on a wildcard
// address, so this also accepts IPv6 where the host has it), and an IP
// address gives that address.
func BindAddrs(bind string, port int) ([]string, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("invalid port %d: want a number between 0 and 65535 (set --port, GATEWAY_PORT or gateway.port)", port)
	}
	p := strconv.Itoa(port)
	switch b := strings.TrimSpace(bind); b {
	case "loopback", "":
		return []string{net.JoinHostPort("127.0.0.1", p), net.JoinHostPort("::1", p)}, nil
	case "lan":
		return []string{net.JoinHostPort("0.0.0.0", p)}, nil
	default:
		ip, err := netip.ParseAddr(strings.Trim(b, "[]"))
		if err != nil {
			return nil, fmt.Errorf("invalid gateway.bind %q: want loopback, lan, or an IP address such as 192.168.1.10 or ::1", bind)
		}
		return []string{net.JoinHostPort(ip.String(), p)}, nil
	}
}

// IsLoopbackOnly reports whether every address is reachable only from this
// host: loopback IPs, "localhost", and unix sockets ("unix:/path" or a bare
// absolute path). An empty list, a wildcard or any other address is not
// loopback-only.
func IsLoopbackOnly(addrs []string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if strings.HasPrefix(a, KindUnix+":") || strings.HasPrefix(a, "/") {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if host == "localhost" {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}

// ActivationAvailable reports whether this process was handed sockets by
// systemd or (on macOS) by launchd under the "Listeners" key. It is meant for
// logging; Acquire does its own detection.
func ActivationAvailable() bool {
	if len(systemdFiles()) > 0 {
		return true
	}
	files, err := launchdFiles(defaultLaunchdName)
	return err == nil && len(files) > 0
}

// defaultLaunchdName is the Sockets key auto-detection asks launchd for.
const defaultLaunchdName = "Listeners"

// Acquire returns the listeners the gateway should serve on.
//
// With specs, each is satisfied in order: systemd:NAME takes every
// activation fd whose FileDescriptorName= is NAME, launchd:NAME asks launchd
// for that socket, unix:/path binds a unix socket (mode 0660, replacing a
// stale socket file nobody answers on) and host:port binds TCP.
//
// Without specs: systemd activation fds if there are any, else (macOS) the
// launchd socket "Listeners", else every fallback address is bound. An IPv6
// fallback address the host cannot use (EADDRNOTAVAIL, EAFNOSUPPORT) is
// skipped as long as another address was bound. A busy address is always an
// error (*AddrInUseError). On error everything opened so far is closed.
func Acquire(specs []Spec, fallback []string, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set := &Set{}
	fail := func(err error) (*Set, error) {
		_ = set.Close()
		return nil, err
	}
	if len(specs) > 0 {
		for _, sp := range specs {
			ls, err := acquireSpec(sp, log)
			if err != nil {
				return fail(err)
			}
			set.Listeners = append(set.Listeners, ls...)
		}
		return set, nil
	}

	if files := systemdFiles(); len(files) > 0 {
		ls := listenersFromFiles(files, KindSystemd)
		if len(ls) == 0 {
			return fail(fmt.Errorf("systemd passed %d file descriptors but none is a listening stream socket; use ListenStream= in the socket unit", len(files)))
		}
		for _, l := range ls {
			log.Info("using systemd socket", "name", l.Name, "addr", addrString(l.Addr()))
		}
		set.Listeners = ls
		return set, nil
	}

	if runtime.GOOS == "darwin" {
		ls, err := acquireLaunchd(defaultLaunchdName)
		switch {
		case err == nil:
			for _, l := range ls {
				log.Info("using launchd socket", "name", l.Name, "addr", addrString(l.Addr()))
			}
			set.Listeners = ls
			return set, nil
		case errors.Is(err, syscall.ESRCH), errors.Is(err, syscall.ENOENT):
			log.Debug("not launched by launchd with a Listeners socket; binding", "reason", err)
		default:
			return fail(err)
		}
	}

	if len(fallback) == 0 {
		return fail(errors.New("no listen address: not socket-activated and no address to bind; set --listen or gateway.bind/gateway.port"))
	}
	var skipped []error
	for _, a := range fallback {
		sp, err := ParseSpec(a)
		if err != nil {
			return fail(err)
		}
		ls, err := acquireSpec(sp, log)
		if err != nil {
			if sp.Kind == KindTCP && isIPv6(sp.Addr) && noIPv6(err) {
				log.Debug("skipping IPv6 address the host cannot bind", "addr", sp.Addr, "err", err)
				skipped = append(skipped, err)
				continue
			}
			return fail(err)
		}
		set.Listeners = append(set.Listeners, ls...)
	}
	if len(set.Listeners) == 0 {
		return fail(fmt.Errorf("could not bind any of %s: %w", strings.Join(fallback, ", "), errors.Join(skipped...)))
	}
	return set, nil
}

func isIPv6(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is6() && !ip.Is4In6()
}

func noIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

func acquireSpec(sp Spec, log *slog.Logger) ([]Listener, error) {
	switch sp.Kind {
	case KindSystemd:
		return acquireSystemd(sp.Name)
	case KindLaunchd:
		return acquireLaunchd(sp.Name)
	case KindUnix:
		l, err := listenUnix(sp.Addr, log)
		if err != nil {
			return nil, err
		}
		return []Listener{{Listener: l, Source: SourceBind, Name: sp.String()}}, nil
	case KindTCP:
		l, err := net.Listen("tcp", sp.Addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, &AddrInUseError{Addr: sp.Addr, Err: err}
			}
			return nil, fmt.Errorf("listen on %s: %w", sp.Addr, err)
		}
		log.Debug("bound", "addr", l.Addr().String())
		return []Listener{{Listener: l, Source: SourceBind, Name: sp.String()}}, nil
	default:
		return nil, fmt.Errorf("unknown listen address kind %q in %q: want %s", sp.Kind, sp.String(), specForms)
	}
}

// listenUnix binds a unix stream socket at path with mode 0660. An existing
// socket file is removed only when nothing answers on it.
func listenUnix(path string, log *slog.Logger) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("listen on unix:%s: the path exists and is not a socket; remove it or choose another path", path)
		}
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			_ = c.Close()
			return nil, &AddrInUseError{Addr: KindUnix + ":" + path, Err: fmt.Errorf("a process answers on the socket: %w", syscall.EADDRINUSE)}
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, syscall.ENOENT) {
			return nil, fmt.Errorf("listen on unix:%s: cannot tell whether the existing socket is in use: %w", path, derr)
		}
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, rerr)
		}
		log.Info("removed stale unix socket", "path", path)
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &AddrInUseError{Addr: KindUnix + ":" + path, Err: err}
		}
		return nil, fmt.Errorf("listen on unix:%s: %w (does the directory exist and is it writable?)", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("set mode 0660 on socket %s: %w", path, err)
	}
	log.Debug("bound", "addr", KindUnix+":"+path)
	return l, nil
}

// listenersFromFiles turns cached activation files into fresh listeners.
// net.FileListener duplicates the descriptor, so closing a listener leaves
// the cached file (and the socket) open for the next Acquire. Files that are
// not listening stream sockets are skipped.
func listenersFromFiles(files []*os.File, source string) []Listener {
	var out []Listener
	for _, f := range files {
		l, err := net.FileListener(f)
		if err != nil {
			continue
		}
		out = append(out, Listener{Listener: l, Source: source, Name: f.Name()})
	}
	return out
}
