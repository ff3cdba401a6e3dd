package service

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/launchd"
	"github.com/gatewayd/gatewayd/units"
)

// fakeLaunchctl plays launchd from the launchd/testdata print fixtures: it
// keeps whether the job is loaded and answers print with a fixture whose
// plist path is rewritten to where the job was bootstrapped from.
type fakeLaunchctl struct {
	t       *testing.T
	fixture string // print output while loaded
	loaded  bool
	from    string // plist path of the last bootstrap
	fail    string // a verb that exits 5
	calls   []string
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "launchd", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (f *fakeLaunchctl) run(_ context.Context, args ...string) (string, int, error) {
	f.calls = append(f.calls, strings.Join(args, " "))
	if args[0] == f.fail {
		return args[0] + " failed: 5: Input/output error", 5, nil
	}
	switch args[0] {
	case "print":
		if !f.loaded {
			return readFixture(f.t, "print-not-found.txt"), 113, nil
		}
		out := f.fixture
		if f.from != "" {
			out = strings.Replace(out, "/Users/alice/Library/LaunchAgents/org.gatewayd.gateway.plist", f.from, 1)
		}
		return out, 0, nil
	case "bootstrap":
		if f.loaded {
			return "Bootstrap failed: 5: Input/output error", 5, nil
		}
		f.loaded, f.from = true, args[2]
	case "bootout":
		if !f.loaded {
			return "Boot-out failed: 3: No such process", 3, nil
		}
		f.loaded = false
	case "enable", "kickstart":
	default:
		f.t.Fatalf("unexpected launchctl %v", args)
	}
	return "", 0, nil
}

func launchdFixture(t *testing.T, printFixture string) (*fakeLaunchctl, Manager, Target, string) {
	fake := &fakeLaunchctl{t: t, fixture: readFixture(t, printFixture)}
	home := t.TempDir()
	m := NewLaunchdWithOptions(LaunchdOptions{Scope: ScopeUser, UID: 501, Run: fake.run, HomeDir: home})
	tg := Target{Port: freeLocalPort(t), ExecPath: "/usr/local/bin/gatewayd", Version: "1.2.3"}
	path := launchd.PlistPath(launchd.Params{Scope: launchd.ScopeUser, HomeDir: home})
	return fake, m, tg, path
}

func TestLaunchdInstallStatusDoctor(t *testing.T) {
	fake, m, tg, path := launchdFixture(t, "print-running.txt")
	ctx := context.Background()
	if m.Name() != "launchd" {
		t.Fatalf("Name = %q", m.Name())
	}

	rep, err := m.Doctor(ctx, tg, DoctorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertCheck(t, rep, "unit-missing", SeverityError)
	assertCheck(t, rep, "plist-not-loaded", SeverityError)

	res, err := m.Install(ctx, tg, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files[0].Path != path || res.Files[0].Action != ActionCreate {
		t.Fatalf("install: %+v", res)
	}
	if want := "bootstrap gui/501 " + path; fake.calls[len(fake.calls)-1] != want {
		t.Fatalf("last launchctl call %q, want %q", fake.calls[len(fake.calls)-1], want)
	}
	again, err := m.Install(ctx, tg, InstallOptions{})
	if err != nil || !again.AlreadyInstalled {
		t.Fatalf("second install: %+v, %v", again, err)
	}

	rt, err := m.Status(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if rt.LoadState != "loaded" || rt.ActiveState != "running" || rt.MainPID != 48213 || rt.FragmentPath != path ||
		!rt.SocketListening || rt.Environment[units.EnvVersion] != "1.2.3" || !sameAddrs(rt.SocketListen, units.DefaultListenAddrs(tg.Port)) {
		t.Fatalf("status: %+v", rt)
	}
	assertClean(t, mustDoctor(t, m, tg, DoctorOptions{}))

	// Loaded from another path: plist-loaded-path, repaired by reloading.
	fake.from = "/Users/alice/Library/LaunchAgents/org.gatewayd.gateway.plist"
	rep = mustDoctor(t, m, tg, DoctorOptions{})
	c := assertCheck(t, rep, "plist-loaded-path", SeverityError)
	if !strings.Contains(c.Message, fake.from) {
		t.Fatalf("plist-loaded-path: %q", c.Message)
	}
	rep = mustDoctor(t, m, tg, DoctorOptions{Fix: true})
	if c, _ := rep.Result("plist-loaded-path"); !c.Fixed || rep.Remaining != 0 {
		t.Fatalf("after --fix:\n%s", dump(rep))
	}

	// Edited plist with a token: plist-drift, secret-in-unit, marker.
	data, _ := os.ReadFile(path)
	edited := strings.Replace(string(data), "<string>1.2.3</string>", "<string>0.9</string>", 1)
	edited = strings.Replace(edited, "<key>GATEWAY_PROFILE</key>", "<key>GATEWAY_TOKEN</key><string>abc</string><key>GATEWAY_PROFILE</key>", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = mustDoctor(t, m, tg, DoctorOptions{})
	assertCheck(t, rep, "plist-drift", SeverityWarning)
	assertCheck(t, rep, "secret-in-unit", SeverityError)
	assertCheck(t, rep, "marker-mismatch", SeverityWarning)
	if _, err := m.Install(ctx, tg, InstallOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install over an edited plist: %v", err)
	}
	rep = mustDoctor(t, m, tg, DoctorOptions{Fix: true})
	if rep.Remaining != 0 || rep.Fixed != 3 {
		t.Fatalf("after --fix:\n%s", dump(rep))
	}

	// Not loaded.
	if err := m.Stop(ctx, tg); err != nil {
		t.Fatal(err)
	}
	assertCheck(t, mustDoctor(t, m, tg, DoctorOptions{}), "plist-not-loaded", SeverityError)
	if rt, _ := m.Status(ctx, tg); rt.LoadState != "not-found" || rt.MainPID != 0 {
		t.Fatalf("status after stop: %+v", rt)
	}

	if err := m.Uninstall(ctx, tg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("plist left after uninstall: %v", err)
	}
}

func TestLaunchdFailedJob(t *testing.T) {
	fake, m, tg, _ := launchdFixture(t, "print-not-running.txt")
	tg.Profile = "dev"
	if _, err := m.Install(context.Background(), tg, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	fake.from = ""
	rep := mustDoctor(t, m, tg, DoctorOptions{})
	c := assertCheck(t, rep, "service-failed", SeverityError)
	if !strings.Contains(c.Message, "78") || !strings.HasPrefix(c.Fix, manualPrefix) {
		t.Fatalf("service-failed: %+v", c)
	}
	// The fixture names /Library/LaunchDaemons/...: not the installed path.
	assertCheck(t, rep, "plist-loaded-path", SeverityError)
}

func TestLaunchdDoctorFixDryRunAndFailure(t *testing.T) {
	fake, m, tg, path := launchdFixture(t, "print-running.txt")
	ctx := context.Background()

	// --dry-run: says what it would do, shows the plist, changes nothing.
	rep := mustDoctor(t, m, tg, DoctorOptions{Fix: true, DryRun: true})
	want := "would rewrite " + path + ", then bootout and bootstrap gui/501/org.gatewayd.gateway"
	for _, name := range []string{"unit-missing", "plist-not-loaded"} {
		if c, _ := rep.Result(name); c.Fix != want {
			t.Errorf("%s fix = %q, want %q", name, c.Fix, want)
		}
	}
	if len(rep.Changes) != 1 || rep.Changes[0].Path != path || rep.Changes[0].Action != "create" || rep.Changes[0].Diff == "" {
		t.Fatalf("dry-run changes: %+v", rep.Changes)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("dry-run wrote %s: %v", path, err)
	}
	for _, c := range fake.calls {
		if !strings.HasPrefix(c, "print ") {
			t.Fatalf("dry-run ran launchctl %s", c)
		}
	}

	// A failed reload after the rewrite: the error, and the backup made.
	if _, err := m.Install(ctx, tg, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "<string>1.2.3</string>", "<string>0.9</string>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	fake.fail = "bootstrap"
	rep, err := m.Doctor(ctx, tg, DoctorOptions{Fix: true})
	if err == nil || !strings.HasPrefix(err.Error(), "doctor --fix: launchctl bootstrap") {
		t.Fatalf("Doctor --fix error = %v", err)
	}
	if rep == nil || len(rep.Changes) != 1 || rep.Changes[0].Backup == "" {
		t.Fatalf("report after a failed fix: %+v", rep)
	}
	if got, _ := os.ReadFile(rep.Changes[0].Backup); !strings.Contains(string(got), "<string>0.9</string>") {
		t.Errorf("backup %s holds\n%s", rep.Changes[0].Backup, got)
	}
}

func mustDoctor(t *testing.T, m Manager, tg Target, o DoctorOptions) *Report {
	t.Helper()
	rep, err := m.Doctor(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("Doctor: %v", err)
	}
	return rep
}
