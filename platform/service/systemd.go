package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/units"
)

// DefaultLingerDir is where logind keeps one file per user with lingering on.
const DefaultLingerDir = "/var/lib/systemd/linger"

// SystemdOptions configure a systemd Manager beyond NewSystemd's defaults;
// tests use them to point every path into a sandbox.
type SystemdOptions struct {
	// Scope is ScopeUser or ScopeSystem.
	Scope string
	// BusAddress is the D-Bus address of the manager's bus; "" means the
	// default user bus ($DBUS_SESSION_BUS_ADDRESS, else
	// $XDG_RUNTIME_DIR/bus) or the system bus.
	BusAddress string
	// UnitDir is where units are installed; "" means
	// $XDG_CONFIG_HOME/systemd/user of the manager's own environment (user
	// scope) or /etc/systemd/system.
	UnitDir string
	// OtherScopeDirs are the unit directories of the other scope, checked
	// so that one profile is not installed twice; nil means the standard
	// ones (/etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system
	// and /lib/systemd/system for user scope; /etc/systemd/user,
	// /usr/lib/systemd/user and the invoking user's
	// $XDG_CONFIG_HOME/systemd/user for system scope).
	OtherScopeDirs []string
	// LingerDir is logind's linger directory; "" means DefaultLingerDir.
	LingerDir string
	// BackupDir is where doctor --fix saves the files it replaces; ""
	// means BackupDirName next to the unit directory.
	BackupDir string
	// User is the account whose lingering is checked; "" means $USER of
	// the manager's environment, else the current user.
	User string
	// Logger receives debug and error lines; nil discards them.
	Logger *slog.Logger
}

// systemdManager is the systemd Manager.
type systemdManager struct {
	scope     string
	busAddr   string
	unitDir   string
	other     []string
	unitPath  []string
	lingerDir string
	backupDir string
	user      string
	log       *slog.Logger
}

// NewSystemd connects to the systemd manager of scope (ScopeUser or
// ScopeSystem) on busAddress ("" = the default user or system bus), checks
// that it answers, and returns a Manager for it.
func NewSystemd(ctx context.Context, scope string, busAddress string) (Manager, error) {
	return NewSystemdWithOptions(ctx, SystemdOptions{Scope: scope, BusAddress: busAddress})
}

// NewSystemdWithOptions is NewSystemd with every path configurable.
func NewSystemdWithOptions(ctx context.Context, o SystemdOptions) (Manager, error) {
	if o.Scope != ScopeUser && o.Scope != ScopeSystem {
		return nil, fmt.Errorf("invalid service scope %q: use %q or %q", o.Scope, ScopeUser, ScopeSystem)
	}
	m := &systemdManager{
		scope:     o.Scope,
		busAddr:   o.BusAddress,
		unitDir:   o.UnitDir,
		other:     o.OtherScopeDirs,
		lingerDir: o.LingerDir,
		backupDir: o.BackupDir,
		user:      o.User,
		log:       discard(o.Logger),
	}
	if m.lingerDir == "" {
		m.lingerDir = DefaultLingerDir
	}
	s, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	env, err := s.managerStrings(ctx, "Environment")
	if err != nil {
		return nil, m.noManager(err)
	}
	menv := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			menv[k] = v
		}
	}
	m.unitPath, _ = s.managerStrings(ctx, "UnitPath")
	if m.unitDir == "" {
		m.unitDir = defaultUnitDir(m.scope, menv)
	}
	if m.other == nil {
		m.other = defaultOtherDirs(m.scope)
	}
	if m.backupDir == "" {
		m.backupDir = filepath.Join(filepath.Dir(m.unitDir), BackupDirName)
	}
	if m.user == "" {
		m.user = menv["USER"]
	}
	if m.user == "" {
		if u, err := user.Current(); err == nil {
			m.user = u.Username
		}
	}
	m.log.Debug("systemd manager", "scope", m.scope, "unitDir", m.unitDir, "user", m.user)
	return m, nil
}

func defaultUnitDir(scope string, menv map[string]string) string {
	if scope == ScopeSystem {
		return "/etc/systemd/system"
	}
	get := func(k string) string {
		if v := menv[k]; v != "" {
			return v
		}
		return os.Getenv(k)
	}
	if x := get("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "systemd", "user")
	}
	return filepath.Join(get("HOME"), ".config", "systemd", "user")
}

