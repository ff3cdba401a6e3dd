package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
)

// manUsage is the help of the hidden `man` command, used by `make package`.
const manUsage = `usage: gatewayctl man [--date YYYY-MM-DD] gatewayctl|gatewayd

Prints a man page in roff: gatewayctl(1) from gatewayctl's own command tree,
or gatewayd(8) from gatewayd's --help text read on stdin:

  gatewayctl man gatewayctl > gatewayctl.1
  gatewayd --help 2>&1 | gatewayctl man gatewayd > gatewayd.8

The date on the page is --date, else $SOURCE_DATE_EPOCH (reproducible
builds), else today. The command is hidden: packages run it at build time.`

// registerMan adds the hidden `man` command to root: it is not listed in
// the help or the completions, and runs when the first argument is "man"
// (the packaging build generates gatewayctl.1 and gatewayd.8 with it).
func (a *app) registerMan(root *ffcli.Command) {
	next := root.Exec
	root.Exec = func(ctx context.Context, args []string) error {
		if len(args) > 0 && args[0] == "man" {
			return a.runMan(root, args[1:], os.Stdin)
		}
		return next(ctx, args)
	}
}

// runMan implements `gatewayctl man`.
func (a *app) runMan(root *ffcli.Command, args []string, stdin io.Reader) error {
	fs := flag.NewFlagSet("man", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	date := fs.String("date", "", "page date `YYYY-MM-DD` (default: $SOURCE_DATE_EPOCH, else today)")
	fs.Usage = func() { fmt.Fprintln(a.stderr, manUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr(err)
	}
	d, err := manDate(*date, a.getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return usageErr(err)
	}
	if fs.NArg() != 1 {
		return usageErr(errors.New("man needs one page name: gatewayctl or gatewayd (see gatewayctl man -h)"))
	}
	version := buildinfo.Get().Version
	var page string
	switch fs.Arg(0) {
	case "gatewayctl":
		page = gatewayctlManPage(root, d, version)
	case "gatewayd":
		help, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return fmt.Errorf("read gatewayd --help text from stdin: %w", err)
		}
		page, err = gatewaydManPage(string(help), d, version)
		if err != nil {
			return err
		}
	default:
		return usageErr(fmt.Errorf("no man page %q: choose gatewayctl or gatewayd", fs.Arg(0)))
	}
	_, err = io.WriteString(a.stdout, page)
	return err
}

// manDate picks the page date: flag, then SOURCE_DATE_EPOCH, then today.
func manDate(flagValue, epoch string) (string, error) {
	if flagValue != "" {
		if _, err := time.Parse(time.DateOnly, flagValue); err != nil {
			return "", fmt.Errorf("invalid --date %q: use YYYY-MM-DD", flagValue)
		}
		return flagValue, nil
	}
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return "", fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: use seconds since 1970 (or unset it)", epoch)
		}
		return time.Unix(n, 0).UTC().Format(time.DateOnly), nil
	}
	return time.Now().UTC().Format(time.DateOnly), nil
}

// roffText escapes free text for roff: backslashes, and a leading '.' or
// '\” that would start a request.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(line)
	}
	return b.String()
}

// roffDash escapes hyphens so they render as ASCII minus (options, commands).
func roffDash(s string) string { return strings.ReplaceAll(roffText(s), "-", `\-`) }

// roffBlock writes text as a paragraph: indented lines (examples, tables)
// go in a no-fill block, the rest is filled.
func roffBlock(b *strings.Builder, text string) {
	text = strings.Trim(text, "\n")
	if text == "" {
		return
	}
	for _, para := range strings.Split(text, "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		lines := strings.Split(para, "\n")
		if len(lines) > 1 && isHeading(lines[0]) {
			// "TARGET\n  text...": a subsection with its indented text.
			fmt.Fprintf(b, ".SS %s\n", roffText(lines[0]))
			for i := range lines[1:] {
				lines[i+1] = strings.TrimSpace(lines[i+1])
			}
			b.WriteString(".PP\n" + roffText(strings.Join(lines[1:], "\n")) + "\n")
			continue
		}
		indented := false
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, " ") {
				indented = true
			}
		}
		if strings.HasPrefix(lines[0], " ") {
			indented = true
		}
		b.WriteString(".PP\n")
		if indented {
			b.WriteString(".nf\n")
			b.WriteString(roffText(para))
			b.WriteString("\n.fi\n")
			continue
		}
		b.WriteString(breakLongWords(roffText(strings.Join(lines, "\n"))))
		b.WriteByte('\n')
	}
}

