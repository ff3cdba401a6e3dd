package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestJournalEnabled(t *testing.T) {
	for v, want := range map[string]bool{"": false, "8:12345": true, "0:0": true, "yes": false, "8:": false} {
		if got := JournalEnabled(func(k string) string {
			if k == "JOURNAL_STREAM" {
				return v
			}
			return ""
		}); got != want {
			t.Errorf("JournalEnabled(JOURNAL_STREAM=%q) = %v, want %v", v, got, want)
		}
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{
		slog.LevelDebug: 7, slog.LevelDebug - 4: 7, slog.LevelInfo: 6, slog.LevelInfo + 2: 6,
		slog.LevelWarn: 4, slog.LevelError: 3, slog.LevelError + 4: 3,
	} {
		if got := Priority(l); got != want {
			t.Errorf("Priority(%v) = %d, want %d", l, got, want)
		}
	}
}

func TestStderrFormats(t *testing.T) {
	tests := []struct {
		name    string
		journal bool
		want    []*regexp.Regexp
	}{
		{"plain", false, []*regexp.Regexp{
			regexp.MustCompile(`^time=\S+ level=DEBUG msg=dbg$`),
			regexp.MustCompile(`^time=\S+ level=INFO msg="hello world" k=v$`),
			regexp.MustCompile(`^time=\S+ level=WARN msg=careful comp=hub$`),
			regexp.MustCompile(`^time=\S+ level=ERROR msg=bad comp=hub req.id=7 req.err="multi\\nline"$`),
		}},
		{"journal", true, []*regexp.Regexp{
			regexp.MustCompile(`^<7>level=DEBUG msg=dbg$`),
			regexp.MustCompile(`^<6>level=INFO msg="hello world" k=v$`),
			regexp.MustCompile(`^<4>level=WARN msg=careful comp=hub$`),
			regexp.MustCompile(`^<3>level=ERROR msg=bad comp=hub req.id=7 req.err="multi\\nline"$`),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testutil.SyncBuffer
			lv := new(slog.LevelVar)
			lv.Set(slog.LevelDebug)
			log, closer, err := New(Options{Level: lv, Stderr: &buf, Journal: tt.journal})
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			log.Debug("dbg")
			log.Info("hello world", "k", "v")
			hub := log.With("comp", "hub")
			hub.Warn("careful")
			hub.WithGroup("req").Error("bad", "id", 7, slog.String("err", "multi\nline"))
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tt.want), buf.String())
			}
			for i, re := range tt.want {
				if !re.MatchString(lines[i]) {
					t.Errorf("line %d = %q, want match %v", i, lines[i], re)
				}
			}
		})
	}
}

