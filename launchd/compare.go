package launchd

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/units"
	"howett.net/plist"
)

// Finding is one difference between the rendered and the installed plist.
// It is units.Finding, so doctor reports systemd and launchd drift alike:
// Unit holds the label, Key the dotted key path ("Sockets.Listeners.0.SockNodeName"),
// Section is empty.
type Finding = units.Finding

// value is one flattened plist leaf: its type and its display text.
type value struct {
	typ, text string
}

// Compare classifies an installed plist (XML, binary or OpenStep, as launchd
// accepts all three) against the rendered one, key by key:
//
//   - installed == nil: units.KindMissing;
//   - byte-identical: units.KindUnchanged;
//   - different bytes but equal values: units.KindEquivalent;
//   - otherwise one units.KindChanged, KindAdded or KindRemoved finding per
//     key. Nested dictionary keys are dotted; arrays of plain values (like
//     ProgramArguments) compare as one ordered list (Expected/Actual joined
//     with "\n"); arrays of dictionaries are indexed
//     ("Sockets.Listeners.1.SockFamily").
//
// A plist that does not decode gives units.KindInvalid.
func Compare(expected, installed []byte) []Finding {
	exp, err := flattenPlist(expected)
	if err != nil {
		return []Finding{{Kind: units.KindInvalid, Detail: fmt.Sprintf("rendered plist does not decode: %v", err)}}
	}
	label := exp["Label"].text
	switch {
	case installed == nil:
		return []Finding{{Kind: units.KindMissing, Unit: label, Detail: "the plist is not installed; run `gatewayctl install`"}}
	case bytes.Equal(expected, installed):
		return []Finding{{Kind: units.KindUnchanged, Unit: label}}
	}
	inst, err := flattenPlist(installed)
	if err != nil {
		return []Finding{{Kind: units.KindInvalid, Unit: label, Detail: fmt.Sprintf("installed plist does not decode: %v; reinstall it with `gatewayctl install`", err)}}
	}
	var out []Finding
	for _, k := range sortedKeys(exp) {
		e := exp[k]
		a, ok := inst[k]
		switch {
		case !ok:
			out = append(out, Finding{Kind: units.KindRemoved, Unit: label, Key: k, Expected: e.text})
		case a != e:
			f := Finding{Kind: units.KindChanged, Unit: label, Key: k, Expected: e.text, Actual: a.text}
			if a.typ != e.typ {
				f.Detail = fmt.Sprintf("type %s, want %s", a.typ, e.typ)
			}
			out = append(out, f)
		}
	}
	for _, k := range sortedKeys(inst) {
		if _, ok := exp[k]; !ok {
			out = append(out, Finding{Kind: units.KindAdded, Unit: label, Key: k, Actual: inst[k].text})
		}
	}
	if len(out) == 0 {
		return []Finding{{Kind: units.KindEquivalent, Unit: label, Detail: "same keys and values in a different encoding or layout"}}
	}
	return out
}

func sortedKeys(m map[string]value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func flattenPlist(data []byte) (map[string]value, error) {
	var root any
	if _, err := plist.Unmarshal(data, &root); err != nil {
		return map[string]value{}, err
	}
	dict, ok := root.(map[string]any)
	if !ok {
		return map[string]value{}, fmt.Errorf("top level is %T, want a dictionary", root)
	}
	out := map[string]value{}
	flatten("", dict, out)
	return out, nil
}

func flatten(prefix string, v any, out map[string]value) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			out[prefix] = value{"dict", "{}"}
		}
		for k, child := range t {
			flatten(join(k), child, out)
		}
	case []any:
		if allScalar(t) {
			texts := make([]string, len(t))
			types := make([]string, len(t))
			for i, e := range t {
				s := scalar(e)
				texts[i], types[i] = s.text, s.typ
			}
			out[prefix] = value{"array(" + strings.Join(types, ",") + ")", strings.Join(texts, "\n")}
			return
		}
		for i, e := range t {
			flatten(join(strconv.Itoa(i)), e, out)
		}
	default:
		out[prefix] = scalar(t)
	}
}

func allScalar(a []any) bool {
	for _, e := range a {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func scalar(v any) value {
	switch t := v.(type) {
	case string:
		return value{"string", t}
	case bool:
		return value{"bool", strconv.FormatBool(t)}
	case uint64:
		return value{"integer", strconv.FormatUint(t, 10)}
	case int64:
		return value{"integer", strconv.FormatInt(t, 10)}
	case float64:
		return value{"real", strconv.FormatFloat(t, 'g', -1, 64)}
	case time.Time:
		return value{"date", t.UTC().Format(time.RFC3339)}
	case []byte:
		return value{"data", base64.StdEncoding.EncodeToString(t)}
	default:
		return value{fmt.Sprintf("%T", t), fmt.Sprint(t)}
	}
}
