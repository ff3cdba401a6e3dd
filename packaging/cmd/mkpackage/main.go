// Command mkpackage builds gatewayd's packages into dist/: the .deb and
// .rpm through nfpm (nfpm.yaml) and one macOS .pkg per architecture. `make
// package` runs it from the repository root. See package pkgbuild.
//
//	go run ./packaging/cmd/mkpackage [-version V] [-out dist] [-arch amd64] [-formats deb,rpm,pkg]
//	go run ./packaging/cmd/mkpackage -print-version
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gatewayd/gatewayd/packaging/pkgbuild"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fs := flag.NewFlagSet("mkpackage", flag.ExitOnError)
	version := fs.String("version", "", "package version (default: from git describe)")
	out := fs.String("out", "dist", "output `directory`")
	arch := fs.String("arch", "", "Linux GOARCH of the deb and rpm (default: this host's)")
	formats := fs.String("formats", "deb,rpm,pkg", "comma-separated formats: deb, rpm, pkg")
	nfpm := fs.String("nfpm", "", "nfpm command (default: "+strings.Join(pkgbuild.NFPMTool, " ")+", pinned in go.mod)")
	printVersion := fs.Bool("print-version", false, "print the package version from git and exit")
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *printVersion {
		v, err := pkgbuild.GitVersion(ctx, ".")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkpackage:", err)
			os.Exit(1)
		}
		fmt.Println(v)
		return
	}
	o := pkgbuild.Options{RepoRoot: ".", OutDir: *out, Version: *version, Arch: *arch, Logger: log}
	if *formats != "" {
		o.Formats = strings.Split(*formats, ",")
	}
	if *nfpm != "" {
		o.NFPM = strings.Fields(*nfpm)
	}
	res, err := pkgbuild.Build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkpackage:", err)
		os.Exit(1)
	}
	for _, p := range append([]string{res.Deb, res.RPM}, res.Pkgs...) {
		if p != "" {
			fmt.Println(p)
		}
	}
}
