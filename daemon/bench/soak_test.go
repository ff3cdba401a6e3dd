//go:build !race

// The soak test runs without -race: the race detector multiplies the
// load generator's CPU several times over, and on a 2-core machine that
// measures the detector, not the gateway. `make test` runs it on its own
// line (go test -run TestSoak ./daemon/bench/).

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/internal/gatewaydtest"
	"github.com/gobwas/ws"
)

// Soak parameters: at least soakPreAuth
// connections that never authenticate and soakAuthed that do, churned
// with bad frames, slow bodies and bad tokens for soakDuration.
const (
	soakDuration = 60 * time.Second
	soakPreAuth  = 5000
	soakAuthed   = 5000
	// Concurrency of each kind of churner: bounded for a 2-core machine.
	soakPreAuthWorkers = 24
	soakAuthWorkers    = 12
	soakSlowBodies     = 16
	soakBadTokenHTTP   = 2
)

// soakCounts are what the churners did.
type soakCounts struct {
	preAuth, authed, slowBodies, badTokens, errors atomic.Int64
}

func maskedFrame(op ws.OpCode, payload []byte) []byte {
	f := ws.NewFrame(op, true, slices.Clone(payload))
	f = ws.MaskFrameInPlace(f)
	b, _ := ws.CompileFrame(f)
	return b
}

// preAuthChurn is one misbehaving unauthenticated connection, the kind
// chosen by i: a header declaring 64 KiB then silence, a binary frame,
// garbage JSON, a connect with a bad token, a half-sent HTTP head.
func preAuthChurn(addr string, i int64) error {
	if i%5 == 4 { // a request head that never ends
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr)
		time.Sleep(200 * time.Millisecond)
		return err
	}
	c, br, err := gatewaydtest.RawUpgrade(addr, "")
	if err != nil {
		return err
	}
	defer c.Close()
	switch i % 5 {
	case 0:
		if err := ws.WriteHeader(c, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: protocol.PreHelloMaxFrame}); err != nil {
			return err
		}
		_, err = c.Write([]byte(`{"type":"req"`))
		time.Sleep(200 * time.Millisecond)
		return err
	case 1:
		_, err = c.Write(maskedFrame(ws.OpBinary, []byte{0, 1, 2, 3}))
	case 2:
		_, err = c.Write(maskedFrame(ws.OpText, []byte(`{"type":"req","id":`)))
	case 3:
		_, err = c.Write(maskedFrame(ws.OpText, []byte(`{"type":"req","id":"c","method":"connect","params":{"minProtocol":4,"maxProtocol":4,`+
			`"client":{"id":"cli","version":"soak","platform":"linux","mode":"cli"},"auth":{"token":"wrong-token"}}}`)))
	}
	if err != nil {
		return err
	}
	return awaitClose(c, br)
}

// awaitClose reads until the gateway's close frame, answers it as a
// client does, and reads to the end of the connection.
func awaitClose(c net.Conn, br *bufio.Reader) error {
	for range 16 {
		h, payload, err := gatewaydtest.ReadFrame(br, 1<<20)
		if err != nil {
			return fmt.Errorf("no close frame from the gateway: %w", err)
		}
		if h.OpCode == ws.OpClose {
			_, _ = c.Write(maskedFrame(ws.OpClose, payload[:min(2, len(payload))]))
			_, _ = io.Copy(io.Discard, br)
			return nil
		}
	}
	return fmt.Errorf("the gateway did not close a misbehaving connection")
}

// authedChurn is one authenticated connection that sends bad frames
// (garbage, unknown methods, a frame over the pre-auth size) and leaves.
func authedChurn(ctx context.Context, o client.Options, i int64) error {
	p, err := client.DialPipe(ctx, o)
	if err != nil {
		return err
	}
	defer p.Close()
	junk := [][]byte{
		[]byte(`{"type":"req","id":`),
		[]byte(`{"type":"req","id":"1","method":"no.such.method"}`),
		[]byte(`{"type":"req","id":"2","method":"health","params":{"bogus":true}}`),
		[]byte(`[` + strings.Repeat(`"x",`, 20_000) + `"x"]`),
	}
	if err := p.Write(junk[i%int64(len(junk))]); err != nil {
		return err
	}
	_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 4 { // its answer, maybe an event before it
		m, err := p.Read()
		if err != nil {
			return err
		}
		if strings.Contains(string(m), `"type":"res"`) {
			return nil
		}
	}
	return nil
}

