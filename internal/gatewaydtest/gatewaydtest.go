// Package gatewaydtest is the harness for the daemon binary: it builds the
// real gatewayd and runs it as a child process for the tests and benchmarks
// that talk to it (the protocol client, the features, gatewayctl, the bench
// load generator): a fresh process per caller, its own state, config and
// log directories, a free loopback port and a known token. Only tests and
// benchmarks import it.
//
// Nothing is faked: Build runs `go build` on cmd/gatewayd and Start execs
// the result. When the go tool or the package cannot be built, Build returns
// an error the caller turns into a loud skip. Start never touches the
// host's gateway: every GATEWAY_* and systemd variable is removed from the
// child's environment and replaced with paths under the caller's directory.
// RSS is Linux-only (/proc); elsewhere it returns an error.
package gatewaydtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

// Package is the import path of the daemon's main package.
const Package = "github.com/gatewayd/gatewayd/cmd/gatewayd"

// Build compiles cmd/gatewayd into dir and returns the binary's path. It
// must run from inside the module (tests do).
func Build(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(cmp.Or(os.Getenv("GOROOT"), "/usr/local/go"), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			return "", fmt.Errorf("build gatewayd: no go tool on PATH or in GOROOT (install Go or put it on PATH): %w", err)
		}
	}
	bin := filepath.Join(dir, "gatewayd")
	cmd := exec.Command(goTool, "build", "-o", bin, Package)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build gatewayd: go build %s: %w\n%s", Package, err, strings.TrimSpace(out.String()))
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Options configure Start.
type Options struct {
	Dir   string   // required: holds state/, config/, xdg/ for this gateway
	Port  int      // 0: FreePort
	Token string   // "": a fixed test token
	Args  []string // extra gatewayd arguments
	Env   []string // extra environment (KEY=VALUE), applied last
	// Config, when not "", is written to the config file
	// (Dir/config/config.json) before the start.
	Config string
	// ReadyTimeout bounds the wait for /readyz; default 10s.
	ReadyTimeout time.Duration
	// NoWait returns right after exec, without waiting for /readyz (for
	// measuring start-up; call WaitReady or dial in a loop).
	NoWait bool
	// Bare passes gatewayd only --port and Args: no --bind loopback and no
	// --token. Token stays "" then: give one with GATEWAY_TOKEN in Env,
	// or let gatewayd take its config's or generate one.
	Bare bool
	// Wrap is a command that execs gatewayd, put before it: a
	// systemd-socket-activate command line (then use Args to make gatewayd
	// listen on the passed socket). Every variable of the environment is
	// also given to it with -E, since it passes on only those.
	Wrap []string
}

// DefaultToken is the token Start passes when Options.Token is empty.
const DefaultToken = "gatewaytest-token-0123456789abcdef"

// Gateway is a running gatewayd child process.
type Gateway struct {
	Cmd        *exec.Cmd
	Port       int
	URL        string // ws://127.0.0.1:PORT
	HTTPURL    string // http://127.0.0.1:PORT
	Token      string
	StateDir   string
	ConfigPath string
	Started    time.Time // just before exec

	output testutil.SyncBuffer
	exited chan struct{}
	err    error // from Wait, valid after exited is closed
}

// Write collects the child's stdout and stderr.
func (g *Gateway) Write(p []byte) (int, error) { return g.output.Write(p) }

// Output returns what the child wrote to stdout and stderr so far.
func (g *Gateway) Output() string { return g.output.String() }

// Exited is closed when the child has exited.
func (g *Gateway) Exited() <-chan struct{} { return g.exited }

// ExitErr is the child's exit error from Wait (nil for exit status 0, an
// *exec.ExitError otherwise). Read it only after Exited is closed.
func (g *Gateway) ExitErr() error { return g.err }

// dedupEnv keeps the last value of each variable, in the order of their
// first appearance (as os/exec does for Cmd.Env).
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	seen := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !seen[k] {
			seen[k] = true
			out = append(out, env[last[k]])
		}
	}
	return out
}

