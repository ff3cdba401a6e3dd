// Package macpkg builds macOS flat installer packages (.pkg product
// archives) in pure Go, on any OS, so that `make package` on Linux can ship
// gatewayd for macOS without Apple's pkgbuild/productbuild.
//
// A product archive is a xar file holding a Distribution script and one
// component, gatewayd.pkg/, with Bom, Payload (gzip of a cpio odc archive),
// Scripts (the same, with ./preinstall and ./postinstall) and PackageInfo.
// docs/packaging.md ("The macOS flat package, byte by byte") describes every
// byte layout; Build follows it and bomutils' mkbom for the parts of the BOM
// nobody documents.
// Output is reproducible: the same Options give the same bytes (all
// timestamps come from Options.MTime, all ordering is sorted).
//
// Nothing here needs macOS or any external tool; there is no OS feature to
// be absent. Packages are not signed (productsign, or relic, can sign the
// result) and not notarized.
//
// Checked without a Mac: libarchive (bsdtar) lists and extracts the xar
// and the payload, 7-Zip verifies every SHA-1, an independent reader
// (packaging/internal/pkgread) walks the BOM, and the BOM checksums match cksum(1).
// NOT checked, because it needs a Mac: that Installer.app / installer(8)
// accept the package, that lsbom(8) and pkgutil --payload-files read the
// BOM (its layout follows mkbom, whose output Installer is known to
// accept, but a multi-leaf BOM with a branch node was only checked against
// our own reader), and that Gatekeeper's handling of an unsigned package is
// acceptable. The architecture field of BOM records is always 3, as mkbom
// writes; Apple's tools record Mach-O CPU types there.
package macpkg

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// ComponentName is the name of the component package inside the product
// archive.
const ComponentName = "gatewayd.pkg"

// File is one entry of the payload.
type File struct {
	// Path is relative to the install location, slash-separated, e.g.
	// "usr/local/bin/gatewayd". It must not be absolute or contain "..".
	Path string
	// Mode holds the permission bits (and setuid/setgid/sticky). Directories
	// carry fs.ModeDir; symbolic links carry fs.ModeSymlink and hold their
	// target in Data. Other types are refused.
	Mode fs.FileMode
	// Data is the file content (empty for directories).
	Data []byte
	// UID and GID own the file; the zero value is root:wheel.
	UID, GID int
}

// Options describes the package to build.
type Options struct {
	// Identifier is the package identifier, e.g. "org.gatewayd.pkg".
	Identifier string
	// Version is the package version, e.g. "1.2.3".
	Version string
	// Title is shown by Installer; empty means Identifier.
	Title string
	// InstallLocation is where the payload root lands; empty means "/".
	InstallLocation string
	// Files is the payload. Parent directories that are not listed are
	// added with mode 0755, root:wheel.
	Files []File
	// Preinstall and Postinstall are shell scripts run as root by
	// installer(8) ($1 package path, $2 install location, $3 target
	// volume). Either may be nil; with both nil the package has no Scripts.
	Preinstall, Postinstall []byte
	// MTime stamps every entry and the archive; the zero value means the
	// Unix epoch. Fix it (e.g. from SOURCE_DATE_EPOCH) for reproducible
	// builds.
	MTime time.Time
	// HostArchitectures restricts the hosts Installer accepts, e.g.
	// "arm64,x86_64"; empty leaves the attribute out (any host).
	HostArchitectures string
	// MinOSVersion is the lowest macOS version, e.g. "12.0"; empty means
	// no restriction.
	MinOSVersion string
	// License, when set, is named in the Distribution (an SPDX comment and
	// a <license file="LICENSE"/> that Installer shows before installing)
	// and its text is stored as Resources/LICENSE.
	License *License
}

// License is the package's license.
type License struct {
	// SPDX is the SPDX license identifier, e.g. "Apache-2.0".
	SPDX string
	// Text is the full license text (plain text).
	Text []byte
}

// LicenseResource is the xar path of the license text; the Distribution's
// <license file=…> names it relative to Resources/.
const LicenseResource = "Resources/LICENSE"

// entry is one normalised payload entry.
type entry struct {
	rel  string // "" for the root, else "usr/local/bin/gatewayd"
	path string // cpio/BOM name: "." or "./usr/local/bin/gatewayd"
	mode uint32 // type bits | permissions, as in st_mode
	uid  int
	gid  int
	data []byte // content, or link target for symlinks
}