func defaultOtherDirs(scope string) []string {
	if scope == ScopeUser {
		return []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	}
	dirs := []string{"/etc/systemd/user", "/usr/lib/systemd/user"}
	if x := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		dirs = append(dirs, filepath.Join(x, "systemd", "user"))
	} else if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".config", "systemd", "user"))
	}
	return dirs
}

func (m *systemdManager) Name() string { return "systemd" }

// systemctl is the command line an operator types for this scope.
func (m *systemdManager) systemctl() string {
	if m.scope == ScopeUser {
		return "systemctl --user"
	}
	return "systemctl"
}

func (m *systemdManager) noManager(err error) error {
	if m.scope == ScopeUser {
		name := "$USER"
		if u, uerr := user.Current(); uerr == nil {
			name = u.Username
		}
		return fmt.Errorf("no systemd user manager for %s (no login session and lingering off, so nothing runs it): `sudo loginctl enable-linger %s` starts it now and at every boot (or `gatewayctl install --linger`; as root `gatewayctl install --user %s --linger`): %w", name, name, name, err)
	}
	return fmt.Errorf("no systemd system manager answers on D-Bus: is systemd PID 1 here? (use the plain `gatewayd` binary without a unit otherwise): %w", err)
}

// session is one pair of D-Bus connections to the manager: go-systemd's and
// a raw one for the calls go-systemd lacks.
type session struct {
	sd  *sddbus.Conn
	bus *godbus.Conn
}

func (s *session) Close() {
	if s.sd != nil {
		s.sd.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
}

func (m *systemdManager) busAddress() (string, error) {
	if m.busAddr != "" {
		return m.busAddr, nil
	}
	if m.scope == ScopeSystem {
		return systemBusAddress(), nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		rt = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	p := filepath.Join(rt, "bus")
	if _, err := os.Stat(p); err != nil {
		return "", m.noManager(fmt.Errorf("no user bus at %s", p))
	}
	return "unix:path=" + p, nil
}

func (m *systemdManager) dial(ctx context.Context) (*godbus.Conn, error) {
	addr, err := m.busAddress()
	if err != nil {
		return nil, err
	}
	conn, err := dialBus(ctx, addr)
	if err != nil {
		return nil, m.noManager(err)
	}
	return conn, nil
}

// systemBusAddress is $DBUS_SYSTEM_BUS_ADDRESS, else the well-known
// system bus socket.
func systemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/run/dbus/system_bus_socket"
}

// dialBus connects to the D-Bus bus at addr as this process's uid
// (EXTERNAL auth) and says Hello; the error names the step and addr.
func dialBus(ctx context.Context, addr string) (*godbus.Conn, error) {
	conn, err := godbus.Dial(addr, godbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate on %s: %w", addr, err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hello on %s: %w", addr, err)
	}
	return conn, nil
}

// openFor checks that t is of the manager's scope and opens a session;
// close it when done.
func (m *systemdManager) openFor(ctx context.Context, t Target) (*session, error) {
	if err := checkScope(t, m.scope); err != nil {
		return nil, err
	}
	return m.open(ctx)
}

// open connects a session; close it when done.
func (m *systemdManager) open(ctx context.Context) (*session, error) {
	bus, err := m.dial(ctx)
	if err != nil {
		return nil, err
	}
	sd, err := sddbus.NewConnection(func() (*godbus.Conn, error) { return m.dial(ctx) })
	if err != nil {
		bus.Close()
		return nil, err
	}
	return &session{sd: sd, bus: bus}, nil
}

func (s *session) manager() godbus.BusObject {
	return s.bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
}

// managerStrings reads an "as" property of org.freedesktop.systemd1.Manager.
func (s *session) managerStrings(ctx context.Context, prop string) ([]string, error) {
	var v godbus.Variant
	err := s.manager().CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", prop).Store(&v)
	if err != nil {
		return nil, fmt.Errorf("read manager property %s: %w", prop, err)
	}
	out, _ := v.Value().([]string)
	return out, nil
}

// unitFileState calls GetUnitFileState (which go-systemd lacks): "enabled",
// "disabled", "static", "masked", "masked-runtime", ...; "" when the manager
// knows no such unit file.
func (s *session) unitFileState(ctx context.Context, name string) (string, error) {
	var st string
	err := s.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.GetUnitFileState", 0, name).Store(&st)
	if err != nil {
		var de godbus.Error
		if errors.As(err, &de) && (strings.HasSuffix(de.Name, "NoSuchUnit") || strings.HasSuffix(de.Name, "FileNotFound")) {
			return "", nil
		}
		if strings.Contains(err.Error(), "No such file") {
			return "", nil
		}
		return "", fmt.Errorf("GetUnitFileState %s: %w", name, err)
	}
	return st, nil
}

