package macpkg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
)

// BOM ("bill of materials") writer. Layout, all integers big-endian:
//
//	512-byte header | vars | block data | block table | free list
//
// The layout and the constants (architecture 3, BomInfo with one zero
// entry, empty HLIndex/Size64 trees, a VIndex pointing to a 128-byte tree)
// follow bomutils' mkbom, whose output macOS Installer accepts.

const (
	bomHeaderSize   = 512
	bomLeafCapacity = 256 // paths per leaf node
	bomArchitecture = 3
	bomTypeFile     = 1
	bomTypeDir      = 2
	bomTypeSymlink  = 3
)

// bomStore collects numbered blocks (block 0 is the null block) and named
// variables pointing at blocks.
type bomStore struct {
	blocks [][]byte
	vars   []bomVar
}

type bomVar struct {
	name  string
	block uint32
}

func (s *bomStore) add(b []byte) uint32 {
	s.blocks = append(s.blocks, b)
	return uint32(len(s.blocks))
}

func (s *bomStore) addVar(name string, b []byte) {
	s.vars = append(s.vars, bomVar{name: name, block: s.add(b)})
}

// be builds big-endian byte strings.
type be struct{ bytes.Buffer }

func (b *be) u8(v uint8)   { b.WriteByte(v) }
func (b *be) u16(v uint16) { b.Write(binary.BigEndian.AppendUint16(nil, v)) }
func (b *be) u32(v uint32) { b.Write(binary.BigEndian.AppendUint32(nil, v)) }

func (s *bomStore) bytes() []byte {
	var vars be
	vars.u32(uint32(len(s.vars)))
	for _, v := range s.vars {
		vars.u32(v.block)
		vars.u8(uint8(len(v.name)))
		vars.WriteString(v.name)
	}
	dataStart := bomHeaderSize + vars.Len()
	var data bytes.Buffer
	var table be
	table.u32(uint32(len(s.blocks) + 1))
	table.u32(0) // null block
	table.u32(0)
	for _, b := range s.blocks {
		table.u32(uint32(dataStart + data.Len()))
		table.u32(uint32(len(b)))
		data.Write(b)
	}
	var free be
	free.u32(0) // no free blocks, then two zero pointers as mkbom writes
	free.Write(make([]byte, 16))

	var hdr be
	hdr.WriteString("BOMStore")
	hdr.u32(1)
	hdr.u32(uint32(len(s.blocks)))
	hdr.u32(uint32(dataStart + data.Len()))
	hdr.u32(uint32(table.Len() + free.Len()))
	hdr.u32(bomHeaderSize)
	hdr.u32(uint32(vars.Len()))
	hdr.Write(make([]byte, bomHeaderSize-hdr.Len()))

	out := make([]byte, 0, dataStart+data.Len()+table.Len()+free.Len())
	out = append(out, hdr.Bytes()...)
	out = append(out, vars.Bytes()...)
	out = append(out, data.Bytes()...)
	out = append(out, table.Bytes()...)
	out = append(out, free.Bytes()...)
	return out
}

// treeBlock is a "tree" header block pointing at the root node child.
func treeBlock(child uint32, blockSize uint32, pathCount uint32) []byte {
	var b be
	b.WriteString("tree")
	b.u32(1)
	b.u32(child)
	b.u32(blockSize)
	b.u32(pathCount)
	b.u8(0)
	return b.Bytes()
}

// emptyLeaf is a leaf node with no entries.
func emptyLeaf() []byte {
	var b be
	b.u16(1)
	b.u16(0)
	b.u32(0)
	b.u32(0)
	return b.Bytes()
}

