package pkgbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

var (
	// v1.2.3[-pre]-N-gHASH, as `git describe --tags --long` prints it.
	describeTagRE = regexp.MustCompile(`^v?([0-9]+\.[0-9]+\.[0-9]+)(?:-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]{4,40})$`)
	// A bare abbreviated commit: `git describe --always` without any tag.
	describeHashRE = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// What both dpkg and rpm accept as an upstream version without a
	// Debian revision or an RPM release: starts with a digit, no '-', no
	// ':' (no epoch), no '_'.
	packageVersionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// Version maps `git describe --tags --long --always --dirty` output to a
// version valid for both dpkg and rpm, ordered the way the releases are:
//
//	v1.2.3-0-gabc1234          → 1.2.3
//	v1.2.3-rc.1-0-gabc1234     → 1.2.3~rc.1          (sorts before 1.2.3)
//	v1.2.3-4-gabc1234          → 1.2.3+git4.gabc1234 (sorts after 1.2.3)
//	v1.2.3-0-gabc1234-dirty    → 1.2.3+dirty
//	abc1234 (no tag yet)       → 0.0.0+git<commits>.gabc1234
//
// commits is the number of commits on HEAD (`git rev-list --count HEAD`),
// used only when there is no tag, so untagged builds still increase.
func Version(describe string, commits int) (string, error) {
	d := strings.TrimSpace(describe)
	d, dirty := strings.CutSuffix(d, "-dirty")
	var base, pre, hash string
	n := 0
	switch {
	case describeTagRE.MatchString(d):
		m := describeTagRE.FindStringSubmatch(d)
		base, pre, hash = m[1], m[2], m[4]
		n, _ = strconv.Atoi(m[3])
	case describeHashRE.MatchString(d):
		base, hash, n = "0.0.0", d, commits
	default:
		return "", fmt.Errorf("cannot map git describe output %q to a package version: tag releases as vMAJOR.MINOR.PATCH (or pass -version)", describe)
	}
	v := base
	if pre != "" {
		v += "~" + pre
	}
	var local []string
	if n > 0 || base == "0.0.0" && pre == "" {
		local = append(local, "git"+strconv.Itoa(n), "g"+hash)
	}
	if dirty {
		local = append(local, "dirty")
	}
	if len(local) > 0 {
		v += "+" + strings.Join(local, ".")
	}
	return v, CheckVersion(v)
}

// CheckVersion reports whether v can be a deb and rpm version as the
// packages use it (no Debian revision, no epoch, no '-').
func CheckVersion(v string) error {
	if !packageVersionRE.MatchString(v) {
		return fmt.Errorf("invalid package version %q: start with a digit and use only letters, digits, '.', '+' and '~' (no '-': dpkg and rpm use it for the revision)", v)
	}
	return nil
}

// GitVersion returns the package version of the checkout at repoRoot (see
// Version).
func GitVersion(ctx context.Context, repoRoot string) (string, error) {
	describe, err := git(ctx, repoRoot, "describe", "--tags", "--long", "--always", "--dirty", "--match", "v[0-9]*")
	if err != nil {
		return "", err
	}
	count := 0
	if out, err := git(ctx, repoRoot, "rev-list", "--count", "HEAD"); err == nil {
		count, _ = strconv.Atoi(out)
	}
	return Version(describe, count)
}

// GitCommit returns the abbreviated commit of HEAD, or "" outside git.
func GitCommit(ctx context.Context, repoRoot string) string {
	out, err := git(ctx, repoRoot, "rev-parse", "--short", "HEAD")
	if err != nil {
		return ""
	}
	return out
}

// SourceDateEpoch returns $SOURCE_DATE_EPOCH when set, else the commit time
// of HEAD: the one timestamp every packaged file and archive carries, so
// that builds are reproducible.
func SourceDateEpoch(ctx context.Context, repoRoot string) (int64, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: use seconds since 1970, or unset it", s)
		}
		return n, nil
	}
	out, err := git(ctx, repoRoot, "log", "-1", "--format=%ct")
	if err != nil {
		return 0, fmt.Errorf("no SOURCE_DATE_EPOCH and no git commit time: %w", err)
	}
	return strconv.ParseInt(out, 10, 64)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s (run from a git checkout, or pass -version and set SOURCE_DATE_EPOCH)", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
