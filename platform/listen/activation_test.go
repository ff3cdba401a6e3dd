package listen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a socket-activated daemon (see
// runHelper) instead of running tests.
const helperEnv = "GATEWAYD_LISTEN_TEST_HELPER"

// helperReport is what the helper writes on every connection it accepts.
type helperReport struct {
	Source    string   `json:"source"`
	Name      string   `json:"name"`
	Addrs     []string `json:"addrs"`
	Again     []string `json:"again"` // Addrs of a second Acquire after closing the first set
	ListenFDs string   `json:"listenFds"`
}

// runHelper acquires listeners like gatewayd does (explicit specs from
// LISTEN_HELPER_SPECS, else auto-detect with a fallback that must not be
// used), closes them, acquires again (the in-process restart case), then
// accepts one connection per listener and reports what it got.
func runHelper(mode string) int {
	if mode != "serve" {
		fmt.Println("ERR unknown helper mode", mode)
		return 2
	}
	var specs []Spec
	for _, s := range strings.Split(os.Getenv("LISTEN_HELPER_SPECS"), ",") {
		if s == "" {
			continue
		}
		sp, err := ParseSpec(s)
		if err != nil {
			fmt.Println("ERR", err)
			return 3
		}
		specs = append(specs, sp)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set, err := Acquire(specs, []string{"127.0.0.1:0"}, log)
	if err != nil {
		fmt.Println("ERR", err)
		return 3
	}
	first := set.Addrs()
	if err := set.Close(); err != nil {
		fmt.Println("ERR close:", err)
		return 3
	}
	set, err = Acquire(specs, []string{"127.0.0.1:0"}, log)
	if err != nil {
		fmt.Println("ERR second acquire:", err)
		return 3
	}
	defer set.Close()
	for _, l := range set.Listeners {
		if d, ok := l.Listener.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Now().Add(30 * time.Second))
		}
		c, err := l.Accept()
		if err != nil {
			fmt.Println("ERR accept:", err)
			return 4
		}
		_ = json.NewEncoder(c).Encode(helperReport{
			Source: l.Source, Name: l.Name, Addrs: first, Again: set.Addrs(),
			ListenFDs: os.Getenv("LISTEN_FDS"),
		})
		_ = c.Close()
	}
	return 0
}

// readReport dials addr and decodes the helper's report.
func readReport(t *testing.T, network, addr string) helperReport {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var r helperReport
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("read report from %s: %v", addr, err)
	}
	return r
}

func fileOf(t *testing.T, l net.Listener) *os.File {
	t.Helper()
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSystemdActivationExtraFiles re-execs the test binary with sockets in
// ExtraFiles and the LISTEN_* protocol set, as systemd does (go-systemd's
// own test pattern). LISTEN_PID is set by the shell to its own PID right
// before exec, so it is the helper's real PID.
func TestSystemdActivationExtraFiles(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH to set LISTEN_PID before exec (CI images have /bin/sh)")
	}
	web1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer web1.Close()
	web2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer web2.Close()
	dir, err := os.MkdirTemp("", "ls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	admin, err := net.Listen("unix", filepath.Join(dir, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	files := []*os.File{fileOf(t, web1), fileOf(t, web2), fileOf(t, admin)}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()

	tests := []struct {
		name    string
		specs   string
		dial    []net.Listener
		wantErr string
	}{
		{name: "by-name", specs: "systemd:web", dial: []net.Listener{web1, web2}},
		{name: "auto-detect", specs: "", dial: []net.Listener{web1, web2, admin}},
		{name: "unknown-name", specs: "systemd:nope", wantErr: "no socket with that name was passed (available: admin, web)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sh, "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0"`, os.Args[0])
			cmd.ExtraFiles = files
			cmd.Env = append(os.Environ(), helperEnv+"=serve", "LISTEN_FDS=3", "LISTEN_FDNAMES=web:web:admin",
				"LISTEN_HELPER_SPECS="+tt.specs)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				err := cmd.Wait()
				if err == nil || !strings.Contains(out.String(), tt.wantErr) {
					t.Fatalf("helper exit %v, stdout %q; want an error containing %q", err, out.String(), tt.wantErr)
				}
				return
			}
			var reports []helperReport
			for _, l := range tt.dial {
				reports = append(reports, readReport(t, l.Addr().Network(), l.Addr().String()))
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
			}
			var wantAddrs []string
			for _, l := range tt.dial {
				wantAddrs = append(wantAddrs, addrString(l.Addr()))
			}
			for i, r := range reports {
				if r.Source != KindSystemd {
					t.Errorf("listener %d: source %q, want systemd", i, r.Source)
				}
				if !slices.Equal(r.Addrs, wantAddrs) {
					t.Errorf("helper got %v, want %v", r.Addrs, wantAddrs)
				}
				if !slices.Equal(r.Again, r.Addrs) {
					t.Errorf("second Acquire got %v, first %v: activation sockets were not kept", r.Again, r.Addrs)
				}
				if r.ListenFDs != "" {
					t.Errorf("LISTEN_FDS=%q still set in the helper after Acquire", r.ListenFDs)
				}
			}
			if want := map[string]string{"by-name": "web", "auto-detect": "admin"}[tt.name]; want != "" && reports[len(reports)-1].Name != want {
				t.Errorf("last listener named %q, want %q", reports[len(reports)-1].Name, want)
			}
		})
	}
}

