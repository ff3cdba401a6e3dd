package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/client"
	"github.com/gatewayd/gatewayd/daemon/logs"
	"github.com/gatewayd/gatewayd/platform/service"
	"github.com/gatewayd/gatewayd/units"
)

// Follow-mode timing.
const (
	logsPollInterval   = 500 * time.Millisecond
	logsFollowBatch    = 1000             // lines per poll
	logsCatchUpPolls   = 50               // immediate re-polls while the server says more is waiting
	logsReconnectLimit = 60 * time.Second // give up when the gateway stays away this long (no readable file)
	logsRedialInterval = time.Second      // while following the file: how often to try the gateway again
	logsFileMaxBytes   = 250000           // per read of the file, as the server's logs.tail
)

// tailResult is the payload of logs.tail.
type tailResult struct {
	File      string   `json:"file"`
	Cursor    int64    `json:"cursor"`
	Size      int64    `json:"size"`
	Lines     []string `json:"lines"`
	Truncated bool     `json:"truncated,omitempty"`
	Reset     bool     `json:"reset,omitempty"`
}

// tailParams are the params of logs.tail.
type tailParams struct {
	Cursor *int64 `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

func (a *app) logsCommand() *ffcli.Command {
	fs := a.flagSet("logs")
	var sf svcFlags
	sf.register(fs, false)
	follow := fs.Bool("follow", false, "keep printing new lines as the gateway writes them (Ctrl-C to stop)")
	limit := fs.Int("limit", 200, "print at most the last `N` lines first (1-5000)")
	return &ffcli.Command{
		Name:       "logs",
		ShortUsage: "gatewayctl logs [--follow] [--limit N] [--scope user|system] [--json]",
		ShortHelp:  "Print the gateway's log: over the protocol, else its log file or the journal.",
		LongHelp: `Prints the last --limit lines of the gateway's JSON-lines log, fetched with
the logs.tail method, as "TIME LEVEL msg key=value …" (local time), or the
raw JSON lines with --json.

When the gateway is not reachable (stopped, crash-looping, not installed)
logs reads the profile's log file itself when this user may read it, and
otherwise the service's journal (journalctl -u UNIT, or --user-unit in user
scope; --scope picks the unit's scope), and says on stderr which source it
read. With neither, it fails with exit status 3.

--follow keeps one connection open and polls logs.tail by byte cursor every
500 ms, printing lines as they come; "log rotated" is noted on stderr when
the file was rotated or truncated. When the gateway shuts down or restarts,
--follow says so on stderr and reads the log file directly from the same
byte cursor while the gateway is away, trying the gateway again every
second; back over the protocol it continues from that cursor, so no line is
printed twice or skipped. Without a readable file it waits for the gateway
and gives up with exit status 3 after 60 s. Following the journal runs
journalctl --follow. Ctrl-C (SIGINT) or SIGTERM ends it with status 0.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("logs takes no arguments, got %q", args))
			}
			if *limit < 1 || *limit > 5000 {
				return usageErr(fmt.Errorf("--limit %d is out of range (use 1-5000)", *limit))
			}
			return a.logs(ctx, &sf, *follow, *limit)
		},
	}
}

func (a *app) logs(ctx context.Context, sf *svcFlags, follow bool, limit int) error {
	// The paths of --scope (as status): root reading a user gateway's log,
	// a user reading the system gateway's.
	st, err := a.serviceTarget(sf, 0)
	if err != nil {
		return err
	}
	t, err := a.resolveIn(st)
	if err != nil {
		return err
	}
	c, err := a.dialBounded(ctx, t)
	if err != nil {
		if exitCode(err) != ExitUnreachable {
			return err
		}
		return a.logsOffline(ctx, t, st, follow, limit, err)
	}
	res, err := a.tail(ctx, c, nil, limit)
	if err != nil {
		c.Close()
		return err
	}
	a.printLines(res.Lines)
	if !follow {
		return c.Close()
	}
	file := res.File
	if file == "" {
		file = t.Paths.LogFile
	}
	return a.follow(ctx, t, c, file, res.Cursor)
}

