// Package pkgbuild builds gatewayd's packages: the .deb and .rpm (through
// nfpm and the repository's nfpm.yaml) and the macOS flat packages (through
// packaging/macpkg), from a checkout, reproducibly. `make package` runs it
// as packaging/cmd/mkpackage; the package tests in packaging/pkgtest run the
// same code.
//
// It compiles the binaries with the Go toolchain (CGO_ENABLED=0), builds
// the man pages from their Markdown sources in docs/ with go-md2man, runs
// the host's own build of gatewayctl to generate the completions, renders
// the units with package units and the LaunchDaemon with package launchd
// (the renderers `gatewayctl install` uses), and stamps every file with one
// timestamp (SOURCE_DATE_EPOCH). It needs `go` on PATH and, for deb and
// rpm, the nfpm command (by default `go tool nfpm`: nfpm v2.45.2, pinned by
// go.mod's tool directive and fetched into the module cache like any other
// dependency); nothing else, and nothing of the OS: it builds macOS
// packages on Linux and Linux packages anywhere.
package pkgbuild

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/packaging/macpkg"
)

// NFPMTool is the nfpm command line Build runs when Options.NFPM is empty:
// the nfpm that go.mod's tool directive pins (v2.45.2; later versions do not
// build through this module proxy, see docs/packaging.md).
var NFPMTool = []string{"go", "tool", "nfpm"}

// Package formats Build can produce.
const (
	FormatDeb = "deb"
	FormatRPM = "rpm"
	FormatPkg = "pkg"
)

// DarwinArches are the macOS architectures a .pkg is built for, one
// package each (GOARCH → Installer's hostArchitectures name).
var DarwinArches = map[string]string{"arm64": "arm64", "amd64": "x86_64"}

