package bench

// The loopback floor: what this machine's loopback TCP does between two
// processes with no WebSocket framing, no JSON and no gateway at all. On a
// small shared VM it is slow and varies from run to run, and the health
// targets (≥ 20,000 req/s over 1 connection, ≥ 60,000 over 64) sit at or
// below it, so the gateway's figures only mean something next to the
// floor measured in the same run:
//
//	go test -run '^$' -bench 'LoopbackFloor|Health' ./daemon/bench/
//
// The echo server is this test binary re-executed with
// GATEWAY_BENCH_ECHO_SERVER=1 (TestMain hands over to echoServerMain), so
// the round trip crosses processes as it does with gatewayd.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// echoServerEnv set to 1 makes the test binary an echo server
	// (TestMain → echoServerMain) instead of running tests.
	echoServerEnv = "GATEWAY_BENCH_ECHO_SERVER"
	// floorMsgSize is the size of one message, about that of a health
	// request or response frame.
	floorMsgSize = 100
	// floorRunLimit bounds one run of a floor sub-benchmark: its
	// connections' reads and writes fail past it.
	floorRunLimit = 2 * time.Minute
	// echoServerLifetime bounds the echo server process, should its parent
	// never close its stdin.
	echoServerLifetime = 30 * time.Minute
	// echoServerWait bounds the echo server's start (its address on
	// stdout) and its exit once stdin is closed, before it is killed.
	echoServerWait = 10 * time.Second
)

// BenchmarkLoopbackFloor measures closed-loop 100-byte echo round trips
// between this process and an echo server in another process over
// loopback TCP: over one connection, over 64 (one goroutine each), and
// over one connection with 16 messages in flight (the refills written
// together, as `gatewayctl bench --pipeline 16` does). It reports round
// trips per second and the p50 and p99 round trip in µs.
func BenchmarkLoopbackFloor(b *testing.B) {
	addr, _ := startEchoServer(b)
	for _, tc := range []struct {
		name          string
		conns, window int
	}{
		{"1conn", 1, 1},
		{"64conns", 64, 1},
		{"1conn-pipelined16", 1, 16},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFloor(b, addr, tc.conns, tc.window) })
	}
}

