package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "f.json")
	if err := WriteFileAtomic(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("content %q", b)
	}
	if m := mode(t, path); m != 0o640 {
		t.Errorf("file mode %v, want 0640", m)
	}
	if m := mode(t, filepath.Join(dir, "a")); m != 0o700 {
		t.Errorf("created dir mode %v, want 0700", m)
	}
	// Replace, and hold the old file open: the old inode keeps the old bytes
	// (a rename, not a rewrite in place).
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := WriteFileAtomic(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("content %q after replace", b)
	}
	buf := make([]byte, 10)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "one" {
		t.Errorf("old file handle reads %q: the file was rewritten in place", buf[:n])
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
}

func TestWriteFileAtomicFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory: rename must fail and leave no temp file.
	target := filepath.Join(dir, "t")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(target, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("WriteFileAtomic over a directory = %v, want an error naming it", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp file left behind: %v", ents)
	}
}

func TestEnsureToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "gateway.token")
	tok, created, err := EnsureToken(path)
	if err != nil || !created {
		t.Fatalf("EnsureToken(new) = %q, %v, %v", tok, created, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 bytes of base64url without padding (%v)", tok, err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("token file mode %v, want 0600", m)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("state dir mode %v, want 0700", m)
	}
	again, created, err := EnsureToken(path)
	if err != nil || created || again != tok {
		t.Errorf("EnsureToken(existing) = %q, %v, %v; want the same token, not created", again, created, err)
	}
	read, err := ReadToken(path)
	if err != nil || read != tok {
		t.Errorf("ReadToken = %q, %v; want %q", read, err, tok)
	}
	other, _, _ := EnsureToken(filepath.Join(t.TempDir(), "gateway.token"))
	if other == tok {
		t.Error("two new tokens are equal")
	}
}

func TestEnsureTokenExistingFiles(t *testing.T) {
	tests := []struct {
		name        string
		content     string
		perm        os.FileMode
		wantCreated bool
		wantToken   string
	}{
		{"kept and trimmed", "  operator-set-token \n", 0o600, false, "operator-set-token"},
		{"too open is tightened, token kept", "abc\n", 0o644, false, "abc"},
		{"group readable is tightened", "abc", 0o640, false, "abc"},
		{"read-only owner is fine", "abc", 0o400, false, "abc"},
		{"empty is regenerated", "", 0o600, true, ""},
		{"white space is regenerated", " \n ", 0o666, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.perm); err != nil {
				t.Fatal(err)
			}
			tok, created, err := EnsureToken(path)
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated || (tt.wantToken != "" && tok != tt.wantToken) || tok == "" {
				t.Errorf("EnsureToken = %q, created %v; want %q, created %v", tok, created, tt.wantToken, tt.wantCreated)
			}
			if m := mode(t, path); m&0o077 != 0 {
				t.Errorf("mode %v still open to group/others", m)
			}
			if got, _ := ReadToken(path); got != tok {
				t.Errorf("file holds %q, EnsureToken returned %q", got, tok)
			}
		})
	}
}

func TestEnsureTokenNotARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.token")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureToken(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("EnsureToken(directory) = %v, want 'not a regular file'", err)
	}
}

func TestEnsureTokenConcurrentCreatorsAgree(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "gateway.token")
		const n = 8
		toks := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], _, errs[i] = EnsureToken(path) })
		}
		wg.Wait()
		onDisk, err := ReadToken(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil || toks[i] != onDisk {
				t.Fatalf("round %d: creator %d got %q (%v), file holds %q", round, i, toks[i], errs[i], onDisk)
			}
		}
	}
}

func TestReadTokenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing"), "does not exist (start the gateway once"},
		{empty, "is empty"},
		{dir, "read gateway token"},
	}
	for _, tt := range tests {
		_, err := ReadToken(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), "GATEWAY_TOKEN") {
			t.Errorf("ReadToken(%s) = %v, want an error naming the file, %q and GATEWAY_TOKEN", tt.path, err, tt.want)
		}
	}
}
