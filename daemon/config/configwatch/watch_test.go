package configwatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

const waitFor = 10 * time.Second

// msgHandler is a slog.Handler that forwards messages to a channel, so a
// test can wait until Watch reports a state change.
type msgHandler struct{ ch chan string }

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h msgHandler) WithGroup(string) slog.Handler      { return h }

type watchRun struct {
	calls chan struct{}
	msgs  chan string
	done  chan error
	mu    sync.Mutex
	seen  []string // the file's content at each call
}

func startWatch(t *testing.T, path string, debounce time.Duration) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchRun{calls: make(chan struct{}, 1000), msgs: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		w.done <- Watch(ctx, path, debounce, slog.New(msgHandler{w.msgs}), func() {
			b, err := os.ReadFile(path)
			w.mu.Lock()
			if err != nil {
				w.seen = append(w.seen, "<"+err.Error()+">")
			} else {
				w.seen = append(w.seen, string(b))
			}
			w.mu.Unlock()
			w.calls <- struct{}{}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(waitFor):
			t.Error("Watch did not return after its context was cancelled")
		}
	})
	return w
}

// waitCall waits for the next onChange call.
func (w *watchRun) waitCall(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.calls:
	case err := <-w.done:
		t.Fatalf("%s: Watch returned early: %v", what, err)
	case <-time.After(waitFor):
		t.Fatalf("%s: no onChange call within %v", what, waitFor)
	}
}

// waitContent waits until a call saw the file with content want.
func (w *watchRun) waitContent(t *testing.T, what, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		w.mu.Lock()
		for _, s := range w.seen {
			if s == want {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		select {
		case <-w.calls:
		case err := <-w.done:
			t.Fatalf("%s: Watch returned early: %v", what, err)
		case <-deadline:
			t.Fatalf("%s: no onChange call saw content %q within %v (saw %q)", what, want, waitFor, w.seenCopy())
		}
	}
}

func (w *watchRun) seenCopy() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// waitMsg waits for a log message containing sub.
func (w *watchRun) waitMsg(t *testing.T, sub string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-w.msgs:
			if strings.Contains(m, sub) {
				return
			}
		case <-deadline:
			t.Fatalf("no log message containing %q within %v", sub, waitFor)
		}
	}
}

// ready makes sure the watch is in place: it rewrites the file until a call
// comes (Watch runs asynchronously, so the first write may precede it).
func (w *watchRun) ready(t *testing.T, path string) {
	t.Helper()
	for range 10 {
		testutil.WriteFile(t, path, "ready")
		select {
		case <-w.calls:
			return
		case err := <-w.done:
			t.Fatalf("Watch returned early: %v", err)
		case <-time.After(time.Second):
		}
	}
	t.Fatal("watch never became ready")
}

func TestWatchEditsRenameSavesAndRecreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	testutil.WriteFile(t, path, "v0")
	w := startWatch(t, path, 0)
	w.ready(t, path)

	testutil.WriteFile(t, path, "v1") // in place
	w.waitContent(t, "in-place write", "v1")

	if err := config.WriteFileAtomic(path, []byte("v2"), 0o600); err != nil { // editor-style rename save
		t.Fatal(err)
	}
	w.waitContent(t, "rename save", "v2")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.waitCall(t, "remove")
	testutil.WriteFile(t, path, "v3")
	w.waitContent(t, "recreate after delete", "v3")

	// The watch still works after all that.
	if err := config.WriteFileAtomic(path, []byte("v4"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitContent(t, "second rename save", "v4")
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	testutil.WriteFile(t, path, "v0")
	w := startWatch(t, path, 0)
	w.ready(t, path)

	for i := range 30 {
		testutil.WriteFile(t, filepath.Join(dir, "other.json"), strings.Repeat("x", i))
		testutil.WriteFile(t, filepath.Join(dir, "config.json.bak"), "x")
	}
	if err := config.WriteFileAtomic(path, []byte("final"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitContent(t, "target write after noise", "final")
	// The "ready" writes account for a few calls (truncate and write are two
	// events); 60 writes to other files would add dozens more, nearly all
	// before the target changed.
	n := 0
	for _, s := range w.seenCopy() {
		if s != "final" {
			n++
		}
	}
	if n > 4 {
		t.Errorf("%d onChange calls before the target changed: other files trigger it (calls saw %q)", n, w.seenCopy())
	}
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestWatchDebounceCoalesces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	testutil.WriteFile(t, path, "v0")
	w := startWatch(t, path, 300*time.Millisecond)
	w.ready(t, path)
	drain(w.calls)

	start := time.Now()
	for i := range 10 {
		testutil.WriteFile(t, path, strings.Repeat("y", i+1))
	}
	burst := time.Since(start)
	w.waitCall(t, "burst")
	w.waitContent(t, "burst", strings.Repeat("y", 10))
	if burst < 250*time.Millisecond { // the burst fit in one debounce window
		w.mu.Lock()
		n := len(w.seen)
		w.mu.Unlock()
		// one call for "ready" plus one for the burst
		if n > 2 {
			t.Errorf("%d calls for a burst of 10 writes within %v, want 1 (debounce 300ms)", n-1, burst)
		}
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	path := filepath.Join(dir, "config.json")
	w := startWatch(t, path, 0)
	w.waitMsg(t, "watching its nearest ancestor")
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatalf("Watch created directories: %v", err)
	}

	testutil.WriteFile(t, path, "born") // creates a/b and the file
	w.waitContent(t, "file in new directory", "born")
	if err := config.WriteFileAtomic(path, []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitContent(t, "edit in new directory", "edited")

	// The whole directory goes away, and comes back.
	if err := os.RemoveAll(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	w.waitMsg(t, "watching its nearest ancestor")
	testutil.WriteFile(t, path, "reborn")
	w.waitContent(t, "file in recreated directory", "reborn")
}

func TestWatchStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, filepath.Join(t.TempDir(), "c.json"), time.Second, nil, func() {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch = %v after cancel, want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Watch did not return after cancel")
	}
}

// An edit made after New returns and before Run starts is reported: New
// arms the watch, which is what lets a reload that turns watching on
// answer only once the watch is in place.
func TestNewArmsBeforeRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	w, err := New(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, 0, func() { called <- struct{}{} }) }()
	select {
	case <-called:
	case <-time.After(waitFor):
		t.Fatal("the edit made between New and Run was not reported")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}