// benchFloor runs b.N round trips shared by conns connections with window
// messages in flight on each.
func benchFloor(b *testing.B, addr string, conns, window int) {
	cs := dialEcho(b, addr, conns)
	var budget atomic.Int64
	budget.Store(int64(b.N))
	lats := make([][]time.Duration, conns)
	errs := make([]error, conns)
	deadline := time.Now().Add(floorRunLimit)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			lats[i], errs[i] = echoLoop(c, window, &budget, deadline, make([]time.Duration, 0, b.N/conns+window))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lats...)
	if len(all) != b.N {
		b.Fatalf("%d round trips recorded, want b.N = %d", len(all), b.N)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rt/s")
	b.ReportMetric(us(Percentile(all, 0.5)), "µs-p50")
	b.ReportMetric(us(Percentile(all, 0.99)), "µs-p99")
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// dialEcho opens n connections to the echo server, closed when tb ends.
func dialEcho(tb testing.TB, addr string, n int) []net.Conn {
	tb.Helper()
	cs := make([]net.Conn, n)
	for i := range cs {
		c, err := net.DialTimeout("tcp", addr, echoServerWait)
		if err != nil {
			tb.Fatalf("connect to the loopback echo server: %v", err)
		}
		tb.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// echoLoop drives one connection to the echo server: it keeps up to
// window floorMsgSize-byte messages in flight, each claimed from budget
// before it is sent, until budget is spent and every message has come
// back, and appends each message's round trip (its write to the arrival
// of its last byte) to lat. The messages that came back in one read are
// replaced with one write. Reads and writes fail after deadline.
func echoLoop(c net.Conn, window int, budget *atomic.Int64, deadline time.Time, lat []time.Duration) ([]time.Duration, error) {
	if err := c.SetDeadline(deadline); err != nil {
		return lat, fmt.Errorf("echo connection: set deadline: %w", err)
	}
	out := bytes.Repeat([]byte{'x'}, window*floorMsgSize)
	in := make([]byte, window*floorMsgSize)
	sent := make([]time.Time, window) // ring of the send times in flight, oldest at head
	head, inflight := 0, 0
	claim := func(k int) int {
		for i := range k {
			if budget.Add(-1) < 0 {
				return i
			}
		}
		return k
	}
	send := func(k int) error {
		t := time.Now()
		for range k {
			sent[(head+inflight)%window] = t
			inflight++
		}
		if _, err := c.Write(out[:k*floorMsgSize]); err != nil {
			return fmt.Errorf("echo connection: write: %w (the echo server died, or the round trips took longer than %s)", err, floorRunLimit)
		}
		return nil
	}
	if k := claim(window); k > 0 {
		if err := send(k); err != nil {
			return lat, err
		}
	}
	partial := 0 // bytes of the oldest message already back
	for inflight > 0 {
		n, err := c.Read(in)
		now := time.Now()
		if err != nil {
			return lat, fmt.Errorf("echo connection: read with %d messages in flight: %w (the echo server died, or the round trips took longer than %s)", inflight, err, floorRunLimit)
		}
		partial += n
		back := partial / floorMsgSize
		partial %= floorMsgSize
		if back > inflight || (back == inflight && partial > 0) {
			return lat, fmt.Errorf("echo connection: got more bytes back than the %d messages in flight", inflight)
		}
		for range back {
			lat = append(lat, now.Sub(sent[head]))
			head = (head + 1) % window
			inflight--
		}
		if k := claim(back); k > 0 {
			if err := send(k); err != nil {
				return lat, err
			}
		}
	}
	return lat, nil
}

// startEchoServer runs the echo server in a child process (this test
// binary re-executed) and returns its loopback address and a stop
// function: it closes the child's stdin, waits for it to exit (killing it
// by PID after echoServerWait) and reports how it ended. Stop runs at most
// once; tb's cleanup calls it too.
func startEchoServer(tb testing.TB) (addr string, stop func() error) {
	return startFloorServer(tb, "1")
}

// startFloorServer is startEchoServer for a server mode: "1" echoes,
// "fanout" is fanoutServerMain.
func startFloorServer(tb testing.TB, mode string) (addr string, stop func() error) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("find the test binary to run the echo server: %v", err)
	}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	// Should the TestMain hook be missing, these flags make the child a
	// test binary that runs nothing.
	cmd := exec.Command(exe, "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), echoServerEnv+"="+mode)
	cmd.Stdin, cmd.Stdout = stdinR, outW
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	stdinR.Close()
	outW.Close()
	if err != nil {
		stdinW.Close()
		outR.Close()
		tb.Fatalf("start the echo server %s: %v", exe, err)
	}
	stop = sync.OnceValue(func() error {
		defer outR.Close()
		stdinW.Close()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err = <-waited:
		case <-time.After(echoServerWait):
			cmd.Process.Kill()
			<-waited
			err = fmt.Errorf("still running %s after its stdin closed: killed", echoServerWait)
		}
		if err != nil {
			return fmt.Errorf("loopback echo server (pid %d): %w\n%s", cmd.Process.Pid, err, stderr.Bytes())
		}
		return nil
	})
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Error(err)
		}
	})
	outR.SetReadDeadline(time.Now().Add(echoServerWait))
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		tb.Fatalf("the echo server (pid %d) did not print its address: %v; stop: %v (TestMain must call echoServerMain when %s=1)",
			cmd.Process.Pid, err, stop(), echoServerEnv)
	}
	addr = strings.TrimSpace(line)
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		tb.Fatalf("the echo server printed %q, not a loopback address; stop: %v (TestMain must call echoServerMain when %s=1)",
			line, stop(), echoServerEnv)
	}
	return addr, stop
}

// echoServerMain is the echo server process: it listens on a loopback
// port, prints the address on stdout, echoes every connection's bytes back
// as they come and returns 0 once stdin is closed (the parent's stop, or
// the parent's exit). It exits with 2 after echoServerLifetime.
func echoServerMain() int { return floorServerMain(echoConn) }

// floorServerMain is the child process of the floor benchmarks: it listens
// on a loopback port, prints the address on stdout, hands every connection
// to serve on its own goroutine and returns 0 once stdin is closed (the
// parent's stop, or the parent's exit). It exits with 2 after
// echoServerLifetime.
func floorServerMain(serve func(net.Conn)) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor server: listen on loopback: %v\n", err)
		return 1
	}
	time.AfterFunc(echoServerLifetime, func() {
		fmt.Fprintf(os.Stderr, "floor server: still running after %s: exiting\n", echoServerLifetime)
		os.Exit(2)
	})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		l.Close()
	}()
	if _, err := fmt.Println(l.Addr()); err != nil {
		fmt.Fprintf(os.Stderr, "floor server: print the address: %v\n", err)
		return 1
	}
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "floor server: accept: %v\n", err)
			return 1
		}
		go serve(c)
	}
}

// fanoutMsgSize is the size of one fanned-out message, about that of a
// presence event frame.
const fanoutMsgSize = 300

