package units

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Unit is a parsed unit file or drop-in: its sections in file order.
type Unit struct {
	// Sections in the order they appear; a section header that appears
	// twice gives two entries (systemd merges them, and so do Values/Get).
	Sections []Section
}

// Section is one [Name] block of a unit file.
type Section struct {
	// Name is the section name without brackets, e.g. "Service".
	Name string
	// Options are the section's assignments in file order.
	Options []Option
}

// Option is one Key=Value assignment.
type Option struct {
	// Key is the option name with surrounding whitespace removed.
	Key string
	// Value is the value with surrounding whitespace removed and
	// continuation lines joined with a single space.
	Value string
	// Line is the 1-based line number where the assignment starts.
	Line int
}

// ParseError is a syntax error in a unit file.
type ParseError struct {
	// Line is the 1-based line number of the offending line.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// errNoSection describes an assignment before any [Section].
var errNoSection = errors.New("assignment outside of a section")

// maxLine bounds a single logical line (systemd's own limit is LONG_LINE_MAX,
// 1 MiB).
const maxLine = 1 << 20

// Parse parses a unit file or drop-in the way systemd reads it: blank lines
// and lines starting with '#' or ';' are ignored, a trailing backslash
// continues the assignment on the next line (comment lines inside a
// continuation are skipped), "[Name]" starts a section, and "Key = Value"
// is an assignment (whitespace around key and value is dropped). Errors are
// *ParseError values carrying the line number.
func Parse(data []byte) (*Unit, error) {
	u := &Unit{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var (
		lineNo    int
		cont      bool // the previous line ended with a backslash
		pending   strings.Builder
		startLine int
	)
	flush := func() error {
		if err := u.addLine(pending.String(), startLine); err != nil {
			return err
		}
		pending.Reset()
		return nil
	}
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\uFEFF")
		}
		line := strings.TrimSpace(raw)
		if cont {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			pending.WriteByte(' ')
		} else {
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			startLine = lineNo
		}
		if strings.HasSuffix(line, `\`) && !strings.HasPrefix(line, "[") {
			pending.WriteString(strings.TrimRight(strings.TrimSuffix(line, `\`), " \t"))
			cont = true
			if pending.Len() > maxLine {
				return nil, &ParseError{Line: startLine, Msg: "continued line longer than 1 MiB"}
			}
			continue
		}
		cont = false
		pending.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Line: lineNo + 1, Msg: err.Error()}
	}
	if cont {
		// systemd accepts a backslash on the last line; so do we.
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (u *Unit) addLine(line string, n int) error {
	if strings.HasPrefix(line, "[") {
		if !strings.HasSuffix(line, "]") || len(line) < 3 {
			return &ParseError{Line: n, Msg: fmt.Sprintf("invalid section header %q: write it as [Name]", line)}
		}
		name := line[1 : len(line)-1]
		if strings.ContainsAny(name, "[]") || strings.TrimSpace(name) != name {
			return &ParseError{Line: n, Msg: fmt.Sprintf("invalid section name %q", name)}
		}
		u.Sections = append(u.Sections, Section{Name: name})
		return nil
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return &ParseError{Line: n, Msg: fmt.Sprintf("missing '=' in %q: write Key=Value", line)}
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if key == "" {
		return &ParseError{Line: n, Msg: fmt.Sprintf("missing key before '=' in %q", line)}
	}
	if strings.ContainsAny(key, " \t") {
		return &ParseError{Line: n, Msg: fmt.Sprintf("invalid key %q: keys contain no whitespace", key)}
	}
	if len(u.Sections) == 0 {
		return &ParseError{Line: n, Msg: fmt.Sprintf("%v: %q comes before any [Section] header", errNoSection, key)}
	}
	s := &u.Sections[len(u.Sections)-1]
	s.Options = append(s.Options, Option{Key: key, Value: value, Line: n})
	return nil
}

// Merge returns a unit holding main's sections followed by each drop-in's,
// which is how systemd applies drop-ins (in the order given; sort them by
// file name first). Nil units are skipped.
func Merge(main *Unit, dropins ...*Unit) *Unit {
	m := &Unit{}
	for _, u := range append([]*Unit{main}, dropins...) {
		if u != nil {
			m.Sections = append(m.Sections, u.Sections...)
		}
	}
	return m
}

// Values returns the effective values of a key in a section, following
// systemd's rules for list-valued options: every assignment appends, and an
// empty assignment ("ListenStream=") clears what came before. It returns nil
// when the key is not set or was cleared last.
func (u *Unit) Values(section, key string) []string {
	var vals []string
	for _, s := range u.Sections {
		if s.Name != section {
			continue
		}
		for _, o := range s.Options {
			if o.Key != key {
				continue
			}
			if o.Value == "" {
				vals = nil
				continue
			}
			vals = append(vals, o.Value)
		}
	}
	return vals
}

// Get returns the last value assigned to a key in a section (the effective
// value of a single-valued option) and whether the key is assigned at all.
func (u *Unit) Get(section, key string) (string, bool) {
	var (
		val string
		ok  bool
	)
	for _, s := range u.Sections {
		if s.Name != section {
			continue
		}
		for _, o := range s.Options {
			if o.Key == key {
				val, ok = o.Value, true
			}
		}
	}
	return val, ok
}

// ListenStreams returns the effective ListenStream= addresses of a socket
// unit, with any drop-ins applied in the order given. It returns nil if the
// unit or a drop-in does not parse.
func ListenStreams(data []byte, dropins ...[]byte) []string {
	u, err := parseAll(data, dropins)
	if err != nil {
		return nil
	}
	return u.Values("Socket", "ListenStream")
}

// EnvironmentOf returns the variables set by Environment= in the [Service]
// section, with any drop-ins applied in the order given. Quoting follows
// systemd ("A=1 B=2" sets two variables, "\"A=x y\"" one with a space); an
// empty Environment= clears earlier ones, and later assignments win. It
// returns nil if the unit or a drop-in does not parse.
func EnvironmentOf(data []byte, dropins ...[]byte) map[string]string {
	u, err := parseAll(data, dropins)
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, v := range u.Values("Service", "Environment") {
		for _, w := range splitWords(v) {
			k, val, ok := strings.Cut(w, "=")
			if !ok || k == "" {
				continue // systemd ignores invalid assignments too
			}
			env[k] = val
		}
	}
	return env
}

func parseAll(data []byte, dropins [][]byte) (*Unit, error) {
	main, err := Parse(data)
	if err != nil {
		return nil, err
	}
	ds := make([]*Unit, 0, len(dropins))
	for _, d := range dropins {
		du, err := Parse(d)
		if err != nil {
			return nil, err
		}
		ds = append(ds, du)
	}
	return Merge(main, ds...), nil
}

// splitWords splits a value into words the way systemd's Environment= does:
// whitespace separates words, single and double quotes group, a backslash
// escapes the next character (\n, \t and \\ as in C), and "%%" is a literal
// '%'.
func splitWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		inTok bool
		quote rune
		esc   bool
	)
	for _, r := range strings.ReplaceAll(s, "%%", "%") {
		switch {
		case esc:
			switch r {
			case 'n':
				r = '\n'
			case 't':
				r = '\t'
			}
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc, inTok = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inTok = r, true
		case r == ' ' || r == '\t':
			if inTok {
				words = append(words, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if inTok {
		words = append(words, cur.String())
	}
	return words
}
