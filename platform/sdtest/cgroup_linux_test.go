package sdtest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHierarchies(t *testing.T) {
	const hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`
	const hybridSelf = `9:name=systemd:/
4:memory:/process_api/b87d
3:cpuset:/
1:cpu:/
0::/
`
	tests := []struct {
		name, mountinfo, self string
		want                  []hierarchy
		wantErr               string
	}{
		{
			name: "hybrid v1+v2 with a nested memory group", mountinfo: hybridMounts, self: hybridSelf,
			want: []hierarchy{
				{"/sys/fs/cgroup/cpu", "cgroup", "cpu", "/sys/fs/cgroup/cpu"},
				{"/sys/fs/cgroup/memory", "cgroup", "memory", "/sys/fs/cgroup/memory/process_api/b87d"},
				{"/sys/fs/cgroup/cpuset", "cgroup", "cpuset,clone_children", "/sys/fs/cgroup/cpuset"},
				{"/sys/fs/cgroup/systemd", "cgroup", "none,xattr,name=systemd", "/sys/fs/cgroup/systemd"},
				{"/sys/fs/cgroup/unified", "cgroup2", "", "/sys/fs/cgroup/unified"},
			},
		},
		{
			name:      "pure cgroup2 in a user session",
			mountinfo: "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
			self:      "0::/user.slice/user-1000.slice/session-2.scope\n",
			want:      []hierarchy{{"/sys/fs/cgroup", "cgroup2", "", "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"}},
		},
		{
			name:      "co-mounted controllers, mounted twice",
			mountinfo: "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n99 31 0:29 / /mnt/again rw - cgroup cgroup rw,cpu,cpuacct\n",
			self:      "2:cpu,cpuacct:/a/b\n",
			want:      []hierarchy{{"/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/a/b"}},
		},
		{
			name:      "mount of a sub-tree, escaped mount point",
			mountinfo: `50 31 0:38 /outer /srv/cg\040two rw - cgroup2 cgroup2 rw` + "\n",
			self:      "0::/outer/inner\n",
			want:      []hierarchy{{"/srv/cg two", "cgroup2", "", "/srv/cg two/inner"}},
		},
		{
			name:      "own group outside the mount",
			mountinfo: "50 31 0:38 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			self:      "0::/elsewhere\n",
			wantErr:   "lies outside the mount",
		},
		{
			name:      "inside a foreign cgroup namespace",
			mountinfo: "50 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			self:      "0::/../sibling\n",
			wantErr:   "lies outside the mount",
		},
		{
			name:      "no cgroup mounted",
			mountinfo: "22 1 0:21 / /proc rw - proc proc rw\n",
			self:      "0::/\n",
			wantErr:   "no cgroup hierarchy is mounted",
		},
		{
			name:      "garbage in /proc/self/cgroup",
			mountinfo: hybridMounts,
			self:      "nonsense\n",
			wantErr:   "want id:controllers:path",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHierarchies(tt.mountinfo, tt.self)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProcStart(t *testing.T) {
	if _, ok := procStart(0); ok {
		t.Error("pid 0 reported running")
	}
	a, ok := procStart(1)
	b, ok2 := procStart(1)
	if !ok || !ok2 || a != b {
		t.Errorf("pid 1 start = %d/%v then %d/%v, want a stable value", a, ok, b, ok2)
	}
	self, ok := procStart(-5)
	if ok || self != 0 {
		t.Errorf("negative pid = %d, %v", self, ok)
	}
}
