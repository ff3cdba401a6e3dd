package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// kv is one leaf of a JSON object, with its dotted key, in document order.
type kv struct {
	key      string
	val      string // the string's text, or the JSON text of anything else
	isString bool
}

// flattenJSON returns the leaves of a JSON object in document order:
// nested objects become dotted keys, arrays stay compact JSON. Anything that
// is not an object gives nil.
func flattenJSON(raw []byte) []kv {
	out, err := flattenObject(raw)
	if err != nil {
		return nil
	}
	return out
}

func flattenObject(raw []byte) ([]kv, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []kv
	if err := walkObject(dec, "", &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return out, nil
}

// walkObject reads the members of an object whose '{' was consumed.
func walkObject(dec *json.Decoder, prefix string, out *[]kv) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if err := walkValue(dec, key, out); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func walkValue(dec *json.Decoder, key string, out *[]kv) error {
	// Peek by decoding into RawMessage for arrays; objects are walked.
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return walkObject(dec, key, out)
		}
		// '[': collect the array back into compact JSON.
		var items []json.RawMessage
		for dec.More() {
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return err
			}
			items = append(items, item)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return err
		}
		b, _ := json.Marshal(items) // RawMessages re-encode verbatim
		*out = append(*out, kv{key: key, val: string(compactBytes(b))})
	case string:
		*out = append(*out, kv{key: key, val: v, isString: true})
	case json.Number:
		*out = append(*out, kv{key: key, val: v.String()})
	case bool:
		*out = append(*out, kv{key: key, val: strconv.FormatBool(v)})
	case nil:
		*out = append(*out, kv{key: key, val: "null"})
	}
	return nil
}

func compactBytes(b []byte) []byte {
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		return b
	}
	return c.Bytes()
}

// logTimeLayout is how `gatewayctl logs` prints times: local, millisecond.
const logTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// renderLogLine turns one JSON log line into "TIME LEVEL msg key=val …".
// It reads gatewayd's records (slog's JSONHandler: time, level, msg or
// message, then attributes) and OpenClaw's (tslog: positional arguments
// under "0", "1", …, metadata under "_meta"; see openclawRecord). Lines
// that are not JSON objects are returned unchanged.
func renderLogLine(line string) string {
	kvs, err := flattenObject([]byte(line))
	if err != nil {
		return line
	}
	var ts, level, msg string
	var rest []kv
	if oc, ok := openclawRecord(line); ok {
		ts, level, msg, rest = oc.time, oc.level, oc.message, oc.attrs
	} else {
		for _, f := range kvs {
			switch f.key {
			case "time":
				ts = f.val
			case "level":
				level = f.val
			case "msg":
				msg = f.val
			case "message": // OpenClaw's name of msg; gatewayd's logs.tail adds it beside msg
				if msg == "" {
					msg = f.val
				}
			default:
				rest = append(rest, f)
			}
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format(logTimeLayout)
	}
	var b strings.Builder
	if ts != "" {
		b.WriteString(ts)
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%-5s %s", level, msg)
	for _, f := range rest {
		b.WriteByte(' ')
		b.WriteString(f.key)
		b.WriteByte('=')
		if f.isString && needsQuote(f.val) {
			b.WriteString(strconv.Quote(f.val))
		} else {
			b.WriteString(f.val)
		}
	}
	return b.String()
}

// ocRecord is an OpenClaw log record read as OpenClaw's own `openclaw
// logs` reads it (src/logging/parse-log-line.ts).
type ocRecord struct {
	time, level, message string
	attrs                []kv
}

// openclawRecord recognizes an OpenClaw (tslog) record: an object with
// "_meta" or positional keys ("0", "1", …), as in
// {"0":"{\"subsystem\":\"gateway/ws\"}","1":"…","_meta":{"logLevelName":"INFO",…},"time":"…","message":"…"}.
// The time is "time", else _meta.date; the level _meta.logLevelName,
// else "level"; the message "message", else the positional strings
// joined. The subsystem (from _meta.name, else a JSON "0") and the
// fields of positional objects become attributes; the rest of _meta,
// tracing ids and the host name are left out.
func openclawRecord(line string) (*ocRecord, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &m) != nil {
		return nil, false
	}
	var meta struct {
		Date         string `json:"date"`
		LogLevelName string `json:"logLevelName"`
		Name         string `json:"name"`
	}
	_, hasMeta := m["_meta"]
	_, hasPos := m["0"]
	if !hasMeta && !hasPos {
		return nil, false
	}
	if hasMeta && json.Unmarshal(m["_meta"], &meta) != nil {
		return nil, false
	}
	str := func(key string) string {
		var v string
		_ = json.Unmarshal(m[key], &v)
		return v
	}
	r := &ocRecord{time: cmp.Or(str("time"), meta.Date), level: strings.ToUpper(cmp.Or(meta.LogLevelName, str("level")))}
	subsystem := subsystemOf(meta.Name)
	// Positional arguments in order; "0" is the logger's context when it
	// carries the subsystem.
	var pos []string
	for k := range m {
		if _, err := strconv.Atoi(k); err == nil {
			pos = append(pos, k)
		}
	}
	slices.SortFunc(pos, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	var texts []string
	for _, k := range pos {
		raw := m[k]
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if k == "0" && (s == meta.Name || subsystemOf(s) != "") {
				subsystem = cmp.Or(subsystem, subsystemOf(s))
				continue
			}
			texts = append(texts, s)
			continue
		}
		if fields, err := flattenObject(raw); err == nil {
			r.attrs = append(r.attrs, fields...)
			continue
		}
		texts = append(texts, string(compactBytes(raw)))
	}
	r.message = str("message")
	if r.message == "" {
		r.message = strings.Join(texts, " ")
	}
	if subsystem != "" {
		r.attrs = append([]kv{{key: "subsystem", val: subsystem, isString: true}}, r.attrs...)
	}
	return r, true
}

// subsystemOf reads the subsystem of a tslog logger name such as
// {"subsystem":"gateway/ws"}; "" when there is none.
func subsystemOf(name string) string {
	if !strings.HasPrefix(strings.TrimSpace(name), "{") {
		return ""
	}
	var v struct {
		Subsystem string `json:"subsystem"`
	}
	_ = json.Unmarshal([]byte(name), &v)
	return v.Subsystem
}

// needsQuote reports whether a string value must be quoted to stay one
// key=value token (slog's TextHandler rule).
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
