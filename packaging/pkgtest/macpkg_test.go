package pkgtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/macho"
	"encoding/xml"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/packaging/internal/pkgread"
	"github.com/gatewayd/gatewayd/packaging/pkgbuild"
)

// macArch maps a package to its Mach-O CPU and Installer architecture.
func macArch(t *testing.T, p string) (macho.Cpu, string) {
	t.Helper()
	switch {
	case strings.HasSuffix(p, "-arm64.pkg"):
		return macho.CpuArm64, "arm64"
	case strings.HasSuffix(p, "-x86_64.pkg"):
		return macho.CpuAmd64, "x86_64"
	}
	t.Fatalf("package %s is neither -arm64.pkg nor -x86_64.pkg", p)
	return 0, ""
}

func TestMacPkgContents(t *testing.T) {
	res := packages(t)
	if len(res.Pkgs) != 2 {
		t.Fatalf("built %d macOS packages, want 2 (arm64, x86_64): %v", len(res.Pkgs), res.Pkgs)
	}
	for _, p := range res.Pkgs {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cpu, hostArch := macArch(t, p)
			if want := pkgbuild.MacPkgName(res.Version, map[string]string{"arm64": "arm64", "x86_64": "amd64"}[hostArch]); filepath.Base(p) != want {
				t.Errorf("package named %s, want %s", filepath.Base(p), want)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			x, err := pkgread.ReadXar(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("independent xar reader: %v", err)
			}
			get := func(name string) []byte {
				b, err := x.Extract(name)
				if err != nil {
					t.Fatalf("extract %s: %v", name, err)
				}
				return b
			}

			// Payload (cpio) and BOM agree on every path, mode, size and cksum.
			zr, err := gzip.NewReader(bytes.NewReader(get("gatewayd.pkg/Payload")))
			if err != nil {
				t.Fatal(err)
			}
			payload, err := pkgread.ReadCpio(zr)
			if err != nil {
				t.Fatalf("payload cpio: %v", err)
			}
			bom, err := pkgread.ReadBOM(get("gatewayd.pkg/Bom"))
			if err != nil {
				t.Fatalf("independent BOM reader: %v", err)
			}
			type rec struct {
				mode  uint32
				size  int
				cksum uint32
			}
			fromCpio, fromBOM := map[string]rec{}, map[string]rec{}
			files := map[string][]byte{}
			for _, e := range payload {
				r := rec{mode: e.Mode}
				if e.Mode&0o170000 != 0o040000 {
					r.size, r.cksum = len(e.Data), pkgread.Cksum(e.Data)
					files[e.Name] = e.Data
				}
				fromCpio[e.Name] = r
			}
			for _, b := range bom.Paths {
				r := rec{mode: uint32(b.Mode)}
				if b.Type != 2 {
					r.size, r.cksum = int(b.Size), b.Checksum
				}
				fromBOM[b.Path] = r
			}
			if len(fromCpio) != len(fromBOM) {
				t.Errorf("payload has %d entries, BOM %d", len(fromCpio), len(fromBOM))
			}
			for path, c := range fromCpio {
				if b, ok := fromBOM[path]; !ok || b != c {
					t.Errorf("%s: payload %+v, BOM %+v (present %v)", path, c, b, ok)
				}
			}
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			want := []string{
				"./Library/LaunchDaemons/org.gatewayd.gateway.plist",
				"./usr/local/bin/gatewayctl",
				"./usr/local/bin/gatewayd",
				"./usr/local/etc/bash_completion.d/gatewayctl",
				"./usr/local/share/doc/gatewayd/config.md",
				"./usr/local/share/doc/gatewayd/protocol.md",
				"./usr/local/share/doc/gatewayd/runbook.md",
				"./usr/local/share/fish/vendor_completions.d/gatewayctl.fish",
				"./usr/local/share/man/man1/gatewayctl.1",
				"./usr/local/share/man/man5/gatewayd.json.5",
				"./usr/local/share/man/man8/gatewayd.8",
				"./usr/local/share/zsh/site-functions/_gatewayctl",
			}
			if strings.Join(names, "\n") != strings.Join(want, "\n") {
				t.Errorf("payload files:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
			}
			// The man pages (uncompressed, as macOS keeps them) and the
			// documents, as in the deb.
			for _, m := range manPages {
				checkManPage(t, "pkg "+m.file, m.th, m.name, files["./usr/local/share/man/"+m.file])
			}
			for _, d := range docFiles {
				src, err := os.ReadFile(filepath.Join(repoRoot, "docs", d))
				if err != nil || !bytes.Equal(files["./usr/local/share/doc/gatewayd/"+d], src) {
					t.Errorf("pkg /usr/local/share/doc/gatewayd/%s is not docs/%s (%v)", d, d, err)
				}
			}
			for _, bin := range []string{"./usr/local/bin/gatewayd", "./usr/local/bin/gatewayctl"} {
				if fromCpio[bin].mode != 0o100755 {
					t.Errorf("%s mode %o, want 100755", bin, fromCpio[bin].mode)
				}
				f, err := macho.NewFile(bytes.NewReader(files[bin]))
				if err != nil {
					t.Errorf("%s is not a Mach-O binary: %v", bin, err)
					continue
				}
				if f.Cpu != cpu {
					t.Errorf("%s is for %v, want %v", bin, f.Cpu, cpu)
				}
			}

			// The LaunchDaemon parses as a plist and is what the launchd
			// renderer (gatewayctl install --scope system) writes.
			pl := files["./Library/LaunchDaemons/org.gatewayd.gateway.plist"]
			var job map[string]any
			if _, err := plist.Unmarshal(pl, &job); err != nil {
				t.Fatalf("LaunchDaemon plist: %v", err)
			}
			// Always on and never throttled (docs/packaging.md, "Always on").
			keep, _ := job["KeepAlive"].(map[string]any)
			if job["Label"] != "org.gatewayd.gateway" || job["UserName"] != "_gatewayd" || job["RunAtLoad"] != true ||
				keep["SuccessfulExit"] != false || job["ProcessType"] != "Interactive" {
				t.Errorf("LaunchDaemon = %v; want RunAtLoad, KeepAlive {SuccessfulExit: false}, ProcessType Interactive", job)
			}
			rendered, err := launchd.Render(launchd.Params{Scope: launchd.ScopeSystem, Port: pkgbuild.DefaultPort(), ExecPath: "/usr/local/bin/gatewayd", Version: res.Version})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pl, rendered) {
				t.Errorf("packaged plist differs from launchd.Render:\n%s", pl)
			}

			// Distribution and PackageInfo are well-formed XML with the
			// expected attributes.
			var dist struct {
				XMLName xml.Name `xml:"installer-gui-script"`
				Comment string   `xml:",comment"`
				License struct {
					File string `xml:"file,attr"`
				} `xml:"license"`
				Options struct {
					HostArchitectures string `xml:"hostArchitectures,attr"`
				} `xml:"options"`
				PkgRefs []struct {
					ID      string `xml:"id,attr"`
					Version string `xml:"version,attr"`
					Value   string `xml:",chardata"`
				} `xml:"pkg-ref"`
			}
			if err := xml.Unmarshal(get("Distribution"), &dist); err != nil {
				t.Fatalf("Distribution: %v", err)
			}
			// The license: SPDX id in the Distribution,
			// the repository's LICENSE shown by Installer.
			if strings.TrimSpace(dist.Comment) != "SPDX-License-Identifier: Apache-2.0" || dist.License.File != "LICENSE" {
				t.Errorf("Distribution names license %q / file %q, want SPDX-License-Identifier: Apache-2.0 and LICENSE", dist.Comment, dist.License.File)
			}
			if lic, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE")); err != nil || !bytes.Equal(get("Resources/LICENSE"), lic) {
				t.Errorf("the package's Resources/LICENSE is not the repository's LICENSE (%v)", err)
			}
			if dist.Options.HostArchitectures != hostArch {
				t.Errorf("Distribution hostArchitectures = %q, want %q", dist.Options.HostArchitectures, hostArch)
			}
			refOK := false
			for _, r := range dist.PkgRefs {
				refOK = refOK || strings.TrimSpace(r.Value) == "#gatewayd.pkg"
			}
			if !refOK {
				t.Errorf("Distribution has no pkg-ref to #gatewayd.pkg: %+v", dist.PkgRefs)
			}
			var info struct {
				XMLName    xml.Name `xml:"pkg-info"`
				Identifier string   `xml:"identifier,attr"`
				Version    string   `xml:"version,attr"`
				Location   string   `xml:"install-location,attr"`
				Payload    struct {
					Files int `xml:"numberOfFiles,attr"`
				} `xml:"payload"`
				Scripts struct {
					Pre struct {
						File string `xml:"file,attr"`
					} `xml:"preinstall"`
					Post struct {
						File string `xml:"file,attr"`
					} `xml:"postinstall"`
				} `xml:"scripts"`
			}
			if err := xml.Unmarshal(get("gatewayd.pkg/PackageInfo"), &info); err != nil {
				t.Fatalf("PackageInfo: %v", err)
			}
			if info.Identifier != "org.gatewayd.gatewayd" || info.Version != res.Version || info.Location != "/" || info.Payload.Files != len(payload) ||
				info.Scripts.Pre.File != "./preinstall" || info.Scripts.Post.File != "./postinstall" {
				t.Errorf("PackageInfo = %+v (payload has %d entries)", info, len(payload))
			}
		})
	}
}

