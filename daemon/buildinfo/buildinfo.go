// Package buildinfo says which build of gatewayd this is. The Makefile sets
// Version and Commit with -ldflags "-X"; a plain `go build` falls back to
// the module and VCS information the Go toolchain embeds.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is the release version (from `git describe`), set at link time.
var Version = ""

// Commit is the git commit, set at link time.
var Commit = ""

// Info is the build description printed by `version --json` and reported
// in hello-ok and status.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Get returns the build information, never with an empty version.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Commit == "" {
				i.Commit = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "0.0.0-dev"
	}
	return i
}