// loaded calls GetUnit (which go-systemd lacks): true when the unit is loaded
// in the manager (GetUnit, unlike property reads, does not load it).
func (s *session) loaded(ctx context.Context, name string) (bool, error) {
	var p godbus.ObjectPath
	err := s.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.GetUnit", 0, name).Store(&p)
	if err != nil {
		var de godbus.Error
		if errors.As(err, &de) && strings.HasSuffix(de.Name, "NoSuchUnit") {
			return false, nil
		}
		return false, fmt.Errorf("GetUnit %s: %w", name, err)
	}
	return true, nil
}

// job runs one start/stop/restart job and waits for its result.
func (m *systemdManager) job(ctx context.Context, verb, unit string, f jobFunc) error {
	ch := make(chan string, 1)
	if _, err := f(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s: see `%s status %s` and its log", verb, unit, res, m.systemctl(), unit)
		}
		m.log.Debug("systemd job done", "verb", verb, "unit", unit)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}

func (m *systemdManager) params(t Target) (units.Params, error) {
	if err := checkScope(t, m.scope); err != nil {
		return units.Params{}, err
	}
	return units.Params{
		Profile:     t.Profile,
		Scope:       units.Scope(m.scope),
		Port:        t.Port,
		ListenAddrs: t.ListenAddrs,
		ExecPath:    t.ExecPath,
		Version:     t.Version,
		WatchdogSec: t.WatchdogSec,
	}, nil
}

func (m *systemdManager) render(t Target) ([]units.File, error) {
	p, err := m.params(t)
	if err != nil {
		return nil, err
	}
	files, err := units.Render(p)
	if err != nil {
		return nil, fmt.Errorf("render units for profile %s: %w", units.ProfileName(t.Profile), err)
	}
	return files, nil
}

// otherScope returns the path of a unit of this profile installed in the
// other scope, or "".
func (m *systemdManager) otherScope(names ...string) string {
	for _, dir := range m.other {
		if filepath.Clean(dir) == filepath.Clean(m.unitDir) {
			continue
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			if fi, err := os.Lstat(p); err == nil {
				if fi.Mode()&os.ModeSymlink != 0 {
					if tgt, _ := os.Readlink(p); units.IsMaskTarget(tgt) {
						continue
					}
				}
				if !m.otherScopeInstall(dir, n) {
					continue // a packaged user unit nobody uses
				}
				return p
			}
		}
	}
	return ""
}

func (m *systemdManager) otherScopeName() string {
	if m.scope == ScopeUser {
		return ScopeSystem
	}
	return ScopeUser
}

