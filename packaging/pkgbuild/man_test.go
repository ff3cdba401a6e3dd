package pkgbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testManEpoch = 1735689600 // 2025-01-01T00:00:00Z

func TestRenderManTitleBlocks(t *testing.T) {
	body := "\n# NAME\n\ngatewayd - the gateway daemon\n\n# OPTIONS\n\n**--port** *N*\n: the port\n"
	m := ManSource{Source: "docs/man/gatewayd.8.md", Name: "gatewayd", Section: "8"}
	for _, tb := range []string{
		`% gatewayd 8 "" gatewayd "System Manager's Manual"`,
		`% gatewayd(8)`,
		"% gatewayd(8)\n% the authors\n% 2020-01-01",
	} {
		got, err := RenderMan([]byte(tb+"\n"+body), m, testManEpoch, "1.2.3")
		if err != nil {
			t.Fatalf("%q: %v", tb, err)
		}
		page := string(got)
		if !strings.HasPrefix(page, `.TH GATEWAYD 8 "2025-01-01" "gatewayd 1.2.3" "System Manager's Manual"`+"\n.nh\n.ad l\n") {
			t.Errorf("%q: page starts\n%s", tb, page[:min(len(page), 200)])
		}
		if !strings.Contains(page, ".SH NAME\ngatewayd \\- the gateway daemon\n") {
			t.Errorf("%q: no NAME line for whatis:\n%s", tb, page)
		}
		if !strings.Contains(page, `\fB\-\-port\fP`) {
			t.Errorf("%q: option hyphens are not \\-:\n%s", tb, page)
		}
		again, _ := RenderMan([]byte(tb+"\n"+body), m, testManEpoch, "1.2.3")
		if string(again) != page {
			t.Errorf("%q: two renderings differ", tb)
		}
	}
	for _, bad := range []string{
		"# NAME\n\ngatewayd - x\n",                    // no title block
		"% gatewayctl(1)\n\n# NAME\n\ngatewayd - x\n", // another page's
		"% gatewayd(8)\n\n# SYNOPSIS\n\ngatewayd\n",   // no NAME
	} {
		if _, err := RenderMan([]byte(bad), m, testManEpoch, "1.2.3"); err == nil {
			t.Errorf("%q rendered without an error", bad)
		}
	}
}

func TestRenderManFromDocument(t *testing.T) {
	m := ManSource{Source: "docs/config.md", Name: "gatewayd.json", Section: "5", Summary: "gatewayd configuration file"}
	src := "# gatewayd.json: configuration reference\n\n## Where\n\n| key | flag |\n|---|---|\n| `gateway.bind` | `--bind loopback\\|lan` |\n\n### Keys\n\ntext\n"
	got, err := RenderMan([]byte(src), m, testManEpoch, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	page := string(got)
	for _, want := range []string{
		"'\\\" t\n.TH GATEWAYD.JSON 5 \"2025-01-01\" \"gatewayd 1.2.3\" \"File Formats Manual\"\n",
		".SH NAME\ngatewayd.json \\- gatewayd configuration file\n",
		"\n.SH Where\n",
		"\n.SS Keys\n",
		"lx lx\nlx lx .\n",
		"T{\n\\fB\\-\\-bind loopback|\\:lan\\fR\nT}",
		".SH SEE ALSO\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "configuration reference") {
		t.Errorf("the document's title stayed in the page:\n%s", page)
	}
	if _, err := RenderMan([]byte("text\n"), m, testManEpoch, "1.2.3"); err == nil {
		t.Error("a document without a # title rendered")
	}
}

func TestGenerateDocsNamesMissingSource(t *testing.T) {
	root := t.TempDir()
	for _, m := range ManSources {
		if m.Source == "docs/man/gatewayctl.1.md" {
			continue
		}
		p := filepath.Join(root, m.Source)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		src := "% " + m.Name + "(" + m.Section + ")\n\n# NAME\n\n" + m.Name + " - x\n"
		if m.Summary != "" {
			src = "# title\n\ntext\n"
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := GenerateDocs(context.Background(), root, "/nonexistent/gatewayctl", testManEpoch, "1.2.3")
	if err == nil || !strings.Contains(err.Error(), "docs/man/gatewayctl.1.md is missing") {
		t.Errorf("GenerateDocs without docs/man/gatewayctl.1.md: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs/man/gatewayctl.1.md"), []byte("% gatewayctl(1)\n\n# NAME\n\ngatewayctl - x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = GenerateDocs(context.Background(), root, "/nonexistent/gatewayctl", testManEpoch, "1.2.3")
	if err == nil || !strings.Contains(err.Error(), "docs/runbook.md is missing") {
		t.Errorf("GenerateDocs without docs/runbook.md: %v", err)
	}
}
