package pkgbuild

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/russross/blackfriday/v2"
)

// ManSource is a man page built from a Markdown source in docs/.
type ManSource struct {
	// Source is the Markdown file, relative to the repository root.
	Source string
	// Name and Section name the page: gatewayd and 8 make gatewayd.8.
	Name, Section string
	// Summary is the NAME line's description for a source that is a plain
	// document (docs/config.md) rather than a man page: the build gives it
	// the title block and NAME section go-md2man needs. Empty for sources
	// in docs/man, which carry their own (`% gatewayd 8 …` or
	// `% gatewayd(8)`, then `# NAME`).
	Summary string
}

// File is the page's file name: gatewayd.8.
func (m ManSource) File() string { return m.Name + "." + m.Section }

// ManSources are the man pages the packages ship, in this order.
var ManSources = []ManSource{
	{Source: "docs/man/gatewayd.8.md", Name: "gatewayd", Section: "8"},
	{Source: "docs/man/gatewayctl.1.md", Name: "gatewayctl", Section: "1"},
	{Source: "docs/config.md", Name: "gatewayd.json", Section: "5", Summary: "gatewayd configuration file"},
}

// DocSources are the Markdown documents the packages ship as they are in
// the doc directory (/usr/share/doc/gatewayd/runbook.md, …).
var DocSources = []string{"docs/runbook.md", "docs/config.md", "docs/protocol.md"}

// manManuals are the default manual titles (the .TH's fifth field).
var manManuals = map[string]string{
	"1": "User Commands",
	"5": "File Formats Manual",
	"8": "System Manager's Manual",
}

// ReadManSource reads m.Source under root and renders it with RenderMan.
// A missing source is an error that names it.
func ReadManSource(root string, m ManSource, epoch int64, version string) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, m.Source))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("man page %s: source %s is missing (the man pages are built from docs/)", m.File(), m.Source)
		}
		return nil, fmt.Errorf("man page %s: %w", m.File(), err)
	}
	page, err := RenderMan(src, m, epoch, version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Source, err)
	}
	return page, nil
}

// RenderMan converts the Markdown of one man page to roff with go-md2man.
// The .TH line is the build's own, so it is the same for every source
// style and reproducible: upper-case name, section, the date of epoch
// (SOURCE_DATE_EPOCH, UTC), "gatewayd <version>" and the manual's title.
// Hyphens in text become \- (what man pages mean by them: options and
// commands that can be copied).
func RenderMan(src []byte, m ManSource, epoch int64, version string) ([]byte, error) {
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	manual := manManuals[m.Section]
	var body []byte
	if m.Summary != "" {
		// A plain document: its first heading is its title, replaced by a
		// NAME section; its own sections follow.
		rest, ok := cutFirstHeading(src)
		if !ok {
			return nil, fmt.Errorf("no `# title` heading on the first line to turn into the man page's NAME")
		}
		body = []byte("# NAME\n\n" + m.Name + " - " + m.Summary + "\n\n" + string(rest))
		if !regexp.MustCompile(`(?m)^#+ SEE ALSO\s*$`).Match(rest) {
			body = append(body, []byte("\n\n# SEE ALSO\n\n**gatewayd**(8), **gatewayctl**(1), /usr/share/doc/gatewayd/runbook.md\n")...)
		}
	} else {
		tb, rest, ok := cutTitleBlock(src)
		if !ok {
			return nil, fmt.Errorf("no title block: the first line must be `%% %s %s …` or `%% %s(%s)`", m.Name, m.Section, m.Name, m.Section)
		}
		name, section, fields := parseTitle(tb)
		if name != m.Name || section != m.Section {
			return nil, fmt.Errorf("title block names %s(%s), want %s(%s)", name, section, m.Name, m.Section)
		}
		if len(fields) > 4 && fields[4] != "" {
			manual = fields[4]
		}
		if !regexp.MustCompile(`(?m)^# NAME\s*$`).Match(rest) {
			return nil, fmt.Errorf("no `# NAME` section")
		}
		body = rest
	}
	// A placeholder title block: go-md2man turns it into a .TH line,
	// which is then replaced by the real one.
	const placeholder = "GATEWAYD-MAN-TITLE"
	out := renderRoff(append([]byte("% "+placeholder+"\n\n"), body...))
	date := time.Unix(epoch, 0).UTC().Format("2006-01-02")
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"` }
	th := ".TH " + strings.ToUpper(m.Name) + " " + m.Section + " " + quote(date) + " " + quote("gatewayd "+version) + " " + quote(manual)
	lines := strings.Split(string(out), "\n")
	found := false
	for i, l := range lines {
		switch {
		case l == ".TH "+placeholder:
			// go-md2man writes .nh (no hyphenation) before .TH: put it
			// after, with left-justified text (long option and key names
			// cannot be spread over a justified line without warnings).
			lines[i] = th + "\n.nh\n.ad l"
			found = true
			// Before .TH, only the preprocessor line ('\" t) stays.
			for j := range i {
				if !strings.HasPrefix(lines[j], `'\"`) {
					lines[j] = "\x00"
				}
			}
		case strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'"):
			// a request: leave it
		default:
			lines[i] = escapeHyphens(l)
		}
	}
	if !found {
		return nil, fmt.Errorf("go-md2man wrote no .TH line")
	}
	kept := lines[:0]
	for _, l := range lines {
		if l != "\x00" {
			kept = append(kept, l)
		}
	}
	return []byte(strings.Join(kept, "\n")), nil
}

