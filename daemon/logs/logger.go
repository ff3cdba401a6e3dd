package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sync"
)

// Options configures New.
type Options struct {
	Level    *slog.LevelVar // shared so reload can change it; nil: a new LevelVar at info
	Stderr   io.Writer      // human text lines; nil: os.Stderr
	Journal  bool           // prefix each stderr line with "<N>" syslog priority (debug 7, info 6, warn 4, error 3) and omit the timestamp
	FilePath string         // JSON-lines file ("" = none); parent dirs created 0700, file 0600
	MaxBytes int64          // rotate when a write would pass this; <= 0: config.DefaultMaxFileBytes
	MaxFiles int            // rotated files kept: FilePath.1 … .N; <= 0: config.DefaultMaxFiles
}

// New returns one logger writing to stderr (text) and, when opts.FilePath is
// set, to the JSON-lines file, and a Closer that closes the file (records
// logged after Close go to stderr only). The logger is safe for concurrent
// use. New fails only when the file cannot be opened at all (its directory
// cannot be created, or permission is denied); a caller that wants to run
// anyway can retry with FilePath "". Write errors later on are counted and
// reported once on stderr, never returned and never blocking stderr.
func New(opts Options) (*slog.Logger, io.Closer, error) {
	level := opts.Level
	if level == nil {
		level = new(slog.LevelVar)
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	sink := &stderrSink{w: stderr, journal: opts.Journal}
	textOpts := &slog.HandlerOptions{Level: level}
	if opts.Journal {
		textOpts.ReplaceAttr = dropTime
	}
	errH := &stderrHandler{inner: slog.NewTextHandler(sink, textOpts), sink: sink}
	if opts.FilePath == "" {
		return slog.New(errH), nopCloser{}, nil
	}
	rot := &rotator{path: opts.FilePath, errLog: slog.New(errH)}
	rot.maxBytes, rot.maxFiles = rotation(opts.MaxBytes, opts.MaxFiles)
	if err := rot.open(); err != nil {
		return nil, nil, fmt.Errorf("open log file: %w (fix the directory's permissions, or run without a log file)", err)
	}
	fileH := slog.NewJSONHandler(rot, &slog.HandlerOptions{Level: level})
	return slog.New(fanout{errH, fileH}), rot, nil
}

// journalStream is the form systemd gives $JOURNAL_STREAM: "DEVICE:INODE".
var journalStream = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// JournalEnabled reports whether stderr goes to the systemd journal, i.e.
// $JOURNAL_STREAM is set (to systemd's "device:inode" form). Pass os.Getenv.
func JournalEnabled(getenv func(string) string) bool {
	return journalStream.MatchString(getenv("JOURNAL_STREAM"))
}

// Priority returns the syslog priority journald should record for a slog
// level: debug 7, info 6, warn 4, error 3. A level between two named ones
// gets the priority of the named level below it (info+2 is 6).
func Priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7
	case l < slog.LevelWarn:
		return 6
	case l < slog.LevelError:
		return 4
	}
	return 3
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// stderrSink serialises stderr lines and adds the journald prefix. The
// handler sets prio under mu before the text handler writes the line.
type stderrSink struct {
	mu      sync.Mutex
	w       io.Writer
	journal bool
	prio    int
	buf     []byte
}

// Write is called by the text handler, once per record, with mu held.
func (s *stderrSink) Write(p []byte) (int, error) {
	if !s.journal {
		return s.w.Write(p)
	}
	s.buf = append(s.buf[:0], '<', byte('0'+s.prio), '>')
	s.buf = append(s.buf, p...)
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stderrHandler wraps the text handler so that the sink knows each record's
// priority; all handlers derived with WithAttrs/WithGroup share the sink.
type stderrHandler struct {
	inner slog.Handler
	sink  *stderrSink
}

func (h *stderrHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *stderrHandler) Handle(ctx context.Context, r slog.Record) error {
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	h.sink.prio = Priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *stderrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &stderrHandler{inner: h.inner.WithAttrs(as), sink: h.sink}
}

func (h *stderrHandler) WithGroup(name string) slog.Handler {
	return &stderrHandler{inner: h.inner.WithGroup(name), sink: h.sink}
}

// fanout sends each record to every handler that wants it, stderr first, so
// a slow or failing file never holds back the stderr line. (slog.MultiHandler
// does this from Go 1.26; the module targets Go 1.25.)
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
