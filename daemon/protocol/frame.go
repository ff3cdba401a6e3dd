package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DecodeRequest strictly decodes one request frame. Unknown fields, a wrong
// type, an empty id or method, trailing data and an over-long traceparent
// are errors; the message is meant to follow "invalid request frame: ".
func DecodeRequest(data []byte) (*RequestFrame, error) {
	// Fast path: Unmarshal (no Decoder buffers) plus a check of the
	// top-level keys. Any problem takes the strict Decoder path below,
	// which words the error.
	var f RequestFrame
	if json.Unmarshal(data, &f) == nil && knownKeys(data, requestKeys) {
		return checkRequest(&f)
	}
	return decodeRequestStrict(data)
}

// requestKeys are RequestFrame's JSON names. Matching is case-insensitive
// like encoding/json's field matching, so both paths accept the same
// frames.
var requestKeys = []string{"type", "id", "method", "params", "traceparent"}

// knownKeys reports whether every top-level key of the JSON object data
// (already known to be valid JSON) is one of keys.
func knownKeys(data []byte, keys []string) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			start := i + 1
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth != 1 {
				continue
			}
			// A string at depth 1 is a key when a colon follows.
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && data[j] == ':' {
				key := data[start:i]
				if bytes.IndexByte(key, '\\') >= 0 {
					return false // escaped key: let the strict path judge it
				}
				ok := false
				for _, k := range keys {
					if len(k) == len(key) && strings.EqualFold(k, string(key)) {
						ok = true
						break
					}
				}
				if !ok {
					return false
				}
			}
		}
	}
	return true
}

func decodeRequestStrict(data []byte) (*RequestFrame, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f RequestFrame
	if err := dec.Decode(&f); err != nil {
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return checkRequest(&f)
}

// checkRequest checks a decoded frame's values.
func checkRequest(f *RequestFrame) (*RequestFrame, error) {
	switch {
	case f.Type != TypeReq:
		if f.Type == "" {
			return nil, errors.New("at /type: missing (expected \"req\")")
		}
		return nil, fmt.Errorf("at /type: %q is not \"req\"", f.Type)
	case f.ID == "":
		return nil, errors.New("at /id: must be a non-empty string")
	case f.Method == "":
		return nil, errors.New("at /method: must be a non-empty string")
	case len(f.Traceparent) > MaxTraceparentLen:
		return nil, fmt.Errorf("at /traceparent: longer than %d characters", MaxTraceparentLen)
	}
	return f, nil
}

// DecodeParams strictly decodes a method's params into v: absent or null
// params decode as {}, unknown fields are rejected. The error reads
// "at /path: …".
func DecodeParams(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("at /: trailing data after the params object")
	}
	return nil
}

func describeJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("not valid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		path := "/" + te.Field
		if te.Field == "" {
			path = "/"
		}
		return fmt.Errorf("at %s: expected %s, got JSON %s", dotsToSlashes(path), te.Type.String(), te.Value)
	case errors.Is(err, io.EOF):
		return errors.New("empty frame")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: unexpected end of input")
	}
	// DisallowUnknownFields: `json: unknown field "x"`.
	msg := err.Error()
	if rest, ok := cutPrefix(msg, "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(rest); uerr == nil {
			return fmt.Errorf("at /: unexpected property %q", name)
		}
	}
	return fmt.Errorf("%s", trimJSONPrefix(msg))
}

func dotsToSlashes(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("."), []byte("/")))
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func trimJSONPrefix(s string) string {
	r, _ := cutPrefix(s, "json: ")
	return r
}

// InvalidFrame builds the response the gateway sends for an undecodable
// frame after the handshake.
func InvalidFrame(err error) *ResponseFrame {
	return &ResponseFrame{Type: TypeRes, ID: "invalid", OK: false,
		Error: &Error{Code: ErrInvalidRequest, Message: "invalid request frame: " + err.Error()}}
}

// InvalidParams builds the error for params that fail validation:
// `invalid X params: at /path: …`.
func InvalidParams(method string, err error) *Error {
	return &Error{Code: ErrInvalidRequest, Message: fmt.Sprintf("invalid %s params: %v", method, err)}
}

// MissingScope builds the FORBIDDEN error for a missing scope.
func MissingScope(scope string, required []string) *Error {
	return &Error{Code: ErrForbidden, Message: "missing scope: " + scope,
		Details: Details{"code": DetailMissingScope, "missingScope": scope, "requiredScopes": required}}
}

// DetailUnknownMethod is details.code of a call to a method this gateway
// does not implement.
const DetailUnknownMethod = "UNKNOWN_METHOD"

// UnknownMethod is the answer to a method this gateway does not implement,
// whatever the caller's role and scopes. The message is OpenClaw's own
// ("unknown method: X": its clients match it exactly to fall back to older
// methods); details say that this gateway does not implement it.
func UnknownMethod(method string) *Error {
	return &Error{Code: ErrInvalidRequest, Message: "unknown method: " + method,
		Details: Details{"code": DetailUnknownMethod, "method": method,
			"reason": method + " is not implemented by this gateway (gatewayd); hello-ok features.methods lists the methods it implements"}}
}