// writeFiles writes the rendered units that need it.
func writeFiles(files []InstalledFile) error {
	for _, f := range files {
		if f.Action == ActionUnchanged {
			continue
		}
		// A symlink (redirected unit) is replaced, not written through.
		if fi, err := os.Lstat(f.Path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if err := os.Remove(f.Path); err != nil {
				return fmt.Errorf("replace symlink %s: %w", f.Path, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("create unit directory %s: %w (run as the right user, or with sudo for --system)", filepath.Dir(f.Path), err)
		}
		if err := config.WriteFileAtomic(f.Path, f.Data, 0o644); err != nil {
			return fmt.Errorf("write unit %s: %w (run as the right user, or with sudo for --system)", f.Path, err)
		}
	}
	return nil
}

// plan compares the rendered units with the files on disk.
func (m *systemdManager) plan(files []units.File, force bool) []InstalledFile {
	out := make([]InstalledFile, len(files))
	for i, f := range files {
		p := m.installTarget(f)
		action := ActionCreate
		if fi, err := os.Lstat(p); err == nil {
			action = ActionUpdate
			if fi.Mode().IsRegular() {
				if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, f.Data) {
					action = ActionUnchanged
					if force {
						action = ActionRewrite
					}
				}
			}
		}
		out[i] = InstalledFile{Path: p, Action: action, Data: f.Data}
	}
	return out
}

// Install implements Manager.
func (m *systemdManager) Install(ctx context.Context, t Target, o InstallOptions) (*InstallResult, error) {
	files, err := m.render(t)
	if err != nil {
		return nil, err
	}
	sock, svc := files[0].Name, files[1].Name
	if p := m.otherScope(sock, svc); p != "" {
		return nil, fmt.Errorf("profile %s is already installed in %s scope at %s: uninstall it there first (`gatewayctl uninstall --%s%s`) or pick another --profile",
			units.ProfileName(t.Profile), m.otherScopeName(), p, m.otherScopeName(), profileFlag(t.Profile))
	}
	res := &InstallResult{Manager: m.Name(), Scope: m.scope, DryRun: o.DryRun}
	res.Files = m.plan(files, o.Force)
	var sockChanged, svcChanged, updated bool
	for _, f := range res.Files {
		if f.Action == ActionUpdate && !o.Force {
			// Refuse to silently overwrite an operator's edits.
			return nil, fmt.Errorf("%s differs from what this version renders (edited by hand, or from another version): run `gatewayctl doctor` to see how, then `gatewayctl install --force` to replace it", f.Path)
		}
		changed := f.Action != ActionUnchanged
		if strings.HasSuffix(f.Path, ".socket") {
			sockChanged = changed
		} else {
			svcChanged = changed
		}
		updated = updated || f.Action == ActionUpdate || f.Action == ActionRewrite
	}
	res.AlreadyInstalled = !sockChanged && !svcChanged
	if m.scope == ScopeUser {
		on := m.lingering()
		res.Linger = &on
		if !on {
			res.Notes = append(res.Notes, fmt.Sprintf("lingering is off for %s: the gateway stops when you log out and starts only at login; keep it running from boot with `loginctl enable-linger %s` (or `gatewayctl install --linger`)", m.user, m.user))
		}
	}
	if res.AlreadyInstalled {
		res.Notes = append(res.Notes, "already installed: the unit files are identical, nothing was restarted")
	}
	if !res.AlreadyInstalled {
		res.Actions = append(res.Actions, "write "+strings.Join(changedPaths(res.Files), " "), "daemon-reload")
	}
	enable := enableList(files)
	res.Actions = append(res.Actions, "enable "+strings.Join(enable, " "), "start "+sock)
	if updated {
		if sockChanged {
			res.Actions = append(res.Actions, "stop "+svc, "restart "+sock)
		} else {
			res.Actions = append(res.Actions, "try-restart "+svc)
		}
	}
	if o.DryRun {
		return res, nil
	}

	s, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if st, _ := s.unitFileState(ctx, sock); strings.HasPrefix(st, "masked") {
		return nil, fmt.Errorf("%s is masked: unmask it first with `%s unmask %s %s`", sock, m.systemctl(), sock, svc)
	}
	if !res.AlreadyInstalled {
		if err := writeFiles(res.Files); err != nil {
			return nil, err
		}
		m.log.Info("wrote unit files", "files", changedPaths(res.Files))
	}
	if err := m.enable(ctx, s, enable...); err != nil {
		return nil, err
	}
	if updated && sockChanged {
		if err := m.job(ctx, "stop", svc, s.sd.StopUnitContext); err != nil {
			return nil, err
		}
		_ = s.sd.ResetFailedUnitContext(ctx, sock)
		if err := m.job(ctx, "restart", sock, s.sd.RestartUnitContext); err != nil {
			return nil, err
		}
	} else {
		_ = s.sd.ResetFailedUnitContext(ctx, sock)
		if err := m.job(ctx, "start", sock, s.sd.StartUnitContext); err != nil {
			return nil, err
		}
		if updated {
			if err := m.job(ctx, "try-restart", svc, s.sd.TryRestartUnitContext); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func profileFlag(profile string) string {
	if p := units.ProfileName(profile); p != units.DefaultProfile {
		return " --profile " + p
	}
	return ""
}

func changedPaths(files []InstalledFile) []string {
	var out []string
	for _, f := range files {
		if f.Action != ActionUnchanged {
			out = append(out, f.Path)
		}
	}
	return out
}

func (m *systemdManager) enable(ctx context.Context, s *session, names ...string) error {
	if _, _, err := s.sd.EnableUnitFilesContext(ctx, names, false, false); err != nil {
		return fmt.Errorf("enable %s: %w (see `%s status %s`)", strings.Join(names, " "), err, m.systemctl(), names[0])
	}
	// Like systemctl enable: reload, so the manager's cached UnitFileState
	// and dependencies follow the new links.
	if err := s.sd.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload after enabling %s: %w", strings.Join(names, " "), err)
	}
	return nil
}

// enableList returns the units install enables: the socket, and the
// service too when its template starts it at boot ([Install] WantedBy=),
// so the gateway runs without waiting for a first connection.
func enableList(files []units.File) []string {
	out := []string{files[0].Name}
	if startsAtBoot(files[1].Data) {
		out = append(out, files[1].Name)
	}
	return out
}

// startsAtBoot reports whether a rendered service unit is wanted by a
// target ([Install] WantedBy=), i.e. always on rather than on demand.
func startsAtBoot(service []byte) bool {
	u, err := units.Parse(service)
	return err == nil && len(u.Values("Install", "WantedBy")) > 0
}

// lingering reports whether logind keeps the user's manager running after
// logout.
func (m *systemdManager) lingering() bool {
	if m.user == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(m.lingerDir, m.user))
	return err == nil
}

// Uninstall implements Manager.
func (m *systemdManager) Uninstall(ctx context.Context, t Target) error {
	if err := checkScope(t, m.scope); err != nil {
		return err
	}
	sock, svc := units.SocketName(t.Profile), units.ServiceName(t.Profile)
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	// Socket first, so nothing re-activates the service while it stops.
	for _, u := range []string{sock, svc} {
		if ok, err := s.loaded(ctx, u); err != nil {
			return err
		} else if !ok {
			continue
		}
		if err := m.job(ctx, "stop", u, s.sd.StopUnitContext); err != nil {
			return err
		}
	}
	var paths []string
	for _, u := range []string{sock, svc} {
		paths = append(paths, filepath.Join(m.unitDir, u))
	}
	if st, _ := s.unitFileState(ctx, sock); st != "" && !strings.HasPrefix(st, "masked") {
		if _, err := s.sd.DisableUnitFilesContext(ctx, []string{sock, svc}, false); err != nil {
			return fmt.Errorf("disable %s: %w (try `%s disable %s`)", sock, err, m.systemctl(), sock)
		}
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove unit %s: %w (remove it by hand, then `%s daemon-reload`)", p, err, m.systemctl())
		}
	}
	if err := s.sd.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload after removing the units: %w", err)
	}
	for _, u := range []string{sock, svc} {
		_ = s.sd.ResetFailedUnitContext(ctx, u) // not loaded any more is fine
	}
	m.log.Info("uninstalled units", "units", []string{sock, svc}, "dir", m.unitDir)
	return nil
}