// fanoutServerMain is the fan-out floor's child: every connection is kept;
// any byte read from any of them sends one fanoutMsgSize message to all of
// them, each written by a goroutine of its own as gatewayd's per-connection
// flushers do.
func fanoutServerMain() int {
	var mu sync.Mutex
	var conns []net.Conn
	msg := bytes.Repeat([]byte("p"), fanoutMsgSize)
	return floorServerMain(func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			for range n {
				mu.Lock()
				all := slices.Clone(conns)
				mu.Unlock()
				for _, o := range all {
					go o.Write(msg)
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	})
}

// BenchmarkLoopbackFanoutFloor is BenchmarkPresenceFanout with nothing of
// the gateway: a poster sends one byte to a server in another process,
// which writes a fanoutMsgSize message to each of fanoutClients observing
// connections held by this process, one goroutine each reading. It reports
// the p50 and p99 time from the poster's write to each observer's read, in
// ms, over rounds paced as the gateway benchmark's.
func BenchmarkLoopbackFanoutFloor(b *testing.B) {
	raiseFileLimit()
	addr, _ := startFloorServer(b, "fanout")
	cs := dialEcho(b, addr, fanoutClients+1)
	poster, observers := cs[0], cs[1:]
	deadline := time.Now().Add(floorRunLimit)
	arrivals := make(chan time.Time, fanoutClients)
	var wg sync.WaitGroup
	for _, c := range cs {
		c.SetDeadline(deadline)
		wg.Go(func() {
			buf := make([]byte, fanoutMsgSize)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if c != poster {
					arrivals <- time.Now()
				}
			}
		})
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
		wg.Wait()
	}()
	round := func() ([]time.Duration, error) {
		t0 := time.Now()
		if _, err := poster.Write([]byte{'F'}); err != nil {
			return nil, err
		}
		lat := make([]time.Duration, 0, len(observers))
		timeout := time.After(30 * time.Second)
		for range observers {
			select {
			case at := <-arrivals:
				lat = append(lat, at.Sub(t0))
			case <-timeout:
				return nil, fmt.Errorf("only %d of %d observers got the message within 30s", len(lat), len(observers))
			}
		}
		return lat, nil
	}
	// The server may still be accepting: one untimed round proves every
	// observer is in its fan-out.
	if _, err := round(); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	last := time.Now()
	for b.Loop() {
		time.Sleep(time.Until(last.Add(fanoutRoundGap)))
		last = time.Now()
		l, err := round()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	b.ReportMetric(ms(Percentile(lat, 0.5)), "ms-p50")
	b.ReportMetric(ms(Percentile(lat, 0.99)), "ms-p99")
}

// echoConn writes back what it reads, read by read, until the connection
// ends.
func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestLoopbackEchoServer checks the floor's machinery: the child echoes
// bytes exactly, echoLoop records exactly budget round trips over several
// connections and windows, and the child exits cleanly when stopped.
func TestLoopbackEchoServer(t *testing.T) {
	addr, stop := startEchoServer(t)
	c := dialEcho(t, addr, 1)[0]
	c.SetDeadline(time.Now().Add(echoServerWait))
	want := make([]byte, 3*floorMsgSize+7)
	for i := range want {
		want[i] = byte(i)
	}
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo differs from what was sent")
	}

	for _, tt := range []struct{ conns, window, budget int }{
		{1, 1, 50},
		{3, 1, 50},
		{1, 16, 50}, // 50 is not a multiple of 16: the last refill is partial
		{4, 16, 3},  // fewer messages than one window
	} {
		t.Run(fmt.Sprintf("conns=%d/window=%d/budget=%d", tt.conns, tt.window, tt.budget), func(t *testing.T) {
			var budget atomic.Int64
			budget.Store(int64(tt.budget))
			cs := dialEcho(t, addr, tt.conns)
			lats := make([][]time.Duration, len(cs))
			errs := make([]error, len(cs))
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Go(func() { lats[i], errs[i] = echoLoop(c, tt.window, &budget, time.Now().Add(echoServerWait), nil) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, lat := range lats {
				for _, d := range lat {
					if d <= 0 {
						t.Fatalf("round trip of %v", d)
					}
				}
				total += len(lat)
			}
			if total != tt.budget {
				t.Errorf("%d round trips recorded, want %d", total, tt.budget)
			}
		})
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, echoServerWait); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after stop", addr)
	}
}

// TestLoopbackFanoutServer: one byte on any connection brings one
// fanoutMsgSize message to every connection, the sender's included.
func TestLoopbackFanoutServer(t *testing.T) {
	addr, stop := startFloorServer(t, "fanout")
	cs := dialEcho(t, addr, 4)
	// The server adds a connection when it accepts it: trigger (bounded)
	// until the last one dialled hears, then drain everyone.
	msg := make([]byte, fanoutMsgSize)
	heard := false
	for i := 0; i < 50 && !heard; i++ {
		if _, err := cs[0].Write([]byte{'F'}); err != nil {
			t.Fatal(err)
		}
		cs[3].SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := io.ReadFull(cs[3], msg)
		heard = err == nil
	}
	if !heard {
		t.Fatal("the last connection never got a fanned-out message")
	}
	time.Sleep(50 * time.Millisecond) // the other copies land
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		io.Copy(io.Discard, c) // ends at the deadline
	}
	if _, err := cs[2].Write([]byte{'F'}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(echoServerWait))
		if _, err := io.ReadFull(c, msg); err != nil {
			t.Fatalf("conn %d got no message: %v", i, err)
		}
		if !bytes.Equal(msg, bytes.Repeat([]byte("p"), fanoutMsgSize)) {
			t.Fatalf("conn %d got a different message", i)
		}
	}
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _ := c.Read(make([]byte, 1)); n > 0 {
			t.Fatalf("conn %d got more than one message per trigger", i)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