// TestMacPkgTools checks the packages with libarchive and 7-Zip, which know
// nothing of our writer.
func TestMacPkgTools(t *testing.T) {
	res := packages(t)
	bsdtar := tool(t, "bsdtar", "libarchive-tools")
	sevenZ := tool(t, "7z", "p7zip-full")
	for _, p := range res.Pkgs {
		out := mustRun(t, nil, bsdtar, "-tvf", p)
		for _, w := range []string{" Distribution", " gatewayd.pkg/Bom", " gatewayd.pkg/Payload", " gatewayd.pkg/Scripts", " gatewayd.pkg/PackageInfo", " Resources/LICENSE"} {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("bsdtar -tvf %s does not list %s:\n%s", filepath.Base(p), w, out)
			}
		}
		out, code := run(t, nil, sevenZ, "t", p)
		if code != 0 || !strings.Contains(out, "Everything is Ok") {
			t.Errorf("7z t %s: exit %d\n%s", filepath.Base(p), code, out)
		}
	}
}

// TestReproducible builds every package a second time and compares bytes.
func TestReproducible(t *testing.T) {
	res := packages(t)
	if testing.Short() {
		t.Skip("SKIPPING in -short mode: rebuilds every package")
	}
	o := pkgbuild.Options{RepoRoot: repoRoot, OutDir: t.TempDir(), Version: res.Version}
	if os.Getenv("GATEWAYD_DIST") == "" {
		o.Commit, o.SourceDateEpoch = "pkgtest", testEpoch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	again, err := pkgbuild.Build(ctx, o)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if srcHash != "" && (sourceHash() != srcHash) {
		t.Skip("SKIPPING: the source tree changed between the two builds (someone is editing it), so the packages may differ legitimately; in CI the tree is fixed")
	}
	pairs := [][2]string{{res.Deb, again.Deb}, {res.RPM, again.RPM}}
	for i := range res.Pkgs {
		pairs = append(pairs, [2]string{res.Pkgs[i], again.Pkgs[i]})
	}
	for _, pr := range pairs {
		a, err1 := os.ReadFile(pr[0])
		b, err2 := os.ReadFile(pr[1])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s is not reproducible: two builds differ", filepath.Base(pr[0]))
		}
	}
}
