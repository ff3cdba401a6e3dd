package units

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Finding kinds. The first six are systemd-delta's words; the option-level
// kinds describe one key of a unit that differs from the rendered one.
const (
	// KindMissing: the unit file is not installed.
	KindMissing = "missing"
	// KindMasked: the unit is a symlink to /dev/null.
	KindMasked = "masked"
	// KindEquivalent: the file differs from the rendered one only in
	// comments, whitespace or the order of sections and keys.
	KindEquivalent = "equivalent"
	// KindRedirected: the unit is a symlink to another file.
	KindRedirected = "redirected"
	// KindOverridden: a drop-in changes the effective value of a key the
	// unit file sets.
	KindOverridden = "overridden"
	// KindExtended: a drop-in applies to the unit (reported, never "fixed").
	KindExtended = "extended"
	// KindUnchanged: the file is byte-identical to the rendered one.
	KindUnchanged = "unchanged"
	// KindChanged: a key has a different value than rendered.
	KindChanged = "changed"
	// KindAdded: a key is set that the rendered unit does not set.
	KindAdded = "added"
	// KindRemoved: a key of the rendered unit is not set.
	KindRemoved = "removed"
	// KindListenLeak: a drop-in adds ListenStream= (or another Listen*=)
	// without first clearing the list with an empty assignment, so the
	// socket listens on an extra address.
	KindListenLeak = "listen-added-without-reset"
	// KindInvalid: the installed unit or a drop-in does not parse.
	KindInvalid = "invalid"
)

// Finding is one difference between the rendered and the installed unit.
type Finding struct {
	// Kind is one of the Kind* constants.
	Kind string
	// Unit is the unit name, e.g. "gatewayd.socket".
	Unit string
	// Section and Key name the option for option-level kinds.
	Section, Key string
	// Expected and Actual are the rendered and installed values; list-valued
	// options join their values with "\n".
	Expected, Actual string
	// Path is the drop-in or symlink the finding is about, if any.
	Path string
	// Detail is a human explanation.
	Detail string
}

// String formats the finding on one line for logs and tests.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", f.Kind, f.Unit)
	if f.Section != "" || f.Key != "" {
		fmt.Fprintf(&b, " [%s] %s", f.Section, f.Key)
	}
	if f.Expected != "" || f.Actual != "" {
		fmt.Fprintf(&b, " expected=%q actual=%q", f.Expected, f.Actual)
	}
	if f.Path != "" {
		fmt.Fprintf(&b, " path=%s", f.Path)
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, ": %s", f.Detail)
	}
	return b.String()
}

// IsMaskTarget reports whether a unit symlink target means the unit is
// masked (it points at /dev/null).
func IsMaskTarget(target string) bool {
	return target != "" && filepath.Clean(target) == "/dev/null"
}

// SymlinkFinding classifies a unit file that is a symlink: KindMasked when it
// points at /dev/null, KindRedirected otherwise. Compare does not look at the
// file system; the caller Lstat()s the unit path and asks here.
func SymlinkFinding(unit, linkPath, target string) Finding {
	if IsMaskTarget(target) {
		return Finding{Kind: KindMasked, Unit: unit, Path: linkPath, Actual: target,
			Detail: "the unit is masked; unmask it with `systemctl unmask " + unit + "`"}
	}
	return Finding{Kind: KindRedirected, Unit: unit, Path: linkPath, Actual: target,
		Detail: "the unit file is a symlink to " + target}
}

