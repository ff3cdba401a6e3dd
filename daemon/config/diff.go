package config

import (
	"reflect"
	"slices"
	"strings"
)

// Change is one config key whose effective value differs between two
// configs.
type Change struct {
	Key string // dotted key, e.g. "gateway.auth.token"
	// RestartInProcess: the change takes effect only when the gateway
	// restarts in process (a new server generation in the same process,
	// listeners re-bound when they changed), not on a hot reload. It
	// never means restarting the process.
	RestartInProcess bool
}

// hotSafe lists the keys (and key prefixes: a key matches when it is the
// entry or lies below it) whose changes the running gateway applies on a hot
// reload. Everything else is restart-required: a Config field not listed
// here needs an in-process restart until it is made hot-safe here on
// purpose, which errs on the side of a restart rather than a setting that
// silently does not apply.
var hotSafe = []string{
	"gateway.auth",
	"gateway.controlUi",
	"gateway.reload",
	"gateway.tickIntervalMs",
	"gateway.healthIntervalMs",
	"gateway.allowedHosts",
	"gateway.limits",
	"logging.level",
	"commands",
	// The feature sections are applied by their packages on reload.
	"agents",
	"http",
	"channels",
	"tools",
	"hooks",
	"nodes",
}

// NeedsRestartInProcess reports whether a change of key takes effect only
// after an in-process restart (see Change.RestartInProcess).
func NeedsRestartInProcess(key string) bool {
	for _, p := range hotSafe {
		if key == p || strings.HasPrefix(key, p+".") {
			return false
		}
	}
	return true
}

// Diff returns the dotted keys whose effective values (defaults filled in)
// differ between old and new, sorted, each classified hot-safe or
// restart-required. Lists compare as a whole (the key is the list's, e.g.
// "gateway.listen"). A nil config counts as Default().
func Diff(old, new *Config) []Change {
	a := leaves(reflect.ValueOf(*old.WithDefaults()), "", map[string]reflect.Value{})
	b := leaves(reflect.ValueOf(*new.WithDefaults()), "", map[string]reflect.Value{})
	var out []Change
	for key, va := range a {
		if vb, ok := b[key]; !ok || !equal(va, vb) {
			out = append(out, Change{Key: key, RestartInProcess: NeedsRestartInProcess(key)})
		}
	}
	slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// equal compares two leaf values; an empty list equals an absent one.
func equal(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// leaves collects the non-struct values below v by dotted JSON key. Both
// sides of Diff have the same type, so their key sets are equal.
func leaves(v reflect.Value, prefix string, out map[string]reflect.Value) map[string]reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		name, ok := jsonName(t.Field(i))
		if !ok {
			continue
		}
		key := join(prefix, name)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			leaves(fv, key, out)
			continue
		}
		out[key] = fv
	}
	return out
}

// Carry returns a deep copy of next in which each of keys (dotted keys as
// Diff returns them) has running's value. The daemon uses it in reload mode
// hot: restart-required changes stay pending (the running values stay in
// effect) until a restart applies the file's values. Keys that name no
// field are ignored.
func Carry(running, next *Config, keys []string) *Config {
	out := next.clone()
	src := reflect.ValueOf(running.clone()).Elem()
	dst := reflect.ValueOf(out).Elem()
	for _, key := range keys {
		s, d := src, dst
		ok := true
		for _, name := range strings.Split(key, ".") {
			i := fieldByJSONName(s.Type(), name)
			if i < 0 {
				ok = false
				break
			}
			s, d = s.Field(i), d.Field(i)
			if s.Kind() != reflect.Struct {
				break
			}
		}
		if ok && d.CanSet() {
			d.Set(s)
		}
	}
	return out
}

func fieldByJSONName(t reflect.Type, name string) int {
	if t.Kind() != reflect.Struct {
		return -1
	}
	for i := range t.NumField() {
		if n, ok := jsonName(t.Field(i)); ok && n == name {
			return i
		}
	}
	return -1
}
