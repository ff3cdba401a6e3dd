// Package configwatch watches the gateway's config file for hot reload
// (gateway.reload.mode): it reports when the file may have changed, also
// when its directory does not exist yet, and leaves re-loading and
// comparing to the caller. It is apart from daemon/config so that the
// config's readers (gatewayctl among them) do not link the file watcher.
package configwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange after the file at path may have changed: written,
// created, replaced by a rename (how most editors save), or removed. Events
// within debounce of each other are coalesced into one call (debounce <= 0
// calls at once). onChange runs on Watch's goroutine; the caller re-Loads and
// compares Loaded.Hash, so an occasional call without a real change is
// harmless.
//
// Watch watches the file's parent directory, not the file, so that
// replacing the file does not lose the watch. When the directory does not
// exist, Watch creates nothing: it watches the nearest existing ancestor and
// moves down to the directory once it is created (and back up if it is
// removed), so a config written later into a new directory is still seen.
//
// Watch returns nil when ctx is done, and an error when the watch cannot be
// set up (for example the inotify instance limit is reached) or the watcher
// fails.
func Watch(ctx context.Context, path string, debounce time.Duration, log *slog.Logger, onChange func()) error {
	w, err := New(path, log)
	if err != nil {
		return err
	}
	return w.Run(ctx, debounce, onChange)
}

// A Watcher is a watch that is already in place: New arms it, so an edit
// made after New returns is reported by Run. Callers that switch watching
// on at a moment that matters (a reload turning gateway.reload.mode from
// off to hot) use New before they return and Run on a goroutine.
type Watcher struct {
	s   watchState
	abs string
	log *slog.Logger
}

// New sets up the watch on path's directory (or its nearest existing
// ancestor) and returns it armed. Run reports the changes; a Watcher that
// is never Run must be closed with Close.
func New(path string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w (pass an absolute path)", path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w (raise fs.inotify.max_user_instances, or set gateway.reload.mode to off)", abs, err)
	}
	w := &Watcher{s: watchState{fw: fw, dir: filepath.Dir(abs), file: abs, log: log}, abs: abs, log: log}
	if _, err := w.s.rearm(); err != nil {
		fw.Close()
		return nil, err
	}
	return w, nil
}

// Close releases the watch. Run closes it itself when it returns.
func (w *Watcher) Close() error { return w.s.fw.Close() }

// Run calls onChange as Watch describes until ctx is done (nil) or the
// watch fails (an error), and then closes the Watcher.
func (w *Watcher) Run(ctx context.Context, debounce time.Duration, onChange func()) error {
	defer w.Close()
	s, fw, abs, log := &w.s, w.s.fw, w.abs, w.log

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	pending := false
	fire := func() {
		if debounce <= 0 {
			onChange()
			return
		}
		pending = true
		timer.Reset(debounce)
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			if pending {
				pending = false
				onChange()
			}
		case ev, ok := <-fw.Events:
			if !ok {
				return fmt.Errorf("watch config %s: the watcher stopped (restart the gateway to watch again)", abs)
			}
			log.Debug("config watch event", "path", ev.Name, "op", ev.Op.String(), "watching", s.watched)
			if ev.Name == s.file {
				if ev.Op != fsnotify.Chmod {
					log.Debug("config file event", "path", ev.Name, "op", ev.Op.String())
					fire()
				}
				continue
			}
			if ev.Name == s.watched && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				s.watched = "" // the kernel dropped this watch with the directory
			}
			if s.watched != s.dir {
				// Something happened on the way to (or to) the directory:
				// follow it down or back up.
				moved, err := s.rearm()
				if err != nil {
					return err
				}
				if moved && s.watched == s.dir {
					fire() // the file may have appeared with the directory
				}
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return fmt.Errorf("watch config %s: the watcher stopped (restart the gateway to watch again)", abs)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				log.Warn("config watch overflowed; checking the file", "path", abs)
				fire()
				continue
			}
			log.Warn("config watch error", "path", abs, "err", err)
		}
	}
}

type watchState struct {
	fw      *fsnotify.Watcher
	dir     string // the config file's directory
	file    string // the config file
	watched string // the directory currently watched: dir or an ancestor
	log     *slog.Logger
}

// rearm watches the nearest existing ancestor of dir (dir itself when it
// exists) and reports whether the watched directory changed. After adding a
// watch it looks again: a deeper directory created before the watch was in
// place sends no event, so it must be found by looking.
func (s *watchState) rearm() (bool, error) {
	var lastErr error
	moved := false
	for range 16 { // the tree may change under us; bounded retries, then give up
		target := nearestDir(s.dir)
		if target == s.watched {
			if moved {
				if target != s.dir {
					s.log.Info("config directory does not exist; watching its nearest ancestor", "dir", s.dir, "watching", target)
				} else {
					s.log.Info("watching config directory", "dir", s.dir)
				}
			}
			return moved, nil
		}
		if err := s.fw.Add(target); err != nil {
			lastErr = err
			continue
		}
		if s.watched != "" {
			_ = s.fw.Remove(s.watched) // fails when the old directory is gone; nothing to undo then
		}
		s.watched = target
		moved = true
	}
	if lastErr == nil {
		lastErr = errors.New("the directory tree keeps changing")
	}
	return false, fmt.Errorf("watch config %s: cannot watch %s or an ancestor: %w (check the directory's permissions, or set gateway.reload.mode to off)", s.file, s.dir, lastErr)
}

// nearestDir returns dir or its nearest ancestor that is an existing
// directory.
func nearestDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}