// buildBOM writes the BOM for entries (the payload, including "."), which
// must already be validated; parents exist for every entry.
func buildBOM(entries []*entry, mtime uint32) ([]byte, error) {
	children := map[string][]*entry{}
	var root *entry
	for _, e := range entries {
		if e.rel == "" {
			root = e
			continue
		}
		parent := ""
		if i := strings.LastIndexByte(e.rel, '/'); i >= 0 {
			parent = e.rel[:i]
		}
		children[parent] = append(children[parent], e)
	}
	if root == nil {
		return nil, fmt.Errorf("bom: payload has no root entry (internal error)")
	}
	for _, c := range children {
		sort.Slice(c, func(i, j int) bool { return baseName(c[i].rel) < baseName(c[j].rel) })
	}

	// Breadth-first over sorted children: ids 1..N in (parentId, name) order.
	type node struct {
		e      *entry
		parent uint32
		name   string
	}
	order := []node{{e: root, parent: 0, name: "."}}
	for i := 0; i < len(order); i++ {
		id := uint32(i + 1)
		for _, c := range children[order[i].e.rel] {
			order = append(order, node{e: c, parent: id, name: baseName(c.rel)})
		}
	}
	if len(order) != len(entries) {
		return nil, fmt.Errorf("bom: %d of %d payload entries reachable from the root (internal error)", len(order), len(entries))
	}

	if leaves := (len(order) + bomLeafCapacity - 1) / bomLeafCapacity; leaves > (4096-12)/8 {
		return nil, fmt.Errorf("bom: %d paths need more than one branch level, which this builder does not write; ship fewer files", len(order))
	}

	var s bomStore
	var info be
	info.u32(1)                      // version
	info.u32(uint32(len(order) + 1)) // number of paths + 1
	info.u32(1)                      // one info entry
	info.Write(make([]byte, 16))
	s.addVar("BomInfo", info.Bytes())

	type leafEntry struct{ pathInfo, file uint32 }
	var leaves [][]leafEntry
	for i, n := range order {
		if i%bomLeafCapacity == 0 {
			leaves = append(leaves, nil)
		}
		e := n.e
		var rec be
		typ := uint8(bomTypeFile)
		size := uint32(0)
		sum := uint32(0)
		var link []byte
		switch e.mode & 0o170000 {
		case cpioTypeDir:
			typ = bomTypeDir
		case cpioTypeSymlink:
			typ = bomTypeSymlink
			link = append(append([]byte(nil), e.data...), 0)
		}
		if typ != bomTypeDir {
			if uint64(len(e.data)) > math.MaxUint32 {
				return nil, fmt.Errorf("bom: %s is %d bytes; files of 4 GiB and more need Size64 records, which this builder does not write", e.path, len(e.data))
			}
			size = uint32(len(e.data))
			sum = posixCksum(e.data)
		}
		rec.u8(typ)
		rec.u8(1)
		rec.u16(bomArchitecture)
		rec.u16(uint16(e.mode))
		rec.u32(uint32(e.uid))
		rec.u32(uint32(e.gid))
		rec.u32(mtime)
		rec.u32(size)
		rec.u8(1)
		rec.u32(sum)
		rec.u32(uint32(len(link)))
		rec.Write(link)
		recID := s.add(rec.Bytes())

		var pi be
		pi.u32(uint32(i + 1))
		pi.u32(recID)
		piID := s.add(pi.Bytes())

		var f be
		f.u32(n.parent)
		f.WriteString(n.name)
		f.u8(0)
		fileID := s.add(f.Bytes())
		leaves[len(leaves)-1] = append(leaves[len(leaves)-1], leafEntry{piID, fileID})
	}

	// Leaves are chained forward/backward; their ids are only known once
	// added, so reserve them first and fill the contents afterwards.
	leafIDs := make([]uint32, len(leaves))
	for i := range leaves {
		leafIDs[i] = s.add(nil)
	}
	for i, l := range leaves {
		var b be
		b.u16(1)
		b.u16(uint16(len(l)))
		var fwd, back uint32
		if i+1 < len(leaves) {
			fwd = leafIDs[i+1]
		}
		if i > 0 {
			back = leafIDs[i-1]
		}
		b.u32(fwd)
		b.u32(back)
		for _, le := range l {
			b.u32(le.pathInfo)
			b.u32(le.file)
		}
		s.blocks[leafIDs[i]-1] = b.Bytes()
	}
	top := leafIDs[0]
	if len(leaves) > 1 {
		// Branch node: one entry per leaf, {leaf, key = last file in leaf}.
		var b be
		b.u16(0)
		b.u16(uint16(len(leaves)))
		b.u32(0)
		b.u32(0)
		for i, l := range leaves {
			b.u32(leafIDs[i])
			b.u32(l[len(l)-1].file)
		}
		top = s.add(b.Bytes())
	}
	s.addVar("Paths", treeBlock(top, 4096, uint32(len(order))))
	s.addVar("HLIndex", treeBlock(s.add(emptyLeaf()), 4096, 0))
	vtree := s.add(treeBlock(s.add(emptyLeaf()), 128, 0))
	var vindex be
	vindex.u32(1)
	vindex.u32(vtree)
	vindex.u32(0)
	vindex.u8(0)
	s.addVar("VIndex", vindex.Bytes())
	s.addVar("Size64", treeBlock(s.add(emptyLeaf()), 4096, 0))
	return s.bytes(), nil
}

func baseName(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[i+1:]
	}
	return rel
}
