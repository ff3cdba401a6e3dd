package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// What the sections share: filling defaults, copying, and the checks of
// Validate.

// Bounds shared by several sections.
const (
	minIntervalMs              = 10
	maxIntervalMs              = 24 * 60 * 60 * 1000
	maxHTTPBodyBytes           = 64 << 20
	maxChannelOrToolNameLength = 64
)

// nameRE is what channel and tool names look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// setDefault sets *p to def when it is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// setEach calls f with each value of m and stores what f made of it.
func setEach[K comparable, V any](m map[K]V, f func(*V)) {
	for k, v := range m {
		f(&v)
		m[k] = v
	}
}

// clonePtr returns a pointer to a copy of *p; nil stays nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// cloneMap returns a copy of m whose values have been through unshare;
// nil stays nil.
func cloneMap[K comparable, V any](m map[K]V, unshare func(*V)) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		unshare(&v)
		out[k] = v
	}
	return out
}

// firstError runs checks in order and returns the first problem.
func firstError(checks ...func() *Error) *Error {
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func oneOf(key, v string, allowed []string) *Error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

func intRange(key string, v, lo, hi int) *Error {
	if v >= lo && v <= hi {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (%d to %d; 0 or left out means the default)", v, lo, hi)}
}

func interval(key string, v int) *Error {
	if v == 0 || (v >= minIntervalMs && v <= maxIntervalMs) {
		return nil
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (%d to %d milliseconds; leave it out for the default)", v, minIntervalMs, maxIntervalMs)}
}

// bodyLimit checks a request body limit in bytes; 0 means def.
func bodyLimit(key string, v, def int64) *Error {
	if v < 0 || v > maxHTTPBodyBytes {
		return &Error{Key: key, Msg: fmt.Sprintf("%d is out of range (1 to %d bytes; leave it out for %d)", v, maxHTTPBodyBytes, def)}
	}
	return nil
}

func checkSecret(key, v string) *Error {
	if v != "" && strings.TrimSpace(v) != v {
		return &Error{Key: key, Msg: "has leading or trailing white space (remove it; clients would not send it)"}
	}
	return nil
}

func checkName(key, name, what string) *Error {
	if !nameRE.MatchString(name) || len(name) > maxChannelOrToolNameLength {
		return &Error{Key: key, Msg: fmt.Sprintf("%q is not a %s name (1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit)", name, what, maxChannelOrToolNameLength)}
	}
	return nil
}
