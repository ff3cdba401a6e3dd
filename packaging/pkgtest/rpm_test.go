package pkgtest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestRPMQueries(t *testing.T) {
	res := packages(t)
	rpm := tool(t, "rpm", "rpm")
	want := "gatewayd-" + res.Version + "-1."
	if !strings.HasPrefix(filepath.Base(res.RPM), want) {
		t.Errorf("rpm is named %s, want %s<arch>.rpm", filepath.Base(res.RPM), want)
	}
	// A private rpm database: queries of a package file never need the
	// host's, and this keeps it out of reach.
	dbArgs := func(args ...string) []string { return append([]string{"--dbpath", t.TempDir()}, args...) }

	var wantList []string
	for _, f := range wantFiles {
		switch f {
		case "/usr/share/lintian/overrides/gatewayd", "/usr/share/doc/gatewayd/changelog.Debian.gz":
		case "/usr/share/zsh/vendor-completions/_gatewayctl":
			wantList = append(wantList, "/usr/share/zsh/site-functions/_gatewayctl")
		default:
			wantList = append(wantList, f)
		}
	}
	wantList = append(wantList, "/usr/share/licenses/gatewayd/LICENSE")
	sort.Strings(wantList)
	list := strings.Fields(mustRun(t, nil, rpm, dbArgs("-qpl", res.RPM)...))
	if !slices.Equal(list, wantList) {
		t.Errorf("rpm -qpl:\n%s\nwant:\n%s", strings.Join(list, "\n"), strings.Join(wantList, "\n"))
	}
	if got := strings.TrimSpace(mustRun(t, nil, rpm, dbArgs("-qpc", res.RPM)...)); got != "/etc/gatewayd/config.json" {
		t.Errorf("rpm -qpc = %q, want the config file only", got)
	}
	// %config(noreplace): RPMFILE_CONFIG (1) | RPMFILE_NOREPLACE (16).
	flags := mustRun(t, nil, rpm, dbArgs("-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS}\n]", res.RPM)...)
	if !strings.Contains(flags, "/etc/gatewayd/config.json 17\n") {
		t.Errorf("config.json is not %%config(noreplace):\n%s", flags)
	}
	info := mustRun(t, nil, rpm, dbArgs("-qpi", res.RPM)...)
	for _, w := range []string{"Name        : gatewayd", "Version     : " + res.Version, "Release     : 1", "License     : Apache-2.0"} {
		if !strings.Contains(info, w) {
			t.Errorf("rpm -qpi lacks %q:\n%s", w, info)
		}
	}
	// %license: the full text, as in the repository's LICENSE.
	if got := strings.TrimSpace(mustRun(t, nil, rpm, dbArgs("-qpL", res.RPM)...)); got != "/usr/share/licenses/gatewayd/LICENSE" {
		t.Errorf("rpm -qpL = %q, want the Apache-2.0 text as %%license", got)
	}
	// %doc: the man pages, the documents and copyright.
	wantDoc := []string{"/usr/share/doc/gatewayd/copyright"}
	for _, m := range manPages {
		wantDoc = append(wantDoc, "/usr/share/man/"+m.file+".gz")
	}
	for _, d := range docFiles {
		wantDoc = append(wantDoc, "/usr/share/doc/gatewayd/"+d)
	}
	sort.Strings(wantDoc)
	if got := strings.Fields(mustRun(t, nil, rpm, dbArgs("-qpd", res.RPM)...)); !slices.Equal(got, wantDoc) {
		t.Errorf("rpm -qpd:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantDoc, "\n"))
	}
	if !strings.Contains(mustRun(t, nil, rpm, dbArgs("-qp", "--changelog", res.RPM)...), "socket-activated units") {
		t.Error("rpm has no changelog from packaging/changelog.yml")
	}

	// Each scriptlet is the repository's script (rpm prints the body
	// under a "<name>scriptlet (using /bin/sh):" header).
	scripts := mustRun(t, nil, rpm, dbArgs("-qp", "--scripts", res.RPM)...)
	sections := regexp.MustCompile(`(?m)^(preinstall|postinstall|preuninstall|postuninstall|posttrans) scriptlet \(using /bin/sh\):\n`).Split(scripts, -1)
	names := regexp.MustCompile(`(?m)^(preinstall|postinstall|preuninstall|postuninstall|posttrans) scriptlet`).FindAllStringSubmatch(scripts, -1)
	if len(names) != 5 {
		t.Fatalf("rpm --scripts shows %d scriptlets, want 5:\n%s", len(names), scripts)
	}
	files := map[string]string{"preinstall": "pre", "postinstall": "post", "preuninstall": "preun", "postuninstall": "postun", "posttrans": "posttrans"}
	for i, n := range names {
		src, err := os.ReadFile(filepath.Join(repoRoot, "packaging/rpm", files[n[1]]))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(sections[i+1]) != strings.TrimSpace(string(src)) {
			t.Errorf("rpm %s scriptlet differs from packaging/rpm/%s:\n%s", n[1], files[n[1]], sections[i+1])
		}
	}
	for _, w := range []string{
		"systemctl --no-reload preset gatewayd.socket gatewayd.service",
		"systemctl --no-reload disable --now gatewayd.socket gatewayd.service",
		"systemctl try-restart gatewayd.service",
		"/usr/bin/gatewayd --check-config --config",
		"systemd-sysusers --replace=/usr/lib/sysusers.d/gatewayd.conf -",
	} {
		if !strings.Contains(scripts, w) {
			t.Errorf("rpm scriptlets lack %q", w)
		}
	}
}

// TestRpmlint runs rpmlint the safe way: its unpacking goes through
// `rpm2cpio | cpio -id`, and the rpm holds absolute paths, so a cpio
// wrapper first on PATH adds --no-absolute-filenames, HOME is a scratch
// directory and the working directory is a temporary one.
func TestRpmlint(t *testing.T) {
	res := packages(t)
	rpmlint := tool(t, "rpmlint", "rpmlint")
	cpio := tool(t, "cpio", "cpio")
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nexec " + cpio + " --no-absolute-filenames \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "cpio"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	before := hostFileHash(t, "/usr/bin/gatewayd")
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "TMPDIR=" + t.TempDir()}
	out, code := run(t, env, rpmlint, "-c", filepath.Join(repoRoot, "packaging/rpmlint.toml"), res.RPM)
	if code != 0 || !strings.Contains(out, "0 errors, 0 warnings") {
		t.Errorf("rpmlint: exit %d (fix the rpm, or add a documented filter to packaging/rpmlint.toml):\n%s", code, out)
	}
	if after := hostFileHash(t, "/usr/bin/gatewayd"); after != before {
		t.Fatalf("rpmlint wrote /usr/bin/gatewayd on the host: the cpio wrapper did not hold")
	}
}
