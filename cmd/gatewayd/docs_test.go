package main

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config/configtest"
	"github.com/gatewayd/gatewayd/internal/docstest"
)

// The docs-coverage tests: a gatewayd flag missing from its man page, or a
// config key missing from the configuration reference, fails here, naming
// the item and the file to add it to.

// gatewaydFlags returns the names of gatewayd's flags, read from the flag
// set parseFlags builds (its usage lists every flag as "  -name").
func gatewaydFlags(t *testing.T) []string {
	t.Helper()
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h) = %v, want flag.ErrHelp", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(usage.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 5 {
		t.Fatalf("found only %d flags in gatewayd's usage; did its format change?\n%s", len(names), usage.String())
	}
	return names
}

func TestDocsGatewaydFlags(t *testing.T) {
	options, ok := docstest.Sections(docstest.Read(t, "man/gatewayd.8.md"))["OPTIONS"]
	if !ok {
		t.Fatal("docs/man/gatewayd.8.md has no OPTIONS section")
	}
	for _, name := range gatewaydFlags(t) {
		if !docstest.MentionsFlag(options, name) {
			t.Errorf("gatewayd flag --%s is not documented: add it to OPTIONS in docs/man/gatewayd.8.md", name)
		}
	}
}

// configKeys returns every config key as a dotted path, map keys as "*"
// (the docs write a placeholder such as <id> or <name> there).
func configKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	configtest.Walk("*", func(path []string, _ reflect.StructField, leaf bool) bool {
		if leaf {
			keys = append(keys, strings.Join(path, "."))
		}
		return true
	})
	if len(keys) < 50 {
		t.Fatalf("found only %d config keys; did config.Config change shape?", len(keys))
	}
	return keys
}

func TestDocsConfigKeys(t *testing.T) {
	// Placeholders such as <id>, <name> or <room> stand for a map key.
	doc := regexp.MustCompile(`<[a-z]+>`).ReplaceAllString(docstest.Read(t, "config.md"), "*")
	for _, key := range configKeys(t) {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9.*])` + regexp.QuoteMeta(key) + `($|[^A-Za-z0-9*])`)
		if !re.MatchString(doc) {
			t.Errorf("config key %s is not documented: add it to docs/config.md (map keys written as <name>)", strings.ReplaceAll(key, "*", "<name>"))
		}
	}
}
