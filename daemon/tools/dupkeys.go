package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// duplicateKey reports the first object key that appears twice in the
// same JSON object of doc, with the JSON Pointer of that object ("" for
// the top level). Go's decoder, the schema validator and most tools keep
// the last of two equal keys, some keep the first: a document with
// duplicates can pass validation with one value and reach the tool with
// the other, so invoke requests must not have any. Keys are compared
// after unescaping ("a" and "\u0061" are the same key). ok is false for a
// document without duplicates and for malformed JSON (the decoder that
// follows reports that).
func duplicateKey(doc []byte) (pointer, key string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type frame struct {
		object bool
		seen   map[string]bool
		key    string // object: the key whose value comes next
		index  int    // array: the index of the next element
		expect bool   // object: the next string token is a key
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack[:len(stack)-1] {
			b.WriteByte('/')
			if f.object {
				b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(f.key))
			} else {
				b.WriteString(strconv.Itoa(f.index))
			}
		}
		return b.String()
	}
	// value records that a value ended inside the innermost container.
	value := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.object {
			f.expect = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return "", "", false
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, seen: map[string]bool{}, expect: true})
			case '[':
				stack = append(stack, &frame{})
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
				value()
			}
			continue
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expect {
				f := stack[n-1]
				if f.seen[t] {
					return path(), t, true
				}
				f.seen[t] = true
				f.key, f.expect = t, false
				continue
			}
		}
		value()
	}
}