// logsOffline prints the log without the gateway: the file when readable,
// else the journal; dialErr is returned when neither works.
func (a *app) logsOffline(ctx context.Context, t *target, st *svcTarget, follow bool, limit int, dialErr error) error {
	file := t.Paths.LogFile
	res, ferr := logs.Tail(file, nil, limit, logsFileMaxBytes)
	if ferr == nil {
		if _, serr := os.Stat(file); serr != nil {
			ferr = serr // Tail reports a missing file as empty
		}
	}
	if ferr == nil {
		fmt.Fprintf(a.stderr, "gatewayctl: %v\ngatewayctl: read the log file %s directly instead (the last %d lines)\n", dialErr, file, len(res.Lines))
		a.printLines(res.Lines)
		if !follow {
			return nil
		}
		return a.follow(ctx, t, nil, file, res.Cursor)
	}
	unit, scope, jerr := a.journalUnit(ctx, st)
	if jerr == nil {
		var n int
		n, jerr = a.journal(ctx, unit, scope, limit, follow, func() {
			fmt.Fprintf(a.stderr, "gatewayctl: %v\ngatewayctl: the log file %s is not readable (%v); read the journal of %s instead (journalctl %s)\n",
				dialErr, file, errors.Unwrap(ferr), unit, strings.Join(journalArgs(unit, scope, limit, false), " "))
		})
		if jerr == nil && (n > 0 || follow) {
			return nil
		}
		if jerr == nil {
			jerr = fmt.Errorf("no journal entries for %s", unit)
		}
	}
	return fmt.Errorf("%w; no log to read instead: the log file %s: %v; the journal: %v", dialErr, file, ferr, jerr)
}

// journalUnit returns the profile's service unit and scope, when the
// service manager knows the unit (no unit, no journal of it).
func (a *app) journalUnit(ctx context.Context, st *svcTarget) (string, string, error) {
	unit := units.ServiceName(st.profile.Name())
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	m, err := a.openManager(cctx, st.scope)
	if err != nil {
		return "", "", err
	}
	if m.Name() != "systemd" {
		return "", "", fmt.Errorf("%s keeps no journal", m.Name())
	}
	rt, err := m.Status(cctx, st.tg)
	if err != nil {
		return "", "", err
	}
	if rt.LoadState != "loaded" {
		return "", "", fmt.Errorf("%s is not installed in %s scope (%s)", unit, st.scope, rt.LoadState)
	}
	return unit, st.scope, nil
}

func journalArgs(unit, scope string, limit int, follow bool) []string {
	args := []string{"--no-pager", "-o", "json", "-n", strconv.Itoa(limit)}
	if scope == service.ScopeUser {
		args = append(args, "--user-unit", unit)
	} else {
		args = append(args, "-u", unit)
	}
	if follow {
		args = append(args, "--follow")
	}
	return args
}

// journal prints the unit's last limit journal entries (and, with follow,
// new ones until ctx ends) and returns how many it printed; announce runs
// before the first line is printed.
func (a *app) journal(ctx context.Context, unit, scope string, limit int, follow bool, announce func()) (int, error) {
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		return 0, errors.New("journalctl not found (not a systemd host?)")
	}
	cmd := exec.CommandContext(ctx, jc, journalArgs(unit, scope, limit, follow)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run journalctl: %w", err)
	}
	n := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line, ok := journalLine(sc.Bytes(), a.g.json)
		if !ok {
			continue
		}
		if n == 0 {
			announce()
		}
		n++
		fmt.Fprintln(a.stdout, line)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return n, nil // Ctrl-C while following
	}
	if werr != nil {
		return n, fmt.Errorf("journalctl: %v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return n, nil
}

// journalLine renders one `journalctl -o json` entry: the raw JSON with
// --json, else "TIME MESSAGE" in local time.
func journalLine(raw []byte, asJSON bool) (string, bool) {
	var e map[string]any
	if json.Unmarshal(raw, &e) != nil {
		return "", false
	}
	if asJSON {
		return string(raw), true
	}
	msg := ""
	switch m := e["MESSAGE"].(type) {
	case string:
		msg = m
	case []any: // non-UTF-8 messages are byte arrays
		b := make([]byte, 0, len(m))
		for _, x := range m {
			if f, ok := x.(float64); ok {
				b = append(b, byte(f))
			}
		}
		msg = string(b)
	}
	ts := ""
	if s, ok := e["__REALTIME_TIMESTAMP"].(string); ok {
		if us, err := strconv.ParseInt(s, 10, 64); err == nil {
			ts = time.UnixMicro(us).Local().Format("2006-01-02T15:04:05.000Z07:00") + " "
		}
	}
	return ts + msg, true
}

// follow prints new log lines from cursor on: over c while it is
// connected, and from the log file itself (same byte cursor) while the
// gateway is away. c may be nil (the gateway is away at the start).
func (a *app) follow(ctx context.Context, t *target, c *client.Conn, file string, cursor int64) error {
	for {
		if c != nil {
			var err error
			cursor, file, err = a.followConn(ctx, c, file, cursor)
			c.Close()
			c = nil
			if err != nil || ctx.Err() != nil {
				return err
			}
		}
		var err error
		if fileReadable(file) {
			fmt.Fprintf(a.stderr, "gatewayctl: following the log file %s directly while the gateway is away\n", file)
			c, cursor, err = a.followFile(ctx, t, file, cursor)
		} else {
			c, err = a.reconnect(ctx, t)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if c == nil {
			return nil // ctx ended
		}
		fmt.Fprintf(a.stderr, "gatewayctl: reconnected to %s\n", t.URL)
	}
}

// followConn polls logs.tail over c until the connection ends (nil error:
// reconnect) or ctx ends, and returns the cursor and file reached.
func (a *app) followConn(ctx context.Context, c *client.Conn, file string, cursor int64) (int64, string, error) {
	ticker := time.NewTicker(logsPollInterval)
	defer ticker.Stop()
	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return cursor, file, nil
		case ev, ok := <-events:
			if !ok {
				events = nil // the connection ended; c.Done() handles it
				continue
			}
			if ev.Name == "shutdown" {
				var sd struct {
					Reason string `json:"reason"`
				}
				_ = json.Unmarshal(ev.Payload, &sd) // the notice works without a reason
				fmt.Fprintf(a.stderr, "gatewayctl: gateway is shutting down (%s)\n", orDash(sd.Reason))
			}
		case <-c.Done():
			code, reason := c.CloseStatus()
			fmt.Fprintf(a.stderr, "gatewayctl: connection closed (%d %s); reconnecting\n", code, reason)
			return cursor, file, nil
		case <-ticker.C:
			for range logsCatchUpPolls {
				res, err := a.tail(ctx, c, &cursor, logsFollowBatch)
				if err != nil {
					if ctx.Err() != nil {
						return cursor, file, nil
					}
					if errors.Is(err, client.ErrClosed) {
						break // c.Done() is ready: reconnect there
					}
					return cursor, file, err
				}
				if res.File != "" {
					file = res.File
				}
				cursor = a.printTail(res)
				if !res.Truncated || len(res.Lines) == 0 {
					break
				}
			}
		}
	}
}

