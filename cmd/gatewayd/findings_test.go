package main

// Reload, restart and secret findings of a review, reproduced against
// the real binary. Each test failed on the code before daemon/lifecycle.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gatewayd/gatewayd/internal/testutil"
	"github.com/gatewayd/gatewayd/platform/notify/notifytest"
)

// adminConn is a connected operator with every scope.
func adminConn(t *testing.T, g *gw, token string) *rawConn {
	t.Helper()
	c := dialRaw(t, g.url(), nil)
	conn := cliConnect(token)
	conn["params"].(frame)["scopes"] = []string{"operator.read", "operator.admin"}
	c.hello(conn)
	return c
}

func readToken(t *testing.T, g *gw) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.state, "gateway.token"))
	if err != nil {
		t.Fatalf("no generated token: %v\n%s", err, g.stderr)
	}
	return strings.TrimSpace(string(b))
}

// Finding 1: `{"gateway":{"bind":"lan"}}` with a generated token used to
// re-bind to every interface and then serve with empty settings, locking
// the operator out. It must be refused before anything is re-bound, and
// the gateway keeps serving as before with the same token.
func TestFindingBindWideningRefused(t *testing.T) {
	g := startGW(t, gwOpts{token: "-", config: `{}`})
	tok := readToken(t, g)
	adminConn(t, g, tok)
	if err := os.WriteFile(g.config, []byte(`{"gateway":{"bind":"lan"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the reload to be refused", func() (bool, string) {
		return strings.Contains(g.stderr.String(), "config reload rejected") || strings.Contains(g.stderr.String(), "re-binding"), "gatewayd output:\n" + testutil.Tail(g.stderr.String(), 20)
	})
	out := g.stderr.String()
	if strings.Contains(out, "re-binding") || strings.Contains(out, "listening addr=[::]:") || strings.Contains(out, "listening addr=0.0.0.0:") {
		t.Fatalf("gatewayd re-bound beyond loopback on a config without a secret:\n%s", out)
	}
	if !strings.Contains(out, "refusing to bind gateway to 0.0.0.0:") {
		t.Fatalf("the refusal does not say why:\n%s", out)
	}
	// Same listeners, same auth: the generated token still works.
	c := adminConn(t, g, tok)
	res := c.call("h", "health", nil)
	if res["ok"] != true {
		t.Fatalf("health after the refused reload: %v", res)
	}
	cfg := res["payload"].(map[string]any)["components"].(map[string]any)["config"].(map[string]any)
	if cfg["ok"] != false || !strings.Contains(fmt.Sprint(cfg["lastError"]), "refusing to bind") {
		t.Fatalf("health does not report the refused reload: %v", cfg)
	}
}

// Finding 2: logging.maxFileBytes/maxFiles were never applied by the
// in-process restart; in hot mode STATUS= said "last reload ok" while a
// restart was pending, and the next reload forgot it was pending.
func TestFindingLoggingLimitsAndPendingStatus(t *testing.T) {
	t.Run("restart applies logging limits", func(t *testing.T) {
		g := startGW(t, gwOpts{config: `{"logging":{"maxFiles":3}}`})
		logFile := filepath.Join(g.state, "logs", "gatewayd.jsonl")
		// Rotated files from an earlier run, beyond the new maxFiles.
		for _, n := range []string{".2", ".3"} {
			if err := os.WriteFile(logFile+n, []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(g.config, []byte(`{"logging":{"maxFiles":1,"maxFileBytes":1024}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		g.signal(syscall.SIGHUP)
		testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the in-process restart", func() (bool, string) {
			return strings.Contains(g.stderr.String(), "restarted in process"), "gatewayd output:\n" + testutil.Tail(g.stderr.String(), 20)
		})
		// Log a little more: every record now rotates past 1024 bytes.
		for i := 0; i < 3; i++ {
			adminConn(t, g, g.token).call(fmt.Sprint("s", i), "status", nil)
		}
		g.signal(syscall.SIGHUP)
		testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the live log to be under the new maxFileBytes", func() (bool, string) {
			fi, err := os.Stat(logFile)
			if err != nil {
				return false, err.Error()
			}
			return fi.Size() <= 1024, fmt.Sprintf("%d bytes", fi.Size())
		})
		for _, n := range []string{".2", ".3"} {
			if _, err := os.Stat(logFile + n); !os.IsNotExist(err) {
				t.Errorf("%s still exists after logging.maxFiles 1 (err %v)", filepath.Base(logFile+n), err)
			}
		}
	})
	t.Run("hot mode status while a restart is pending", func(t *testing.T) {
		ns := notifytest.Listen(t)
		g := startGW(t, gwOpts{config: `{"gateway":{"reload":{"mode":"hot"}}}`, env: []string{ns.Env()}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := ns.WaitFor(ctx, func(m notifytest.Message) bool { return m.Fields["READY"] == "1" }); err != nil {
			t.Fatal(err)
		}
		waitStatus := func(what string) string {
			t.Helper()
			if err := os.WriteFile(g.config, []byte(what), 0o600); err != nil {
				t.Fatal(err)
			}
			g.signal(syscall.SIGHUP)
			m, err := ns.WaitFor(ctx, func(m notifytest.Message) bool {
				return m.Fields["READY"] == "1" && strings.Contains(m.Fields["STATUS"], "reload")
			})
			if err != nil {
				t.Fatalf("no READY=1 after the reload: %v\n%s", err, g.stderr)
			}
			return m.Fields["STATUS"]
		}
		st := waitStatus(`{"gateway":{"reload":{"mode":"hot"}},"logging":{"maxFiles":5}}`)
		if strings.Contains(st, "last reload ok") || !strings.Contains(st, "restart pending for logging.maxFiles") {
			t.Fatalf("STATUS= with a pending restart: %q", st)
		}
		st = waitStatus(`{"gateway":{"reload":{"mode":"hot"}},"logging":{"maxFiles":5,"level":"debug"}}`)
		if strings.Contains(st, "last reload ok") || !strings.Contains(st, "restart pending for logging.maxFiles") {
			t.Fatalf("the second reload forgot the pending restart: %q", st)
		}
	})
}

// Finding 3: when an in-process restart could not bind its new address,
// gatewayd called os.Exit past its closes. Now it binds the previous
// addresses again and keeps serving.
func TestFindingRestartRebindFailureKeepsServing(t *testing.T) {
	// The new address is taken: 127.0.0.2 (loopback on Linux) on the
	// gateway's port.
	port := gatewaydtest.Port(t)
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatalf("cannot hold 127.0.0.2:%d for the test: %v", port, err)
	}
	defer busy.Close()
	g := startGW(t, gwOpts{port: port, config: `{}`})
	if err := os.WriteFile(g.config, []byte(`{"gateway":{"bind":"127.0.0.2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the failed re-bind", func() (bool, string) {
		return strings.Contains(g.stderr.String(), "cannot listen on the new addresses") || strings.Contains(g.stderr.String(), "cannot bind the new addresses"), "gatewayd output:\n" + testutil.Tail(g.stderr.String(), 20)
	})
	select {
	case <-g.g.Exited():
		t.Fatalf("gatewayd exited after a failed re-bind:\n%s", g.stderr)
	case <-time.After(500 * time.Millisecond):
	}
	c := adminConn(t, g, g.token)
	res := c.call("st", "status", nil)
	p := res["payload"].(map[string]any)
	if !strings.Contains(fmt.Sprint(p["listeners"]), fmt.Sprintf("127.0.0.1:%d", port)) || !strings.Contains(fmt.Sprint(p["statusText"]), "re-bind") {
		t.Fatalf("status after the failed re-bind: %v", p)
	}
	// And it stops cleanly (through the closes) when asked.
	g.signal(syscall.SIGTERM)
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, g.stderr)
	}
}

// Finding 8: a rejected config value was quoted whole in health, status,
// STATUS= and the log; config.get showed secrets in a webhook URL's path
// and a user name alone.
func TestFindingSecretsNotEchoed(t *testing.T) {
	ns := notifytest.Listen(t)
	g := startGW(t, gwOpts{config: `{}`, env: []string{ns.Env()}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	secrets := []string{"hunter2pw", "sekr3tkey", "tok3nuser", "PathSecr3t"}
	bad := `{"agents":{"list":{"llm":{"backend":"openai","openai":{"baseUrl":"http://admin:hunter2pw@llm.example/v1?key=sekr3tkey","model":"m"}}}}}`
	if err := os.WriteFile(g.config, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the rejection", func() (bool, string) {
		return strings.Contains(g.stderr.String(), "config reload rejected"), "gatewayd output:\n" + testutil.Tail(g.stderr.String(), 20)
	})
	if _, err := ns.WaitFor(ctx, func(m notifytest.Message) bool { return strings.Contains(m.Fields["STATUS"], "FAILED") }); err != nil {
		t.Fatalf("no STATUS= with the failure: %v", err)
	}
	c := adminConn(t, g, g.token)
	health, _ := json.Marshal(c.call("h", "health", nil))
	status, _ := json.Marshal(c.call("s", "status", nil))
	if !strings.Contains(string(health), "baseUrl") {
		t.Fatalf("health does not name the rejected key: %s", health)
	}
	good := `{"channels":{"webhooks":{"ops":{"url":"https://tok3nuser@hooks.example/services/T0/B0/PathSecr3t","secret":"whsecretvalue"}}}}`
	if err := os.WriteFile(g.config, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the webhook config to load", func() (bool, string) {
		got, _ := json.Marshal(c.call(fmt.Sprint("cg", time.Now().UnixNano()), "config.get", nil))
		return strings.Contains(string(got), "hooks.example"), "config.get: " + string(got)
	})
	cfgGet, _ := json.Marshal(c.call("cg", "config.get", nil))
	var notes []string
	for _, m := range ns.Messages() {
		notes = append(notes, m.Raw)
	}
	logFile, _ := os.ReadFile(filepath.Join(g.state, "logs", "gatewayd.jsonl"))
	for what, text := range map[string]string{
		"health": string(health), "status": string(status), "config.get": string(cfgGet),
		"STATUS=": strings.Join(notes, "\n"), "stderr": g.stderr.String(), "log file": string(logFile),
	} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, text)
			}
		}
	}
}
