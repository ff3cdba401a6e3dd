package openclawops

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// tools are the OpenClaw installation the tests use.
type tools struct {
	Node     string // Node 24
	NodeBin  string // its directory, first in PATH for openclaw
	OpenClaw string // the openclaw CLI
	Dist     string // openclaw's dist/ (its shipped code)
}

// openclaw finds Node 24 and openclaw@2026.9.6 under $GATEWAYD_TOOLS
// (default ~/.cache/gatewayd-tools), or skips t loudly.
func openclaw(t *testing.T) tools {
	t.Helper()
	dir := os.Getenv("GATEWAYD_TOOLS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "gatewayd-tools")
	}
	tl := tools{
		Node:     filepath.Join(dir, "node24", "bin", "node"),
		NodeBin:  filepath.Join(dir, "node24", "bin"),
		OpenClaw: filepath.Join(dir, "openclaw", "node_modules", ".bin", "openclaw"),
		Dist:     filepath.Join(dir, "openclaw", "node_modules", "openclaw", "dist"),
	}
	for _, p := range []string{tl.Node, tl.OpenClaw, filepath.Join(tl.Dist, "gateway", "protocol", "index.js")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("SKIPPING the OpenClaw compatibility test: %s is missing; run .ci/setup-openclaw (it installs Node 24 and openclaw@2026.9.6 into $GATEWAYD_TOOLS, default ~/.cache/gatewayd-tools)", p)
		}
	}
	return tl
}

// nodeCmd runs a Node 24 script.
func (tl tools) nodeCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(tl.Node, args...)
	cmd.Env = append(os.Environ(), "PATH="+tl.NodeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}
