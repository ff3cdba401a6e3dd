package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/notify/notifytest"
)

func TestFirstStartGeneratesToken(t *testing.T) {
	g := startGW(t, gwOpts{token: "-"})
	tokFile := filepath.Join(g.state, "gateway.token")
	st, err := os.Stat(tokFile)
	if err != nil {
		t.Fatalf("no token file: %v\n%s", err, g.stderr)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %o, want 600", st.Mode().Perm())
	}
	tok, _ := os.ReadFile(tokFile)
	if !strings.Contains(g.stderr.String(), tokFile) {
		t.Fatalf("the log does not say where the token is:\n%s", g.stderr)
	}
	if strings.Contains(g.stderr.String(), strings.TrimSpace(string(tok))) {
		t.Fatal("the token itself was logged")
	}
	c := dialRaw(t, g.url(), nil)
	c.hello(cliConnect(strings.TrimSpace(string(tok))))
}

func TestRefusals(t *testing.T) {
	t.Run("non-loopback bind without auth", func(t *testing.T) {
		g := startGW(t, gwOpts{token: "-", args: []string{"--bind", "lan"}, noWait: true})
		if code := g.wait(10 * time.Second); code != 78 {
			t.Fatalf("exit %d, want 78\n%s", code, g.stderr)
		}
		want := fmt.Sprintf("refusing to bind gateway to 0.0.0.0:%d", g.port)
		if !strings.Contains(g.stderr.String(), "refusing to bind gateway to ") ||
			!strings.Contains(g.stderr.String(), "without auth (set gateway.auth.token/password, or GATEWAY_TOKEN/GATEWAY_PASSWORD)") {
			t.Fatalf("want %q…\n%s", want, g.stderr)
		}
	})
	t.Run("mode remote", func(t *testing.T) {
		g := startGW(t, gwOpts{config: `{"gateway":{"mode":"remote"}}`, noWait: true})
		if code := g.wait(10 * time.Second); code != 78 || !strings.Contains(g.stderr.String(), "Gateway start blocked: set gateway.mode=local") {
			t.Fatalf("exit %d\n%s", code, g.stderr)
		}
	})
	t.Run("config error names file line and key", func(t *testing.T) {
		g := startGW(t, gwOpts{config: "{\n  \"gateway\": {\n    \"port\": \"high\"\n  }\n}\n", noWait: true})
		if code := g.wait(10 * time.Second); code != 78 {
			t.Fatalf("exit %d, want 78\n%s", code, g.stderr)
		}
		if s := g.stderr.String(); !strings.Contains(s, g.config+":3:") || !strings.Contains(s, "gateway.port") {
			t.Fatalf("error does not name file:line and key:\n%s", s)
		}
	})
	t.Run("port busy with another gateway", func(t *testing.T) {
		first := startGW(t, gwOpts{})
		second := startGW(t, gwOpts{port: first.port, noWait: true})
		if code := second.wait(10 * time.Second); code == 0 {
			t.Fatal("second instance exited 0")
		}
		if want := "another gateway instance is already listening on ws://127.0.0.1:" + fmt.Sprint(first.port); !strings.Contains(second.stderr.String(), want) {
			t.Fatalf("want %q\n%s", want, second.stderr)
		}
	})
	t.Run("port busy with something else", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		g := startGW(t, gwOpts{port: port, noWait: true})
		if code := g.wait(10 * time.Second); code == 0 || !strings.Contains(strings.ToLower(g.stderr.String()), "address already in use") {
			t.Fatalf("exit %d\n%s", code, g.stderr)
		}
	})
	t.Run("force stops the other gateway", func(t *testing.T) {
		first := startGW(t, gwOpts{})
		second := startGW(t, gwOpts{port: first.port, args: []string{"--force"}, noWait: true})
		if code := first.wait(15 * time.Second); code != 0 {
			t.Fatalf("first instance exit %d after --force", code)
		}
		second.waitReady(10 * time.Second)
		if !strings.Contains(second.stderr.String(), fmt.Sprint(first.cmd.Process.Pid)) {
			t.Fatalf("--force did not log what it stopped:\n%s", second.stderr)
		}
		c := dialRaw(t, second.url(), nil)
		c.hello(cliConnect(second.token))
	})
}

func TestSIGTERMShutdownEventAnd1012(t *testing.T) {
	g := startGW(t, gwOpts{})
	var conns []*rawConn
	for i := 0; i < 5; i++ {
		c := dialRaw(t, g.url(), nil)
		c.hello(cliConnect(g.token))
		conns = append(conns, c)
	}
	g.signal(syscall.SIGTERM)
	for i, c := range conns {
		gotShutdown := false
		for j := 0; j < 100; j++ {
			f, err := c.read()
			if err != nil {
				code, _ := c.closeCodeOf(err)
				if !gotShutdown || code != 1012 {
					t.Fatalf("client %d: shutdown event seen=%v, close=%d (%v)", i, gotShutdown, code, err)
				}
				break
			}
			if f["event"] == "shutdown" {
				gotShutdown = true
				if f["payload"].(map[string]any)["reason"] == "" {
					t.Fatalf("shutdown without reason: %v", f)
				}
			}
		}
	}
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, g.stderr)
	}
}

