// Package testutil holds the helpers the tests of every package share: a
// bounded poll (WaitFor), a goroutine-safe buffer (SyncBuffer), a file
// writer (WriteFile) and HTTP helpers. Only
// tests and test-helper packages (gatewaydtest, sdtest) import it; it
// imports nothing of the module, so any package's tests can use it.
package testutil

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond every interval until it reports done, and fails tb
// when timeout passes first. cond returns whether the wait is over and
// the state it observed; the failure names what was waited for and the
// last state seen:
//
//	timed out after 5s waiting for the pid file; last state: absent
//
// cond runs on the test's goroutine, so it may itself fail tb (a process
// that exited, an error that will not go away).
func WaitFor(tb testing.TB, timeout, interval time.Duration, what string, cond func() (done bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(interval)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes (a logger, a
// command's output, a child process) and the test's reads. The zero value
// is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n lines of s, for a failure message or a WaitFor state
// that shows the end of a log.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Logger is a debug-level text logger that writes to tb.Log, so what the
// code under test logs shows with the test's failure (and with -v).
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logWriter hands each log record to tb.Log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// PostJSON posts body to url as application/json (the gateway refuses
// other bodies) with the extra headers, and returns the response with its
// body read and closed. A request that gets no response fails tb.
func PostJSON(tb testing.TB, ctx context.Context, url string, headers map[string]string, body string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("POST %s: read the answer: %v", url, err)
	}
	return resp, raw
}

// Bearer is the Authorization header for token, none when token is "".
func Bearer(token string) map[string]string {
	if token == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + token}
}

// WriteFile writes content to path in place (not by rename: watcher
// tests tell the two apart), creating its directories; it fails tb on an
// error.
func WriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}
