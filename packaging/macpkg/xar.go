package macpkg

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // xar's checksum algorithm 1 is SHA-1; Installer expects it.
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"time"
)

// xar writer: 28-byte header, zlib-compressed TOC XML, heap. Heap offset 0
// holds the SHA-1 of the compressed TOC; file data follows in TOC order.

const (
	xarMagic      = 0x78617221 // "xar!"
	xarHeaderSize = 28
	xarCksumSHA1  = 1
	encZlib       = "application/x-gzip" // xar's name for zlib framing
	encNone       = "application/octet-stream"
)

// xarNode is a file or directory of the archive to write.
type xarNode struct {
	name     string
	dir      bool
	mode     uint32
	data     []byte
	compress bool
	children []*xarNode
}

type xarTOC struct {
	XMLName xml.Name `xml:"xar"`
	TOC     struct {
		CreationTime string      `xml:"creation-time"`
		Checksum     xarChecksum `xml:"checksum"`
		Files        []*xarFile  `xml:"file"`
	} `xml:"toc"`
}

type xarChecksum struct {
	Style  string `xml:"style,attr"`
	Offset int64  `xml:"offset"`
	Size   int64  `xml:"size"`
}

type xarFile struct {
	ID    int        `xml:"id,attr"`
	Name  string     `xml:"name"`
	Type  string     `xml:"type"`
	Mode  string     `xml:"mode"`
	UID   int        `xml:"uid"`
	User  string     `xml:"user"`
	GID   int        `xml:"gid"`
	Group string     `xml:"group"`
	Ctime string     `xml:"ctime"`
	Mtime string     `xml:"mtime"`
	Atime string     `xml:"atime"`
	Data  *xarData   `xml:"data,omitempty"`
	Files []*xarFile `xml:"file"`
}

type xarData struct {
	Length    int64       `xml:"length"`
	Offset    int64       `xml:"offset"`
	Size      int64       `xml:"size"`
	Encoding  xarEncoding `xml:"encoding"`
	Archived  xarDigest   `xml:"archived-checksum"`
	Extracted xarDigest   `xml:"extracted-checksum"`
}

type xarEncoding struct {
	Style string `xml:"style,attr"`
}

type xarDigest struct {
	Style string `xml:"style,attr"`
	Value string `xml:",chardata"`
}

func sha1Hex(b []byte) string {
	sum := sha1.Sum(b) //nolint:gosec // see import
	return hex.EncodeToString(sum[:])
}

func zlibBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	return buf.Bytes(), nil
}

// writeXar writes nodes as a xar archive to w. All entries get mtime and
// root:wheel ownership.
func writeXar(w io.Writer, nodes []*xarNode, mtime time.Time) error {
	stamp := mtime.UTC().Format("2006-01-02T15:04:05Z")
	var toc xarTOC
	toc.TOC.CreationTime = stamp
	toc.TOC.Checksum = xarChecksum{Style: "sha1", Offset: 0, Size: sha1.Size}
	heap := bytes.NewBuffer(make([]byte, sha1.Size))
	id := 0
	var convert func(n *xarNode) (*xarFile, error)
	convert = func(n *xarNode) (*xarFile, error) {
		id++
		f := &xarFile{
			ID: id, Name: n.name, Type: "file", Mode: fmt.Sprintf("%04o", n.mode),
			UID: 0, User: "root", GID: 0, Group: "wheel",
			Ctime: stamp, Mtime: stamp, Atime: stamp,
		}
		if n.dir {
			f.Type = "directory"
			for _, c := range n.children {
				cf, err := convert(c)
				if err != nil {
					return nil, err
				}
				f.Files = append(f.Files, cf)
			}
			return f, nil
		}
		stored, enc := n.data, encNone
		if n.compress {
			z, err := zlibBytes(n.data)
			if err != nil {
				return nil, fmt.Errorf("xar member %s: %w", n.name, err)
			}
			stored, enc = z, encZlib
		}
		f.Data = &xarData{
			Length:    int64(len(stored)),
			Offset:    int64(heap.Len()),
			Size:      int64(len(n.data)),
			Encoding:  xarEncoding{Style: enc},
			Archived:  xarDigest{Style: "sha1", Value: sha1Hex(stored)},
			Extracted: xarDigest{Style: "sha1", Value: sha1Hex(n.data)},
		}
		heap.Write(stored)
		return f, nil
	}
	for _, n := range nodes {
		f, err := convert(n)
		if err != nil {
			return err
		}
		toc.TOC.Files = append(toc.TOC.Files, f)
	}
	x, err := xml.MarshalIndent(toc, "", " ")
	if err != nil {
		return fmt.Errorf("xar toc: %w", err)
	}
	tocXML := append([]byte(xml.Header), x...)
	tocXML = append(tocXML, '\n')
	ztoc, err := zlibBytes(tocXML)
	if err != nil {
		return fmt.Errorf("xar toc: %w", err)
	}
	sum := sha1.Sum(ztoc) //nolint:gosec // see import
	heapBytes := heap.Bytes()
	copy(heapBytes, sum[:])

	hdr := make([]byte, 0, xarHeaderSize)
	hdr = binary.BigEndian.AppendUint32(hdr, xarMagic)
	hdr = binary.BigEndian.AppendUint16(hdr, xarHeaderSize)
	hdr = binary.BigEndian.AppendUint16(hdr, 1)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(ztoc)))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(tocXML)))
	hdr = binary.BigEndian.AppendUint32(hdr, xarCksumSHA1)
	for _, b := range [][]byte{hdr, ztoc, heapBytes} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write xar archive: %w", err)
		}
	}
	return nil
}