// multiValued lists options whose assignments accumulate (and which an empty
// assignment clears); all other options take the last assignment.
var multiValued = map[string]bool{
	"Documentation": true, "Wants": true, "Requires": true, "Requisite": true, "BindsTo": true,
	"PartOf": true, "Upholds": true, "Conflicts": true, "Before": true, "After": true,
	"OnFailure": true, "OnSuccess": true, "PropagatesReloadTo": true, "ReloadPropagatedFrom": true,
	"JoinsNamespaceOf": true, "RequiresMountsFor": true,
	"WantedBy": true, "RequiredBy": true, "UpheldBy": true, "Also": true, "Alias": true,
	"ListenStream": true, "ListenDatagram": true, "ListenSequentialPacket": true,
	"ListenFIFO": true, "ListenSpecial": true, "ListenNetlink": true,
	"ListenMessageQueue": true, "ListenUSBFunction": true, "Symlinks": true,
	"Environment": true, "EnvironmentFile": true, "PassEnvironment": true, "UnsetEnvironment": true,
	"ExecCondition": true, "ExecStartPre": true, "ExecStart": true, "ExecStartPost": true,
	"ExecReload": true, "ExecStop": true, "ExecStopPost": true,
	"ExecStartPreSocket": true, "ExecStopPre": true,
	"SystemCallFilter": true, "SystemCallLog": true, "RestrictAddressFamilies": true,
	"RestrictNamespaces": true, "CapabilityBoundingSet": true, "AmbientCapabilities": true,
	"ReadWritePaths": true, "ReadOnlyPaths": true, "InaccessiblePaths": true, "ExecPaths": true,
	"NoExecPaths": true, "BindPaths": true, "BindReadOnlyPaths": true, "TemporaryFileSystem": true,
	"StateDirectory": true, "LogsDirectory": true, "ConfigurationDirectory": true,
	"RuntimeDirectory": true, "CacheDirectory": true, "SupplementaryGroups": true,
	"SuccessExitStatus": true, "RestartPreventExitStatus": true, "RestartForceExitStatus": true,
	"DeviceAllow": true, "IPAddressAllow": true, "IPAddressDeny": true,
	"LoadCredential": true, "LoadCredentialEncrypted": true, "SetCredential": true,
	"SetCredentialEncrypted": true, "ImportCredential": true, "SocketBindAllow": true,
	"SocketBindDeny": true, "RestrictFileSystems": true, "RestrictNetworkInterfaces": true,
}

// isListenKey reports whether a [Socket] key adds a listening address.
func isListenKey(key string) bool { return strings.HasPrefix(key, "Listen") && multiValued[key] }

type optKey struct{ section, key string }

// model is a unit reduced to its meaning: the effective value list of every
// (section, key), plus the order keys first appear in.
type model struct {
	order []optKey
	vals  map[optKey][]string
	// last is the option (with its source) that last touched each key.
	last map[optKey]int
}

func newModel() *model {
	return &model{vals: map[optKey][]string{}, last: map[optKey]int{}}
}

// apply adds a unit's assignments; src identifies the unit for m.last.
func (m *model) apply(u *Unit, src int) {
	for _, s := range u.Sections {
		for _, o := range s.Options {
			k := optKey{s.Name, o.Key}
			cur, seen := m.vals[k]
			if !seen {
				m.order = append(m.order, k)
			}
			switch {
			case !multiValued[o.Key]:
				cur = []string{o.Value}
			case o.Value == "":
				// Cleared, but still set: "CapabilityBoundingSet=" (no
				// capabilities) is not the same as leaving it out.
				cur = []string{}
			default:
				cur = append(append([]string(nil), cur...), o.Value)
			}
			m.vals[k] = cur
			m.last[k] = src
		}
	}
}

func (m *model) get(k optKey) (string, bool) {
	v, ok := m.vals[k]
	return strings.Join(v, "\n"), ok
}

func modelOf(units ...*Unit) *model {
	m := newModel()
	for i, u := range units {
		m.apply(u, i)
	}
	return m
}

// Compare classifies an installed unit against the rendered one.
//
//   - installed == nil: one KindMissing finding (plus drop-in findings);
//   - byte-identical: KindUnchanged;
//   - same options with other comments, whitespace or order: KindEquivalent;
//   - otherwise one KindChanged, KindAdded or KindRemoved finding per option
//     (Section, Key, Expected, Actual). List-valued options (ListenStream=,
//     Environment=, ExecStartPre=, ...) compare as ordered lists.
//
// Then, for each drop-in (path → content, applied in systemd's order: by
// file name, then path): KindExtended; KindOverridden for every option of
// the unit whose effective value the drop-in changes; KindListenLeak when it
// adds a Listen*= address without first clearing the list; KindInvalid if it
// does not parse. Drop-ins are reported, never meant to be "fixed".
//
// Masked and redirected units are symlinks, which Compare cannot see: use
// IsMaskTarget or SymlinkFinding.
func Compare(unit string, expected, installed []byte, dropins map[string][]byte) []Finding {
	var out []Finding
	exp, err := Parse(expected)
	if err != nil {
		// The rendered unit always parses; this is a programming error, but
		// report it rather than panic inside doctor.
		return []Finding{{Kind: KindInvalid, Unit: unit, Detail: fmt.Sprintf("rendered unit does not parse: %v", err)}}
	}
	base := exp
	switch {
	case installed == nil:
		out = append(out, Finding{Kind: KindMissing, Unit: unit, Detail: "the unit file is not installed; run `gatewayctl install`"})
	case bytes.Equal(expected, installed):
		out = append(out, Finding{Kind: KindUnchanged, Unit: unit})
	default:
		inst, err := Parse(installed)
		if err != nil {
			out = append(out, Finding{Kind: KindInvalid, Unit: unit, Detail: fmt.Sprintf("installed unit does not parse: %v; reinstall it with `gatewayctl install`", err)})
			base = nil
			break
		}
		base = inst
		diffs := diffModels(unit, modelOf(exp), modelOf(inst))
		if len(diffs) == 0 {
			out = append(out, Finding{Kind: KindEquivalent, Unit: unit, Detail: "differs only in comments, whitespace or order"})
		}
		out = append(out, diffs...)
	}
	out = append(out, compareDropins(unit, base, dropins)...)
	return out
}