// Env returns the environment Start gives gatewayd for a gateway rooted at
// dir: the caller's environment without GATEWAY_*, systemd and launchd
// variables, plus GATEWAY_STATE_DIR, GATEWAY_CONFIG_PATH and XDG_* under dir.
// Tests running gatewayctl against the gateway use the same environment.
func Env(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GATEWAY_"), strings.HasPrefix(k, "XDG_"),
			k == "NOTIFY_SOCKET", k == "LISTEN_FDS", k == "LISTEN_PID", k == "LISTEN_FDNAMES",
			k == "WATCHDOG_USEC", k == "WATCHDOG_PID", k == "JOURNAL_STREAM",
			k == "STATE_DIRECTORY", k == "LOGS_DIRECTORY", k == "CONFIGURATION_DIRECTORY",
			k == "RUNTIME_DIRECTORY", k == "INVOCATION_ID":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"GATEWAY_STATE_DIR="+filepath.Join(dir, "state"),
		"GATEWAY_CONFIG_PATH="+ConfigPath(dir),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg", "config"),
		"XDG_STATE_HOME="+filepath.Join(dir, "xdg", "state"),
	)
}

// Start execs bin as a gateway on 127.0.0.1 and waits until /readyz says
// ready. On failure the child is stopped and the error carries its output.
func Start(ctx context.Context, bin string, o Options) (*Gateway, error) {
	if o.Dir == "" {
		return nil, errors.New("gatewaydtest.Start: Options.Dir is required (pass t.TempDir())")
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	if o.Token == "" && !o.Bare {
		o.Token = DefaultToken
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	configPath := ConfigPath(o.Dir)
	if o.Config != "" {
		if err := WriteConfig(configPath, o.Config); err != nil {
			return nil, err
		}
	}
	g := &Gateway{
		Port:       o.Port,
		URL:        fmt.Sprintf("ws://127.0.0.1:%d", o.Port),
		HTTPURL:    fmt.Sprintf("http://127.0.0.1:%d", o.Port),
		Token:      o.Token,
		StateDir:   filepath.Join(o.Dir, "state"),
		ConfigPath: configPath,
		exited:     make(chan struct{}),
	}
	args := []string{"--port", strconv.Itoa(o.Port)}
	if !o.Bare {
		args = append(args, "--bind", "loopback", "--token", o.Token)
	}
	args = append(args, o.Args...)
	env := dedupEnv(append(Env(o.Dir), o.Env...))
	argv := slices.Clone(o.Wrap)
	if len(o.Wrap) > 0 {
		for _, kv := range env {
			argv = append(argv, "-E", kv)
		}
	}
	argv = append(append(argv, bin), args...)
	g.Cmd = exec.Command(argv[0], argv[1:]...)
	g.Cmd.Env = env
	g.Cmd.Stdout, g.Cmd.Stderr = g, g
	g.Started = time.Now()
	if err := g.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gatewayd %s: %w", bin, err)
	}
	go func() {
		g.err = g.Cmd.Wait()
		close(g.exited)
	}()
	if o.NoWait {
		return g, nil
	}
	rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	if err := g.WaitReady(rctx); err != nil {
		g.Stop()
		return nil, fmt.Errorf("%w\ngatewayd output:\n%s", err, g.Output())
	}
	return g, nil
}

// ConfigPath is the config file of a gateway whose Options.Dir is dir
// (Gateway.ConfigPath once started).
func ConfigPath(dir string) string { return filepath.Join(dir, "config", "config.json") }

// WriteConfig writes cfg to the config file at path, creating its
// directory. It writes a temporary file and renames it over path, so a
// running gateway's config watcher never reads half a file.
func WriteConfig(path, cfg string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write test gateway config %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write test gateway config %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write test gateway config %s: %w", path, err)
	}
	return nil
}

// WaitReady polls GET /readyz until it answers 200, the child exits, or ctx
// ends.
func (g *Gateway) WaitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.HTTPURL+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("gatewayd exited before it was ready: %v", g.err)
		case <-ctx.Done():
			return fmt.Errorf("gatewayd on port %d not ready: %w", g.Port, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the child (by PID), waits up to 10 s for it to exit,
// then kills it. It returns the child's exit error, nil for a clean exit.
func (g *Gateway) Stop() error {
	select {
	case <-g.exited:
		return g.err
	default:
	}
	_ = g.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-g.exited:
		return g.err
	case <-t.C:
		_ = g.Cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("gatewayd (pid %d) ignored SIGTERM for 10s and was killed", g.Cmd.Process.Pid)
	}
}

// RSS returns the child's resident set size in bytes (VmRSS from
// /proc/PID/status; Linux only).
func (g *Gateway) RSS() (int64, error) {
	return RSS(g.Cmd.Process.Pid)
}

// RSS returns the resident set size of process pid in bytes, from
// /proc/PID/status (Linux only).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w (needs Linux /proc)", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("parse VmRSS of pid %d: %w", pid, err)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/%d/status", pid)
}
