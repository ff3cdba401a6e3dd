package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"
)

// Limits of Tail. Values <= 0 mean the default; larger ones are clamped.
const (
	DefaultTailLimit    = 200
	MaxTailLimit        = 5000
	DefaultTailMaxBytes = 250_000
	MaxTailMaxBytes     = 1_000_000
	defaultScanBytes    = 1 << 20
	scanChunk           = 64 << 10
)

// TailResult is the answer to logs.tail.
type TailResult struct {
	File      string   `json:"file"`                // the log file read
	Cursor    int64    `json:"cursor"`              // pass back to continue just after the last returned line
	Size      int64    `json:"size"`                // the file's size when read
	Lines     []string `json:"lines"`               // complete lines, without their newline; never nil
	Truncated bool     `json:"truncated,omitempty"` // lines were skipped: more was available than returned, or the window started mid-line
	Reset     bool     `json:"reset,omitempty"`     // the cursor was past the end (rotated or truncated file): read from the start
}

// Tail reads complete lines of the log file at path.
//
// With cursor nil it returns the last limit complete lines within the last
// maxBytes bytes. With a cursor it returns complete lines starting at that
// byte offset, at most limit lines and maxBytes bytes. The returned Cursor is
// the offset just past the last returned line; a trailing line that is still
// being written is left for the next call. A cursor beyond the end of the
// file (the file was rotated or truncated), or one that does not follow a
// newline (the file was replaced), sets Reset and reads from offset 0.
// A single line longer than maxBytes is returned cut to maxBytes, with
// Truncated set. A missing file gives no lines, Cursor 0 and Size 0.
// limit is clamped to 1..5000 and maxBytes to 1..1_000_000; values <= 0 mean
// 200 and 250000.
func Tail(path string, cursor *int64, limit int, maxBytes int) (TailResult, error) {
	limit = clamp(limit, DefaultTailLimit, MaxTailLimit)
	maxBytes = clamp(maxBytes, DefaultTailMaxBytes, MaxTailMaxBytes)
	res := TailResult{File: path, Lines: []string{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read log file %s: %w (run as the gateway's user, or with sudo for a system gateway)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("read log file %s: %w", path, err)
	}
	res.Size = fi.Size()
	if cursor == nil {
		err = tailEnd(f, &res, limit, maxBytes)
	} else {
		err = tailFrom(f, &res, *cursor, limit, maxBytes)
	}
	if err != nil {
		return TailResult{File: path, Lines: []string{}}, fmt.Errorf("read log file %s: %w", path, err)
	}
	return res, nil
}

func clamp(v, def, hi int) int {
	if v <= 0 {
		return def
	}
	return min(v, hi)
}

// readAt reads [off, off+n) of f, clipped to what is there.
func readAt(f *os.File, off int64, n int) ([]byte, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

// tailEnd fills res with the last lines of the file.
func tailEnd(f *os.File, res *TailResult, limit, maxBytes int) error {
	start := max(res.Size-int64(maxBytes), 0)
	from := start
	if start > 0 {
		from = start - 1 // one byte more to see whether the window starts a line
	}
	buf, err := readAt(f, from, int(res.Size-from))
	if err != nil {
		return err
	}
	if start > 0 {
		res.Truncated = true
		if buf[0] != '\n' { // mid-line: drop the partial first line
			i := bytes.IndexByte(buf[1:], '\n')
			if i < 0 {
				// One line longer than the window: nothing complete to show.
				res.Cursor = res.Size
				return nil
			}
			buf = buf[1+i:]
			from = from + 1 + int64(i)
		}
		buf, from = buf[1:], from+1
	}
	end := bytes.LastIndexByte(buf, '\n') + 1 // past the last complete line
	lines := splitLines(buf[:end])
	if len(lines) > limit {
		lines = lines[len(lines)-limit:]
		res.Truncated = true
	}
	res.Lines = lines
	res.Cursor = from + int64(end)
	return nil
}

// tailFrom fills res with lines from cursor on.
func tailFrom(f *os.File, res *TailResult, c int64, limit, maxBytes int) error {
	if c < 0 || c > res.Size {
		c, res.Reset = 0, true
	} else if c > 0 && c < res.Size {
		prev, err := readAt(f, c-1, 1)
		if err != nil {
			return err
		}
		if len(prev) == 1 && prev[0] != '\n' { // not a line start: another file now
			c, res.Reset = 0, true
		}
	}
	res.Cursor = c
	if c == res.Size {
		return nil
	}
	n := int(min(int64(maxBytes), res.Size-c))
	buf, err := readAt(f, c, n)
	if err != nil {
		return err
	}
	windowToEOF := c+int64(len(buf)) >= res.Size

	end, count := 0, 0
	for count < limit {
		i := bytes.IndexByte(buf[end:], '\n')
		if i < 0 {
			break
		}
		end += i + 1
		count++
	}
	if count == 0 && !windowToEOF {
		// A line longer than maxBytes: return its head, skip to its end.
		lineEnd, err := findNewline(f, c+int64(len(buf)), res.Size)
		if err != nil {
			return err
		}
		if lineEnd >= 0 {
			res.Lines = []string{validPrefix(buf)}
			res.Cursor = lineEnd + 1
			res.Truncated = true
		}
		return nil
	}
	res.Lines = splitLines(buf[:end])
	res.Cursor = c + int64(end)
	// More complete lines than returned: beyond the window, or inside it
	// after the limit.
	res.Truncated = !windowToEOF || bytes.IndexByte(buf[end:], '\n') >= 0
	return nil
}

// findNewline returns the offset of the first newline in [off, size), or -1.
func findNewline(f *os.File, off, size int64) (int64, error) {
	for off < size {
		buf, err := readAt(f, off, int(min(scanChunk, size-off)))
		if err != nil {
			return -1, err
		}
		if len(buf) == 0 {
			break
		}
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return off + int64(i), nil
		}
		off += int64(len(buf))
	}
	return -1, nil
}

// validPrefix returns b as a string without a UTF-8 sequence cut at its end.
func validPrefix(b []byte) string {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// splitLines splits newline-terminated data into lines without their
// newline (and without a \r before it).
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return []string{}
	}
	parts := strings.Split(string(b[:len(b)-1]), "\n")
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(p, "\r")
	}
	return parts
}

// LastError returns the newest line with level ERROR (or above) in the last
// maxScanBytes bytes of the JSON-lines log at path (<= 0: 1 MiB), as written,
// for `gatewayctl status`. It reports false when there is none or the file
// cannot be read.
func LastError(path string, maxScanBytes int) (string, bool) {
	if maxScanBytes <= 0 {
		maxScanBytes = defaultScanBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", false
	}
	start := max(fi.Size()-int64(maxScanBytes), 0)
	buf, err := readAt(f, start, int(fi.Size()-start))
	if err != nil {
		return "", false
	}
	if start > 0 { // the first line may be cut: drop it
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return "", false
		}
		buf = buf[i+1:]
	}
	buf = buf[:bytes.LastIndexByte(buf, '\n')+1] // complete lines only
	lines := splitLines(buf)
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		if !strings.Contains(line, `"ERROR`) {
			continue
		}
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Level, "ERROR") {
			return line, true
		}
	}
	return "", false
}
