package config

import (
	"fmt"
	"hash/fnv"
	"regexp"
)

// ExitConfig is the exit status for fatal misconfiguration (EX_CONFIG from
// sysexits.h). Units say RestartPreventExitStatus=78 so that a broken config
// file does not put the service into a restart loop.
const ExitConfig = 78

// Default ports of the built-in profiles, and the range named profiles get
// their derived port from.
const (
	DefaultPort    = 18789
	DevPort        = 19001
	namedPortBase  = 20000
	namedPortRange = 10000
)

const (
	defaultProfileName = "default"
	devProfileName     = "dev"
)

// profileNameRule is the rule a named profile must match; it keeps names safe
// in unit names, launchd labels, directory names and environment values.
var profileNameRule = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// Profile is one isolated gateway instance on a host: its own config, state,
// logs, port and service units. The zero value is the default profile.
type Profile struct {
	name string // "" for the default profile
}

// NewProfile returns the profile selected by --profile NAME and --dev.
// An empty name or "default" selects the default profile; dev (or the name
// "dev") selects the dev profile. Any other name must match
// ^[a-z0-9][a-z0-9-]{0,30}$. Combining dev with another name is an error, and
// so is the name "gateway", whose launchd label would be the default
// profile's.
func NewProfile(name string, dev bool) (Profile, error) {
	switch {
	case dev && name != "" && name != devProfileName:
		return Profile{}, fmt.Errorf("profile %q: --dev selects the %q profile and cannot be combined with --profile %s (drop one of the two)", name, devProfileName, name)
	case dev:
		return Profile{name: devProfileName}, nil
	case name == "" || name == defaultProfileName:
		return Profile{}, nil
	case !profileNameRule.MatchString(name):
		return Profile{}, fmt.Errorf("profile %q: a profile name must match ^[a-z0-9][a-z0-9-]{0,30}$ (lower-case letters, digits and dashes, starting with a letter or digit, at most 31 characters)", name)
	case name == "gateway":
		return Profile{}, fmt.Errorf("profile %q: the name is reserved because its launchd label org.gatewayd.gateway belongs to the default profile (pick another name)", name)
	}
	return Profile{name: name}, nil
}

// Name returns "default", "dev" or the profile's name.
func (p Profile) Name() string {
	if p.name == "" {
		return defaultProfileName
	}
	return p.name
}

// IsDefault reports whether p is the default profile.
func (p Profile) IsDefault() bool { return p.name == "" }

// IsDev reports whether p is the dev profile selected by --dev.
func (p Profile) IsDev() bool { return p.name == devProfileName }

// DefaultPort returns the port the profile listens on when nothing else sets
// one: 18789 for the default profile, 19001 for dev, and for a named profile
// a stable port in 20000–29999 derived from the name with FNV-1a.
func (p Profile) DefaultPort() int {
	switch p.name {
	case "":
		return DefaultPort
	case devProfileName:
		return DevPort
	}
	h := fnv.New32a()
	h.Write([]byte(p.name)) // hash.Hash.Write never fails
	return namedPortBase + int(h.Sum32()%namedPortRange)
}

// UnitBase returns the base name of the profile's systemd units and of its
// config, state and log directories: "gatewayd" or "gatewayd-<name>".
func (p Profile) UnitBase() string {
	if p.name == "" {
		return "gatewayd"
	}
	return "gatewayd-" + p.name
}

// LaunchdLabel returns the profile's launchd job label:
// "org.gatewayd.gateway" or "org.gatewayd.<name>".
func (p Profile) LaunchdLabel() string {
	if p.name == "" {
		return "org.gatewayd.gateway"
	}
	return "org.gatewayd." + p.name
}

// String returns Name, so a Profile prints well in logs and errors.
func (p Profile) String() string { return p.Name() }
