package launchd

import (
	"regexp"
	"strconv"
	"strings"
)

// headerRE matches the first line of a job description,
// "gui/501/org.gatewayd.gateway = {".
var headerRE = regexp.MustCompile(`^[^\s={}]+ = \{$`)

// PrintInfo is what ParsePrint could read from `launchctl print
// <domain>/<label>`. The format is not stable across macOS releases, so
// every field is optional: a zero value means "unknown", not "absent".
type PrintInfo struct {
	// Loaded is true when the output describes a job (launchctl knows the
	// label in that domain).
	Loaded bool
	// Path is the plist launchd loaded the job from ("path = ...").
	Path string
	// State is launchd's word for the job: "running", "not running",
	// "waiting", ... ("state = ...").
	State string
	// Program is the executable ("program = ...").
	Program string
	// PID is the running process, 0 when not running or unknown.
	PID int
	// Arguments are the job's argv ("arguments = {...}").
	Arguments []string
	// Sockets are the names of the job's socket entries ("sockets = {...}"),
	// e.g. "Listeners".
	Sockets []string
	// LastExitCode is the last exit status; nil when the job never exited
	// or the line is missing or unreadable.
	LastExitCode *int
	// Raw is the unparsed output.
	Raw string
}

// ParsePrint parses `launchctl print <domain>/<label>` output leniently.
// Only the job's own top-level fields are read (nested blocks such as
// endpoints carry their own "state =" lines, which are ignored); unknown
// lines are skipped; garbage yields a zero PrintInfo (with Raw set).
func ParsePrint(out string) PrintInfo {
	info := PrintInfo{Raw: out}
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	depth := 0
	var block string // name of the depth-1 block being read ("arguments", "sockets", ...)
	header := false
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		opens := strings.HasSuffix(line, "{")
		closes := line == "}"
		switch {
		case closes:
			if depth > 0 {
				depth--
			}
			if depth <= 1 {
				block = ""
			}
			continue
		case depth == 0 && headerRE.MatchString(line):
			// "gui/501/org.gatewayd.gateway = {"
			header = true
			depth = 1
			continue
		case depth == 0:
			continue
		}
		if depth == 1 {
			key, val, ok := strings.Cut(line, " = ")
			if opens {
				if ok {
					block = strings.TrimSpace(key)
				} else {
					block = ""
				}
				depth++
				continue
			}
			if !ok {
				continue
			}
			setField(&info, strings.TrimSpace(key), strings.TrimSpace(val))
			continue
		}
		// depth >= 2: inside a block of the job.
		switch {
		case block == "arguments" && depth == 2 && !opens:
			info.Arguments = append(info.Arguments, line)
		case block == "sockets" && depth == 2 && opens:
			name, _, _ := strings.Cut(line, " = ")
			name = strings.Trim(strings.TrimSpace(name), `"`)
			if name != "" && name != "{" {
				info.Sockets = append(info.Sockets, name)
			}
		}
		if opens {
			depth++
		}
	}
	// Only call it loaded when the output had the job's block and one of
	// the fields launchctl always prints for a job: error text and garbage
	// stay "not loaded".
	info.Loaded = header && (info.State != "" || info.Path != "")
	if !info.Loaded {
		return PrintInfo{Raw: out}
	}
	return info
}

func setField(info *PrintInfo, key, val string) {
	switch key {
	case "path":
		info.Path = val
	case "state":
		info.State = val
	case "program":
		info.Program = val
	case "pid":
		if n, err := strconv.Atoi(val); err == nil && n > 0 {
			info.PID = n
		}
	case "last exit code":
		// "0", "78: EX_CONFIG", "(never exited)"
		num, _, _ := strings.Cut(val, ":")
		if n, err := strconv.Atoi(strings.TrimSpace(num)); err == nil {
			info.LastExitCode = &n
		}
	}
}
