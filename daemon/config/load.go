package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a problem with the config file: where it is and which key it
// concerns. Line and Col are 1-based (Col counts characters); 0 means
// unknown. Key is the dotted key, with [i] for list elements, when known.
type Error struct {
	File string
	Line int
	Col  int
	Key  string
	Msg  string
}

// Error returns "config FILE:LINE:COL: KEY: MSG (fix the file, or move it
// aside to start from defaults)". Parts that are unknown are left out; an
// Error without a File (from Validate) reads "KEY: MSG".
func (e *Error) Error() string {
	if e.File == "" {
		return e.Located()
	}
	return "config " + e.Located() + " (fix the file, or move it aside to start from defaults)"
}

// Located renders the error for editors and scripts, one line:
// "FILE:LINE:COL: KEY: MSG" (":LINE:COL" left out when unknown, "KEY: "
// when there is no key). gatewayd --check-config and gatewayctl config
// validate print it.
func (e *Error) Located() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Loaded is the result of Load.
type Loaded struct {
	Path   string  // the file that was read
	Exists bool    // false: no file, Config is Default()
	Hash   string  // hex SHA-256 of the file's bytes; "" when it does not exist
	Config *Config // the effective config: the file's values with defaults filled in (WithDefaults)
	Raw    []byte  // the file's bytes; nil when it does not exist

	pos map[string]int64 // dotted key -> byte offset in Raw
}

// Position returns the 1-based line and column of key (a dotted key like
// "gateway.bind", or its nearest parent that is in the file) in the file;
// ok is false when neither key nor a parent is in the file.
func (l *Loaded) Position(key string) (line, col int, ok bool) {
	if l == nil || l.pos == nil {
		return 0, 0, false
	}
	w := walker{raw: l.Raw, pos: l.pos}
	off, ok := w.lookup(key)
	if !ok {
		return 0, 0, false
	}
	line, col = lineCol(l.Raw, off)
	return line, col, true
}

// ErrorAt returns an *Error for key in this file, with its position when
// the key (or a parent) is in the file.
func (l *Loaded) ErrorAt(key, msg string) *Error {
	e := &Error{File: l.Path, Key: key, Msg: msg}
	e.Line, e.Col, _ = l.Position(key)
	return e
}

// Load reads and validates the config file at path. A missing file is not an
// error: it gives Default() with Exists false. Everything else that is wrong
// (an empty file, bad JSON, a wrong type, an unknown or duplicate key, a
// value Validate rejects) is an *Error naming the file, line, column and key.
// The returned Config has defaults filled in.
func Load(path string) (*Loaded, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Loaded{Path: path, Config: Default()}, nil
	}
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	cfg, pos, err := parse(path, raw)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &Loaded{
		Path:   path,
		Exists: true,
		Hash:   hex.EncodeToString(sum[:]),
		Config: cfg.WithDefaults(),
		Raw:    raw,
		pos:    pos,
	}, nil
}

// Parse parses and validates config file contents; file names them in
// errors. It returns the config exactly as written (no defaults filled in).
// Errors are *Error.
func Parse(file string, raw []byte) (*Config, error) {
	cfg, _, err := parse(file, raw)
	return cfg, err
}

func parse(file string, raw []byte) (*Config, map[string]int64, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil, &Error{File: file, Line: 1, Col: 1, Msg: "the file is empty (a half-written file is not taken as the defaults; write {} for all defaults)"}
	}
	w := walker{raw: raw, file: file, pos: map[string]int64{}}
	if err := w.document(); err != nil {
		return nil, nil, err
	}
	cfg := &Config{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, nil, w.decodeError(err)
	}
	if err := cfg.Validate(); err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			return nil, nil, &Error{File: file, Msg: err.Error()}
		}
		out := *ce
		out.File = file
		if off, ok := w.lookup(out.Key); ok {
			out.Line, out.Col = lineCol(raw, off)
		}
		return nil, nil, &out
	}
	return cfg, w.pos, nil
}

// walker walks the raw JSON with encoding/json's tokenizer before it is
// decoded. It records where every key (and list element) starts, and
// rejects what encoding/json would let through or report without a
// position: unknown keys (encoding/json also matches keys case-insensitively;
// we do not), duplicate keys, a top level that is not an object, and
// trailing data.
type walker struct {
	raw  []byte
	file string
	dec  *json.Decoder
	pos  map[string]int64 // dotted key -> byte offset of the key (or element)
}

func (w *walker) document() error {
	w.dec = json.NewDecoder(bytes.NewReader(w.raw))
	w.dec.UseNumber()
	start := w.skip(0)
	if start < int64(len(w.raw)) && w.raw[start] != '{' {
		return w.errAt(start, "", "the top level must be a JSON object {...}")
	}
	if err := w.value("", reflect.TypeFor[Config]()); err != nil {
		return err
	}
	after := w.skip(w.dec.InputOffset())
	if _, err := w.dec.Token(); err != io.EOF {
		return w.errAt(after, "", "unexpected data after the top-level object")
	}
	return nil
}

