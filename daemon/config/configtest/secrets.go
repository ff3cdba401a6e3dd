// Package configtest builds config files for tests. SecretCases walks the
// Config type by reflection and puts a unique sentinel into every field
// tagged redact:"secret" or redact:"url", in valid and in invalid shapes,
// so a test can prove that no such value reaches config.get, an error, a
// status line or the log. A field added later with a redact tag is covered
// without touching the tests. Walk is the one walk over Config's JSON
// keys, shared with the docs test.
package configtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// SecretCase is one config file that holds Sentinel in the field at Key.
type SecretCase struct {
	Key      string // dotted key of the field, map keys as "x1"
	Tag      string // the field's redact tag: secret or url
	Shape    string // which value shape this case uses
	Sentinel string // appears in JSON only where the field's value is
	JSON     []byte // the config file
}

func (c SecretCase) String() string { return c.Key + "/" + c.Shape }

// SecretCases returns a case per tagged field and value shape.
func SecretCases() []SecretCase {
	var out []SecretCase
	n := 0
	Walk("x1", func(path []string, f reflect.StructField, _ bool) bool {
		tag := f.Tag.Get("redact")
		if tag != config.RedactSecret && tag != config.RedactURLTag {
			return true
		}
		for _, sh := range shapes(f.Type, tag) {
			n++
			sentinel := fmt.Sprintf("Zq%dsentinel%dX", n, n*7)
			doc := map[string]any{}
			set(doc, path, sh.value(sentinel))
			raw, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				panic(err)
			}
			out = append(out, SecretCase{Key: strings.Join(path, "."), Tag: tag, Shape: sh.name, Sentinel: sentinel, JSON: raw})
		}
		return false
	})
	return out
}

type shape struct {
	name  string
	value func(s string) any
}

func shapes(t reflect.Type, tag string) []shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var base []shape
	switch tag {
	case config.RedactSecret:
		base = []shape{
			{"plain", func(s string) any { return "tok-" + s + "-value" }},
			{"padded", func(s string) any { return " " + s + " " }}, // invalid: white space
			{"key=value", func(s string) any { return "API_KEY=" + s }},
			{"bare", func(s string) any { return s }},
		}
	case config.RedactURLTag:
		base = []shape{
			{"credentials", func(s string) any { return "https://user:" + s + "@h.example/v1/" + s + "?key=" + s + "#" + s }},
			{"username-only", func(s string) any { return "https://" + s + "@h.example/api" }},
			{"path-token", func(s string) any { return "https://hooks.example/services/T0/B0/" + s }},
			{"wrong-scheme", func(s string) any { return "ftp://u:" + s + "@h.example/?token=" + s }},
			{"unparseable", func(s string) any { return "http://[::1" + s + "/%zz" }},
			{"spaces", func(s string) any { return "not a url " + s }},
		}
	}
	var out []shape
	for _, b := range base {
		b := b
		switch t.Kind() {
		case reflect.String:
			out = append(out, b)
		case reflect.Slice:
			out = append(out, shape{b.name + "-list", func(s string) any { return []any{b.value(s)} }})
		case reflect.Map:
			out = append(out, shape{b.name + "-map", func(s string) any { return map[string]any{"X-Api-Key": b.value(s)} }})
		}
	}
	return out
}

// Walk calls visit for every field of config.Config, depth first, with
// its JSON path as encoding/json names it (promoted fields of embedded
// structs are their parent's); below a map the path element is mapKey.
// leaf says the field holds no object to descend into (not a struct, nor
// a map of them). visit returns whether to descend below the field.
func Walk(mapKey string, visit func(path []string, f reflect.StructField, leaf bool) bool) {
	walkType(reflect.TypeFor[config.Config](), nil, mapKey, visit)
}

func walkType(t reflect.Type, path []string, mapKey string, visit func([]string, reflect.StructField, bool) bool) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" && deref(f.Type).Kind() == reflect.Struct {
				walkType(f.Type, path, mapKey, visit) // promoted fields, as encoding/json does
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := append(append([]string(nil), path...), name)
			if visit(p, f, !holdsObject(f.Type)) {
				walkType(f.Type, p, mapKey, visit)
			}
		}
	case reflect.Map:
		walkType(t.Elem(), append(append([]string(nil), path...), mapKey), mapKey, visit)
	case reflect.Slice:
		if deref(t.Elem()).Kind() == reflect.Struct {
			panic("configtest: a list of objects in Config; teach Walk its JSON path")
		}
	}
}

// holdsObject reports whether a value of t is a JSON object Walk descends
// into: a struct, or a map of structs.
func holdsObject(t reflect.Type) bool {
	t = deref(t)
	return t.Kind() == reflect.Struct || t.Kind() == reflect.Map && deref(t.Elem()).Kind() == reflect.Struct
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func set(doc map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := doc[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			doc[p] = next
		}
		doc = next
	}
	doc[path[len(path)-1]] = v
}