func TestLevelVarIsShared(t *testing.T) {
	var buf testutil.SyncBuffer
	lv := new(slog.LevelVar)
	path := filepath.Join(t.TempDir(), "logs", "gatewayd.jsonl")
	log, closer, err := New(Options{Level: lv, Stderr: &buf, FilePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Debug("hidden")
	lv.Set(slog.LevelDebug) // what a hot reload of logging.level does
	log.Debug("shown")
	lv.Set(slog.LevelError)
	log.Warn("hidden too")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "msg=shown") {
		t.Errorf("stderr does not follow the level: %q", s)
	}
	recs := readJSONLines(t, path)
	if len(recs) != 1 || recs[0]["msg"] != "shown" || recs[0]["level"] != "DEBUG" {
		t.Errorf("file does not follow the level: %v", recs)
	}
}

func TestFileJSONAndModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "gatewayd.jsonl")
	var buf testutil.SyncBuffer
	log, closer, err := New(Options{Stderr: &buf, FilePath: path})
	if err != nil {
		t.Fatal(err)
	}
	log.With("comp", "srv").Info("listening", "addr", "127.0.0.1:18789", "n", 3)
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	log.Info("after close") // stderr only, no panic
	recs := readJSONLines(t, path)
	if len(recs) != 1 {
		t.Fatalf("file has %d records, want 1", len(recs))
	}
	r := recs[0]
	if r["msg"] != "listening" || r["level"] != "INFO" || r["comp"] != "srv" || r["addr"] != "127.0.0.1:18789" || r["n"] != 3.0 || r["time"] == nil {
		t.Errorf("record = %v", r)
	}
	if !strings.Contains(buf.String(), "after close") {
		t.Error("logging to stderr stopped after Close")
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Join(dir, "a"): 0o700, filepath.Join(dir, "a", "b"): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

func TestExistingFileIsAppendedAndTightened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	if err := os.WriteFile(path, []byte(`{"msg":"old"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("new")
	closer.Close()
	recs := readJSONLines(t, path)
	if len(recs) != 2 || recs[0]["msg"] != "old" || recs[1]["msg"] != "new" {
		t.Errorf("records = %v, want old then new", recs)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestNewFailsWhenFileCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A regular file where the log directory should be: fails even for root.
	_, _, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: filepath.Join(blocker, "logs", "gatewayd.jsonl")})
	if err == nil || !strings.Contains(err.Error(), "create log directory") {
		t.Errorf("New = %v, want a create-directory error", err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.jsonl")
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path, MaxBytes: 1000, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		log.Info("record", "i", i, "pad", strings.Repeat("x", 50))
	}
	closer.Close()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "gatewayd.jsonl,gatewayd.jsonl.1,gatewayd.jsonl.2" {
		t.Fatalf("files = %v, want the log and 2 rotated files", names)
	}
	// Newest records are in the live file, older in .1, older still in .2;
	// indices are consecutive across the three, ending at n-1.
	var all []map[string]any
	for _, name := range []string{"gatewayd.jsonl.2", "gatewayd.jsonl.1", "gatewayd.jsonl"} {
		p := filepath.Join(dir, name)
		fi, _ := os.Stat(p)
		if fi.Size() > 1000 {
			t.Errorf("%s is %d bytes, more than MaxBytes 1000", name, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, fi.Mode().Perm())
		}
		all = append(all, readJSONLines(t, p)...)
	}
	for k, r := range all {
		want := float64(n - len(all) + k)
		if r["i"] != want {
			t.Fatalf("record %d has i=%v, want %v (rotation lost or reordered records)", k, r["i"], want)
		}
	}
	if len(all) < 12 {
		t.Errorf("only %d records kept in 3 files of 1000 bytes", len(all))
	}
}

func TestConcurrentWritersWithRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.jsonl")
	var stderr testutil.SyncBuffer
	log, closer, err := New(Options{Stderr: &stderr, FilePath: path, MaxBytes: 4096, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		l := log.With("w", w)
		wg.Go(func() {
			for i := range each {
				l.Info("concurrent", "i", i)
			}
		})
	}
	wg.Wait()
	closer.Close()
	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	for _, p := range files {
		for _, r := range readJSONLines(t, p) { // fails on any torn line
			seen[fmt.Sprint(r["w"], "/", r["i"])] = true
		}
	}
	if len(seen) != writers*each {
		t.Errorf("file records: %d distinct, want %d", len(seen), writers*each)
	}
	if got := strings.Count(stderr.String(), "msg=concurrent"); got != writers*each {
		t.Errorf("stderr lines: %d, want %d", got, writers*each)
	}
	if len(files) < 5 {
		t.Errorf("only %d files: rotation did not happen", len(files))
	}
}

// TestFileWriteFailureKeepsStderr swaps the open log file for one opened
// read-only (every write fails with EBADF, like a full disk fails with
// ENOSPC): stderr must go on, the failure must be reported once, and the
// file must be retried and recover.
func TestFileWriteFailureKeepsStderr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	var stderr testutil.SyncBuffer
	log, closer, err := New(Options{Stderr: &stderr, FilePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	rot := closer.(*rotator)
	log.Info("before")
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rot.mu.Lock()
	rot.f.Close()
	rot.f = ro
	rot.mu.Unlock()

	// A failed write closes the handle and the next record reopens the real
	// file, so put a read-only handle back after each record.
	for i := range 5 {
		log.Info("during", "i", i)
		rot.mu.Lock()
		if rot.f != nil {
			rot.f.Close()
		}
		rot.f, _ = os.Open(path)
		rot.mu.Unlock()
	}
	rot.mu.Lock()
	failures := rot.failures
	rot.f.Close()
	rot.f = nil // the next record reopens the real file
	rot.mu.Unlock()
	log.Info("after")

	out := stderr.String()
	if n := strings.Count(out, "msg=during"); n != 5 {
		t.Errorf("stderr has %d of 5 records logged while the file failed:\n%s", n, out)
	}
	if n := strings.Count(out, "cannot write log file"); n != 1 {
		t.Errorf("failure reported %d times, want once:\n%s", n, out)
	}
	if failures != 5 {
		t.Errorf("counted %d failures, want 5", failures)
	}
	if !strings.Contains(out, "log file is writable again") || !strings.Contains(out, "failedWrites=5") {
		t.Errorf("recovery not reported with the count:\n%s", out)
	}
	var msgs []string
	for _, r := range readJSONLines(t, path) {
		msgs = append(msgs, r["msg"].(string))
	}
	if strings.Join(msgs, ",") != "before,after" {
		t.Errorf("file records = %v, want before,after", msgs)
	}
}

// SetLimits takes effect without a new logger: the size from the next
// write, and a lower file count removes the rotated files past it.
func TestSetLimits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.jsonl")
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path, MaxBytes: 1000, MaxFiles: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	for i := range 100 {
		log.Info("record", "i", i, "pad", strings.Repeat("x", 50))
	}
	if _, err := os.Stat(path + ".4"); err != nil {
		t.Fatalf("no 4th rotated file before SetLimits: %v", err)
	}
	if !SetLimits(closer, 400, 1) {
		t.Fatal("SetLimits refused the file logger")
	}
	for _, gone := range []string{".2", ".3", ".4"} {
		if _, err := os.Stat(path + gone); !os.IsNotExist(err) {
			t.Errorf("%s still exists after maxFiles 1 (err %v)", gone, err)
		}
	}
	for i := range 50 {
		log.Info("record", "i", i, "pad", strings.Repeat("x", 50))
	}
	for _, name := range []string{path, path + ".1"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 400 {
			t.Errorf("%s is %d bytes after maxBytes 400", name, fi.Size())
		}
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Errorf(".2 came back with maxFiles 1 (err %v)", err)
	}
	_, nopC, _ := New(Options{Stderr: &testutil.SyncBuffer{}})
	if SetLimits(nopC, 1, 1) {
		t.Error("SetLimits on a logger without a file reported true")
	}
}
