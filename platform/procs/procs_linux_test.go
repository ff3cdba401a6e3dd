//go:build linux

package procs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "GATEWAYD_PROCS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper listens on $HELPER_ADDR, prints the address, and waits for
// stdin to close (at most a minute). In mode "stubborn" it ignores SIGTERM.
func runHelper(mode string) int {
	if mode == "exit" {
		return 0
	}
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", os.Getenv("HELPER_ADDR"))
	if err != nil {
		fmt.Println("ERR", err)
		return 3
	}
	defer ln.Close()
	fmt.Println(ln.Addr().String())
	done := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
	return 0
}

type child struct {
	cmd  *exec.Cmd
	addr string
	port int
}

// startChild re-execs the test binary as a listening helper.
func startChild(t *testing.T, mode, addr string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_ADDR="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by PID
			_ = cmd.Wait()
		}
	})
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		ch <- result{strings.TrimSpace(line), err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not report its address within 30s")
	}
	if r.err != nil || strings.HasPrefix(r.line, "ERR") {
		t.Fatalf("helper: %q, %v", r.line, r.err)
	}
	_, p, err := net.SplitHostPort(r.line)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return &child{cmd: cmd, addr: r.line, port: port}
}

func hasIPv6(t *testing.T) bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestListenersOnPortAndTerminate(t *testing.T) {
	tests := []struct {
		name, addr string
		needV6     bool
	}{
		{name: "ipv4-loopback", addr: "127.0.0.1:0"},
		{name: "ipv6-loopback", addr: "[::1]:0", needV6: true},
		{name: "wildcard", addr: "0.0.0.0:0"}, // dual-stack: shows in tcp6 as [::]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needV6 && !hasIPv6(t) {
				t.Skip("SKIPPING: no IPv6 loopback on this host (CI hosts have ::1)")
			}
			c := startChild(t, "listen", tt.addr)
			holders, err := ListenersOnPort(c.port)
			if err != nil {
				t.Fatal(err)
			}
			if len(holders) != 1 {
				t.Fatalf("ListenersOnPort(%d) = %+v, want exactly the helper", c.port, holders)
			}
			h := holders[0]
			if h.PID != c.cmd.Process.Pid || h.Addr != c.addr {
				t.Fatalf("holder %+v, want pid %d addr %s", h, c.cmd.Process.Pid, c.addr)
			}
			if !strings.Contains(h.Cmdline, os.Args[0]) {
				t.Fatalf("cmdline %q does not name the helper binary %s", h.Cmdline, os.Args[0])
			}

			var logs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := Terminate(ctx, h.PID, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "sent SIGTERM") || !strings.Contains(logs.String(), "process exited") {
				t.Fatalf("Terminate did not log what it did:\n%s", logs.String())
			}
			err = c.cmd.Wait()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("helper exit: %v, want death by SIGTERM", err)
			}
			if ws := exitErr.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Fatalf("helper ended with %v, want SIGTERM", ws)
			}
			holders, err = ListenersOnPort(c.port)
			if err != nil || len(holders) != 0 {
				t.Fatalf("after Terminate: %+v, %v; want nobody", holders, err)
			}
		})
	}
}

func TestTerminateDoesNotKill(t *testing.T) {
	c := startChild(t, "stubborn", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := Terminate(ctx, c.cmd.Process.Pid, nil)
	if err == nil {
		t.Fatal("Terminate of a process ignoring SIGTERM succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "was not killed") ||
		!strings.Contains(err.Error(), "kill -KILL "+strconv.Itoa(c.cmd.Process.Pid)) {
		t.Fatalf("error %q does not say the process was left alone and what to do", err)
	}
	if gone(c.cmd.Process.Pid) {
		t.Fatal("the stubborn helper died: Terminate must not escalate to SIGKILL")
	}
	holders, err := ListenersOnPort(c.port)
	if err != nil || len(holders) != 1 || holders[0].PID != c.cmd.Process.Pid {
		t.Fatalf("stubborn helper no longer listening: %+v, %v", holders, err)
	}
}

func TestTerminateZombieIsGone(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=exit")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	for !gone(pid) { // exited but not reaped: a zombie
		if time.Now().After(deadline) {
			t.Fatal("helper did not exit within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Terminate(ctx, pid, nil); err != nil {
		t.Fatalf("Terminate of an exited child: %v", err)
	}
}

func TestTerminateRefuses(t *testing.T) {
	for _, pid := range []int{0, -1, os.Getpid()} {
		if err := Terminate(context.Background(), pid, nil); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("Terminate(%d) = %v, want a refusal", pid, err)
		}
	}
}

func TestListenersOnPortNobody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	holders, err := ListenersOnPort(port)
	if err != nil || len(holders) != 0 {
		t.Fatalf("ListenersOnPort(free port) = %+v, %v", holders, err)
	}
	for _, p := range []int{0, -1, 65536} {
		if _, err := ListenersOnPort(p); err == nil || !strings.Contains(err.Error(), "invalid port") {
			t.Errorf("ListenersOnPort(%d) = %v, want invalid port", p, err)
		}
	}
}

func TestListenersOnPortFindsOwnSocket(t *testing.T) {
	// A listener of this very process, opened in IPv4 and then IPv6, so both
	// tables and the multi-address case are exercised.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	want := []string{ln.Addr().String()}
	if hasIPv6(t) {
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err == nil {
			defer ln6.Close()
			want = append(want, ln6.Addr().String())
		}
	}
	holders, err := ListenersOnPort(port)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range holders {
		if h.PID != os.Getpid() {
			t.Fatalf("unexpected holder %+v", h)
		}
		got = append(got, h.Addr)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("addresses %v, want %v", got, want)
	}
}

func TestParseNetTCP(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures are from a little-endian host")
	}
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 00000000:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 100 0 0 10 0
   2: 0100007F:4965 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 31339 1 0000000000000000 20 4 30 10 -1
   3: 0A00A8C0:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31340 1 0000000000000000 100 0 0 10 0
`
	const table6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 43 1 0000000000000000 100 0 0 10 0
   3: 000080FE00000000FF00FC00010000FE:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 44 1 0000000000000000 100 0 0 10 0
`
	tests := []struct {
		name  string
		table string
		port  int
		want  []socket
	}{
		{name: "v4-18789", table: table, port: 18789, want: []socket{{"127.0.0.1:18789", 31337}, {"0.0.0.0:18789", 31338}}},
		{name: "v4-80", table: table, port: 80, want: []socket{{"192.168.0.10:80", 31340}}},
		{name: "v4-none", table: table, port: 81},
		{name: "v6", table: table6, port: 18789, want: []socket{
			{"[::1]:18789", 41}, {"[::]:18789", 42}, {"127.0.0.1:18789", 43}, {"[fe80::fc:ff:fe00:1]:18789", 44}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetTCP(strings.NewReader(tt.table), tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := parseNetTCP(strings.NewReader("header\n 0: zz:1 0 0A\n"), 1); err == nil {
		t.Fatal("short line accepted")
	}
	if _, err := parseNetTCP(strings.NewReader("header\n0: XYZ:0050 00000000:0000 0A a b c d e 5\n"), 80); err == nil {
		t.Fatal("bad hex accepted")
	}
}