// unixMode converts an fs.FileMode to st_mode bits.
func unixMode(m fs.FileMode) (uint32, error) {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	switch m.Type() {
	case 0:
		return u | cpioTypeRegular, nil
	case fs.ModeDir:
		return u | cpioTypeDir, nil
	case fs.ModeSymlink:
		return u | cpioTypeSymlink, nil
	}
	return 0, fmt.Errorf("file type %v is not supported (use a regular file, directory or symlink)", m.Type())
}

// payloadEntries validates files, adds the root and implied parents, and
// returns the entries in depth-first order with parents first (cpio order).
func payloadEntries(files []File) ([]*entry, error) {
	byRel := map[string]*entry{"": {rel: "", path: ".", mode: cpioTypeDir | 0o755}}
	var addParents func(rel string)
	addParents = func(rel string) {
		dir := path.Dir(rel)
		if dir == "." {
			return
		}
		if _, ok := byRel[dir]; !ok {
			byRel[dir] = &entry{rel: dir, path: "./" + dir, mode: cpioTypeDir | 0o755}
		}
		addParents(dir)
	}
	explicit := map[string]bool{}
	for _, f := range files {
		p := f.Path
		if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("payload path %q must be relative and clean, like \"usr/local/bin/gatewayd\"", f.Path)
		}
		if explicit[p] {
			return nil, fmt.Errorf("payload path %q is listed twice; list each path once", p)
		}
		explicit[p] = true
		mode, err := unixMode(f.Mode)
		if err != nil {
			return nil, fmt.Errorf("payload path %q: %w", p, err)
		}
		if f.UID < 0 || f.GID < 0 {
			return nil, fmt.Errorf("payload path %q: negative owner %d:%d; use 0:0 for root:wheel", p, f.UID, f.GID)
		}
		if mode&0o170000 == cpioTypeDir && len(f.Data) != 0 {
			return nil, fmt.Errorf("payload path %q is a directory with data; drop Data or the fs.ModeDir bit", p)
		}
		if mode&0o170000 == cpioTypeSymlink && len(f.Data) == 0 {
			return nil, fmt.Errorf("payload path %q is a symlink without a target; put the target in Data", p)
		}
		byRel[p] = &entry{rel: p, path: "./" + p, mode: mode, uid: f.UID, gid: f.GID, data: f.Data}
	}
	for rel := range explicit {
		addParents(rel)
	}
	out := make([]*entry, 0, len(byRel))
	for _, e := range byRel {
		if e.rel != "" {
			if parent, ok := byRel[path.Dir(e.rel)]; ok && path.Dir(e.rel) != "." && parent.mode&0o170000 != cpioTypeDir {
				return nil, fmt.Errorf("payload path %q is inside %q, which is not a directory", e.rel, parent.rel)
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return lessPath(out[i].rel, out[j].rel) })
	return out, nil
}

