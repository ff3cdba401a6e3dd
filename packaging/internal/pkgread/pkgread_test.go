package pkgread

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCksumKnownValues(t *testing.T) {
	// Values printed by GNU coreutils cksum(1).
	cases := []struct {
		in   string
		want uint32
	}{
		{"", 4294967295},
		{"123456789", 930766865},
	}
	for _, c := range cases {
		if got := Cksum([]byte(c.in)); got != c.want {
			t.Errorf("Cksum(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestReadCpioFromBsdtar reads an odc archive written by libarchive, a
// writer independent of ours.
func TestReadCpioFromBsdtar(t *testing.T) {
	bsdtar, err := exec.LookPath("bsdtar")
	if err != nil {
		t.Skip("SKIPPING: bsdtar not found; apt-get install libarchive-tools (CI installs it)")
	}
	dir := t.TempDir()
	files := map[string]string{"a.txt": "hello\n", "sub/b.bin": strings.Repeat("xyz", 1000), "sub/empty": ""}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bsdtar, "--format", "odc", "-cf", "-", "-C", dir, ".").Output()
	if err != nil {
		t.Fatalf("bsdtar --format odc: %v", err)
	}
	entries, err := ReadCpio(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("ReadCpio: %v", err)
	}
	got := map[string]CpioEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	for name, content := range files {
		e, ok := got["./"+name]
		if !ok {
			t.Errorf("entry ./%s missing; have %d entries", name, len(entries))
			continue
		}
		if string(e.Data) != content || e.Mode != 0o100640 {
			t.Errorf("./%s: mode %o, %d bytes; want 100640, %d bytes", name, e.Mode, len(e.Data), len(content))
		}
	}
	if e := got["./sub"]; e.Mode&0o170000 != 0o040000 {
		t.Errorf("./sub mode %o, want a directory", e.Mode)
	}
	// Truncation is reported, not silently accepted.
	cut := bytes.Index(out, []byte("TRAILER!!!")) - 20
	if _, err := ReadCpio(bytes.NewReader(out[:cut])); err == nil {
		t.Error("ReadCpio accepted a truncated archive")
	}
}

// bomBytes hand-assembles a one-leaf BOM with the given records, following
// the layout in docs/packaging.md, to pin the reader's interpretation.
func bomBytes(t *testing.T, names []string, parents []uint32, fwdOverride uint32) []byte {
	t.Helper()
	var blocks [][]byte
	add := func(b []byte) uint32 { blocks = append(blocks, b); return uint32(len(blocks)) }
	be32 := func(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
	var leaf []byte
	leaf = binary.BigEndian.AppendUint16(leaf, 1)
	leaf = binary.BigEndian.AppendUint16(leaf, uint16(len(names)))
	leaf = be32(leaf, fwdOverride)
	leaf = be32(leaf, 0)
	for i, n := range names {
		rec := []byte{2, 1, 0, 3, 0, 0} // dir, 1, architecture 3, mode below
		binary.BigEndian.PutUint16(rec[4:], 0o40755)
		rec = be32(rec, 0)
		rec = be32(rec, 0)
		rec = be32(rec, 1000)
		rec = be32(rec, 0)
		rec = append(rec, 1)
		rec = be32(rec, 0)
		rec = be32(rec, 0)
		recID := add(rec)
		pi := be32(be32(nil, uint32(i+1)), recID)
		f := append(be32(nil, parents[i]), append([]byte(n), 0)...)
		leaf = be32(leaf, add(pi))
		leaf = be32(leaf, add(f))
	}
	leafID := add(leaf)
	tree := append([]byte("tree"), be32(be32(be32(be32(nil, 1), leafID), 4096), uint32(len(names)))...)
	tree = append(tree, 0)
	treeID := add(tree)

	vars := be32(nil, 1)
	vars = be32(vars, treeID)
	vars = append(vars, 5)
	vars = append(vars, "Paths"...)
	data := make([]byte, 512)
	data = append(data, vars...)
	table := be32(nil, uint32(len(blocks)+1))
	table = be32(be32(table, 0), 0)
	for _, b := range blocks {
		table = be32(table, uint32(len(data)))
		table = be32(table, uint32(len(b)))
		data = append(data, b...)
	}
	indexOff := len(data)
	data = append(data, table...)
	copy(data, "BOMStore")
	binary.BigEndian.PutUint32(data[8:], 1)
	binary.BigEndian.PutUint32(data[12:], uint32(len(blocks)))
	binary.BigEndian.PutUint32(data[16:], uint32(indexOff))
	binary.BigEndian.PutUint32(data[20:], uint32(len(table)))
	binary.BigEndian.PutUint32(data[24:], 512)
	binary.BigEndian.PutUint32(data[28:], uint32(len(vars)))
	return data
}

func TestReadBOM(t *testing.T) {
	good := bomBytes(t, []string{".", "Library", "usr", "bin"}, []uint32{0, 1, 1, 3}, 0)
	b, err := ReadBOM(good)
	if err != nil {
		t.Fatalf("ReadBOM: %v", err)
	}
	var paths []string
	for _, p := range b.Paths {
		paths = append(paths, p.Path)
		if p.Mode != 0o40755 || p.MTime != 1000 || p.Type != 2 || p.Arch != 3 {
			t.Errorf("%s: mode %o mtime %d type %d arch %d", p.Path, p.Mode, p.MTime, p.Type, p.Arch)
		}
	}
	if got := strings.Join(paths, " "); got != ". ./Library ./usr ./usr/bin" {
		t.Errorf("paths = %q", got)
	}
	if b.Leaves != 1 || b.Branch || b.TreePathCount != 4 {
		t.Errorf("tree: %d leaves, branch %v, count %d", b.Leaves, b.Branch, b.TreePathCount)
	}

	bad := []struct {
		name string
		data []byte
	}{
		{"short", good[:100]},
		{"magic", append([]byte("BOMStorX"), good[8:]...)},
		{"unsorted", bomBytes(t, []string{".", "usr", "Library"}, []uint32{0, 1, 1}, 0)},
		{"dangling forward", bomBytes(t, []string{"."}, []uint32{0}, 7)},
		{"missing parent", bomBytes(t, []string{".", "x"}, []uint32{0, 9}, 0)},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ReadBOM(c.data); err != nil {
				t.Logf("%s: %v", c.name, err)
			} else {
				t.Errorf("ReadBOM accepted a %s BOM", c.name)
			}
		})
	}
}