// breakLongWords lets troff break words longer than a third of a line (JSON
// shapes, URLs) after ',', '|' and '/', by inserting the zero-width break
// point \: so that man renders them without "can't break line".
func breakLongWords(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if len(w) > 25 && !strings.HasPrefix(w, ".") {
			w = strings.ReplaceAll(w, ",", `,\:`)
			w = strings.ReplaceAll(w, "|", `|\:`)
			words[i] = strings.ReplaceAll(w, "/", `/\:`)
		}
	}
	return strings.Join(words, " ")
}

// isHeading reports whether a help line is an all-capitals heading.
func isHeading(line string) bool {
	return line != "" && strings.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ ") == ""
}

func manHeader(b *strings.Builder, name, section, date, version, summary string) {
	fmt.Fprintf(b, ".\\\" Generated by `gatewayctl man %s` (gatewayctl %s); do not edit.\n", name, roffText(version))
	fmt.Fprintf(b, ".TH %s %s %q \"gatewayd %s\" \"gatewayd manual\"\n", strings.ToUpper(name), section, date, roffText(version))
	// Left-aligned, no hyphenation: help texts hold long JSON and paths.
	b.WriteString(".ad l\n.nh\n")
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", name, roffText(summary))
}

// manFlag writes one option as a tagged paragraph.
func manFlag(b *strings.Builder, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	tag := `\fB\-\-` + roffDash(f.Name) + `\fR`
	if !isBool(f) {
		if name == "" {
			name = "value"
		}
		tag += ` \fI` + roffText(name) + `\fR`
	}
	fmt.Fprintf(b, ".TP\n%s\n%s", tag, roffText(usage))
	if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "[]" {
		fmt.Fprintf(b, " (default: %s)", roffText(def))
	}
	b.WriteByte('\n')
}

