package pkgbuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/units"
)

// Installed locations of the binaries.
const (
	// LinuxGatewayd is gatewayd's path in the deb and rpm (ExecStart=).
	LinuxGatewayd = "/usr/bin/gatewayd"
	// DarwinGatewayd is gatewayd's path in the macOS package
	// (ProgramArguments[0] of the LaunchDaemon).
	DarwinGatewayd = "/usr/local/bin/gatewayd"
)

// DefaultPort is the default profile's port, which the packaged units and
// the LaunchDaemon listen on (127.0.0.1 and [::1]).
func DefaultPort() int {
	p, _ := config.NewProfile("", false)
	return p.DefaultPort()
}

// UnitParams are the units.Params of the packaged default-profile units:
// the same ones `gatewayctl install` uses for the default profile with
// gatewayd at /usr/bin/gatewayd, so that `gatewayctl doctor` finds no drift
// on a host where the package installed them.
func UnitParams(version string, scope units.Scope) units.Params {
	return units.Params{Scope: scope, Port: DefaultPort(), ExecPath: LinuxGatewayd, Version: version}
}

// LaunchdParams are the launchd.Params of the LaunchDaemon in the macOS
// package (default profile, system scope, on demand).
func LaunchdParams(version string) launchd.Params {
	return launchd.Params{Scope: launchd.ScopeSystem, Port: DefaultPort(), ExecPath: DarwinGatewayd, Version: version}
}

// StageOptions say what to put in the staging tree nfpm packs.
type StageOptions struct {
	// Dir is the staging tree to create (it mirrors the installed paths).
	Dir string
	// RepoRoot is the checkout holding packaging/ (static files).
	RepoRoot string
	// Version is the package version, written into the units' marker.
	Version string
	// Gatewayd and Gatewayctl are the Linux binaries to package.
	Gatewayd, Gatewayctl string
	// Docs are the generated man pages and completions (see GenerateDocs).
	Docs *Docs
}

// Docs are the man pages, documents and shell completions the packages
// ship.
type Docs struct {
	// Man are the man pages (roff), one per ManSources entry, in order.
	Man []ManPage
	// Files are the Markdown documents of DocSources, in order.
	Files []DocFile
	// Bash, Zsh and Fish are the completion scripts for gatewayctl.
	Bash, Zsh, Fish []byte
}

// ManPage is one rendered man page.
type ManPage struct {
	ManSource
	Roff []byte
}

// DocFile is one document for the doc directory.
type DocFile struct {
	// Name is the file name (runbook.md).
	Name string
	Data []byte
}

// GenerateDocs builds the man pages from their Markdown sources under root
// (ManSources, with go-md2man; epoch dates them and version names the
// source), reads the documents (DocSources), and runs a gatewayctl binary
// that runs on this host for the completions (`gatewayctl completion`).
// A missing source is an error that names it.
func GenerateDocs(ctx context.Context, root, gatewayctl string, epoch int64, version string) (*Docs, error) {
	d := &Docs{}
	for _, m := range ManSources {
		page, err := ReadManSource(root, m, epoch, version)
		if err != nil {
			return nil, err
		}
		d.Man = append(d.Man, ManPage{ManSource: m, Roff: page})
	}
	for _, src := range DocSources {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("document %s is missing (the packages ship it in the doc directory)", src)
			}
			return nil, err
		}
		d.Files = append(d.Files, DocFile{Name: filepath.Base(src), Data: data})
	}
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch, 10))
	for _, c := range []struct {
		shell string
		out   *[]byte
	}{{"bash", &d.Bash}, {"zsh", &d.Zsh}, {"fish", &d.Fish}} {
		cmd := exec.CommandContext(ctx, gatewayctl, "completion", c.shell)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s completion %s: %w: %s", gatewayctl, c.shell, err, stderr.String())
		}
		*c.out = stdout.Bytes()
	}
	return d, nil
}

