package macpkg_test

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/packaging/internal/pkgread"
	"github.com/gatewayd/gatewayd/packaging/macpkg"
)

var testMTime = time.Date(2024, 5, 17, 12, 30, 45, 0, time.UTC)

// pseudoRandom returns n deterministic pseudo-random bytes.
func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// realisticOptions is a gatewayd-like package; assets > 0 adds that many
// small files in nested directories (more than 256 paths force several
// BOM leaves and a branch node).
func realisticOptions(assets int) macpkg.Options {
	pre, post := macpkg.Scripts()
	files := []macpkg.File{
		{Path: "usr/local/bin/gatewayd", Mode: 0o755, Data: pseudoRandom(1, 300<<10)},
		{Path: "usr/local/bin/gatewayctl", Mode: 0o755, Data: pseudoRandom(2, 420<<10+17)},
		{Path: "usr/local/bin/gwctl", Mode: fs.ModeSymlink | 0o755, Data: []byte("gatewayctl")},
		{Path: "Library/LaunchDaemons/org.gatewayd.gateway.plist", Mode: 0o644, Data: []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>Label</key><string>org.gatewayd.gateway</string></dict></plist>
`)},
		{Path: "usr/local/share/man/man8/gatewayd.8", Mode: 0o644, Data: []byte(".TH GATEWAYD 8\n.SH NAME\ngatewayd \\- gateway daemon\n")},
		{Path: "usr/local/share/doc/gatewayd/empty", Mode: 0o644},
		{Path: "usr/local/var/lib/gatewayd", Mode: fs.ModeDir | 0o750, UID: 250, GID: 250},
		{Path: "usr/local/etc/gatewayd/gatewayd.json", Mode: 0o640, Data: []byte("{}\n"), UID: 0, GID: 250},
	}
	for i := range assets {
		files = append(files, macpkg.File{
			Path: fmt.Sprintf("usr/local/share/gatewayd/ui/d%02d/asset-%03d.js", i%7, i),
			Mode: 0o644,
			Data: []byte(strings.Repeat(fmt.Sprintf("/* asset %d */\n", i), i%50)),
		})
	}
	return macpkg.Options{
		Identifier:        "org.gatewayd.pkg",
		Version:           "1.2.3",
		Title:             "gatewayd & friends",
		InstallLocation:   "/",
		Files:             files,
		Preinstall:        pre,
		Postinstall:       post,
		MTime:             testMTime,
		HostArchitectures: "arm64,x86_64",
		MinOSVersion:      "12.0",
		License:           &macpkg.License{SPDX: "Apache-2.0", Text: []byte("Apache License\nVersion 2.0, January 2004\n")},
	}
}

func build(t *testing.T, o macpkg.Options) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := macpkg.Build(&buf, o); err != nil {
		t.Fatalf("Build: %v", err)
	}
	p := filepath.Join(t.TempDir(), "gatewayd.pkg")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, buf.Bytes()
}

func openXar(t *testing.T, data []byte) *pkgread.Xar {
	t.Helper()
	x, err := pkgread.ReadXar(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("ReadXar: %v", err)
	}
	return x
}

func extract(t *testing.T, x *pkgread.Xar, name string) []byte {
	t.Helper()
	b, err := x.Extract(name)
	if err != nil {
		t.Fatalf("Extract(%s): %v", name, err)
	}
	return b
}

func readGzipCpio(t *testing.T, b []byte) []pkgread.CpioEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	entries, err := pkgread.ReadCpio(zr)
	if err != nil {
		t.Fatalf("ReadCpio: %v", err)
	}
	if rest, _ := io.ReadAll(zr); len(rest) != 0 {
		t.Fatalf("%d bytes after TRAILER!!!", len(rest))
	}
	return entries
}

// stMode converts a File's mode to st_mode bits, independently of the
// package's own conversion.
func stMode(m fs.FileMode) uint32 {
	switch {
	case m.IsDir():
		return 0o040000 | uint32(m.Perm())
	case m&fs.ModeSymlink != 0:
		return 0o120000 | uint32(m.Perm())
	}
	return 0o100000 | uint32(m.Perm())
}

func TestBuildProductArchive(t *testing.T) {
	o := realisticOptions(300)
	_, data := build(t, o)
	x := openXar(t, data)

	var names []string
	for _, f := range x.Files {
		names = append(names, f.Path)
	}
	wantNames := []string{"Distribution", "Resources", "Resources/LICENSE", "gatewayd.pkg", "gatewayd.pkg/Bom", "gatewayd.pkg/Payload", "gatewayd.pkg/Scripts", "gatewayd.pkg/PackageInfo"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("xar members = %v, want %v", names, wantNames)
	}
	wantEnc := map[string]string{
		"Distribution":             "application/x-gzip",
		"Resources/LICENSE":        "application/x-gzip",
		"gatewayd.pkg/Bom":         "application/x-gzip",
		"gatewayd.pkg/PackageInfo": "application/x-gzip",
		"gatewayd.pkg/Payload":     "application/octet-stream",
		"gatewayd.pkg/Scripts":     "application/octet-stream",
	}
	for name, enc := range wantEnc {
		f, _ := x.File(name)
		if f.Encoding != enc || f.Mode != "0644" || f.User != "root" || f.Group != "wheel" || f.Type != "file" {
			t.Errorf("%s: encoding %q mode %q owner %s:%s type %s; want %q 0644 root:wheel file", name, f.Encoding, f.Mode, f.User, f.Group, f.Type, enc)
		}
		if f.Mtime != "2024-05-17T12:30:45Z" {
			t.Errorf("%s: mtime %q, want 2024-05-17T12:30:45Z", name, f.Mtime)
		}
	}
	if f, _ := x.File("gatewayd.pkg"); f.Type != "directory" || f.HasData {
		t.Errorf("gatewayd.pkg: type %q hasData %v, want a directory without data", f.Type, f.HasData)
	}

	// Payload: every listed file with its mode, owner, data; parents first.
	payload := readGzipCpio(t, extract(t, x, "gatewayd.pkg/Payload"))
	byName := map[string]pkgread.CpioEntry{}
	for i, e := range payload {
		if _, dup := byName[e.Name]; dup {
			t.Fatalf("payload lists %q twice", e.Name)
		}
		byName[e.Name] = e
		if i == 0 && e.Name != "." {
			t.Fatalf("first payload entry %q, want \".\"", e.Name)
		}
		if e.Name != "." {
			parent := e.Name[:strings.LastIndexByte(e.Name, '/')]
			if _, ok := byName[parent]; !ok {
				t.Errorf("payload entry %q comes before its parent %q", e.Name, parent)
			}
		}
		if e.Mtime != testMTime.Unix() {
			t.Errorf("%s: mtime %d, want %d", e.Name, e.Mtime, testMTime.Unix())
		}
	}
	for _, f := range o.Files {
		e, ok := byName["./"+f.Path]
		if !ok {
			t.Errorf("payload lacks ./%s", f.Path)
			continue
		}
		if e.Mode != stMode(f.Mode) || e.UID != f.UID || e.GID != f.GID || !bytes.Equal(e.Data, f.Data) {
			t.Errorf("./%s: mode %o %d:%d %d bytes; want %o %d:%d %d bytes", f.Path, e.Mode, e.UID, e.GID, len(e.Data), stMode(f.Mode), f.UID, f.GID, len(f.Data))
		}
	}
	for _, implied := range []string{".", "./usr", "./usr/local/share/gatewayd/ui/d03", "./Library/LaunchDaemons"} {
		if e := byName[implied]; e.Mode != 0o040755 || e.UID != 0 || e.GID != 0 {
			t.Errorf("implied dir %s: mode %o %d:%d, want 40755 0:0", implied, e.Mode, e.UID, e.GID)
		}
	}

	// Scripts.
	pre, post := macpkg.Scripts()
	scripts := readGzipCpio(t, extract(t, x, "gatewayd.pkg/Scripts"))
	got := map[string]pkgread.CpioEntry{}
	for _, e := range scripts {
		got[e.Name] = e
	}
	if len(scripts) != 3 || got["."].Mode != 0o040755 {
		t.Errorf("Scripts archive has %d entries (root mode %o), want ., ./preinstall, ./postinstall", len(scripts), got["."].Mode)
	}
	for name, want := range map[string][]byte{"./preinstall": pre, "./postinstall": post} {
		if e := got[name]; e.Mode != 0o100755 || !bytes.Equal(e.Data, want) {
			t.Errorf("Scripts %s: mode %o, %d bytes; want 100755 and the embedded script (%d bytes)", name, e.Mode, len(e.Data), len(want))
		}
	}

	// BOM, read with the independent reader, against the payload.
	bom, err := pkgread.ReadBOM(extract(t, x, "gatewayd.pkg/Bom"))
	if err != nil {
		t.Fatalf("ReadBOM: %v", err)
	}
	if v := strings.Join(bom.VarNames, ","); v != "BomInfo,Paths,HLIndex,VIndex,Size64" {
		t.Errorf("BOM vars %s, want BomInfo,Paths,HLIndex,VIndex,Size64", v)
	}
	if len(bom.Paths) != len(payload) || int(bom.TreePathCount) != len(payload) || int(bom.BomInfoPaths) != len(payload)+1 {
		t.Errorf("BOM has %d paths (tree says %d, BomInfo %d); payload has %d", len(bom.Paths), bom.TreePathCount, bom.BomInfoPaths, len(payload))
	}
	if wantLeaves := (len(payload) + 255) / 256; bom.Leaves != wantLeaves || !bom.Branch || wantLeaves < 2 {
		t.Errorf("BOM Paths tree: %d leaves, branch %v; want %d leaves under a branch", bom.Leaves, bom.Branch, wantLeaves)
	}
	for i, p := range bom.Paths {
		if p.ID != uint32(i+1) {
			t.Errorf("BOM path %d (%s) has id %d", i, p.Path, p.ID)
		}
		e, ok := byName[p.Path]
		if !ok {
			t.Errorf("BOM lists %q, payload does not", p.Path)
			continue
		}
		wantType := map[uint32]uint8{0o040000: 2, 0o100000: 1, 0o120000: 3}[e.Mode&0o170000]
		if p.Type != wantType || uint32(p.Mode) != e.Mode || int(p.UID) != e.UID || int(p.GID) != e.GID || p.MTime != uint32(e.Mtime) {
			t.Errorf("BOM %s: type %d mode %o %d:%d mtime %d; payload: type %d mode %o %d:%d mtime %d",
				p.Path, p.Type, p.Mode, p.UID, p.GID, p.MTime, wantType, e.Mode, e.UID, e.GID, e.Mtime)
		}
		wantSize, wantSum := uint32(0), uint32(0)
		if wantType != 2 {
			wantSize, wantSum = uint32(len(e.Data)), pkgread.Cksum(e.Data)
		}
		if p.Size != wantSize || p.Checksum != wantSum {
			t.Errorf("BOM %s: size %d cksum %d; payload: size %d cksum %d", p.Path, p.Size, p.Checksum, wantSize, wantSum)
		}
		if wantType == 3 && p.LinkName != string(e.Data) {
			t.Errorf("BOM %s: link name %q, payload target %q", p.Path, p.LinkName, e.Data)
		}
	}

	// PackageInfo.
	var info struct {
		FormatVersion   string `xml:"format-version,attr"`
		Identifier      string `xml:"identifier,attr"`
		Version         string `xml:"version,attr"`
		InstallLocation string `xml:"install-location,attr"`
		Auth            string `xml:"auth,attr"`
		Overwrite       string `xml:"overwrite-permissions,attr"`
		Payload         struct {
			NumberOfFiles string `xml:"numberOfFiles,attr"`
			InstallKBytes string `xml:"installKBytes,attr"`
		} `xml:"payload"`
		Pre *struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>preinstall"`
		Post *struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>postinstall"`
	}
	if err := xml.Unmarshal(extract(t, x, "gatewayd.pkg/PackageInfo"), &info); err != nil {
		t.Fatalf("PackageInfo: %v", err)
	}
	var kb int
	for _, e := range payload {
		kb += (len(e.Data) + 1023) / 1024
	}
	if info.FormatVersion != "2" || info.Identifier != o.Identifier || info.Version != o.Version || info.InstallLocation != "/" ||
		info.Auth != "root" || info.Overwrite != "false" {
		t.Errorf("PackageInfo attributes = %+v", info)
	}
	if info.Payload.NumberOfFiles != strconv.Itoa(len(payload)) || info.Payload.InstallKBytes != strconv.Itoa(kb) {
		t.Errorf("PackageInfo payload numberOfFiles=%s installKBytes=%s, want %d %d", info.Payload.NumberOfFiles, info.Payload.InstallKBytes, len(payload), kb)
	}
	if info.Pre == nil || info.Pre.File != "./preinstall" || info.Post == nil || info.Post.File != "./postinstall" {
		t.Errorf("PackageInfo scripts = %+v %+v", info.Pre, info.Post)
	}

	// Distribution.
	var dist struct {
		XMLName        xml.Name
		MinSpecVersion string `xml:"minSpecVersion,attr"`
		Comment        string `xml:",comment"`
		Title          string `xml:"title"`
		License        []struct {
			File     string `xml:"file,attr"`
			MIMEType string `xml:"mime-type,attr"`
		} `xml:"license"`
		Options struct {
			HostArchitectures string `xml:"hostArchitectures,attr"`
		} `xml:"options"`
		Domains struct {
			LocalSystem string `xml:"enable_localSystem,attr"`
		} `xml:"domains"`
		MinOS []struct {
			Min string `xml:"min,attr"`
		} `xml:"volume-check>allowed-os-versions>os-version"`
		Outline struct {
			Lines []struct {
				Choice string `xml:"choice,attr"`
				Lines  []struct {
					Choice string `xml:"choice,attr"`
				} `xml:"line"`
			} `xml:"line"`
		} `xml:"choices-outline"`
		Choices []struct {
			ID     string `xml:"id,attr"`
			PkgRef []struct {
				ID string `xml:"id,attr"`
			} `xml:"pkg-ref"`
		} `xml:"choice"`
		PkgRefs []struct {
			ID            string `xml:"id,attr"`
			Version       string `xml:"version,attr"`
			InstallKBytes string `xml:"installKBytes,attr"`
			Ref           string `xml:",chardata"`
		} `xml:"pkg-ref"`
	}
	if err := xml.Unmarshal(extract(t, x, "Distribution"), &dist); err != nil {
		t.Fatalf("Distribution: %v", err)
	}
	if dist.XMLName.Local != "installer-gui-script" || dist.MinSpecVersion != "2" || dist.Title != o.Title ||
		dist.Options.HostArchitectures != "arm64,x86_64" || dist.Domains.LocalSystem != "true" {
		t.Errorf("Distribution = %+v", dist)
	}
	if len(dist.PkgRefs) != 1 || dist.PkgRefs[0].ID != o.Identifier || dist.PkgRefs[0].Ref != "#gatewayd.pkg" ||
		dist.PkgRefs[0].Version != o.Version || dist.PkgRefs[0].InstallKBytes != strconv.Itoa(kb) {
		t.Errorf("Distribution pkg-ref = %+v", dist.PkgRefs)
	}
	// The outline's nested choice must exist and reference the pkg-ref.
	if len(dist.Outline.Lines) != 1 || len(dist.Outline.Lines[0].Lines) != 1 {
		t.Fatalf("Distribution choices-outline = %+v", dist.Outline)
	}
	inner := dist.Outline.Lines[0].Lines[0].Choice
	found := false
	for _, c := range dist.Choices {
		if c.ID == inner && len(c.PkgRef) == 1 && c.PkgRef[0].ID == o.Identifier {
			found = true
		}
	}
	if !found {
		t.Errorf("no choice %q with pkg-ref %q in %+v", inner, o.Identifier, dist.Choices)
	}
	if len(dist.MinOS) != 1 || dist.MinOS[0].Min != "12.0" {
		t.Errorf("Distribution volume-check os-version = %+v, want one with min 12.0", dist.MinOS)
	}
	// The license: named by SPDX id and shown by Installer from Resources.
	if dist.Comment != " SPDX-License-Identifier: Apache-2.0 " || len(dist.License) != 1 ||
		dist.License[0].File != "LICENSE" || dist.License[0].MIMEType != "text/plain" {
		t.Errorf("Distribution license: comment %q, elements %+v; want the SPDX comment and <license file=\"LICENSE\" mime-type=\"text/plain\"/>", dist.Comment, dist.License)
	}
	if got := extract(t, x, "Resources/LICENSE"); !bytes.Equal(got, o.License.Text) {
		t.Errorf("Resources/LICENSE = %q, want the license text", got)
	}
}

func TestBuildWithoutScriptsOrMinOS(t *testing.T) {
	o := realisticOptions(0)
	o.Preinstall, o.Postinstall, o.MinOSVersion, o.HostArchitectures, o.License = nil, nil, "", "", nil
	_, data := build(t, o)
	x := openXar(t, data)
	if _, ok := x.File("gatewayd.pkg/Scripts"); ok {
		t.Error("package without scripts has a Scripts member")
	}
	info := extract(t, x, "gatewayd.pkg/PackageInfo")
	if bytes.Contains(info, []byte("<scripts")) {
		t.Errorf("PackageInfo mentions scripts:\n%s", info)
	}
	dist := extract(t, x, "Distribution")
	if _, ok := x.File("Resources/LICENSE"); ok || bytes.Contains(dist, []byte("<license")) || bytes.Contains(dist, []byte("SPDX")) {
		t.Errorf("package without a license names one:\n%s", dist)
	}
	if bytes.Contains(dist, []byte("hostArchitectures")) || bytes.Contains(dist, []byte("os-version")) {
		t.Errorf("Distribution restricts hosts or OS although options are empty:\n%s", dist)
	}
	bom, err := pkgread.ReadBOM(extract(t, x, "gatewayd.pkg/Bom"))
	if err != nil {
		t.Fatal(err)
	}
	if bom.Leaves != 1 || bom.Branch {
		t.Errorf("small BOM: %d leaves, branch %v; want one leaf at the root", bom.Leaves, bom.Branch)
	}
}

func TestCksumMatchesCksumCommand(t *testing.T) {
	cksum, err := exec.LookPath("cksum")
	if err != nil {
		t.Skip("cksum(1) not found (coreutils; CI images always have it)")
	}
	cases := map[string][]byte{
		"empty":    nil,
		"one":      []byte("a"),
		"len255":   pseudoRandom(3, 255),
		"len256":   pseudoRandom(4, 256),
		"len65537": pseudoRandom(5, 65537),
		"binary":   pseudoRandom(6, 300<<10),
	}
	var files []macpkg.File
	for name, data := range cases {
		files = append(files, macpkg.File{Path: "t/" + name, Mode: 0o644, Data: data})
	}
	_, data := build(t, macpkg.Options{Identifier: "org.gatewayd.test", Version: "1", Files: files, MTime: testMTime})
	bom, err := pkgread.ReadBOM(extract(t, openXar(t, data), "gatewayd.pkg/Bom"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]uint32{}
	for _, p := range bom.Paths {
		sums[p.Path] = p.Checksum
	}
	dir := t.TempDir()
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(cksum, p).Output()
			if err != nil {
				t.Fatalf("cksum %s: %v", p, err)
			}
			fields := strings.Fields(string(out))
			want, err := strconv.ParseUint(fields[0], 10, 32)
			if err != nil || fields[1] != strconv.Itoa(len(content)) {
				t.Fatalf("cksum output %q", out)
			}
			if got := sums["./t/"+name]; got != uint32(want) {
				t.Errorf("BOM checksum %d, cksum(1) says %d", got, want)
			}
			if got := pkgread.Cksum(content); got != uint32(want) {
				t.Errorf("pkgread.Cksum %d, cksum(1) says %d", got, want)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	o := realisticOptions(20)
	_, a := build(t, o)
	// Same inputs in another order: same bytes.
	shuffled := o
	shuffled.Files = append([]macpkg.File(nil), o.Files...)
	sort.Slice(shuffled.Files, func(i, j int) bool { return shuffled.Files[i].Path > shuffled.Files[j].Path })
	_, b := build(t, shuffled)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds with the same inputs differ")
	}
	later := o
	later.MTime = o.MTime.Add(time.Second)
	_, c := build(t, later)
	if bytes.Equal(a, c) {
		t.Fatal("changing MTime did not change the package")
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	base := func() macpkg.Options {
		return macpkg.Options{Identifier: "org.gatewayd.pkg", Version: "1", MTime: testMTime,
			Files: []macpkg.File{{Path: "usr/local/bin/gatewayd", Mode: 0o755, Data: []byte("x")}}}
	}
	cases := []struct {
		name   string
		mutate func(*macpkg.Options)
		want   string
	}{
		{"no identifier", func(o *macpkg.Options) { o.Identifier = "" }, "Identifier"},
		{"no version", func(o *macpkg.Options) { o.Version = "" }, "Version"},
		{"absolute path", func(o *macpkg.Options) { o.Files[0].Path = "/usr/bin/x" }, "relative"},
		{"dotdot", func(o *macpkg.Options) { o.Files[0].Path = "../etc/passwd" }, "relative"},
		{"unclean", func(o *macpkg.Options) { o.Files[0].Path = "usr//bin/x" }, "clean"},
		{"duplicate", func(o *macpkg.Options) { o.Files = append(o.Files, o.Files[0]) }, "twice"},
		{"device", func(o *macpkg.Options) { o.Files[0].Mode = fs.ModeDevice | 0o600 }, "not supported"},
		{"file as parent", func(o *macpkg.Options) {
			o.Files = append(o.Files, macpkg.File{Path: "usr/local/bin/gatewayd/x", Mode: 0o644})
		}, "not a directory"},
		{"negative uid", func(o *macpkg.Options) { o.Files[0].UID = -1 }, "negative"},
		{"huge uid", func(o *macpkg.Options) { o.Files[0].UID = 1 << 20 }, "octal"},
		{"dir with data", func(o *macpkg.Options) { o.Files[0].Mode = fs.ModeDir | 0o755 }, "directory with data"},
		{"empty symlink", func(o *macpkg.Options) { o.Files[0].Mode = fs.ModeSymlink | 0o777; o.Files[0].Data = nil }, "target"},
		{"mtime before 1970", func(o *macpkg.Options) { o.MTime = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "1970"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mutate(&o)
			var buf bytes.Buffer
			err := macpkg.Build(&buf, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPkgreadRejectsCorruption(t *testing.T) {
	_, data := build(t, realisticOptions(0))
	x := openXar(t, data)
	for _, member := range []string{"gatewayd.pkg/Payload", "gatewayd.pkg/Bom"} {
		t.Run(member, func(t *testing.T) {
			bad := bytes.Clone(data)
			bad[heapPos(t, data, member)] ^= 0x01
			y := openXar(t, bad) // the TOC is intact
			if _, err := y.Extract(member); !errors.Is(err, pkgread.ErrChecksum) {
				t.Fatalf("Extract of corrupted %s: %v, want a checksum error", member, err)
			}
			if _, err := x.Extract(member); err != nil {
				t.Fatalf("pristine %s: %v", member, err)
			}
		})
	}
	t.Run("toc checksum", func(t *testing.T) {
		bad := bytes.Clone(data)
		bad[heapStart(data)+3] ^= 0x01
		if _, err := pkgread.ReadXar(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, pkgread.ErrChecksum) {
			t.Fatalf("ReadXar with a corrupted TOC checksum: %v, want a checksum error", err)
		}
	})
}

// heapStart is the file offset of the xar heap, from the header.
func heapStart(data []byte) int {
	var n uint64
	for _, b := range data[8:16] {
		n = n<<8 | uint64(b)
	}
	return 28 + int(n)
}

// heapPos is a file offset in the middle of member's stored data.
func heapPos(t *testing.T, data []byte, member string) int {
	t.Helper()
	f, ok := openXar(t, data).File(member)
	if !ok {
		t.Fatalf("no member %s", member)
	}
	return heapStart(data) + int(f.Offset+f.Length/2)
}
