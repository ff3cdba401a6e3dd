package pkgread

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// CpioEntry is one member of an odc cpio archive.
type CpioEntry struct {
	Name  string
	Dev   int64
	Ino   int64
	Mode  uint32 // st_mode: type bits and permissions
	UID   int
	GID   int
	Nlink int64
	Mtime int64
	Data  []byte
}

// ReadCpio reads an odc ("070707") cpio archive up to and excluding the
// TRAILER!!! entry, which must be present.
func ReadCpio(r io.Reader) ([]CpioEntry, error) {
	br := bufio.NewReader(r)
	var out []CpioEntry
	for i := 0; ; i++ {
		hdr := make([]byte, 76)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, fmt.Errorf("cpio entry %d header: %w (archive truncated or missing TRAILER!!!)", i, err)
		}
		if string(hdr[:6]) != "070707" {
			return nil, fmt.Errorf("cpio entry %d: magic %q, want 070707 (odc)", i, hdr[:6])
		}
		var fields [10]int64
		widths := [10]int{6, 6, 6, 6, 6, 6, 6, 11, 6, 11}
		pos := 6
		for j, w := range widths {
			v, err := strconv.ParseInt(string(hdr[pos:pos+w]), 8, 64)
			if err != nil {
				return nil, fmt.Errorf("cpio entry %d field %d %q: %w", i, j, hdr[pos:pos+w], err)
			}
			fields[j] = v
			pos += w
		}
		nameSize, fileSize := fields[8], fields[9]
		if nameSize < 1 || nameSize > 4096 {
			return nil, fmt.Errorf("cpio entry %d: name size %d out of range", i, nameSize)
		}
		name := make([]byte, nameSize)
		if _, err := io.ReadFull(br, name); err != nil {
			return nil, fmt.Errorf("cpio entry %d name: %w", i, err)
		}
		if name[nameSize-1] != 0 {
			return nil, fmt.Errorf("cpio entry %d: name %q is not NUL-terminated", i, name)
		}
		e := CpioEntry{
			Name: string(name[:nameSize-1]), Dev: fields[0], Ino: fields[1], Mode: uint32(fields[2]),
			UID: int(fields[3]), GID: int(fields[4]), Nlink: fields[5], Mtime: fields[7],
		}
		if e.Name == "TRAILER!!!" {
			return out, nil
		}
		e.Data = make([]byte, fileSize)
		if _, err := io.ReadFull(br, e.Data); err != nil {
			return nil, fmt.Errorf("cpio entry %q data: %w", e.Name, err)
		}
		out = append(out, e)
	}
}
