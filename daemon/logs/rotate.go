package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// rotator is the JSON-lines file: an io.Writer that rotates by size and
// survives write errors. slog's JSON handler calls Write once per record.
type rotator struct {
	path     string
	maxBytes int64
	maxFiles int
	errLog   *slog.Logger // stderr only: where failures are reported

	mu       sync.Mutex
	f        *os.File // nil after a failure, reopened by the next Write
	regular  bool     // rotate and fix modes only for regular files
	size     int64
	closed   bool
	partial  bool  // the last write stopped mid-line: start the next on a new line
	failures int64 // failed writes since the last report
	failing  bool  // a failure has been reported and not yet recovered from
}

// open opens (or creates) the file for appending. Called with mu held or
// before the rotator is shared.
func (r *rotator) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return fmt.Errorf("create log directory %s: %w", filepath.Dir(r.path), err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log file %s: %w", r.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log file %s: %w", r.path, err)
	}
	r.regular = fi.Mode().IsRegular()
	r.size = 0
	if r.regular {
		r.size = fi.Size()
		if fi.Mode().Perm()&0o077 != 0 {
			_ = f.Chmod(0o600) // best effort: an old file may be shared on purpose by its owner
		}
	}
	r.f = f
	return nil
}

// Write appends one record. It reports success to the handler even when the
// file fails, so that the failure is handled here once instead of per
// caller: counted, reported once on stderr, retried on the next record.
func (r *rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return len(p), nil
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			r.fail(err)
			return len(p), nil
		}
	}
	if r.regular && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			r.fail(err)
			if r.f == nil {
				return len(p), nil
			}
			// Keep appending to the unrotated file rather than lose records.
		}
	}
	if r.partial {
		if n, err := r.f.Write([]byte{'\n'}); err != nil {
			r.size += int64(n)
			r.fail(err)
			r.closeFile()
			return len(p), nil
		}
		r.size++
		r.partial = false
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err != nil {
		r.partial = n > 0
		r.fail(err)
		r.closeFile()
		return len(p), nil
	}
	if r.failing {
		r.errLog.Warn("log file is writable again", "path", r.path, "failedWrites", r.failures)
		r.failing = false
		r.failures = 0
	}
	return len(p), nil
}

// fail counts a failure and reports the first of a series on stderr.
func (r *rotator) fail(err error) {
	r.failures++
	if !r.failing {
		r.failing = true
		r.errLog.Error("cannot write log file; logging continues on stderr, further failures are counted and the file is retried with every record (check free space and permissions)", "path", r.path, "err", err)
	}
}

func (r *rotator) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// rotate shifts path.N-1 → path.N … path → path.1 and opens a new path.
// path.N is replaced, so at most maxFiles rotated files remain.
func (r *rotator) rotate() error {
	r.closeFile()
	var firstErr error
	for i := r.maxFiles; i >= 1; i-- {
		src := r.path
		if i > 1 {
			src = r.path + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(src, r.path+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
			firstErr = fmt.Errorf("rotate log file %s: %w", r.path, err)
		}
	}
	if err := r.open(); err != nil {
		return err
	}
	return firstErr
}

// Close closes the file; later records go to stderr only.
func (r *rotator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	if err != nil {
		return fmt.Errorf("close log file %s: %w", r.path, err)
	}
	return nil
}

// SetLimits changes the rotation limits (logging.maxFileBytes and
// logging.maxFiles; <= 0 means the default) of the file behind c, a Closer
// returned by New. The next write rotates by the new size; when maxFiles
// shrinks, the rotated files past it are removed now. It reports false when
// c is not a log file (New without FilePath).
func SetLimits(c io.Closer, maxBytes int64, maxFiles int) bool {
	r, ok := c.(*rotator)
	if !ok {
		return false
	}
	maxBytes, maxFiles = rotation(maxBytes, maxFiles)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.maxFiles
	r.maxBytes, r.maxFiles = maxBytes, maxFiles
	for i := maxFiles + 1; i <= old; i++ {
		if err := os.Remove(r.path + "." + strconv.Itoa(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.errLog.Warn("cannot remove a rotated log file past logging.maxFiles (remove it by hand)", "path", r.path+"."+strconv.Itoa(i), "err", err)
		}
	}
	return true
}

// rotation returns the rotation limits with values <= 0 replaced by the
// logging section's defaults.
func rotation(maxBytes int64, maxFiles int) (int64, int) {
	if maxBytes <= 0 {
		maxBytes = config.DefaultMaxFileBytes
	}
	if maxFiles <= 0 {
		maxFiles = config.DefaultMaxFiles
	}
	return maxBytes, maxFiles
}