// Options configure Build.
type Options struct {
	// RepoRoot is the repository checkout (go.mod, nfpm.yaml, packaging/).
	RepoRoot string
	// OutDir receives the packages (dist/).
	OutDir string
	// Version is the package version; "" means GitVersion.
	Version string
	// Commit goes into the binaries' build info; "" means GitCommit.
	Commit string
	// Arch is the Linux GOARCH of the deb and rpm; "" means runtime.GOARCH.
	Arch string
	// Formats lists what to build (FormatDeb, FormatRPM, FormatPkg); nil
	// means all three.
	Formats []string
	// NFPM is the nfpm command line prefix; nil means NFPMTool
	// (`go tool nfpm`).
	NFPM []string
	// SourceDateEpoch stamps every file; 0 means SourceDateEpoch().
	SourceDateEpoch int64
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Result lists what Build wrote.
type Result struct {
	// Version is the package version used.
	Version string
	// Deb and RPM are the paths of the Linux packages ("" when not built).
	Deb, RPM string
	// Pkgs are the macOS packages, one per architecture.
	Pkgs []string
}

// Build compiles the binaries and builds the requested packages into
// o.OutDir. Work files go to a temporary directory that is removed.
func Build(ctx context.Context, o Options) (*Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(o.RepoRoot)
	if err != nil {
		return nil, err
	}
	if o.Version == "" {
		if o.Version, err = GitVersion(ctx, root); err != nil {
			return nil, err
		}
	}
	if err := CheckVersion(o.Version); err != nil {
		return nil, err
	}
	if o.Commit == "" {
		o.Commit = GitCommit(ctx, root)
	}
	if o.SourceDateEpoch == 0 {
		if o.SourceDateEpoch, err = SourceDateEpoch(ctx, root); err != nil {
			return nil, err
		}
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Formats == nil {
		o.Formats = []string{FormatDeb, FormatRPM, FormatPkg}
	}
	for _, f := range o.Formats {
		if f != FormatDeb && f != FormatRPM && f != FormatPkg {
			return nil, fmt.Errorf("unknown package format %q: use deb, rpm or pkg", f)
		}
	}
	out, err := filepath.Abs(o.OutDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory %s: %w", out, err)
	}
	work, err := os.MkdirTemp("", "gatewayd-pkg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	b := &builder{root: root, work: work, o: o, log: log}
	res := &Result{Version: o.Version}

	// The man pages come from docs/; the host's gatewayctl writes the
	// completions.
	_, hostCtl, err := b.binaries(ctx, runtime.GOOS, runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	docs, err := GenerateDocs(ctx, root, hostCtl, o.SourceDateEpoch, o.Version)
	if err != nil {
		return nil, fmt.Errorf("generate man pages and completions: %w", err)
	}

	if slices.Contains(o.Formats, FormatDeb) || slices.Contains(o.Formats, FormatRPM) {
		gd, gc, err := b.binaries(ctx, "linux", o.Arch)
		if err != nil {
			return nil, err
		}
		stage := filepath.Join(work, "stage")
		if err := Stage(StageOptions{Dir: stage, RepoRoot: root, Version: o.Version, Gatewayd: gd, Gatewayctl: gc, Docs: docs}); err != nil {
			return nil, err
		}
		for _, f := range []string{FormatDeb, FormatRPM} {
			if !slices.Contains(o.Formats, f) {
				continue
			}
			p, err := b.nfpm(ctx, f, stage, out)
			if err != nil {
				return nil, err
			}
			if f == FormatDeb {
				res.Deb = p
			} else {
				res.RPM = p
			}
		}
	}
	if slices.Contains(o.Formats, FormatPkg) {
		license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
		if err != nil {
			return nil, fmt.Errorf("read the license for the macOS package: %w (run from the repository root)", err)
		}
		for _, goarch := range []string{"arm64", "amd64"} {
			gd, gc, err := b.binaries(ctx, "darwin", goarch)
			if err != nil {
				return nil, err
			}
			p := filepath.Join(out, MacPkgName(o.Version, goarch))
			if err := WriteMacPkg(p, MacPkgOptions{Version: o.Version, GOARCH: goarch, Gatewayd: gd, Gatewayctl: gc, Docs: docs, SourceDateEpoch: o.SourceDateEpoch, License: license}); err != nil {
				return nil, err
			}
			log.Info("built macOS package", "path", p)
			res.Pkgs = append(res.Pkgs, p)
		}
	}
	return res, nil
}

type builder struct {
	root, work string
	o          Options
	log        *slog.Logger
	built      map[string][2]string
}

// binaries builds gatewayd and gatewayctl for goos/goarch (once).
func (b *builder) binaries(ctx context.Context, goos, goarch string) (string, string, error) {
	key := goos + "-" + goarch
	if p, ok := b.built[key]; ok {
		return p[0], p[1], nil
	}
	dir := filepath.Join(b.work, "bin", key)
	ldflags := "-s -w -X github.com/gatewayd/gatewayd/daemon/buildinfo.Version=" + b.o.Version +
		" -X github.com/gatewayd/gatewayd/daemon/buildinfo.Commit=" + b.o.Commit
	var paths [2]string
	for i, name := range []string{"gatewayd", "gatewayctl"} {
		paths[i] = filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", paths[i], "./cmd/"+name)
		cmd.Dir = b.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s for %s/%s: %w\n%s", name, goos, goarch, err, out)
		}
	}
	b.log.Info("built binaries", "os", goos, "arch", goarch)
	if b.built == nil {
		b.built = map[string][2]string{}
	}
	b.built[key] = paths
	return paths[0], paths[1], nil
}

// nfpm packs the staging tree with nfpm.yaml and returns the package path.
func (b *builder) nfpm(ctx context.Context, format, stage, out string) (string, error) {
	// nfpm writes into a fresh directory, so the package it made is the
	// only file there.
	tmp, err := os.MkdirTemp(b.work, "nfpm-"+format+"-")
	if err != nil {
		return "", err
	}
	argv := b.o.NFPM
	if len(argv) == 0 {
		argv = NFPMTool
	}
	argv = append(slices.Clone(argv), "package", "--config", filepath.Join(b.root, "nfpm.yaml"), "--packager", format, "--target", tmp+"/")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = b.root
	release := "1"
	if format == FormatDeb {
		release = "" // no Debian revision: gatewayd_<v>_<arch>.deb
	}
	cmd.Env = append(os.Environ(), "RELEASE="+release,
		"VERSION="+b.o.Version, "GOARCH="+b.o.Arch, "GATEWAYD_STAGE="+stage,
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(b.o.SourceDateEpoch, 10))
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("nfpm %s: %w\n%s(nfpm runs as `go tool nfpm`, pinned in go.mod; or set it with -nfpm)", format, err, outBuf.String())
	}
	entries, err := os.ReadDir(tmp)
	if err != nil || len(entries) != 1 {
		return "", fmt.Errorf("nfpm %s: expected one package in %s, found %d entries (%v)", format, tmp, len(entries), err)
	}
	dst := filepath.Join(out, entries[0].Name())
	if err := os.Rename(filepath.Join(tmp, entries[0].Name()), dst); err != nil {
		return "", fmt.Errorf("move %s package to %s: %w", format, out, err)
	}
	b.log.Info("built package", "format", format, "path", dst)
	return dst, nil
}

// MacPkgName is the file name of the macOS package for goarch:
// gatewayd-<version>-arm64.pkg or gatewayd-<version>-x86_64.pkg.
func MacPkgName(version, goarch string) string {
	return "gatewayd-" + version + "-" + DarwinArches[goarch] + ".pkg"
}

// MacPkgOptions describe one macOS package.
type MacPkgOptions struct {
	// Version is the package version.
	Version string
	// GOARCH is "arm64" or "amd64".
	GOARCH string
	// Gatewayd and Gatewayctl are darwin binaries of that architecture.
	Gatewayd, Gatewayctl string
	// Docs are the man pages, documents and completions.
	Docs *Docs
	// SourceDateEpoch stamps every entry.
	SourceDateEpoch int64
	// License is the text of the repository's LICENSE (Apache-2.0), shown
	// by Installer.
	License []byte
}

// MacPkgFiles returns the payload of the macOS package: the binaries in
// /usr/local/bin, the LaunchDaemon plist, man pages (uncompressed, in
// /usr/local/share/man), documents (/usr/local/share/doc/gatewayd) and
// completions.
func MacPkgFiles(o MacPkgOptions) ([]macpkg.File, error) {
	gd, err := os.ReadFile(o.Gatewayd)
	if err != nil {
		return nil, fmt.Errorf("read darwin gatewayd: %w", err)
	}
	gc, err := os.ReadFile(o.Gatewayctl)
	if err != nil {
		return nil, fmt.Errorf("read darwin gatewayctl: %w", err)
	}
	lp := LaunchdParams(o.Version)
	plistData, err := launchd.Render(lp)
	if err != nil {
		return nil, fmt.Errorf("render the LaunchDaemon: %w", err)
	}
	files := []macpkg.File{
		{Path: strings.TrimPrefix(DarwinGatewayd, "/"), Mode: 0o755, Data: gd},
		{Path: "usr/local/bin/gatewayctl", Mode: 0o755, Data: gc},
		{Path: strings.TrimPrefix(launchd.PlistPath(lp), "/"), Mode: 0o644, Data: plistData},
	}
	for _, m := range o.Docs.Man {
		files = append(files, macpkg.File{Path: "usr/local/share/man/man" + m.Section + "/" + m.File(), Mode: 0o644, Data: m.Roff})
	}
	for _, f := range o.Docs.Files {
		files = append(files, macpkg.File{Path: "usr/local/share/doc/gatewayd/" + f.Name, Mode: 0o644, Data: f.Data})
	}
	return append(files,
		macpkg.File{Path: "usr/local/share/zsh/site-functions/_gatewayctl", Mode: 0o644, Data: o.Docs.Zsh},
		macpkg.File{Path: "usr/local/etc/bash_completion.d/gatewayctl", Mode: 0o644, Data: o.Docs.Bash},
		macpkg.File{Path: "usr/local/share/fish/vendor_completions.d/gatewayctl.fish", Mode: 0o644, Data: o.Docs.Fish},
	), nil
}

// WriteMacPkg builds the macOS product archive for one architecture at
// path.
func WriteMacPkg(path string, o MacPkgOptions) error {
	hostArch, ok := DarwinArches[o.GOARCH]
	if !ok {
		return fmt.Errorf("no macOS package for GOARCH %q: use arm64 or amd64", o.GOARCH)
	}
	files, err := MacPkgFiles(o)
	if err != nil {
		return err
	}
	pre, post := macpkg.Scripts()
	var buf bytes.Buffer
	err = macpkg.Build(&buf, macpkg.Options{
		Identifier:        "org.gatewayd.gatewayd",
		Version:           o.Version,
		Title:             "gatewayd " + o.Version + " (" + hostArch + ")",
		Files:             files,
		Preinstall:        pre,
		Postinstall:       post,
		MTime:             time.Unix(o.SourceDateEpoch, 0).UTC(),
		HostArchitectures: hostArch,
		MinOSVersion:      "12.0",
		License:           &macpkg.License{SPDX: "Apache-2.0", Text: o.License},
	})
	if err != nil {
		return fmt.Errorf("build macOS package %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write macOS package: %w", err)
	}
	return nil
}