// Gzip compresses data the way dpkg and lintian expect of man pages:
// maximum compression, no file name, no timestamp (reproducible).
func Gzip(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Installed locations of the documentation in the deb and rpm.
const (
	// LinuxManDir holds man1, man5 and man8.
	LinuxManDir = "/usr/share/man"
	// LinuxDocDir holds copyright and the DocSources (the units'
	// Documentation= names its runbook.md).
	LinuxDocDir = "/usr/share/doc/gatewayd"
)

// LinuxManPath is m's path in the deb and rpm, before compression:
// /usr/share/man/man8/gatewayd.8.
func LinuxManPath(m ManSource) string {
	return LinuxManDir + "/man" + m.Section + "/" + m.File()
}

// Stage writes the staging tree: binaries, the default profile's system
// and user units rendered by package units, sysusers.d, the default
// config, gzipped man pages, documents, completions, copyright and
// lintian overrides.
func Stage(o StageOptions) error {
	if err := CheckVersion(o.Version); err != nil {
		return err
	}
	if o.Docs == nil {
		return fmt.Errorf("stage %s: no man pages, documents and completions: call GenerateDocs first", o.Dir)
	}
	files := map[string][]byte{}
	for _, b := range []struct{ src, dst string }{{o.Gatewayd, LinuxGatewayd}, {o.Gatewayctl, "/usr/bin/gatewayctl"}} {
		data, err := os.ReadFile(b.src)
		if err != nil {
			return fmt.Errorf("stage binary %s: %w (build it first)", b.src, err)
		}
		files[b.dst] = data
	}
	for _, sc := range []struct {
		scope units.Scope
		dir   string
	}{{units.ScopeSystem, "/usr/lib/systemd/system"}, {units.ScopeUser, "/usr/lib/systemd/user"}} {
		rendered, err := units.Render(UnitParams(o.Version, sc.scope))
		if err != nil {
			return fmt.Errorf("render the packaged %s units: %w", sc.scope, err)
		}
		for _, f := range rendered {
			files[filepath.Join(sc.dir, f.Name)] = f.Data
		}
	}
	static := map[string]string{
		"packaging/linux/sysusers.conf": "/usr/lib/sysusers.d/gatewayd.conf",
		"packaging/linux/system.preset": "/usr/lib/systemd/system-preset/90-gatewayd.preset",
		"packaging/linux/user.preset":   "/usr/lib/systemd/user-preset/90-gatewayd.preset",
		"packaging/linux/config.json":   "/etc/gatewayd/config.json",
		"packaging/linux/copyright":     "/usr/share/doc/gatewayd/copyright",
		"LICENSE":                       "/usr/share/licenses/gatewayd/LICENSE",
		"packaging/lintian-overrides":   "/usr/share/lintian/overrides/gatewayd",
	}
	for src, dst := range static {
		data, err := os.ReadFile(filepath.Join(o.RepoRoot, src))
		if err != nil {
			return fmt.Errorf("stage %s: %w (run from the repository root)", src, err)
		}
		files[dst] = data
	}
	for _, m := range o.Docs.Man {
		name := LinuxManPath(m.ManSource) + ".gz"
		gz, err := Gzip(m.Roff)
		if err != nil {
			return fmt.Errorf("compress %s: %w", name, err)
		}
		files[name] = gz
	}
	for _, f := range o.Docs.Files {
		files[LinuxDocDir+"/"+f.Name] = f.Data
	}
	files["/usr/share/bash-completion/completions/gatewayctl"] = o.Docs.Bash
	files["/usr/share/zsh/vendor-completions/_gatewayctl"] = o.Docs.Zsh
	files["/usr/share/fish/vendor_completions.d/gatewayctl.fish"] = o.Docs.Fish

	for p, data := range files {
		dst := filepath.Join(o.Dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("stage %s: %w", p, err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "/usr/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return fmt.Errorf("stage %s: %w", p, err)
		}
		if err := os.Chmod(dst, mode); err != nil {
			return fmt.Errorf("stage %s: %w", p, err)
		}
	}
	return nil
}
