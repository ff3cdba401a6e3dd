package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenBytes is the entropy of a generated token.
const tokenBytes = 32

// WriteFileAtomic replaces path with data so that readers see the old or the
// new contents, never a mix, and the new contents survive a crash: it writes
// a temporary file in the same directory with mode perm, fsyncs it, renames
// it over path and fsyncs the directory. Missing parent directories are
// created with mode 0700.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w (check that the directory is writable)", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a synced temporary file next to path and returns
// its name.
func writeTemp(path string, data []byte, perm os.FileMode) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write %s: create directory: %w (check the parent's permissions)", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w (check that the directory is writable)", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w (check free space and permissions in %s)", path, err, dir)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w (check free space in %s)", path, err, dir)
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// EnsureToken returns the gateway's shared token from tokenFile, creating
// the file when needed; created reports that a new token was generated.
//
// An existing token (surrounding white space trimmed) is kept. A file whose
// mode lets group or others in is tightened to 0600 and its token kept, so
// nothing is lost. An empty file gets a new token. A new token is 32 random
// bytes, base64url without padding, written with mode 0600 (parent
// directories 0700) crash-safely. When two processes race to create it, both
// end up with the token that is on disk.
func EnsureToken(tokenFile string) (token string, created bool, err error) {
	for range 3 { // a racing writer can at most make us re-read once or twice
		tok, err := readTokenFile(tokenFile)
		switch {
		case err == nil && tok != "":
			return tok, false, nil
		case err == nil: // empty file: replace it
			tok, err := newToken()
			if err != nil {
				return "", false, err
			}
			if err := WriteFileAtomic(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
				return "", false, fmt.Errorf("gateway token: %w", err)
			}
			return tok, true, nil
		case errors.Is(err, fs.ErrNotExist):
			tok, err := newToken()
			if err != nil {
				return "", false, err
			}
			switch err := createExclusive(tokenFile, []byte(tok+"\n"), 0o600); {
			case err == nil:
				return tok, true, nil
			case errors.Is(err, fs.ErrExist):
				continue // someone else created it first: use theirs
			default:
				return "", false, fmt.Errorf("gateway token: %w", err)
			}
		default:
			return "", false, err
		}
	}
	return "", false, fmt.Errorf("gateway token %s keeps changing while it is read (stop the other process writing it)", tokenFile)
}

// readTokenFile reads and trims the token, tightening a too-open mode.
func readTokenFile(tokenFile string) (string, error) {
	fi, err := os.Lstat(tokenFile)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("gateway token %s is not a regular file (remove it; the gateway writes a new token)", tokenFile)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(tokenFile, 0o600); err != nil {
			return "", fmt.Errorf("gateway token %s has mode %v, readable by others, and cannot be fixed: %w (chmod 600 it)", tokenFile, fi.Mode().Perm(), err)
		}
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("read gateway token %s: %w (run as the gateway's user, or with sudo for a system gateway)", tokenFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// createExclusive writes a new file crash-safely and fails with fs.ErrExist
// when path already exists: it links a synced temporary file into place.
func createExclusive(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// A file system without hard links: a rename is still atomic, only
		// no longer exclusive.
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w (check that the directory is writable)", path, err)
		}
	}
	return syncDir(filepath.Dir(path))
}

func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate gateway token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ReadToken returns the token in tokenFile, for gatewayctl. Unlike
// EnsureToken it never writes: a missing, unreadable or empty file is an
// error that names the file and the fix.
func ReadToken(tokenFile string) (string, error) {
	b, err := os.ReadFile(tokenFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("gateway token %s does not exist (start the gateway once to create it, pass --profile/--system for the right gateway, or set GATEWAY_TOKEN): %w", tokenFile, err)
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("gateway token %s is not readable by this user (run as the gateway's user or with sudo, or set GATEWAY_TOKEN): %w", tokenFile, err)
	case err != nil:
		return "", fmt.Errorf("read gateway token %s: %w (set GATEWAY_TOKEN to bypass the file)", tokenFile, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("gateway token %s is empty (restart the gateway to generate a new one, or set GATEWAY_TOKEN)", tokenFile)
	}
	return tok, nil
}