// value reads one JSON value at key, checking object keys against t (nil:
// anything goes).
func (w *walker) value(key string, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.dec.Token()
	if err != nil {
		return w.syntax(err, key)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		fields := jsonFields(t)
		seen := map[string]bool{}
		for w.dec.More() {
			at := w.skip(w.dec.InputOffset())
			tok, err := w.dec.Token()
			if err != nil {
				return w.syntax(err, key)
			}
			name, _ := tok.(string)
			child := join(key, name)
			var childType reflect.Type
			if t != nil && t.Kind() == reflect.Map {
				childType = t.Elem() // a map's keys are free, its values typed
			}
			if fields != nil {
				ft, known := fields[name]
				if !known {
					return w.errAt(at, child, unknownKeyMsg(name, fields))
				}
				childType = ft
			}
			if seen[name] {
				return w.errAt(at, child, "duplicate key (it is set earlier in the same object; keep one)")
			}
			seen[name] = true
			w.pos[child] = at
			if err := w.value(child, childType); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			child := key + "[" + strconv.Itoa(i) + "]"
			w.pos[child] = w.skip(w.dec.InputOffset())
			if err := w.value(child, elem); err != nil {
				return err
			}
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing delimiter
		return w.syntax(err, key)
	}
	return nil
}

// jsonFields maps the JSON names of struct type t to their types; nil when t
// is not a struct (then keys are not checked).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			// An embedded struct's fields are promoted, as encoding/json
			// does (channels' ChatConfig).
			maps.Copy(m, jsonFields(f.Type))
			continue
		}
		if name, ok := jsonName(t.Field(i)); ok {
			m[name] = t.Field(i).Type
		}
	}
	return m
}

// jsonName is a struct field's JSON key as encoding/json names it; false
// for unexported and `json:"-"` fields.
func jsonName(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return "", false
	}
	if name == "" {
		name = f.Name
	}
	return name, true
}

func unknownKeyMsg(name string, fields map[string]reflect.Type) string {
	for known := range fields {
		if strings.EqualFold(known, name) {
			return fmt.Sprintf("unknown key (keys are case-sensitive: did you mean %q?)", known)
		}
	}
	names := make([]string, 0, len(fields))
	for known := range fields {
		names = append(names, known)
	}
	slices.Sort(names)
	return fmt.Sprintf("unknown key (known keys here: %s)", strings.Join(names, ", "))
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// skip returns the offset of the first byte at or after off that is not
// white space or a separator: the start of the next token.
func (w *walker) skip(off int64) int64 {
	for off < int64(len(w.raw)) {
		switch w.raw[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func (w *walker) syntax(err error, key string) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// json.Decoder reports the offset of the offending byte.
		return w.errAt(max(se.Offset, 0), key, "invalid JSON: "+strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return w.errAt(int64(len(w.raw)), key, "invalid JSON: unexpected end of file (is the file complete?)")
	}
	return w.errAt(w.skip(w.dec.InputOffset()), key, "invalid JSON: "+err.Error())
}

func (w *walker) errAt(off int64, key, msg string) *Error {
	line, col := lineCol(w.raw, off)
	return &Error{File: w.file, Line: line, Col: col, Key: key, Msg: msg}
}

// lookup returns the offset of key, or of its nearest recorded parent.
func (w *walker) lookup(key string) (int64, bool) {
	for key != "" {
		if off, ok := w.pos[key]; ok {
			return off, true
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0, false
}

// decodeError turns an encoding/json error into an *Error with a position.
func (w *walker) decodeError(err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		key := te.Field
		// te.Value is "number 123" for numbers: where a string was
		// expected (a token typed without quotes, say) name the kind only.
		got := te.Value
		if te.Type.Kind() == reflect.String {
			got, _, _ = strings.Cut(got, " ")
		}
		msg := fmt.Sprintf("expected %s, got %s", typeName(te.Type), got)
		if off, ok := w.lookup(key); ok && key != "" {
			return w.errAt(off, key, msg)
		}
		return w.errAt(max(te.Offset-1, 0), key, msg)
	case errors.As(err, &se):
		return w.syntax(se, "")
	}
	return &Error{File: w.file, Msg: "invalid config: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list [...]"
	case reflect.Struct, reflect.Map:
		return "an object {...}"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}

// lineCol converts a byte offset into a 1-based line and character column.
func lineCol(raw []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(raw)))
	before := raw[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	col = 1 + utf8.RuneCount(before[lineStart:])
	return line, col
}
