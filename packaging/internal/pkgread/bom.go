package pkgread

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// BOM is a parsed bill-of-materials file.
type BOM struct {
	// NumberOfBlocks is the header's count of non-null blocks.
	NumberOfBlocks uint32
	// Vars maps variable names to block indexes; VarNames keeps file order.
	Vars     map[string]uint32
	VarNames []string
	// BomInfoPaths is BomInfo's numberOfPaths (paths + 1 as mkbom writes).
	BomInfoPaths uint32
	// TreePathCount is the pathCount of the Paths tree header.
	TreePathCount uint32
	// Leaves is the number of leaf nodes of the Paths tree; Branch tells
	// whether the tree root is a branch node.
	Leaves int
	Branch bool
	// Paths lists the records in tree order.
	Paths []BOMPath
}

// BOMPath is one Paths record.
type BOMPath struct {
	ID       uint32
	Parent   uint32
	Name     string
	Path     string // "." or "./usr/local/bin/x"
	Type     uint8  // 1 file, 2 dir, 3 symlink
	Arch     uint16
	Mode     uint16 // st_mode
	UID, GID uint32
	MTime    uint32
	Size     uint32
	Checksum uint32 // POSIX cksum CRC
	LinkName string
}

type bomFile struct {
	data   []byte
	blocks [][2]uint32 // address, length; index 0 is the null block
}

func (f *bomFile) block(i uint32) ([]byte, error) {
	if i == 0 || int(i) >= len(f.blocks) {
		return nil, fmt.Errorf("bom block %d out of range 1..%d", i, len(f.blocks)-1)
	}
	a, l := f.blocks[i][0], f.blocks[i][1]
	if uint64(a)+uint64(l) > uint64(len(f.data)) {
		return nil, fmt.Errorf("bom block %d [%d,+%d) beyond end of file %d", i, a, l, len(f.data))
	}
	return f.data[a : a+l], nil
}

func u16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
func u32(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }

// need fails when b is shorter than n.
func need(what string, b []byte, n int) error {
	if len(b) < n {
		return fmt.Errorf("bom %s: %d bytes, need %d", what, len(b), n)
	}
	return nil
}

// ReadBOM parses data as a BOMStore file and walks its Paths tree.
func ReadBOM(data []byte) (*BOM, error) {
	if err := need("header", data, 512); err != nil {
		return nil, err
	}
	if string(data[:8]) != "BOMStore" || u32(data, 8) != 1 {
		return nil, fmt.Errorf("bom header: magic %q version %d, want \"BOMStore\" 1", data[:8], u32(data, 8))
	}
	b := &BOM{NumberOfBlocks: u32(data, 12), Vars: map[string]uint32{}}
	indexOff, indexLen, varsOff, varsLen := u32(data, 16), u32(data, 20), u32(data, 24), u32(data, 28)
	if uint64(indexOff)+uint64(indexLen) > uint64(len(data)) || uint64(varsOff)+uint64(varsLen) > uint64(len(data)) {
		return nil, fmt.Errorf("bom header: index [%d,+%d) or vars [%d,+%d) beyond file size %d", indexOff, indexLen, varsOff, varsLen, len(data))
	}
	index := data[indexOff : indexOff+indexLen]
	if err := need("block table", index, 4); err != nil {
		return nil, err
	}
	n := u32(index, 0)
	if err := need("block table", index, 4+8*int(n)); err != nil {
		return nil, err
	}
	f := &bomFile{data: data}
	nonNull := uint32(0)
	for i := uint32(0); i < n; i++ {
		a, l := u32(index, 4+8*int(i)), u32(index, 8+8*int(i))
		f.blocks = append(f.blocks, [2]uint32{a, l})
		if a != 0 || l != 0 {
			nonNull++
		}
	}
	if nonNull != b.NumberOfBlocks {
		return nil, fmt.Errorf("bom header: %d non-null blocks, table has %d", b.NumberOfBlocks, nonNull)
	}

	vars := data[varsOff : varsOff+varsLen]
	if err := need("vars", vars, 4); err != nil {
		return nil, err
	}
	pos := 4
	for i := uint32(0); i < u32(vars, 0); i++ {
		if err := need("var", vars[pos:], 5); err != nil {
			return nil, err
		}
		idx, l := u32(vars, pos), int(vars[pos+4])
		if err := need("var name", vars[pos+5:], l); err != nil {
			return nil, err
		}
		name := string(vars[pos+5 : pos+5+l])
		b.Vars[name] = idx
		b.VarNames = append(b.VarNames, name)
		pos += 5 + l
	}

	if idx, ok := b.Vars["BomInfo"]; ok {
		info, err := f.block(idx)
		if err != nil {
			return nil, err
		}
		if err := need("BomInfo", info, 12); err != nil {
			return nil, err
		}
		b.BomInfoPaths = u32(info, 4)
	}

	pathsIdx, ok := b.Vars["Paths"]
	if !ok {
		return nil, fmt.Errorf("bom: no Paths variable (vars: %v)", b.VarNames)
	}
	tree, err := f.block(pathsIdx)
	if err != nil {
		return nil, err
	}
	if err := need("Paths tree", tree, 21); err != nil {
		return nil, err
	}
	if string(tree[:4]) != "tree" || u32(tree, 4) != 1 {
		return nil, fmt.Errorf("bom Paths: block is %q version %d, want \"tree\" 1", tree[:4], u32(tree, 4))
	}
	b.TreePathCount = u32(tree, 16)

	leaves, err := f.leaves(u32(tree, 8), 0, b)
	if err != nil {
		return nil, err
	}
	b.Leaves = len(leaves)
	// The forward chain from the first leaf must visit the same leaves,
	// and each backward pointer must name the previous one.
	for i, id := range leaves {
		node, _ := f.block(id)
		fwd, back := u32(node, 4), u32(node, 8)
		wantFwd, wantBack := uint32(0), uint32(0)
		if i+1 < len(leaves) {
			wantFwd = leaves[i+1]
		}
		if i > 0 {
			wantBack = leaves[i-1]
		}
		if fwd != wantFwd || back != wantBack {
			return nil, fmt.Errorf("bom Paths leaf %d (block %d): forward %d backward %d, want %d %d", i, id, fwd, back, wantFwd, wantBack)
		}
		if err := f.readLeaf(node, b); err != nil {
			return nil, fmt.Errorf("bom Paths leaf %d (block %d): %w", i, id, err)
		}
	}

	byID := map[uint32]*BOMPath{}
	for i := range b.Paths {
		byID[b.Paths[i].ID] = &b.Paths[i]
	}
	for i := range b.Paths {
		p := &b.Paths[i]
		if i > 0 {
			prev := b.Paths[i-1]
			if prev.Parent > p.Parent || (prev.Parent == p.Parent && prev.Name >= p.Name) {
				return nil, fmt.Errorf("bom Paths: %q (parent %d) after %q (parent %d) breaks (parent, name) order", p.Name, p.Parent, prev.Name, prev.Parent)
			}
		}
		full := p.Name
		seen := 0
		for parent := p.Parent; parent != 0; seen++ {
			pp, ok := byID[parent]
			if !ok || seen > len(b.Paths) {
				return nil, fmt.Errorf("bom Paths: %q has missing or cyclic parent %d", p.Name, parent)
			}
			full = pp.Name + "/" + full
			parent = pp.Parent
		}
		p.Path = full
	}
	return b, nil
}

