package deptest

import (
	"strings"
	"testing"
)

func TestViolations(t *testing.T) {
	const stream = `
{"ImportPath": "example.com/wire"}
{"ImportPath": "example.com/db/internal"}
{"ImportPath": "example.com/db", "Imports": ["example.com/db/internal"]}
{"ImportPath": "example.com/server", "Imports": ["example.com/db", "example.com/wire"]}
{"ImportPath": "example.com/cmd", "Imports": ["example.com/wire", "example.com/server"]}
`
	pkgs, err := Decode(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	got := Violations(pkgs, map[string]string{
		"example.com/server": "the CLI speaks the protocol",
		"example.com/db/...": "the store is the daemon's",
		"example.com/wire":   "",
	})
	want := []string{
		"example.com/cmd links example.com/db (the store is the daemon's), imported through example.com/cmd → example.com/server → example.com/db",
		"example.com/cmd links example.com/db/internal (the store is the daemon's), imported through example.com/cmd → example.com/server → example.com/db → example.com/db/internal",
		"example.com/cmd links example.com/server (the CLI speaks the protocol), imported through example.com/cmd → example.com/server",
		"example.com/cmd links example.com/wire (), imported through example.com/cmd → example.com/wire",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v := Violations(pkgs, map[string]string{"example.com/d/...": "prefix of a name, not a path"}); len(v) != 0 {
		t.Errorf("a /... entry matched a longer name: %v", v)
	}
}
