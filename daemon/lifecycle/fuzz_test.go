package lifecycle

import (
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/startcheck"
)

// FuzzReload feeds arbitrary bytes to a running gateway as its config
// file and reloads: unless the bytes are a config the gateway accepts
// (valid, and serving its addresses with the auth it has), the listeners
// and the auth stay exactly as they were. Either way the gateway keeps
// listening. The listeners parameter refuses anything but loopback TCP,
// so no input opens the host. Seeds are in testdata/fuzz/FuzzReload and
// below; `go test` runs them.
func FuzzReload(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"gateway":{"bind":"lan"}}`,
		`{"gateway":{"bind":"lan","auth":{"token":"a-long-enough-token"}}}`,
		`{"gateway":{"listen":["0.0.0.0:1"]}}`,
		`{"gateway":{"auth":{"mode":"password"}}}`,
		`{"gateway":{"auth":{"mode":"none"},"bind":"lan"}}`,
		`{"gateway":{"auth":{"token":" padded "}}}`,
		`{"gateway":{"mode":"remote"}}`,
		`{"gateway":{"bind":"127.0.0.1"}}`,
		`{"gateway":{"reload":{"mode":"hot"},"bind":"127.0.0.1"}}`,
		`{"logging":{"maxFiles":1,"maxFileBytes":512}}`,
		`{"gateway":{},,}`,
		`{"gateway":{"port":"high"}}`,
		`{"gateway":{"bind":"lan"},"gateway":{"bind":"loopback"}}`,
		"\xef\xbb\xbf{}",
		``,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	h := startDaemon(f, hOpts{config: `{}`})
	// valid is what the daemon must accept: the same checks, made here
	// from the exported pieces before the reload.
	valid := func(data []byte) bool {
		file, err := config.Parse(h.paths.ConfigPath, data)
		if err != nil {
			return false
		}
		cfg, err := startcheck.Effective(file.WithDefaults(), h.d.o.Overrides, h.d.o.Profile, h.paths.ConfigPath)
		if err != nil {
			return false
		}
		planned, _, err := h.d.planned(cfg)
		return err == nil && startcheck.CheckAuth(cfg, append(planned, h.d.addrs()...)) == nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h.t = t
		before := h.snap()
		ok := valid(data)
		h.reload(string(data))
		after := h.snap()
		if !ok {
			if after != before {
				t.Fatalf("an invalid config changed the gateway:\nbefore %+v\nafter  %+v\nconfig %q\nerror %s", before, after, data, h.lastErr())
			}
			if h.lastErr() == "" {
				t.Fatalf("an invalid config was not reported: %q", data)
			}
		}
		if after.addrs == "" || !dialable(strings.Split(after.addrs, ",")[0]) {
			t.Fatalf("nothing listens after the reload (addrs %q)\nconfig %q\n%s", after.addrs, data, h.stderr)
		}
		if after.auth.Mode != config.AuthNone && after.auth.Token == "" && after.auth.Password == "" {
			t.Fatalf("the gateway serves without a secret: %+v\nconfig %q", after.auth, data)
		}
		h.d.mu.Lock()
		err := startcheck.CheckAuth(h.d.cfg, strings.Split(after.addrs, ","))
		h.d.mu.Unlock()
		if err != nil {
			t.Fatalf("the gateway serves %s with auth it would refuse: %v\nconfig %q", after.addrs, err, data)
		}
		// Back to the starting config, so inputs do not depend on each other.
		h.reload(`{}`)
		if h.lastErr() != "" && !strings.Contains(h.lastErr(), "previous addresses") {
			t.Fatalf("the base config is refused after %q: %s", data, h.lastErr())
		}
	})
}