// Start implements Manager.
func (m *systemdManager) Start(ctx context.Context, t Target) error {
	return m.socketThenService(ctx, t, "start", func(s *session) jobFunc { return s.sd.StartUnitContext })
}

// Stop implements Manager.
func (m *systemdManager) Stop(ctx context.Context, t Target) error {
	return m.socketThenService(ctx, t, "stop", func(s *session) jobFunc { return s.sd.StopUnitContext })
}

// jobFunc is a go-systemd job method (StartUnitContext, StopUnitContext …).
type jobFunc = func(context.Context, string, string, chan<- string) (int, error)

// socketThenService runs the job verb (of the session's method f) on the
// profile's socket, then on its service.
func (m *systemdManager) socketThenService(ctx context.Context, t Target, verb string, f func(*session) jobFunc) error {
	s, err := m.openFor(ctx, t)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, u := range []string{units.SocketName(t.Profile), units.ServiceName(t.Profile)} {
		if err := m.job(ctx, verb, u, f(s)); err != nil {
			return err
		}
	}
	return nil
}

// Restart implements Manager: the socket stays up (started if it was not),
// only the service restarts, so connects queue in the socket's backlog.
func (m *systemdManager) Restart(ctx context.Context, t Target) error {
	s, err := m.openFor(ctx, t)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := m.job(ctx, "start", units.SocketName(t.Profile), s.sd.StartUnitContext); err != nil {
		return err
	}
	svc := units.ServiceName(t.Profile)
	_ = s.sd.ResetFailedUnitContext(ctx, svc)
	return m.job(ctx, "restart", svc, s.sd.RestartUnitContext)
}

// Status implements Manager.
func (m *systemdManager) Status(ctx context.Context, t Target) (*Runtime, error) {
	s, err := m.openFor(ctx, t)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return m.status(ctx, s, t)
}