// leaves returns the leaf block ids under node id, in order.
func (f *bomFile) leaves(id uint32, depth int, b *BOM) ([]uint32, error) {
	if depth > 8 {
		return nil, fmt.Errorf("bom Paths: tree deeper than 8 levels")
	}
	node, err := f.block(id)
	if err != nil {
		return nil, err
	}
	if err := need("Paths node", node, 12); err != nil {
		return nil, err
	}
	count := int(u16(node, 2))
	if err := need("Paths node", node, 12+8*count); err != nil {
		return nil, err
	}
	if u16(node, 0) == 1 {
		return []uint32{id}, nil
	}
	if depth == 0 {
		b.Branch = true
	}
	var out []uint32
	for i := 0; i < count; i++ {
		child, key := u32(node, 12+8*i), u32(node, 16+8*i)
		sub, err := f.leaves(child, depth+1, b)
		if err != nil {
			return nil, err
		}
		// The key names the File block of the last path under child.
		last, _ := f.block(sub[len(sub)-1])
		if n := int(u16(last, 2)); n == 0 || u32(last, 12+8*(n-1)+4) != key {
			return nil, fmt.Errorf("bom Paths branch block %d entry %d: key block %d is not the last path of its child", id, i, key)
		}
		out = append(out, sub...)
	}
	return out, nil
}

func (f *bomFile) readLeaf(node []byte, b *BOM) error {
	count := int(u16(node, 2))
	for i := 0; i < count; i++ {
		infoIdx, fileIdx := u32(node, 12+8*i), u32(node, 16+8*i)
		info, err := f.block(infoIdx)
		if err != nil {
			return err
		}
		if err := need("PathInfo", info, 8); err != nil {
			return err
		}
		file, err := f.block(fileIdx)
		if err != nil {
			return err
		}
		if err := need("File", file, 5); err != nil {
			return err
		}
		nul := bytes.IndexByte(file[4:], 0)
		if nul < 0 {
			return fmt.Errorf("File block %d: name not NUL-terminated", fileIdx)
		}
		rec, err := f.block(u32(info, 4))
		if err != nil {
			return err
		}
		if err := need("path record", rec, 31); err != nil {
			return err
		}
		p := BOMPath{
			ID: u32(info, 0), Parent: u32(file, 0), Name: string(file[4 : 4+nul]),
			Type: rec[0], Arch: u16(rec, 2), Mode: u16(rec, 4), UID: u32(rec, 6), GID: u32(rec, 10),
			MTime: u32(rec, 14), Size: u32(rec, 18), Checksum: u32(rec, 23),
		}
		if rec[1] != 1 || rec[22] != 1 {
			return fmt.Errorf("path record for %q: constant bytes %d/%d, want 1/1", p.Name, rec[1], rec[22])
		}
		if ll := int(u32(rec, 27)); ll > 0 {
			if err := need("link name", rec[31:], ll); err != nil {
				return err
			}
			p.LinkName = string(bytes.TrimRight(rec[31:31+ll], "\x00"))
		}
		b.Paths = append(b.Paths, p)
	}
	return nil
}