// renderRoff is md2man.Render with changes so that the text fits the
// page width without warnings: in tables, columns expand (lx), every body
// cell is a text block (T{ … T}), and a \| in a code span is a | (GitHub's
// table syntax, which blackfriday leaves as is); code spans in tables and
// long ones anywhere may break after a /, , or | (\:).
func renderRoff(doc []byte) []byte {
	md := md2man.NewRoffRenderer()
	r := tableRenderer{md}
	return blackfriday.Run(doc, blackfriday.WithRenderer(r), blackfriday.WithExtensions(md.GetExtensions()))
}

// longCode is the length above which a code span outside a table may
// break after a /, , or | like one in a table: shorter ones stay whole.
const longCode = 40

type tableRenderer struct{ blackfriday.Renderer }

func (r tableRenderer) RenderNode(w io.Writer, node *blackfriday.Node, entering bool) blackfriday.WalkStatus {
	switch {
	case node.Type == blackfriday.Table && entering:
		cols := 0
		if head := node.FirstChild; head != nil && head.FirstChild != nil {
			for c := head.FirstChild.FirstChild; c != nil; c = c.Next {
				cols++
			}
		}
		f := strings.TrimSpace(strings.Repeat("lx ", cols))
		io.WriteString(w, "\n.TS\nallbox;\n"+f+"\n"+f+" .\n") //nolint:errcheck
		return blackfriday.GoToNext
	case node.Type == blackfriday.TableCell && !node.IsHeader:
		var s string
		if entering {
			if node.Prev != nil && node.Prev.Type == blackfriday.TableCell {
				s = "\t"
			}
			s += "T{\n"
		} else {
			s = "\nT}"
			if node.Next == nil {
				s += "\n"
			}
		}
		io.WriteString(w, s) //nolint:errcheck
		return blackfriday.GoToNext
	case node.Type == blackfriday.Code && (inTable(node) || len(node.Literal) > longCode):
		code := string(node.Literal)
		if inTable(node) {
			code = strings.ReplaceAll(code, `\|`, "|")
		}
		code = strings.ReplaceAll(code, "\n", " ")
		code = strings.ReplaceAll(code, `\`, `\\`)
		for _, c := range []string{"/", ",", "|"} {
			code = strings.ReplaceAll(code, c, c+`\:`)
		}
		io.WriteString(w, `\fB`+code+`\fR`) //nolint:errcheck
		return blackfriday.GoToNext
	}
	return r.Renderer.RenderNode(w, node, entering)
}

func inTable(n *blackfriday.Node) bool {
	for ; n != nil; n = n.Parent {
		if n.Type == blackfriday.TableCell {
			return true
		}
	}
	return false
}

// cutTitleBlock splits off the leading `%` lines (a pandoc/go-md2man
// title block) and returns the first one without its `%`.
func cutTitleBlock(src []byte) (string, []byte, bool) {
	if !bytes.HasPrefix(src, []byte("%")) {
		return "", nil, false
	}
	first, rest, _ := bytes.Cut(src, []byte("\n"))
	for bytes.HasPrefix(rest, []byte("%")) {
		_, rest, _ = bytes.Cut(rest, []byte("\n"))
	}
	return strings.TrimSpace(string(first[1:])), rest, true
}

// cutFirstHeading removes a first line `# title`.
func cutFirstHeading(src []byte) ([]byte, bool) {
	first, rest, _ := bytes.Cut(src, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("# ")) {
		return nil, false
	}
	return rest, true
}

var titleParen = regexp.MustCompile(`^([^\s(]+)\(([0-9][a-z]*)\)`)

// parseTitle reads `name section "date" "source" "manual"` (go-md2man's
// own style) or `name(section) …` and returns name, section and the
// fields.
func parseTitle(tb string) (name, section string, fields []string) {
	fields = splitQuoted(tb)
	if m := titleParen.FindStringSubmatch(tb); m != nil {
		return m[1], m[2], fields
	}
	if len(fields) >= 2 {
		return fields[0], fields[1], fields
	}
	return "", "", fields
}

// splitQuoted splits s at blanks, keeping "double quoted" fields whole.
func splitQuoted(s string) []string {
	var fields []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			if end := strings.IndexByte(s[1:], '"'); end >= 0 {
				fields = append(fields, s[1:1+end])
				s = s[2+end:]
				continue
			}
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		fields = append(fields, s[:end])
		s = s[end:]
	}
	return fields
}

// escapeHyphens turns each - of a text line that is not already part of
// an escape into \-.
func escapeHyphens(l string) string {
	if !strings.Contains(l, "-") {
		return l
	}
	var b strings.Builder
	escaped := false
	for _, r := range l {
		if r == '-' && !escaped {
			b.WriteString(`\-`)
			continue
		}
		escaped = r == '\\' && !escaped
		b.WriteRune(r)
	}
	return b.String()
}