// lessPath orders paths component by component, so a directory comes
// right before its contents.
func lessPath(a, b string) bool {
	if a == "" || b == "" {
		return a == "" && b != ""
	}
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// gzipCpio writes entries as a gzip-compressed odc cpio archive.
func gzipCpio(entries []*entry, mtime int64) ([]byte, error) {
	var c cpioWriter
	for _, e := range entries {
		if err := c.add(e.path, e.mode, e.uid, e.gid, mtime, e.data); err != nil {
			return nil, err
		}
	}
	raw, err := c.finish()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// installKBytes is the sum of the payload's file and link sizes, each
// rounded up to whole KiB.
func installKBytes(entries []*entry) int64 {
	var kb int64
	for _, e := range entries {
		kb += (int64(len(e.data)) + 1023) / 1024
	}
	return kb
}

type pkgInfoXML struct {
	XMLName              xml.Name `xml:"pkg-info"`
	FormatVersion        string   `xml:"format-version,attr"`
	Identifier           string   `xml:"identifier,attr"`
	Version              string   `xml:"version,attr"`
	InstallLocation      string   `xml:"install-location,attr"`
	Auth                 string   `xml:"auth,attr"`
	OverwritePermissions string   `xml:"overwrite-permissions,attr"`
	Relocatable          string   `xml:"relocatable,attr"`
	PostinstallAction    string   `xml:"postinstall-action,attr"`
	Payload              struct {
		NumberOfFiles int   `xml:"numberOfFiles,attr"`
		InstallKBytes int64 `xml:"installKBytes,attr"`
	} `xml:"payload"`
	BundleVersion struct{} `xml:"bundle-version"`
	Scripts       *struct {
		Preinstall  *pkgScript `xml:"preinstall,omitempty"`
		Postinstall *pkgScript `xml:"postinstall,omitempty"`
	} `xml:"scripts,omitempty"`
}

type pkgScript struct {
	File string `xml:"file,attr"`
}

type distributionXML struct {
	XMLName        xml.Name `xml:"installer-gui-script"`
	MinSpecVersion string   `xml:"minSpecVersion,attr"`
	SPDX           string   `xml:",comment"`
	Title          string   `xml:"title"`
	License        *struct {
		File     string `xml:"file,attr"`
		MIMEType string `xml:"mime-type,attr"`
	} `xml:"license,omitempty"`
	Options struct {
		Customize         string `xml:"customize,attr"`
		RequireScripts    string `xml:"require-scripts,attr"`
		HostArchitectures string `xml:"hostArchitectures,attr,omitempty"`
	} `xml:"options"`
	Domains struct {
		Anywhere        string `xml:"enable_anywhere,attr"`
		CurrentUserHome string `xml:"enable_currentUserHome,attr"`
		LocalSystem     string `xml:"enable_localSystem,attr"`
	} `xml:"domains"`
	VolumeCheck *struct {
		OSVersions struct {
			OSVersion struct {
				Min string `xml:"min,attr"`
			} `xml:"os-version"`
		} `xml:"allowed-os-versions"`
	} `xml:"volume-check,omitempty"`
	Outline struct {
		Line struct {
			Choice string `xml:"choice,attr"`
			Line   struct {
				Choice string `xml:"choice,attr"`
			} `xml:"line"`
		} `xml:"line"`
	} `xml:"choices-outline"`
	Choices []distChoice `xml:"choice"`
	PkgRef  struct {
		ID            string `xml:"id,attr"`
		Version       string `xml:"version,attr"`
		Auth          string `xml:"auth,attr"`
		OnConclusion  string `xml:"onConclusion,attr"`
		InstallKBytes int64  `xml:"installKBytes,attr"`
		Ref           string `xml:",chardata"`
	} `xml:"pkg-ref"`
}

type distChoice struct {
	ID      string `xml:"id,attr"`
	Visible string `xml:"visible,attr,omitempty"`
	Title   string `xml:"title,attr,omitempty"`
	PkgRef  *struct {
		ID string `xml:"id,attr"`
	} `xml:"pkg-ref,omitempty"`
}

func marshalXML(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, err
	}
	out := append([]byte(xml.Header), b...)
	return append(out, '\n'), nil
}

// Build writes a product archive for o to w: a xar holding Distribution
// and gatewayd.pkg/{Bom,Payload,Scripts,PackageInfo}. Scripts is left out
// when o has neither script.
func Build(w io.Writer, o Options) error {
	if o.Identifier == "" || o.Version == "" {
		return errors.New("macpkg: Options.Identifier and Options.Version are required (e.g. \"org.gatewayd.pkg\", \"1.2.3\")")
	}
	if o.Title == "" {
		o.Title = o.Identifier
	}
	if o.InstallLocation == "" {
		o.InstallLocation = "/"
	}
	mtime := o.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	if mtime.Unix() < 0 || mtime.Unix() > 1<<32-1 {
		return fmt.Errorf("macpkg: Options.MTime %v is outside 1970..2106, which BOM and cpio cannot store; pick a time in range", o.MTime)
	}
	mtime = mtime.Truncate(time.Second)

	entries, err := payloadEntries(o.Files)
	if err != nil {
		return fmt.Errorf("macpkg: %w", err)
	}
	payload, err := gzipCpio(entries, mtime.Unix())
	if err != nil {
		return fmt.Errorf("macpkg: payload: %w", err)
	}
	bom, err := buildBOM(entries, uint32(mtime.Unix()))
	if err != nil {
		return fmt.Errorf("macpkg: %w", err)
	}
	kb := installKBytes(entries)

	var info pkgInfoXML
	info.FormatVersion = "2"
	info.Identifier = o.Identifier
	info.Version = o.Version
	info.InstallLocation = o.InstallLocation
	info.Auth = "root"
	info.OverwritePermissions = "false"
	info.Relocatable = "false"
	info.PostinstallAction = "none"
	info.Payload.NumberOfFiles = len(entries)
	info.Payload.InstallKBytes = kb

	var scripts []byte
	if o.Preinstall != nil || o.Postinstall != nil {
		info.Scripts = &struct {
			Preinstall  *pkgScript `xml:"preinstall,omitempty"`
			Postinstall *pkgScript `xml:"postinstall,omitempty"`
		}{}
		se := []*entry{{rel: "", path: ".", mode: cpioTypeDir | 0o755}}
		if o.Postinstall != nil {
			info.Scripts.Postinstall = &pkgScript{File: "./postinstall"}
			se = append(se, &entry{rel: "postinstall", path: "./postinstall", mode: cpioTypeRegular | 0o755, data: o.Postinstall})
		}
		if o.Preinstall != nil {
			info.Scripts.Preinstall = &pkgScript{File: "./preinstall"}
			se = append(se, &entry{rel: "preinstall", path: "./preinstall", mode: cpioTypeRegular | 0o755, data: o.Preinstall})
		}
		if scripts, err = gzipCpio(se, mtime.Unix()); err != nil {
			return fmt.Errorf("macpkg: scripts: %w", err)
		}
	}
	pkgInfo, err := marshalXML(info)
	if err != nil {
		return fmt.Errorf("macpkg: PackageInfo: %w", err)
	}

	var d distributionXML
	d.MinSpecVersion = "2"
	d.Title = o.Title
	var resources *xarNode
	if o.License != nil {
		if o.License.SPDX == "" || strings.Contains(o.License.SPDX, "--") || len(o.License.Text) == 0 {
			return errors.New("macpkg: Options.License needs an SPDX identifier (e.g. \"Apache-2.0\") and the license text")
		}
		d.SPDX = " SPDX-License-Identifier: " + o.License.SPDX + " "
		d.License = &struct {
			File     string `xml:"file,attr"`
			MIMEType string `xml:"mime-type,attr"`
		}{File: path.Base(LicenseResource), MIMEType: "text/plain"}
		resources = &xarNode{name: path.Dir(LicenseResource), dir: true, mode: 0o755, children: []*xarNode{
			{name: path.Base(LicenseResource), mode: 0o644, data: o.License.Text, compress: true},
		}}
	}
	d.Options.Customize = "never"
	d.Options.RequireScripts = "false"
	d.Options.HostArchitectures = o.HostArchitectures
	d.Domains.Anywhere = "false"
	d.Domains.CurrentUserHome = "false"
	d.Domains.LocalSystem = "true"
	if o.MinOSVersion != "" {
		d.VolumeCheck = &struct {
			OSVersions struct {
				OSVersion struct {
					Min string `xml:"min,attr"`
				} `xml:"os-version"`
			} `xml:"allowed-os-versions"`
		}{}
		d.VolumeCheck.OSVersions.OSVersion.Min = o.MinOSVersion
	}
	d.Outline.Line.Choice = "default"
	d.Outline.Line.Line.Choice = o.Identifier
	d.Choices = []distChoice{
		{ID: "default", Title: o.Title},
		{ID: o.Identifier, Visible: "false", PkgRef: &struct {
			ID string `xml:"id,attr"`
		}{ID: o.Identifier}},
	}
	d.PkgRef.ID = o.Identifier
	d.PkgRef.Version = o.Version
	d.PkgRef.Auth = "root"
	d.PkgRef.OnConclusion = "none"
	d.PkgRef.InstallKBytes = kb
	d.PkgRef.Ref = "#" + ComponentName
	dist, err := marshalXML(d)
	if err != nil {
		return fmt.Errorf("macpkg: Distribution: %w", err)
	}

	component := &xarNode{name: ComponentName, dir: true, mode: 0o755, children: []*xarNode{
		{name: "Bom", mode: 0o644, data: bom, compress: true},
		{name: "Payload", mode: 0o644, data: payload},
	}}
	if scripts != nil {
		component.children = append(component.children, &xarNode{name: "Scripts", mode: 0o644, data: scripts})
	}
	component.children = append(component.children, &xarNode{name: "PackageInfo", mode: 0o644, data: pkgInfo, compress: true})
	nodes := []*xarNode{{name: "Distribution", mode: 0o644, data: dist, compress: true}}
	if resources != nil {
		nodes = append(nodes, resources)
	}
	nodes = append(nodes, component)
	if err := writeXar(w, nodes, mtime); err != nil {
		return fmt.Errorf("macpkg: %w", err)
	}
	return nil
}