func TestSIGUSR1RestartRefusesNothing(t *testing.T) {
	g := startGW(t, gwOpts{})
	existing := dialRaw(t, g.url(), nil)
	existing.hello(cliConnect(g.token))
	var refused, ok atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ { // bounded in count; also stopped by time below
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", g.addr(), 2*time.Second)
				if err != nil {
					refused.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				c.Close()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 3; i++ {
		g.signal(syscall.SIGUSR1)
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if refused.Load() != 0 {
		t.Fatalf("%d of %d connects refused during in-process restarts (first: %v)", refused.Load(), refused.Load()+ok.Load(), firstErr.Load())
	}
	t.Logf("%d connects, 0 refused, across 3 in-process restarts", ok.Load())
	// The existing client got shutdown + 1012 with a restart hint.
	saw := false
	for j := 0; j < 100; j++ {
		f, err := existing.read()
		if err != nil {
			if code, _ := existing.closeCodeOf(err); code != 1012 || !saw {
				t.Fatalf("existing client: shutdown=%v close=%d", saw, code)
			}
			break
		}
		if f["event"] == "shutdown" {
			saw = f["payload"].(map[string]any)["restartExpectedMs"] != nil
		}
	}
	// And the gateway serves after the restarts.
	c := dialRaw(t, g.url(), nil)
	c.hello(cliConnect(g.token))
}

func TestBrokenConfigEditKeepsServing(t *testing.T) {
	g := startGW(t, gwOpts{token: "-", config: `{"gateway":{"auth":{"token":"first-token"}}}`})
	c := dialRaw(t, g.url(), nil)
	c.hello(cliConnect("first-token"))
	// An operator's broken edit: rejected, the last good config keeps serving.
	if err := os.WriteFile(g.config, []byte(`{"gateway":{"auth":{"token":"second-token"}},,}`), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "reload rejection logged", func() (bool, string) {
		return strings.Contains(g.stderr.String(), "config reload rejected"), "gatewayd output:\n" + testutil.Tail(g.stderr.String(), 20)
	})
	c2 := dialRaw(t, g.url(), nil)
	c2.hello(cliConnect("first-token"))
	adm := dialRaw(t, g.url(), nil)
	ac := cliConnect("first-token")
	ac["params"].(frame)["scopes"] = []string{"operator.admin"}
	adm.hello(ac)
	res := adm.call("cg", "config.get", nil)
	p := res["payload"].(map[string]any)
	if p["valid"] != false || !strings.Contains(fmt.Sprint(p["lastError"]), g.config) {
		t.Fatalf("config.get after a broken edit: %v", p)
	}
	if strings.Contains(fmt.Sprint(p["config"]), "first-token") {
		t.Fatalf("config.get leaks the token: %v", p["config"])
	}
	// The fix is applied hot: the new token works, the old one does not.
	if err := os.WriteFile(g.config, []byte(`{"gateway":{"auth":{"token":"second-token"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "new token accepted", func() (bool, string) {
		rc := dialRaw(t, g.url(), nil)
		rc.mustRead()
		rc.send(cliConnect("second-token"))
		res := rc.mustRead()
		return res["ok"] == true, fmt.Sprintf("connect answer %v", res)
	})
}

func TestSocketActivationAndNotify(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("LOUD SKIP: systemd-socket-activate not found (apt-get install systemd; CI installs it)")
	}
	ns := notifytest.Listen(t)
	port := gatewaydtest.Port(t)
	ownPort := gatewaydtest.Port(t)
	g := startGW(t, gwOpts{port: ownPort, noWait: true,
		wrap: []string{sa, "-l", fmt.Sprintf("127.0.0.1:%d", port), "--fdname=gatewayd",
			"-E", ns.Env(), "-E", "WATCHDOG_USEC=2000000"},
		args: []string{"--listen", "systemd:gatewayd"}})
	// systemd-socket-activate only execs gatewayd on the first connection:
	// the connect → hello-ok path is the cold start.
	g.port = port
	// The first connection makes systemd-socket-activate exec gatewayd.
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "systemd-socket-activate listening", func() (bool, string) {
		c, err := net.Dial("tcp", g.addr())
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	c := dialRaw(t, g.url(), nil)
	c.hello(cliConnect(g.token))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	want := func(desc string, pred func(m notifytest.Message) bool) {
		t.Helper()
		if _, err := ns.WaitFor(ctx, pred); err != nil {
			t.Fatalf("waiting for %s: %v\n%s", desc, err, g.stderr)
		}
	}
	want("READY=1", func(m notifytest.Message) bool { return m.Fields["READY"] == "1" })
	want("STATUS=", func(m notifytest.Message) bool { return strings.Contains(m.Fields["STATUS"], fmt.Sprint(port)) })
	want("WATCHDOG=1", func(m notifytest.Message) bool { return m.Fields["WATCHDOG"] == "1" })
	g.signal(syscall.SIGHUP)
	want("RELOADING=1 with MONOTONIC_USEC", func(m notifytest.Message) bool {
		return m.Fields["RELOADING"] == "1" && m.Fields["MONOTONIC_USEC"] != ""
	})
	want("READY=1 after reload", func(m notifytest.Message) bool { return m.Fields["READY"] == "1" })
	// No bind of its own: --port's address is not listening.
	if l, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ownPort)); err == nil {
		l.Close()
		t.Fatalf("gatewayd bound its own port %d under socket activation", ownPort)
	}
	g.signal(syscall.SIGTERM)
	want("STOPPING=1", func(m notifytest.Message) bool { return m.Fields["STOPPING"] == "1" })
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, g.stderr)
	}
	if !strings.Contains(g.stderr.String(), "source=systemd") {
		t.Fatalf("the log does not show the systemd listener:\n%s", g.stderr)
	}
}

func (c *rawConn) closeCodeOf(err error) (int, string) {
	return int(websocket.CloseStatus(err)), err.Error()
}
