package pkgbuild

import (
	"os/exec"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		describe string
		commits  int
		want     string
		wantErr  bool
	}{
		{"v1.2.3-0-gabc1234", 0, "1.2.3", false},
		{"1.2.3-0-gabc1234", 0, "1.2.3", false},
		{"v1.2.3-rc.1-0-gabc1234", 0, "1.2.3~rc.1", false},
		{"v1.2.3-4-gabc1234", 0, "1.2.3+git4.gabc1234", false},
		{"v1.2.3-rc.1-4-gabc1234", 0, "1.2.3~rc.1+git4.gabc1234", false},
		{"v1.2.3-0-gabc1234-dirty", 0, "1.2.3+dirty", false},
		{"v1.2.3-4-gabc1234-dirty\n", 0, "1.2.3+git4.gabc1234.dirty", false},
		{"abc1234", 17, "0.0.0+git17.gabc1234", false},
		{"abc1234-dirty", 17, "0.0.0+git17.gabc1234.dirty", false},
		{"release-2024", 0, "", true},
		{"", 0, "", true},
	}
	for _, tc := range tests {
		got, err := Version(tc.describe, tc.commits)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("Version(%q, %d) = %q, %v; want %q, error %v", tc.describe, tc.commits, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1.2.3", "0.0.0+git3.gabc", "1.0~rc1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range []string{"", "v1.2.3", "1.2.3-1", "1:1.2.3", "1.2 3", "1.2_3"} {
		if err := CheckVersion(v); err == nil {
			t.Errorf("CheckVersion(%q) = nil, want an error", v)
		}
	}
}

// TestVersionOrder checks with the real comparators that the mapping sorts
// the way releases do: pre-release < release < commits after it.
func TestVersionOrder(t *testing.T) {
	ordered := []string{"0.0.0+git5.gaaaa", "0.0.0+git6.gbbbb", "1.2.3~rc.1", "1.2.3~rc.1+git2.gcccc", "1.2.3", "1.2.3+dirty", "1.2.3+git1.gdddd", "1.2.4"}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("SKIPPING: dpkg not found, cannot compare versions with dpkg --compare-versions (CI runs on Debian, where dpkg is always installed)")
	}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if err := exec.Command(dpkg, "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg: %s is not < %s", a, b)
		}
		if rpm, err := exec.LookPath("rpm"); err == nil {
			out, err := exec.Command(rpm, "--eval", "%{lua: print(rpm.vercmp('"+a+"', '"+b+"'))}").Output()
			if err != nil || strings.TrimSpace(string(out)) != "-1" {
				t.Errorf("rpm: vercmp(%s, %s) = %q (%v), want -1", a, b, out, err)
			}
		}
	}
}
