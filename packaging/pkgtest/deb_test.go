package pkgtest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/packaging/pkgbuild"
	"github.com/gatewayd/gatewayd/units"
)

// wantFiles are the regular files of the deb (the rpm has the same, with
// zsh's completion in site-functions and no lintian overrides).
var wantFiles = []string{
	"/etc/gatewayd/config.json",
	"/usr/bin/gatewayctl",
	"/usr/bin/gatewayd",
	"/usr/lib/systemd/system-preset/90-gatewayd.preset",
	"/usr/lib/systemd/system/gatewayd.service",
	"/usr/lib/systemd/system/gatewayd.socket",
	"/usr/lib/systemd/user-preset/90-gatewayd.preset",
	"/usr/lib/systemd/user/gatewayd.service",
	"/usr/lib/systemd/user/gatewayd.socket",
	"/usr/lib/sysusers.d/gatewayd.conf",
	"/usr/share/bash-completion/completions/gatewayctl",
	"/usr/share/doc/gatewayd/changelog.Debian.gz",
	"/usr/share/doc/gatewayd/config.md",
	"/usr/share/doc/gatewayd/copyright",
	"/usr/share/doc/gatewayd/protocol.md",
	"/usr/share/doc/gatewayd/runbook.md",
	"/usr/share/fish/vendor_completions.d/gatewayctl.fish",
	"/usr/share/lintian/overrides/gatewayd",
	"/usr/share/man/man1/gatewayctl.1.gz",
	"/usr/share/man/man5/gatewayd.json.5.gz",
	"/usr/share/man/man8/gatewayd.8.gz",
	"/usr/share/zsh/vendor-completions/_gatewayctl",
}

func TestDebControlAndFiles(t *testing.T) {
	res := packages(t)
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	want := "gatewayd_" + res.Version + "_" + debArch() + ".deb"
	if filepath.Base(res.Deb) != want {
		t.Errorf("deb is named %s, want %s", filepath.Base(res.Deb), want)
	}
	fields := mustRun(t, nil, dpkgDeb, "-f", res.Deb, "Package", "Version", "Architecture", "Depends")
	for _, w := range []string{"Package: gatewayd", "Version: " + res.Version, "Architecture: " + debArch(), "Depends: systemd | systemd-sysusers"} {
		if !strings.Contains(fields, w+"\n") {
			t.Errorf("control lacks %q:\n%s", w, fields)
		}
	}

	var files []string
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, nil, dpkgDeb, "-c", res.Deb)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[0], "-") {
			files = append(files, strings.TrimPrefix(f[5], "."))
			if f[1] != "root/root" && f[1] != "0/0" {
				t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
			}
		}
	}
	sort.Strings(files)
	if !slices.Equal(files, wantFiles) {
		t.Errorf("deb files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(wantFiles, "\n"))
	}

	ctl := t.TempDir()
	mustRun(t, nil, dpkgDeb, "-e", res.Deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || string(conffiles) != "/etc/gatewayd/config.json\n" {
		t.Errorf("conffiles = %q (%v), want the config file only", conffiles, err)
	}
	// The scripts in the deb are the repository's, byte for byte.
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		got, err1 := os.ReadFile(filepath.Join(ctl, s))
		src, err2 := os.ReadFile(filepath.Join(repoRoot, "packaging/deb", s))
		if err1 != nil || err2 != nil || !bytes.Equal(got, src) {
			t.Errorf("deb %s differs from packaging/deb/%s (%v, %v)", s, s, err1, err2)
		}
	}
}