func diffModels(unit string, exp, inst *model) []Finding {
	var out []Finding
	for _, k := range exp.order {
		e, _ := exp.get(k)
		a, ok := inst.get(k)
		switch {
		case !ok:
			out = append(out, Finding{Kind: KindRemoved, Unit: unit, Section: k.section, Key: k.key, Expected: e})
		case a != e:
			out = append(out, Finding{Kind: KindChanged, Unit: unit, Section: k.section, Key: k.key, Expected: e, Actual: a})
		}
	}
	for _, k := range inst.order {
		if _, ok := exp.vals[k]; ok {
			continue
		}
		a, _ := inst.get(k)
		out = append(out, Finding{Kind: KindAdded, Unit: unit, Section: k.section, Key: k.key, Actual: a})
	}
	return out
}

// DropinOrder returns the drop-in paths in the order systemd applies them:
// by file name across all directories, then by path for a stable result.
// Compare and the doctor's effective-unit checks both use it.
func DropinOrder(dropins map[string][]byte) []string {
	paths := make([]string, 0, len(dropins))
	for p := range dropins {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		bi, bj := filepath.Base(paths[i]), filepath.Base(paths[j])
		if bi != bj {
			return bi < bj
		}
		return paths[i] < paths[j]
	})
	return paths
}

func compareDropins(unit string, base *Unit, dropins map[string][]byte) []Finding {
	var (
		out    []Finding
		parsed = []*Unit{}
		paths  []string
	)
	if base != nil {
		parsed = append(parsed, base)
	}
	for _, p := range DropinOrder(dropins) {
		du, err := Parse(dropins[p])
		if err != nil {
			out = append(out, Finding{Kind: KindInvalid, Unit: unit, Path: p,
				Detail: fmt.Sprintf("drop-in does not parse: %v; fix or remove it", err)})
			continue
		}
		var keys []string
		seen := map[string]bool{}
		for _, s := range du.Sections {
			for _, o := range s.Options {
				if k := s.Name + "." + o.Key; !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
		detail := "drop-in sets nothing"
		if len(keys) > 0 {
			detail = "drop-in sets " + strings.Join(keys, ", ")
		}
		out = append(out, Finding{Kind: KindExtended, Unit: unit, Path: p, Detail: detail})
		out = append(out, listenLeaks(unit, p, du)...)
		parsed = append(parsed, du)
		paths = append(paths, p)
	}
	if base == nil || len(paths) == 0 {
		return out
	}
	// Overrides: keys of the unit file whose effective value the drop-ins
	// change, attributed to the last drop-in that touched the key.
	before := modelOf(base)
	after := modelOf(parsed...)
	for _, k := range before.order {
		b, _ := before.get(k)
		a, _ := after.get(k)
		if a == b {
			continue
		}
		out = append(out, Finding{Kind: KindOverridden, Unit: unit, Section: k.section, Key: k.key,
			Expected: b, Actual: a, Path: paths[after.last[k]-1],
			Detail: "a drop-in changes this option"})
	}
	return out
}

// listenLeaks finds Listen*= assignments in a drop-in that are not preceded
// (in the same drop-in) by an empty assignment clearing the list.
func listenLeaks(unit, path string, du *Unit) []Finding {
	var out []Finding
	reset := map[string]bool{}
	for _, s := range du.Sections {
		if s.Name != "Socket" {
			continue
		}
		for _, o := range s.Options {
			if !isListenKey(o.Key) {
				continue
			}
			if o.Value == "" {
				reset[o.Key] = true
				continue
			}
			if !reset[o.Key] {
				out = append(out, Finding{Kind: KindListenLeak, Unit: unit, Section: s.Name, Key: o.Key,
					Actual: o.Value, Path: path,
					Detail: fmt.Sprintf("line %d adds %s=%s next to the unit's own addresses; put an empty `%s=` line before it to replace them", o.Line, o.Key, o.Value, o.Key)})
			}
		}
	}
	return out
}