// slowBody posts a JSON body a byte every half second; the gateway must
// end it at its body deadline (30 s). The client gives up after hold:
// an error when hold is past that deadline, else just the end of it.
func slowBody(addr, token string, hold time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /tools/invoke HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{", addr, token)
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(ended) }()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	giveUp := time.After(hold)
	for {
		select {
		case <-ended:
			return nil
		case <-giveUp:
			if hold < 30*time.Second {
				return nil
			}
			return fmt.Errorf("a slow body was still open after %s", hold)
		case <-t.C:
			if _, err := c.Write([]byte(" ")); err != nil {
				return nil // the gateway closed it
			}
		}
	}
}

// churn runs every kind of misbehaving client against g for d, counting
// into counts and sampling client-side errors into errSample. Slow bodies
// are held for slowHold at most.
func churn(ctx context.Context, g *gatewaydtest.Gateway, opts client.Options, d, slowHold time.Duration, counts *soakCounts, errSample chan error) {
	addr := fmt.Sprintf("127.0.0.1:%d", g.Port)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var next atomic.Int64
	note := func(err error) {
		if err != nil {
			counts.errors.Add(1)
			select {
			case errSample <- err:
			default:
			}
		}
	}
	for range soakPreAuthWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				note(preAuthChurn(addr, next.Add(1)))
				counts.preAuth.Add(1)
			}
		}()
	}
	for range soakAuthWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				note(authedChurn(ctx, opts, next.Add(1)))
				counts.authed.Add(1)
			}
		}()
	}
	for range soakSlowBodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				note(slowBody(addr, g.Token, slowHold))
				counts.slowBodies.Add(1)
			}
		}()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for range soakBadTokenHTTP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("POST", g.HTTPURL+"/tools/invoke", strings.NewReader(`{"tool":"gateway.status"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer wrong-"+fmt.Sprint(next.Add(1)))
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 401 && resp.StatusCode != 429 {
						err = fmt.Errorf("bad token answered %d", resp.StatusCode)
					}
				}
				note(err)
				counts.badTokens.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// gatewayState is the gateway's RSS and goroutine count.
func gatewayState(ctx context.Context, g *gatewaydtest.Gateway, c *client.Conn) (rss int64, goroutines int, err error) {
	var h struct {
		Components struct {
			Hub struct {
				Goroutines int `json:"goroutines"`
			} `json:"hub"`
		} `json:"components"`
	}
	if err := c.CallInto(ctx, "health", nil, &h); err != nil {
		return 0, 0, err
	}
	rss, err = g.RSS()
	return rss, h.Components.Hub.Goroutines, err
}

// TestSoak churns the gateway for soakDuration while a good client's
// health keeps answering, and checks that RSS and goroutines come back to
// within 10% of where they started.
func TestSoak(t *testing.T) {
	skipWithoutBinary(t)
	raiseFileLimit()
	ctx0, cancel0 := context.WithTimeout(context.Background(), 15*time.Second)
	g, err := gatewaydtest.Start(ctx0, gatewayd, gatewaydtest.Options{Dir: t.TempDir()})
	cancel0()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.Stop(); err != nil {
			t.Logf("gatewayd exit: %v", err)
		}
		if t.Failed() {
			out := g.Output()
			if len(out) > 20000 {
				out = out[len(out)-20000:]
			}
			t.Logf("gatewayd output (tail):\n%s", out)
		}
	}()
	opts := client.Options{URL: g.URL, Token: g.Token}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	good, err := client.Dial(ctx, client.Options{URL: g.URL, Token: g.Token, Mode: "backend", InstanceID: "soak-good", EventBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	go func() { // drain its events
		for range good.Events() {
		}
	}()

	// Warm up: the same mix at the same concurrency for a few seconds, so
	// what is sized by the peak (pools, the scheduler, the poller) exists
	// before the baseline; then let the gateway settle (the hub trims
	// after a burst of connects) and take the baseline. A leak per
	// connection shows against it: the soak churns ten times as many.
	var warm soakCounts
	churn(ctx, g, opts, 6*time.Second, 2*time.Second, &warm, make(chan error, 1))
	if n := warm.errors.Load(); n > (warm.preAuth.Load()+warm.authed.Load())/100 {
		t.Fatalf("warm-up: %d of %d churn connections failed on the client side", n, warm.preAuth.Load()+warm.authed.Load())
	}
	var counts soakCounts
	errSample := make(chan error, 16)
	baseRSS, baseG := settle(ctx, t, g, good, 0, 0)
	t.Logf("baseline: RSS %.1f MB, %d goroutines", float64(baseRSS)/1e6, baseG)

	// The good client's health, every 100 ms, throughout.
	var lat []time.Duration
	var healthErr atomic.Value
	stopHealth := make(chan struct{})
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopHealth:
				return
			case <-tick.C:
			}
			hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
			t0 := time.Now()
			_, err := good.Call(hctx, "health", nil)
			hcancel()
			if err != nil {
				healthErr.CompareAndSwap(nil, fmt.Errorf("health after %s: %w", time.Since(t0).Round(time.Millisecond), err))
				continue
			}
			lat = append(lat, time.Since(t0))
		}
	}()

	var midRSS int64
	var midG int
	midDone := make(chan struct{})
	go func() {
		defer close(midDone)
		time.Sleep(soakDuration / 2)
		midRSS, midG, _ = gatewayState(ctx, g, good)
	}()
	churn(ctx, g, opts, soakDuration, 40*time.Second, &counts, errSample)
	<-midDone
	close(stopHealth)
	<-healthDone
	close(errSample)
	t.Logf("churned %d pre-auth, %d authenticated, %d slow bodies, %d bad-token requests in %s (%d client-side errors); mid-run RSS %.1f MB, %d goroutines",
		counts.preAuth.Load(), counts.authed.Load(), counts.slowBodies.Load(), counts.badTokens.Load(), soakDuration,
		counts.errors.Load(), float64(midRSS)/1e6, midG)
	for err := range errSample {
		t.Logf("sample client-side error: %v", err)
	}
	if err, _ := healthErr.Load().(error); err != nil {
		t.Errorf("the good client's health failed during the soak: %v", err)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatal("no health answers during the soak")
	}
	t.Logf("good client's health: %d answers, p50 %s, p99 %s, max %s", len(lat),
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	if int64(len(lat)) < int64(soakDuration/(100*time.Millisecond))/2 {
		t.Errorf("only %d health answers in %s (one per 100 ms was asked)", len(lat), soakDuration)
	}
	if n := counts.preAuth.Load(); n < soakPreAuth {
		t.Errorf("only %d pre-auth connections churned, want %d", n, soakPreAuth)
	}
	if n := counts.authed.Load(); n < soakAuthed {
		t.Errorf("only %d authenticated connections churned, want %d", n, soakAuthed)
	}
	// A failed authenticated churn would be a gateway that refused the
	// right token (a lockout) or fell over: at most a few are allowed.
	if n := counts.errors.Load(); n > (counts.preAuth.Load()+counts.authed.Load())/100 {
		t.Errorf("%d churn connections failed on the client side (more than 1%%)", n)
	}
	// A fresh client gets in with the right token after all the bad ones.
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("connect after the soak: %v", err)
	}
	c.Close()
	endRSS, endG := settle(ctx, t, g, good, baseRSS, baseG)
	t.Logf("after: RSS %.1f MB (%+.1f%%), %d goroutines (baseline %d)", float64(endRSS)/1e6,
		100*float64(endRSS-baseRSS)/float64(baseRSS), endG, baseG)
	if float64(endRSS) > 1.10*float64(baseRSS) {
		t.Errorf("RSS %.1f MB after the soak, more than 10%% over the baseline %.1f MB", float64(endRSS)/1e6, float64(baseRSS)/1e6)
	}
	if float64(endG) > math.Ceil(1.10*float64(baseG)) {
		t.Errorf("%d goroutines after the soak, more than 10%% over the baseline %d", endG, baseG)
	}
}

// settle waits until the gateway is quiet: no connection but the good
// client's, and (when a baseline is given) RSS and goroutines within 10%
// of it, or 60 s. It returns the last reading.
func settle(ctx context.Context, t *testing.T, g *gatewaydtest.Gateway, good *client.Conn, baseRSS int64, baseG int) (int64, int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var rss int64
	var gs int
	stable := 0
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		r, n, err := gatewayState(ctx, g, good)
		if err != nil {
			t.Fatalf("health while settling: %v", err)
		}
		if baseRSS > 0 && float64(r) <= 1.10*float64(baseRSS) && float64(n) <= math.Ceil(1.10*float64(baseG)) {
			return r, n
		}
		// Without a baseline: wait for the burst trim (hub: 2 s quiet) and
		// two equal goroutine counts in a row.
		if baseRSS == 0 && n == gs && r <= rss {
			stable++
			if stable >= 6 {
				return r, n
			}
		} else {
			stable = 0
		}
		rss, gs = r, n
	}
	return rss, gs
}
