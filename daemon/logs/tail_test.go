package logs

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/testutil"
)

func ptr(v int64) *int64 { return &v }

func writeLog(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTailMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.jsonl")
	for _, c := range []*int64{nil, ptr(0), ptr(100)} {
		res, err := Tail(path, c, 10, 100)
		if err != nil || res.File != path || res.Cursor != 0 || res.Size != 0 || res.Lines == nil || len(res.Lines) != 0 || res.Reset || res.Truncated {
			t.Errorf("Tail(missing, %v) = %+v, %v", c, res, err)
		}
		b, _ := json.Marshal(res)
		if !strings.Contains(string(b), `"lines":[]`) {
			t.Errorf("missing file marshals as %s, want lines:[]", b)
		}
	}
}

func TestTail(t *testing.T) {
	// Offsets: "a\n"=0..1, "bb\n"=2..4, "ccc\n"=5..8, "dddd\n"=9..13, "ee" partial 14..15; size 16.
	const content = "a\nbb\nccc\ndddd\nee"
	tests := []struct {
		name      string
		content   string
		cursor    *int64
		limit     int
		maxBytes  int
		lines     []string
		next      int64
		truncated bool
		reset     bool
	}{
		{"end: all complete lines, partial left", content, nil, 10, 100, []string{"a", "bb", "ccc", "dddd"}, 14, false, false},
		{"end: limit", content, nil, 2, 100, []string{"ccc", "dddd"}, 14, true, false},
		{"end: window starts mid-line", content, nil, 10, 9, []string{"dddd"}, 14, true, false}, // window 7..15 starts inside "ccc"
		{"end: window starts at a line", content, nil, 10, 11, []string{"ccc", "dddd"}, 14, true, false},
		{"end: window holds only the partial line", content, nil, 10, 2, []string{}, 14, true, false},
		{"end: window inside the partial line", content, nil, 10, 1, []string{}, 16, true, false},
		{"end: whole file exactly", "a\nbb\n", nil, 10, 5, []string{"a", "bb"}, 5, false, false},
		{"end: only a partial line", "abc", nil, 10, 100, []string{}, 0, false, false},
		{"end: empty file", "", nil, 10, 100, []string{}, 0, false, false},
		{"end: CRLF", "a\r\nb\r\n", nil, 10, 100, []string{"a", "b"}, 6, false, false},
		{"cursor 0", content, ptr(0), 10, 100, []string{"a", "bb", "ccc", "dddd"}, 14, false, false},
		{"cursor mid-file", content, ptr(5), 10, 100, []string{"ccc", "dddd"}, 14, false, false},
		{"cursor at partial line", content, ptr(14), 10, 100, []string{}, 14, false, false},
		{"cursor at end", content, ptr(16), 10, 100, []string{}, 16, false, false},
		{"cursor limit", content, ptr(0), 2, 100, []string{"a", "bb"}, 5, true, false},
		{"cursor maxBytes cuts a line", content, ptr(0), 10, 7, []string{"a", "bb"}, 5, true, false},
		{"cursor maxBytes on a line end", content, ptr(0), 10, 5, []string{"a", "bb"}, 5, true, false},
		{"cursor past end resets", content, ptr(17), 10, 100, []string{"a", "bb", "ccc", "dddd"}, 14, false, true},
		{"negative cursor resets", content, ptr(-1), 10, 100, []string{"a", "bb", "ccc", "dddd"}, 14, false, true},
		{"cursor inside a line resets", content, ptr(3), 10, 100, []string{"a", "bb", "ccc", "dddd"}, 14, false, true},
		{"line longer than maxBytes", "0123456789\nx\n", ptr(0), 10, 4, []string{"0123"}, 11, true, false},
		{"long line cut on a rune", "ééé\nx\n", ptr(0), 10, 3, []string{"é"}, 7, true, false},
		{"long partial line waits", "0123456789", ptr(0), 10, 4, []string{}, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeLog(t, tt.content)
			res, err := Tail(path, tt.cursor, tt.limit, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Lines, tt.lines) || res.Cursor != tt.next || res.Truncated != tt.truncated || res.Reset != tt.reset || res.Size != int64(len(tt.content)) {
				t.Errorf("Tail(cursor %v, limit %d, maxBytes %d) =\n lines %q cursor %d truncated %v reset %v size %d\nwant\n lines %q cursor %d truncated %v reset %v size %d",
					deref(tt.cursor), tt.limit, tt.maxBytes, res.Lines, res.Cursor, res.Truncated, res.Reset, res.Size,
					tt.lines, tt.next, tt.truncated, tt.reset, len(tt.content))
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return "nil"
	}
	return *p
}

func TestTailPartialLineCompletes(t *testing.T) {
	path := writeLog(t, "one\ntw")
	res, err := Tail(path, nil, 10, 100)
	if err != nil || !slices.Equal(res.Lines, []string{"one"}) || res.Cursor != 4 {
		t.Fatalf("first tail = %+v, %v", res, err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("o\nthree\n")
	f.Close()
	res, err = Tail(path, &res.Cursor, 10, 100)
	if err != nil || !slices.Equal(res.Lines, []string{"two", "three"}) || res.Cursor != 14 || res.Reset {
		t.Fatalf("second tail = %+v, %v; want the completed line and the next", res, err)
	}
}

func TestTailClampsLimits(t *testing.T) {
	var b strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&b, "%d\n", i)
	}
	path := writeLog(t, b.String())
	tests := []struct {
		limit, maxBytes int
		wantLines       int
	}{
		{0, 0, 200},       // defaults
		{-5, -5, 200},     // defaults
		{100000, 0, 5000}, // limit clamped to 5000
		{1, 0, 1},         // minimum limit
		{6000, 2_000_000, 5000},
	}
	for _, tt := range tests {
		res, err := Tail(path, nil, tt.limit, tt.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Lines) != tt.wantLines || res.Lines[len(res.Lines)-1] != "5999" || !res.Truncated {
			if len(res.Lines) == 0 {
				t.Fatalf("Tail(limit %d, maxBytes %d): no lines", tt.limit, tt.maxBytes)
			}
			t.Errorf("Tail(limit %d, maxBytes %d): %d lines ending %q truncated %v, want %d ending 5999, truncated",
				tt.limit, tt.maxBytes, len(res.Lines), res.Lines[len(res.Lines)-1], res.Truncated, tt.wantLines)
		}
	}
	// maxBytes is clamped to 1,000,000: a 1.2 MB file is not read whole.
	big := writeLog(t, strings.Repeat(strings.Repeat("x", 99)+"\n", 12000))
	res, err := Tail(big, ptr(0), 5000, 5_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cursor > 1_000_000 || len(res.Lines) != 5000 {
		t.Errorf("big file: cursor %d, %d lines; want at most 1e6 bytes and 5000 lines", res.Cursor, len(res.Lines))
	}
	res, _ = Tail(big, ptr(0), 5000, 1_000_000)
	if res.Cursor != 500_000 || !res.Truncated {
		t.Errorf("limit 5000 of 100-byte lines: cursor %d truncated %v, want 500000 true", res.Cursor, res.Truncated)
	}
}

// TestTailFollowsConcurrentWriter follows a live log by cursor, as
// `gatewayctl logs --follow` does, while writers append: every record must
// arrive exactly once, whole, in file order.
func TestTailFollowsConcurrentWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	const writers, each = 4, 500
	done := make(chan struct{})
	go func() {
		defer close(done)
		finished := make(chan struct{}, writers)
		for w := range writers {
			go func() {
				for i := range each {
					log.Info("follow", "w", w, "i", i, "pad", strings.Repeat("p", i%97))
				}
				finished <- struct{}{}
			}()
		}
		for range writers {
			<-finished
		}
	}()

	var cursor int64
	got := map[string]bool{}
	last := map[float64]float64{}
	deadline := time.Now().Add(30 * time.Second)
	writing := true
	for polls := 0; polls < 100000; polls++ {
		if time.Now().After(deadline) {
			t.Fatalf("follow: %d of %d records after 30s", len(got), writers*each)
		}
		if writing {
			select {
			case <-done:
				writing = false // one more poll picks up the rest
			default:
			}
		}
		res, err := Tail(path, &cursor, 50, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if res.Reset {
			t.Fatalf("unexpected reset at cursor %d size %d", cursor, res.Size)
		}
		for _, line := range res.Lines {
			var r struct {
				Msg  string
				W, I float64
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("torn line %q: %v", line, err)
			}
			key := fmt.Sprint(r.W, "/", r.I)
			if got[key] {
				t.Fatalf("record %s seen twice", key)
			}
			if prev, ok := last[r.W]; ok && r.I != prev+1 {
				t.Fatalf("writer %v: record %v after %v", r.W, r.I, prev)
			}
			last[r.W] = r.I
			got[key] = true
		}
		cursor = res.Cursor
		if !writing && len(res.Lines) == 0 {
			break
		}
	}
	if len(got) != writers*each {
		t.Errorf("followed %d records, want %d", len(got), writers*each)
	}
}

func TestTailAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path, MaxBytes: 2000, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	for i := range 10 {
		log.Info("before", "i", i)
	}
	res, err := Tail(path, nil, 1000, 0)
	if err != nil || len(res.Lines) != 10 {
		t.Fatalf("tail = %d lines, %v", len(res.Lines), err)
	}
	cursor := res.Cursor
	for i := 0; ; i++ { // log until the file rotates and is smaller than the cursor
		if i > 1000 {
			t.Fatal("no rotation after 1000 records")
		}
		log.Info("after", "i", i)
		if fi, err := os.Stat(path + ".1"); err == nil && fi.Size() > 0 {
			if cur, _ := os.Stat(path); cur.Size() < cursor {
				break
			}
		}
	}
	res, err = Tail(path, &cursor, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reset || len(res.Lines) == 0 || !strings.Contains(res.Lines[0], `"msg":"after"`) {
		t.Errorf("after rotation: reset %v, %d lines, first %q; want a reset and the new file's lines", res.Reset, len(res.Lines), res.Lines)
	}
}

func TestLastError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.jsonl")
	if _, ok := LastError(path, 0); ok {
		t.Error("LastError(missing) found something")
	}
	log, closer, err := New(Options{Stderr: &testutil.SyncBuffer{}, FilePath: path})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("fine")
	if _, ok := LastError(path, 0); ok {
		t.Error("LastError found an error in a log without one")
	}
	log.Error("first failure", "n", 1)
	log.Log(t.Context(), slog.LevelError+4, "worse failure", "n", 2)
	log.Info("mentions \"ERROR in a message", "level2", "ERROR")
	log.Warn("warned")
	closer.Close()
	line, ok := LastError(path, 0)
	if !ok || !strings.Contains(line, `"msg":"worse failure"`) || !strings.Contains(line, `"level":"ERROR+4"`) {
		t.Errorf("LastError = %q, %v; want the ERROR+4 record", line, ok)
	}
	// With a small scan window, only the tail is searched.
	fi, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	tailLen := len(data) - strings.LastIndex(string(data), `{"time"`) // the last line
	if _, ok := LastError(path, tailLen); ok {
		t.Errorf("LastError with a %d-byte window over a %d-byte file found an error in the WARN line", tailLen, fi.Size())
	}
}
