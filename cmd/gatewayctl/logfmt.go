package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// renderLogLine turns one JSON log line (slog's JSONHandler: time, level,
// msg, then attributes) into "TIME LEVEL msg key=val …". Lines that are not
// JSON objects are returned unchanged.
func renderLogLine(line string) string {
	kvs, err := flattenObject([]byte(line))
	if err != nil {
		return line
	}
	var ts, level, msg string
	var rest []kv
	for _, f := range kvs {
		switch f.key {
		case "time":
			ts = f.val
		case "level":
			level = f.val
		case "msg":
			msg = f.val
		case "message": // OpenClaw's name of msg; gatewayd's logs.tail adds it
			if msg == "" {
				msg = f.val
			}
		default:
			rest = append(rest, f)
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
