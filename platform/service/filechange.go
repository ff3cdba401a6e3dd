package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/gatewayd/gatewayd/daemon/config"
)

// FileChange is one file `doctor --fix` replaced, created or removed (or,
// with --dry-run, would): where the old contents were saved, and what
// changes as a unified diff.
type FileChange struct {
	// Path is the file.
	Path string `json:"path"`
	// Action is "create", "rewrite" or "remove".
	Action string `json:"action"`
	// Backup is where the previous contents were saved ("" when the file
	// did not exist, and with --dry-run).
	Backup string `json:"backup,omitempty"`
	// Diff is the unified diff from the current contents to the new ones.
	Diff string `json:"diff,omitempty"`
}

// BackupDirName is the directory, next to the scope's unit directory
// (/etc/systemd/gatewayctl-backup, ~/.config/systemd/gatewayctl-backup),
// where doctor --fix keeps the files it replaces. It is outside every unit
// search path, so the manager never loads a backup.
const BackupDirName = "gatewayctl-backup"

// planChange describes replacing path with data (remove: deleting it) as
// a FileChange with its unified diff; ok is false when nothing changes.
func planChange(path string, data []byte, remove bool) (FileChange, bool) {
	cur, err := os.ReadFile(path)
	exists := err == nil
	c := FileChange{Path: path, Action: "rewrite"}
	switch {
	case remove && !exists:
		return c, false
	case remove:
		c.Action, data = "remove", nil
	case !exists:
		c.Action = "create"
	case string(cur) == string(data):
		return c, false
	}
	oldLabel, newLabel := path, path
	if !exists {
		oldLabel = "/dev/null"
	}
	if remove {
		newLabel = "/dev/null"
	}
	c.Diff = udiff.Unified(oldLabel, newLabel, string(cur), string(data))
	return c, true
}

// backupFile copies path's contents into dir as NAME.YYYYmmddTHHMMSSZ
// (with a counter when that name is taken), atomically and with path's
// permissions, and returns the copy's path. A missing path needs no
// backup: "" and no error.
func backupFile(dir, path string, now time.Time) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create backup directory %s: %w (run as the right user, or with sudo for --scope system)", dir, err)
	}
	base := filepath.Join(dir, filepath.Base(path)+"."+now.UTC().Format("20060102T150405Z"))
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", fmt.Errorf("back up %s: too many backups named %s.N in %s (remove old ones)", path, filepath.Base(base), dir)
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := config.WriteFileAtomic(dst, data, perm); err != nil {
		return "", fmt.Errorf("back up %s to %s: %w", path, dst, err)
	}
	return dst, nil
}

// replaceFiles carries out a plan's file repairs: each file that changes is
// first copied to backupDir, then write writes or removes it. The returned
// changes say where each old file was saved, also when a later one fails.
func replaceFiles(files []fileRepair, backupDir string, write func(fileRepair, FileChange) error) (changes []FileChange, err error) {
	now := time.Now()
	for _, f := range files {
		c, ok := planChange(f.path, f.data, f.remove)
		if !ok {
			continue
		}
		c.Diff = ""
		if c.Backup, err = backupFile(backupDir, f.path, now); err != nil {
			return changes, fmt.Errorf("%w; nothing was changed in %s", err, f.path)
		}
		if err := write(f, c); err != nil {
			return changes, err
		}
		changes = append(changes, c)
	}
	return changes, nil
}