func (m *systemdManager) status(ctx context.Context, s *session, t Target) (*Runtime, error) {
	sock, svc := units.SocketName(t.Profile), units.ServiceName(t.Profile)
	rt := &Runtime{Manager: m.Name(), Unit: svc, Socket: sock}
	up, err := s.sd.GetUnitPropertiesContext(ctx, svc)
	if err != nil {
		return nil, fmt.Errorf("read properties of %s: %w", svc, err)
	}
	rt.LoadState = str(up["LoadState"])
	rt.ActiveState = str(up["ActiveState"])
	rt.SubState = str(up["SubState"])
	rt.FragmentPath = str(up["FragmentPath"])
	rt.DropInPaths = strs(up["DropInPaths"])
	rt.NeedDaemonReload, _ = up["NeedDaemonReload"].(bool)
	if rt.LoadState == "loaded" {
		sp, err := s.sd.GetUnitTypePropertiesContext(ctx, svc, "Service")
		if err != nil {
			return nil, fmt.Errorf("read service properties of %s: %w", svc, err)
		}
		rt.MainPID = int(num(sp["MainPID"]))
		rt.NRestarts = int(num(sp["NRestarts"]))
		rt.StatusText = str(sp["StatusText"])
		rt.WatchdogUSec = uint64(num(sp["WatchdogUSec"]))
		rt.ExecMainStatus = int(num(sp["ExecMainStatus"]))
		rt.ExecStart = execStartOf(sp["ExecStart"])
		if env := strs(sp["Environment"]); len(env) > 0 {
			rt.Environment = map[string]string{}
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				rt.Environment[k] = v
			}
		}
	}
	kp, err := s.sd.GetUnitPropertiesContext(ctx, sock)
	if err != nil {
		return nil, fmt.Errorf("read properties of %s: %w", sock, err)
	}
	rt.SocketLoadState = str(kp["LoadState"])
	rt.SocketActiveState = str(kp["ActiveState"])
	rt.SocketFragmentPath = str(kp["FragmentPath"])
	rt.UnitFileState = str(kp["UnitFileState"])
	// The property is cached until the next reload; ask the unit files.
	if st, err := s.unitFileState(ctx, sock); err == nil && st != "" {
		rt.UnitFileState = st
	}
	sub := str(kp["SubState"])
	rt.SocketListening = rt.SocketActiveState == "active" && (sub == "listening" || sub == "running")
	if nr, _ := kp["NeedDaemonReload"].(bool); nr {
		rt.NeedDaemonReload = true
	}
	rt.DropInPaths = append(rt.DropInPaths, strs(kp["DropInPaths"])...)
	if rt.SocketLoadState == "loaded" {
		p, err := s.sd.GetUnitTypePropertyContext(ctx, sock, "Socket", "Listen")
		if err != nil {
			return nil, fmt.Errorf("read Listen of %s: %w", sock, err)
		}
		rt.SocketListen = listenOf(p.Value.Value())
	}
	if rt.DropInPaths == nil {
		rt.DropInPaths = []string{}
	}
	if rt.SocketListen == nil {
		rt.SocketListen = []string{}
	}
	return rt, nil
}

// listenOf converts the socket's Listen property, a(ss) of (type, address),
// to the addresses of its Stream entries.
func listenOf(v any) []string {
	var out []string
	switch l := v.(type) {
	case [][]any:
		for _, e := range l {
			if len(e) == 2 {
				out = append(out, fmt.Sprint(e[1]))
			}
		}
	case []struct{ A, B string }:
		for _, e := range l {
			out = append(out, e.B)
		}
	}
	return out
}

// execStartOf returns the argv of the first entry of the service's
// ExecStart property, a(sasbttttuii) of (path, argv, ignore-failure, …).
func execStartOf(v any) []string {
	l, ok := v.([][]any)
	if !ok || len(l) == 0 || len(l[0]) < 2 {
		return nil
	}
	argv, _ := l[0][1].([]string)
	if path, _ := l[0][0].(string); path != "" && len(argv) > 0 {
		argv = append([]string{path}, argv[1:]...) // argv[0] may be a name only
	}
	return slices.Clone(argv)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	s, _ := v.([]string)
	return slices.Clone(s)
}

func num(v any) int64 {
	switch n := v.(type) {
	case uint32:
		return int64(n)
	case int32:
		return int64(n)
	case uint64:
		return int64(n)
	case int64:
		return n
	}
	return 0
}
