package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// gatewaydBin is the real gatewayd, built once for the package's tests.
var gatewaydBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatewayd-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewaydBin = filepath.Join(dir, "gatewayd")
	out, err := exec.Command("go", "build", "-o", gatewaydBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building gatewayd for the integration tests failed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gw is one real gatewayd process started by a test.
type gw struct {
	t      testing.TB
	cmd    *exec.Cmd
	port   int
	token  string
	home   string
	state  string
	config string
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type gwOpts struct {
	args   []string
	env    []string
	config string // config file content ("" = none)
	token  string // "" = a random one via GATEWAY_TOKEN; "-" = none (generated)
	noWait bool
	wrap   []string // command prefix, e.g. systemd-socket-activate …
	port   int
}

// isolatedEnv is a clean environment with private XDG directories.
func isolatedEnv(home string) []string {
	return []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
	}
}

func startGW(t testing.TB, o gwOpts) *gw {
	t.Helper()
	home := t.TempDir()
	g := &gw{t: t, home: home, port: o.port, stderr: &syncBuffer{}, exited: make(chan struct{})}
	if g.port == 0 {
		g.port = freePort(t)
	}
	g.config = filepath.Join(home, "config.json")
	g.state = filepath.Join(home, "state")
	env := append(isolatedEnv(home), "GATEWAY_CONFIG_PATH="+g.config, "GATEWAY_STATE_DIR="+g.state)
	switch o.token {
	case "":
		g.token = fmt.Sprintf("tok-%d-%d", os.Getpid(), time.Now().UnixNano())
		env = append(env, "GATEWAY_TOKEN="+g.token)
	case "-":
	default:
		g.token = o.token
		env = append(env, "GATEWAY_TOKEN="+g.token)
	}
	if o.config != "" {
		if err := os.WriteFile(g.config, []byte(o.config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env = append(env, o.env...)
	args := append([]string{"--port", fmt.Sprint(g.port)}, o.args...)
	argv := append([]string{}, o.wrap...)
	if len(o.wrap) > 0 {
		// systemd-socket-activate passes on only the variables named with -E.
		for _, e := range env {
			argv = append(argv, "-E", e)
		}
	}
	argv = append(argv, gatewaydBin)
	argv = append(argv, args...)
	g.cmd = exec.Command(argv[0], argv[1:]...)
	g.cmd.Env = env
	g.cmd.Stderr = g.stderr
	g.cmd.Stdout = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() { g.kill() })
	if !o.noWait {
		g.waitReady(10 * time.Second)
	}
	return g
}

func (g *gw) kill() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

func (g *gw) signal(s os.Signal) {
	if err := g.cmd.Process.Signal(s); err != nil {
		g.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (g *gw) wait(d time.Duration) int {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-time.After(d):
		g.t.Fatalf("gatewayd did not exit within %s\n%s", d, g.stderr)
	}
	if ee, ok := g.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func (g *gw) addr() string { return fmt.Sprintf("127.0.0.1:%d", g.port) }
func (g *gw) url() string  { return "ws://" + g.addr() + "/" }

func (g *gw) waitReady(d time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			g.t.Fatalf("gatewayd exited before ready: %v\n%s", g.err, g.stderr)
		default:
		}
		resp, err := client.Get("http://" + g.addr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("gatewayd not ready within %s\n%s", d, g.stderr)
}

// rawConn is a protocol client written only from PROTOCOL.md: raw JSON.
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

// logLines reads the stderr log so far, line by line.
func (g *gw) logLines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(g.stderr.String()))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
