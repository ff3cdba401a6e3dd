package gatewaydtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the gatewayd binary Binary builds once per test binary.
var shared struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Main runs a test binary's tests and then removes the gatewayd binary
// Binary built for them. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Binary returns the real gatewayd, built once per test binary (into a
// temporary directory that Main removes). When it cannot be built, tb is
// skipped with a loud reason.
func Binary(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "gatewaydtest-")
		if shared.err == nil {
			shared.bin, shared.err = Build(shared.dir)
		}
	})
	if shared.err != nil {
		tb.Skipf("SKIPPING: cannot build the real gatewayd to test against (CI builds it from this checkout): %v", shared.err)
	}
	return shared.bin
}

// StartT starts the real gatewayd (Binary) for tb with o (Dir defaults to
// tb.TempDir()); a failed start fails tb. When tb ends the gateway is
// stopped by PID, a stop error is logged, and so is the gateway's output
// when tb failed.
func StartT(tb testing.TB, o Options) *Gateway {
	tb.Helper()
	bin := Binary(tb)
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := Start(ctx, bin, o)
	if err != nil {
		tb.Fatalf("start gatewayd: %v", err)
	}
	tb.Cleanup(func() {
		if err := g.Stop(); err != nil {
			tb.Logf("gatewayd exit: %v", err)
		}
		if tb.Failed() {
			tb.Logf("gatewayd output:\n%s", g.Output())
		}
	})
	return g
}

// Port is FreePort for a test: a loopback TCP port that was free a moment
// ago, or tb fails.
func Port(tb testing.TB) int {
	tb.Helper()
	p, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// WriteConfigT is WriteConfig for a test (the config file at path, say a
// running Gateway's ConfigPath); a failure fails tb.
func WriteConfigT(tb testing.TB, path, cfg string) {
	tb.Helper()
	if err := WriteConfig(path, cfg); err != nil {
		tb.Fatal(err)
	}
}
