// Package pkgread reads macOS flat packages for tests: the xar container
// (with SHA-1 verification of the TOC and of every member), cpio "odc"
// archives, and BOM files (walking the Paths tree). It is written from the
// format description in docs/packaging.md and shares no code with the writer in
// package macpkg, so that a misunderstanding in one does not hide in both.
// It needs no OS feature.
package pkgread

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // xar checksum algorithm 1 is SHA-1.
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
)

// Xar is an opened xar archive.
type Xar struct {
	r          io.ReaderAt
	heapOffset int64
	// TOCXML is the decompressed table of contents.
	TOCXML []byte
	// Files lists every member in TOC order, with slash-joined paths.
	Files []XarFile
}

// XarFile is one member of a xar archive.
type XarFile struct {
	ID       string
	Path     string
	Type     string
	Mode     string
	UID, GID string
	User     string
	Group    string
	Mtime    string
	// HasData is false for directories.
	HasData           bool
	Offset, Length    int64 // heap-relative offset, stored length
	Size              int64 // extracted size
	Encoding          string
	ArchivedChecksum  string
	ArchivedStyle     string
	ExtractedChecksum string
	ExtractedStyle    string
}

type tocFile struct {
	ID    string `xml:"id,attr"`
	Name  string `xml:"name"`
	Type  string `xml:"type"`
	Mode  string `xml:"mode"`
	UID   string `xml:"uid"`
	GID   string `xml:"gid"`
	User  string `xml:"user"`
	Group string `xml:"group"`
	Mtime string `xml:"mtime"`
	Data  *struct {
		Length   int64 `xml:"length"`
		Offset   int64 `xml:"offset"`
		Size     int64 `xml:"size"`
		Encoding struct {
			Style string `xml:"style,attr"`
		} `xml:"encoding"`
		Archived struct {
			Style string `xml:"style,attr"`
			Value string `xml:",chardata"`
		} `xml:"archived-checksum"`
		Extracted struct {
			Style string `xml:"style,attr"`
			Value string `xml:",chardata"`
		} `xml:"extracted-checksum"`
	} `xml:"data"`
	Children []tocFile `xml:"file"`
}

type tocDoc struct {
	TOC struct {
		Checksum struct {
			Style  string `xml:"style,attr"`
			Offset int64  `xml:"offset"`
			Size   int64  `xml:"size"`
		} `xml:"checksum"`
		Files []tocFile `xml:"file"`
	} `xml:"toc"`
}

// ErrChecksum reports a SHA-1 mismatch.
var ErrChecksum = errors.New("checksum mismatch")

