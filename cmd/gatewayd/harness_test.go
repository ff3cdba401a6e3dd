package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
)

func TestMain(m *testing.M) { os.Exit(gatewaydtest.Main(m)) }

// gw is one real gatewayd process started by a test (gatewaydtest, bare:
// only the flags and environment the test gives).
type gw struct {
	t      testing.TB
	g      *gatewaydtest.Gateway
	cmd    *exec.Cmd
	port   int
	token  string
	state  string
	config string
	stderr output // what gatewayd wrote to stdout and stderr
}

// output is a gateway's output so far, as a fmt.Stringer.
type output struct{ g *gatewaydtest.Gateway }

func (o output) String() string { return o.g.Output() }

type gwOpts struct {
	args   []string
	env    []string
	config string // config file content ("" = none)
	token  string // "" = a random one via GATEWAY_TOKEN; "-" = none (generated)
	noWait bool
	wrap   []string // command prefix, e.g. systemd-socket-activate …
	port   int
}

func startGW(t testing.TB, o gwOpts) *gw {
	t.Helper()
	home := t.TempDir()
	// A private HOME and runtime dir; gatewaydtest sets the state and config
	// paths and the XDG directories under home.
	env := []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + filepath.Join(home, "run")}
	g := &gw{t: t, port: o.port}
	if g.port == 0 {
		g.port = gatewaydtest.Port(t)
	}
	switch o.token {
	case "":
		g.token = fmt.Sprintf("tok-%d-%d", os.Getpid(), time.Now().UnixNano())
		env = append(env, "GATEWAY_TOKEN="+g.token)
	case "-":
	default:
		g.token = o.token
		env = append(env, "GATEWAY_TOKEN="+g.token)
	}
	gg, err := gatewaydtest.Start(context.Background(), gatewaydtest.Binary(t), gatewaydtest.Options{
		Dir: home, Port: g.port, Bare: true, Args: o.args, Env: append(env, o.env...),
		Config: o.config, Wrap: o.wrap, NoWait: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.g, g.cmd, g.state, g.config, g.stderr = gg, gg.Cmd, gg.StateDir, gg.ConfigPath, output{gg}
	t.Cleanup(func() { g.kill() })
	if !o.noWait {
		g.waitReady(10 * time.Second)
	}
	return g
}

// kill stops gatewayd (SIGTERM by PID, then SIGKILL after 10 s).
func (g *gw) kill() { _ = g.g.Stop() }

func (g *gw) signal(s os.Signal) {
	if err := g.cmd.Process.Signal(s); err != nil {
		g.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (g *gw) wait(d time.Duration) int {
	g.t.Helper()
	select {
	case <-g.g.Exited():
	case <-time.After(d):
		g.t.Fatalf("gatewayd did not exit within %s\n%s", d, g.stderr)
	}
	if ee, ok := g.g.ExitErr().(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func (g *gw) addr() string { return fmt.Sprintf("127.0.0.1:%d", g.port) }
func (g *gw) url() string  { return "ws://" + g.addr() + "/" }

// waitReady waits up to d for GET /readyz to answer 200.
func (g *gw) waitReady(d time.Duration) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := g.g.WaitReady(ctx); err != nil {
		g.t.Fatalf("%v\n%s", err, g.stderr)
	}
}

// rawConn is a protocol client written only from docs/protocol.md ("Wire
// reference"): raw JSON.
type rawConn struct {
	t   testing.TB
	ws  *websocket.Conn
	ctx context.Context
}

type frame map[string]any

func dialRaw(t testing.TB, url string, hdr http.Header) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &rawConn{t: t, ws: ws, ctx: ctx}
}

func (c *rawConn) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(b)
}

func (c *rawConn) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, or the close error.
func (c *rawConn) read() (frame, error) {
	_, data, err := c.ws.Read(c.ctx)
	if err != nil {
		return nil, err
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("server sent non-JSON: %q", data)
	}
	return f, nil
}

func (c *rawConn) mustRead() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// readRes skips events until the response with id.
func (c *rawConn) readRes(id string) frame {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		f := c.mustRead()
		if f["type"] == "res" && f["id"] == id {
			return f
		}
	}
	c.t.Fatalf("no response %s", id)
	return nil
}

// expectClose reads until the connection closes and returns the code.
func (c *rawConn) expectClose() (websocket.StatusCode, string) {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		_, err := c.read()
		if err != nil {
			var ce websocket.CloseError
			if ok := asClose(err, &ce); ok {
				return ce.Code, ce.Reason
			}
			return -1, err.Error()
		}
	}
	c.t.Fatal("connection did not close")
	return 0, ""
}

func asClose(err error, ce *websocket.CloseError) bool {
	return errors.As(err, ce)
}

func cliConnect(token string) frame {
	return frame{"type": "req", "id": "1:" + fmt.Sprint(time.Now().UnixNano()), "method": "connect", "params": frame{
		"minProtocol": 4, "maxProtocol": 4,
		"client": frame{"id": "cli", "mode": "cli", "version": "2026.9.3", "platform": "linux", "deviceFamily": "Linux", "instanceId": "cli-instance-1"},
		"scopes": []string{"operator.read"},
		"auth":   frame{"token": token},
	}}
}

// hello performs challenge + connect and returns the hello-ok payload.
func (c *rawConn) hello(connect frame) frame {
	c.t.Helper()
	ch := c.mustRead()
	if ch["event"] != "connect.challenge" {
		c.t.Fatalf("first frame is not connect.challenge: %v", ch)
	}
	c.send(connect)
	res := c.readRes(connect["id"].(string))
	if res["ok"] != true {
		c.t.Fatalf("connect failed: %v", res["error"])
	}
	return res["payload"].(map[string]any)
}

func (c *rawConn) call(id, method string, params any) frame {
	c.t.Helper()
	req := frame{"type": "req", "id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	c.send(req)
	return c.readRes(id)
}

func errCode(f frame) (code, detail string) {
	e, _ := f["error"].(map[string]any)
	if e == nil {
		return "", ""
	}
	code, _ = e["code"].(string)
	if d, ok := e["details"].(map[string]any); ok {
		detail, _ = d["code"].(string)
	}
	return
}
