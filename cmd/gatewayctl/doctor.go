package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/platform/service"
)

// Exit codes of doctor, as gitea/chezmoi/flutter doctor use them.
const (
	// ExitDoctorClean: every check is ok, info or skipped.
	ExitDoctorClean = 0
	// ExitDoctorProblems: at least one warning, error or failed check remains.
	ExitDoctorProblems = 1
	// ExitDoctorFailed: the doctor itself could not run (no service manager,
	// --fix could not apply a repair).
	ExitDoctorFailed = 2
)

// doctorReport is `gatewayctl doctor --json`.
type doctorReport struct {
	Manager string `json:"manager"`
	Scope   string `json:"scope"`
	Profile string `json:"profile"`
	Fix     bool   `json:"fix"`
	DryRun  bool   `json:"dryRun"`
	*service.Report
	Error string `json:"error,omitempty"`
}

// onlyFlag collects --only NAME (repeatable, or comma-separated).
type onlyFlag []string

func (o *onlyFlag) String() string { return strings.Join(*o, ",") }

func (o *onlyFlag) Set(v string) error {
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			*o = append(*o, n)
		}
	}
	return nil
}

var _ flag.Value = (*onlyFlag)(nil)

func (a *app) doctorCommand() *ffcli.Command {
	fs := a.flagSet("doctor")
	var sf svcFlags
	sf.register(fs, true)
	fix := fs.Bool("fix", false, "apply the safe repairs (rewrite units, daemon-reload, re-enable, restart once), then re-check")
	dry := fs.Bool("dry-run", false, "with --fix: say what would be repaired and show the file changes as a unified diff, touch nothing")
	list := fs.Bool("list", false, "list the checks and what they look at")
	var only onlyFlag
	fs.Var(&only, "only", "run only the check `NAME` (repeatable, or comma-separated)")
	return &ffcli.Command{
		Name:       "doctor",
		ShortUsage: "gatewayctl doctor [--fix [--dry-run]] [--json] [--list] [--only NAME...]",
		ShortHelp:  "Check the gateway's installation and service; --fix repairs drift.",
		LongHelp: `Runs every check (see --list) against the profile's installation in the
service manager, each with a stable kebab-case name, a severity (ok, info,
warning, error, failed, skipped), a message and a fix hint.

--fix applies only safe, idempotent repairs: rewrite the units from the
template, daemon-reload over D-Bus, re-enable, restart once, then re-check;
each problem is then reported as "fixed" or "manual fix required: <command>".
Every file it replaces or removes is first saved in gatewayctl-backup/ next
to the unit directory (it says where), and files are written atomically. A
second --fix finds nothing to do and changes nothing. --fix --dry-run shows
each file change as a unified diff. Operator drop-ins, masks, lingering and
the config file are never changed.

Check names may also be given as arguments: gatewayctl doctor unit-drift.

Exit status 0 clean, 1 problems remain, 2 the doctor itself failed.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			only = append(only, args...)
			if *list {
				return a.doctorList()
			}
			if *dry && !*fix {
				return usageErr(fmt.Errorf("--dry-run goes with --fix: gatewayctl doctor --fix --dry-run"))
			}
			return a.doctor(ctx, &sf, service.DoctorOptions{Fix: *fix, DryRun: *dry, Only: only})
		},
	}
}

func (a *app) doctorList() error {
	name := "systemd"
	if runtime.GOOS == "darwin" {
		name = "launchd"
	}
	checks := service.CheckList(name)
	if a.g.json {
		return writeValue(a.stdout, map[string]any{"manager": name, "checks": checks})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\n", c.Name, c.Description)
	}
	return tw.Flush()
}

func (a *app) doctor(ctx context.Context, sf *svcFlags, o service.DoctorOptions) error {
	st, err := a.serviceTarget(sf, 0)
	if err != nil {
		return err
	}
	out := &doctorReport{Scope: st.scope, Profile: st.profile.Name(), Fix: o.Fix, DryRun: o.DryRun}
	fail := func(err error) error {
		out.Error = err.Error()
		if a.g.json {
			_ = writeValue(a.stdout, out)
		}
		return withCode(ExitDoctorFailed, fmt.Errorf("doctor failed: %w", err))
	}
	if st.tg.ExecPath == "" {
		// Without a binary the units cannot be rendered; say so once.
		if err := st.needBinary(); err != nil {
			return fail(err)
		}
	}
	m, err := a.openManager(ctx, st.scope)
	if err != nil {
		return fail(err)
	}
	out.Manager = m.Name()
	rep, err := m.Doctor(ctx, st.tg, o)
	if rep == nil {
		if err == nil {
			err = fmt.Errorf("no report")
		}
		if strings.Contains(err.Error(), "unknown doctor check") {
			return usageErr(err)
		}
		return fail(err)
	}
	out.Report = rep
	if err != nil {
		out.Error = err.Error()
	}
	if a.g.json {
		if werr := writeValue(a.stdout, out); werr != nil {
			return werr
		}
	} else {
		printDoctor(a.stdout, m, st, out)
	}
	switch {
	case err != nil:
		return withCode(ExitDoctorFailed, fmt.Errorf("doctor --fix failed: %w", err))
	case rep.Remaining > 0:
		return silent(withCode(ExitDoctorProblems, fmt.Errorf("%d problems remain", rep.Remaining)))
	}
	return nil
}

func printDoctor(w io.Writer, m service.Manager, st *svcTarget, r *doctorReport) {
	fmt.Fprintf(w, "doctor: %s\n", describe(m, st))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		sev := c.Severity
		if c.Fixed {
			sev = "fixed"
		}
		lines := strings.Split(c.Message, "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", sev, c.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t\t  %s\n", l)
		}
		if c.Fix != "" && (c.Problem() || c.Fixed) {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	tw.Flush()
	printChanges(w, r)
	switch {
	case r.Remaining == 0 && r.Fixed > 0:
		fmt.Fprintf(w, "all clean: %d fixed\n", r.Fixed)
	case r.Remaining == 0:
		fmt.Fprintln(w, "all clean")
	case r.Fixed > 0:
		fmt.Fprintf(w, "%d fixed, %d problems remain\n", r.Fixed, r.Remaining)
	default:
		hint := " (gatewayctl doctor --fix repairs what is safe to repair)"
		if r.Fix {
			hint = ""
		}
		fmt.Fprintf(w, "%d problems remain%s\n", r.Remaining, hint)
	}
}

// printChanges says which files --fix changed and where their previous
// versions are, or with --dry-run shows each change as a unified diff.
func printChanges(w io.Writer, r *doctorReport) {
	if r.Report == nil {
		return
	}
	for _, c := range r.Changes {
		if r.DryRun {
			fmt.Fprintf(w, "would %s %s:\n%s", c.Action, c.Path, c.Diff)
			if !strings.HasSuffix(c.Diff, "\n") {
				fmt.Fprintln(w)
			}
			continue
		}
		done := map[string]string{"create": "created", "rewrite": "rewrote", "remove": "removed"}[c.Action]
		if c.Backup != "" {
			fmt.Fprintf(w, "%s %s (the previous version is saved as %s)\n", done, c.Path, c.Backup)
		} else {
			fmt.Fprintf(w, "%s %s\n", done, c.Path)
		}
	}
}