// ReadXar parses the header and TOC of the xar archive in r (size bytes)
// and verifies the TOC checksum stored at heap offset 0.
func ReadXar(r io.ReaderAt, size int64) (*Xar, error) {
	hdr := make([]byte, 28)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("xar header: %w", err)
	}
	if string(hdr[:4]) != "xar!" {
		return nil, fmt.Errorf("xar header: magic %q is not \"xar!\"", hdr[:4])
	}
	hsize := int64(binary.BigEndian.Uint16(hdr[4:6]))
	version := binary.BigEndian.Uint16(hdr[6:8])
	zlen := int64(binary.BigEndian.Uint64(hdr[8:16]))
	rawLen := int64(binary.BigEndian.Uint64(hdr[16:24]))
	alg := binary.BigEndian.Uint32(hdr[24:28])
	if hsize != 28 || version != 1 || alg != 1 {
		return nil, fmt.Errorf("xar header: size %d version %d checksum algorithm %d; want 28, 1, 1 (SHA-1)", hsize, version, alg)
	}
	if hsize+zlen > size {
		return nil, fmt.Errorf("xar header: TOC length %d exceeds file size %d", zlen, size)
	}
	ztoc := make([]byte, zlen)
	if _, err := r.ReadAt(ztoc, hsize); err != nil {
		return nil, fmt.Errorf("xar toc: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(ztoc))
	if err != nil {
		return nil, fmt.Errorf("xar toc: %w", err)
	}
	toc, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("xar toc: %w", err)
	}
	if int64(len(toc)) != rawLen {
		return nil, fmt.Errorf("xar toc: %d bytes uncompressed, header says %d", len(toc), rawLen)
	}
	var doc tocDoc
	if err := xml.Unmarshal(toc, &doc); err != nil {
		return nil, fmt.Errorf("xar toc xml: %w", err)
	}
	x := &Xar{r: r, heapOffset: hsize + zlen, TOCXML: toc}
	ck := doc.TOC.Checksum
	if ck.Style != "sha1" || ck.Size != sha1.Size {
		return nil, fmt.Errorf("xar toc checksum: style %q size %d, want sha1 20", ck.Style, ck.Size)
	}
	stored := make([]byte, sha1.Size)
	if _, err := r.ReadAt(stored, x.heapOffset+ck.Offset); err != nil {
		return nil, fmt.Errorf("xar toc checksum: %w", err)
	}
	if sum := sha1.Sum(ztoc); !bytes.Equal(sum[:], stored) { //nolint:gosec
		return nil, fmt.Errorf("xar toc: %w: heap has %x, TOC hashes to %x", ErrChecksum, stored, sum)
	}
	var walk func(dir string, fs []tocFile)
	walk = func(dir string, fs []tocFile) {
		for _, f := range fs {
			p := path.Join(dir, f.Name)
			xf := XarFile{ID: f.ID, Path: p, Type: f.Type, Mode: f.Mode, UID: f.UID, GID: f.GID,
				User: f.User, Group: f.Group, Mtime: f.Mtime}
			if d := f.Data; d != nil {
				xf.HasData = true
				xf.Offset, xf.Length, xf.Size = d.Offset, d.Length, d.Size
				xf.Encoding = d.Encoding.Style
				xf.ArchivedChecksum, xf.ArchivedStyle = d.Archived.Value, d.Archived.Style
				xf.ExtractedChecksum, xf.ExtractedStyle = d.Extracted.Value, d.Extracted.Style
			}
			x.Files = append(x.Files, xf)
			walk(p, f.Children)
		}
	}
	walk("", doc.TOC.Files)
	return x, nil
}

// File returns the member at path p.
func (x *Xar) File(p string) (XarFile, bool) {
	for _, f := range x.Files {
		if f.Path == p {
			return f, true
		}
	}
	return XarFile{}, false
}

// Raw returns the stored (possibly compressed) bytes of member p after
// checking its archived-checksum.
func (x *Xar) Raw(p string) ([]byte, error) {
	f, ok := x.File(p)
	if !ok || !f.HasData {
		return nil, fmt.Errorf("xar member %s: not found or has no data", p)
	}
	buf := make([]byte, f.Length)
	if _, err := x.r.ReadAt(buf, x.heapOffset+f.Offset); err != nil {
		return nil, fmt.Errorf("xar member %s: %w", p, err)
	}
	if err := checkSHA1(f.ArchivedStyle, f.ArchivedChecksum, buf); err != nil {
		return nil, fmt.Errorf("xar member %s archived-checksum: %w", p, err)
	}
	return buf, nil
}

// Extract returns the extracted bytes of member p, verifying both the
// archived and the extracted checksum and the extracted size.
func (x *Xar) Extract(p string) ([]byte, error) {
	f, _ := x.File(p)
	raw, err := x.Raw(p)
	if err != nil {
		return nil, err
	}
	var out []byte
	switch f.Encoding {
	case "application/octet-stream":
		out = raw
	case "application/x-gzip": // zlib framing, despite the name
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("xar member %s: %w", p, err)
		}
		if out, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("xar member %s: %w", p, err)
		}
	default:
		return nil, fmt.Errorf("xar member %s: unsupported encoding %q", p, f.Encoding)
	}
	if int64(len(out)) != f.Size {
		return nil, fmt.Errorf("xar member %s: extracted %d bytes, TOC says %d", p, len(out), f.Size)
	}
	if err := checkSHA1(f.ExtractedStyle, f.ExtractedChecksum, out); err != nil {
		return nil, fmt.Errorf("xar member %s extracted-checksum: %w", p, err)
	}
	return out, nil
}

func checkSHA1(style, want string, data []byte) error {
	if style != "sha1" {
		return fmt.Errorf("style %q, want sha1", style)
	}
	sum := sha1.Sum(data) //nolint:gosec
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%w: TOC says %s, data hashes to %s", ErrChecksum, want, got)
	}
	return nil
}