// TestUnitsMatchInstall asserts that the packaged units are byte for byte
// what `gatewayctl install` renders for the default profile with the
// packaged binary's version, so doctor reports no drift on a package host.
func TestUnitsMatchInstall(t *testing.T) {
	tree := debTree(t)
	out := mustRun(t, nil, filepath.Join(tree, "usr/bin/gatewayctl"), "version", "--json", "--url", "ws://127.0.0.1:1", "--timeout", "1s")
	var v struct {
		Client struct{ Version string } `json:"client"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("gatewayctl version --json: %v\n%s", err, out)
	}
	if v.Client.Version != packages(t).Version {
		t.Errorf("packaged gatewayctl says version %q, the package is %q", v.Client.Version, packages(t).Version)
	}
	profile, err := config.NewProfile("", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scope units.Scope
		dir   string
	}{{units.ScopeSystem, "usr/lib/systemd/system"}, {units.ScopeUser, "usr/lib/systemd/user"}} {
		// The parameters platform/service passes for `gatewayctl install`
		// of the default profile, spelled out independently of pkgbuild.
		files, err := units.Render(units.Params{Scope: tc.scope, Port: profile.DefaultPort(), ExecPath: "/usr/bin/gatewayd", Version: v.Client.Version})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 2 {
			t.Fatalf("units.Render gave %d files", len(files))
		}
		for _, f := range files {
			got, err := os.ReadFile(filepath.Join(tree, tc.dir, f.Name))
			if err != nil {
				t.Fatalf("packaged %s unit: %v", tc.scope, err)
			}
			if !bytes.Equal(got, f.Data) {
				t.Errorf("packaged /%s/%s differs from what gatewayctl install renders:\n--- package\n%s\n--- install\n%s", tc.dir, f.Name, got, f.Data)
			}
		}
	}
}

// apache20SHA256 is the SHA-256 of the standard Apache-2.0 text as
// apache.org publishes it (LICENSE-2.0.txt; Debian's
// /usr/share/common-licenses/Apache-2.0 is the same file).
const apache20SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// TestLicense checks the license: the full Apache-2.0 text at the
// repository root, and a machine-readable (DEP-5) copyright in the deb
// whose every Files paragraph is Apache-2.0 with the standalone License
// paragraph present.
func TestLicense(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	if err != nil {
		t.Fatalf("LICENSE at the repository root: %v", err)
	}
	if h := sha256.Sum256(text); hex.EncodeToString(h[:]) != apache20SHA256 {
		t.Errorf("LICENSE is not the standard Apache-2.0 text (sha256 %x, want %s)", h, apache20SHA256)
	}
	cr, err := os.ReadFile(filepath.Join(debTree(t), "usr/share/doc/gatewayd/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	paras := strings.Split(strings.TrimSpace(string(cr)), "\n\n")
	if !strings.HasPrefix(paras[0], "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("copyright is not DEP-5 (no Format: header):\n%s", paras[0])
	}
	var files, standalone int
	for _, p := range paras[1:] {
		lic := regexp.MustCompile(`(?m)^License: (.*)$`).FindStringSubmatch(p)
		switch {
		case lic == nil:
			t.Errorf("copyright paragraph without License:\n%s", p)
		case strings.HasPrefix(p, "Files:"):
			files++
			if lic[1] != "Apache-2.0" {
				t.Errorf("copyright Files paragraph has License: %s, want Apache-2.0", lic[1])
			}
		case lic[1] == "Apache-2.0" && strings.Contains(p, "/usr/share/common-licenses/Apache-2.0"):
			standalone++
		}
	}
	if files == 0 || standalone != 1 {
		t.Errorf("copyright has %d Files paragraphs and %d standalone Apache-2.0 License paragraphs (want ≥1 and 1 naming /usr/share/common-licenses/Apache-2.0):\n%s", files, standalone, cr)
	}
}

func TestDefaultConfigLoads(t *testing.T) {
	tree := debTree(t)
	p := filepath.Join(tree, "etc/gatewayd/config.json")
	l, err := config.Load(p)
	if err != nil {
		t.Fatalf("the packaged config does not load: %v", err)
	}
	if err := l.Config.WithDefaults().Validate(); err != nil {
		t.Fatalf("the packaged config is invalid: %v", err)
	}
	g := l.Config.Gateway
	if g.Port != pkgbuild.DefaultPort() || g.Bind != config.BindLoopback || g.Auth.Mode != config.AuthToken || g.Auth.Token != "" || g.Auth.Password != "" {
		t.Errorf("packaged config = %+v: want the default port on loopback with token auth and no secret in the file", g)
	}
	sysusers, err := os.ReadFile(filepath.Join(tree, "usr/lib/sysusers.d/gatewayd.conf"))
	if err != nil || !regexp.MustCompile(`(?m)^u gatewayd - "[^"]+" /var/lib/gatewayd -$`).Match(sysusers) {
		t.Errorf("sysusers.d/gatewayd.conf = %q (%v), want a u line for gatewayd", sysusers, err)
	}
	pre, err := os.ReadFile(filepath.Join(repoRoot, "packaging/rpm/pre"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(regexp.MustCompile(`(?m)^u .*$`).FindString(string(sysusers)))
	if !strings.Contains(string(pre), "'"+line+"'") {
		t.Errorf("packaging/rpm/pre does not create the account with the sysusers.d line %q", line)
	}
}

func gunzip(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

// manPages are the man pages every package ships: the installed path
// under the man directory, the .TH line the build writes (date from
// testEpoch) and the NAME line's start.
var manPages = []struct{ file, th, name string }{
	{"man8/gatewayd.8", `.TH GATEWAYD 8 "2025-01-01"`, `gatewayd \- `},
	{"man1/gatewayctl.1", `.TH GATEWAYCTL 1 "2025-01-01"`, `gatewayctl \- `},
	{"man5/gatewayd.json.5", `.TH GATEWAYD.JSON 5 "2025-01-01"`, `gatewayd.json \- `},
}

// docFiles are the documents every package ships in its doc directory,
// byte for byte the repository's.
var docFiles = []string{"runbook.md", "config.md", "protocol.md"}

// checkManPage checks one man page's roff: its .TH line (dated
// SOURCE_DATE_EPOCH unless the packages come from make package), its NAME
// line, and that man renders it without a warning, as lintian runs it
// (its width, 120 columns, its flags).
func checkManPage(t *testing.T, file, th, name string, roff []byte) {
	t.Helper()
	man := tool(t, "man", "man-db")
	if os.Getenv("GATEWAYD_DIST") == "" && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(th)+` `).Match(roff) {
		t.Errorf("%s has no line %q… (date from SOURCE_DATE_EPOCH)", file, th)
	}
	if !regexp.MustCompile(`(?m)^\.SH NAME\n` + regexp.QuoteMeta(name) + `\S`).Match(roff) {
		t.Errorf("%s has no NAME section starting %q", file, name)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(p, roff, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MANWIDTH=120", "LC_ALL=C.UTF-8", "MANROFFSEQ=")
	out, code := run(t, env, man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", p)
	if code != 0 {
		t.Fatalf("man -l %s: exit %d\n%s", file, code, out)
	}
	// Messages of man, its preprocessors and troff; the page's own text
	// is indented.
	if lines := regexp.MustCompile(`(?m)^(?:troff|tbl|grotty|man|preconv|warning|error)\b.*$`).FindAllString(out, -1); len(lines) > 0 {
		t.Errorf("man --warnings -l %s reports problems:\n%s", file, strings.Join(lines, "\n"))
	}
}

// TestManPagesAndCompletions checks the deb's man pages (built from
// docs/), documents and completions.
func TestManPagesAndCompletions(t *testing.T) {
	tree := debTree(t)
	for _, m := range manPages {
		checkManPage(t, m.file, m.th, m.name, gunzip(t, filepath.Join(tree, "usr/share/man", m.file+".gz")))
	}
	for _, d := range docFiles {
		got, err := os.ReadFile(filepath.Join(tree, "usr/share/doc/gatewayd", d))
		want, err2 := os.ReadFile(filepath.Join(repoRoot, "docs", d))
		if err != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("/usr/share/doc/gatewayd/%s is not docs/%s (%v, %v)", d, d, err, err2)
		}
	}

	ctl := filepath.Join(tree, "usr/bin/gatewayctl")
	for shell, p := range map[string]string{
		"bash": "usr/share/bash-completion/completions/gatewayctl",
		"zsh":  "usr/share/zsh/vendor-completions/_gatewayctl",
		"fish": "usr/share/fish/vendor_completions.d/gatewayctl.fish",
	} {
		got, err := os.ReadFile(filepath.Join(tree, p))
		if err != nil {
			t.Fatal(err)
		}
		if want := mustRun(t, nil, ctl, "completion", shell); string(got) != want {
			t.Errorf("packaged %s completion differs from `gatewayctl completion %s`", shell, shell)
		}
	}
}

// TestLintian runs lintian with every tag level: anything it prints beyond
// the overrides shipped in the package fails.
func TestLintian(t *testing.T) {
	res := packages(t)
	lintian := tool(t, "lintian", "lintian")
	out, code := run(t, append(os.Environ(), "HOME="+t.TempDir()), lintian, "-E", "-I", "--pedantic", "--tag-display-limit", "0", "--fail-on", "error,warning,info,pedantic", res.Deb)
	var tags []string
	for _, l := range strings.Split(out, "\n") {
		if regexp.MustCompile(`^[EWIPX]: `).MatchString(l) {
			tags = append(tags, l)
		}
	}
	if code != 0 || len(tags) > 0 {
		t.Errorf("lintian: exit %d, tags:\n%s\n(fix them, or add a documented override to packaging/lintian-overrides)\n%s", code, strings.Join(tags, "\n"), out)
	}
}

// TestMaintainerScriptsLint runs sh -n, shellcheck -s sh and checkbashisms
// on every maintainer script (deb, rpm and macOS).
func TestMaintainerScriptsLint(t *testing.T) {
	scripts := maintainerScripts(t)
	shellcheck := tool(t, "shellcheck", "shellcheck")
	checkbashisms := tool(t, "checkbashisms", "devscripts")
	for _, s := range scripts {
		name := strings.TrimPrefix(s, repoRoot+"/")
		if out, code := run(t, nil, "sh", "-n", s); code != 0 {
			t.Errorf("sh -n %s: %s", name, out)
		}
		if out, code := run(t, nil, shellcheck, "-s", "sh", s); code != 0 {
			t.Errorf("shellcheck -s sh %s:\n%s", name, out)
		}
		if out, code := run(t, nil, checkbashisms, "--posix", s); code != 0 {
			t.Errorf("checkbashisms --posix %s:\n%s", name, out)
		}
		fi, err := os.Stat(s)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v (%v), want 0755", name, fi.Mode().Perm(), err)
		}
	}
}

// treeState hashes every file, link and directory under root (except the
// dpkg database itself) so two states can be compared.
func treeState(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			st[rel] = "dir " + info.Mode().String()
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			st[rel] = "link " + l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			st[rel] = info.Mode().String() + " " + hex.EncodeToString(h[:8])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func hostFileHash(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing: " + err.Error()
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]) + " " + strconv.Itoa(len(b))
}

// TestDpkgScratchRoot installs, removes and purges the deb with
// `dpkg --root` in a scratch directory (the scripts run on the host with
// $DPKG_ROOT set, so any path they forget to prefix would show up on the
// host), and checks that purge leaves only the kept account behind.
func TestDpkgScratchRoot(t *testing.T) {
	res := packages(t)
	needRoot(t, "dpkg --root (file ownership in the scratch root)")
	dpkg := tool(t, "dpkg", "dpkg")
	tool(t, "deb-systemd-helper", "init-system-helpers")
	tool(t, "systemd-sysusers", "systemd")

	hostWatch := []string{"/var/lib/dpkg/status", "/etc/passwd", "/etc/group", "/var/log/dpkg.log"}
	before := map[string]string{}
	for _, p := range hostWatch {
		before[p] = hostFileHash(t, p)
	}
	hostPaths := []string{"/usr/bin/gatewayd", "/etc/gatewayd", "/var/lib/gatewayd", "/usr/lib/sysusers.d/gatewayd.conf", "/etc/systemd/system/sockets.target.wants/gatewayd.socket", "/var/lib/systemd/deb-systemd-helper-enabled/gatewayd.socket.dsh-also"}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("SKIPPING: the host already has %s (gatewayd installed here?); the leak check would be meaningless", p)
		}
	}

	// The scratch root holds what every Debian system has and the scripts
	// touch (dpkg's database, systemd's unit and state directories,
	// /var/log, the shadow tools' lock file), so that purge can be held to
	// leaving it exactly as it was.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc/systemd/system", "var/lib/systemd", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, mode := range map[string]os.FileMode{"var/lib/dpkg/status": 0o644, "var/lib/dpkg/available": 0o644, "etc/.pwd.lock": 0o600} {
		if err := os.WriteFile(filepath.Join(root, f), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	empty := treeState(t, root)
	dpkgArgs := func(args ...string) []string {
		return append([]string{"--root=" + root, "--log=" + filepath.Join(root, "dpkg.log"), "--force-script-chrootless", "--force-depends", "--force-not-root"}, args...)
	}
	mustRun(t, nil, dpkg, dpkgArgs("-i", res.Deb)...)

	installed := treeState(t, root)
	for _, want := range []string{"usr/bin/gatewayd", "usr/lib/systemd/system/gatewayd.socket", "etc/gatewayd/config.json", "etc/passwd"} {
		if _, ok := installed[want]; !ok {
			t.Errorf("after install the scratch root lacks %s", want)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !regexp.MustCompile(`(?m)^gatewayd:x:[0-9]+:[0-9]+:gatewayd gateway daemon:/var/lib/gatewayd:`).Match(passwd) {
		t.Errorf("systemd-sysusers did not create the gatewayd account in the scratch root:\n%s", passwd)
	}
	// Always on: the preset enables the socket and, through its Also=,
	// the service at boot.
	for link, unit := range map[string]string{
		"etc/systemd/system/sockets.target.wants/gatewayd.socket":     "/usr/lib/systemd/system/gatewayd.socket",
		"etc/systemd/system/multi-user.target.wants/gatewayd.service": "/usr/lib/systemd/system/gatewayd.service",
	} {
		if l := installed[link]; l != "link "+unit {
			t.Errorf("%s not enabled by the preset in the scratch root: /%s is %q", unit, link, l)
		}
	}
	if _, ok := installed["etc/systemd/system/sockets.target.wants/gatewayd.service"]; ok {
		t.Error("gatewayd.service is linked into sockets.target.wants")
	}

	// Reinstall over itself runs the upgrade path of the scripts.
	mustRun(t, nil, dpkg, dpkgArgs("-i", res.Deb)...)
	// State the service would have written, to check purge removes it.
	for _, d := range []string{"var/lib/gatewayd", "var/log/gatewayd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "data"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, nil, dpkg, dpkgArgs("-r", "gatewayd")...)
	removed := treeState(t, root)
	if _, ok := removed["usr/bin/gatewayd"]; ok {
		t.Error("remove left /usr/bin/gatewayd")
	}
	if _, ok := removed["etc/gatewayd/config.json"]; !ok {
		t.Error("remove deleted the conffile; only purge should")
	}
	mustRun(t, nil, dpkg, dpkgArgs("-P", "gatewayd")...)

	// What may remain: the dpkg database and log, and the kept account
	// (Debian keeps system users on purge) with sysusers' backups.
	kept := regexp.MustCompile(`^(dpkg\.log|etc|etc/(passwd|group|shadow|gshadow)-?|var|var/lib|var/lib/dpkg(/.*)?)$`)
	after := treeState(t, root)
	for p, st := range after {
		if _, ok := empty[p]; ok || kept.MatchString(p) {
			continue
		}
		t.Errorf("purge left %s (%s) in the scratch root", p, st)
	}
	for _, p := range hostWatch {
		if got := hostFileHash(t, p); got != before[p] {
			t.Errorf("the host's %s changed during the scratch install", p)
		}
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("the scratch install leaked %s onto the host", p)
		}
	}
}

// TestServiceHardening scores the shipped gatewayd.service with
// `systemd-analyze security --offline=true`: exposure must be ≤ 1.5.
func TestServiceHardening(t *testing.T) {
	tree := debTree(t)
	analyze := tool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(tree, "usr/lib/systemd/system/gatewayd.service")
	out, code := run(t, nil, analyze, "security", "--offline=true", "--threshold=15", "--no-pager", unit)
	m := regexp.MustCompile(`Overall exposure level for gatewayd\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level (exit %d):\n%s", code, out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure of the shipped gatewayd.service: %.1f", score)
	if score > 1.5 || code != 0 {
		t.Errorf("exposure %.1f (exit %d), want ≤ 1.5:\n%s", score, code, out)
	}
}