// gatewayctlManPage renders gatewayctl(1) from the command tree.
func gatewayctlManPage(root *ffcli.Command, date, version string) string {
	var b strings.Builder
	manHeader(&b, "gatewayctl", "1", date, version, strings.TrimSuffix(root.ShortHelp, "."))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B gatewayctl\n[\\fIglobal flags\\fR] \\fIcommand\\fR [\\fIflags\\fR] [\\fIargs\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	long, exits, _ := strings.Cut(root.LongHelp, exitCodesHelp)
	roffBlock(&b, long)

	global := map[string]bool{}
	b.WriteString(".SH GLOBAL FLAGS\nThese work before or after the command name.\n")
	if root.FlagSet != nil {
		root.FlagSet.VisitAll(func(f *flag.Flag) {
			global[f.Name] = true
			manFlag(&b, f)
		})
	}

	b.WriteString(".SH COMMANDS\n")
	for _, n := range walkCommands(root) {
		if n.path == "" {
			continue
		}
		fmt.Fprintf(&b, ".SS %s\n", roffDash(n.path))
		if n.cmd.ShortUsage != "" {
			fmt.Fprintf(&b, ".PP\n\\fB%s\\fR\n", roffDash(n.cmd.ShortUsage))
		}
		text := n.cmd.LongHelp
		if text == "" {
			text = n.cmd.ShortHelp
		}
		roffBlock(&b, text)
		var own []*flag.Flag
		for _, f := range n.flags {
			if !global[f.Name] {
				own = append(own, f)
			}
		}
		if len(own) > 0 {
			b.WriteString(".PP\nFlags:\n.RS\n")
			for _, f := range own {
				manFlag(&b, f)
			}
			b.WriteString(".RE\n")
		}
	}
	b.WriteString(".SH EXIT STATUS\n")
	roffBlock(&b, strings.TrimPrefix(exitCodesHelp, "EXIT STATUS\n")+exits)
	b.WriteString(".SH ENVIRONMENT\n")
	for _, e := range [][2]string{
		{"GATEWAY_URL", "the gateway to talk to (like --url)"},
		{"GATEWAY_TOKEN, GATEWAY_PASSWORD", "the shared secret (like --token, --password)"},
		{"GATEWAY_PROFILE", "the profile (like --profile)"},
		{"GATEWAY_PORT", "the port of the profile's gateway on 127.0.0.1"},
		{"GATEWAY_CONFIG_PATH", "the config file to read"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffText(e[0]), roffText(e[1]))
	}
	b.WriteString(manFiles)
	b.WriteString(".SH SEE ALSO\n.BR gatewayd (8),\n.BR systemctl (1),\n.BR systemd.socket (5),\n.BR launchctl (1)\n")
	return b.String()
}

const manFiles = `.SH FILES
.TP
.I /etc/gatewayd/config.json
configuration of the system gateway (default profile; a profile NAME uses /etc/gatewayd\-NAME)
.TP
.I /var/lib/gatewayd/gateway.token
the system gateway's generated token
.TP
.I /var/log/gatewayd/gatewayd.jsonl
the system gateway's JSON-lines log
.TP
.I $XDG_CONFIG_HOME/gatewayd/config.json
configuration of a user's gateway (default ~/.config/gatewayd)
.TP
.I /usr/lib/systemd/system/gatewayd.socket, gatewayd.service
the packaged system units (user units in /usr/lib/systemd/user)
`

// gatewaydManPage renders gatewayd(8) from the text `gatewayd --help`
// prints (flag.PrintDefaults between a "Flags:" line and an "Exit status:"
// line).
func gatewaydManPage(help, date, version string) (string, error) {
	type opt struct{ head, usage string }
	var (
		desc, exits []string
		opts        []opt
		section     = "desc"
	)
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Usage:"):
			continue
		case strings.TrimSpace(line) == "Flags:":
			section = "flags"
			continue
		case strings.HasPrefix(line, "Exit status:"):
			section = "exit"
			exits = append(exits, strings.TrimSpace(strings.TrimPrefix(line, "Exit status:")))
			continue
		}
		switch section {
		case "desc":
			desc = append(desc, line)
		case "exit":
			exits = append(exits, line)
		case "flags":
			switch {
			case strings.HasPrefix(line, "  -"):
				opts = append(opts, opt{head: strings.TrimSpace(line)})
			case strings.HasPrefix(line, "    \t") && len(opts) > 0:
				o := &opts[len(opts)-1]
				o.usage = strings.TrimSpace(o.usage + " " + strings.TrimSpace(line))
			}
		}
	}
	if len(opts) == 0 {
		return "", errors.New("no flags found in the gatewayd --help text on stdin: pipe `gatewayd --help 2>&1` into gatewayctl man gatewayd")
	}
	var b strings.Builder
	manHeader(&b, "gatewayd", "8", date, version, "the gateway daemon (Gateway WebSocket protocol v4)")
	b.WriteString(".SH SYNOPSIS\n.B gatewayd\n[\\fIflags\\fR]\n.SH DESCRIPTION\n")
	roffBlock(&b, strings.Join(desc, "\n"))
	b.WriteString(`.PP
Under systemd, gatewayd takes its listening sockets from the socket unit
(\fB\-\-listen systemd:gatewayd\fR), reports readiness, status, reload and stop
with sd_notify and pings the watchdog while it is healthy. Under launchd it
takes them from the job's Sockets (\fB\-\-listen launchd:Listeners\fR).
Otherwise it binds the profile's port itself.
`)
	b.WriteString(".SH OPTIONS\n")
	for _, o := range opts {
		name, arg, _ := strings.Cut(strings.TrimPrefix(o.head, "-"), " ")
		tag := `\fB\-\-` + roffDash(name) + `\fR`
		if arg != "" {
			tag += ` \fI` + roffText(arg) + `\fR`
		}
		fmt.Fprintf(&b, ".TP\n%s\n%s\n", tag, roffText(o.usage))
	}
	b.WriteString(".SH SIGNALS\n.TP\n.B SIGTERM, SIGINT\nstop accepting, send the shutdown event to every client, close them (1012), drain and exit 0\n.TP\n.B SIGHUP\nreload the config file\n.TP\n.B SIGUSR1\nrestart in process, keeping the listening sockets (when commands.restart allows it)\n")
	if len(exits) > 0 {
		b.WriteString(".SH EXIT STATUS\n")
		roffBlock(&b, strings.Join(exits, "\n"))
	}
	b.WriteString(manFiles)
	b.WriteString(".SH SEE ALSO\n.BR gatewayctl (1),\n.BR systemd.socket (5),\n.BR systemd.service (5),\n.BR sd_notify (3)\n")
	return b.String(), nil
}
