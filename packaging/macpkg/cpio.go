package macpkg

import (
	"bytes"
	"fmt"
)

// cpio "odc" (POSIX.1 portable) format, as written by Apple's pkgbuild:
// a 76-byte ASCII-octal header, the NUL-terminated name, then the data,
// without padding, and a final TRAILER!!! entry.

const (
	cpioTypeDir     = 0o040000
	cpioTypeRegular = 0o100000
	cpioTypeSymlink = 0o120000
)

// cpioWriter accumulates an odc archive in memory.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

// octal formats v as a zero-padded octal field of width digits, failing
// when it does not fit.
func octal(field string, v int64, width int) (string, error) {
	s := fmt.Sprintf("%0*o", width, v)
	if v < 0 || len(s) > width {
		return "", fmt.Errorf("cpio odc %s %d does not fit in %d octal digits", field, v, width)
	}
	return s, nil
}

// add appends one entry. mode carries the file type bits and permissions.
func (c *cpioWriter) add(name string, mode uint32, uid, gid int, mtime int64, data []byte) error {
	c.ino++
	nlink := int64(1)
	if mode&0o170000 == cpioTypeDir {
		nlink = 2
	}
	fields := []struct {
		name  string
		v     int64
		width int
	}{
		{"dev", 0, 6},
		{"ino", int64(c.ino), 6},
		{"mode", int64(mode), 6},
		{"uid", int64(uid), 6},
		{"gid", int64(gid), 6},
		{"nlink", nlink, 6},
		{"rdev", 0, 6},
		{"mtime", mtime, 11},
		{"namesize", int64(len(name) + 1), 6},
		{"filesize", int64(len(data)), 11},
	}
	c.buf.WriteString("070707")
	for _, f := range fields {
		s, err := octal(f.name, f.v, f.width)
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		c.buf.WriteString(s)
	}
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.buf.Write(data)
	return nil
}

// finish writes the trailer and returns the archive.
func (c *cpioWriter) finish() ([]byte, error) {
	c.ino = -1 // the trailer carries inode 0
	if err := c.add("TRAILER!!!", 0, 0, 0, 0, nil); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}
