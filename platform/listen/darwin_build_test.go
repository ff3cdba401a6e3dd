package listen

import (
	"cmp"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestDarwinBuildImportsLaunchActivateSocket cross-compiles a program using
// this package for macOS without cgo and checks that the Mach-O binary
// imports launch_activate_socket from libSystem, so launchd activation works
// in the release builds made on Linux.
func TestDarwinBuildImportsLaunchActivateSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling for darwin takes a while; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(cmp.Or(os.Getenv("GOROOT"), "/usr/local/go"), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			t.Skip("SKIPPING DARWIN BUILD CHECK: no go tool in PATH or GOROOT (CI has Go installed)")
		}
	}
	for _, arch := range []string{"arm64", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "darwinprobe")
			cmd := exec.Command(goTool, "build", "-o", out, "./internal/darwinprobe")
			cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=darwin GOARCH=%s CGO_ENABLED=0 go build: %v\n%s", arch, err, b)
			}
			f, err := macho.Open(out)
			if err != nil {
				t.Fatalf("open Mach-O: %v", err)
			}
			defer f.Close()
			if want := map[string]macho.Cpu{"arm64": macho.CpuArm64, "amd64": macho.CpuAmd64}[arch]; f.Cpu != want {
				t.Fatalf("binary is for %v, want %v", f.Cpu, want)
			}
			syms, err := f.ImportedSymbols()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"_launch_activate_socket", "_free"} {
				if !slices.Contains(syms, want) {
					t.Errorf("%s not among the imported symbols (%d imported)", want, len(syms))
				}
			}
			libs, err := f.ImportedLibraries()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(libs, "/usr/lib/libSystem.B.dylib") {
				t.Errorf("libSystem not imported: %v", libs)
			}
		})
	}
}
