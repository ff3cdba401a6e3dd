package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/internal/docstest"
	"github.com/gatewayd/gatewayd/platform/service"
)

// The docs-coverage tests: a gatewayctl command or flag missing from its
// man page, or a doctor check missing from the runbook, fails here, naming
// the item and the file to add it to.

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	return names
}

// TestDocsGatewayctlCommands walks gatewayctl's command tree: every command
// needs a "## gatewayctl PATH" section in the man page, every command flag
// a mention in its section, and every global flag one under GLOBAL FLAGS.
func TestDocsGatewayctlCommands(t *testing.T) {
	sections := docstest.Sections(docstest.Read(t, "man/gatewayctl.1.md"))
	root := newRootCommand(io.Discard, io.Discard)
	global := map[string]bool{}
	globals, ok := sections["GLOBAL FLAGS"]
	if !ok {
		t.Fatalf("docs/man/gatewayctl.1.md has no GLOBAL FLAGS section")
	}
	for _, name := range flagNames(root.FlagSet) {
		global[name] = true
		if !docstest.MentionsFlag(globals, name) {
			t.Errorf("gatewayctl global flag --%s is not documented: add it to GLOBAL FLAGS in docs/man/gatewayctl.1.md", name)
		}
	}
	if len(global) < 5 {
		t.Fatalf("found only %d global flags; did the root command change?", len(global))
	}
	commands := 0
	var walk func(path string, c *ffcli.Command)
	walk = func(path string, c *ffcli.Command) {
		commands++
		body, ok := sections[path]
		if !ok {
			t.Errorf("command %q is not documented: add a section \"## %s\" to docs/man/gatewayctl.1.md", path, path)
		}
		for _, name := range flagNames(c.FlagSet) {
			if global[name] || (ok && docstest.MentionsFlag(body, name)) {
				continue
			}
			if ok {
				t.Errorf("flag --%s of %q is not documented: add it to the \"## %s\" section of docs/man/gatewayctl.1.md", name, path, path)
			}
		}
		for _, sub := range c.Subcommands {
			walk(path+" "+sub.Name, sub)
		}
	}
	for _, sub := range root.Subcommands {
		walk("gatewayctl "+sub.Name, sub)
	}
	if commands < 20 {
		t.Fatalf("walked only %d commands; did the command tree change?", commands)
	}
}

// TestDocsDoctorChecks: every doctor check of either service manager has a
// row in one of the runbook's doctor tables ("| `name` | looks at | fix |").
func TestDocsDoctorChecks(t *testing.T) {
	doc := docstest.Read(t, "runbook.md")
	for _, manager := range []string{"systemd", "launchd"} {
		checks := service.CheckList(manager)
		if len(checks) == 0 {
			t.Fatalf("service.CheckList(%q) is empty", manager)
		}
		for _, c := range checks {
			if !strings.Contains(doc, "\n| `"+c.Name+"` |") {
				t.Errorf("%s doctor check %s is not documented: add a row (what it looks at, its fix) to the %s doctor table in docs/runbook.md", manager, c.Name, manager)
			}
		}
	}
}