// followFile reads the log file from cursor while the gateway is away,
// trying it again every logsRedialInterval; it returns the new connection
// and the cursor reached (nil connection: ctx ended).
func (a *app) followFile(ctx context.Context, t *target, file string, cursor int64) (*client.Conn, int64, error) {
	poll := time.NewTicker(logsPollInterval)
	defer poll.Stop()
	redial := time.NewTicker(logsRedialInterval)
	defer redial.Stop()
	for {
		for range logsCatchUpPolls {
			res, err := logs.Tail(file, &cursor, logsFollowBatch, logsFileMaxBytes)
			if err != nil {
				return nil, cursor, fmt.Errorf("read the log file %s: %w", file, err)
			}
			cursor = a.printTail(&tailResult{File: file, Cursor: res.Cursor, Lines: res.Lines, Truncated: res.Truncated, Reset: res.Reset})
			if !res.Truncated || len(res.Lines) == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, cursor, nil
		case <-poll.C:
		case <-redial.C:
			dctx, cancel := context.WithTimeout(ctx, logsRedialInterval)
			c, err := a.dialBounded(dctx, t)
			cancel()
			if err == nil {
				return c, cursor, nil
			}
			var de *client.DialError
			if errors.As(err, &de) && de.IsAuth() {
				return nil, cursor, err
			}
		}
	}
}

// printTail prints a tail result and returns its cursor.
func (a *app) printTail(res *tailResult) int64 {
	if res.Reset {
		fmt.Fprintf(a.stderr, "gatewayctl: log rotated; reading %s from the start\n", res.File)
	}
	a.printLines(res.Lines)
	return res.Cursor
}

func fileReadable(path string) bool {
	if path == "" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dialBounded dials with the --timeout bound on the handshake only: the
// returned connection lives on.
func (a *app) dialBounded(ctx context.Context, t *target) (*client.Conn, error) {
	return a.dial(ctx, t, readScopes) // Options.HandshakeTimeout is --timeout
}

// reconnect dials again with backoff until it works, authentication fails,
// ctx ends, or logsReconnectLimit passes.
func (a *app) reconnect(ctx context.Context, t *target) (*client.Conn, error) {
	deadline := time.Now().Add(logsReconnectLimit)
	backoff := 250 * time.Millisecond
	for {
		c, err := a.dialBounded(ctx, t)
		if err == nil {
			return c, nil
		}
		var de *client.DialError
		if errors.As(err, &de) && de.IsAuth() {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("gateway stayed unreachable for %s: %w", logsReconnectLimit, err)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (a *app) tail(ctx context.Context, c *client.Conn, cursor *int64, limit int) (*tailResult, error) {
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	var res tailResult
	if err := c.CallInto(cctx, "logs.tail", tailParams{Cursor: cursor, Limit: limit}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (a *app) printLines(lines []string) {
	for _, l := range lines {
		if a.g.json {
			fmt.Fprintln(a.stdout, logs.WithMessage(l))
		} else {
			fmt.Fprintln(a.stdout, renderLogLine(l))
		}
	}
}