// TestSystemdSocketActivateTool runs the helper under the real
// systemd-socket-activate tool, which binds the sockets, waits for the first
// connection and execs the helper with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES.
func TestSystemdSocketActivateTool(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("SKIPPING REAL ACTIVATION TEST: systemd-socket-activate not found (CI installs Debian package systemd)")
	}
	dir, err := os.MkdirTemp("", "ssa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "gw.sock")

	listening := regexp.MustCompile(`Listening on (\S+) as (\d+)\.`)
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		// The tool cannot bind port 0: pick a free port and retry if
		// someone takes it in between.
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tcpAddr := probe.Addr().String()
		probe.Close()
		os.Remove(sock)

		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, tool, "-l", sock, "-l", tcpAddr, "--fdname=gw:gw",
			"-E", helperEnv+"=serve", "-E", "LISTEN_HELPER_SPECS=", os.Args[0])
		var out bytes.Buffer
		cmd.Stdout = &out
		stderr, err := cmd.StderrPipe()
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		var errText strings.Builder
		ready := make(chan int, 1)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			sc := bufio.NewScanner(stderr)
			n := 0
			for sc.Scan() {
				errText.WriteString(sc.Text() + "\n")
				if listening.MatchString(sc.Text()) {
					if n++; n == 2 {
						ready <- n
					}
				}
			}
			_, _ = io.Copy(io.Discard, stderr)
		}()
		select {
		case <-ready:
		case <-drained:
		case <-ctx.Done():
		}
		select {
		case <-drained: // the tool exited before listening: retry
			_ = cmd.Wait()
			cancel()
			lastErr = errText.String()
			continue
		default:
		}
		r1 := readReport(t, "unix", sock)
		r2 := readReport(t, "tcp", tcpAddr)
		<-drained
		if err := cmd.Wait(); err != nil {
			cancel()
			t.Fatalf("helper under systemd-socket-activate: %v\nstdout: %s\nstderr: %s", err, out.String(), errText.String())
		}
		cancel()
		want := []string{"unix:" + sock, tcpAddr}
		for _, r := range []helperReport{r1, r2} {
			if r.Source != KindSystemd || r.Name != "gw" {
				t.Errorf("report %+v: want source systemd, name gw", r)
			}
			if !slices.Equal(r.Addrs, want) || !slices.Equal(r.Again, want) {
				t.Errorf("helper listened on %v then %v, want %v (in fd order)", r.Addrs, r.Again, want)
			}
		}
		if !strings.Contains(errText.String(), "using systemd socket") {
			t.Errorf("helper did not log the systemd sockets it used; stderr:\n%s", errText.String())
		}
		return
	}
	t.Fatalf("systemd-socket-activate never listened; last stderr:\n%s", lastErr)
}
