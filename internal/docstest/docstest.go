// Package docstest holds what the docs-coverage tests share: reading a
// file under docs/, splitting a Markdown page into its sections, and
// finding a flag in a text. The tests themselves live next to what they
// check (cmd/gatewayd/docs_test.go, cmd/gatewayctl/docs_test.go), where the
// flag sets and command trees are reachable.
package docstest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Read returns the file docs/NAME of this repository (found by walking up
// from the test's working directory to go.mod), failing t when it cannot.
func Read(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("docstest: no go.mod above the test's directory")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "docs", name))
	if err != nil {
		t.Fatalf("read docs/%s: %v", name, err)
	}
	return string(b)
}

// Sections splits a Markdown page at its heading lines ("# OPTIONS",
// "## gatewayctl status", ...) and returns each heading's text, without
// the #s, mapped to the lines up to the next heading. Lines inside fenced
// code blocks are never headings.
func Sections(doc string) map[string]string {
	out := map[string]string{}
	var name string
	var body strings.Builder
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "#") {
			if name != "" {
				out[name] = body.String()
			}
			body.Reset()
			name = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if name != "" {
		out[name] = body.String()
	}
	return out
}

// MentionsFlag reports whether text names the flag as --NAME (not as the
// start of a longer flag name).
func MentionsFlag(text, name string) bool {
	return regexp.MustCompile(`--` + regexp.QuoteMeta(name) + `([^A-Za-z0-9-]|$)`).MatchString(text)
}
